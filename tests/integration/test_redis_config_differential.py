"""The policy pack's reading of redis.conf and redis-server's argv, against redis-server's own.

Each example starts Debian's redis-server (7.0) on the configuration as written, plus only the
overrides that let it run here (tests/support/redis_confdiff.py), reads back what it runs
(CONFIG GET, ACL GETUSER, or its reason for refusing to start) and compares it with what the
pack concludes from the same text. A divergence where the pack believes the safer thing (a
password Redis does not have, `port 0` where Redis listens on 6379) is a bug; one where the
pack is stricter is listed in the test that expects it. Inputs: the tricky parts of Redis's
config grammar (src/config.c: loadServerConfigFromString, sdssplitargs; src/server.c main for
argv), drawn by hypothesis, and real redis.conf files from public repositories
(tests/policy/redis_conf_corpus/, where SOURCES.json names each one's origin).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.fuzzing import drawn
from tests.support.redis_confdiff import Divergence, Pki, divergences, observe, pack_view
from tests.support.tls_redis import REDIS_SERVER

CORPUS = Path(__file__).resolve().parents[1] / "policy" / "redis_conf_corpus"
# Each example starts one redis-server (about 0.3 s here): few examples, the same every run.
FEW = drawn(12)


@pytest.fixture(scope="module")
def material() -> Iterator[Pki]:
    if shutil.which(REDIS_SERVER) is None or shutil.which("unshare") is None:
        pytest.skip("redis-server or unshare is missing; run scripts/bootstrap.sh as root")
    # Each server runs in a network namespace of its own, which takes root (CAP_SYS_ADMIN).
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("unshare --net is not permitted here (run as root): " + probe.stderr.decode())
    root = Path(tempfile.mkdtemp(prefix="confdiff-pki-"))
    try:
        yield Pki.generate(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


_counter = iter(range(10**9))


def compare(
    material: Pki, conf: str | None, argv: list[str] | None = None,
    files: dict[str, str] | None = None, *, aclfile: bool = False,
) -> tuple[list[Divergence], str]:  # fmt: skip
    """(divergences, redis-server's reason for refusing, "" when it started)."""
    # Inside this worker's own PKI directory: beside it (/tmp/case-N) the two xdist workers'
    # counters named the same directory, and one's cleanup removed the other's redis.log.
    root = material.cert.parent / f"case-{next(_counter)}"
    argv, files = argv or [], files or {}
    pack = pack_view(root, conf, argv, files)
    aclfile = aclfile or "users.acl" in files
    server = observe(root, conf, argv, files, material, aclfile=aclfile)
    return divergences(pack, server), server.refused


def unsafe(found: list[Divergence]) -> list[Divergence]:
    return [d for d in found if d.pack_safer]


# -- the grammar, case by case: what redis-server 7.0.15 makes of each --------------------------

AGREED: list[tuple[str, str, list[str], dict[str, str]]] = [
    # A line ending in \r alone (a file saved with old Mac line ends) is no line end to Redis:
    # a first line that is a comment swallows the whole file.
    ("a comment ended by CR alone hides what follows it",
     "# settings\rrequirepass s3cret\rport 0\r", [], {}),
    ("a form feed is no line end", "# settings\x0crequirepass s3cret\n", [], {}),
    ("a next-line character is no line end", "# settings\x85requirepass s3cret\n", [], {}),
    ("CRLF line ends", "requirepass s3cret\r\nport 0\r\ntls-port 6380\r\n", [], {}),
    # Redis reads an included file each time it is named, not once.
    ("a file included twice is read twice",
     "include {root}/common.conf\nrequirepass s3cret\ninclude {root}/common.conf\n", [],
     {"common.conf": 'requirepass ""\nport 6379\n'}),
    # One argv word is raw config text: a newline in it starts another line.
    ("a newline inside one argv word", "port 0\n",
     ['--requirepass s3cret\nrequirepass ""'], {}),
    ("a newline inside one argv word (protected mode)", "",
     ["--protected-mode yes\nprotected-mode no"], {}),
    # A `user default` line makes Redis ignore requirepass, in either order.
    ("requirepass then user default nopass",
     "requirepass s3cret\nuser default on nopass ~* +@all\n", [], {}),
    ("user default nopass then requirepass",
     "user default on nopass ~* +@all\nrequirepass s3cret\n", [], {}),
    ("user default nopass on argv after requirepass in the file",
     "requirepass s3cret\n", ["--user", "default", "on", "nopass", "~*", "+@all"], {}),
    # Quotes and escapes (sdssplitargs).
    ("hex and control escapes in double quotes",
     'requirepass "\\x41\\x42\\n\\t\\"q\\\\"\nmasterauth "a\\bc"\n', [], {}),
    ("a single-quoted value with an escaped quote", "requirepass 'it\\'s'\n", [], {}),
    ("a backslash outside quotes is a character", "requirepass a\\b\n", [], {}),
    # Redis reads a file line by line as C strings: a NUL byte ends what it takes of its line.
    ("a NUL byte ends its line", "requirepass s3\x00cret\n", [], {}),
    ("an empty password in double quotes", 'requirepass s3cret\nrequirepass ""\n', [], {}),
    ("an empty password in single quotes", "requirepass s3cret\nrequirepass ''\n", [], {}),
    ("a # after the first word is no comment", "requirepass #s3cret\n", [], {}),
    ("an indented comment", "   # requirepass s3cret\n\t#port 0\n", [], {}),
    ("directive names in any case", "REQUIREPASS s3cret\nProtected-Mode No\nPORT 0\n", [], {}),
    ("the last of a repeated directive wins",
     "port 0\nport 6379\nprotected-mode no\nprotected-mode yes\n", [], {}),
    ("argv after the file wins", "port 6379\nprotected-mode no\n",
     ["--port", "0", "--protected-mode", "yes"], {}),
    ("an option name given alone takes the next word, even one like an option",
     "", ["--requirepass", "--port"], {}),
    ("--save alone before another option", "", ["--save", "--port", "0"], {}),
    ("a tab inside one argv word", "", ["--port\t0"], {}),
    ("ACL rules apply left to right",
     "user alice on nopass >pw\nuser bob on >pw nopass\nuser carol on >pw resetpass\n"
     "user dave off on nopass\nuser erin on nopass reset\n", [], {}),
    ("rename-command CONFIG away", 'rename-command CONFIG ""\nrequirepass s3cret\n', [], {}),
    # An aclfile makes Redis ignore requirepass, whatever its default user's line says.
    ("an aclfile's default user beside requirepass",
     "aclfile {root}/users.acl\nrequirepass s3cret\n", [],
     {"users.acl": "user default on nopass ~* +@all\n"}),
    ("an aclfile with CRLF line ends and an indented line", "aclfile {root}/users.acl\n", [],
     {"users.acl": "user default off\r\n  user alice on nopass ~*\r\n"}),
]  # fmt: skip


@pytest.mark.parametrize(("conf", "argv", "files"), [c[1:] for c in AGREED],
                         ids=[c[0] for c in AGREED])  # fmt: skip
def test_the_pack_never_believes_a_safer_setting_than_redis_runs(
    material: Pki, conf: str, argv: list[str], files: dict[str, str]
) -> None:
    found, _ = compare(material, conf, argv, files)
    assert unsafe(found) == []


# Where the pack differs from Redis only in the listed settings, in which it is stricter (it fails
# closed): accepted, and listed here so a change shows; [] means it reads every compared setting
# as Redis runs it. The rule's message names the directive the file sets, which is what to change.
STRICTER: list[tuple[str, str, list[str], list[str]]] = [
    # replicaof and slaveof are one setting to Redis: the last of either wins, file then argv.
    # The pack read each until session 17, so a server that had stopped replicating under the
    # other name was still asked for tls-replication.
    ("slaveof, then replicaof no one", "slaveof 127.0.0.1 6390\nreplicaof no one\n", [], []),
    ("replicaof, then slaveof no one", "replicaof 127.0.0.1 6390\nslaveof no one\n", [], []),
    ("the file's replicaof, then --slaveof no one", "replicaof 127.0.0.1 6390\n",
     ["--slaveof", "no", "one"], []),
    ("the file's slaveof no one, then --replicaof", "slaveof no one\n",
     ["--replicaof", "127.0.0.1", "6390"], []),
]  # fmt: skip


@pytest.mark.parametrize(("conf", "argv", "settings_"), [c[1:] for c in STRICTER],
                         ids=[c[0] for c in STRICTER])  # fmt: skip
def test_where_the_pack_is_stricter__it_is_the_listed_setting_only(
    material: Pki, conf: str, argv: list[str], settings_: list[str]
) -> None:
    found, refused = compare(material, conf, argv)
    assert not refused
    assert unsafe(found) == []
    assert sorted(d.setting for d in found) == sorted(settings_)


# Configurations Redis refuses: nothing runs, so no reading of the pack's can be less safe.
REFUSED: list[tuple[str, str, list[str], str]] = [
    ("a token glued to a closing quote", 'requirepass "s3cret"x\n', [],
     "Unbalanced quotes in configuration line"),
    ("an unterminated quote", "requirepass 's3cret\n", [],
     "Unbalanced quotes in configuration line"),
    ("a # after a value is no comment", "port 0 # TLS only\n", [], "wrong number of arguments"),
    ("a backslash outside quotes splits nothing", "requirepass s3\\ cret\n", [],
     "wrong number of arguments"),
    ("port with a leading zero", "port 00\n", [], "argument couldn't be parsed into an integer"),
    ("--name=value on argv", "", ["--port=0"], "Bad directive or wrong number of arguments"),
    ("a user defined twice", "user alice on >pw\nuser alice off\n", [],
     "Error in user declaration 'alice': Duplicate user found. A user can only be defined once "
     "in config files"),
    # redis-server 7.0's aclfile takes no comment line and no quotes (src/acl.c
    # ACLLoadFromFile); the pack reads both (stricter or equal: Redis does not start).
    ("a comment in an aclfile", "aclfile {root}/users.acl\n", [],
     "Aborting Redis startup because of ACL errors"),
]  # fmt: skip


@pytest.mark.parametrize(("conf", "argv", "reason"), [c[1:] for c in REFUSED],
                         ids=[c[0] for c in REFUSED])  # fmt: skip
def test_configurations_redis_refuses__are_refused_here(
    material: Pki, conf: str, argv: list[str], reason: str
) -> None:
    files = {"users.acl": "# users\nuser default off\n"} if "aclfile" in conf else {}
    _, refused = compare(material, conf, argv, files)
    assert refused.startswith(reason), refused


# -- drawn configurations ------------------------------------------------------------------------

_WORD = st.text(alphabet="ab#'\" \\x4n$", min_size=0, max_size=6)
_VALUES: dict[str, Any] = {
    "requirepass": _WORD,
    "masterauth": _WORD,
    "port": st.sampled_from(["0", "00", "6379", "7000"]),
    "tls-port": st.sampled_from(["0", "6380"]),
    "protected-mode": st.sampled_from(["yes", "no", "YES", "No"]),
    "tls-auth-clients": st.sampled_from(["yes", "no", "optional"]),
    "enable-debug-command": st.sampled_from(["yes", "no", "local"]),
}
_ACL_RULES = st.lists(
    st.sampled_from(["on", "off", "nopass", ">pw", "resetpass", "reset", "~*", "+@all",
                     "-@all", "allkeys", "resetkeys", "~zz:*", "%R~*", "+@admin", "-@admin",
                     "-@dangerous", "+@read", "+config|get", "-config", "+get", "+flushall",
                     "allcommands", "nocommands", "+@keyspace"]), max_size=6,
)  # fmt: skip


def _cased(draw: st.DrawFn, name: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    return "".join(c.upper() if f else c for c, f in zip(name, flips, strict=True))


def _encoded(draw: st.DrawFn, value: str) -> str:
    """The value as config text, in one of Redis's spellings (or a broken one)."""
    styles = ["double", "single", "glued"]
    if value and all(c not in " \"'\\" for c in value):
        styles.append("bare")
    style = draw(st.sampled_from(styles))
    if style == "bare":
        return value
    if style == "single":
        return "'" + value.replace("'", "\\'") + "'"
    chars = []
    for c in value:
        if c in '"\\':
            chars.append("\\" + c)
        elif draw(st.booleans()):
            chars.append(f"\\x{ord(c):02x}")
        else:
            chars.append(c)
    quoted = '"' + "".join(chars) + '"'
    return quoted + "x" if style == "glued" else quoted


@st.composite
def _line(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["setting", "setting", "setting", "user", "comment", "blank"]))
    if kind == "blank":
        return draw(st.sampled_from(["", " ", "\t"]))
    if kind == "comment":
        hidden = draw(st.sampled_from(["requirepass s3cret", "port 0", "protected-mode yes"]))
        return draw(st.sampled_from([" ", "", "\t"])) + "# " + hidden
    indent = draw(st.sampled_from(["", " ", "\t"]))
    if kind == "user":
        name = draw(st.sampled_from(["default", "alice"]))
        return f"{indent}user {name} {' '.join(draw(_ACL_RULES))}".rstrip()
    name = draw(st.sampled_from(sorted(_VALUES)))
    value = draw(_VALUES[name])
    return f"{indent}{_cased(draw, name)} {_encoded(draw, value)}"


@st.composite
def _conf(draw: st.DrawFn) -> str:
    lines = draw(st.lists(_line(), min_size=1, max_size=6))
    ends = draw(st.sampled_from(["\n", "\r\n", "\n", "\r"]))
    return ends.join(lines) + draw(st.sampled_from(["", ends]))


@st.composite
def _argv(draw: st.DrawFn) -> list[str]:
    argv: list[str] = []
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(sorted(_VALUES)))
        value = draw(_VALUES[name])
        shape = draw(st.sampled_from(["two words", "one word", "newline"]))
        if shape == "two words":
            argv += [f"--{name}", value]
        elif shape == "one word":
            argv.append(f"--{name} {_encoded(draw, value)}")
        else:
            other = draw(st.sampled_from(sorted(_VALUES)))
            argv.append(f"--{name} {_encoded(draw, value)}\n{other} {draw(_VALUES[other])!s}")
    return argv


@FEW
@given(conf=_conf())
def test_drawn_config_files__the_pack_believes_nothing_safer_than_redis(
    material: Pki, conf: str
) -> None:
    found, _ = compare(material, conf)
    assert unsafe(found) == [], (conf, found)


@FEW
@given(conf=st.sampled_from(["", "port 0\n", "requirepass s3cret\n"]), argv=_argv())
def test_drawn_command_lines__the_pack_believes_nothing_safer_than_redis(
    material: Pki, conf: str, argv: list[str]
) -> None:
    found, _ = compare(material, conf, argv)
    assert unsafe(found) == [], (conf, argv, found)


@FEW
@given(alice=_ACL_RULES, default=st.none() | _ACL_RULES, where=st.sampled_from(["file", "argv"]))
def test_drawn_acl_rules__the_pack_believes_no_user_narrower_than_redis(
    material: Pki, alice: list[str], default: list[str] | None, where: str
) -> None:
    lines = [["alice", *alice]] + ([["default", *default]] if default is not None else [])
    if where == "file":
        conf, argv = "".join(f"user {' '.join(line)}\n" for line in lines), []
    else:
        conf, argv = "", [word for line in lines for word in ("--user", *line)]
    found, _ = compare(material, conf + "requirepass s3cret\n", argv)
    assert unsafe(found) == [], (conf, argv, found)


# -- real redis.conf files -----------------------------------------------------------------------


def _corpus() -> list[str]:
    sources = json.loads((CORPUS / "SOURCES.json").read_text())
    return sorted(sources)


# Redis changes into `dir` and opens `logfile` while it parses, before the overrides after the
# file apply: those two lines (no setting a rule judges) point into the case's own directory.
_HOST_PATHS = re.compile(r"(?im)^[ \t]*(dir|logfile)[ \t].*$")


def _runnable(text: str) -> str:
    return _HOST_PATHS.sub(lambda m: f"{m[1]} {{root}}" if m[1].lower() == "dir" else
                           f'{m[1]} ""', text)  # fmt: skip


@pytest.mark.parametrize("name", _corpus())
def test_public_redis_conf_files__the_pack_believes_nothing_safer_than_redis(
    material: Pki, name: str
) -> None:
    text = _runnable((CORPUS / name).read_text())
    meta = json.loads((CORPUS / "SOURCES.json").read_text())[name]
    files = {k: (CORPUS / v).read_text() for k, v in meta.get("files", {}).items()}
    found, refused = compare(material, text, files=files, aclfile=bool(meta.get("aclfile")))
    assert unsafe(found) == [], found
    assert refused == meta.get("refused", ""), refused
    assert sorted({d.setting for d in found}) == sorted(meta.get("stricter", []))
