"""The test server is as locked down as a deployed one: mTLS, ACL users, no plaintext."""

from __future__ import annotations

import socket
import ssl
import warnings

import pytest
import redis
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from infra.redis_acl import APP_USER, HEALTHCHECK_USER
from infra.secretgen import generate_password
from tests.support.tls_redis import ClientIdentity, TlsMaterial, TlsRedisServer


def _client(
    server: TlsRedisServer,
    *,
    username: str | None,
    password: str | None,
    identity: ClientIdentity | None = None,
    with_cert: bool = True,
) -> redis.Redis:
    ident = identity or server.material.app
    return redis.Redis(
        host=server.host,
        port=server.port,
        username=username,
        password=password,
        ssl=True,
        ssl_ca_certs=str(server.material.ca_file),
        ssl_certfile=str(ident.cert_file) if with_cert else None,
        ssl_keyfile=str(ident.key_file) if with_cert else None,
        ssl_cert_reqs="required",
        socket_timeout=5,
        # No retries: a refusal must surface at once, not after redis-py's backoff.
        retry=Retry(NoBackoff(), 0),
        protocol=2,  # the stack's Redis has no HELLO (infra/redis_conf.py)
    )


def _tls_ping(server: TlsRedisServer, ctx: ssl.SSLContext) -> bytes:
    with (
        socket.create_connection((server.host, server.port), timeout=3) as raw,
        ctx.wrap_socket(raw, server_hostname=server.host) as tls,
    ):
        # TLS 1.3 reports a rejected client certificate on the first read, not the handshake.
        tls.sendall(b"PING\r\n")
        return tls.recv(64)


@pytest.fixture
def app_client(tls_redis: TlsRedisServer) -> redis.Redis:
    return _client(tls_redis, username=APP_USER, password=tls_redis.material.app_password)


def test_mtls_app_user__reads_and_writes_its_prefix(app_client: redis.Redis) -> None:
    assert app_client.set("cache:fixture", b"value", ex=30)
    assert app_client.get("cache:fixture") == b"value"


def test_plaintext_connection__gets_no_reply(tls_redis: TlsRedisServer) -> None:
    with socket.create_connection((tls_redis.host, tls_redis.port), timeout=3) as sock:
        sock.sendall(b"PING\r\n")
        try:
            reply = sock.recv(64)
        except (ConnectionResetError, TimeoutError):
            reply = b""
    assert b"PONG" not in reply, "the TLS port answered a plaintext PING"


def test_tls_without_client_certificate__is_refused(tls_redis: TlsRedisServer) -> None:
    client = _client(
        tls_redis, username=APP_USER, password=tls_redis.material.app_password, with_cert=False
    )
    with pytest.raises(RedisConnectionError):
        client.ping()


def test_client_certificate_from_another_ca__is_refused(
    tls_redis: TlsRedisServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    foreign = TlsMaterial.generate(tmp_path_factory.mktemp("foreign"))
    ctx = ssl.create_default_context(cafile=str(tls_redis.material.ca_file))
    ctx.load_cert_chain(str(foreign.app.cert_file), str(foreign.app.key_file))
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        _tls_ping(tls_redis, ctx)


def test_default_user__is_refused(tls_redis: TlsRedisServer) -> None:
    client = _client(tls_redis, username=None, password=None)
    with pytest.raises(AuthenticationError):
        client.get("cache:anything")
    default_with_password = _client(tls_redis, username="default", password="anything-at-all")
    with pytest.raises(AuthenticationError):
        default_with_password.ping()


def test_wrong_password__is_refused(tls_redis: TlsRedisServer) -> None:
    client = _client(tls_redis, username=APP_USER, password=generate_password(24))
    with pytest.raises(AuthenticationError):
        client.ping()


@pytest.mark.parametrize(
    "command",
    [("FLUSHALL",), ("CONFIG", "GET", "*"), ("KEYS", "*"), ("ACL", "LIST"), ("SHUTDOWN",)],
    ids=["flushall", "config", "keys", "acl", "shutdown"],
)
def test_app_user__gets_noperm_on_dangerous_command(
    app_client: redis.Redis, command: tuple[str, ...]
) -> None:
    with pytest.raises(NoPermissionError):
        app_client.execute_command(  # type: ignore[no-untyped-call]
            *command
        )


def test_debug_command__is_disabled_server_wide(app_client: redis.Redis) -> None:
    # enable-debug-command no refuses DEBUG before the ACL is even consulted.
    with pytest.raises(ResponseError, match="DEBUG command not allowed"):
        app_client.execute_command(  # type: ignore[no-untyped-call]
            "DEBUG", "SLEEP", "0"
        )


def test_app_user__gets_noperm_outside_its_prefix(app_client: redis.Redis) -> None:
    with pytest.raises(NoPermissionError):
        app_client.set("other:key", b"x")


def test_healthcheck_user__may_only_ping(tls_redis: TlsRedisServer) -> None:
    client = _client(
        tls_redis,
        username=HEALTHCHECK_USER,
        password=tls_redis.material.healthcheck_password,
        identity=tls_redis.material.healthcheck,
    )
    assert client.ping() is True
    with pytest.raises(NoPermissionError):
        client.get("cache:fixture")


def test_tls_1_1__is_refused(tls_redis: TlsRedisServer) -> None:
    ctx = tls_redis.client_ssl_context()
    # Lower the client's own floor so a failure proves the *server* refused TLS 1.1.
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():  # the deprecation is the point of this probe
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    with (
        socket.create_connection((tls_redis.host, tls_redis.port), timeout=3) as raw,
        pytest.raises(ssl.SSLError),
    ):
        ctx.wrap_socket(raw, server_hostname=tls_redis.host)


def test_server_restart__keeps_port_and_persisted_data(tls_redis_factory) -> None:  # type: ignore[no-untyped-def]
    server: TlsRedisServer = tls_redis_factory()
    client = _client(server, username=APP_USER, password=server.material.app_password)
    client.set("cache:persisted", b"kept")
    client.close()
    server.stop()
    server.start()
    again = _client(server, username=APP_USER, password=server.material.app_password)
    assert again.get("cache:persisted") == b"kept"
    again.close()
