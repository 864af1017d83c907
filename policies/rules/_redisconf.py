"""What a Redis server container is configured to do, read from argv and uploaded files.

A container is a Redis server when its command or entrypoint runs `redis-server` (or the
official image's default command does): recognised by what it runs, never by names or labels,
so the pack protects any pulumi-docker stack (docs/design.md#policy-readable-declarations).

Settings come from the config files it loads (`redis-server <file>` and their `include`s) and
then from `--name value` arguments, which override them, as Redis itself applies them. A file's
text is looked up among the stack's uploads by base name: the container's own uploads first,
else the one distinct text uploaded under that name anywhere in the stack (for example by a
one-shot init container that copies it into a volume: docs/design.md#material-delivery). When
a file cannot be read, a setting that is not on argv is *unknown*, and rules fail closed on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Final

from policies.rules._model import CONTAINER, Resource
from policies.rules._props import Upload, argv, mapping, shell_words, strings, text, uploads

SERVER_BINARIES: Final = frozenset({"redis-server", "redis-stack-server", "valkey-server"})
# The repository part of an image reference names a Redis server image: redis, redis:7,
# docker.io/library/redis@sha256:..., bitnami/redis:7.2, redis/redis-stack-server.
_REDIS_IMAGE: Final = re.compile(
    r"^(?:[^/]+/)*(?:redis|redis-stack|redis-stack-server|valkey)(?::[\w.-]+)?(?:@\S+)?$"
)
_SHELL_SEPARATORS: Final = frozenset({";", "&&", "||", "|", "&"})
# Directives that may repeat; every other directive keeps its last value.
_REPEATABLE: Final = frozenset({"user", "loadmodule", "rename-command", "save", "include"})


def _words(args: list[str]) -> list[str]:
    words: list[str] = []
    for arg in args:
        words.extend(shell_words(arg) if " " in arg and _looks_like_shell(arg) else [arg])
    return words


def _looks_like_shell(arg: str) -> bool:
    return any(binary in arg for binary in SERVER_BINARIES)


def _is_unknown_value(exc: Exception) -> bool:
    # pulumi_policy raises UnknownValueError for a value unknown at preview; rules do not import
    # pulumi_policy, so recognise it by name.
    return type(exc).__name__ == "UnknownValueError"


def _image(props: Mapping[str, Any]) -> str:
    """The image reference, or "" while it is unknown (e.g. a digest computed at `pulumi up`)."""
    try:
        return text(props.get("image")) or ""
    except Exception as exc:
        if _is_unknown_value(exc):
            return ""
        raise


def server_args(props: Mapping[str, Any]) -> list[str] | None:
    """The arguments redis-server receives, or None when the container is not a Redis server.

    A container whose command names no Redis server and whose image is still unknown at
    preview cannot be recognised yet; `pulumi up` judges it once the image is known.
    """
    words = _words(argv(props))
    for i, word in enumerate(words):
        if PurePosixPath(word).name in SERVER_BINARIES:
            rest = words[i + 1 :]
            for j, w in enumerate(rest):
                if w in _SHELL_SEPARATORS:
                    return rest[:j]
            return rest
    if _REDIS_IMAGE.match(_image(props)):
        # The official image runs `redis-server` by default, and prepends it to a command
        # that starts with an option (docker-entrypoint.sh).
        if not words:
            return []
        if words[0].startswith("-") and not strings(props.get("entrypoints")):
            return words
    return None


def is_redis_server(props: Mapping[str, Any]) -> bool:
    return server_args(props) is not None


def parse_args(args: Sequence[str]) -> tuple[str | None, list[tuple[str, tuple[str, ...]]]]:
    """(config file, [(directive, values)]) from redis-server's argv."""
    conf: str | None = None
    start = 0
    if args and not args[0].startswith("-"):
        conf, start = args[0], 1
    directives: list[tuple[str, list[str]]] = []
    for arg in args[start:]:
        if arg.startswith("--") and len(arg) > 2:
            directives.append((arg[2:].lower(), []))
        elif directives:
            directives[-1][1].append(arg)
    return conf, [(name, tuple(values)) for name, values in directives]


def parse_conf(content: str) -> list[tuple[str, tuple[str, ...]]]:
    """[(directive, values)] from redis.conf text; quotes are honoured as Redis does."""
    directives = []
    for line in content.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        tokens = shell_words(stripped)
        if tokens:
            directives.append((tokens[0].lower(), tuple(tokens[1:])))
    return directives


class FileIndex:
    """Uploaded file contents by base name: the container's own first, then the stack's.

    Uploads are read only when a file is looked up, so a value unknown at preview in some
    container's uploads stops only the rules that need a file.
    """

    def __init__(self, own: Mapping[str, Any], others: Sequence[Mapping[str, Any]] = ()) -> None:
        self._own = own
        self._others = others
        self._cache: tuple[list[Upload], list[Upload]] | None = None

    @classmethod
    def of(cls, own: Sequence[Upload], others: Sequence[Upload] = ()) -> FileIndex:
        index = cls({})
        index._cache = (list(own), list(others))
        return index

    def _uploads(self) -> tuple[list[Upload], list[Upload]]:
        if self._cache is None:
            self._cache = (uploads(self._own), [u for o in self._others for u in uploads(o)])
        return self._cache

    def read(self, path: str) -> str | None:
        name = PurePosixPath(path).name
        own, others = self._uploads()
        mine = [u for u in own if u.basename == name]
        if mine:
            return mine[-1].content
        found = {u.content for u in others if u.basename == name}
        if len(found) == 1:
            return found.pop()
        return None  # not uploaded, redacted, or ambiguous: unknown


class RedisSettings:
    """Effective directives: config files first, then argv, which overrides them.

    Files are read only when a directive is not settled by argv alone (argv wins over any
    file), so settings on the command line are judged even while file contents are unknown.
    `complete` is False when a config file could not be read.
    """

    def __init__(
        self,
        conf: str | None,
        argv_directives: Sequence[tuple[str, tuple[str, ...]]],
        files: FileIndex,
    ) -> None:
        self._conf = conf
        self._argv = list(argv_directives)
        self._files = files
        self._loaded: tuple[dict[str, tuple[tuple[str, ...], ...]], bool] | None = None
        self.on_argv = frozenset(name for name, _ in self._argv)

    def _argv_value(self, name: str) -> tuple[str, ...] | None:
        found = [values for n, values in self._argv if n == name]
        return found[-1] if found and name not in _REPEATABLE else None

    def _load(self) -> tuple[dict[str, tuple[tuple[str, ...], ...]], bool]:
        if self._loaded is None:
            collected, complete = _read_files(self._conf, self._files)
            occurrences: dict[str, list[tuple[str, ...]]] = {}
            for name, values in [*collected, *self._argv]:
                if name in _REPEATABLE:
                    occurrences.setdefault(name, []).append(values)
                else:
                    occurrences[name] = [values]
            self._loaded = ({k: tuple(v) for k, v in occurrences.items()}, complete)
        return self._loaded

    @property
    def complete(self) -> bool:
        return self._load()[1]

    def known(self, name: str) -> bool:
        """Whether the value of `name` is known (set somewhere visible, or all files visible)."""
        if self._argv_value(name) is not None:
            return True
        occurrences, complete = self._load()
        return complete or name in occurrences

    def values(self, name: str) -> tuple[str, ...] | None:
        """The last occurrence's values, or None when not set (check `known` first)."""
        on_argv = self._argv_value(name)
        if on_argv is not None:
            return on_argv
        found = self._load()[0].get(name)
        return found[-1] if found else None

    def value(self, name: str) -> str | None:
        found = self.values(name)
        return " ".join(found) if found is not None else None

    def all(self, name: str) -> tuple[tuple[str, ...], ...]:
        return self._load()[0].get(name, ())


def _read_files(
    conf: str | None, files: FileIndex
) -> tuple[list[tuple[str, tuple[str, ...]]], bool]:
    collected: list[tuple[str, tuple[str, ...]]] = []
    complete = True
    pending = [conf] if conf else []
    seen: set[str] = set()
    while pending:
        path = pending.pop(0)
        if path in seen:
            continue
        seen.add(path)
        content = files.read(path)
        if content is None:
            complete = False
            continue
        for name, values in parse_conf(content):
            if name == "include" and values:
                pending.append(values[0])
            collected.append((name, values))
    return collected, complete


def effective_settings(args: Sequence[str], files: FileIndex) -> RedisSettings:
    conf, argv_directives = parse_args(args)
    return RedisSettings(conf, argv_directives, files)


@dataclass(frozen=True)
class RedisServer:
    """A Redis server container with its effective settings and the stack's uploaded files."""

    resource: Resource
    settings: RedisSettings
    files: FileIndex

    def acl_rules(self) -> list[tuple[str, ...]] | None:
        """Every ACL `user` rule (name first), or None when the ACL cannot be read."""
        users = [values for values in self.settings.all("user") if values]
        if not self.settings.known("aclfile"):
            return None
        aclfile = self.settings.value("aclfile")
        if aclfile:
            content = self.files.read(aclfile)
            if content is None:
                return None
            users.extend(
                values for name, values in parse_conf(content) if name == "user" and values
            )
        return users


def redis_servers(resources: Iterable[Resource]) -> list[RedisServer]:
    resources = [r for r in resources if r.type == CONTAINER]
    servers = []
    for resource in resources:
        args = server_args(resource.props)
        if args is None:
            continue
        others = [r.props for r in resources if r is not resource]
        files = FileIndex(resource.props, others)
        servers.append(RedisServer(resource, effective_settings(args, files), files))
    return servers


def server_from_props(
    props: Mapping[str, Any], name: str = "redis", stack_uploads: Sequence[Upload] = ()
) -> RedisServer | None:
    """One Redis server from bare props (unit tests, and foreign single-container stacks)."""
    args = server_args(props)
    if args is None:
        return None
    files = FileIndex.of(uploads(props), stack_uploads)
    return RedisServer(Resource(CONTAINER, name, props), effective_settings(args, files), files)


def network_names(props: Mapping[str, Any]) -> list[str]:
    return [
        n for n in (text(mapping(e).get("name")) for e in _list(props, "networksAdvanced")) if n
    ]


def aliases(props: Mapping[str, Any]) -> set[str]:
    """The host names other containers can use for this container."""
    names = {text(props.get("name")) or "", text(props.get("hostname")) or ""}
    for entry in _list(props, "networksAdvanced"):
        names.update(strings(mapping(entry).get("aliases")))
    names.discard("")
    return names


def _list(props: Mapping[str, Any], key: str) -> list[Any]:
    value = props.get(key)
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    return []
