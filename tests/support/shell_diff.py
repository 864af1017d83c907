"""Differential checks of the policy pack's reading of container scripts against a real shell.

`Jail` is a directory made into a root file system for one test module: Debian's dash (as
/bin/sh) and bash, the few real programs that start the next one as they are told (`env`,
`nice`, `timeout`, `nohup`, `setsid`, `xargs`) and the libraries they need, copied from this
host, plus stubs. `Jail.run` starts a container's argv in it (`unshare --net chroot`: no network,
no file of this host but the copies, a time bound) with PATH holding only stubs:

- a *recorder* for every server program the pack knows (redis-server, valkey-server,
  redis-sentinel, ...) writes the argv it was started with, NUL-separated, and exits 0;
- `docker-entrypoint.sh`, `gosu`, `su-exec`, `tini`, `dumb-init` do what the real ones do with
  their arguments (the official image's entrypoint prepends redis-server to an option or a
  `.conf` file, the others drop their own options and `exec` the rest);
- every other word of the script is a *generic* stub: it prints one token (a long value, as a
  secret file's content would be), whether it succeeds or not, and exits 0 or 1 as the
  *oracle* decides.

Scripts run in /data (the official image's WORKDIR), where an empty file stands for each
relative name with a dot the script mentions (`redis.conf`, `./users.acl`), so that a
redirection from it opens.

The oracle also answers `[` and `test` (a function in bash, an alias in dash, defined by a line
put before the script), so a script's conditions are whatever the exploration asks for: each run
is given a list of decisions (0 true, 1 false; 0 after the list) and records the ones it used,
and `explore` runs the all-true path, then every path that makes one or two other decisions
false, breadth first, up to a bound. The pack judges every branch of a script whatever its
conditions say (docs/policy.md), so every path any answers lead to is one whose server the pack
must have judged at least as strictly. Not forced: bash's `[[ ]]`, `case` on a variable's value
(the container's env is the pack's to read), and a nested `sh -c` (real conditions there).

`pack_servers` is what the pack believes the container runs (policies/rules/_redisconf.py
`recognised`: the server and its branches); `real_server` is the pack's reading of one recorded
argv started in exec form, which tests/integration/test_redis_config_differential.py holds
against redis-server itself. `fail_open` compares the two with tests/support/redis_confdiff.py's
`divergences`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Final

from policies.rules._model import CONTAINER, Resource
from policies.rules._redisconf import (
    _SCRIPT_FLAG,
    _SHELLS,
    SENTINEL_BINARIES,
    SERVER_BINARIES,
    RedisServer,
    Verdict,
    recognise,
    recognised,
)
from policies.rules.secret import _as_redis_reads
from tests.support.redis_confdiff import View, divergences, server_view

IMAGE: Final = "redis:7.2"
"""The official image: its ENV sets no password (an unset variable is empty), its entrypoint is
docker-entrypoint.sh, and redis-server 7.2 loads no modules of its own."""
TOKEN: Final = "stub-output-" + "0123456789" * 4
"""What every generic stub prints: as a secret file's content, long enough for any floor."""
_SERVERS: Final = SERVER_BINARIES | SENTINEL_BINARIES
_REAL: Final = ("env", "nice", "timeout", "nohup", "setsid", "xargs")
_RUN_TIMEOUT_S: Final = 5.0
MAX_RUNS: Final = 24
"""Paths explored per script and shell."""
MAX_FLIPS: Final = 2
"""Decisions made false on one path, besides the all-true one."""

_RECORDER: Final = r"""#!/bin/sh
printf '%s\0' "$0" "$@" > /shdiff/run.$$
for a; do
    case $a in -)
        while IFS= read -r l || [ -n "$l" ]; do printf '%s\n' "$l"; done > /shdiff/stdin.$$ ;;
    esac
done
exit 0
"""
_ORACLE: Final = r"""__shdiff_decide() {
    __shdiff_ifs=$IFS; IFS=' '
    read -r __shdiff_d < /shdiff/decisions || __shdiff_d=
    set -- $__shdiff_d
    __shdiff_bit=${1:-0}
    case $# in 0) ;; *) shift ;; esac
    printf '%s\n' "$*" > /shdiff/decisions
    printf '%s' "$__shdiff_bit" >> /shdiff/trace
    IFS=$__shdiff_ifs
    return "$__shdiff_bit"
}
"""
_GENERIC: Final = f"""#!/bin/sh
. /shdiff/oracle.sh
printf '%s\\n' '{TOKEN}'
__shdiff_decide
"""
# What the real programs do with their arguments before `exec`-ing the rest.
_WRAPPERS: Final = {
    # docker-library/redis docker-entrypoint.sh: an option or a .conf file first means
    # redis-server; then (as root) `exec gosu redis "$0" "$@"`, which ends in `exec "$@"`.
    "docker-entrypoint.sh": '#!/bin/sh\ncase "$1" in -*|*.conf) set -- redis-server "$@" ;; esac\n'
    'exec "$@"\n',
    "gosu": '#!/bin/sh\nshift\nexec "$@"\n',
    "su-exec": '#!/bin/sh\nshift\nexec "$@"\n',
    "tini": '#!/bin/sh\nwhile :; do case "$1" in --) shift; break ;; -*) shift ;; *) break ;; esac'
    '; done\nexec "$@"\n',
    "dumb-init": '#!/bin/sh\nwhile :; do case "$1" in --) shift; break ;; -*) shift ;; *) break ;; '
    'esac; done\nexec "$@"\n',
}
_PRELUDE: Final = {
    "dash": ". /shdiff/oracle.sh; __shdiff_test() { __shdiff_decide; }; "
    "alias [=__shdiff_test test=__shdiff_test\n",
    "bash": ". /shdiff/oracle.sh; [() { __shdiff_decide; }; test() { __shdiff_decide; }\n",
}
# A word of a script that may name a program: stubbed (bare names in /stubs, paths in place).
_NAME: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
_PATH: Final = re.compile(r"/[A-Za-z0-9_.+/-]*[A-Za-z0-9_+-]")
_RELATIVE: Final = re.compile(r"(?<![\w/.$-])(?:\./)?([A-Za-z0-9_][A-Za-z0-9_.+-]*\.[A-Za-z0-9_]+)")


@dataclass(frozen=True)
class Started:
    """One server program a run started: its name (the base name it was run by) and argv."""

    program: str
    args: tuple[str, ...]
    stdin: str | None = None
    """The config text it read from its stdin (`redis-server -`), if it was told to."""


@dataclass(frozen=True)
class Run:
    decisions: str
    """The answers the oracle gave, in order."""
    started: tuple[Started, ...]
    status: int


class Jail:
    """A root file system for running scripts (see the module's docstring); needs root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for directory in ("bin", "usr/bin", "stubs", "shdiff", "tmp", "dev", "data"):
            (root / directory).mkdir(parents=True, exist_ok=True)
        libraries: set[str] = set()
        for name in ("dash", "bash", *_REAL):
            found = shutil.which(name)
            if found is None:
                raise FileNotFoundError(name)
            target = root / ("bin" if name in ("dash", "bash") else "usr/bin") / name
            shutil.copy2(os.path.realpath(found), target)
            libraries |= _libraries(found)
        for library in libraries:
            copy = root / library.lstrip("/")
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(os.path.realpath(library), copy)
        (root / "bin" / "sh").symlink_to("dash")
        os.mknod(root / "dev" / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        os.chmod(root / "dev" / "null", 0o666)
        (root / "shdiff" / "oracle.sh").write_text(_ORACLE)
        self._write(root / "stubs" / ".generic", _GENERIC)
        self._write(root / "stubs" / ".recorder", _RECORDER)
        for name in _SERVERS:
            self._write(root / "stubs" / name, _RECORDER)
        for name, body in _WRAPPERS.items():
            self._write(root / "stubs" / name, body)

    @staticmethod
    def _write(path: Path, body: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
        path.chmod(0o755)

    def stub(self, argv: Sequence[str]) -> None:
        """Stubs for every word of `argv` that may name a program; the server programs and
        wrappers at any path they are named by (`/usr/local/bin/redis-server`)."""
        for text in argv:
            for name in _NAME.findall(text):
                target = self.root / "stubs" / name
                real = name in (*_SHELLS, *_REAL) or (self.root / "usr/bin" / name).exists()
                if not real and not target.exists():
                    os.link(self.root / "stubs" / ".generic", target)
            for name in _RELATIVE.findall(text):
                target = self.root / "data" / name
                if "." in PurePosixPath(name).name and not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text("")
            for path in _PATH.findall(text):
                base = PurePosixPath(path).name
                target = self.root / path.lstrip("/")
                if target.exists() or target.is_symlink() or not base:
                    continue
                if base in _SERVERS or base in _WRAPPERS:
                    source = self.root / "stubs" / base
                elif base.endswith(".sh") or "/bin/" in path:
                    source = self.root / "stubs" / ".generic"
                else:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)

    def run(self, shell: str, argv: Sequence[str], env: Mapping[str, str], decisions: str) -> Run:
        """Start `argv` (its shell's `-c` script, if any, run by `shell` with the oracle's
        prelude) with the container's `env` and the oracle's `decisions`."""
        state = self.root / "shdiff"
        for old in [*state.glob("run.*"), *state.glob("stdin.*")]:
            old.unlink()
        (state / "decisions").write_text(" ".join(decisions) + "\n")
        (state / "trace").write_text("")
        command = _with_prelude(shell, list(argv))
        variables = [f"{k}={v}" for k, v in env.items()]
        base = ["PATH=/stubs:/usr/bin:/bin", "HOME=/"]
        jailed = ["unshare", "--net", "chroot", str(self.root), "/usr/bin/env", "-i", "-C", "/data"]
        process = subprocess.Popen(
            [*jailed, *base, *variables, *command],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.root,
        )
        try:
            status = process.wait(timeout=_RUN_TIMEOUT_S)
            _wait_for_session(process.pid)  # a server started in the background (`&`) too
        except subprocess.TimeoutExpired:
            status = -9
        finally:
            _kill_session(process.pid)
            process.wait()
        started = []
        for record in sorted(state.glob("run.*"), key=lambda p: int(p.suffix[1:])):
            words = record.read_bytes().split(b"\0")[:-1]
            text = [w.decode("utf-8", "surrogateescape") for w in words]
            stdin = state / f"stdin{record.suffix}"
            given = stdin.read_text() if stdin.exists() else None
            started.append(Started(PurePosixPath(text[0]).name, tuple(text[1:]), given))
        return Run((state / "trace").read_text(), tuple(started), status)

    def explore(self, shell: str, argv: Sequence[str], env: Mapping[str, str]) -> list[Run]:
        """The all-true path, then paths with up to MAX_FLIPS more false answers, breadth
        first, at most MAX_RUNS runs."""
        self.stub(argv)
        queue, seen = [""], {""}
        runs: list[Run] = []
        while queue and len(runs) < MAX_RUNS:
            decisions = queue.pop(0)
            run = self.run(shell, argv, env, decisions)
            runs.append(run)
            if decisions.count("1") >= MAX_FLIPS:
                continue
            for i in range(len(decisions), len(run.decisions)):
                child = run.decisions[:i] + "1"
                if child not in seen:
                    seen.add(child)
                    queue.append(child)
        return runs


# A run is waited for and stopped by its session (start_new_session=True: the session's id is
# the run's pid), not its process group: GNU timeout puts itself and its command in a group of
# their own, so `timeout 10 sh s.sh &` outlived a wait for the group and its recorder was read
# half written (CI, 2026-12-05: IndexError on an empty record under load). Only `setsid`
# leaves the session; no case starts a server in the background through it.
def _wait_for_session(session: int) -> None:
    """Until no process of `session` but zombies is left (an orphan's zombie waits for whoever
    reaps orphans here, which may be never)."""
    for _ in range(int(_RUN_TIMEOUT_S / 0.01)):
        if not _live_in(session):
            return
        time.sleep(0.01)


def _live_in(session: int) -> list[int]:
    """The pids of `session`'s processes that are not zombies."""
    live = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # it ended while being read
        if int(fields[3]) == session and fields[0] != "Z":
            live.append(int(stat_file.parent.name))
    return live


def _kill_session(session: int) -> None:
    """SIGKILL every process of `session`, again while any is left: unlike killpg, one pass
    misses a process forked after the listing."""
    for _ in range(int(_RUN_TIMEOUT_S / 0.01)):
        live = _live_in(session)
        if not live:
            return
        for pid in live:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        time.sleep(0.01)


def _libraries(binary: str) -> set[str]:
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    return {word for word in out.split() if word.startswith("/")}


def _with_prelude(shell: str, argv: list[str]) -> list[str]:
    """argv with its first shell (and the `-c` script after it) run by `shell`, the oracle's
    prelude before the script; argv unchanged when it holds no shell script."""
    for i, word in enumerate(argv[:-2]):
        if PurePosixPath(word).name in _SHELLS and _SCRIPT_FLAG.match(argv[i + 1]):
            script = _PRELUDE[shell] + argv[i + 2]
            return [*argv[:i], f"/bin/{shell}", argv[i + 1], script, *argv[i + 3 :]]
    return argv


def has_script(argv: Sequence[str]) -> bool:
    return _with_prelude("dash", list(argv)) != list(argv)


def props_of(
    argv: Sequence[str], env: Mapping[str, str], entrypoints: bool = False
) -> dict[str, Any]:
    """A container of the official image running `argv` (as its command, so through the image's
    docker-entrypoint.sh, or as `entrypoints`) with `env`."""
    key = "entrypoints" if entrypoints else "command"
    return {"image": IMAGE, key: list(argv), "envs": [f"{k}={v}" for k, v in env.items()]}


def pack_servers(props: Mapping[str, object]) -> list[RedisServer] | None:
    """Every server the pack believes the container may run; None: it sees no server."""
    if recognise(props).verdict is not Verdict.SERVER:
        return None
    ((server, _),) = recognised([Resource(CONTAINER, "redis", dict(props))])
    assert server is not None
    return [server, *server.branches]


def pack_argvs(props: Mapping[str, object]) -> list[tuple[str, ...] | None]:
    """The argv of every server the pack believes the container may run (None: unknown)."""
    found = recognise(props)
    if found.verdict is not Verdict.SERVER:
        return []
    return [each.args for each in (found, *found.branches)]


def same(believed: list[tuple[str, ...] | None], started: set[Started]) -> bool:
    """Whether the pack believes exactly the argvs the shell started (`matches`)."""
    serving = [s for s in started if serves(s)]
    ran = all(any(b is not None and matches(b, s.args) for b in believed) for s in serving)
    return ran and all(b is not None and any(matches(b, s.args) for s in serving) for b in believed)


# Options after which redis-server prints or tests something and exits (src/server.c main
# reads them as its first argument only): no server runs.
_EXITS_AT_ONCE: Final = frozenset(
    {"-v", "--version", "-h", "--help", "--test-memory", "--check-system"}
)


def serves(started: Started) -> bool:
    return not (started.args and started.args[0] in _EXITS_AT_ONCE)


def real_server(started: Started, env: Mapping[str, str]) -> RedisServer:
    """The pack's reading of a recorded server argv, as if Docker started it in exec form."""
    args = list(started.args)
    props = props_of([started.program, *args], env, entrypoints=True)
    if started.stdin is not None:
        # Read where Redis reads it: after the config file, before the options.
        conf = args[:1] if args and not args[0].startswith("-") else []
        options = [a for a in args[len(conf) :] if a != "-"]
        included = [*conf, "--include", "/shdiff/stdin.conf", *options]
        props = props_of([started.program, *included], env, entrypoints=True)
        props["uploads"] = [{"file": "/shdiff/stdin.conf", "content": started.stdin}]
    servers = pack_servers(props)
    assert servers is not None, started
    assert len(servers) == 1, started
    return servers[0]


def view(server: RedisServer) -> View:
    """server_view, with requirepass and masterauth as the length rule reads them (secret.py
    `_as_redis_reads`): a value a shell may expand is not judged (unknown), one it expands from
    the container's variables is that value."""
    seen = server_view(server)
    config = dict(seen.config)
    for name in ("requirepass", "masterauth"):
        if config.get(name):
            config[name] = _as_redis_reads(server, name)
    return View(config, seen.users, default_needs_password=seen.default_needs_password)


def fail_open(believed: list[RedisServer] | None, real: RedisServer) -> list[str]:
    """What the shell runs that no server the pack believes in is judged as strictly as: the
    settings (and `sentinel`: a data server judged as a sentinel escapes the memory rules)
    every believed server is safer on. [] when some believed server is as strict on each."""
    if believed is None:
        return ["no server"]
    theirs = view(real)
    safer_everywhere: set[str] | None = None
    for server in believed:
        safer = {d.setting for d in divergences(view(server), theirs) if d.pack_safer}
        if server.sentinel and not real.sentinel:
            safer.add("sentinel")
        safer_everywhere = safer if safer_everywhere is None else safer_everywhere & safer
    return sorted(safer_everywhere or ())


_EXPANSION: Final = re.compile(r"\$\{[^}]*\}|\$\([^)]*\)|`[^`]*`|\$[A-Za-z_@*#?$!0-9]\w*")


def matches(believed: Sequence[str], real: Sequence[str]) -> bool:
    """Whether the pack's argv is the shell's, a variable or command substitution standing for
    any text within one word (field splitting it into more words is a difference)."""
    if len(believed) != len(real):
        return False
    return all(_wild_match(mine, theirs) for mine, theirs in zip(believed, real, strict=True))


def _wild_match(mine: str, theirs: str) -> bool:
    regex, position = "", 0
    for found in _EXPANSION.finditer(mine):
        regex += re.escape(mine[position : found.start()]) + ".*"
        position = found.end()
    regex += re.escape(mine[position:])
    return re.fullmatch(regex, theirs, re.S) is not None
