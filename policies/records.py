"""The resources `python -m policies.check` sends to the pack, and how it reads them.

A record is what `python -m infra.preview --json` prints: `{"type","name","props"}` plus the
optional `urn` and `options`. Anything unusable is a `RecordError` naming the record and the
fix; the checker turns it into exit code 2, never into a pass.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from infra.proppath import PropPath
from infra.pulumi_names import is_urn, make_urn, urn_parts
from policies.input_file import InputFileError, parse_json, read_text

# A stack export of thousands of resources is a few MiB; past this it is not a stack's records.
MAX_RESOURCES_BYTES: Final = 64 << 20
# Pulumi's stack and project names: letters, digits, "-", "_", "." (no "/", no "::").
_NAME: re.Pattern[str] = re.compile(r"^[A-Za-z0-9_.-]+$")


class RecordError(ValueError):
    """The input cannot be evaluated; the message says where and how to fix it."""


@dataclass(frozen=True)
class Record:
    type: str
    name: str
    props: Mapping[str, Any]
    urn: str
    options: Mapping[str, Any] = field(default_factory=dict)
    secret_paths: tuple[PropPath, ...] = ()
    """Leaves that are secret; sent wrapped as secrets, as the engine sends them."""

    @property
    def stack(self) -> str:
        return urn_parts(self.urn)[0]

    @property
    def project(self) -> str:
        return urn_parts(self.urn)[1]


def load_records(path: Path, *, stack: str | None, project: str) -> list[Record]:
    """Read a JSON list of records; records without a URN get one in `stack`/`project`."""
    try:
        raw = read_text(path, "resources file", MAX_RESOURCES_BYTES)
    except InputFileError as exc:
        raise RecordError(str(exc)) from None
    try:
        data = parse_json(raw, path, "resources file")
    except InputFileError as exc:
        raise RecordError(str(exc)) from None
    except json.JSONDecodeError as exc:
        raise RecordError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            f"pass the output of `python -m infra.preview --stack S --json`"
        ) from exc
    except RecursionError as exc:
        raise RecordError(
            f"{path} nests lists or objects too deeply to read; pass the output of "
            f"`python -m infra.preview --stack S --json`"
        ) from exc
    return parse_records(data, source=str(path), stack=stack, project=project)


def parse_records(data: Any, *, source: str, stack: str | None, project: str) -> list[Record]:
    for option, value in (("--stack-name", stack), ("--project", project)):
        if value is not None and (not _NAME.match(value) or value in (".", "..")):
            raise RecordError(
                f'{option} {value!r} is not a Pulumi name: letters, digits, "-", "_" and '
                f'"." only, not "." or ".." alone'
            )
    if not isinstance(data, list):
        raise RecordError(f"{source} must hold a JSON list of resource records, got {_kind(data)}")
    if not data:
        raise RecordError(f"{source} holds no resources; there is nothing to check")
    records: list[Record] = []
    seen: set[str] = set()
    for index, item in enumerate(data):
        where = f"{source}: record {index}"
        if not isinstance(item, dict):
            raise RecordError(f"{where} must be a JSON object with type, name and props")
        type_, name = _identity(item, where)
        props = item.get("props", {})
        shown = _shown(name)
        if not isinstance(props, dict):
            raise RecordError(f'{where} ({shown}): "props" must be a JSON object')
        _check_values(props, f"{where} ({shown}): props")
        _check_camel_case(type_, props, f"{where} ({shown})")
        options = item.get("options") or {}
        if not isinstance(options, dict):
            raise RecordError(f'{where} ({shown}): "options" must be a JSON object')
        _check_options(options, f"{where} ({shown}): options")
        _check_values(options, f"{where} ({shown}): options")
        urn = item.get("urn")
        if not urn:
            if not stack:
                raise RecordError(
                    f'{where} ({shown}) has no "urn", so its stack is unknown and stack '
                    f"isolation cannot be judged; pass --stack-name S (the stack it belongs to)"
                )
            urn = make_urn(stack, project, type_, name)
        _check_urn(urn, f"{where} ({shown})")
        _check_text(str(urn), f'{where} ({shown}): "urn"')
        if urn in seen:
            raise RecordError(
                f"{where}: a second resource {_shown(type_)} named {name!r} (same URN)"
            )
        seen.add(urn)
        records.append(Record(type_, name, props, urn, options))
    _check_one_stack(records, source)
    return records


def _check_camel_case(type_: str, props: Mapping[str, Any], where: str) -> None:
    """pulumi-docker's property names are camelCase on the wire (`networkMode`); a record
    written with the SDK's snake_case (`network_mode`) would be read as if it set nothing."""
    if not type_.startswith("docker:"):
        return
    snake = sorted(k for k in props if "_" in k.strip("_"))
    if snake:
        named = ", ".join(f"{k} ({re.sub(r'_+([a-z0-9])', lambda m: m[1].upper(), k)})"
                          for k in snake)  # fmt: skip
        raise RecordError(
            f"{where}: props {named} are snake_case; the engine hands the pack camelCase "
            f"names, as `pulumi stack export` and `infra.preview --json` write them, and the "
            f"pack reads only those: rename them"
        )


def _check_one_stack(records: Sequence[Record], source: str) -> None:
    for what, values in (("stack", {r.stack for r in records}),
                         ("project", {r.project for r in records})):  # fmt: skip
        if len(values) > 1:
            raise RecordError(
                f"{source} holds resources of more than one {what} ({', '.join(sorted(values))}"
                f"); the pack judges one stack of one project at a time (its isolation rules "
                f"compare the stack with itself): check each in a file of its own"
            )


def _check_options(options: Mapping[str, Any], where: str) -> None:
    """The resource options the analyzer sends (policies/analyzer.py) in the engine's types: a
    string or an object where a list belongs would be read letter by letter or key by key."""
    for key, what in (
        ("additionalSecretOutputs", "property names"),
        ("ignoreChanges", "property names"),
        ("dependencies", "URNs"),
    ):
        value = options.get(key)
        if value is not None and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            raise RecordError(f"{where}.{key} must be a list of {what}")
    for key in ("protect", "deleteBeforeReplace"):
        if options.get(key) is not None and not isinstance(options[key], bool):
            raise RecordError(f"{where}.{key} must be true or false")
    if options.get("parent") is not None and not isinstance(options["parent"], str):
        raise RecordError(f"{where}.parent must be the parent's URN")
    by_property = options.get("propertyDependencies")
    if by_property is not None and not (
        isinstance(by_property, dict)
        and all(
            isinstance(urns, list) and all(isinstance(u, str) for u in urns)
            for urns in by_property.values()
        )
    ):
        raise RecordError(f"{where}.propertyDependencies must map property names to lists of URNs")


# Deeper than any pulumi-docker property; protobuf (the pack's wire format) refuses 100 levels.
MAX_DEPTH: Final = 64


def _check_values(value: Any, where: str, depth: int = 0) -> None:
    """Python's JSON reader turns NaN, Infinity and numbers beyond 1.8e308 into floats that no
    protobuf Struct carries, and nesting has no bound there: say where, instead of failing in
    the pack or in a recursion."""
    if depth > MAX_DEPTH:
        raise RecordError(
            f"{where} nests more than {MAX_DEPTH} levels of lists and objects; no resource "
            f"property does, so check how the file was generated"
        )
    if (isinstance(value, float) and not math.isfinite(value)) or (
        isinstance(value, int) and not isinstance(value, bool) and not _fits_a_double(value)
    ):
        raise RecordError(
            f"{where} is not a finite number (NaN, Infinity or beyond 1.8e308 are not JSON "
            f"numbers the engine sends); write the value the program declares"
        )
    if isinstance(value, str):
        _check_text(value, where)
    if isinstance(value, dict):
        for key, item in value.items():
            _check_text(str(key), f"{where} (a key)")
            _check_values(item, f"{where}.{_shown(str(key))}", depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_values(item, f"{where}[{index}]", depth + 1)


def _fits_a_double(value: int) -> bool:
    """Protobuf carries every number as a double: a longer integer literal has none."""
    try:
        float(value)
    except OverflowError:
        return False
    return True


def _check_text(value: str, where: str) -> None:
    """JSON's \\ud800-style escapes can spell half a character, which is not text: no UTF-8
    (the pack's wire format) can carry it. Said without the value, which may be a secret."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise RecordError(
            f"{where} holds a lone surrogate escape (\\ud800-\\udfff without its pair), which "
            f"is not text; write the characters the program declares"
        ) from None


def _identity(item: dict[str, Any], where: str) -> tuple[str, str]:
    """A record's type and name, both non-empty strings."""
    type_, name = item.get("type"), item.get("name")
    if type_ is not None and not isinstance(type_, str):
        raise RecordError(f'{where}: "type" must be a JSON string, got {_kind(type_)}')
    if not type_:
        raise RecordError(f"{where} has no \"type\"; add the resource type token, e.g. "
                          f"\"docker:index/container:Container\"")  # fmt: skip
    if name is not None and not isinstance(name, str):
        raise RecordError(
            f'{where} ({_shown(type_)}): "name" must be a JSON string, got {_kind(name)}'
        )
    if not name:
        raise RecordError(f'{where} ({_shown(type_)}) has no "name"; add its logical name')
    _check_text(type_, f'{where}: "type"')
    _check_text(name, f'{where}: "name"')
    return type_, name


def _kind(value: object) -> str:
    """What a JSON value is, in JSON's words (never the value: it may be a secret)."""
    if isinstance(value, bool):
        return "true or false"
    kinds = {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def _shown(value: str) -> str:
    """A record's own text in a one-line message: as it is when printable, else quoted (a
    newline in a type or name must not split the message)."""
    return value if value.isprintable() else repr(value)


def _check_urn(urn: object, where: str) -> None:
    if not is_urn(urn):
        raise RecordError(
            f'{where}: "urn" must look like urn:pulumi:<stack>::<project>::<type>::<name>'
        )
    stack, project = urn_parts(urn)
    if not (_NAME.match(stack) and _NAME.match(project)) or stack in (".", ".."):
        raise RecordError(
            f'{where}: the stack and project in "urn" may hold only letters, digits, "-", "_" '
            f'and "."'
        )


def from_rendered(resources: Sequence[Any]) -> list[Record]:
    """Records from `infra.render` resources: real values, with their secret leaves marked."""
    return [
        Record(r.type, r.name, r.props, r.urn, dict(r.options), tuple(r.secret_paths))
        for r in resources
    ]
