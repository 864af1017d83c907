"""Material rotated under a running client: certificates, CA bundle, password, data keys.

Each scenario runs a client (SecureCache in a thread, or AsyncSecureCache on its own event
loop) doing set/get in a loop against a real TLS redis-server while the material changes
the way a rotation changes it: the client's files are rewritten in place and the server is
switched with CONFIG SET / ACL SETUSER, then the app's connections are killed so that every
later command needs a new connection. The client must see no exception, read back every
value it wrote, never fall back to memory, and every acknowledged write must be in Redis
afterwards. The `without-reload` cases run the same scenarios with reloading switched off
and show that each one breaks such a client.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from infra import pki
from infra.redis_acl import APP_USER
from infra.secretgen import generate_password
from secure_cache import AsyncSecureCache, SecureCache
from secure_cache.client import _Shell
from tests.support.cache_env import as_rotation, cache_environ, new_data_key, write_secret
from tests.support.cache_shells import open_cache
from tests.support.tls_redis import TlsRedisServer

RELOAD_INTERVAL_S = 0.1
KEYS = 40
ADMIN = "rotation-admin"
_TIMEOUT_S = 20.0


# -- the server, with an admin identity that may reconfigure it -------------------------------


class RotatingServer:
    """A TLS redis-server plus an admin connection that changes its material."""

    def __init__(self, tmp: Path) -> None:
        self.redis = TlsRedisServer()
        self.admin_password = generate_password(32)
        acl = self.redis.workdir / "users.acl"
        acl.write_text(acl.read_text() + f"user {ADMIN} on >{self.admin_password} ~* &* +@all\n")
        self.redis.start()
        self.dir = tmp
        self.dir.mkdir(parents=True, exist_ok=True)
        m = self.redis.material
        # One admin connection, opened now with a certificate of the first CA, kept for
        # the whole test (the server only verifies certificates of new connections).
        self.admin = redis.Redis(
            host=self.redis.host,
            port=self.redis.port,
            username=ADMIN,
            password=self.admin_password,
            ssl=True,
            ssl_ca_certs=str(m.ca_file),
            ssl_certfile=str(m.healthcheck.cert_file),
            ssl_keyfile=str(m.healthcheck.key_file),
            single_connection_client=True,
            protocol=2,  # the stack's Redis has no HELLO (infra/redis_conf.py)
        )
        self.admin.ping()

    def write(self, name: str, data: bytes) -> str:
        path = self.dir / name
        path.write_bytes(data)
        return str(path)

    def command(self, *args: str) -> None:
        self.admin.execute_command(*args)  # type: ignore[no-untyped-call]

    def serve_certificate(self, ca: pki.CertifiedKey, name: str, *, validity_days: int) -> None:
        """A new server certificate of `ca` for this server's addresses, written as NAME.crt
        and NAME.key and switched to with CONFIG SET (new connections get it)."""
        cert = pki.issue_server_certificate(
            ca,
            "redis",
            dns_names=("localhost",),
            ip_addresses=("127.0.0.1",),
            validity_days=validity_days,
        )
        self.command(
            "CONFIG", "SET",
            "tls-cert-file", self.write(f"{name}.crt", cert.cert_pem),
            "tls-key-file", self.write(f"{name}.key", cert.key_pem),
        )  # fmt: skip

    def kill_app_connections(self) -> None:
        self.command("CLIENT", "KILL", "USER", APP_USER)

    def close(self) -> None:
        self.admin.close()
        self.redis.close()


@pytest.fixture
def server(_require_redis_server: None, tmp_path: Path) -> Iterator[RotatingServer]:
    started = RotatingServer(tmp_path / "server-material")
    try:
        yield started
    finally:
        started.close()


def _rewrite(path: str | Path, data: bytes) -> None:
    """Rewrite a mounted file in place, as an init container copying new material does."""
    target = Path(path)
    target.chmod(0o600)
    target.write_bytes(data)
    target.chmod(0o400)


# -- the load: set/get in a loop, sync or async ------------------------------------------------


@dataclass
class Load:
    """What the looping client saw."""

    ops: int = 0
    errors: list[BaseException] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    acked: dict[str, bytes] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    reloads: Callable[[], int] = lambda: 0
    reloading: bool = True

    def step(self, key: str, value: bytes, got: bytes | None) -> None:
        self.acked[key] = value
        if got != value:
            seen = "nothing" if got is None else "another value"
            self.wrong.append(f"op {self.ops}: read back {seen}")
        self.ops += 1

    def wait_ops(self, more: int = 30) -> None:
        target = self.ops + more
        _wait(lambda: self.ops >= target or bool(self.errors))

    def wait_reload(self, since: int) -> None:
        """Until the client has reloaded its material (a few check intervals without reload)."""
        if self.reloading:
            _wait(lambda: self.reloads() > since or bool(self.errors))
        time.sleep(RELOAD_INTERVAL_S * 3)


def _wait(condition: Callable[[], bool], timeout: float = _TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the load")
        time.sleep(0.02)


def _sync_loop(
    env: dict[str, str], load: Load, started: threading.Event, interval: float | None
) -> None:
    with SecureCache.from_env(env, reload_interval=interval) as cache:
        load.reloads = lambda: cache.events.count("material_reloads")
        started.set()
        while not load.stop.is_set():
            key, value = f"load:{load.ops % KEYS}", b"v%d" % load.ops
            try:
                cache.set(key, value)
                load.step(key, value, cache.get(key))
            except BaseException as exc:
                load.errors.append(exc)
                return
        load.counters = cache.events.snapshot()


def _async_loop(
    env: dict[str, str], load: Load, started: threading.Event, interval: float | None
) -> None:
    async def run() -> None:
        cache = await AsyncSecureCache.from_env(env, reload_interval=interval)
        async with cache:
            load.reloads = lambda: cache.events.count("material_reloads")
            started.set()
            while not load.stop.is_set():
                key, value = f"load:{load.ops % KEYS}", b"v%d" % load.ops
                try:
                    await cache.set(key, value)
                    load.step(key, value, await cache.get(key))
                except BaseException as exc:
                    load.errors.append(exc)
                    return
            load.counters = cache.events.snapshot()

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(run())
    finally:
        loop.close()


@contextlib.contextmanager
def running(
    shell: str, env: dict[str, str], interval: float | None, *, reloading: bool
) -> Iterator[Load]:
    """A client doing set/get in a loop (in a thread) while the body rotates material."""
    load = Load(reloading=reloading)
    started = threading.Event()
    target = _sync_loop if shell == "sync" else _async_loop
    worker = threading.Thread(target=target, args=(env, load, started, interval), daemon=True)
    worker.start()
    try:
        _wait(started.is_set)
        load.wait_ops()
        yield load
        load.wait_ops()
    finally:
        load.stop.set()
        worker.join(timeout=_TIMEOUT_S)
    assert not worker.is_alive(), "the load did not stop"


def client_environ(server: RotatingServer, tmp: Path) -> dict[str, str]:
    """The app's environment, with its own copies of its files (the server keeps its own)."""
    material = server.redis.material
    files = tmp / "client"
    files.mkdir(parents=True)
    copies = {}
    for name, source in (
        ("ca.crt", material.ca_file),
        ("app.crt", material.app.cert_file),
        ("app.key", material.app.key_file),
    ):
        copies[name] = str(shutil.copyfile(source, files / name))
    return cache_environ(
        server.redis,
        files,
        REDIS_TLS_CA_CERT=copies["ca.crt"],
        REDIS_TLS_CERT_FILE=copies["app.crt"],
        REDIS_TLS_KEY_FILE=copies["app.key"],
        REDIS_ENCRYPTION_PREVIOUS_KEYS_FILE=str(write_secret(files, "previous-keys", "")),
    )


# -- the transitions, as the rotation helper drives the server -----------------------------------

Rotation = Callable[[RotatingServer, dict[str, str], Load], None]


def client_certificate(server: RotatingServer, env: dict[str, str], load: Load) -> None:
    """A client certificate from a new CA: trusted beside the old, then alone."""
    admin = server.admin
    new_ca = pki.create_ca("secure-redis test CA 2", validity_days=2)
    both = server.write("ca-both.crt", server.redis.material.ca.cert_pem + new_ca.cert_pem)
    admin.config_set("tls-ca-cert-file", both)
    issued = pki.issue_client_certificate(new_ca, APP_USER, validity_days=2)
    since = load.reloads()
    _rewrite(env["REDIS_TLS_CERT_FILE"], issued.cert_pem)  # the key follows a moment later
    _rewrite(env["REDIS_TLS_KEY_FILE"], issued.key_pem)
    load.wait_reload(since)
    admin.config_set("tls-ca-cert-file", server.write("ca-new.crt", new_ca.cert_pem))
    server.kill_app_connections()


def ca_bundle(server: RotatingServer, env: dict[str, str], load: Load) -> None:
    """CA rollover: the client trusts old+new, the server switches, the old CA goes."""
    new_ca = pki.create_ca("secure-redis test CA 2", validity_days=2)
    since = load.reloads()
    _rewrite(env["REDIS_TLS_CA_CERT"], server.redis.material.ca.cert_pem + new_ca.cert_pem)
    load.wait_reload(since)
    server.serve_certificate(new_ca, "server-new", validity_days=2)
    server.kill_app_connections()
    load.wait_ops()
    since = load.reloads()
    _rewrite(env["REDIS_TLS_CA_CERT"], new_ca.cert_pem)
    load.wait_reload(since)
    server.kill_app_connections()


def password(server: RotatingServer, env: dict[str, str], load: Load) -> None:
    """ROTATE (both passwords valid), the client switches, SET (only the new one)."""
    old, new = server.redis.material.app_password, generate_password(32)
    server.command("ACL", "SETUSER", APP_USER, f">{new}")
    since = load.reloads()
    _rewrite(env["REDIS_PASSWORD_FILE"], new.encode() + b"\n")
    load.wait_reload(since)
    server.command("ACL", "SETUSER", APP_USER, f"<{old}")
    server.kill_app_connections()


def password_switched_at_once(server: RotatingServer, env: dict[str, str], load: Load) -> None:
    """The file and the server change together and connections drop before any timed check:
    the AUTH failure itself makes the client reread the file and retry once."""
    old, new = server.redis.material.app_password, generate_password(32)
    _rewrite(env["REDIS_PASSWORD_FILE"], new.encode() + b"\n")
    server.command("ACL", "SETUSER", APP_USER, f">{new}", f"<{old}")
    server.kill_app_connections()


def data_key(server: RotatingServer, env: dict[str, str], load: Load) -> None:
    """Generation bump (old key kept for reading), rotation pass, old key retired."""
    old = Path(env["REDIS_ENCRYPTION_KEY_FILE"]).read_text().strip()
    since = load.reloads()
    _rewrite(env["REDIS_ENCRYPTION_KEY_FILE"], new_data_key().encode())  # key first, then
    _rewrite(env["REDIS_ENCRYPTION_PREVIOUS_KEYS_FILE"], old.encode())  # the previous keys
    load.wait_reload(since)
    # The pass runs as the stack runs it: its own ACL user, beside the app's client.
    with SecureCache.from_env(as_rotation(server.redis, env, server.dir / "pass")) as rotator:
        # A client still writing with the old key keeps the pass from completing: bounded.
        for _ in range(10):
            if rotator.rotate(batch_size=20).complete:
                break
    load.wait_ops()
    since = load.reloads()
    _rewrite(env["REDIS_ENCRYPTION_PREVIOUS_KEYS_FILE"], b"\n")
    load.wait_reload(since)


# (rotation, reload interval: None checks the files only when Redis refuses the client)
SCENARIOS: dict[str, tuple[Rotation, float | None]] = {
    "client-certificate": (client_certificate, RELOAD_INTERVAL_S),
    "ca-bundle": (ca_bundle, RELOAD_INTERVAL_S),
    "password": (password, RELOAD_INTERVAL_S),
    "password-on-auth-failure": (password_switched_at_once, None),
    "data-key": (data_key, RELOAD_INTERVAL_S),
}


def _missing(env: dict[str, str], acked: dict[str, bytes]) -> list[str]:
    """Acknowledged writes not in Redis, read by a new client with the final material."""
    with SecureCache.from_env(env) as reader:
        assert reader.backend == "redis"
        found = reader.get_many(acked)
    return [key for key, value in acked.items() if found.get(key) != value]


@pytest.mark.parametrize("name", list(SCENARIOS))
@pytest.mark.parametrize("shell", ["sync", "async"])
def test_rotation_under_load__no_error_no_wrong_value_no_lost_write(
    server: RotatingServer, tmp_path: Path, shell: str, name: str
) -> None:
    rotate, interval = SCENARIOS[name]
    env = client_environ(server, tmp_path)
    with running(shell, env, interval, reloading=interval is not None) as load:
        rotate(server, env, load)
    assert not load.errors, load.errors[:3]
    assert not load.wrong, load.wrong[:3]
    assert load.counters["fallbacks"] == 0, load.counters
    assert not _missing(env, load.acked)
    assert load.reloads() >= 1


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_rotation_under_load__without_reload_breaks_the_client(
    server: RotatingServer, tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Positive control: the same scenario with reloading off fails the checks above."""
    monkeypatch.setattr(_Shell, "_reload", lambda self: False)
    rotate, interval = SCENARIOS[name]
    env = client_environ(server, tmp_path)
    with running("sync", env, interval, reloading=False) as load:
        rotate(server, env, load)
    assert not load.errors  # the cache API never raises; the damage shows below
    broken = load.wrong or load.counters["fallbacks"] or _missing(env, load.acked)
    assert broken, "the scenario did not need a reload"


@pytest.mark.parametrize("shell", ["sync", "async"])
def test_renewed_certificates__an_idle_clients_status_reports_the_new_server_certificate(
    server: RotatingServer, tmp_path: Path, shell: str
) -> None:
    """`up` renews the server's and the app's certificates; an app that sent no command since
    kept reporting the server certificate of its last handshake (/security-status, and the
    `server` series of secure_cache_certificate_expiry_timestamp_seconds that
    CertificateExpiresSoon reads) though that connection was gone with the old material. The
    handshake is forgotten with the material, so the status connects and reports the new one."""
    now = [0.0]
    env = client_environ(server, tmp_path)
    with open_cache(shell, env, clock=lambda: now[0], reload_interval=1.0) as cache:
        before = cache.status()["redis"]["server_certificate_not_after"]
        ca = server.redis.material.ca
        server.serve_certificate(ca, "server-renewed", validity_days=1)
        issued = pki.issue_client_certificate(ca, APP_USER, validity_days=1)
        _rewrite(env["REDIS_TLS_CERT_FILE"], issued.cert_pem)
        _rewrite(env["REDIS_TLS_KEY_FILE"], issued.key_pem)
        now[0] += 1.5  # the reload interval has passed; no command was sent
        after = cache.status()["redis"]["server_certificate_not_after"]
    assert before is not None
    assert after is not None
    assert after != before, "the status still names the server certificate before renewal"


@pytest.mark.parametrize("shell", ["sync", "async"])
def test_renewed_server_certificate_alone__the_status_reports_the_one_redis_presents_now(
    server: RotatingServer, tmp_path: Path, shell: str
) -> None:
    """Only the server certificate renewed (the app's material unchanged, so no reload):
    the app's pooled connections keep their TLS sessions, and the status named the server
    certificate of their handshake, the old one, until they reconnected (old16 closing note).
    The status now reports what a new connection is presented, as Redis serves it now."""
    env = client_environ(server, tmp_path)
    with open_cache(shell, env) as cache:
        cache.set("before", b"v")
        before = cache.status()["redis"]["server_certificate_not_after"]
        server.serve_certificate(server.redis.material.ca, "server-renewed", validity_days=1)
        after = cache.status()["redis"]["server_certificate_not_after"]
        assert cache.get("before") == b"v"  # on a pooled connection, made before the renewal
        again = cache.status()["redis"]["server_certificate_not_after"]
    assert before is not None
    assert after is not None
    assert after != before, "the status still names the server certificate before renewal"
    assert again == after
