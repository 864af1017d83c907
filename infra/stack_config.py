"""`python -m infra.stack_config (get|set) --stack S KEY [VALUE]`: read or set one setting in
`Pulumi.<S>.yaml`, the file both deploy paths read (`pulumi up` through the engine's config,
the local applier through infra/settings.py `load_stack_file`).

`set` edits the one `secure-redis:KEY: value` line (or adds it under `config:`) and keeps every
other line and comment as it is, like `pulumi config set` does for plain values; it refuses a
key that is not a setting and a value the settings would refuse, before writing anything.
`get` prints the value the program would use (the profile default when the file has none).
Exit codes: 0 done, 2 unusable stack, key or value.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import yaml

from infra.applier.deployed import (
    RAISED_ONLY_SETTINGS,
    deployed_generation,
    recorded_key_prefix,
)
from infra.cli import OneLineParser, exit_with, project_dir, say
from infra.profiles import PROFILES, SETTING_KEYS
from infra.settings import (
    NAMESPACE,
    REPO_ROOT,
    WHOLE_NUMBER_SETTINGS,
    SettingsError,
    load_settings,
    load_stack_file,
    quoted,
    reads_as_itself,
    shown_key,
)

_LINE: Final = re.compile(r"^(?P<indent>\s+)(?P<key>[A-Za-z0-9_.-]+:[A-Za-z0-9_.-]+):(?P<rest>.*)$")


class StackConfigError(ValueError):
    """The setting cannot be read or written; the message says what to fix."""


def yaml_scalar(value: str) -> str:
    """`value` as YAML that reads back as itself: plain when it does (`160`, `0.8`, `1.3`,
    `development`), else in YAML's single quotes. Written plain, the
    default key prefix `cache:` made the file unreadable (`mapping values are not allowed`), and
    `yes`, `#x` or `[a]` would read back as another value."""
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        parsed = None
    plain = isinstance(parsed, str | int | float) and not isinstance(parsed, bool)
    # Plain only when every YAML reader reads it back as itself (infra/settings.py,
    # reads_as_itself): `0o17` or `1_000` is the text to YAML 1.1 and a number to YAML 1.2.
    same = str(parsed) == value and reads_as_itself(value)
    if value and plain and same and "\n" not in value:
        return value
    return "'" + value.replace("'", "''") + "'"


def set_value(text: str, key: str, value: str) -> str:
    """`text` (a Pulumi.<stack>.yaml) with `secure-redis:<key>` set to `value`."""
    full = f"{NAMESPACE}:{key}"
    value = yaml_scalar(value)
    lines = text.splitlines(keepends=True)
    indent = "  "
    config_at: int | None = None
    for i, line in enumerate(lines):
        if line.rstrip("\n") == "config:":
            config_at = i
            continue
        match = _LINE.match(line.rstrip("\n"))
        if match and config_at is not None:
            indent = match["indent"]
            if match["key"] == full:
                lines[i] = f"{indent}{full}: {value}\n"
                return "".join(lines)
    if config_at is None:
        prefix = "" if not text or text.endswith("\n") else "\n"
        return f"{text}{prefix}config:\n{indent}{full}: {value}\n"
    end = config_at + 1
    while end < len(lines) and (lines[end].startswith((" ", "\t")) or not lines[end].strip()):
        end += 1
    while end > config_at + 1 and not lines[end - 1].strip():
        end -= 1
    lines.insert(end, f"{indent}{full}: {value}\n")
    return "".join(lines)


def _require_setting(key: str) -> None:
    # get and set name the keys alike: a typo is fixed from the list, not from the source.
    if key not in SETTING_KEYS:
        raise StackConfigError(
            f"{shown_key(f'{NAMESPACE}:{key}')} is not a setting (known: "
            f"{', '.join(sorted(SETTING_KEYS))})"
        )


def set_setting(stack: str, key: str, value: str, root: Path = REPO_ROOT) -> Path:
    """Validate, then write atomically. Raises StackConfigError or SettingsError."""
    _require_setting(key)
    if not value.isprintable():
        # `$'5\n'` passed (int() strips it) and was written as a quoted scalar over two
        # lines, of which the next set of the key replaced the first: the file was then not
        # YAML. No setting holds a line break, a tab or an escape sequence.
        raise StackConfigError(
            f"the value {quoted(value)} holds a line break or another control character; no "
            "setting takes one: give the value on one line (nothing was changed)"
        )
    _refuse_during_rotation(stack, root)
    current = load_stack_file(stack, root)
    path = root / f"Pulumi.{stack}.yaml"
    # The settings loader is the judge of the new value, before the file changes.
    settings = load_settings(stack, {**current, f"{NAMESPACE}:{key}": value}, source=path.name)
    _refuse_against_deployed(stack, key, getattr(settings, _field(key)), root)
    text = set_value(path.read_text(encoding="utf-8"), key, value)
    written: str | None = None
    try:
        with tempfile.NamedTemporaryFile(
            "w", dir=path.parent, prefix=f".{path.name}.", delete=False, encoding="utf-8"
        ) as tmp:
            written = tmp.name
            tmp.write(text)
        os.chmod(tmp.name, path.stat().st_mode & 0o777)
        os.replace(tmp.name, path)
    except OSError as exc:
        # A full file system or a directory the user may not write ended in a traceback.
        if written is not None:
            with contextlib.suppress(OSError):
                os.unlink(written)
        raise StackConfigError(
            f"{path.name} could not be written ({exc.strerror}) in {path.parent}; nothing was "
            "changed: free space there, or run set as an account that may write the "
            "directory"
        ) from None
    return path


def _refuse_during_rotation(stack: str, root: Path) -> None:
    """A StackConfigError while a scripts/rotate.sh of the stack runs (not its own settings:
    it hands its lock to them). Its next up would apply the change: during a data-key pass an
    up by hand took a new `redisMaxmemoryMb`, restarting Redis, and left the rotation's retire
    undone (s61, 2026-12-04: docs/day2.md, "Two rotations, or an up, at once"). An `up`
    running is no reason: it read the file already, and the next one applies the change."""
    from infra.applier.state import StateStore  # noqa: PLC0415 - set only

    busy = StateStore(root, stack).busy("`python -m infra.stack_config set`", rotation_only=True)
    if busy is not None:
        raise StackConfigError(busy)


def _refuse_against_deployed(stack: str, key: str, value: object, root: Path) -> None:
    """A StackConfigError for a value the deployed stack cannot take, read from this
    checkout's applier state: a generation below the one it runs with (accepted, every later
    up refused it or started a rotation unasked), or another keyPrefix (its up made every
    cached entry unreachable, and no data-key rotation could reach them any more to re-seal:
    walkthrough of 2026-12-06). A state this process cannot open (sealed with a passphrase not
    given) or none (a stack `pulumi up` deploys) leaves the judgement to the up."""
    if key not in RAISED_ONLY_SETTINGS and key != "keyPrefix":
        return
    from infra.applier.state import StateError, StateStore  # noqa: PLC0415 - these keys only

    try:
        state = StateStore(root, stack).load()
    except (StateError, OSError):
        return
    if state is None:
        return
    if key == "keyPrefix":
        deployed_prefix = recorded_key_prefix(state, stack)
        if deployed_prefix is not None and value != deployed_prefix:
            raise StackConfigError(
                f"stack {stack} runs with {NAMESPACE}:keyPrefix {quoted(deployed_prefix)}: "
                "another prefix makes every cached entry unreachable (the app's ACL user may "
                "touch only its own prefix) and leaves them, sealed, in Redis's files, where no "
                f"data-key rotation reaches them; nothing was changed. To start over with "
                f"{quoted(str(value))}, remove the stack (scripts/teardown.sh {stack}, which "
                "deletes its data), set it, and deploy again"
            )
        return
    deployed = deployed_generation(state, key)
    if deployed is not None and isinstance(value, int) and value < deployed:
        raise StackConfigError(
            f"{NAMESPACE}:{key} {value} is below the {key} stack {stack} runs with "
            f"({deployed}): it is only ever raised, and a lower one would "
            + (
                "be refused by every up: a retired key does not come back"
                if key == "dataKeyGeneration"
                else "start a rotation no one asked for"
            )
            + f"; nothing was changed. Rotations raise it themselves: scripts/rotate.sh {stack} "
            "KIND"
        )


def get_setting(stack: str, key: str, root: Path = REPO_ROOT) -> str:
    _require_setting(key)
    config = load_stack_file(stack, root)
    settings = load_settings(stack, config)
    if key in WHOLE_NUMBER_SETTINGS:
        # The number as the program reads it (infra/settings.py reads the text with int()):
        # `'010'` is 10 to the program, and printed as written scripts/rotate.sh refused to
        # raise it (inputs16b). getattr: the settings' field is the key in snake case.
        return str(getattr(settings, _field(key)))
    value = config.get(f"{NAMESPACE}:{key}", PROFILES[settings.environment].get(key))
    return str(value)


def _field(key: str) -> str:
    """The StackSettings field that holds setting `key` (`dataKeyGeneration` ->
    `data_key_generation`)."""
    return re.sub(r"(?<=[a-z])([A-Z])", r"_\1", key).lower()


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(
        prog="python -m infra.stack_config",
        description="Read or change one secure-redis: setting in Pulumi.<stack>.yaml without "
        "the Pulumi CLI, as `pulumi config get/set` would. get prints the value the program "
        "uses (the profile's default when the file has none); set refuses a value the "
        "program would refuse and leaves the file as it was. An up applies a change.",
    )
    parser.add_argument("action", choices=("get", "set"))
    parser.add_argument("--stack", required=True, help="stack name, e.g. dev or prod")
    parser.add_argument(
        "--project-dir",
        type=project_dir,
        default=REPO_ROOT,
        help="where Pulumi.<stack>.yaml is (default: the repository)",
    )
    parser.add_argument("key", help="the setting without its namespace, e.g. dataKeyGeneration")
    parser.add_argument("value", nargs="?", help="the new value (set only)")
    args = parser.parse_args(argv)
    try:
        if args.action == "get":
            say(get_setting(args.stack, args.key, args.project_dir))
        elif args.value is None:
            parser.error("set needs a value")
        else:
            path = set_setting(args.stack, args.key, args.value, args.project_dir)
            say(f"stack_config: {path.name}: {NAMESPACE}:{args.key} = {args.value}")
    except (StackConfigError, SettingsError) as exc:
        print(f"stack_config: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    exit_with(main)


__all__ = ["StackConfigError", "get_setting", "main", "set_setting", "set_value"]
