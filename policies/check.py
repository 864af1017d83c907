"""`python -m policies.check (--stack S | --resources FILE) [--json]`: the pack, without the CLI.

Evaluates the real policy pack offline, through its analyzer gRPC interface as `pulumi preview
--policy-pack policies` would (see `policies/analyzer.py`), against a stack rendered by
`infra.render` (real values, secrets marked secret) or a JSON list of resource records.

Prints one violation per line (a table, or JSON lines with `policy`, `resource`, `message` and
`level`). Exit status: 0 no mandatory violation, 1 at least one, 2 unusable input or a pack
that failed; never a traceback. Policy config: `--config FILE`, else the config of the
environment the stack declares (`policies/strictness.py`; production when it declares none),
never a file named after the stack. Records without a `urn` need `--stack-name S`: stack
isolation cannot be judged without it.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, TextIO

from infra.cli import OneLineParser, exit_with, printable, reader_gone
from policies import strictness
from policies.analyzer import (
    ConfigError,
    Finding,
    PackError,
    PackServer,
    PolicyInfo,
    resolve_config,
)
from policies.input_file import InputFileError, parse_json, read_text
from policies.records import Record, RecordError, from_rendered, load_records
from policies.rules._model import UNREADABLE, kind_of, unreadable_message
from policies.strictness import StrictnessError

EXIT_OK: Final = 0
EXIT_VIOLATIONS: Final = 1
EXIT_UNUSABLE: Final = 2
MAX_CONFIG_BYTES: Final = 1 << 20  # a policy config names each policy at most once: a few KiB


class UsageError(ValueError):
    """Bad input: printed as one line, exit status 2."""


def _parser() -> OneLineParser:
    parser = OneLineParser(
        prog="python -m policies.check",
        description="Evaluate the secure-redis policy pack offline (no Pulumi CLI needed).",
        epilog="exit status: 0 no mandatory violation, 1 at least one, 2 unusable input or "
        "options (one line on stderr) or a pack that failed",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--stack", help="render this stack of the project (Pulumi.<S>.yaml)")
    source.add_argument(
        "--resources", type=Path, help="a JSON list of {type, name, props[, urn, options]}"
    )
    parser.add_argument("--json", action="store_true", help="print JSON lines")
    parser.add_argument(
        "--config", type=Path, help="policy config (as --policy-pack-config); default: the "
        "config of the environment the stack declares (policies/config/<environment>.json)"
    )  # fmt: skip
    parser.add_argument(
        "--stack-name", help="the stack of records that carry no urn (required for those)"
    )
    parser.add_argument(
        "--project", default="project",
        help="project of records that carry no urn (default: %(default)s)",
    )  # fmt: skip
    return parser


def _rendered(stack: str) -> list[Record]:
    # Imported here: `--resources` must work without the infra program.
    from infra.images import BuildContextChanging  # noqa: PLC0415
    from infra.mock_engine import RenderError  # noqa: PLC0415
    from infra.render import render_stack  # noqa: PLC0415
    from infra.settings import SettingsError  # noqa: PLC0415

    if not stack.strip():
        raise UsageError("--stack needs a stack name, e.g. --stack dev (Pulumi.dev.yaml)")
    strictness.of_stack(stack)  # a stack file that cannot be read stops here, with one line
    try:
        rendered = render_stack(stack)
    except SettingsError as exc:
        raise UsageError(str(exc)) from exc
    except (RenderError, BuildContextChanging) as exc:
        raise UsageError(f"stack {stack!r} could not be rendered: {exc}") from exc
    return from_rendered(rendered.resources)


def lowered_mandatory(policies: Sequence[PolicyInfo], config: Mapping[str, Any]) -> list[str]:
    """The pack's mandatory policies that `config` lowers to advisory or disabled (as
    `pulumi --policy-pack-config` may), decided as the pack is then configured
    (analyzer.resolve_config): sorted, or ["all"] when it lowers every one of them."""
    resolved = resolve_config(policies, config)
    mandatory = [p.name for p in policies if p.enforcement == "mandatory"]
    lowered = sorted(n for n in mandatory if resolved[n][0] in ("advisory", "disabled"))
    return ["all"] if lowered and len(lowered) == len(mandatory) else lowered


def _load_config(path: Path | None, default: Path) -> tuple[dict[str, Any], Path | None]:
    if path is None:
        if not default.is_file():
            return {}, None
        path = default
    try:
        data = parse_json(read_text(path, "policy config", MAX_CONFIG_BYTES), path, "policy config")
    except InputFileError as exc:
        raise UsageError(str(exc)) from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"policy config {path} is not valid JSON: {exc}") from exc
    except RecursionError:
        raise UsageError(
            f"policy config {path} nests lists or objects too deeply to read; a policy config "
            f"is an object of policy names (policies/config/prod.json)"
        ) from None
    if not isinstance(data, dict):
        raise UsageError(f"policy config {path} must be a JSON object of policy names")
    return data, path


def evaluate(
    server: PackServer, records: Sequence[Record], config: dict[str, Any]
) -> list[Finding]:
    """Configure the running pack for this stack and analyse it."""
    server.configure(config)
    first = records[0]
    server.configure_stack(first.stack, first.project)
    return server.analyze(records)


def _in_groups(
    findings: Sequence[Finding], key_of: Callable[[Finding], Hashable | None]
) -> list[list[Finding]]:
    """The findings in order, those `key_of` gives one key gathered at the first one's place;
    a finding whose key is None stays alone."""
    groups: dict[Hashable, list[Finding]] = {}
    order: list[list[Finding]] = []
    for finding in findings:
        key = key_of(finding)
        if key is None:
            order.append([finding])
        elif key in groups:
            groups[key].append(finding)
        else:
            groups[key] = [finding]
            order.append(groups[key])
    return order


def _unreadable(finding: Finding) -> tuple[str, str] | None:
    """(subject, problem) of a "cannot read it" violation: "Container cache", "command must
    be a list, not a string"."""
    match = UNREADABLE.fullmatch(finding.message)
    if match is None or ": " not in match["problem"]:
        return None
    subject, problem = match["problem"].split(": ", 1)
    return subject, problem


def _unreadable_key(finding: Finding) -> tuple[str, str] | None:
    read = _unreadable(finding)
    return None if read is None else (finding.urn or finding.resource, read[1])


def one_per_unreadable_property(findings: Sequence[Finding]) -> list[Finding]:
    """The findings with every "cannot read it" violation of one property of one resource
    merged into one, naming the policies it blocks (mandatory if any is).

    Every rule that needs a property fails closed on its own when it cannot read it, as it must
    under the engine (a config may switch any one off); a reader wants the property once.
    """
    result = []
    for group in _in_groups(findings, _unreadable_key):
        first = group[0]
        if len(group) == 1:
            result.append(first)
            continue
        read = [r for r in map(_unreadable, group) if r is not None]
        subject = max((s for s, _ in read), key=len)  # the label that also gives the name
        names = [f.policy for f in group]
        levels = {f.level for f in group}
        who = f"so {len(names)} policies ({', '.join(names)}) cannot"
        result.append(
            Finding(
                policy=f"{len(names)} policies",
                level="mandatory" if "mandatory" in levels else first.level,
                urn=first.urn,
                resource=first.resource,
                message=unreadable_message(f"{subject}: {read[0][1]}", who),
            )
        )
    return result


def table_counts(findings: Sequence[Finding], shown: Sequence[Finding]) -> str:
    """The header's counts, of the rows the table shows; when a property the pack cannot
    read (or a value unknown at preview) merged several policies' findings into one row, also
    how many findings they hold
    (`--json` prints those, one line per policy)."""
    mandatory = sum(f.level == "mandatory" for f in shown)
    counts = f"{mandatory} mandatory, {len(shown) - mandatory} advisory"
    if len(shown) == len(findings):
        return counts
    held = sum(f.level == "mandatory" for f in findings)
    return (
        f"{counts} rows ({held} mandatory, {len(findings) - held} advisory policy findings: "
        f"a property the pack cannot read, or a value unknown at preview, is one row naming "
        f"every policy it holds back)"
    )


# pulumi_policy's message for a policy that read a value unknown at preview (its proxy.py).
_DEFERRED: Final = re.compile(
    r"can't run policy '(?P<policy>[^']+)' from policy pack '[^']*' during preview: "
    r"\w+ value at \.(?P<path>\S*) can't be known during preview"
)
# pulumi_policy's sentinels for values unknown at preview (proxy.py), as records carry them.
_UNKNOWN_SENTINELS: Final = frozenset(
    {"1c4a061d-8072-4f0a-a4cb-0ff528b18fe7", "3eeb2bf0-c639-47a8-9e75-3b44932eb421",
     "04da6b54-80e4-46f7-96ec-b56ff0331ba9", "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",
     "030794c1-ac77-496b-92df-f27374a8bd58", "e48ece36-62e2-4504-bad9-02848725956a",
     "dd056dcd-154b-4c76-9bd3-c8f88648b5ff"}
)  # fmt: skip


def _unknown_at(props: Mapping[str, Any], path: str) -> bool:
    value: Any = props
    for key in path.split(".") if path else []:
        if isinstance(value, Mapping) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return False
    return isinstance(value, str) and value in _UNKNOWN_SENTINELS


def _deferred_path(finding: Finding) -> str | None:
    match = _DEFERRED.fullmatch(finding.message)
    return None if match is None else match["path"]


def one_per_unknown_value(findings: Sequence[Finding], records: Sequence[Record]) -> list[Finding]:
    """The findings with every "can't run policy ... during preview" of one unknown property
    merged into one row that names the resources holding it (pulumi_policy's message names
    only the path, and a stack policy's names no resource) and every policy it holds back."""
    result = []
    for group in _in_groups(findings, _deferred_path):
        path = _deferred_path(group[0])
        holders = [r for r in records if path is not None and _unknown_at(r.props, path)]
        if not holders:
            result.extend(group)
            continue
        names = [f.policy for f in group]
        held = f"{len(names)} policies ({', '.join(names)})" if len(names) > 1 else names[0]
        result.append(
            Finding(
                policy=f"{len(names)} policies" if len(names) > 1 else names[0],
                level="advisory",
                urn=holders[0].urn,
                resource=", ".join(r.name for r in holders),
                message=(
                    f"{', '.join(f'{kind_of(r.type)} {r.name}' for r in holders)}: {path} is "
                    f"unknown during this preview (the engine learns it once it creates what it "
                    f"comes from), so {held} cannot run now; they run at `pulumi up`, where "
                    f"every value is known."
                ),
            )
        )
    return result


def table_rows(findings: Sequence[Finding], records: Sequence[Record]) -> list[Finding]:
    """The rows of policies.check's table: one per property the pack cannot read and one per
    value unknown at preview, however many policies each holds back."""
    return one_per_unknown_value(one_per_unreadable_property(findings), records)


def _print_table(
    findings: Sequence[Finding], records: Sequence[Record], source: str, out: TextIO
) -> None:
    shown = table_rows(findings, records)
    print(printable(f"{source}: {table_counts(findings, shown)}"), file=out)
    if not findings:
        print("no violations", file=out)
        return
    rows: list[tuple[str, ...]] = [("LEVEL", "POLICY", "RESOURCE", "MESSAGE")]
    # A record's name is any text its JSON string holds: escaped, never sent to the terminal
    # raw (`--json` escapes it as JSON does).
    rows += [tuple(printable(c) for c in (f.level, f.policy, f.resource, f.message)) for f in shown]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=True)), row[3], file=out)


def _print_json(findings: Sequence[Finding], out: TextIO) -> None:
    for f in findings:
        line = {"policy": f.policy, "resource": f.resource, "message": f.message, "level": f.level}
        print(json.dumps(line, sort_keys=True), file=out)


def run(
    argv: Sequence[str] | None = None,
    out: TextIO = sys.stdout,
    pack: PackServer | None = None,
) -> int:
    """The command; `pack`: a pack already running to use (and leave running) instead of
    starting one, as the tests do to start one per session rather than one per call."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.stack is not None:
            records = _rendered(args.stack)
            environment = strictness.of_stack(args.stack)
        else:
            records = load_records(args.resources, stack=args.stack_name, project=args.project)
            environment = strictness.of_records(records)
        stack = records[0].stack
        config, config_path = _load_config(args.config, strictness.config_file(environment))
        env = dict(os.environ, PULUMI_PROJECT=records[0].project, PULUMI_STACK=stack,
                   PULUMI_DRY_RUN="true")  # fmt: skip
        with _serving(pack, env) as server:
            if lowered := lowered_mandatory(server.policies(), config):
                # Pulumi lets a policy config do this; the environments' own configs never do.
                parser.report(
                    f"policy config {config_path} lowers mandatory policies "
                    f"({', '.join(lowered)}): this run does not enforce them",
                    level="warning",
                )
            findings = evaluate(server, records, config)
    except (UsageError, RecordError, ConfigError, StrictnessError, PackError) as exc:
        parser.report(str(exc))
        return EXIT_UNUSABLE
    except Exception as exc:
        parser.report(
            f"the policy checker could not process this input ({type(exc).__name__}); "
            f"check the file against `python -m infra.preview --stack dev --json`"
        )
        return EXIT_UNUSABLE
    mandatory = [f for f in findings if f.level == "mandatory"]
    try:
        if args.json:
            _print_json(findings, out)
        else:
            source = f"stack {args.stack}" if args.stack else str(args.resources)
            if args.config is not None:
                config_note = f"config {config_path}"  # the user's, whatever the environment
            elif config_path:
                config_note = f"{environment.value} config {config_path}"
            else:
                config_note = "pack defaults"
            subject = (
                f"policy pack secure-redis on {source} ({len(records)} resources, {config_note})"
            )
            _print_table(findings, records, subject, out)
    except BrokenPipeError:  # e.g. `| head`: the reader left; the verdict stands
        reader_gone()
    return EXIT_VIOLATIONS if mandatory else EXIT_OK


@contextmanager
def _serving(pack: PackServer | None, env: Mapping[str, str]) -> Iterator[PackServer]:
    if pack is not None:
        yield pack
        return
    with PackServer(env=env) as server:
        yield server


if __name__ == "__main__":
    exit_with(run)
