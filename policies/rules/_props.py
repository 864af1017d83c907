"""Readers for engine-shaped properties that fail closed on values they cannot read.

Under the engine, `props` are `pulumi_policy` proxies (a `Mapping`/`Sequence`, not `dict`/`list`)
that raise `UnknownValueError` when a value read is unknown at preview; that error must propagate
so the engine reports "can't run policy during preview" for just that rule. So these helpers
read only what they are asked for and accept any Mapping/Sequence. An absent value (None) reads
as empty; a value of the wrong type (`ports` as a string, `privileged: "true"`, `envs` as an
object) raises `Unreadable`, which the rule that needed it reports as its violation
(`policies/rules/_model.py`), never as a pass.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import shlex
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Final

from infra.rendered_resource import REDACTED  # what `infra.preview --json` prints for a secret
from policies.rules._model import IMAGE, SERVICE, Resource, Unreadable, kind_of, kind_of_value

# Docker takes `memory` in MB; a value above 1 TiB was almost certainly given in bytes.
_MAX_PLAUSIBLE_MEMORY_MB: Final = 1024 * 1024


def is_unknown_value(exc: Exception) -> bool:
    # pulumi_policy raises UnknownValueError for a value unknown at preview; rules do not import
    # pulumi_policy, so recognise it by name.
    return type(exc).__name__ == "UnknownValueError"


def known_text(props: Mapping[str, Any], key: str) -> str:
    """A string property, or "" when it is absent, not a string or unknown at preview."""
    try:
        value = props.get(key)
    except Exception as exc:
        if is_unknown_value(exc):
            return ""
        raise
    return value if isinstance(value, str) else ""


def mapping(value: Any, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return value
    raise Unreadable(what, "an object", kind_of_value(value))


def items(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return list(value)
    raise Unreadable(what, "a list", kind_of_value(value))


def text(value: Any, what: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise Unreadable(what, "a string", kind_of_value(value))


def entries(props: Mapping[str, Any], key: str) -> list[tuple[str, Mapping[str, Any]]]:
    """Each object of the list property `key`, with the path messages name it by
    (`mounts[0]`): every rule names one property the same way, so policies.check shows it
    once."""
    return [
        (f"{key}[{index}]", mapping(raw, f"{key}[{index}]"))
        for index, raw in enumerate(items(props.get(key), key))
    ]


def text_at(entry: Mapping[str, Any], where: str, key: str) -> str | None:
    """String field `key` of an object found at `where` (see entries)."""
    return text(entry.get(key), f"{where}.{key}")


def strings(value: Any, what: str) -> list[str]:
    found = items(value, what)
    if not all(isinstance(v, str) for v in found):
        raise Unreadable(
            what,
            "a list of strings",
            "a list holding " + next(kind_of_value(v) for v in found if not isinstance(v, str)),
        )
    return found


def flag(value: Any, what: str) -> bool | None:
    """A boolean input: True, False or None (unset); "true" and 1 are unreadable, not True."""
    if value is None or isinstance(value, bool):
        return value
    raise Unreadable(what, "true or false", kind_of_value(value))


def number(value: Any, what: str) -> float | None:
    """Numbers arrive as floats over gRPC (protobuf Struct); numeric strings count too."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise Unreadable(what, "a number", kind_of_value(value))
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise Unreadable(what, "a number", "a string that is no number") from None
    raise Unreadable(what, "a number", kind_of_value(value))


def memory_mb(props: Mapping[str, Any]) -> float | None:
    """`memory` in MB, or Unreadable when it is not a number or looks like bytes."""
    memory = number(props.get("memory"), "memory")
    if memory is not None and memory > _MAX_PLAUSIBLE_MEMORY_MB:
        raise Unreadable("memory", "megabytes (it is over 1 TiB, so it looks like bytes)")
    return memory


kind = kind_of


def label(resource: Resource, kind_name: str | None = None) -> str:
    """How messages name a resource: kind, logical name and, if different, its Docker name
    (an Image has none: its `imageName` is a reference, which its messages quote)."""
    try:
        docker_name = None if resource.type == IMAGE else resource.props.get("name")
    except Exception:
        docker_name = None
    base = f"{kind_name or kind(resource.type)} {resource.name}"
    if isinstance(docker_name, str) and docker_name and docker_name != resource.name:
        return f"{base} ({docker_name})"
    return base


@contextmanager
def reading(resource: Resource) -> Iterator[None]:
    """A property of the wrong type read inside names `resource`: a stack rule reads many
    resources, and its message must say whose property to fix."""
    try:
        yield
    except Unreadable as exc:
        if not exc.subject:
            exc.subject, exc.urn = label(resource), resource.urn
        raise


def shell_words(command: str) -> list[str]:
    return list(_shell_words(command))


# Every stack policy reads each container's argv again (policies/rules/_redisconf.py,
# `recognised`), so one analysis splits the same few strings thousands of times: shlex.split
# was about half of the rules' CPU over the policy corpus. The split of a string is a pure
# function of it; callers get a fresh list.
@functools.lru_cache(maxsize=4096)
def _shell_words(command: str) -> tuple[str, ...]:
    try:
        return tuple(shlex.split(command))
    except ValueError:  # unbalanced quotes: still look at every word
        return tuple(command.split())


def argv(props: Mapping[str, Any]) -> list[str]:
    """What the container executes: `entrypoints` then `command`."""
    return strings(props.get("entrypoints"), "entrypoints") + strings(
        props.get("command"), "command"
    )


def argv_words(props: Mapping[str, Any]) -> list[str]:
    """argv with shell strings (`sh -c "..."`) split into words as a shell would."""
    words: list[str] = []
    for arg in argv(props):
        words.extend(shell_words(arg) if " " in arg else [arg])
    return words


def healthcheck_tests(props: Mapping[str, Any]) -> list[str]:
    return strings(
        mapping(props.get("healthcheck"), "healthcheck").get("tests"), "healthcheck.tests"
    )


def envs(props: Mapping[str, Any]) -> list[tuple[str, str]]:
    """`envs` entries ("KEY=VALUE") as pairs; an entry without "=" has an empty value."""
    pairs = []
    for entry in strings(props.get("envs"), "envs"):
        key, _, value = entry.partition("=")
        pairs.append((key, value))
    return pairs


@dataclass(frozen=True)
class Upload:
    """One `uploads[]` entry of a container."""

    index: int
    path: str
    content: str | None
    """The text content, or None when it is not visible (redacted, binary or a host `source`)."""
    redacted: bool
    permissions: str | None
    executable: bool

    @property
    def basename(self) -> str:
        return PurePosixPath(self.path).name


def uploads(props: Mapping[str, Any]) -> list[Upload]:
    result = []
    for index, raw in enumerate(items(props.get("uploads"), "uploads")):
        entry = mapping(raw, f"uploads[{index}]")
        content = text(entry.get("content"), f"uploads[{index}].content")
        encoded = text(entry.get("contentBase64"), f"uploads[{index}].contentBase64")
        redacted = REDACTED in (content, encoded)
        if redacted:
            content = None
        elif content is None and encoded is not None:
            content = _decode(encoded)
        result.append(
            Upload(
                index=index,
                path=text(entry.get("file"), f"uploads[{index}].file") or "",
                content=content,
                redacted=redacted,
                permissions=text(entry.get("permissions"), f"uploads[{index}].permissions"),
                executable=flag(entry.get("executable"), f"uploads[{index}].executable") is True,
            )
        )
    return result


def _decode(encoded: str) -> str | None:
    try:
        return base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def is_under(path: str, directory: str) -> bool:
    """True when `path` is `directory` or inside it (POSIX, lexical)."""
    p, d = PurePosixPath(path), PurePosixPath(directory)
    return p == d or d in p.parents


def stack_token_in(name: str, stack: str) -> bool:
    """True when `stack` appears in `name` as a whole word ("dev" in "secure-redis-dev-net")."""
    if not stack:
        return False
    pattern = rf"(?:^|[^A-Za-z0-9]){re.escape(stack)}(?:$|[^A-Za-z0-9])"
    return re.search(pattern, name, re.IGNORECASE) is not None


def names_per_stack(resources: Sequence[Resource]) -> bool:
    """Whether the program names its networks and volumes per stack (any name has the stack).

    A program that names none of them by stack is a single-stack program; requiring the
    stack name there would flag every such program without telling anyone anything.
    """
    for resource in resources:
        if resource.type.endswith((":Network", ":Volume")):
            name = text(resource.props.get("name"), "name") or resource.name
            if stack_token_in(name, resource.stack):
                return True
    return False


def of_type(resources: Sequence[Resource], resource_type: str) -> Iterator[Resource]:
    return (r for r in resources if r.type == resource_type)


def redis_label(resource: Resource, *, sentinel: bool = False) -> str:
    """How messages name a Redis container or service; a sentinel is a Redis Sentinel one."""
    kind_name = "Redis Sentinel" if sentinel else "Redis"
    return label(resource, f"{kind_name} {'service' if resource.type == SERVICE else 'container'}")
