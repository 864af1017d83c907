"""Which policy config a stack is judged with: the one of the environment it declares.

`python -m policies.strictness --stack S` prints the config file for stack S, for
`pulumi up --policy-pack policies --policy-pack-config "$(...)"` (scripts/setup-secure-redis.sh).
The environment comes from the stack's own declaration (`secure-redis:environment` in
`Pulumi.<S>.yaml`, or `ENVIRONMENT=...` on the containers of a record file), never from the
stack's name or a path built from it; undeclared means production, the strictest.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

from infra.cli import OneLineParser, exit_with, say
from policies.records import Record
from policies.rules import Resource
from policies.rules._environment import Environment, declared, parse

CONFIG_DIR: Final = Path(__file__).resolve().parent / "config"
STACK_DIR: Path | None = None
"""Where `Pulumi.<S>.yaml` files live; None: the repository root (tests point it elsewhere)."""
CONFIG_FILES: Final = {
    Environment.DEVELOPMENT: CONFIG_DIR / "dev.json",
    Environment.STAGING: CONFIG_DIR / "staging.json",
    Environment.PRODUCTION: CONFIG_DIR / "prod.json",
}


class StrictnessError(ValueError):
    """The stack's declaration cannot be read; the message says where and how to fix it."""


def config_file(environment: Environment) -> Path:
    return CONFIG_FILES[environment]


def of_records(records: Sequence[Record]) -> Environment:
    return declared(Resource(r.type, r.name, r.props, r.urn) for r in records)


def of_stack(stack: str) -> Environment:
    """The environment `Pulumi.<stack>.yaml` declares (production when it declares none)."""
    import yaml  # noqa: PLC0415 - only the --stack path needs the program's loader

    from infra.settings import (  # noqa: PLC0415
        NAMESPACE,
        REPO_ROOT,
        SettingsError,
        load_stack_file,
        quoted,
        shown_key,
    )

    try:
        config = load_stack_file(stack, STACK_DIR or REPO_ROOT)
    except SettingsError as exc:
        # One line: the command line tools print one line per error. A problem that names the
        # stack or its file already says where; the others are about the file's text. The
        # file's name holds the stack name as given: cut as the loader cuts it.
        text = "; ".join(exc.problems)
        name = f"Pulumi.{stack}.yaml"
        named = text.startswith((repr(stack), quoted(stack), name))
        raise StrictnessError(text if named else f"{shown_key(name)}: {text}") from exc
    except yaml.YAMLError as exc:
        raise StrictnessError(
            f"Pulumi.{stack}.yaml is not valid YAML ({_first_line(exc)}); fix the YAML"
        ) from exc
    except UnicodeDecodeError as exc:
        raise StrictnessError(f"Pulumi.{stack}.yaml is not UTF-8 text; save it as UTF-8") from exc
    except OSError as exc:
        raise StrictnessError(
            f"cannot read Pulumi.{stack}.yaml: {exc.strerror or exc}; make it a readable file"
        ) from exc
    value = config.get(f"{NAMESPACE}:environment")
    return (parse(value) if isinstance(value, str) else None) or Environment.PRODUCTION


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(
        prog="python -m policies.strictness",
        description="Print the policy config file for the environment a stack declares.",
    )
    parser.add_argument("--stack", required=True, help="the stack (Pulumi.<S>.yaml)")
    args = parser.parse_args(argv)
    try:
        say(str(config_file(of_stack(args.stack))))
    except StrictnessError as exc:
        parser.report(str(exc))
        return 2
    return 0


if __name__ == "__main__":
    exit_with(main)
