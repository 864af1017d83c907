"""Typed, validated stack settings: read once, before any resource is declared.

`load_settings(stack, config)` is pure: it takes the flat Pulumi config map (keys namespaced
`secure-redis:<key>`, values as the engine hands them, i.e. strings; `load_stack_file` reads
`Pulumi.<stack>.yaml` into the same strings, or refuses a value YAML readers take differently).
`settings_from_pulumi()` feeds it the engine's config. Every problem is collected and reported
at once, each naming the key and the fix.
"""

from __future__ import annotations

import re
import reprlib
import string
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import yaml

from infra.key_algorithms import KeyAlgorithm
from infra.profiles import (
    LEAF_VALIDITY_LIMIT,
    PASSWORD_FLOOR,
    PROFILES,
    REQUIRED_TLS_MIN,
    SETTING_KEYS,
    Environment,
)
from infra.redis_acl import AclError, render_acl_file
from infra.redis_conf import min_maxmemory_mb, min_memory_limit_mb
from infra.runtime_ids import MAX_SLOT, STACK_SLOTS

NAMESPACE: Final = "secure-redis"
# The settings that take a whole number (_Reader.integer checks it is one of these): the stack
# file's loader refuses one written as a fraction where it is written (_whole_number_problem).
WHOLE_NUMBER_SETTINGS: Final = frozenset(
    {
        "passwordLength",
        "redisPort",
        "redisMemoryMb",
        "redisMaxmemoryMb",
        "appMemoryMb",
        "appHostPort",
        "caValidityDays",
        "certValidityDays",
        "certRenewBeforeDays",
        "dataKeyGeneration",
        "dataKeyKeepPrevious",
        "certRenewalGeneration",
        "runtimeIdSlot",
        "caRolloverGeneration",
        "passwordRotationGeneration",
        "apiTokenRotationGeneration",
        "apiTokenRetireGeneration",
    }
)
# Namespaces a stack file may use besides the project's own: the docker provider's settings
# (docker:host, ...) and Pulumi's engine settings. Any other namespace is a typo.
FOREIGN_NAMESPACES: Final = frozenset({"docker", "pulumi"})
REPO_ROOT: Final = Path(__file__).resolve().parent.parent
# Short, lowercase, DNS-label-like: the stack name is part of every Docker object name.
# scripts/lib.sh (valid_stack_name) repeats this pattern for the shell scripts;
# tests/unit/test_infra_stack_files.py pins the two together.
STACK_NAME_PATTERN: Final = r"^[a-z0-9][a-z0-9-]{0,30}$"
_STACK_RE: Final = re.compile(STACK_NAME_PATTERN)
STACK_NAME_RULE: Final = (
    "1-31 lowercase letters, digits or '-', starting with a letter or digit "
    "(it is part of every Docker object name)"
)
_TLS_VERSIONS: Final = ("1.2", "1.3")
_T = TypeVar("_T")


class SettingsError(ValueError):
    """The stack configuration is unusable; `problems` holds one actionable line per fault."""

    def __init__(self, stack: str, source: str, problems: list[str]) -> None:
        self.problems = tuple(problems)
        # The file name holds the stack name as given: a newline or an escape sequence in it
        # must not reach the terminal raw, nor a 5000-character one whole.
        shown = shown_key(source)
        if len(self.problems) == 1:
            # One problem, one line; one that names its stack or file already says where.
            (problem,) = self.problems
            named = problem.startswith((repr(stack), quoted(stack), shown))
            super().__init__(problem if named else f"{shown}: {problem}")
            return
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"stack {stack!r}: invalid configuration in {shown}:\n{lines}")


@dataclass(frozen=True)
class StackSettings:
    """Everything the program needs to know about one stack. Nothing here is secret."""

    stack: str
    environment: Environment
    tls_min_version: str
    """"1.2" or "1.3"; the server accepts this version and every newer one."""
    password_length: int
    redis_port: int
    """The TLS port inside the backend network (there is no plaintext port)."""
    redis_memory_mb: int
    redis_maxmemory_mb: int
    redis_cpus: float
    app_memory_mb: int
    app_cpus: float
    app_host_port: int
    """Host port of the app's HTTP endpoint, bound to 127.0.0.1 only."""
    key_algorithm: KeyAlgorithm
    ca_validity_days: int
    cert_validity_days: int
    cert_renew_before_days: int
    key_prefix: str
    data_key_generation: int
    data_key_keep_previous: int
    cert_renewal_generation: int = 0
    runtime_id_slot: int = 0
    ca_rollover_generation: int = 0
    password_rotation_generation: int = 0
    api_token_rotation_generation: int = 0
    api_token_retire_generation: int = 0
    docker_host: str | None = field(default=None, repr=False)
    """May carry credentials (ssh://user@host); never printed."""

    @property
    def tls_protocols(self) -> tuple[str, ...]:
        return tuple(f"TLSv{v}" for v in _TLS_VERSIONS if v >= self.tls_min_version)


def load_settings(
    stack: str,
    config: Mapping[str, Any],
    *,
    source: str | None = None,
    secret_keys: Collection[str] = (),
) -> StackSettings:
    """Validate `config` (flat, namespaced keys) for `stack` and return its settings.

    `secret_keys`: the keys the engine marks secret (set with `--secret`); a bad value of one
    is never shown.

    Raises:
        SettingsError: listing every bad or missing key with the fix.
    """
    where = source or f"Pulumi.{stack}.yaml"
    problems: list[str] = []
    if not valid_stack_name(stack):
        problems.append(
            f"stack name {stack!r} must be {STACK_NAME_RULE}; pick e.g. 'dev' or 'prod'"
        )
    ours = {k[len(NAMESPACE) + 1 :]: v for k, v in config.items() if k.startswith(f"{NAMESPACE}:")}
    for key in sorted(config):
        namespace = key.split(":", 1)[0] if ":" in key else ""
        if namespace != NAMESPACE and namespace not in FOREIGN_NAMESPACES:
            problems.append(
                f"{_SHORT.repr(key)} is not in the {NAMESPACE}: namespace (nor docker: or "
                f"pulumi:); rename it to {shown_key(NAMESPACE + ':' + key.rsplit(':', 1)[-1])} "
                "or remove it"
            )
    for unknown in sorted(set(ours) - SETTING_KEYS):
        if unknown == NAMESPACE and isinstance(ours[unknown], Mapping):
            problems.append(
                f"{NAMESPACE}:{NAMESPACE} is not a setting: write each setting on its own line "
                f"as `{NAMESPACE}:<name>: <value>` (e.g. `{NAMESPACE}:passwordLength: 48`), "
                f"not indented under `{NAMESPACE}:`"
            )
            continue
        problems.append(
            f"{shown_key(NAMESPACE + ':' + unknown)} is not a setting; remove it (known: "
            f"{', '.join(sorted(SETTING_KEYS))})"
        )
    hidden = frozenset(
        k[len(NAMESPACE) + 1 :] for k in secret_keys if k.startswith(f"{NAMESPACE}:")
    )
    environment = _environment(
        _Shown(ours.get("environment"), "environment" in hidden), problems, stack
    )
    if environment is None:
        raise SettingsError(stack, where, problems)
    values = {**PROFILES[environment], **{k: v for k, v in ours.items() if k in SETTING_KEYS}}
    reader = _Reader(stack, values, problems, hidden)
    settings = StackSettings(
        stack=stack,
        environment=environment,
        tls_min_version=reader.read("tlsMinVersion", _tls_version),
        password_length=reader.integer("passwordLength", 16, 512),
        redis_port=reader.integer("redisPort", 1024, 65535),
        redis_memory_mb=reader.integer("redisMemoryMb", 32, 65536),
        # Below this one allocation (proto-max-bulk-len) would be too large a share of it.
        redis_maxmemory_mb=reader.integer("redisMaxmemoryMb", min_maxmemory_mb(), 65536),
        redis_cpus=reader.number("redisCpus", 0.05, 64.0),
        # 128 MiB: the interpreter plus the app's byte budgets (infra/components/app.py,
        # memory_budgets) and its connections' buffers fit below the limit.
        app_memory_mb=reader.integer("appMemoryMb", 128, 65536),
        app_cpus=reader.number("appCpus", 0.05, 64.0),
        app_host_port=reader.integer("appHostPort", 1024, 65535),
        key_algorithm=reader.read("keyAlgorithm", _key_algorithm),
        ca_validity_days=reader.integer("caValidityDays", 2, 3650),
        cert_validity_days=reader.integer("certValidityDays", 1, 825),
        cert_renew_before_days=reader.integer("certRenewBeforeDays", 1, 365),
        key_prefix=reader.read("keyPrefix", _key_prefix),
        data_key_generation=reader.integer("dataKeyGeneration", 1, 1_000_000),
        data_key_keep_previous=reader.integer("dataKeyKeepPrevious", 0, 10),
        cert_renewal_generation=reader.integer("certRenewalGeneration", 0, 1_000_000),
        runtime_id_slot=reader.integer("runtimeIdSlot", 0, MAX_SLOT),
        ca_rollover_generation=reader.integer("caRolloverGeneration", 0, 1_000_000),
        password_rotation_generation=reader.integer("passwordRotationGeneration", 0, 1_000_000),
        api_token_rotation_generation=reader.integer("apiTokenRotationGeneration", 0, 1_000_000),
        api_token_retire_generation=reader.integer("apiTokenRetireGeneration", 0, 1_000_000),
        docker_host=_docker_host(config, problems),
    )
    problems.extend(_cross_checks(settings, reader.failed, hidden))
    if problems:
        raise SettingsError(stack, where, problems)
    return settings


def valid_stack_name(stack: str) -> bool:
    """The one stack-name rule (STACK_NAME_PATTERN); scripts/lib.sh applies the same."""
    return _STACK_RE.fullmatch(stack) is not None


# What a new stack's file holds, for the messages about a missing or empty one.
_NEW_STACK_FILE: Final = (
    f"a `config:` mapping with {NAMESPACE}:environment, a free {NAMESPACE}:appHostPort and, "
    f"for a name other than {', '.join(STACK_SLOTS)}, a {NAMESPACE}:runtimeIdSlot no other "
    'stack uses; docs/stack-settings.md, "Another stack"'
)


def load_stack_file(stack: str, root: Path = REPO_ROOT) -> dict[str, Any]:
    """The `config:` map of `Pulumi.<stack>.yaml` under `root`, as flat namespaced keys.

    Read the way Pulumi reads it: a key without a namespace belongs to the project
    (`tlsMinVersion:` is `secure-redis:tlsMinVersion`). A key given twice (literally, or once
    with and once without the namespace) is an error rather than "the last one wins".
    """
    name = f"Pulumi.{stack}.yaml"  # not path.name: a bad name may hold a '/'
    path = root / name
    if not valid_stack_name(stack) or not path.is_file():
        known = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))
        usable = [k for k in known if valid_stack_name(k)]
        choice = f"use one of: {', '.join(usable) or 'none'} (or create it: {_NEW_STACK_FILE})"
        if not valid_stack_name(stack):
            problem = f"{quoted(stack)} is not a stack name: {STACK_NAME_RULE}; {choice}"
        elif path.exists():  # a FIFO, a device, a directory: reading it blocks or fails
            problem = (
                f"{name} in {root} is not a regular file (a pipe, device or directory); "
                f"replace it with the stack's YAML file"
            )
        else:
            problem = f"{name} does not exist in {root}; {choice}"
        raise SettingsError(stack, name, [problem])
    document = _read_yaml(stack, path)
    if document is None:
        # YAML reads a file without a document as nothing; "`config:` must be a mapping" said
        # what is wrong with a mapping that is not there.
        raise SettingsError(
            stack,
            name,
            [f"{name} is empty (or holds only comments); write in it {_NEW_STACK_FILE}"],
        )
    if isinstance(document, dict) and "config" not in document:
        # Pulumi's own top-level keys (encryptionsalt, secretsprovider) belong there; a
        # setting there is one the program would never read.
        stray = sorted(
            str(k) for k in document if str(k).startswith(f"{NAMESPACE}:") or str(k) in SETTING_KEYS
        )
        if stray:
            raise SettingsError(
                stack,
                path.name,
                [
                    f"{', '.join(stray)} at the top level: settings go under `config:` "
                    f"(a line `config:`, then each setting indented below it)"
                ],
            )
    config = (document.get("config") or {}) if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise SettingsError(stack, path.name, ["`config:` must be a mapping of key: value"])
    flat: dict[str, Any] = {}
    problems: list[str] = []
    for raw_key, value in config.items():
        key = str(raw_key)
        full = key if ":" in key else f"{NAMESPACE}:{key}"
        if full in flat:
            problems.append(f"{shown_key(full)} is set twice; keep one of the two entries")
        flat[full] = value
    if problems:
        raise SettingsError(stack, path.name, problems)
    return flat


# A stack file's values are flat (a string, a number): a few levels of `[`/`{` are plenty.
_MAX_FLOW_DEPTH: Final = 64


class _TooDeep(Exception):
    """More `[`/`{` levels than a stack file has any use for."""


# Pulumi hands the program each plain value of a stack file as the text written
# (`appHostPort: 18145` is "18145"); PyYAML reads YAML 1.1, where `5:02:25` is 18145, `yes` is
# True and `017` is 15. The loader below takes every plain scalar as its text, as Pulumi does,
# and _ambiguity() refuses the few texts that YAML readers (1.1, 1.2, Go's) take as something
# else: a number not in plain decimal, a YAML 1.1 or 1.2 boolean, a date, null. Pulumi
# versions that keep a value's YAML type would hand those over converted, or not at all.
_PLAIN_TAG: Final = "tag:secure-redis,2026:plain"
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"
_STR_TAG: Final = "tag:yaml.org,2002:str"
_NULL_TEXTS: Final = frozenset({"", "~", "null", "Null", "NULL"})


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that reads plain scalars as their text (see above; `<<` stays a merge key,
    which Go's YAML also reads), refuses a mapping with the same key twice (PyYAML keeps the
    last; Go's YAML refuses it), and stops at the `[`/`{` that opens level
    _MAX_FLOW_DEPTH + 1: PyYAML's scanner does work quadratic in the flow depth (it revisits
    every level's possible key at each token), so 5000 nested `[` took it 9 s of CPU before
    the composer's recursion gave up (measured)."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        # Only a tagless plain scalar is resolved by its text: quoted ones are strings, and a
        # tag written in the file (`!!int 5`) is kept, to be refused below.
        if kind is yaml.ScalarNode and implicit[0]:
            return _MERGE_TAG if value == "<<" else _PLAIN_TAG
        return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        if self.flow_level >= _MAX_FLOW_DEPTH:
            raise _TooDeep
        super().fetch_flow_collection_start(TokenClass)


def _plain(loader: _UniqueKeyLoader, node: yaml.ScalarNode) -> str | None:
    # Null stays None, so an empty file or `config:` alone reads as before; a setting without
    # a value is refused by _config_problems.
    return None if node.value in _NULL_TEXTS else str(node.value)


def _tagged(loader: _UniqueKeyLoader, node: yaml.Node) -> Any:
    raise yaml.constructor.ConstructorError(
        None,
        None,
        f"the tag {node.tag.replace('tag:yaml.org,2002:', '!!')} is read differently by "
        "YAML readers (Pulumi hands the program the text after it); remove the tag",
        node.start_mark,
    )


def _check_unique(node: yaml.MappingNode) -> None:
    """Go's YAML, like this check, compares keys as written; a mapping merged with `<<` is
    checked on its own, and its entries yield to the ones written here."""
    seen: set[str] = set()
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a name, not a list or mapping", key_node.start_mark
            )
        key = str(key_node.value)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"{shown_key(key)} is set twice; keep one of the two entries",
                key_node.start_mark,
            )
        seen.add(key)
        if key_node.tag == _MERGE_TAG:
            sources = (
                value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            )
            for source in sources:
                if isinstance(source, yaml.MappingNode):
                    _check_unique(source)


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    _check_unique(node)
    return loader.construct_mapping(node, deep=True)


_UniqueKeyLoader.add_constructor(_PLAIN_TAG, _plain)
_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)
for _tag in ("null", "bool", "int", "float", "binary", "timestamp", "omap", "pairs", "set"):
    _UniqueKeyLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _tagged)

# The YAML 1.2 core schema (yaml.org/spec/1.2.2, 10.3.2); Go's YAML readers also read `0b1`,
# `1_000`, `017` (octal) and `2026-1-2` (a date) as numbers and dates.
_CORE_BOOL: Final = re.compile(r"true|True|TRUE|false|False|FALSE")
_CORE_FLOAT: Final = re.compile(
    r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)
_GO_DATE: Final = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt ].*)?")
# YAML 1.1's booleans as its specification lists them; YAML 1.2 reads all but true/false as
# text. y/Y/n/N stay refused although PyYAML leaves them out and a Pulumi that hands the
# program the text written gives it "y": Go's YAML v2, the library Pulumi's config encoding
# uses, resolves them as booleans, so a Pulumi version that keeps a value's YAML type gives
# the program "true" (tests/unit/test_unanticipated_inputs_more.py).
_YAML11_BOOL: Final = re.compile(
    r"y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF"
)
# What every reader takes as the same number: plain decimal, no sign, `_`, leading zero or
# exponent, and for a fraction the digits Python and Go print back (1.5, not 1.50).
_PLAIN_INT: Final = re.compile(r"-?(?:0|[1-9][0-9]*)")
_PLAIN_FLOAT: Final = re.compile(r"-?(?:0|[1-9][0-9]*)\.[0-9]+")
# Longer texts are never a setting's number: they are named, not converted.
_MAX_READ: Final = 40


@dataclass(frozen=True)
class _Kind:
    """A reading described, not converted: a date, or a number too long to be a setting's."""

    what: str


_A_DATE: Final = _Kind("a date")
_A_NUMBER: Final = _Kind("a number")


def _yaml11_reading(text: str) -> Any:
    """What PyYAML (YAML 1.1) makes of `text` written plain."""
    resolver = yaml.resolver.Resolver()
    tag = resolver.resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    if tag == _STR_TAG:
        return text
    if len(text) > _MAX_READ:
        return _A_NUMBER if tag.endswith(("int", "float")) else _Kind(f"a YAML 1.1 {tag[18:]}")
    try:
        return yaml.constructor.SafeConstructor().construct_object(yaml.ScalarNode(tag, text))
    except (ValueError, yaml.YAMLError):
        return text


# (pattern, conversion) in the order a YAML 1.2 reader tries them; `_` already dropped, as Go's
# YAML drops it from a number.
_YAML12_NUMBERS: Final[tuple[tuple[re.Pattern[str], Callable[[str], Any]], ...]] = (
    (re.compile(r"[-+]?0[xXoObB][0-9a-fA-F]+"), lambda t: int(t, 0)),
    (re.compile(r"[-+]?0[0-7]+"), lambda t: int(t, 8)),  # Go's YAML: a leading 0 is octal
    (re.compile(r"[-+]?[0-9]+"), int),
    (_CORE_FLOAT, lambda t: float(t.lower().replace(".inf", "inf").replace(".nan", "nan"))),
)


def _yaml12_reading(text: str) -> Any:
    """What a YAML 1.2 reader (the core schema, and Go's YAML beside it) makes of `text`."""
    if _CORE_BOOL.fullmatch(text):
        return text.lower() == "true"
    bare = text.replace("_", "")
    for pattern, convert in _YAML12_NUMBERS:
        if pattern.fullmatch(bare):
            if len(bare) > _MAX_READ:
                return _A_NUMBER
            try:
                return convert(bare)
            except ValueError:
                return text
    return _A_DATE if _GO_DATE.fullmatch(text) else text


def _reading(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the text {_SHORT.repr(value)}"
    return value.what if isinstance(value, _Kind) else "a date"


def _number(text: str) -> int | float | None:
    if len(text) > _MAX_READ:
        return None
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            continue
    return None


def _ambiguity(key: str, text: str) -> str | None:
    """Why plain `text` is not one value to every YAML reader, with the fix; None if it is."""
    if _PLAIN_INT.fullmatch(text):
        return None
    if _PLAIN_FLOAT.fullmatch(text) and repr(float(text)) == text:
        return None
    if text in _NULL_TEXTS:
        return (
            f"{shown_key(key)} has no value (null to YAML, an empty text to some Pulumi "
            "versions); write its value, or remove the line"
        )
    readings = [text, _yaml11_reading(text), _yaml12_reading(text)]
    if _YAML11_BOOL.fullmatch(text):
        readings.append(text.lower() in {"y", "yes", "true", "on"})
    distinct = list(dict.fromkeys(_reading(v) for v in readings))
    if len(distinct) == 1:
        return None
    # The program reads the text Pulumi hands it with int() or float(): `017` is 17 to it.
    numbers = [
        str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
        for v in [*readings[1:], _number(text)]
        if isinstance(v, int | float) and not isinstance(v, bool) and abs(v) < float("inf")
    ]
    write = f"write {' or '.join(dict.fromkeys(numbers))}, or " if numbers else ""
    shown = _SHORT.repr(text)[1:-1] if len(text) > 60 or not text.isprintable() else text
    return (
        f"{shown_key(key)}: {shown} is {' or '.join(distinct)}, "
        "depending on the YAML reader (1.1 or 1.2) and the Pulumi version; "
        f'{write}quote it: {shown_key(key)}: "{shown}"'
    )


def reads_as_itself(value: str) -> bool:
    """Whether `value`, written plain after `key: `, reads back as itself to every YAML reader
    (infra/stack_config.py quotes it otherwise)."""
    try:
        read = yaml.load(f"k: {value}\n", Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader
    except (yaml.YAMLError, RecursionError, _TooDeep):
        return False
    return read == {"k": value} and _ambiguity("k", value) is None


def _whole_number_problem(key: str, text: str) -> str | None:
    """A whole-number setting written as a fraction (`dataKeyGeneration: 2.0`): Pulumi
    versions that hand the program the text give it "2.0", which the setting refuses, and
    versions that keep YAML's types give it "2". Refused here, with its line and the fix, so
    that it means one thing (a fraction for redisCpus is one number to every reader)."""
    if key.removeprefix(f"{NAMESPACE}:") not in WHOLE_NUMBER_SETTINGS:
        return None
    if not _PLAIN_FLOAT.fullmatch(text) or len(text) > _MAX_READ:
        return None
    whole, fraction = text.split(".")
    if fraction.strip("0"):
        return None  # 2.5: not a whole number to any reader; the setting's check says so
    number = str(abs(int(whole))) if int(whole) == 0 else whole
    return (
        f"{shown_key(key)}: {text} is a whole number written as a fraction, which Pulumi "
        f"versions hand over as '{text}' (refused) or '{number}'; write {number}"
    )


def _config_problems(document_node: yaml.Node | None, name: str) -> list[str]:
    """Each `config:` value written plain that YAML readers take differently, as
    `<file>, line <n>: <key>: ...; <fix>`."""
    if not isinstance(document_node, yaml.MappingNode):
        return []
    config = next(
        (v for k, v in document_node.value if getattr(k, "value", None) == "config"), None
    )
    if not isinstance(config, yaml.MappingNode):
        return []
    # After construction config.value holds the merged entries too (PyYAML's flatten_mapping),
    # the ones written here last: the last entry of a key is the one that counts.
    effective = {str(k.value): v for k, v in config.value if isinstance(k, yaml.ScalarNode)}
    problems = []
    for key, node in effective.items():
        if isinstance(node, yaml.ScalarNode) and node.tag == _PLAIN_TAG:
            text = str(node.value)
            problem = _whole_number_problem(key, text) or _ambiguity(key, text)
            if problem:
                problems.append(f"{name}, line {node.start_mark.line + 1}: {problem}")
    return problems


# A stack file holds a few settings (and Pulumi's encryption salt): a few KiB.
_MAX_STACK_FILE_BYTES: Final = 1 << 20


def _read_yaml(stack: str, path: Path) -> Any:
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_STACK_FILE_BYTES + 1)
        if len(data) > _MAX_STACK_FILE_BYTES:
            raise SettingsError(
                stack,
                path.name,
                [f"{path.name} is larger than 1 MiB; a stack file holds a few settings"],
            )
        text = data.decode("utf-8")
    except OSError as exc:
        raise SettingsError(
            stack, path.name, [f"{path.name} cannot be read ({exc.strerror})"]
        ) from None
    except UnicodeDecodeError as exc:
        raise SettingsError(
            stack,
            path.name,
            [f"{path.name} is not UTF-8 text (byte {exc.start}); save it as UTF-8"],
        ) from None
    try:
        loader = _UniqueKeyLoader(text)
    except yaml.reader.ReaderError as exc:
        # A NUL or another character YAML does not allow: PyYAML refuses the whole text when
        # the loader is made, which was a ReaderError traceback (stack_config get).
        line = text.count("\n", 0, exc.position) + 1
        raise SettingsError(
            stack,
            path.name,
            [
                f"{path.name} holds a character YAML does not allow (U+{exc.character:04X}) "
                f"at line {line}; remove it"
            ],
        ) from None
    try:
        node = loader.get_single_node()
        document = None if node is None else loader.construct_document(node)
    except (RecursionError, _TooDeep):
        raise SettingsError(
            stack,
            path.name,
            [
                f"{path.name} nests lists or mappings too deeply to read, or has an anchor "
                "that includes or merges itself (`&a {<<: *a}`); fix the YAML"
            ],
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or "a syntax error"
        raise SettingsError(
            stack, path.name, [f"{path.name} is not valid YAML: {reason}{where}; fix the YAML"]
        ) from None
    finally:
        loader.dispose()
    problems = _config_problems(node, path.name)
    if problems:
        raise SettingsError(stack, path.name, problems)
    return document


def settings_from_pulumi() -> StackSettings:
    """Load the running stack's settings from the engine's config (inside a Pulumi program)."""
    import pulumi  # noqa: PLC0415 - keep the pure loader importable without the SDK's runtime
    from pulumi.runtime import config as runtime_config  # noqa: PLC0415

    # The engine passes config either as PULUMI_CONFIG or through set_all_config; take both so
    # unknown (misspelled) keys are caught too, not only the ones this module asks for.
    config = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret = {k for k in config if runtime_config.is_config_secret(k)}
    secret.update(runtime_config.get_config_secret_keys_env())
    return load_settings(
        pulumi.get_stack(), config, source="the stack configuration", secret_keys=secret
    )


@dataclass(frozen=True)
class _Shown:
    """A setting's value as an error message may show it: never a secret one (set with
    `--secret`: the engine hands the program its plaintext) nor Pulumi's `secure:` ciphertext,
    whose presence says the same, and a mapping or list by its kind."""

    raw: Any
    secret: bool = False

    @property
    def hidden(self) -> bool:
        return self.secret or (isinstance(self.raw, Mapping) and "secure" in self.raw)

    def __str__(self) -> str:
        if self.hidden:
            return "a secret value (not shown)"
        if isinstance(self.raw, Mapping):
            return "a mapping"
        if isinstance(self.raw, list):
            return "a list"
        return _SHORT.repr(self.raw)


# A value is echoed so the user finds it, not reproduced: a 2 MB string or a 400-digit number
# would make the one-line error a screenful.
def _short_repr() -> reprlib.Repr:
    short = reprlib.Repr()  # Python 3.11's Repr takes no arguments: set its limits after
    short.maxstring, short.maxlong, short.maxother = 60, 40, 60
    return short


_SHORT: Final = _short_repr()


def shown_key(key: str) -> str:
    """A key as a message names it: as written when it is plain, else escaped (an escape
    sequence or a newline in a stack file's key must not reach the terminal raw), and cut to
    a line's worth either way."""
    return key if key.isprintable() and len(key) <= 60 else _SHORT.repr(key)


def quoted(text: str) -> str:
    """A name from the command line as a message quotes it: escaped and cut to a line's worth
    (a 5000-character --stack was repeated whole)."""
    return _SHORT.repr(text)


class _Reader:
    def __init__(
        self, stack: str, values: Mapping[str, Any], problems: list[str], hidden: frozenset[str]
    ) -> None:
        self._stack = stack
        self._values = values
        self._problems = problems
        self._hidden = hidden
        self.failed: set[str] = set()

    def read(self, key: str, parse: Callable[[str], _T]) -> _T:
        raw = self._values[key]
        # A list or mapping is never a setting's value; str() of one is never read as one
        # (and YAML aliases can make it a billion elements long: `[*a, *a, ...]`).
        # ASCII whitespace only: str.strip() also removed a leading no-break space (U+00A0),
        # so `appHostPort: "\u00a018302"` read as 18302 while the file showed another
        # character; kept, it meets _in_range's refusal of what is not the digits 0-9.
        text = "\0" if isinstance(raw, list | Mapping) else str(raw).strip(string.whitespace)
        try:
            return parse(text)
        except ValueError as exc:
            shown = _Shown(raw, key in self._hidden)
            hint = "; no setting here is secret: set it without --secret" if shown.hidden else ""
            self._problems.append(f"{NAMESPACE}:{key} is {shown}: {exc}{hint}")
            self.failed.add(key)
            # A placeholder so the remaining keys are still checked; never used after errors.
            return parse(str(PROFILES[Environment.DEVELOPMENT][key]))

    def integer(self, key: str, low: int, high: int) -> int:
        assert key in WHOLE_NUMBER_SETTINGS, key  # keeps the loader's list whole
        fix = how_to_set(self._stack, key)
        return self.read(key, lambda text: _in_range(int, "a whole number", text, low, high, fix))

    def number(self, key: str, low: float, high: float) -> float:
        fix = how_to_set(self._stack, key)
        return self.read(key, lambda text: _in_range(float, "a number", text, low, high, fix))


def how_to_set(stack: str, key: str, value: str = "<value>") -> str:
    """How to change one setting, with or without the Pulumi CLI (the local applier's users
    have none: `pulumi config set` alone left them without a command to run)."""
    return (
        f"`python -m infra.stack_config set --stack {stack} {key} {value}` (or "
        f"`pulumi config set {NAMESPACE}:{key} {value}`)"
    )


def _in_range(
    convert: Callable[[str], _T], kind: str, text: str, low: Any, high: Any, fix: str
) -> _T:
    try:
        if not text.isascii():
            # int() and float() read every script's digits: appHostPort in fullwidth digits
            # (U+FF12 U+FF10 ...) deployed port 20000 while the file showed other characters.
            # The one place a number setting is decided.
            raise ValueError
        value = convert(text)  # "true" is refused here too (a YAML boolean)
    except ValueError:
        # Python's own text ("invalid literal for int() with base 10", "could not convert
        # string to float") names no fix.
        raise ValueError(
            f"expected {kind} from {low} to {high} in the digits 0-9; set it with {fix}"
        ) from None
    return _bounded(value, low, high, fix)


def _bounded(value: _T, low: Any, high: Any, fix: str) -> _T:
    if not low <= value <= high:
        raise ValueError(f"must be between {low} and {high}; set it with {fix}")
    return value


def _environment(value: _Shown, problems: list[str], stack: str) -> Environment | None:
    choices = ", ".join(e.value for e in Environment)
    raw = value.raw
    if raw is None:
        problems.append(
            f"{NAMESPACE}:environment is missing; set it to one of {choices} with "
            f"{how_to_set(stack, 'environment', 'development')}"
        )
        return None
    try:
        return Environment(str(raw).strip(string.whitespace))  # as _Reader.read strips
    except ValueError:
        problems.append(
            f"{NAMESPACE}:environment is {value}, an unknown environment; use one of {choices}"
        )
        return None


def _tls_version(text: str) -> str:
    version = text.removeprefix("TLSv")
    if version in {"1", "1.0", "1.1"}:
        raise ValueError(
            "TLS below 1.2 is deprecated (RFC 8996) and not allowed; set it to 1.2 or 1.3"
        )
    if version not in _TLS_VERSIONS:
        raise ValueError("unknown TLS version; set it to 1.2 or 1.3")
    return version


def _key_algorithm(text: str) -> KeyAlgorithm:
    try:
        return KeyAlgorithm(text)
    except ValueError:
        choices = ", ".join(a.value for a in KeyAlgorithm)
        raise ValueError(f"unknown key algorithm; use one of {choices}") from None


def _key_prefix(text: str) -> str:
    try:  # the ACL renderer owns the rule for what a key prefix may look like
        render_acl_file(app_password="x" * 16, healthcheck_password="y" * 16, key_prefix=text)
    except AclError as exc:
        # Its message quotes the prefix; _Reader shows the value (or hides a secret one).
        raise ValueError(str(exc).replace(f"key prefix {text!r} ", "a key prefix ", 1)) from exc
    return text


def _docker_host(config: Mapping[str, Any], problems: list[str]) -> str | None:
    raw = config.get("docker:host")
    if isinstance(raw, list | Mapping):
        # str() of a list read as a URL named "a ['ssh:// URL"; _Shown hides a secure: one.
        value = _Shown(raw)
        # A `secure:` one is Pulumi's ciphertext, which only the Pulumi engine decrypts.
        plain = " in plain text (only the Pulumi engine decrypts secure: values)" * value.hidden
        problems.append(
            f"docker:host is {value}; set it to one URL{plain}, e.g. "
            "unix:///var/run/docker.sock or ssh://user@host"
        )
        return None
    if raw is None or not str(raw).strip():
        return None
    host = str(raw).strip()
    scheme = host.split("://", 1)[0] if "://" in host else ""
    has_tls = any(config.get(f"docker:{k}") for k in ("certPath", "caMaterial", "certMaterial"))
    if scheme not in {"unix", "ssh", "npipe", "tcp"}:
        # Only the scheme is echoed: the rest may carry credentials (user:password@).
        shown = f"a {scheme}:// URL" if scheme else "not a URL"
        problems.append(
            f"docker:host is {shown}; use unix:///var/run/docker.sock or ssh://user@host"
        )
    elif scheme == "tcp" and not has_tls:
        problems.append(
            "docker:host uses tcp:// without TLS client certificates; the Docker API must not be "
            "reachable unauthenticated (CIS Docker 2.7). Use ssh://user@host, or set "
            "docker:certPath"
        )
    return host


def _cross_checks(s: StackSettings, failed: set[str], hidden: frozenset[str]) -> list[str]:
    """Rules over several keys; a rule is skipped when one of its keys is already invalid.
    A value set with --secret (`hidden`) is named, never shown."""
    problems = []

    def applies(*keys: str) -> bool:
        return not failed.intersection(keys)

    def shown(key: str, value: object) -> str:
        return str(_Shown(value, secret=True)) if key in hidden else str(value)

    length = shown("passwordLength", s.password_length)
    tls_min = shown("tlsMinVersion", s.tls_min_version)
    validity = shown("certValidityDays", s.cert_validity_days)
    ca_validity = shown("caValidityDays", s.ca_validity_days)
    renew = shown("certRenewBeforeDays", s.cert_renew_before_days)
    memory = shown("redisMemoryMb", s.redis_memory_mb)
    maxmemory = shown("redisMaxmemoryMb", s.redis_maxmemory_mb)

    floor = PASSWORD_FLOOR[s.environment]
    if applies("passwordLength") and s.password_length < floor:
        problems.append(
            f"{NAMESPACE}:passwordLength is {length}, below the {s.environment} floor "
            f"of {floor}; set it to {floor} or more (or remove it to use the profile default)"
        )
    required = REQUIRED_TLS_MIN[s.environment]
    if applies("tlsMinVersion") and s.tls_min_version < required:
        problems.append(
            f"{NAMESPACE}:tlsMinVersion is {tls_min}, but {s.environment} accepts "
            f"TLSv{required} only; set it to {required} (or remove it)"
        )
    limit = LEAF_VALIDITY_LIMIT[s.environment]
    if applies("certValidityDays") and s.cert_validity_days > limit:
        problems.append(
            f"{NAMESPACE}:certValidityDays is {validity}, above the {s.environment} "
            f"limit of {limit} days; set it to {limit} or less (or remove it to use the profile "
            "default)"
        )
    needed = min_memory_limit_mb(s.redis_maxmemory_mb)
    if applies("redisMaxmemoryMb", "redisMemoryMb") and s.redis_memory_mb < needed:
        # The minimum is 2 * redisMaxmemoryMb plus a constant: it would give a secret one away.
        at_least = (
            f"at least twice redisMaxmemoryMb plus {min_memory_limit_mb(0)} (the server's own "
            "memory)"
            if "redisMaxmemoryMb" in hidden
            else f"at least {needed} (twice redisMaxmemoryMb plus the server's own memory)"
        )
        problems.append(
            f"{NAMESPACE}:redisMemoryMb ({memory}) is too small for "
            f"{NAMESPACE}:redisMaxmemoryMb ({maxmemory}): the AOF rewrite forks Redis, "
            "and under writes the copy can need the whole dataset again, so the kernel would "
            f"kill Redis mid-rewrite; raise redisMemoryMb to {at_least} or lower "
            "redisMaxmemoryMb"
        )
    if applies("certValidityDays", "caValidityDays") and s.cert_validity_days >= s.ca_validity_days:
        problems.append(
            f"{NAMESPACE}:certValidityDays ({validity}) must be below "
            f"{NAMESPACE}:caValidityDays ({ca_validity}); a leaf cannot outlive its CA"
        )
    if (
        applies("certRenewBeforeDays", "certValidityDays")
        and s.cert_renew_before_days >= s.cert_validity_days
    ):
        problems.append(
            f"{NAMESPACE}:certRenewBeforeDays ({renew}) must be below "
            f"{NAMESPACE}:certValidityDays ({validity}), or every `pulumi up` renews"
        )
    rotation = shown("apiTokenRotationGeneration", s.api_token_rotation_generation)
    retire = shown("apiTokenRetireGeneration", s.api_token_retire_generation)
    if (
        applies("apiTokenRetireGeneration", "apiTokenRotationGeneration")
        and s.api_token_retire_generation > s.api_token_rotation_generation
    ):
        # Above it, the next rotation's old token would be retired by whatever up came next
        # (infra/providers/secrets.py keeps it only while the retire generation is below).
        problems.append(
            f"{NAMESPACE}:apiTokenRetireGeneration ({retire}) is above "
            f"{NAMESPACE}:apiTokenRotationGeneration ({rotation}): it retires rotations "
            "not made yet, whose old token any up would then refuse before its clients "
            f"switched; set it to {rotation} or less (scripts/rotate.sh {s.stack} api-token-retire "
            "sets it to match)"
        )
    return problems


__all__ = [
    "NAMESPACE",
    "REPO_ROOT",
    "STACK_NAME_PATTERN",
    "STACK_NAME_RULE",
    "SettingsError",
    "StackSettings",
    "load_settings",
    "load_stack_file",
    "quoted",
    "reads_as_itself",
    "settings_from_pulumi",
    "shown_key",
    "valid_stack_name",
]
