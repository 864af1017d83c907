"""What a Redis server container is configured to do, as the server itself would see it.

Recognition (`recognise`) works the way a reviewer reads a program: by what the container runs
(`redis-server`, also behind `sh -c` or `docker-entrypoint.sh`), the image it runs (its
reference, or the `RemoteImage`/`Image` resource its image ID or digest comes from), and, when
those say nothing, by the signs a Redis leaves: a `redis-cli` health check, a well-known Redis
port, server settings in `REDIS_*` variables. Names and labels never count
(docs/design.md#policy-readable-declarations). When the signs are not enough to decide, the
verdict is UNSURE and the pack says so; it never skips silently.

Effective settings are layered as Redis applies them: the image's own defaults (the official
image turns protected mode off), then the config file it loads (`redis-server <file>`), then
`--name value` arguments, which win; an `include` (in a file or on argv) is read where it
stands, as Redis does, so it overrides what came before it and what comes after overrides it.
A file's text is looked up among the stack's uploads by base name: the container's own
uploads first, else the one distinct text uploaded under that name anywhere in the stack (for
example by a one-shot init container that copies it into a volume:
docs/design.md#material-delivery). When a file cannot be read, or the
container starts Redis through a script the pack cannot see, a setting that is not on argv is
*unknown*, and rules fail closed on it.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import itertools
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Final

from infra.rendered_resource import REDACTED
from policies.rules import _bitnami
from policies.rules._environment import FLOORS, Environment, Floor, floor
from policies.rules._model import (
    IMAGE,
    REGISTRY_IMAGE,
    REMOTE_IMAGE,
    Resource,
    Unreadable,
)
from policies.rules._props import (
    argv,
    entries,
    envs,
    healthcheck_tests,
    is_unknown_value,
    known_text,
    label,
    number,
    reading,
    shell_words,
    strings,
    text,
    text_at,
    uploads,
)
from policies.rules._service_shape import network_mode_network, task_containers

# Redis and the forks that take its arguments, config files and protocol (Valkey, KeyDB).
SERVER_BINARIES: Final = frozenset(
    {"redis-server", "redis-stack-server", "valkey-server", "keydb-server"}
)
CLIENT_BINARIES: Final = frozenset({"redis-cli", "valkey-cli", "keydb-cli"})
# Redis Sentinel: the same server in sentinel mode (`redis-sentinel` is redis-server under
# another name; `redis-server <file> --sentinel` is the other way to start it).
SENTINEL_BINARIES: Final = frozenset({"redis-sentinel", "valkey-sentinel", "keydb-sentinel"})
_SENTINEL_IMAGE: Final = re.compile(
    r"^(?:[^/@]+/)*(?:redis-sentinel|valkey-sentinel)(?::[\w.-]+)?(?:@\S+)?$", re.IGNORECASE
)
# Servers that speak Redis's protocol but take neither its arguments nor its config file: the
# Redis rules cannot read their settings, so every one of them fails closed, saying so.
_FOREIGN_SERVERS: Final = (
    ("Dragonfly", re.compile(r"^(?:[^/@]+/)*dragonfly(?::[\w.-]+)?(?:@\S+)?$", re.I), "dragonfly"),
    ("Garnet", re.compile(r"^(?:[^/@]+/)*garnet(?::[\w.-]+)?(?:@\S+)?$", re.I), "garnetserver"),
    ("Apache Kvrocks", re.compile(r"^(?:[^/@]+/)*kvrocks(?::[\w.-]+)?(?:@\S+)?$", re.I), "kvrocks"),
)
# Redis tools that are not a server: a container running one of these is a client.
_REDIS_TOOLS: Final = CLIENT_BINARIES | {"redis-benchmark", "redis-check-aof", "redis-check-rdb"}
# The repository part of an image reference names a Redis server image: redis, redis:7,
# docker.io/library/redis@sha256:..., bitnami/redis:7.2, redis/redis-stack-server, valkey,
# eqalpha/keydb; cluster nodes (bitnami/redis-cluster, bitnami/valkey-cluster,
# grokzen/redis-cluster) and redis-server with modules loaded (valkey/valkey-bundle,
# redislabs/redismod, redislabs/redisearch, redislabs/rejson, ...), which start their server
# through entrypoints and configs of their own.
_REDIS_IMAGE: Final = re.compile(
    r"^(?:[^/@]+/)*(?:redis|redis-stack|redis-stack-server|valkey|redis-server|keydb"
    r"|redis-cluster|valkey-cluster|valkey-bundle|redismod|redisearch|rejson|redisgraph"
    r"|redistimeseries|rebloom|redisbloom|redisgears|redisai)"
    r"(?::[\w.-]+)?(?:@\S+)?$",
    re.IGNORECASE,
)
# Images whose entrypoint is docker-library's: no config file, `protected-mode no` compiled in.
_OFFICIAL_IMAGE: Final = re.compile(
    r"^(?:(?:docker\.io/)?library/|docker\.io/)?(?:redis|valkey/valkey)(?::[\w.-]+)?(?:@\S+)?$",
    re.IGNORECASE,
)
# Redis Ltd's redis-stack images: CMD ["/entrypoint.sh"] and no ENTRYPOINT. The script runs
# `redis-server [/redis-stack.conf] --dir ${REDIS_DATA_DIR:-/data} --protected-mode no
# --daemonize no`, then `--loadmodule <lib> ${<MODULE>_ARGS}` for each module, then
# `${REDIS_ARGS}`: unquoted (split at whitespace, quotes kept as characters) and last, so the
# options in it win over the script's own (the images' documented way to set requirepass).
_STACK_IMAGE: Final = re.compile(
    r"^(?:[^/@]+/)?redis/redis-stack(?:-server)?(?::[\w.-]+)?(?:@\S+)?$", re.IGNORECASE
)
_STACK_ENTRYPOINT: Final = "/entrypoint.sh"
_STACK_CONF: Final = "/redis-stack.conf"
STACK_OPTIONS_ENV: Final = "REDIS_ARGS"
_STACK_WRAPPER: Final = "redis-stack-server"
_STACK_WRAPPER_HINT: Final = (
    "redis-stack-server starts redis-server with --protected-mode no and a --loadmodule per "
    "module of its own, then its arguments, which win: set redis-server's options after it (no "
    "option unloads a module: run redis-server from an image without modules to load none)."
)
# Loaded by every version of the script; RedisGraph (6.2) and RedisGears (7.2) by some, so their
# arguments count only when the container sets them.
_STACK_MODULES: Final = (
    ("redisearch", "REDISEARCH_ARGS", True),
    ("redistimeseries", "REDISTIMESERIES_ARGS", True),
    ("rejson", "REDISJSON_ARGS", True),
    ("redisbloom", "REDISBLOOM_ARGS", True),
    ("redisgraph", "REDISGRAPH_ARGS", False),
    ("redisgears", "REDISGEARS_ARGS", False),
)
# The official redis image from Redis 8 on is built with its modules (amd64, arm64), and its
# docker-entrypoint.sh appends `--loadmodule` for each .so in OFFICIAL_MODULE_DIR when it starts
# redis-server (not a sentinel). A tag that names no version (latest, alpine) is the newest
# release. A reference by digest alone names no version: whether modules load is unknown, and
# the rule that refuses module loads fails closed on it (its message says how to name one).
_OFFICIAL_REDIS: Final = re.compile(
    r"^(?:(?:docker\.io/)?library/|docker\.io/)?redis(?::(?P<tag>[\w.-]+))?(?P<digest>@\S+)?$",
    re.IGNORECASE,
)
OFFICIAL_MODULE_DIR: Final = "/usr/local/lib/redis/modules/"
_OFFICIAL_MODULES: Final = ("redisbloom", "redisearch", "rejson", "redistimeseries")
OFFICIAL_IMAGE_DEFAULTS: Final = {"protected-mode": ("no",)}
"""docker-library/redis builds redis-server with protected mode off by default."""
UNKNOWN_DEFAULTS: Final = frozenset(OFFICIAL_IMAGE_DEFAULTS)
"""What another image's redis-server does by default is not known: one built FROM the official
image, or the official image pulled through a registry mirror (docker.m.daocloud.io/redis:5),
has the official image's patched default; one that compiled Redis itself has Redis's."""
REDIS_PORTS: Final = frozenset({6379, 6380, 16379})
# Server settings passed through the environment (bitnami/redis; redis-stack's REDIS_ARGS).
_SERVER_ENV: Final = re.compile(
    r"^(?:REDIS_(?:ARGS|EXTRA_FLAGS|CONF|ACL|AOF_ENABLED|DISABLE_COMMANDS|REPLICATION_MODE"
    r"|TLS_ENABLED|TLS_PORT|PORT_NUMBER|MASTER_\w+)|ALLOW_EMPTY_PASSWORD)$"
)
# Where a file that could not be read stands among the directives (see RedisSettings._load).
_UNREADABLE: Final = "\0unreadable"
_SHELLS: Final = frozenset({"sh", "bash", "ash", "dash", "zsh"})
# Programs that start the next one with the arguments they were given, expanding nothing
# (docker-library's docker-entrypoint.sh ends in `exec "$@"`, through gosu when root).
_EXEC_WRAPPERS: Final = frozenset(
    {"docker-entrypoint.sh", "tini", "tini-static", "dumb-init", "--", "gosu", "su-exec"}
)
_TAKES_A_USER: Final = frozenset({"gosu", "su-exec"})
_SHELL_SEPARATORS: Final = frozenset({";", "&&", "||", "|", "&"})
# Directives that may repeat (client-output-buffer-limit: one line per client class); every
# other directive keeps its last value.
_REPEATABLE: Final = frozenset(
    {"user", "loadmodule", "rename-command", "save", "include", "client-output-buffer-limit"}
)


_ALIASES: Final = {"slaveof": "replicaof"}
"""Directives that are another's second name: Redis keeps one setting for both, so the last
occurrence of either wins and `replicaof no one` ends a `slaveof` (redis/src/config.c:
createSpecialConfig("replicaof", "slaveof", ...); tests/integration/
test_redis_config_differential.py, "slaveof, then replicaof no one")."""


def _canonical(name: str) -> str:
    return _ALIASES.get(name, name)


class Verdict(enum.Enum):
    SERVER = "server"
    NOT_REDIS = "not redis"
    UNSURE = "unsure"


@dataclass(frozen=True)
class Recognition:
    verdict: Verdict
    args: tuple[str, ...] | None = None
    """What redis-server receives, or None when it starts through something the pack cannot
    read (a script file, an unknown image's default command)."""
    image: str = ""
    """The image reference, resolved through the stack's image resources where possible."""
    signs: tuple[str, ...] = ()
    """Why: the signs that made (or failed to make) the decision; never a value."""
    sentinel: bool = False
    """It runs in sentinel mode (Redis Sentinel), not as a data server."""
    foreign: str = ""
    """A Redis-protocol server that is not Redis or a fork taking its settings (Dragonfly)."""
    options_env: str = ""
    """The variable the image's entrypoint reads redis-server's options from (REDIS_ARGS)."""
    hint: str = ""
    """What the script that starts redis-server adds of its own, for every Redis message."""
    unknown: tuple[tuple[str, str], ...] = ()
    """(directive, why) for settings the pack cannot tell although it reads the arguments (a
    digest that names no version); never a value."""
    options_file: str = ""
    """The file, beside `options_env`, the image's script reads options from."""
    started_by: str = ""
    """Why `args` is None, when the recognition knows it better than its image does."""
    defaults: tuple[tuple[str, tuple[str, ...]], ...] | None = None
    """The image's redis-server defaults where they are known to be Redis's own with these
    changes (Bitnami's build); None: decided by the image reference (effective_settings)."""
    rewritten: tuple[str, ...] = ()
    """Files redis-server loads that its start script names before starting it: what they
    hold then is unknown, whatever the stack uploads under those names (`_rewritten`)."""
    argv_literal: bool = False
    """Nothing that could expand a variable stands between Docker and redis-server (no shell,
    no script the pack cannot read: `_expands_nothing`), so `${NAME}` in `args` is that text."""
    arguments_why: str = ""
    """Why settings its argv does not set after a word its shell expands are unknown
    (SHELL_ARGUMENTS); "" when no such word stands among its arguments."""
    branches: tuple[Recognition, ...] = ()
    """The other servers its script starts (`_servers_args_in`): another branch of an `if`,
    or another server beside this one; each is judged as this one is."""

    def __post_init__(self) -> None:
        # What the server receives is the words as given, without `_argv_words`'s marks.
        if self.args is not None and any(_GIVEN_OPERATOR in arg for arg in self.args):
            unmarked = tuple(arg.replace(_GIVEN_OPERATOR, "") for arg in self.args)
            object.__setattr__(self, "args", unmarked)


def _image(props: Mapping[str, Any]) -> str:
    """The image reference, or "" while it is unknown (e.g. a digest computed at `pulumi up`)."""
    try:
        return text(props.get("image"), "image") or ""
    except Exception as exc:
        if is_unknown_value(exc):
            return ""
        raise


# Per image resource: the property naming what is pulled or built, then every property a
# container may take its image from (pulumi-docker's names; RemoteImage `latest` is v3's
# `imageId`; `id` is among a bridged resource's outputs under the engine).
_IMAGE_REFERENCES: Final = {
    REMOTE_IMAGE: ("name", "imageId", "repoDigest", "latest", "id"),
    IMAGE: ("imageName", "baseImageName", "repoDigest", "id"),
    REGISTRY_IMAGE: ("name", "sha256Digest", "id"),
}


class ImageIndex:
    """Image IDs and digests of this stack's image resources, mapped to the reference pulled."""

    def __init__(self, resources: Iterable[Resource] = ()) -> None:
        self._names: dict[str, str] = {}
        for resource in resources:
            keys = _IMAGE_REFERENCES.get(resource.type)
            if keys is None:
                continue
            props = resource.props
            name = known_text(props, keys[0])
            if not name:
                continue
            for key in keys:
                value = known_text(props, key)
                if value:
                    self._names.setdefault(value, name)

    def resolve(self, image: str) -> str:
        return self._names.get(image, image)


def is_redis_image(reference: str) -> bool:
    return bool(_REDIS_IMAGE.match(reference))


def is_official_image(reference: str) -> bool:
    return bool(_OFFICIAL_IMAGE.match(reference))


def _words(args: list[str]) -> list[str]:
    """Health check tests with `CMD-SHELL` scripts split into words, as the shell runs them."""
    words: list[str] = []
    for arg in args:
        words.extend(shell_words(arg) if " " in arg.strip() else [arg])
    return words


# A shell's option cluster that takes the script next: -c, -ec, -euc, -lc.
_SCRIPT_FLAG: Final = re.compile(r"^-[a-zA-Z]*c[a-zA-Z]*$")


def _argv_words(args: Sequence[str]) -> list[str]:
    """argv as its programs receive it: a shell's `-c` script split into the words the shell
    runs (also one script inside another), and a first word with spaces (a whole command line
    given as one string) split the same way, its commands apart (`_script_words`). Every other
    word stays one argument, spaces and all, as exec hands it over: redis-server reads `--port
    0` as the line `port 0`, takes a first argument that is no option for its config file's
    name, and any other word for one value (`parse_args`)."""
    # Each word with whether it is argv's first, whether argv gives it (not a split), and how
    # many words were read when it was split off: a `-c` read before its split names its
    # script, not the script's first word (`P="a b"; ...` is one assignment).
    pending = [(arg, i == 0, True, 0) for i, arg in enumerate(args)]
    words: list[str] = []
    shell = False
    while pending:
        word, first, given, since = pending.pop(0)
        script = shell and len(words) > since and _SCRIPT_FLAG.match(words[-1]) is not None
        splits = (first or script) and _SPLIT_AT.search(word.strip()) is not None
        split = list(_script_words(word)) if splits else [word]
        if script and given and pending:
            # What follows a `-c` script is its $0, $1, ...: none of its commands' words.
            pending.insert(0, (";", False, False, len(words)))
        if split != [word]:
            pending[:0] = [(w, False, False, len(words)) for w in split]
            continue
        if given and word in _SHELL_SEPARATORS | {";;"}:
            # exec hands a `&` or `;` argv gives over as a plain argument, which no shell reads
            # (`--requirepass "&" --port 6379` sets both): marked, so no reading ends a command
            # at it, and unmarked in what a server receives (Recognition.args).
            word = _GIVEN_OPERATOR + word
        words.append(word)
        shell = shell or _program(word) in _SHELLS
    return _env_split_strings(words)


_GIVEN_OPERATOR: Final = "\ue000"
"""Marks a word argv gives as written that a shell would read as an operator (`_argv_words`)."""


def _env_split_strings(words: list[str]) -> list[str]:
    """`words` with `env -S STRING` (`-SSTRING`, `--split-string=STRING`, `--split-string
    STRING`) replaced by the words env splits STRING into and runs (`env -S 'redis-server
    --port 6379'`), split as a shell splits them: env's own escapes (`\\_`, `\\c`) and `${NAME}`
    are rare enough to leave to the reading of what a shell passes."""
    out: list[str] = []
    i = 0
    while i < len(words):
        out.append(words[i])
        if _program(words[i]) != "env":
            i += 1
            continue
        i += 1
        while i < len(words) and words[i].startswith("-") and words[i] != "--":
            option = words[i]
            if option in ("-S", "--split-string") and i + 1 < len(words):
                out += shell_words(words[i + 1])
                i += 2
            elif option.startswith("--split-string="):
                out += shell_words(option.partition("=")[2])
                i += 1
            elif option.startswith("-S"):
                out += shell_words(option[2:])
                i += 1
            else:
                out.append(option)
                i += 1
    return out


# What makes a shell string more than one word: blanks, newlines, command separators.
_SPLIT_AT: Final = re.compile(r"[\s;&|]")
# Control operators that end a command (`;;` ends a case branch); `&` and `|` next to a
# redirection (`2>&1`, `&>f`, `>|f`) are part of it.
_OPERATOR: Final = re.compile(r";;|;|&&|\|\||\||&")


@functools.lru_cache(maxsize=4096)  # every stack policy splits the same few scripts
def _script_words(script: str) -> tuple[str, ...]:
    """A shell script's words as the shell runs them, each command's apart: its commands
    (ended by a newline, `;`, `&&`, `||`, `|` or `&` outside quotes, `$(...)` and backquotes)
    joined by `;`, so that no command's words are read as another's arguments (an `if ...;
    then exec redis-server; else exec redis-server --requirepass ...; fi` is four commands).
    A comment runs to the end of its line."""
    words: list[str] = []
    for command in _script_commands(script):
        # A command substitution runs before the command it stands in (`x=$(redis-server
        # ...)`, `echo $(redis-server ...)`): its commands come first, and it stays one word.
        inner = [w for text in _substitutions(command) for w in (";", *_script_words(text))]
        split = _run_as_scripts(_whole_substitutions(shell_words(_posix_quoting(command))))
        split = [*inner[1:], ";", *split] if inner and split else inner[1:] or split
        if split:
            words.extend([";", *split] if words else split)
    return tuple(words)


# What may stand before `eval` or `trap` in a command and still run it: reserved words, and
# `command` or `builtin`, which run the builtin named next.
_BEFORE_A_BUILTIN: Final = frozenset(
    {"if", "then", "else", "elif", "while", "until", "do", "!", "{", "command", "builtin"}
)


def _run_as_scripts(split: list[str]) -> list[str]:
    """A command's words with the text it runs as a script read as that script's words: `eval`'s
    arguments, joined (also after `then`, `command`, `builtin`), and a `trap`'s action, which
    runs on a signal or at exit (`trap 'redis-server --port 6379' EXIT`)."""
    lead = 0
    while lead < len(split) and split[lead] in _BEFORE_A_BUILTIN:
        lead += 1
    keywords = [w for w in split[:lead] if w not in ("command", "builtin")]
    rest = split[lead:]
    if rest[:1] == ["eval"]:
        return [*keywords, *_script_words(" ".join(rest[1:]))]
    if rest[:1] == ["trap"] and len(rest) > 2 and not rest[1].startswith("-"):
        return [*keywords, *_script_words(rest[1])]
    return split


_ANSI_C_ESCAPES: Final = {
    "a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r",
    "t": "\t", "v": "\v", "\\": "\\", "'": "'", '"': '"', "?": "?",
}  # fmt: skip
_ANSI_C_ESCAPE: Final = re.compile(r"x[0-9a-fA-F]{1,2}|[0-7]{1,3}|u[0-9a-fA-F]{1,4}")


def _posix_quoting(command: str) -> str:
    """`command` with the quoting shlex does not know written in a form it reads as the shell
    does: inside double quotes `\\$` and `\\``` are a literal `$` and backquote (shlex keeps the
    backslash), and bash's `$'...'` is the text its escapes make (`$'--port\\x206379'` is one
    word, `--port 6379`), single-quoted. dash reads `$'...'` as `$` and a quoted string, which
    starts no server bash would not: bash's reading is the stricter. Whether a `$` left in a
    word is an expansion is told from the script as written (`_expands`)."""
    out: list[str] = []
    i, quote = 0, ""
    while i < len(command):
        char = command[i]
        if quote == "'":
            quote = "" if char == "'" else quote
        elif char == "\\":
            if quote == '"' and command[i + 1 : i + 2] in ("$", "`"):
                out.append(command[i + 1])
                i += 2
                continue
            out.append(command[i : i + 2])
            i += 2
            continue
        elif char == '"':
            quote = "" if quote == '"' else '"'
        elif char == "'" and not quote:
            quote = "'"
        elif char == "$" and not quote and command[i + 1 : i + 2] == "'":
            text, i = _ansi_c(command, i + 2)
            out.append("'" + text.replace("'", "'\\''") + "'")
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _ansi_c(command: str, i: int) -> tuple[str, int]:
    """The text of bash's `$'...'` whose body starts at `i`, and the index after its quote."""
    out: list[str] = []
    while i < len(command) and command[i] != "'":
        if command[i] == "\\" and i + 1 < len(command):
            escape = _ANSI_C_ESCAPE.match(command, i + 1)
            code = escape.group(0) if escape else command[i + 1]
            if code[0] in "xu" and len(code) > 1:
                out.append(chr(int(code[1:], 16)))
            elif code[0] in "01234567":
                out.append(chr(int(code, 8) & 0xFF))
            else:
                out.append(_ANSI_C_ESCAPES.get(code, "\\" + code))
            i += 1 + len(code)
            continue
        out.append(command[i])
        i += 1
    return "".join(out), i + 1


@functools.lru_cache(maxsize=1024)  # asked for every word a shell passes, by every rule
def _live_dollars(script: str) -> frozenset[int]:
    """Where in `script` a `$` may expand: outside single quotes and bash's `$'...'`, and not
    escaped by a backslash (`'$X'` and `"\\$X"` are the text `$X`)."""
    live: set[int] = set()
    i, quote = 0, ""
    while i < len(script):
        char = script[i]
        if quote == "'":
            quote = "" if char == "'" else quote
        elif char == "\\":
            i += 1
        elif char == '"':
            quote = "" if quote == '"' else '"'
        elif char == "'" and not quote:
            quote = "'"
        elif char == "$" and not quote and script[i + 1 : i + 2] == "'":
            _, i = _ansi_c(script, i + 2)
            continue
        elif char == "$":
            live.add(i)
        i += 1
    return frozenset(live)


def shell_literal(value: str, props: Mapping[str, Any]) -> bool:
    """Whether a value with a `$` or backquote in it is handed over as written by the shell
    on the container's command line (`'$X'`, `"\\$X"`): then it is that text, to judge."""
    return bool(re.search(r"[$`]", value)) and not _expands(value, " ".join(argv(props)))


def _expands(word: str, script: str) -> bool:
    """Whether the shell may expand a `$` of `word` (a word of `script`): True unless every
    place the script writes its text has that `$` quoted (`'$X'`) or escaped (`"\\$X"`); then
    the shell hands the program the text as written."""
    at = word.find("$")
    if at < 0:
        return "`" in word
    live = _live_dollars(script)
    found = [m.start() for m in re.finditer(re.escape(word[at:]), script)]
    return not found or any(i in live for i in found)


def _substitutions(command: str) -> list[str]:
    """The scripts of the command substitutions (`$(...)`, backquotes) and bash's process
    substitutions (`<(...)`, `>(...)`, unquoted) in a command's text, outermost first,
    outside single quotes."""
    found: list[str] = []
    i, quote = 0, ""
    while i < len(command):
        char = command[i]
        if quote == "'":
            quote = "" if char == "'" else quote
        elif char == "\\":
            i += 1
        elif char == "'" and not quote:
            quote = "'"
        elif char == '"':
            quote = "" if quote == '"' else '"'
        elif char == "`":
            end = command.find("`", i + 1)
            if end < 0:
                break
            found.append(command[i + 1 : end])
            i = end
        elif (command.startswith("$(", i) and not command.startswith("$((", i)) or (
            not quote and command.startswith(("<(", ">("), i)  # bash's process substitution
        ):
            depth, j = 1, i + 2
            while j < len(command) and depth:
                depth += {"(": 1, ")": -1}.get(command[j], 0)
                j += 1
            if depth:
                break
            found.append(command[i + 2 : j - 1])
            i = j - 1
        i += 1
    return found


def _whole_substitutions(words: list[str]) -> list[str]:
    """shlex's words with a command substitution or a `${...}` expansion that it split at
    blanks joined again into the one word the shell makes of it (`$(true ; true)`: a `;`
    inside it ends no command; `${EXTRA:+--port 6379}`: one expansion, which may hold
    options)."""
    joined: list[str] = []
    unclosed = False
    for word in words:
        if unclosed:
            joined[-1] += " " + word
        else:
            joined.append(word)
        current = joined[-1]
        unclosed = (
            sum(current.count(opening) for opening in ("$(", "<(", ">(")) > current.count(")")
            or current.count("${") > current.count("}")
            or current.count("`") % 2 == 1
        )
    return joined


def _script_commands(script: str) -> list[str]:  # noqa: PLR0912, PLR0915 - one branch per token
    """The script's commands as text, split at control operators outside quotes and
    substitutions (a stack of what encloses each character: a quote, `$(` or a backquote).

    A command's redirections (`>f`, `2>&1`, `>> f`, `<f`, `&>f`) outside quotes are the
    shell's, not its program's arguments: they are taken out and given as a command of their
    own before it (the shell opens them before the program starts), so `_rewritten` still
    sees a file they name. A quoted `'>pw'` (an ACL rule) stays a word; a here-document
    (`<<`) is left as it is written."""
    commands: list[str] = []
    current: list[str] = []
    redirections: list[str] = []
    enclosing: list[str] = []  # ' " ` or ( for $( ... )
    i = 0
    while i < len(script):
        char, step = script[i], 1
        inside = enclosing[-1] if enclosing else ""
        if inside == "'":
            if char == "'":
                enclosing.pop()
        elif char == "\\":
            if script[i + 1 : i + 2] == "\n":  # a line continuation joins the lines
                i += 2
                continue
            step = 2
        elif char == inside and inside in '"`':
            enclosing.pop()
        elif char == "$" and script[i + 1 : i + 2] == "(":
            enclosing.append("(")
            step = 2
        elif inside == '"':
            if char == "`":
                enclosing.append(char)
        elif char in "'\"`":
            enclosing.append(char)
        elif inside == "(" or (inside == "`" and char not in "()"):
            if char == "(":
                enclosing.append(char)
            elif char == ")" and inside == "(":
                enclosing.pop()
        elif inside == "`":
            pass
        elif char == "#" and (not current or current[-1].isspace()):
            end = script.find("\n", i)  # a comment, to the end of its line
            i = len(script) if end < 0 else end
            continue
        elif char in "<>" and script[i + 1 : i + 2] == "(":  # bash's `<(...)`, `>(...)`
            enclosing.append("(")
            step = 2
        elif char in "<>" and script[i : i + 2] != "<<":
            after = _redirection_end(script, i)
            if after is not None:
                fd = _fd_before(current)
                redirections.append("".join(current[len(current) - fd :]) + script[i:after])
                current[len(current) - fd :] = [" "]
                i = after
                continue
        elif char == "<":  # a here-document's `<<` (or `<<<`), as written
            step = len(script[i:]) - len(script[i:].lstrip("<"))
        elif char == "\n" or _operator_at(script, i):
            commands.extend([" ".join(redirections), "".join(current)])
            current, redirections = [], []
            operator = _OPERATOR.match(script, i)
            if operator and operator.group(0) == "|":
                commands.append("|")  # what reads the pipe reads the command's output (_unseen)
            i += len(operator.group(0)) if operator else 1
            continue
        current.append(script[i : i + step])
        i += step
    commands.extend([" ".join(redirections), "".join(current)])
    return [command for command in commands if command.strip()]


# A redirection operator (after its file descriptor), and what ends its target word unquoted.
_REDIRECTION_OPERATOR: Final = re.compile(r">>|>\||>&|<&|<>|>|<")
_WORD_END: Final = frozenset(" \t\n;&|<>()")


def _fd_before(current: list[str]) -> int:
    """How many of `current`'s last characters belong to the redirection starting next: its
    file descriptor (`2>`) or bash's `&>`, when they start a word (`a2>f` is the word `a2`)."""
    j = len(current)
    if current[j - 1 : j] == ["&"]:
        j -= 1
    else:
        while j and current[j - 1].isdigit():
            j -= 1
    starts_word = j == 0 or current[j - 1].isspace()
    return len(current) - j if starts_word else 0


def _redirection_end(script: str, i: int) -> int | None:
    """Where the redirection starting at `i` (its operator, blanks, its target word) ends, or
    None when it has no target or a quote in it does not close: then it is read as before,
    as words (fail closed)."""
    operator = _REDIRECTION_OPERATOR.match(script, i)
    if operator is None:  # not reached: script[i] is < or >
        return None
    j = operator.end()
    while j < len(script) and script[j] in " \t":
        j += 1
    start, depth, quote = j, 0, ""
    while j < len(script):
        char = script[j]
        if quote:
            if char == quote:
                quote = ""
            elif char == "\\" and quote == '"':
                j += 1
        elif char == "\\":
            j += 1
        elif char in "'\"`":
            quote = char
        elif char == "$" and script[j + 1 : j + 2] == "(":
            depth += 1
            j += 1
        elif char == ")" and depth:
            depth -= 1
        elif depth == 0 and char in _WORD_END:
            break
        j += 1
    if quote or depth or j == start or j > len(script):
        return None
    return j


def _operator_at(script: str, i: int) -> bool:
    """Whether a control operator starts at `i` (not `&`/`|` in a redirection: `2>&1`,
    `&>f`, `>|f`)."""
    char = script[i]
    if char not in ";&|":
        return False
    before, after = script[i - 1 : i], script[i + 1 : i + 2]
    in_redirection = (before and before in "<>") or (char == "&" and after == ">")
    return char == ";" or not in_redirection


@functools.lru_cache(maxsize=4096)  # called for every word of every argv, by every stack policy
def _program(word: str) -> str:
    return PurePosixPath(word).name


_Found = tuple[str, list[str], bool, list[str]]


_STARTS_A_SERVER: Final = SERVER_BINARIES | SENTINEL_BINARIES
# Programs that take a server's name as an operand and do not run it (`command -v
# redis-server`, `pgrep redis-server`, `echo redis-server`).
_NAMES_A_PROGRAM: Final = frozenset(
    {"command", "which", "type", "hash", "pgrep", "pkill", "killall", "pidof", "echo", "printf"}
)
_ASSIGNMENT: Final = re.compile(r"^[A-Za-z_]\w*=")
# What may stand before a command's program: reserved words, `!`, `{`, `exec`.
_KEYWORDS: Final = frozenset({"if", "then", "else", "elif", "while", "until", "do", "!", "{",
                              "exec"})  # fmt: skip


def _head(words: list[str]) -> str:
    """The program a command's words before a server run, if any: the first after reserved
    words, assignments and the shell (with its options) whose script it is; "" if none."""
    for j, word in enumerate(words):
        if word == "command":
            # `command -v X` names X; `command X` (or `command -p X`) runs it.
            options = itertools.takewhile(lambda w: w.startswith("-"), words[j + 1 :])
            if any("v" in option or "V" in option for option in options):
                return word
            continue
        if not (
            word in _KEYWORDS
            or _ASSIGNMENT.match(word)
            or _program(word) in _SHELLS
            or word.startswith("-")
        ):
            return word
    return ""


# Options after which redis-server prints or tests something and exits without serving.
_EXITS_AT_ONCE: Final = frozenset(
    {"-v", "--version", "-h", "--help", "--test-memory", "--check-system"}
)


def _servers_args_in(words: list[str]) -> list[_Found]:
    """Every command that starts a server, in the order written: (the server program, what it
    receives, whether it runs as a sentinel, the words before it but other servers' commands).
    A script may start one of several (`if ...; then exec redis-server; else exec
    redis-server --requirepass ...; fi`) or more than one: each is judged, as any may be the
    one that runs. A command that only names a server (`command -v redis-server`) or has it
    print its version is none, unless nothing else starts one (read as before)."""
    commands: list[tuple[int, int]] = []  # (start, end) of each command in `words`
    start = 0
    for i, word in enumerate([*words, ";"]):
        if word in _SHELL_SEPARATORS:
            commands.append((start, i))
            start = i + 1
    found: list[tuple[_Found, bool, range]] = []
    for start, end in commands:
        for i in range(start, end):
            program = _program(words[i])
            if program in _STARTS_A_SERVER:
                rest = words[i + 1 : end]
                sentinel = program in SENTINEL_BINARIES or "--sentinel" in rest
                serves = _program(_head(words[start:i])) not in _NAMES_A_PROGRAM and not (
                    rest and rest[0] in _EXITS_AT_ONCE
                )
                found.append(((program, rest, sentinel, words[:i]), serves, range(start, end)))
                break
    serving = [item for item in found if item[1]] or found[:1]
    others = {j for _, _, span in serving for j in span}
    return [
        (program, rest, sentinel, [w for j, w in enumerate(before) if j in span or j not in others])
        for (program, rest, sentinel, before), _, span in serving
    ]


# A word of a script as a file name: without a redirection before it (`>f`, `2>>f`, `<f`) or a
# separator after it (`f;`).
_REDIRECTION: Final = re.compile(r"^\d*[<>]+&?|[;&|]+$")


def _rewritten(before: list[str], given: Sequence[str]) -> tuple[str, ...]:
    """The files redis-server loads (its config file, each `--include`) that the script names
    before it starts redis-server: `envsubst < f > f` (which empties f), `sed -i ... f`,
    `echo ... >> f`, `cp tmpl f`. What Redis then reads is not what the stack uploaded, so the
    upload must not be read as its config (a script that only reads the file, `cat f`, is
    taken the same way: the pack cannot tell a write from a read)."""
    conf, directives = parse_args(given)
    loaded = ([conf] if conf else []) + [v[0] for n, v in directives if n == "include" and v]
    named = {_program(_REDIRECTION.sub("", word)) for word in before}
    return tuple(path for path in loaded if _program(path) in named)


def _until_separator(words: list[str]) -> list[str]:
    for j, w in enumerate(words):
        if w in _SHELL_SEPARATORS:
            return words[:j]
    return words


def _entrypoint_options(words: list[str], implicit: bool) -> list[str] | None:
    """What docker-library's `docker-entrypoint.sh` hands redis-server, or None.

    The script prepends `redis-server` when its first argument is an option (`-x`, `--x`) or
    names a `.conf` file, and runs anything else as given. It runs where argv names it (also
    inside `sh -c "... && exec docker-entrypoint.sh --opt v"`), or, `implicit`, as the image's
    own entrypoint when the container sets no `entrypoints` (Docker then runs it with the
    command as its arguments)."""
    given: list[str] | None = words if implicit else None
    for i, word in enumerate(words):
        if _program(word) == "docker-entrypoint.sh":
            given = _until_separator(words[i + 1 :])
            break
    if given and (given[0].startswith("-") or given[0].endswith(".conf")):
        return given
    return None


def _before_redis_7(image: str) -> dict[str, tuple[str, ...]]:
    """The official redis image tagged 6 or older: DEBUG, MODULE and every CONFIG parameter are
    on, with no directive to turn them off (they came in Redis 7.0)."""
    match = _OFFICIAL_REDIS.match(image)
    version = re.match(r"\d+", (match["tag"] or "") if match else "")
    if version is None or int(version.group(0)) >= 7:
        return {}
    return dict.fromkeys(_bitnami.ESCAPE_HATCHES, ("yes",))


def before_redis(image: str, major: int, minor: int) -> bool:
    """Whether the official redis image's tag names a Redis older than major.minor
    (`3.0.7-alpine` is before 3.2). A tag naming the major alone (`3`, `3-alpine`) is that
    major's last release, so it is before major.minor only when its major is; another image,
    or a tag naming no version (`latest`, `alpine`), is not."""
    match = _OFFICIAL_REDIS.match(image)
    version = re.match(r"(\d+)(?:\.(\d+))?", (match["tag"] or "") if match else "")
    if version is None:
        return False
    if int(version.group(1)) != major or version.group(2) is None:
        return int(version.group(1)) < major
    return int(version.group(2)) < minor


def _entrypoint_modules(image: str) -> tuple[str, ...] | None:
    """The `--loadmodule` options the official image's entrypoint adds (Redis 8 and later);
    None when the reference is a digest alone, which names no version."""
    match = _OFFICIAL_REDIS.match(image)
    if match is None:
        return ()
    if match["tag"] is None and match["digest"]:
        return None
    version = re.match(r"\d+", match["tag"] or "")
    if version is not None and int(version.group(0)) < 8:
        return ()
    return tuple(
        option
        for module in _OFFICIAL_MODULES
        for option in ("--loadmodule", f"{OFFICIAL_MODULE_DIR}{module}.so")
    )


def _through_entrypoint(found: _Found, entrypoints: list[str]) -> bool:
    """Whether the image's docker-entrypoint.sh starts the redis-server found: as the image's
    entrypoint (no `entrypoints`, the command starting with it), or named just before it."""
    program, _, _, before = found
    if program != "redis-server":
        return False
    if not before:
        return not entrypoints
    return _program(before[-1]) == "docker-entrypoint.sh"


def _runs_stack_entrypoint(words: list[str]) -> bool:
    """Whether a redis-stack container runs its image's start script (its default command)."""
    rest, _ = _strip_wrappers(words)
    return not words or rest == [_STACK_ENTRYPOINT]


def _stack_server_args(props: Mapping[str, Any]) -> tuple[str, ...] | None:
    """What redis-stack's start script hands redis-server, from the container's variables;
    None when a variable it reads is a secret the records show redacted."""
    env = dict(envs(props))
    read = ("REDIS_DATA_DIR", STACK_OPTIONS_ENV, *(variable for _, variable, _ in _STACK_MODULES))
    if any(REDACTED in env.get(variable, "") for variable in read):
        return None
    targets = [u.path for u in uploads(props)]
    targets += [text_at(m, where, "target") or "" for where, m in entries(props, "mounts")]
    targets += [text_at(v, where, "containerPath") or "" for where, v in entries(props, "volumes")]
    args = [_STACK_CONF] if _STACK_CONF in targets else []
    args += ["--dir", env.get("REDIS_DATA_DIR") or "/data", "--protected-mode", "no",
             "--daemonize", "no"]  # fmt: skip
    return (*args, *_stack_modules(env), *env.get(STACK_OPTIONS_ENV, "").split())


def _stack_modules(env: Mapping[str, str]) -> list[str]:
    args = []
    for module, variable, always in _STACK_MODULES:
        if always or env.get(variable):
            args += ["--loadmodule", f"/opt/redis-stack/lib/{module}.so"]
            args += env.get(variable, "").split()
    return args


def _stack_wrapper_args(props: Mapping[str, Any], given: list[str]) -> tuple[str, ...] | None:
    """What `redis-stack-server` (redis-stack's wrapper script, on its images' PATH) hands
    redis-server: [FILE] --dir /var/lib/redis-stack --save "" --protected-mode no --daemonize
    no, the module loads, then its own arguments, which win; a first argument that is no
    option is its config file. Without one it loads the package's redis-stack.conf, which sets
    only port 6379 (Redis's default) and daemonize yes (overridden), so none is modelled."""
    env = dict(envs(props))
    if any(REDACTED in env.get(variable, "") for _, variable, _ in _STACK_MODULES):
        return None
    conf = given[:1] if given and not given[0].startswith("-") else []
    return (
        *conf,
        *("--dir", "/var/lib/redis-stack", "--save", "", "--protected-mode", "no"),
        *("--daemonize", "no"),
        *_stack_modules(env),
        *given[len(conf) :],
    )


def _foreign_server(image: str, rest: list[str], opaque: bool) -> str:
    """The Redis-protocol server (not Redis) this container runs, or "": named by its binary
    on argv, or by its image run with no command, only options, or a script."""
    for name, image_pattern, binary in _FOREIGN_SERVERS:
        if rest and _program(rest[0]) == binary:
            return name
        if image_pattern.match(image) and (not rest or rest[0].startswith("-") or opaque):
            return name
    return ""


def _strip_wrappers(words: list[str]) -> tuple[list[str], bool]:
    """Drop `exec`, `docker-entrypoint.sh`, `sh -c`, `tini --`; True when a script file is run."""
    rest = list(words)
    while rest:
        head = _program(rest[0])
        if head in _SHELLS:
            rest = [w for w in rest[1:] if w != "-c"]
        elif head in ("exec", "tini", "dumb-init", "gosu", "--", "docker-entrypoint.sh"):
            rest = rest[1:]
        else:
            break
    opaque = (
        bool(rest)
        and (rest[0].endswith(".sh") or "/" in rest[0])
        and (_program(rest[0]) not in SERVER_BINARIES | _REDIS_TOOLS)
    )
    return rest, opaque


def _programs_named(words: list[str], props: Mapping[str, Any], image: str) -> list[str]:
    """`words` with a variable or an alias that names a server program replaced by the
    program it names (`R=redis-server; $R --port 6379`, as shell_expanded resolves it;
    `alias r=redis-server` then `r --port 6379` at the start of a command: dash expands
    aliases in a script, into all the alias's words: `alias r="exec redis-server --port
    6379"` runs the server with those options too)."""
    aliases = {
        name: expansion
        for i, word in enumerate(words)
        if word == "alias"
        for after in itertools.takewhile(lambda w: w not in _SHELL_SEPARATORS, words[i + 1 :])
        for name, _, value in [after.partition("=")]
        for expansion in [shell_words(value)]
        if any(_program(w) in _STARTS_A_SERVER for w in expansion)
    }
    if not aliases and not any("$" in word for word in words):
        return words
    named: list[str] = []
    for i, word in enumerate(words):
        program = shell_expanded(word, props, image) if _VARIABLE.fullmatch(word) else None
        if program is None and word in aliases and (i == 0 or words[i - 1] in _SHELL_SEPARATORS):
            named += aliases[word]
            continue
        named.append(program if program and _program(program) in _STARTS_A_SERVER else word)
    return named


# Programs that run the next word as a program (with options of their own first), each with its
# options that take a value as the next word and how many operands come before the program
# (`timeout 10 cmd`, `chroot /new cmd`, `gosu user cmd`).
_RUNS_THE_NEXT: Final[dict[str, tuple[frozenset[str], int]]] = {
    "exec": (frozenset({"-a"}), 0),
    "command": (frozenset(), 0),
    "builtin": (frozenset(), 0),
    "env": (frozenset({"-u", "--unset", "-C", "--chdir"}), 0),
    "nice": (frozenset({"-n", "--adjustment"}), 0),
    "nohup": (frozenset(), 0),
    "setsid": (frozenset(), 0),
    "timeout": (frozenset({"-s", "--signal", "-k", "--kill-after"}), 1),
    "stdbuf": (frozenset({"-i", "-o", "-e", "--input", "--output", "--error"}), 0),
    "chroot": (frozenset({"--userspec", "--groups"}), 1),
    "setpriv": (frozenset({"--reuid", "--regid", "--groups", "--ruid", "--euid", "--rgid",
                           "--egid", "--inh-caps", "--ambient-caps", "--bounding-set",
                           "--securebits", "--pdeathsig", "--selinux-label",
                           "--apparmor-profile"}), 0),
    "ionice": (frozenset({"-c", "--class", "-n", "--classdata"}), 0),
    "taskset": (frozenset(), 1),
    "tini": (frozenset({"-p", "-e"}), 0),
    "tini-static": (frozenset({"-p", "-e"}), 0),
    "dumb-init": (frozenset({"-r", "--rewrite"}), 0),
    "--": (frozenset(), 0),
    "gosu": (frozenset(), 1),
    "su-exec": (frozenset(), 1),
    "xargs": (frozenset({"-I", "-L", "-n", "-P", "-s", "-d", "-E", "-a", "--max-args",
                         "--max-procs", "--delimiter", "--arg-file"}), 0),
}  # fmt: skip
# The directories of programs a system installs; any other path names a file of the image's own.
_SYSTEM_BIN: Final = frozenset({"/bin", "/usr/bin", "/sbin", "/usr/sbin"})
# A redirection `_script_commands` gives as a command of its own: the shell's, no program.
_REDIRECTS: Final = re.compile(r"^(?:\d*(?:>>|>&|<&|<>|>\||>|<(?!<))|&>>?)")
# A file name as a message may show it (no quote, blank or expansion in it).
_PLAIN_PATH: Final = re.compile(r"^[\w./+-]+$")


def _program_and_runner(command: list[str]) -> tuple[str, str, list[str]]:
    """The program a command runs, past reserved words, assignments and the programs that run
    the next one (each with its options and operands: `timeout -s KILL 10 cmd`), the last of
    those (`xargs` runs what it reads), and the program's arguments."""
    rest: list[str] = []
    target = False  # the word after a bare redirection operator is its file
    for word in command:
        operator = _REDIRECTS.match(word)
        if not (target or operator or word in _KEYWORDS or _ASSIGNMENT.match(word)):
            rest.append(word)
        target = operator is not None and operator.end() == len(word)
    runner = ""
    while rest and _program(rest[0]) in _SHELLS and _SCRIPT_FLAG.match(rest[1] if rest[1:] else ""):
        rest = rest[2:]  # the shell whose script this is: its script's words follow
    while rest and _program(rest[0]) in _RUNS_THE_NEXT and runner != "xargs":
        runner = _program(rest[0])
        takes_value, operands = _RUNS_THE_NEXT[runner]
        rest = rest[1:]
        while rest and rest[0].startswith("-") and rest[0] != "--":
            rest = rest[2:] if _takes_next(rest[0], takes_value) else rest[1:]
        if rest[:1] == ["--"] and runner != "--":
            rest = rest[1:]
        while runner == "env" and rest and _ASSIGNMENT.match(rest[0]):
            rest = rest[1:]
        rest = rest[operands:]
    return (rest[0] if rest else ""), runner, rest[1:]


def _takes_next(option: str, takes_value: frozenset[str]) -> bool:
    """Whether the word after `option` is its value: a long option that takes one, or a cluster
    of short ones whose last takes one (GNU `env -iu NAME`, `-vC DIR`: NAME is no program)."""
    if option in takes_value or option.startswith("--"):
        return option in takes_value
    for at in range(1, len(option)):
        if "-" + option[at] in takes_value:
            return at == len(option) - 1  # else the rest of the cluster is its value: `-uNAME`
    return False


def _unseen(words: list[str], interpreters: bool = False) -> str:
    """What a script runs that the pack cannot read, in words for a message ("" if nothing):
    a script file (`/start.sh`, `sh file`), a sourced file (`. file`), a shell reading its
    script from its input (`... | sh`, `sh <<< ...`), what `xargs` reads run as a program
    (`| xargs env`), or a program a variable or a command substitution names (`$R`; not
    `"$@"`, the script's arguments, which the pack reads as its last command). Any of them may
    start a server with any settings, beside those the pack sees: one more unknown server."""
    start = 0
    piped = False  # the command reads a pipe (_script_commands keeps `|` as a command)
    for i, word in enumerate([*words, ";"]):
        if word not in _SHELL_SEPARATORS:
            continue
        command, start = words[start:i], i + 1
        if not command:
            piped = piped or word == "|"
            continue
        head, runner, args = _program_and_runner(command)
        if not head and not runner:  # redirections, given before their command: `sh < f`
            piped = piped or any(re.match(r"\d*<(?!<)", w) for w in command)
            continue
        piped, was_piped = word == "|", piped
        why = _unseen_in(head, runner, args, was_piped) or (
            _interpreted(head, args) if interpreters else ""
        )
        if why:
            return _unseen_why(why)
    return ""


def _unseen_in(head: str, runner: str, args: list[str], piped: bool) -> str:  # noqa: PLR0911
    """What one command runs that the pack cannot read (`_unseen`), or ""; `piped`: its input
    is a pipe or a file. One return per shape."""
    name = _program(head)
    if head in (".", "source"):
        return f"a file it sources{_named(args[:1])}"
    if any(c in head for c in "$`") and head.strip('"') not in ("$@", "$*", "${@}", "${*}"):
        return "a program a variable or command substitution names"
    if runner == "xargs" and (not head or name in _RUNS_THE_NEXT or name in _SHELLS):
        return "what xargs reads, as a program"
    if name in _SHELLS:
        operands = [w for w in args if not w.startswith("-") and w not in ("<<", "<<<")]
        if any(_SCRIPT_FLAG.match(w) for w in args):
            return ""  # its script is read (_argv_words)
        if operands and _program(operands[0]) in _STARTS_A_SERVER:
            return ""  # `sh redis-server ...`: a script's $0 and arguments (_argv_words)
        if operands and "<<<" not in args:
            return f"a script file{_named(operands[:1])}"
        if piped or "-s" in args or "<<" in args or "<<<" in args:
            return "a shell reading its script from its input (`| sh`, `sh <<<`, `sh < file`)"
        return ""
    if name in _STARTS_A_SERVER | _REDIS_TOOLS | set(_EXEC_WRAPPERS):
        return ""
    directory = str(PurePosixPath(head).parent)
    if head.endswith((".sh", ".bash")) or ("/" in head and directory not in _SYSTEM_BIN):
        return f"a script file{_named([head])}"
    return ""


# Interpreters whose program (a file, `-c`/`-e` code, a module) the pack cannot read.
_INTERPRETER: Final = re.compile(r"(?:python|perl|ruby|php|lua)[\d.]*|node(?:js)?|deno|bun")
_PRINTS_AND_EXITS: Final = frozenset({"-V", "-v", "--version", "-h", "--help"})


def _interpreted(head: str, args: list[str]) -> str:
    """An interpreter's program (`python x.py`, `node -e ...`): it may start a server with any
    settings, as a script file may (`_unseen_in`); not `python --version`."""
    name = _program(head)
    if not _INTERPRETER.fullmatch(name) or (args and args[0] in _PRINTS_AND_EXITS):
        return ""
    code = any(w in ("-c", "-e", "-E", "-m", "-r", "--eval") for w in args)
    operands = [] if code else [w for w in args if not w.startswith("-")]
    return f"a {name} program{_named(operands[:1])}"


def _named(paths: list[str]) -> str:
    return f" ({paths[0]})" if paths and _PLAIN_PATH.match(paths[0]) else ""


def _unseen_why(what: str) -> str:
    return (
        f"its start script runs {what}, which the pack cannot read and which may start a "
        f"server with any settings: run redis-server from the command line, its settings on "
        f"it or in an uploaded config file"
    )


def _signs(props: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(strong, weak) signs of a Redis server, named without values."""
    strong: list[str] = []
    weak: list[str] = []
    tests = [w for t in healthcheck_tests(props) for w in _words([t])]
    if any(_program(w) in CLIENT_BINARIES for w in tests):
        strong.append("a redis-cli health check")
    for where, port in entries(props, "ports"):
        internal = number(port.get("internal"), f"{where}.internal")
        if internal in REDIS_PORTS:
            strong.append(f"Redis port {int(internal)}")
            break
    server_env = sorted({key for key, _ in envs(props) if _SERVER_ENV.match(key)})
    if server_env:
        weak.append(f"server settings in {', '.join(server_env)}")
    return strong, weak


def _expands_nothing(props: Mapping[str, Any], image: str, before: Sequence[str]) -> bool:
    """Whether redis-server gets its arguments as the program wrote them: exec form (no shell
    among the words before it, none splitting a one-string command line), only wrappers that
    expand nothing before it, and an image entrypoint either replaced (`entrypoints`) or the
    official image's docker-entrypoint.sh. A shell, or a script the pack cannot read (another
    image's own entrypoint, `/start.sh`), may expand `${NAME}`: then nothing is judged literal."""
    raw = argv(props)
    if not raw or " " in raw[0].strip():
        return False
    if not strings(props.get("entrypoints"), "entrypoints") and not is_official_image(image):
        return False
    user_next = False
    for word in before:
        program = _program(word)
        if user_next:
            user_next = False
        elif program in _EXEC_WRAPPERS:
            user_next = program in _TAKES_A_USER
        else:
            return False
    return True


# `$NAME`, `${NAME}`, and `${NAME:-default}`/`${NAME-default}` with a default that is itself
# expanded by nothing (no `$`, backquote or quote).
_VARIABLE: Final = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_]\w*)(?:(?P<colon>:?)-(?P<default>[^}$`'\"\\]*))?\}"
    r"|(?P<bare>[A-Za-z_]\w*))"
)


# Variables a shell or Docker sets in every container, whatever its image: not "unset".
_SET_BY_THE_SHELL: Final = frozenset(
    {"HOME", "HOSTNAME", "PATH", "PWD", "OLDPWD", "SHLVL", "TERM", "IFS", "PPID", "OPTIND",
     "LINENO", "RANDOM", "SECONDS", "UID", "EUID", "USER", "PS1", "PS2", "PS4", "BASH",
     "BASH_VERSION", "REDIS_VERSION", "REDIS_DOWNLOAD_URL", "REDIS_DOWNLOAD_SHA", "GOSU_VERSION"}
)  # fmt: skip


def shell_expanded(  # noqa: PLR0911 - one return per way a shell resolves it
    value: str, props: Mapping[str, Any], image: str
) -> str | None:
    """What a shell on the container's command line makes of `value` when it is one variable:
    `$NAME`/`${NAME}` as the container sets it (empty too), and `${NAME:-default}`
    (`${NAME-default}`) as a shell resolves it, from the container's value when it sets one
    (non-empty for `:-`), else the default. A variable the container does not set is empty,
    and a default is taken, only on the official image, whose own ENV (REDIS_VERSION,
    REDIS_DOWNLOAD_*, GOSU_VERSION) sets no password: another image may set the variable
    itself. A variable the script assigns is its shortest literal value (empty if one
    assignment empties it), the pack cannot tell which assignment runs last; None when one
    assignment is not literal (`p=$(cat f)`). None otherwise (no shell, another shape, a
    variable the pack cannot know). Only for judging what redis-server receives, never for
    a message."""
    match = _VARIABLE.fullmatch(value.strip())
    if match is None or not _expands(value.strip(), " ".join(argv(props))):
        return None
    words = _argv_words(argv(props))
    if not any(_program(word) in _SHELLS for word in words):
        return None
    name = match["braced"] or match["bare"]
    assigned = _assigned(name, words)
    if assigned:
        if "" in assigned:
            return ""
        literal = [v for v in assigned if not re.search(r"[$`\\]", v)]
        return min(literal, key=len) if len(literal) == len(assigned) else None
    env = dict(envs(props))
    given = env.get(name)
    default = match["default"]
    official = (
        is_official_image(image)
        and name not in _SET_BY_THE_SHELL
        and not _set_otherwise(name, words, " ".join(argv(props)))
    )
    if default is None:
        return given if given is not None else ("" if official else None)
    if given is not None and (given or not match["colon"]):
        return given
    return default if given is not None or official else None


def _assigned(name: str, words: Sequence[str]) -> list[str]:
    """The values the script's words assign to the variable `name` (`name=value`), in order."""
    return [
        found.group(1)
        for word in words
        for found in [re.match(rf"(?:.*[\s;&|])?{name}=(.*)$", word, re.S)]
        if found is not None
    ]


# An expansion of a variable that sets nothing: `$NAME`, `${NAME}`, `${NAME:-x}`, `${#NAME}`, ...
# (not `${NAME:=x}`, which assigns it).
_READS_IT: Final = r"\$(?:{name}(?!\w)|\{{#?{name}(?:\}}|:?[-+?#%]|##|%%))"


# A command that may set any variable: a sourced file, eval (of text the pack may not see).
_SETS_ANY: Final = re.compile(r"(?:^|[\s;&|(`])(?:\.|source|eval)\s")


def _set_otherwise(name: str, words: Sequence[str], script: str) -> bool:
    """Whether the script may set `name` other than by `name=value` (which `_assigned`
    reads): it names it outside an expansion that only reads it (`for name in ...`, `read
    name`, `printf -v name`, `getopts ... name`, `${name:=x}`), or sources a file or evals
    text (`. file`, `eval "$X"`; `script` is the command line as written: eval's text is
    read as commands in `words`), which may set anything. Such a variable is no unset one,
    whatever the container's environment says. A program a variable names (`$R ...`) runs
    in a process of its own and sets none of the script's."""
    text = re.sub(_READS_IT.format(name=re.escape(name)), " ", " ".join(words))
    named = re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text) is not None
    return named or _SETS_ANY.search(script) is not None


def _assigned_values(word: str, props: Mapping[str, Any]) -> list[str]:
    """The values the script assigns to the variable `word` is ([] when it is no variable or
    the script assigns it none): which of them the shell passes depends on the branch it
    takes (`A=""; if ...; then A="--port 6379"; fi`), so no one of them stands for them all."""
    match = _VARIABLE.fullmatch(word.strip())
    if match is None:
        return []
    return _assigned(match["braced"] or match["bare"], _argv_words(argv(props)))


# What a shell expands into any number of words: the positional parameters, a bash array.
_ALL_ARGUMENTS: Final = re.compile(r"\$(?:[@*]|\{[@*]\}|\{[A-Za-z_]\w*\[[@*]\]\})")
# One expansion making a whole word: a variable or a command substitution.
_ONE_EXPANSION: Final = re.compile(r"\$(?:[A-Za-z_]\w*|\{[^}]*\}|\(.*\))|`.*`", re.S)
SHELL_ARGUMENTS: Final = "\0arguments a shell expands"
"""An `include` no upload answers, where a shell's expansion may put options of its own: what
comes before it is unknown unless argv sets it again after it (RedisSettings)."""
SHELL_ARGUMENTS_WHY: Final = (
    'its start script passes redis-server words the pack cannot read (a variable, "$@", a '
    "command substitution standing where an option would, or what xargs reads), which may set "
    "any option: give the options on redis-server's command line after them"
)


def _as_the_shell_passes(
    given: list[str], props: Mapping[str, Any], image: str
) -> tuple[list[str], bool]:
    """redis-server's arguments after the shell that starts it expands them, as far as the
    pack can tell, and whether a word may expand into options (marked by SHELL_ARGUMENTS).

    A variable the shell makes empty (`shell_expanded`) is an empty word where the script
    quotes it (`--requirepass "$REDIS_PASSWORD"` with no such variable: no password) and none
    where it does not. `"$@"`, `$*` or a bash array are any number of words, and any other
    variable or command substitution the pack cannot resolve (or resolves to blanks or an
    option, or split at another IFS the script sets), standing where an option would
    (not as the value an option before it waits for), may hold options too (`IFS=:`,
    `$(echo --port 6379)`): settings before it are unknown then, unless argv sets them again
    after it. A value the pack cannot see is taken to stay one value (`--requirepass $(cat
    f)`); an unquoted literal one the script assigns with blanks is split as the shell splits
    it (`P="pw --port 6379"; ... --requirepass $P`)."""
    script = " ".join(argv(props))
    # A script that sets IFS splits values at other characters than blanks.
    ifs = re.search(r"(?:^|[\s;&|])IFS=", script) is not None
    out: list[str] = []
    awaiting = marked = False
    for word in given:
        if not _expands(word, script):  # `'$X'`, `"\\$X"`: the text as written
            out.append(word)
            awaiting = word.startswith("--") and len(split_args(word) or ()) == 1
            continue
        quoted = re.search(r'"[^"]*' + re.escape(word) + r'[^"]*"', script) is not None
        values = _assigned_values(word, props)
        # Where an option would stand, a variable the script assigns several values may be
        # any of them, options too: not its shortest (or empty) value, which shell_expanded
        # gives for a password's length.
        several = not awaiting and len(set(values)) > 1
        # Unquoted, a literal value the script assigns with blanks in it (or any, under
        # another IFS) is split into words: those after the first are options of their own.
        split_value = (
            awaiting
            and not quoted
            and any(
                value and not re.search(r"[$`\\]", value) and (ifs or value.split() != [value])
                for value in values
            )
        )
        if split_value:
            out += [word, "--include", SHELL_ARGUMENTS]
            awaiting, marked = False, True
            continue
        if not several and _VARIABLE.fullmatch(word) and shell_expanded(word, props, image) == "":
            if quoted:
                out.append("")
                awaiting = False
            continue  # unquoted and empty: no word at all
        resolved = shell_expanded(word, props, image) if _ONE_EXPANSION.fullmatch(word) else ""
        may_split = (
            several
            or resolved is None
            or (
                bool(resolved)
                and (ifs or resolved.startswith("-") or resolved.split() != [resolved])
            )
        )
        if out and (_ALL_ARGUMENTS.search(word) or (not awaiting and may_split)):
            if awaiting:
                out.append(word)  # its first word is the value the option waits for
            out += ["--include", SHELL_ARGUMENTS]
            awaiting, marked = False, True
            continue
        out.append(word)
        tokens = split_args(word) if word.startswith("--") else None
        awaiting = tokens is not None and len(tokens) == 1
    return out, marked


def _runs_server(
    props: Mapping[str, Any], image: str, found: _Found, entrypoint: bool
) -> Recognition:
    """`entrypoint`: the official image's docker-entrypoint.sh starts it."""
    program, given, sentinel, before = found
    signs = ("runs redis-sentinel",) if sentinel else ("runs redis-server",)
    behind_a_shell = any(_program(word) in _SHELLS for word in before)
    marked = False
    if behind_a_shell:
        given, marked = _as_the_shell_passes(given, props, image)
    separators = [i for i, word in enumerate(before) if word in _SHELL_SEPARATORS]
    if any(_program(w) == "xargs" for w in before[separators[-1] + 1 if separators else 0 :]):
        # xargs adds the words it reads from its input after the ones it is given.
        given, marked = [*given, "--include", SHELL_ARGUMENTS], True
    if program == _STACK_WRAPPER:
        args = _stack_wrapper_args(props, given)
        return Recognition(Verdict.SERVER, args, image, signs, hint=_STACK_WRAPPER_HINT)
    modules = _entrypoint_modules(image) if entrypoint and not sentinel else ()
    # Bitnami's binary run directly (its setup skipped): Redis's own defaults, no variable read.
    bitnami = _bitnami.defaults(image) if _bitnami.flavour(image) else None
    return Recognition(
        Verdict.SERVER,
        (*given, *(modules or ())),
        image,
        signs,
        sentinel=sentinel,
        unknown=_modules_unknown(image, modules),
        defaults=bitnami,
        rewritten=_rewritten(before, given),
        argv_literal=_expands_nothing(props, image, before),
        arguments_why=_arguments_why(given, marked, before),
    )


_STDIN_WHY: Final = (
    "it reads config text from its stdin (`redis-server -`), which the pack cannot see: give "
    "the options on its command line after it, or upload the config file it reads"
)


def _arguments_why(given: Sequence[str], marked: bool, before: Sequence[str] = ()) -> str:
    """Why settings redis-server's argv leaves open are unknown although argv is read;
    `before`: the script's words before the server's command."""
    if marked:
        return SHELL_ARGUMENTS_WHY
    directives = parse_args(given)[1]
    if ("include", (STDIN_CONFIG,)) not in directives:
        return ""
    writer = _piped_writer(before)
    if not writer:
        return _STDIN_WHY
    return (
        f"it reads config text from its stdin (`redis-server -`), which {writer} writes into "
        f"the pipe when the container starts, unseen by the pack: upload the config file "
        f"itself and name it in place of `-` (`redis-server /path/redis.conf`), or give the "
        f"options on the command line after `-`"
    )


def _piped_writer(before: Sequence[str]) -> str:
    """The command that pipes into the server's (`sh f.sh | redis-server -`), in words for a
    message: its program, and the file it runs when that is a script (never other operands,
    which may be config text with a password in it); "" when no pipe feeds it."""
    # A pipe is a command of its own between two `;` (_script_commands): `w ; | ; server`.
    separators = [i for i, word in enumerate(before) if word in _SHELL_SEPARATORS]
    if len(separators) < 3 or before[separators[-2]] != "|":
        return ""
    start = separators[-4] + 1 if len(separators) > 3 else 0
    head, _, args = _program_and_runner(list(before[start : separators[-3]]))
    name = _program(head)
    if not name or not _PLAIN_PATH.match(head):
        return "the command before it"
    operands = [w for w in args if not w.startswith("-")]
    runs_a_file = name in _SHELLS or _INTERPRETER.fullmatch(name)
    if runs_a_file and operands and _PLAIN_PATH.match(operands[0]):
        return f"`{name} {operands[0]}`"
    return f"`{name}`"


def _modules_unknown(image: str, modules: tuple[str, ...] | None) -> tuple[tuple[str, str], ...]:
    """`loadmodule` is unknown when the official image's entrypoint starts a server from a
    reference that names no version (a digest alone)."""
    if modules is not None:
        return ()
    why = (
        f"its image ({image}) is named by digest alone, which names no version, and from "
        f"Redis 8 on the official image's docker-entrypoint.sh loads every module in "
        f"{OFFICIAL_MODULE_DIR}, so whether it loads them is unknown: name the version beside "
        f"the digest (redis:7.4@sha256:...), use the repoDigest of a RemoteImage named with its "
        f'tag, or start redis-server without the entrypoint (entrypoints: ["redis-server"])'
    )
    return (("loadmodule", why),)


def _stack_started(props: Mapping[str, Any], image: str) -> Recognition:
    """A redis-stack image started by its own start script."""
    hint = (
        f"Its image ({image}) starts redis-server with --protected-mode no and a "
        f"--loadmodule per module of its own, then the options in envs {STACK_OPTIONS_ENV}, "
        f"which win: set redis-server's options there (no option unloads a module: an image "
        f"without modules loads none)."
    )
    args = _stack_server_args(props)
    signs = ("a Redis image",)
    return Recognition(
        Verdict.SERVER,
        args,
        image,
        signs,
        options_env=STACK_OPTIONS_ENV,
        options_file=_STACK_CONF,
        hint=hint,
    )


def _started_by_its_own_script(
    props: Mapping[str, Any], image: str, words: list[str], entrypoints: list[str]
) -> Recognition | None:
    """redis-stack's start script or Bitnami's setup, when the container runs it."""
    if _STACK_IMAGE.match(image) and _runs_stack_entrypoint(words):
        return _stack_started(props, image)
    bitnami = _bitnami.flavour(image)
    command = _argv_words(strings(props.get("command"), "command"))
    if bitnami is not None and _bitnami.runs_setup(bitnami, command, entrypoints):
        return _bitnami_started(props, image, bitnami, command[1:])
    return None


def _bitnami_started(
    props: Mapping[str, Any], image: str, flavour: _bitnami.Flavour, given: list[str]
) -> Recognition:
    """Bitnami's redis or valkey image run by its own setup (policies/rules/_bitnami.py)."""
    start = _bitnami.started(flavour, image, props, given)
    return Recognition(
        Verdict.SERVER,
        start.args,
        image,
        ("a Redis image",),
        options_env=flavour.options_env,
        options_file=start.options_file or flavour.overrides,
        hint=_bitnami.hint(flavour, image),
        unknown=(*start.unknown, *_bitnami.modules_unknown(image)),
        started_by=start.why,
        defaults=_bitnami.defaults(image),  # built from Redis's source: protected mode on
    )


# What tells a sentinel from a data server where argv does not show it: a variable named for
# the mode or role set to sentinel (stormning/env-tool-suite's MODE=sentinel), redis-sentinel
# or --sentinel in a variable's value, a sentinel config named in one or uploaded alone.
_MODE_VARIABLE: Final = re.compile(r"(?i)(?:^|_)(?:MODE|ROLE)$")
_SENTINEL_VALUE: Final = re.compile(r"(?i)(?:^|[\s/=])(?:redis-sentinel|--sentinel)(?:$|\s)")
_SENTINEL_CONF: Final = re.compile(r"(?i)sentinel[\w.-]*\.conf$")
_REDIS_CONF: Final = re.compile(r"(?i)^(?:redis|valkey|keydb)[\w.-]*\.conf$")


def _sentinel_told(props: Mapping[str, Any]) -> str:
    """Why a server started by something the pack cannot read is a sentinel ("" if nothing
    says so): named without a value but the mode's."""
    for key, value in envs(props):
        word = value.strip()
        if _MODE_VARIABLE.search(key) and word.lower() in ("sentinel", "redis-sentinel"):
            return f"sentinel mode in {key}"
        if _SENTINEL_VALUE.search(word) or any(_SENTINEL_CONF.search(w) for w in word.split()):
            return f"sentinel mode in {key}"
    names = [upload.basename for upload in uploads(props)]
    if any(_SENTINEL_CONF.search(n) for n in names) and not any(
        _REDIS_CONF.match(n) for n in names
    ):
        return "an uploaded sentinel config"
    return ""


def recognise(props: Mapping[str, Any], images: ImageIndex | None = None) -> Recognition:
    """Whether a container runs a Redis server, and with which arguments; a server started
    by what the pack cannot read is a sentinel when the container says so (`_sentinel_told`):
    judged by the sentinel's rules, not a data server's (memory, persistence)."""
    found = _recognise(props, images)
    if found.verdict is not Verdict.SERVER or found.args is not None or found.sentinel:
        return found
    if found.foreign or found.options_env:
        return found
    told = _sentinel_told(props)
    if not told:
        return found
    return dataclasses.replace(found, sentinel=True, signs=(*found.signs, told))


def _started_in_script(
    props: Mapping[str, Any], image: str, named: list[str], entrypoints: list[str], unseen: str
) -> Recognition | None:
    """The servers a container's words start: each command that starts one, and one more,
    unknown, when the script also runs what the pack cannot read (`unseen`: it may start any
    server); an unknown one alone when that names a server (`echo 'redis-server ...' | sh`);
    None when neither."""
    found = _servers_args_in(named)
    if not found:
        return _unseen_server(image, unseen) if unseen and _names_a_server(named) else None
    first, *others = (
        _runs_server(props, image, each, _through_entrypoint(each, entrypoints)) for each in found
    )
    if unseen:
        others.append(_unseen_server(image, unseen))
    return dataclasses.replace(first, branches=tuple(others)) if others else first


def _recognise(  # noqa: PLR0911 - one return per way a reviewer decides
    props: Mapping[str, Any], images: ImageIndex | None = None
) -> Recognition:
    image = (images or ImageIndex()).resolve(_image(props))
    entrypoints = strings(props.get("entrypoints"), "entrypoints")
    words = _argv_words(argv(props))
    resolved = _programs_named(words, props, image)
    unseen = _unseen(resolved)
    # Beside a server it reads, an interpreter's program counts as unseen too (it may start
    # another); as a container's only command it is an application, which the signs judge.
    beside = _unseen(resolved, interpreters=True)
    started = _started_in_script(props, image, resolved, entrypoints, beside)
    if started is not None:
        return started
    rest, opaque = _strip_wrappers(words)
    opaque = opaque or bool(unseen)
    if rest and _program(rest[0]) in _REDIS_TOOLS:
        return Recognition(Verdict.NOT_REDIS, image=image)
    foreign = _foreign_server(image, rest, opaque)
    if foreign:
        return Recognition(Verdict.SERVER, None, image, (f"runs {foreign}",), foreign=foreign)
    if _SENTINEL_IMAGE.match(image) and (not words or words[0].startswith("-") or opaque):
        # Bitnami's redis-sentinel image: its entrypoint writes sentinel.conf from variables.
        return Recognition(Verdict.SERVER, None, image, ("a Redis Sentinel image",), sentinel=True)
    if is_redis_image(image):
        # The official image's docker-entrypoint.sh runs redis-server for no command, and
        # prepends it to options or a .conf file, whether it runs as the image's entrypoint
        # or where argv names it. redis-stack's start script is read (_stack_started). Other
        # Redis images (Bitnami) start through their own scripts and config, which the pack
        # cannot read: a server, with unknown settings.
        official = is_official_image(image)
        started = _started_by_its_own_script(props, image, words, entrypoints)
        if started is not None:
            return started
        if not words:
            modules = _entrypoint_modules(image)
            given = (modules or ()) if official else None
            unknown = _modules_unknown(image, modules) if official else ()
            return Recognition(Verdict.SERVER, given, image, ("a Redis image",), unknown=unknown)
        options = _entrypoint_options(words, implicit=not entrypoints)
        if options is not None:
            sentinel = "--sentinel" in options
            modules = () if sentinel else _entrypoint_modules(image)
            named = [i for i, w in enumerate(words) if _program(w) == "docker-entrypoint.sh"]
            head = words[: named[0] + 1] if named else []
            marked = False
            if any(_program(word) in _SHELLS for word in head):
                options, marked = _as_the_shell_passes(options, props, image)
            given = (*options, *(modules or ())) if official else None
            unknown = _modules_unknown(image, modules) if official else ()
            return Recognition(
                Verdict.SERVER,
                given,
                image,
                ("a Redis image",),
                sentinel=sentinel,
                unknown=unknown,
                argv_literal=official and _expands_nothing(props, image, head),
                arguments_why=_arguments_why(options, marked),
            )
        if opaque or (rest and rest[0].startswith("-")):
            why = _script_why(props, image, words, unseen)
            return Recognition(Verdict.SERVER, None, image, ("a Redis image started by a script",),
                               started_by=why)  # fmt: skip
        return Recognition(Verdict.NOT_REDIS, image=image)
    if words and not opaque and not words[0].startswith("-"):
        return Recognition(Verdict.NOT_REDIS, image=image)  # it runs something else, visibly
    # No command, a script, or only options for the image's own entrypoint: the signs decide.
    return _by_signs(props, image)


def _script_why(props: Mapping[str, Any], image: str, words: list[str], unseen: str) -> str:
    """What a Redis image runs in place of a server the pack reads, and what to change, in
    words for a message ("" when nothing more specific than the image is known)."""
    bitnami = _bitnami.flavour(image)
    if bitnami is not None and bitnami.run_script in words:
        return (
            f"its command runs Bitnami's {bitnami.run_script} itself, so the image's entrypoint "
            f"skips the setup that writes {bitnami.conf} from the {bitnami.prefix}_* variables: "
            f'give run.sh and its options as the command itself (["{bitnami.run_script}", '
            f'"--appendonly", "yes", ...]), which the entrypoint sets up first'
        )
    scripts = {upload.path for upload in uploads(props)}
    uploaded = next((word for word in words if word in scripts), "")
    if uploaded and _PLAIN_PATH.match(uploaded):
        return (
            f"it starts through {uploaded}, a script this stack gives it, which the pack does "
            f"not run: give redis-server (or docker-entrypoint.sh) and its options as its "
            f"command, with its settings on it or in an uploaded config file"
        )
    return unseen


# A server program's name anywhere in a word (`echo 'redis-server --port 6379' | sh`).
_SERVER_NAMED: Final = re.compile(
    r"(?<![\w-])(?:" + "|".join(sorted(re.escape(p) for p in _STARTS_A_SERVER)) + r")(?![\w-])"
)


def _names_a_server(words: list[str]) -> bool:
    return any(_SERVER_NAMED.search(word) for word in words)


def _unseen_server(image: str, why: str) -> Recognition:
    """A server a script may start through what the pack cannot read (`_unseen`)."""
    return Recognition(Verdict.SERVER, None, image, ("runs what the pack cannot read",),
                       started_by=why)  # fmt: skip


def _by_signs(props: Mapping[str, Any], image: str) -> Recognition:
    """A container whose start the pack cannot read, recognised by what it shows."""
    strong, weak = _signs(props)
    port = _sentinel_port(props)
    told = (_sentinel_told(props) or _sentinel_settings(props)) if port else ""
    if told:
        # The sentinel's port with another sign of one (a custom image whose entrypoint runs
        # --sentinel); the port alone is no Redis (any program may listen there).
        signs = (*strong, port, told, *weak)
        return Recognition(Verdict.SERVER, None, image, signs, sentinel=True)
    if strong:
        return Recognition(Verdict.SERVER, None, image, tuple(strong + weak))
    if weak or port:
        return Recognition(Verdict.UNSURE, None, image, tuple(weak + ([port] if port else [])))
    return Recognition(Verdict.NOT_REDIS, image=image)


SENTINEL_PORT: Final = 26379
# Settings only a sentinel has (its quorum and failover timing), in the variables an image's own
# script writes into sentinel.conf: qkr107781/hhplus_e-commerce_server's SENTINEL_QUORUM,
# SENTINEL_DOWN_AFTER, SENTINEL_FAILOVER; Bitnami's REDIS_SENTINEL_QUORUM. Not the master's
# name or address, which sentinel-aware clients are given too.
_SENTINEL_SETTING: Final = re.compile(
    r"(?i)(?:^|_)SENTINEL_(?:QUORUM|DOWN_AFTER\w*|FAILOVER\w*|PARALLEL_SYNCS)$"
)


def _sentinel_settings(props: Mapping[str, Any]) -> str:
    """Why the variables say sentinel: the settings named, never their values."""
    names = sorted({key for key, value in envs(props) if value and _SENTINEL_SETTING.search(key)})
    return f"sentinel settings in {', '.join(names)}" if names else ""


def _sentinel_port(props: Mapping[str, Any]) -> str:
    """The sign the sentinel's port gives when the container shows it, else "" (no value)."""
    for where, port in entries(props, "ports"):
        if number(port.get("internal"), f"{where}.internal") == SENTINEL_PORT:
            return f"Redis Sentinel port {SENTINEL_PORT}"
    return ""


def server_args(props: Mapping[str, Any]) -> list[str] | None:
    """The arguments redis-server receives when they are known; None otherwise."""
    found = recognise(props)
    return list(found.args) if found.verdict is Verdict.SERVER and found.args is not None else None


def is_redis_server(props: Mapping[str, Any], images: ImageIndex | None = None) -> bool:
    return recognise(props, images).verdict is Verdict.SERVER


def parse_args(args: Sequence[str]) -> tuple[str | None, list[tuple[str, tuple[str, ...]]]]:
    """(config file, [(directive, values)]) from redis-server's argv, read as redis-server 7.0
    reads it (src/server.c main): a first argument that is no option names the config file;
    every `--name` word is raw config text starting a line, so a word of several tokens is a
    whole line (`--save 60 1`) and a newline inside it starts another; every other word is one
    value, quoted, added to the current line. An option name given alone takes the next word as
    its value even when that word starts with `--` (`--requirepass --port` sets the password
    "--port"), except after `--save` and `--sentinel`, which then take no value."""
    conf: str | None = None
    start = 0
    if args and not args[0].startswith("-"):
        conf, start = args[0], 1
    rest = list(args[start:])
    options: list[str] = []
    stdin = False
    handled = True  # whether the last option line has its value: a `--` word names another
    for j, arg in enumerate(rest):
        if arg == "-" and ((j == 0 and start == 0) or j == len(rest) - 1):
            stdin = True  # config text read from stdin, which the pack cannot see
            continue
        if handled and arg.startswith("--"):
            if options:
                options.append("\n")
            options.append(arg[2:] + " ")
            tokens = split_args(arg)
            handled = tokens is None or len(tokens) != 1
            if not handled and arg.lower() in ("--save", "--sentinel"):
                last = j == len(rest) - 1
                if arg.lower() == "--save" and (last or rest[j + 1].startswith("--")):
                    options.append('""')
                    handled = not last
                elif not last and rest[j + 1].startswith("--"):
                    handled = True
        else:
            options.append(_quoted(arg) + " ")
            handled = True
    # Redis reads stdin's config after the file's and before argv's options (src/config.c
    # loadServerConfig): an include no upload answers, first among argv's directives.
    read_first = [("include", (STDIN_CONFIG,))] if stdin else []
    return conf, [*read_first, *parse_conf("".join(options))]


STDIN_CONFIG: Final = "\0stdin"
"""The config text `redis-server -` reads from its stdin: no upload is it."""


def _quoted(value: str) -> str:
    """A value as redis-server adds it to its option lines (sdscatrepr): in double quotes,
    with `\\`, `\"` and control characters escaped, so it stays one token."""
    out = ['"']
    for char in value:
        if char in '\\"':
            out.append("\\" + char)
        elif char in _ESCAPED:
            out.append("\\" + _ESCAPED[char])
        elif char < " " or char == "\x7f":
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


_ESCAPED: Final = {"\n": "n", "\r": "r", "\t": "t", "\a": "a", "\b": "b"}
_UNESCAPED: Final = {v: k for k, v in _ESCAPED.items()}
# C's isspace: what sdssplitargs skips between tokens. An unquoted token ends only at a space,
# tab, CR or LF, so a form feed or vertical tab inside one is part of it.
_C_SPACE: Final = frozenset(" \t\n\v\f\r")
_TOKEN_END: Final = frozenset(" \t\n\r")
_HEX: Final = frozenset("0123456789abcdefABCDEF")


def split_args(line: str) -> list[str] | None:
    """A config line's tokens as Redis splits it (src/sds.c sdssplitargs), or None where Redis
    refuses the line ("Unbalanced quotes in configuration line"): in double quotes `\\xHH` is
    that byte and `\\n \\r \\t \\b \\a` control characters, any other `\\c` is c; in single
    quotes only `\\'` is an escape; outside quotes a backslash is a character; a closing quote
    must end the token."""
    tokens: list[str] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in _C_SPACE:
            i += 1
        if i >= n:
            return tokens
        current: list[str] = []
        while i < n and line[i] not in _TOKEN_END:
            if line[i] in "\"'":
                i = _read_quoted(line, i, current)
                if i < 0:
                    return None
                break  # a closing quote ends the token
            current.append(line[i])
            i += 1
        tokens.append("".join(current))


def _read_quoted(line: str, start: int, out: list[str]) -> int:
    """Read the quoted part opening at `start` into `out`: the index after its closing quote,
    or -1 where the quote is not closed or something is glued to it."""
    quote, i, n = line[start], start + 1, len(line)
    while i < n:
        c = line[i]
        if c == quote:
            return i + 1 if i + 1 == n or line[i + 1] in _C_SPACE else -1
        if c == "\\" and quote == '"':
            i = _escape(line, i, out)
        elif c == "\\" and quote == "'" and line[i + 1 : i + 2] == "'":
            out.append("'")
            i += 2
        else:
            out.append(c)
            i += 1
    return -1


def _escape(line: str, i: int, out: list[str]) -> int:
    """The escape at `i` inside double quotes into `out`; the index after it."""
    digits = line[i + 2 : i + 4]
    if line[i + 1 : i + 2] == "x" and len(digits) == 2 and set(digits) <= _HEX:
        out.append(chr(int(digits, 16)))
        return i + 4
    if i + 1 < len(line):
        out.append(_UNESCAPED.get(line[i + 1], line[i + 1]))
        return i + 2
    out.append("\\")
    return i + 1


_ASCII_LOWER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


@functools.lru_cache(maxsize=256)
def parse_conf(content: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """((directive, values), ...) from redis.conf text, read as Redis reads it
    (src/config.c loadServerConfigFromString): lines end at LF only (a CR, form feed or
    U+2028 is no line end, so a comment swallows what follows it up to the next LF), each is
    cut at a NUL byte and trimmed of spaces, tabs, CR and LF, a line starting with `#` is a
    comment (a `#` further on is text), and the rest is split by `split_args`. A line Redis
    refuses (unbalanced quotes: it does not start) is read as whitespace-separated words.

    Cached: every Redis rule reads each server's files again, and a stack of a thousand
    resources parsed the same files thousands of times (docs/policy.md, "Large stacks")."""
    directives = []
    for line in content.split("\n"):
        # Redis reads each line as a C string (fgets, then sdscat): a NUL ends what it takes.
        stripped = line.split("\0", 1)[0].strip(" \t\r\n")
        if not stripped or stripped.startswith("#"):
            continue
        tokens = split_args(stripped)
        if tokens is None:
            tokens = stripped.split()
        if tokens:
            directives.append((tokens[0].translate(_ASCII_LOWER), tuple(tokens[1:])))
    return tuple(directives)


class StackFiles:
    """Every container's uploaded file contents by base name, read once for the whole stack.

    Each Redis server looks files up among its own uploads and then every other container's;
    reading every container's uploads again for each server made a stack of a thousand
    resources take minutes (measured: docs/policy.md, "Large stacks").
    """

    def __init__(self, containers: Sequence[Resource]) -> None:
        self._containers = containers
        self._read: tuple[list[dict[str, list[str | None]]], dict[str, Counter[str | None]]] | None
        self._read = None

    def indexed(self) -> tuple[list[dict[str, list[str | None]]], dict[str, Counter[str | None]]]:
        """(per container: base name -> contents in upload order; base name -> the
        contents uploaded under it, with how many containers upload each)."""
        if self._read is None:
            per_container: list[dict[str, list[str | None]]] = []
            stack: dict[str, Counter[str | None]] = {}
            for container in self._containers:
                own: dict[str, list[str | None]] = {}
                with reading(container):
                    received = uploads(container.props)
                for upload in received:
                    own.setdefault(upload.basename, []).append(upload.content)
                per_container.append(own)
                for name, contents in own.items():
                    stack.setdefault(name, Counter()).update(set(contents))
            self._read = (per_container, stack)
        return self._read


class FileIndex:
    """Uploaded file contents by base name: the container's own first, then the stack's.

    Uploads are read only when a file is looked up, so a value unknown at preview in some
    container's uploads stops only the rules that need a file.
    """

    def __init__(self, stack: StackFiles, position: int, hidden: Iterable[str] = ()) -> None:
        self._stack = stack
        self._position = position
        self._hidden = frozenset(PurePosixPath(path).name for path in hidden)

    def read(self, path: str) -> str | None:
        name = PurePosixPath(path).name
        if name in self._hidden:
            return None  # rewritten by the script that starts Redis: not what was uploaded
        per_container, stack = self._stack.indexed()
        mine = per_container[self._position].get(name, [])
        if mine:
            return mine[-1]
        # This container uploads no file of that name, so the stack's are the others'.
        others = set(stack.get(name, ()))
        if len(others) == 1:
            return others.pop()
        return None  # not uploaded, redacted, or ambiguous: unknown


# Every directive's occurrences, whether every file was read, the directives settled.
_Loaded = tuple[dict[str, tuple[tuple[str, ...], ...]], bool, frozenset[str]]


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
        *,
        defaults: Mapping[str, tuple[str, ...]] | None = None,
        unknown_defaults: frozenset[str] = frozenset(),
        opaque: bool = False,
        started_by: str = "",
        unknown: Mapping[str, str] | None = None,
        files_why: str = "",
    ) -> None:
        self._conf = conf
        self._files_why = files_why or "its config file cannot be read"
        self._unknown = dict(unknown or {})
        """Directive -> why its value cannot be told although argv is read (never a value)."""
        # Redis reads an `include` on argv where it stands: what comes after the last one is
        # settled by argv alone; what comes before is read with the files it may override.
        given = list(argv_directives)
        last = max((i + 1 for i, (name, _) in enumerate(given) if name == "include"), default=0)
        self._before, self._argv = given[:last], given[last:]
        self._files = files
        self._defaults = dict(defaults or {})
        # An escape hatch among the image's defaults is one its Redis (before 7.0) has no
        # directive for (_before_redis_7, _bitnami.defaults): it is on, whatever a file it
        # cannot read or an option says (Redis would refuse either as a bad directive).
        self._fixed = {
            name: values
            for name, values in self._defaults.items()
            if name in _bitnami.ESCAPE_HATCHES
        }
        self.unknown_defaults = unknown_defaults
        """Directives whose default the image may have changed, so not set = unknown."""
        self._opaque = opaque
        self._started_by = started_by or "Redis starts through a script the pack cannot read"
        self._loaded: _Loaded | None = None
        # Redis takes an option and its value as separate words: `--port=0` is the directive
        # "port=0", which it refuses ("Bad directive or wrong number of arguments") and stops.
        self.misspelled: dict[str, str] = {}
        """Directive -> the option as written without its value (`--port=`), never a value."""
        for name, _ in given:
            head, equals, _value = name.partition("=")
            if equals and head:
                self.misspelled.setdefault(head, f"--{head}=")

    def _argv_value(self, name: str) -> tuple[str, ...] | None:
        name = _canonical(name)
        found = [values for n, values in self._argv if _canonical(n) == name]
        return found[-1] if found and name not in _REPEATABLE else None

    def _load(self) -> _Loaded:
        """(every directive's occurrences, whether every file was read, the directives set
        after the last file that could not be read: their values are known)."""
        if self._loaded is None:
            collected, complete = _read_files(self._conf, self._before, self._files)
            complete = complete and not self._opaque
            occurrences: dict[str, list[tuple[str, ...]]] = {}
            settled: set[str] = set()
            # A script may set anything the image's defaults set (it may load a config file).
            started = [(_UNREADABLE, ())] if self._opaque else []
            for written, values in [*self._defaults.items(), *started, *collected, *self._argv]:
                if written == _UNREADABLE:
                    settled.clear()  # that file may set anything set before it
                    continue
                name = _canonical(written)
                settled.add(name)
                if name in _REPEATABLE:
                    occurrences.setdefault(name, []).append(values)
                else:
                    occurrences[name] = [values]
            found = {k: tuple(v) for k, v in occurrences.items()}
            self._loaded = (found, complete, frozenset(settled))
        return self._loaded

    def defaults_to(self, name: str) -> bool:
        """Whether `name` takes the image's default (set by no config file and no argument)."""
        if name in self._fixed:
            return True
        if name not in self._defaults or self._argv_value(name) is not None:
            return False
        collected, _ = _read_files(self._conf, self._before, self._files)
        return all(_canonical(n) != _canonical(name) for n, _ in collected)

    @property
    def complete(self) -> bool:
        return self._load()[1]

    def why_unknown(self, name: str) -> str:
        """Why the value of `name` is not known, in words for a message (no value in it)."""
        if name in self._unknown:
            return self._unknown[name]
        if name in self.misspelled:
            return (
                f"it is given as {self.misspelled[name]}<value>, which redis-server refuses "
                f"('Bad directive': an option and its value are separate arguments, "
                f"--{name} <value>), so Redis does not start"
            )
        if self._opaque:
            return self._started_by
        return self._files_why

    def told_unknown(self, name: str) -> str | None:
        """Why `name` is unknown although argv is read (a digest naming no version), or None."""
        return self._unknown.get(name)

    def known(self, name: str) -> bool:
        """Whether the value of `name` is known (set somewhere visible, or all files visible)."""
        if name in self.misspelled or name in self._unknown:
            return False
        if name in self._fixed or self._argv_value(name) is not None:
            return True
        _, complete, settled = self._load()
        name = _canonical(name)
        return name in settled or (complete and name not in self.unknown_defaults)

    def values(self, name: str) -> tuple[str, ...] | None:
        """The last occurrence's values, or None when not set (check `known` first)."""
        if name in self._fixed:
            return self._fixed[name]
        on_argv = self._argv_value(name)
        if on_argv is not None:
            return on_argv
        found = self._load()[0].get(_canonical(name))
        return found[-1] if found else None

    def value(self, name: str) -> str | None:
        found = self.values(name)
        return " ".join(found) if found is not None else None

    def all(self, name: str) -> tuple[tuple[str, ...], ...]:
        return self._load()[0].get(_canonical(name), ())

    def spelled(self, name: str) -> str:
        """The name the occurrence of `name` Redis takes is written with (`slaveof` for
        replicaof), for a message to name what to change; `name` when none is written."""
        collected, _ = _read_files(self._conf, self._before, self._files)
        written = [
            n
            for n, _ in [*self._defaults.items(), *collected, *self._argv]
            if _canonical(n) == _canonical(name)
        ]
        return written[-1] if written else name

    def from_file(self, name: str) -> bool:
        """Whether the value of `name` Redis takes is written in a config file it reads (not
        on argv, not an image default): Redis expands nothing there (no variable, no
        template), so a placeholder in it is the value itself."""
        if name in self._fixed or self._argv_value(name) is not None:
            return False
        return self._last_in_file(name) is True

    def from_argv(self, name: str) -> bool:
        """Whether the value of `name` Redis takes is given on its command line."""
        if name in self._fixed:
            return False
        if self._argv_value(name) is not None:
            return True
        return self._last_in_file(name) is False

    def _origins(self) -> list[tuple[tuple[str, tuple[str, ...]], bool]]:
        """Every directive read before argv's last `include`, in Redis's order, each with
        whether a config file (not argv) holds it."""
        files: list[bool] = []
        collected, _ = _read_files(self._conf, self._before, self._files, files)
        return list(zip(collected, files, strict=True))

    def _last_in_file(self, name: str) -> bool | None:
        """Whether the last `name` directive of `_origins` is a file's; None: there is none."""
        name = _canonical(name)
        last = [in_file for (n, _), in_file in self._origins() if _canonical(n) == name]
        return last[-1] if last else None

    def users_by_origin(self) -> list[tuple[tuple[str, ...], bool]]:
        """Every `user` directive in the order Redis applies them, each with whether a file
        (not argv) holds it."""
        found = [(v, in_file) for (n, v), in_file in self._origins() if n == "user"]
        return found + [(v, False) for n, v in self._argv if n == "user"]


def _read_files(
    conf: str | None,
    before: Sequence[tuple[str, tuple[str, ...]]],
    files: FileIndex,
    in_file: list[bool] | None = None,
) -> tuple[list[tuple[str, tuple[str, ...]]], bool]:
    """The config file's directives, then argv's up to its last `include`, in the order Redis
    applies them: an `include` is read in place (redis-server 7.0.15 here: `--port A --include
    f` with `port B` in f listens on B), so a setting after it overrides the file's. False
    when a file could not be read. `in_file`, when given, gets for each directive returned
    whether a file (not argv) holds it."""
    start = [("include", (conf,))] if conf else []
    collected: list[tuple[str, tuple[str, ...]]] = []
    origins: list[bool] = []
    complete = _expand([*start, *before], files, (), collected, origins, from_file=False)
    if in_file is not None:
        in_file.extend(origins[1:] if conf else origins)
    return collected[1:] if conf else collected, complete


def _expand(
    directives: Sequence[tuple[str, tuple[str, ...]]],
    files: FileIndex,
    reading: tuple[str, ...],
    collected: list[tuple[str, tuple[str, ...]]],
    origins: list[bool],
    *,
    from_file: bool,
) -> bool:
    """`reading`: the files being read, outermost first. Redis reads a file each time it is
    included (a second `include common.conf` undoes what came between: redis-server 7.0.15,
    tests/integration/test_redis_config_differential.py); a file that includes itself, directly
    or not, it reads until it fails, so that one is unreadable."""
    complete = True
    for name, values in directives:
        collected.append((name, values))
        origins.append(from_file)
        if name != "include" or not values:
            continue
        content = None if values[0] in reading else files.read(values[0])
        if content is None:
            collected.append((_UNREADABLE, ()))
            origins.append(True)
            complete = False
            continue
        inner = _expand(
            parse_conf(content), files, (*reading, values[0]), collected, origins, from_file=True
        )
        complete = inner and complete
    return complete


SENTINEL_DEFAULTS: Final = {"protected-mode": ("no",), "port": ("26379",)}
"""Sentinel mode turns protected mode off and listens on 26379, whatever the image
(redis/src/sentinel.c: initSentinelConfig, "Sentinel must be exposed")."""


def effective_settings(
    args: Sequence[str] | None,
    files: FileIndex,
    image: str = "",
    *,
    sentinel: bool = False,
    started_by: str = "",
    unknown: Mapping[str, str] | None = None,
    image_defaults: Mapping[str, tuple[str, ...]] | None = None,
    files_why: str = "",
) -> RedisSettings:
    """Image defaults, then the config file, then argv; args None: started by something the
    pack cannot read (`started_by` says what, for messages). `image_defaults`: the image's
    defaults when the recognition knows them."""
    conf, argv_directives = parse_args(args or ())
    official = is_official_image(image)
    defaults: Mapping[str, tuple[str, ...]]
    unknown_defaults: frozenset[str]
    if image_defaults is not None and not sentinel:
        defaults, unknown_defaults = image_defaults, frozenset()
    elif sentinel:
        defaults, unknown_defaults = SENTINEL_DEFAULTS, frozenset[str]()
    elif official:
        defaults = {**OFFICIAL_IMAGE_DEFAULTS, **_before_redis_7(image)}
        unknown_defaults = frozenset()
    else:
        defaults, unknown_defaults = {}, UNKNOWN_DEFAULTS
    return RedisSettings(
        conf,
        argv_directives,
        files,
        defaults=defaults,
        unknown_defaults=unknown_defaults,
        opaque=args is None,
        started_by=started_by,
        unknown=unknown,
        files_why=files_why,
    )


def _rewritten_why(rewritten: Sequence[str]) -> str:
    """Why a file the start script names is unknown, in words for a message (no value)."""
    if not rewritten:
        return ""
    names = " and ".join(sorted({PurePosixPath(path).name for path in rewritten}))
    return (
        f"its start script names {names} before it starts redis-server, so the file "
        f"redis-server reads may not be the one uploaded (upload it as Redis is to read it, "
        f"or give the options on redis-server's command line)"
    )


def _started_by(recognition: Recognition) -> str:
    """What starts a server whose arguments the pack cannot see, in words for a message."""
    if recognition.started_by:
        return recognition.started_by
    if recognition.foreign:
        return (
            f"it runs {recognition.foreign}, whose flags and config are not redis-server's and "
            f"cannot be judged by the Redis rules (run redis-server or valkey-server)"
        )
    if recognition.options_env:
        return (
            f"its image ({recognition.image}) starts redis-server with the options in "
            f"{recognition.options_env}, which these records show redacted"
        )
    if "a Redis image started by a script" in recognition.signs:
        return "Redis starts through a script the pack cannot read"
    if is_redis_image(recognition.image) or _SENTINEL_IMAGE.match(recognition.image):
        return (
            f"its image ({recognition.image}) starts Redis through its own entrypoint and "
            f"config, which the pack cannot read"
        )
    return "its image starts it with a command the pack cannot see"


@dataclass(frozen=True)
class RedisServer:
    """A Redis server container with its effective settings and the stack's uploaded files."""

    resource: Resource
    settings: RedisSettings
    files: FileIndex
    floor: Floor = FLOORS[Environment.PRODUCTION]
    """The strictness floor of the environment the stack declares."""
    sentinel: bool = False
    """A Redis Sentinel: judged by the transport and authentication rules only."""
    options_env: str = ""
    """The variable its image's entrypoint reads redis-server's options from (REDIS_ARGS)."""
    hint: str = ""
    """What the script that starts redis-server adds of its own, for every Redis message."""
    options_file: str = ""
    """The file, beside `options_env`, its image's script reads options from."""
    image: str = ""
    """Its image reference, resolved through the stack's image resources where possible."""
    argv_literal: bool = False
    """Its arguments reach it as written (Recognition.argv_literal)."""
    branches: tuple[RedisServer, ...] = ()
    """The other servers its container's script starts (Recognition.branches)."""

    def acl_rules(self) -> list[tuple[str, ...]] | None:
        """Every ACL `user` rule (name first), or None when the ACL cannot be read."""
        in_aclfile = self.aclfile_rules()
        if in_aclfile is None:
            return None
        return [values for values in self.settings.all("user") if values] + in_aclfile

    def aclfile_rules(self) -> list[tuple[str, ...]] | None:
        """The `user` rules of its aclfile: none without one, None when it cannot be read."""
        if not self.settings.known("aclfile"):
            return None
        aclfile = self.settings.value("aclfile")
        if not aclfile:
            return []
        content = self.files.read(aclfile)
        if content is None:
            return None
        return [values for name, values in parse_conf(content) if name == "user" and values]


def redis_servers(resources: Iterable[Resource]) -> list[RedisServer]:
    """Every Redis server, each server a container's script may start apart (`branches`):
    rules judge them all, and a message two of them give is said once (StackRule.run)."""
    return [
        each for server, _ in recognised(resources) if server for each in (server, *server.branches)
    ]


def recognised(
    resources: Iterable[Resource],
) -> list[tuple[RedisServer | None, tuple[Resource, Recognition]]]:
    """Every container and Swarm service with its recognition; the RedisServer where the
    verdict is SERVER.

    A service is read in a container's shape (policies/rules/_service_shape.py): its server
    settings, published ports, networks, mounts and environment mean the same, so every rule
    about Redis servers judges a Redis service as it judges a Redis container."""
    everything = list(resources)
    images = ImageIndex(everything)
    stack_floor = floor(everything)
    containers = task_containers(everything)
    stack_files = StackFiles(containers)
    found: list[tuple[RedisServer | None, tuple[Resource, Recognition]]] = []
    recognitions: list[Recognition] = []
    for resource in containers:
        try:
            recognitions.append(recognise(resource.props, images))
        except Unreadable as exc:
            exc.subject, exc.urn = label(resource), resource.urn
            raise
    _port_owners_not_redis(containers, recognitions)
    for position, (resource, recognition) in enumerate(zip(containers, recognitions, strict=True)):
        server = None
        if recognition.verdict is Verdict.SERVER:
            branches = tuple(
                _server(resource, branch, stack_files, position, stack_floor)
                for branch in recognition.branches
            )
            server = _server(resource, recognition, stack_files, position, stack_floor, branches)
        found.append((server, (resource, recognition)))
    return found


def _server(
    resource: Resource,
    recognition: Recognition,
    stack_files: StackFiles,
    position: int,
    stack_floor: Floor,
    branches: tuple[RedisServer, ...] = (),
) -> RedisServer:
    files = FileIndex(stack_files, position, recognition.rewritten)
    settings = effective_settings(
        recognition.args,
        files,
        recognition.image,
        sentinel=recognition.sentinel,
        started_by=_started_by(recognition),
        unknown=dict(recognition.unknown),
        image_defaults=dict(recognition.defaults) if recognition.defaults is not None else None,
        files_why=_rewritten_why(recognition.rewritten) or recognition.arguments_why,
    )
    return RedisServer(
        resource,
        settings,
        files,
        stack_floor,
        recognition.sentinel,
        recognition.options_env,
        recognition.hint,
        recognition.options_file,
        recognition.image,
        recognition.argv_literal,
        branches,
    )


def namespace_owner(resource: Resource, containers: Sequence[Resource]) -> Resource | None:
    """The container whose network namespace `resource` joins (`networkMode container:<name>`,
    `docker run --network container:web`), found by its container name or, with none given,
    its logical name; None for any other mode or a container this stack does not show."""
    with reading(resource):
        mode = text(resource.props.get("networkMode"), "networkMode") or ""
    if not mode.startswith("container:"):
        return None
    target = mode.removeprefix("container:")
    for other in containers:
        name = other.props.get("name")
        if other is not resource and (name if isinstance(name, str) else other.name) == target:
            return other
    return None


def _port_owners_not_redis(containers: Sequence[Resource], recognitions: list[Recognition]) -> None:
    """A container called Redis only for publishing a Redis port, whose network namespace a
    Redis server joins (`networkMode container:<it>`): the port is that server's (it listens
    there), and the owner (nginx in front of it) is no Redis. Its recognition becomes
    NOT_REDIS; network-redis-no-published-port judges the port on the server."""
    for resource, recognition in zip(containers, recognitions, strict=True):
        if recognition.verdict is not Verdict.SERVER:
            continue
        owner = namespace_owner(resource, containers)
        if owner is None:
            continue
        index = containers.index(owner)
        theirs = recognitions[index]
        port_only = theirs.signs and all(sign.startswith("Redis port ") for sign in theirs.signs)
        if theirs.verdict is Verdict.SERVER and theirs.args is None and port_only:
            recognitions[index] = Recognition(Verdict.NOT_REDIS, image=theirs.image)


def network_names(props: Mapping[str, Any]) -> list[str]:
    """The networks a container joins: `networksAdvanced` names, then pulumi-docker v3's
    deprecated `networks` (names), which the provider joins the same way, then the network
    `networkMode` names (Docker puts the container on it: HostConfig.NetworkMode)."""
    names = [text_at(e, where, "name") for where, e in entries(props, "networksAdvanced")]
    names += strings(props.get("networks"), "networks")
    names.append(network_mode_network(props))
    return [n for n in names if n]


def aliases(props: Mapping[str, Any]) -> set[str]:
    """The host names other containers can use for this container."""
    names = {text(props.get("name"), "name") or "", text(props.get("hostname"), "hostname") or ""}
    for where, entry in entries(props, "networksAdvanced"):
        names.update(strings(entry.get("aliases"), f"{where}.aliases"))
    names.update(strings(props.get("networkAliases"), "networkAliases"))  # v3, with `networks`
    names.discard("")
    return names
