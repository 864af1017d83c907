"""Tolerant readers for engine-shaped properties.

Under the engine, `props` are `pulumi_policy` proxies (a `Mapping`/`Sequence`, not `dict`/`list`)
that raise `UnknownValueError` when a value read is unknown at preview; that error must propagate
so the engine reports "can't run policy during preview" for just that rule. So these helpers
read only what they are asked for and accept any Mapping/Sequence. Values of the wrong type
count as absent: a rule then fails closed on the missing property.
"""

from __future__ import annotations

import base64
import binascii
import re
import shlex
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Final

from policies.rules._model import Resource

REDACTED: Final = "[secret]"
"""What `infra.preview --json` prints for a secret leaf; its content is unknown to us."""


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def items(value: Any) -> list[Any]:
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return list(value)
    return []


def text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def strings(value: Any) -> list[str]:
    return [v for v in items(value) if isinstance(v, str)]


def number(value: Any) -> float | None:
    """Numbers arrive as floats over gRPC (protobuf Struct); numeric strings count too."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def kind(resource_type: str) -> str:
    """ "docker:index/container:Container" -> "Container"."""
    return resource_type.rsplit(":", 1)[-1] or resource_type


def label(resource: Resource, kind_name: str | None = None) -> str:
    """How messages name a resource: kind, logical name and, if different, its Docker name."""
    try:
        docker_name = resource.props.get("name")
    except Exception:
        docker_name = None
    base = f"{kind_name or kind(resource.type)} {resource.name}"
    if isinstance(docker_name, str) and docker_name and docker_name != resource.name:
        return f"{base} ({docker_name})"
    return base


def shell_words(command: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError:  # unbalanced quotes: still look at every word
        return command.split()


def argv(props: Mapping[str, Any]) -> list[str]:
    """What the container executes: `entrypoints` then `command`."""
    return strings(props.get("entrypoints")) + strings(props.get("command"))


def argv_words(props: Mapping[str, Any]) -> list[str]:
    """argv with shell strings (`sh -c "..."`) split into words as a shell would."""
    words: list[str] = []
    for arg in argv(props):
        words.extend(shell_words(arg) if " " in arg else [arg])
    return words


def healthcheck_tests(props: Mapping[str, Any]) -> list[str]:
    return strings(mapping(props.get("healthcheck")).get("tests"))


def envs(props: Mapping[str, Any]) -> list[tuple[str, str]]:
    """`envs` entries ("KEY=VALUE") as pairs; an entry without "=" has an empty value."""
    pairs = []
    for entry in strings(props.get("envs")):
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
    for index, raw in enumerate(items(props.get("uploads"))):
        entry = mapping(raw)
        content = text(entry.get("content"))
        encoded = text(entry.get("contentBase64"))
        redacted = REDACTED in (content, encoded)
        if redacted:
            content = None
        elif content is None and encoded is not None:
            content = _decode(encoded)
        result.append(
            Upload(
                index=index,
                path=text(entry.get("file")) or "",
                content=content,
                redacted=redacted,
                permissions=text(entry.get("permissions")),
                executable=entry.get("executable") is True,
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


def of_type(resources: Sequence[Resource], resource_type: str) -> Iterator[Resource]:
    return (r for r in resources if r.type == resource_type)


def redis_label(resource: Resource) -> str:
    return label(resource, "Redis container")
