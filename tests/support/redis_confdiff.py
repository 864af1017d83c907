"""Differential checks of the policy pack's model of Redis configuration against redis-server.

`observe` starts Debian's redis-server on a config file and argv exactly as given, followed only by
options that make it safe to run here (argv after the config file wins: redis/src/server.c
main). It runs in a network namespace of its own (`unshare --net`, whose loopback is down, so
it listens on no TCP port at all), so the config's own `port`/`tls-port` stand unchanged; a test
reads it over a unix socket as a `probe` user added for the purpose. `pack_view` is what
the pack concludes from the same text (policies/rules/_redisconf.py). `divergences` compares the
two on the settings the Redis rules judge, sorted by which side believes the safer thing.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import redis

from infra import pki
from policies.rules._acl import acl_users
from policies.rules._model import CONTAINER, Resource
from policies.rules._redisconf import (
    FileIndex,
    RedisServer,
    StackFiles,
    effective_settings,
    recognise,
)
from policies.rules.redis import requirepass_in_force

PROBE_USER: Final = "confdiff-probe"
_PROBE_PASSWORD: Final = "confdiff-probe-password-0123456789"
_PROBE_RULE: Final = f"{PROBE_USER} on >{_PROBE_PASSWORD} ~* &* +@all"
IMAGE: Final = "example.org/debian-redis:7.0"
"""Not the official image (whose build turns protected mode off): Redis's own defaults."""
CONF_NAME: Final = "redis.conf"
_START_TIMEOUT_S: Final = 15.0
# Settings the Redis rules judge, read back with CONFIG GET. Paths the overrides replace (TLS
# files, dir, aclfile's path) are left out: they are the harness's, not the config's.
COMPARED: Final = (
    "port",
    "tls-port",
    "protected-mode",
    "requirepass",
    "masterauth",
    "tls-auth-clients",
    "tls-replication",
    "tls-cluster",
    "cluster-enabled",
    "replicaof",
    "enable-debug-command",
    "enable-module-command",
    "enable-protected-configs",
    "tls-protocols",
    "tls-ciphers",
    "tls-prefer-server-ciphers",
)
# What redis-server 7.0 takes when nothing sets them (CONFIG GET on a server started with no
# config file), in the pack's terms: an unset value is the rules' default.
_REDIS_DEFAULTS: Final = {
    "port": "6379",
    "tls-port": "0",
    "protected-mode": "yes",
    "requirepass": "",
    "masterauth": "",
    "tls-auth-clients": "yes",
    "tls-replication": "no",
    "tls-cluster": "no",
    "cluster-enabled": "no",
    "replicaof": "",
    "enable-debug-command": "no",
    "enable-module-command": "no",
    "enable-protected-configs": "no",
    "tls-protocols": "",
    "tls-ciphers": "",
    "tls-prefer-server-ciphers": "no",
}


@dataclass(frozen=True)
class Pki:
    """A server certificate, key and CA for the TLS options the overrides put in place."""

    cert: Path
    key: Path
    ca: Path

    @classmethod
    def generate(cls, root: Path) -> Pki:
        ca = pki.create_ca("confdiff test CA", validity_days=2)
        server = pki.issue_server_certificate(
            ca, "redis", dns_names=("localhost",), ip_addresses=("127.0.0.1",), validity_days=2
        )
        root.mkdir(parents=True, exist_ok=True)
        (root / "ca.crt").write_bytes(ca.cert_pem)
        (root / "server.crt").write_bytes(server.cert_pem)
        (root / "server.key").write_bytes(server.key_pem)
        return cls(root / "server.crt", root / "server.key", root / "ca.crt")


@dataclass(frozen=True)
class User:
    enabled: bool
    nopass: bool
    passwords: int
    admin: bool
    """May run one of _ADMIN_COMMANDS (redis: ACL DRYRUN; the pack: AclUser.privileged)."""
    any_key: bool
    """May read a key no pattern of a test names (redis: ACL DRYRUN GET; the pack: all_keys)."""


# Commands in @admin or @dangerous, with arguments they accept, for ACL DRYRUN.
_ADMIN_COMMANDS: Final = (
    ("config", "get", "port"), ("flushall",), ("keys", "*"), ("debug", "sleep", "0"),
    ("shutdown",), ("monitor",), ("client", "list"), ("save",), ("replicaof", "no", "one"),
)  # fmt: skip
_ANY_KEY: Final = ("get", "confdiff:any:key")


@dataclass(frozen=True)
class View:
    """One side's conclusions. `refused`: redis-server would not start (its reason)."""

    config: Mapping[str, str | None]
    """Setting -> value; None: unknown (the pack fails closed on it)."""
    users: Mapping[str, User] | None
    """None: unknown."""
    default_needs_password: bool | None = None
    refused: str = ""
    log: str = field(default="", repr=False)


@dataclass(frozen=True)
class Divergence:
    setting: str
    pack: object
    redis: object
    pack_safer: bool
    """The pack believes something more secure than what redis-server runs: a bug."""


def materialise(root: Path, conf: str | None, files: Mapping[str, str]) -> dict[str, str]:
    """Text with `{root}` replaced by the directory the files are written to, by name."""
    written = dict(files)
    if conf is not None:
        written[CONF_NAME] = conf
    out = {}
    for name, text in written.items():
        out[name] = text.replace("{root}", str(root))
        (root / name).write_bytes(out[name].encode("utf-8", "surrogateescape"))
    return out


def observe(
    root: Path,
    conf: str | None,
    argv: Sequence[str],
    files: Mapping[str, str],
    material: Pki,
    *,
    aclfile: bool = False,
) -> View:
    """Start redis-server on `conf` (None: no config file) and `argv`, in `root`; read it back.

    `aclfile`: the configuration names an aclfile, given among `files` by its base name: the
    probe user goes into a copy of it (Redis refuses `user` directives beside an aclfile)."""
    root.mkdir(parents=True, exist_ok=True)
    texts = materialise(root, conf, files)
    argv = [a.replace("{root}", str(root)) for a in argv]
    overrides = [
        "--bind", "-127.0.0.1", "--unixsocket", str(root / "s.sock"), "--unixsocketperm", "700",
        "--dir", str(root), "--daemonize", "no", "--supervised", "no", "--logfile", "",
        "--pidfile", str(root / "redis.pid"), "--syslog-enabled", "no", "--save", "",
        "--tls-cert-file", str(material.cert), "--tls-key-file", str(material.key),
        "--tls-ca-cert-file", str(material.ca), "--tls-ca-cert-dir", "",
        "--tls-dh-params-file", "", "--cluster-config-file", str(root / "nodes.conf"),
    ]  # fmt: skip
    if aclfile:
        acl_names = [name for name in texts if name.endswith(".acl") or name == "users.acl"]
        copy = root / "probe.acl"
        body = "".join(texts[name] for name in acl_names[:1])
        copy.write_text(body + ("\n" if body and not body.endswith("\n") else "") +
                        f"user {_PROBE_RULE}\n")  # fmt: skip
        overrides += ["--aclfile", str(copy)]
    else:
        overrides += ["--user", *_PROBE_RULE.split()]
    command = ["redis-server", *([str(root / CONF_NAME)] if conf is not None else []), *argv]
    return _run(root, [*command, *overrides])


def _run(root: Path, command: list[str]) -> View:
    socket_path = root / "s.sock"
    # A network namespace of its own, its loopback left down: nothing can reach the server
    # over TCP (it skips the `-` optional bind address it cannot have) and its port stays.
    wrapped = ["unshare", "--net", *command]
    log_path = root / "redis.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            wrapped, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=root
        )
    try:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not socket_path.exists():
            if process.poll() is not None:
                text = log_path.read_text(errors="replace")
                return View({}, None, refused=_refusal(text), log=text)
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.02)
        client = redis.Redis(
            unix_socket_path=str(socket_path), username=PROBE_USER, password=_PROBE_PASSWORD,
            decode_responses=True, socket_timeout=10,
        )  # fmt: skip
        try:
            with client:
                _ready(client, process)
                config = {name: _config_get(client, name) for name in COMPARED}
                users = _users(client)
        except redis.ConnectionError:
            # Some refusals come after the socket is made (ACL users are loaded last).
            if process.wait(timeout=_START_TIMEOUT_S) is None:
                raise
            text = log_path.read_text(errors="replace")
            return View({}, None, refused=_refusal(text), log=text)
        default = users.get("default")
        needs = default is None or not default.enabled or not default.nopass
        return View(config, users, default_needs_password=needs, log="")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 9)
        process.wait()
        shutil.rmtree(root, ignore_errors=True)


def _users(client: redis.Redis) -> dict[str, User]:
    users = {}
    for raw in client.acl_users():
        name = raw.decode() if isinstance(raw, bytes) else raw
        if name == PROBE_USER:
            continue
        got: Any = client.acl_getuser(name)
        flags = set(got["flags"])
        admin = any(_dry_run(client, name, command) for command in _ADMIN_COMMANDS)
        users[name] = User("on" in flags, "nopass" in flags, len(got["passwords"]), admin,
                           _dry_run(client, name, _ANY_KEY))  # fmt: skip
    return users


def _dry_run(client: redis.Redis, user: str, command: tuple[str, ...]) -> bool:
    """Whether `user`'s ACL lets it run `command` (Redis 7.0's ACL DRYRUN runs nothing)."""
    try:
        answer = client.execute_command("ACL", "DRYRUN", user, *command)  # type: ignore[no-untyped-call]
        return bool(answer == "OK")
    except redis.ResponseError:  # renamed away (rename-command): no one runs it by that name
        return False


def _ready(client: redis.Redis, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while True:
        try:
            client.ping()
            return
        except (redis.ConnectionError, redis.BusyLoadingError):
            # It may refuse after making its socket (ACL users are loaded last): then it exits.
            if process.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _config_get(client: redis.Redis, name: str) -> str | None:
    try:
        got = client.config_get(name)
    except redis.ResponseError:  # CONFIG renamed away
        return None
    value = got.get(name)
    return None if value is None else str(value)


def _refusal(log: str) -> str:
    """redis-server's reason for refusing its configuration, without the offending line (it
    may hold a password): the line after `>>> '...'`, or the log's last line."""
    lines = [line for line in log.split("\n") if line.strip()]
    for i, line in enumerate(lines):
        if line.startswith(">>> ") and i + 1 < len(lines):
            return lines[i + 1]
    # A log line: "<pid>:<role> <date> <time> <level> <message>".
    return _LOG_PREFIX.sub("", lines[-1]) if lines else "(no output)"


_LOG_PREFIX: Final = re.compile(r"^\d+:[A-Z] \d+ \w+ \d+ [\d:.]+ [.*#-] ")


def pack_server(
    root: Path, conf: str | None, argv: Sequence[str], files: Mapping[str, str]
) -> RedisServer:
    """The pack's RedisServer for a container running redis-server on these files and argv."""
    texts = {name: text.replace("{root}", str(root)) for name, text in files.items()}
    if conf is not None:
        texts[CONF_NAME] = conf.replace("{root}", str(root))
    argv = [a.replace("{root}", str(root)) for a in argv]
    command = ["redis-server", *([str(root / CONF_NAME)] if conf is not None else []), *argv]
    props = {
        "image": IMAGE,
        "entrypoints": command,
        "uploads": [{"file": str(root / name), "content": text} for name, text in texts.items()],
    }
    resource = Resource(CONTAINER, "redis", props)
    recognition = recognise(props)
    index = FileIndex(StackFiles([resource]), 0)
    settings = effective_settings(recognition.args, index, IMAGE, image_defaults={})
    return RedisServer(resource, settings, index, image=IMAGE)


def pack_view(root: Path, conf: str | None, argv: Sequence[str], files: Mapping[str, str]) -> View:
    return server_view(pack_server(root, conf, argv, files))


def server_view(server: RedisServer) -> View:
    """What the pack concludes about one server (tests/support/shell_diff.py compares these
    too)."""
    s = server.settings
    config: dict[str, str | None] = {}
    for name in COMPARED:
        if not s.known(name):
            config[name] = None
            continue
        value = s.value(name)
        config[name] = _REDIS_DEFAULTS[name] if value is None else value
    # slaveof is read as replicaof (policies/rules/_redisconf.py _ALIASES), as Redis reads it.
    rules = server.acl_rules()
    if rules is None:
        return View(config, None)
    users = {
        name: User(user.enabled, user.nopass, -1, user.privileged, user.all_keys)
        for name, user in acl_users(rules).items()
    }
    default = users["default"]
    if requirepass_in_force(server):  # the pack's model: requirepass is the default's password
        default = users["default"] = dataclasses.replace(default, nopass=False)
    needs = not default.enabled or not default.nopass
    return View(config, users, default_needs_password=needs)


# For each setting, the value the pack must not believe unless Redis runs it too: believing it
# while Redis runs something else is believing the safer thing.
_SAFE: Final[dict[str, Callable[[str], bool]]] = {
    "port": lambda v: v == "0",
    "protected-mode": lambda v: v.lower() == "yes",
    "tls-auth-clients": lambda v: v.lower() == "yes",
    "tls-replication": lambda v: v.lower() == "yes",
    "tls-cluster": lambda v: v.lower() == "yes",
    "cluster-enabled": lambda v: v.lower() != "yes",
    "replicaof": lambda v: v in ("", "no one"),
    "enable-debug-command": lambda v: v.lower() == "no",
    "enable-module-command": lambda v: v.lower() == "no",
    "enable-protected-configs": lambda v: v.lower() == "no",
}


def _normal(name: str, value: str) -> str:
    if name in ("port", "tls-port") and value.strip().isdigit():
        return str(int(value))
    if name == "replicaof":
        words = " ".join(value.lower().split())
        return "" if words == "no one" else words
    if name in _SAFE and name not in ("requirepass", "masterauth"):
        return value.lower()
    return value


def divergences(pack: View, server: View) -> list[Divergence]:
    """Where the pack's conclusion differs from what redis-server runs (none when Redis refused
    to start: nothing then runs at all). An unknown on the pack's side is no divergence: every
    rule fails closed on it."""
    if server.refused:
        return []
    found = []
    for name in COMPARED:
        mine, theirs = pack.config.get(name), server.config.get(name)
        if mine is None or theirs is None or _normal(name, mine) == _normal(name, theirs):
            continue
        safe = _SAFE.get(name)
        pack_safer = safe is not None and bool(safe(mine)) and not safe(theirs)
        if name in ("requirepass", "masterauth"):
            # A longer password than Redis has passes the length floor it would fail.
            pack_safer = len(mine) > len(theirs)
        found.append(Divergence(name, mine, theirs, pack_safer))
    needs = (pack.default_needs_password, server.default_needs_password)
    if None not in needs and needs[0] != needs[1]:
        found.append(Divergence("default user needs a password", *needs, pack_safer=bool(needs[0])))
    if pack.users is not None and server.users is not None:
        for name in sorted(set(pack.users) | set(server.users)):
            mine_user, theirs_user = pack.users.get(name), server.users.get(name)
            open_mine = bool(mine_user and mine_user.enabled and mine_user.nopass)
            open_theirs = bool(theirs_user and theirs_user.enabled and theirs_user.nopass)
            on_mine = bool(mine_user and mine_user.enabled)
            on_theirs = bool(theirs_user and theirs_user.enabled)
            if (open_mine, on_mine) != (open_theirs, on_theirs):
                found.append(Divergence(
                    f"ACL user {name} (on, nopass)", (on_mine, open_mine),
                    (on_theirs, open_theirs),
                    pack_safer=(open_theirs and not open_mine) or (on_theirs and not on_mine),
                ))  # fmt: skip
            if mine_user and theirs_user and on_mine and on_theirs:
                found += _reach(name, mine_user, theirs_user)
    return found


def _reach(name: str, mine: User, theirs: User) -> list[Divergence]:
    """What an enabled user may run and read that the pack believes it may not. Only that way:
    _ADMIN_COMMANDS is a sample of what AclUser.privileged counts, so the pack may rightly see
    a privilege (INFO, SORT) the sample does not try."""
    found = []
    if theirs.admin and not mine.admin:
        found.append(Divergence(f"ACL user {name} may run admin or dangerous commands",
                                False, True, pack_safer=True))  # fmt: skip
    if theirs.any_key and not mine.any_key:
        found.append(Divergence(f"ACL user {name} may read every key", False, True,
                                pack_safer=True))  # fmt: skip
    return found
