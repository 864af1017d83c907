# redis-py's connection classes are unannotated; their calls are checked by these tests.
# mypy: disable-error-code="no-untyped-call"
"""The app's and the rotation pass's ACL users on a real TLS redis-server: exactly the
commands each client sends.

`infra/redis_acl.py` lists the commands; these tests pin each list to the client's real
traffic (every operation of the sync and async clients and an outage replay as the app, a
rotation pass as the rotation user, counted by the server itself in INFO commandstats) and
prove every other command `COMMAND DOCS` names is refused: by the ACL (ACL DRYRUN) and on the
wire. The serving app may not WATCH (nor MULTI/EXEC/SCAN): a watched name is held until the
connection ends and Redis 7.0 charges it to no memory limit. The single-allocation cap and the
single database are checked here too.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from infra.redis_acl import APP_COMMANDS, APP_USER, ROTATION_COMMANDS, ROTATION_USER
from infra.redis_conf import VALUE_LIMIT_BYTES, bulk_limit_bytes
from infra.secretgen import generate_password
from secure_cache import AsyncSecureCache, SecureCache
from secure_cache import core as core_module
from secure_cache.core import byte_groups
from tests.support.cache_env import FakeClock, cache_environ, new_data_key, rotation_environ
from tests.support.redis_commands import (
    COMMAND_REFUSED,
    CONNECTION_ONLY,
    REFUSED_BY_CONFIG,
    CommandSpec,
    Send,
    raw_sender,
    runnable,
)
from tests.support.tls_redis import OBSERVER, TlsRedisServer, observer_acl


class Observed:
    """A TLS server whose ACL also has a test-only `observer` (all commands, all keys)."""

    def __init__(self, server: TlsRedisServer, observer_password: str) -> None:
        self.server = server
        self._password = observer_password
        self.counted: dict[str, dict[str, int]] = {}
        """INFO commandstats a scenario took before resetting them."""

    def connection(self, user: str = OBSERVER, password: str | None = None) -> redis.Connection:
        material = self.server.material
        identity = material.app
        conn = redis.SSLConnection(
            host=self.server.host,
            port=self.server.port,
            username=user,
            password=password if password is not None else self._password,
            ssl_ca_certs=str(material.ca_file),
            ssl_certfile=str(identity.cert_file),
            ssl_keyfile=str(identity.key_file),
            protocol=2,
            socket_timeout=10,
        )
        conn.connect()
        return conn

    def send(self, *args: Any) -> Any:
        conn = self.connection()
        try:
            return raw_sender(conn)(*args)
        finally:
            conn.disconnect()


@pytest.fixture
def observed(tls_redis_factory: Any) -> Observed:
    password = generate_password(32)
    server: TlsRedisServer = tls_redis_factory(extra_acl=observer_acl(password))
    return Observed(server, password)


@pytest.fixture
def catalog(observed: Observed) -> list[CommandSpec]:
    conn = observed.connection()
    try:
        return runnable(raw_sender(conn))
    finally:
        conn.disconnect()


def _commandstats(observed: Observed) -> dict[str, dict[str, int]]:
    """{command: {calls, rejected_calls, ...}} from INFO commandstats."""
    text = observed.send("INFO", "commandstats").decode()
    stats: dict[str, dict[str, int]] = {}
    for line in text.splitlines():
        if line.startswith("cmdstat_"):
            name, fields = line[len("cmdstat_") :].split(":", 1)
            stats[name] = {k: int(float(v)) for k, v in (f.split("=") for f in fields.split(","))}
    return stats


def _wait_for_redis(cache: SecureCache, clock: FakeClock) -> None:
    deadline = time.monotonic() + 10
    while cache.backend != "redis" and time.monotonic() < deadline:
        clock.advance(60)
        cache.status()
        time.sleep(0.01)
    assert cache.backend == "redis", "the client did not recover after the restart"


def _drive_sync(
    observed: Observed,
    tmp_path: Path,
    old_key: str,
    new_key: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = observed.server
    clock = FakeClock()
    env = cache_environ(server, tmp_path / "old", data_key=old_key)
    cache = SecureCache.from_env(env, clock=clock)
    try:
        cache.set("acl:a", b"a", ttl=600)
        server.stop()
        cache.set("acl:outage", b"during")  # memory now, replayed on recovery
        cache.delete("acl:a")
        server.start()
        observed.send("CONFIG", "RESETSTAT")  # count only the client's traffic from here
        _wait_for_redis(cache, clock)
        cache.set("acl:b", b"b")
        cache.set("acl:ttl", b"t", ttl=30)
        assert cache.get("acl:b") == b"b"
        cache.set_many({f"acl:m{i}": bytes([i]) for i in range(5)}, ttl=60)
        cache.set_many({f"acl:n{i}": bytes([i]) for i in range(5)})
        assert len(cache.get_many([f"acl:m{i}" for i in range(5)])) == 5
        cache.set_json("acl:j", {"x": 1})
        assert cache.get_json("acl:j") == {"x": 1}
        assert cache.delete("acl:b") is True
        cache.ping()
        cache.status()
    finally:
        cache.close()
    rotating = cache_environ(server, tmp_path / "new", data_key=new_key, previous_keys=(old_key,))
    with SecureCache.from_env(rotating) as cache:
        assert cache.get("acl:outage") == b"during"


def _drive_sync_rotation(
    observed: Observed,
    tmp_path: Path,
    old_key: str,
    new_key: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = observed.server
    env = rotation_environ(server, tmp_path / "pass", data_key=new_key, previous_keys=(old_key,))
    with SecureCache.from_env(env) as cache:
        # Entries deleted between the rotation's STRLEN and its WATCH/MGET leave a group with
        # nothing to move: the path that ends in UNWATCH. (The observer's DEL is counted with
        # the client's, which sends DEL itself above.)
        first: list[bool] = []

        def groups_of_deleted_names(names: list[bytes], *args: Any) -> list[list[bytes]]:
            if not first:
                first.append(True)
                observed.send("DEL", *names)
            return byte_groups(names, *args)

        monkeypatch.setattr(core_module, "byte_groups", groups_of_deleted_names)
        cache.rotate(batch_size=3)


def _drive_async(observed: Observed, tmp_path: Path, old_key: str, new_key: str) -> None:
    server = observed.server
    env = cache_environ(server, tmp_path / "async", data_key=new_key, previous_keys=(old_key,))
    pass_env = rotation_environ(
        server, tmp_path / "async-pass", data_key=new_key, previous_keys=(old_key,)
    )

    async def scenario() -> None:
        async with await AsyncSecureCache.from_env(env) as cache:
            await cache.set("aacl:a", b"a", ttl=60)
            await cache.set("aacl:b", b"b")
            assert await cache.get("aacl:a") == b"a"
            await cache.set_many({"aacl:c": b"c", "aacl:d": b"d"}, ttl=60)
            await cache.get_many(["aacl:c", "aacl:d"])
            await cache.delete("aacl:c")
            await cache.ping()
            await cache.status()

    async def rotation() -> None:
        async with await AsyncSecureCache.from_env(pass_env) as cache:
            await cache.rotate(batch_size=3)

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(scenario())
        # The app's commands are counted first, the pass's after a CONFIG RESETSTAT.
        observed.counted = _commandstats(observed)
        observed.send("CONFIG", "RESETSTAT")
        loop.run_until_complete(rotation())
    finally:
        loop.close()


def _sent(stats: dict[str, dict[str, int]]) -> tuple[set[str], set[str]]:
    """(commands sent, commands the ACL refused) of INFO commandstats, without the observer's."""
    stats = {k: v for k, v in stats.items() if k not in ("config|resetstat", "info")}
    rejected = {name for name, s in stats.items() if s.get("rejected_calls", 0)}
    return set(stats) - CONNECTION_ONLY, rejected


def test_acl__each_user_allows_exactly_the_commands_its_client_sends(
    observed: Observed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_key, new_key = observed.server.material.data_key, new_data_key()
    _drive_sync(observed, tmp_path, old_key, new_key, monkeypatch)
    app_sync = _commandstats(observed)
    observed.send("CONFIG", "RESETSTAT")
    _drive_sync_rotation(observed, tmp_path, old_key, new_key, monkeypatch)
    pass_sync = _commandstats(observed)
    observed.send("CONFIG", "RESETSTAT")
    _drive_async(observed, tmp_path, old_key, new_key)
    app_async, pass_async = observed.counted, _commandstats(observed)
    app_sent, app_rejected = _sent(app_sync)
    app_sent |= _sent(app_async)[0]
    pass_sent, pass_rejected = _sent(pass_sync)
    pass_sent |= _sent(pass_async)[0]
    assert app_rejected | pass_rejected == set(), (
        f"the ACL refused commands the clients sent: {app_rejected | pass_rejected}"
    )
    assert app_sent == set(APP_COMMANDS), (
        f"app traffic {sorted(app_sent)} != allowlist {sorted(APP_COMMANDS)}: update "
        "APP_COMMANDS in infra/redis_acl.py to what the client really sends"
    )
    # The observer's DEL (deleting a group mid-pass) is counted with the pass's own DELs.
    assert pass_sent == set(ROTATION_COMMANDS), (
        f"rotation traffic {sorted(pass_sent)} != allowlist {sorted(ROTATION_COMMANDS)}: "
        "update ROTATION_COMMANDS in infra/redis_acl.py to what the pass really sends"
    )


def test_app_acl__only_connection_commands_bypass_the_acl(catalog: list[CommandSpec]) -> None:
    bypass = {spec.name for spec in catalog if "no_auth" in spec.flags}
    # HELLO is renamed away (infra/redis_conf.py: its SETNAME held memory outside every limit),
    # so the stack's server no longer lists it.
    assert bypass == CONNECTION_ONLY - {"hello"}


@pytest.mark.parametrize(
    ("user", "commands"), [(APP_USER, APP_COMMANDS), (ROTATION_USER, ROTATION_COMMANDS)]
)
def test_acl__acl_dryrun_refuses_every_other_documented_command(
    observed: Observed, catalog: list[CommandSpec], user: str, commands: tuple[str, ...]
) -> None:
    conn = observed.connection()
    send = raw_sender(conn)
    allowed = []
    try:
        for spec in catalog:
            if spec.name in commands or spec.name in CONNECTION_ONLY:
                continue
            verdict = send("ACL", "DRYRUN", user, *spec.argv("cache:probe"))
            if verdict == b"OK":
                allowed.append(spec.name)
    finally:
        conn.disconnect()
    assert len(catalog) > 200, "COMMAND DOCS answered with too few commands to mean anything"
    assert allowed == [], f"the {user} user's ACL allows {allowed}"


def _send_as_app(observed: Observed, argv: list[str]) -> str:
    conn = observed.connection(APP_USER, observed.server.material.app_password)
    try:
        return f"{raw_sender(conn)(*argv)!r}"[:120]
    except redis.ResponseError as exc:
        return f"-{exc}"
    finally:
        conn.disconnect()


def test_app_acl__every_other_documented_command_is_refused_on_the_wire(
    observed: Observed, catalog: list[CommandSpec]
) -> None:
    conn = observed.connection(APP_USER, observed.server.material.app_password)
    send: Send = raw_sender(conn)
    not_refused = []
    try:
        for spec in catalog:
            if spec.name in APP_COMMANDS or spec.name in CONNECTION_ONLY:
                continue
            try:
                reply = f"{send(*spec.argv('cache:probe'))!r}"[:80]
            except redis.ResponseError as exc:
                reply = str(exc)
            if COMMAND_REFUSED not in reply and not any(r in reply for r in REFUSED_BY_CONFIG):
                not_refused.append(f"{spec.name}: {reply}")
    finally:
        conn.disconnect()
    assert not_refused == [], not_refused
    assert observed.send("PING") == b"PONG"


@pytest.mark.parametrize(
    "argv",
    [["SELECT", "1"], ["COPY", "cache:a", "cache:b", "DB", "1"], ["SETRANGE", "cache:x", "1", "x"],
     ["APPEND", "cache:x", "x"], ["CLIENT", "TRACKING", "on"], ["DUMP", "cache:x"],
     ["OBJECT", "ENCODING", "cache:x"], ["KEYS", "cache:*"],
     # attack4: WATCH of large names, held until the connection ends and charged to no
     # memory limit, OOM-killed a deployed Redis; the pass's other commands go with it.
     ["WATCH", "cache:x"], ["MULTI"], ["EXEC"], ["UNWATCH"], ["SCAN", "0"],
     ["STRLEN", "cache:x"], ["PTTL", "cache:x"]],
    ids=lambda a: "-".join(a[:2]).lower(),
)  # fmt: skip
def test_app_acl__the_attack_reports_commands_are_refused(
    observed: Observed, argv: list[str]
) -> None:
    assert COMMAND_REFUSED in _send_as_app(observed, argv)


def _used_memory(observed: Observed) -> int:
    info = observed.send("INFO", "memory").decode()
    return int(info.split("used_memory:", 1)[1].split("\r\n", 1)[0])


def test_app_acl__watch_of_large_names_is_refused_and_holds_no_memory(observed: Observed) -> None:
    """attack4's OOM, scaled down: one connection of the app user WATCHes 4 names of 1 MiB
    per round. Allowed, Redis would hold every name (16 MiB here) until the connection ends,
    outside maxmemory-clients; refused, it holds nothing."""
    conn = observed.connection(APP_USER, observed.server.material.app_password)
    send = raw_sender(conn)
    before = _used_memory(observed)
    replies = []
    try:
        for round_ in range(4):
            names = [b"cache:" + bytes([round_, i]) * (512 * 1024) for i in range(4)]
            try:
                replies.append(repr(send("WATCH", *names)))
            except redis.ResponseError as exc:
                replies.append(str(exc))
        held = _used_memory(observed) - before
    finally:
        conn.disconnect()
    assert all(COMMAND_REFUSED in reply for reply in replies), replies
    assert held < 4 << 20, f"Redis holds {held} bytes more after the refused WATCHes"


def test_server__has_one_database(observed: Observed) -> None:
    with pytest.raises(redis.ResponseError, match="DB index is out of range"):
        observed.send("SELECT", "1")


@pytest.mark.parametrize("command", ["SETRANGE", "APPEND", "SET"])
def test_server__refuses_one_allocation_beyond_the_bulk_limit(
    observed: Observed, command: str
) -> None:
    limit = bulk_limit_bytes(VALUE_LIMIT_BYTES)
    if command == "SETRANGE":  # the attack: 256 MiB in one command
        with pytest.raises(redis.ResponseError, match="string exceeds maximum allowed size"):
            observed.send("SETRANGE", "cache:oom", str(268435455), "x")
    elif command == "APPEND":
        observed.send("SET", "cache:oom", b"x" * (limit - 1))
        with pytest.raises(redis.ResponseError, match="string exceeds maximum allowed size"):
            observed.send("APPEND", "cache:oom", b"yy")
    else:
        # An argument beyond the limit is a protocol error: Redis closes the connection,
        # usually before the client has finished writing it.
        with pytest.raises((redis.ResponseError, redis.ConnectionError)):
            observed.send("SET", "cache:oom", os.urandom(limit + 1))
    assert observed.send("PING") == b"PONG"
    assert observed.send("STRLEN", "cache:oom") <= limit
