"""A real TLS-only redis-server for tests: generated PKI, the project's ACL and redis.conf.

Starts Debian's `redis-server` on a free loopback port with `port 0`, client certificates
required and `default` off, exactly as a stack configures it (infra/redis_conf.py and
infra/redis_acl.py). Everything lives in one temporary directory that `stop()` removes.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from infra import pki
from infra.redis_acl import (
    APP_USER,
    DEFAULT_KEY_PREFIX,
    HEALTHCHECK_USER,
    ROTATION_USER,
    password_hash,
    render_acl_file,
)
from infra.redis_conf import RedisTlsConf, render_redis_conf
from infra.secretgen import generate_data_key, generate_password

REDIS_SERVER = "redis-server"
OBSERVER = "observer"
_START_TIMEOUT_S = 10.0


def observer_acl(password: str) -> str:
    """The ACL line of a test-only `observer` (every command, every key) for `extra_acl`: what
    a test reads Redis's own view with (INFO, CLIENT LIST, ACL LOG). No stack's ACL has one."""
    return f"user {OBSERVER} on {password_hash(password)} ~* &* +@all\n"


class RedisServerError(RuntimeError):
    """The test server could not be started."""


@dataclass(frozen=True)
class ClientIdentity:
    """A client certificate and key on disk."""

    cert_file: Path
    key_file: Path


@dataclass(frozen=True)
class TlsMaterial:
    """Everything a client needs, written under `root` with the modes a deployment uses."""

    root: Path
    ca_file: Path
    server: ClientIdentity
    app: ClientIdentity
    healthcheck: ClientIdentity
    rotation: ClientIdentity
    """The data-key rotation pass's own identity (infra/components/rotation.py)."""
    app_password: str
    healthcheck_password: str
    rotation_password: str
    data_key: str
    ca: pki.CertifiedKey

    @classmethod
    def generate(cls, root: Path, *, hostnames: tuple[str, ...] = ("localhost",)) -> TlsMaterial:
        ca = pki.create_ca("secure-redis test CA", validity_days=2)
        server = pki.issue_server_certificate(
            ca, "redis", dns_names=hostnames, ip_addresses=("127.0.0.1",), validity_days=2
        )
        app = pki.issue_client_certificate(ca, APP_USER, validity_days=2)
        health = pki.issue_client_certificate(ca, HEALTHCHECK_USER, validity_days=2)
        rotation = pki.issue_client_certificate(ca, ROTATION_USER, validity_days=2)
        root.mkdir(parents=True, exist_ok=True)
        ca_file = _write(root / "ca.crt", ca.cert_pem, 0o444)
        return cls(
            root=root,
            ca_file=ca_file,
            server=_write_pair(root, "server", server),
            app=_write_pair(root, "app", app),
            healthcheck=_write_pair(root, "healthcheck", health),
            rotation=_write_pair(root, "rotation", rotation),
            app_password=generate_password(32),
            healthcheck_password=generate_password(32),
            rotation_password=generate_password(32),
            data_key=generate_data_key(),
            ca=ca,
        )


class TlsRedisServer:
    """One redis-server process; `stop()`/`start()` keep its port, data and material."""

    def __init__(
        self,
        *,
        tls_protocols: tuple[str, ...] = ("TLSv1.2", "TLSv1.3"),
        maxmemory_mb: int = 64,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        extra_acl: str = "",
    ) -> None:
        """`extra_acl`: ACL lines appended for a test's own purposes (e.g. an observer that
        reads server statistics); a deployed stack's ACL has only what render_acl_file makes."""
        if shutil.which(REDIS_SERVER) is None:
            raise RedisServerError(
                "redis-server not found; run scripts/bootstrap.sh (installs Debian's redis-server)"
            )
        self.workdir = Path(tempfile.mkdtemp(prefix="secure-redis-test-"))
        self.material = TlsMaterial.generate(self.workdir / "tls")
        self.key_prefix = key_prefix
        self.host = "127.0.0.1"
        self.port = free_port()
        self.data_dir = self.workdir / "data"
        self.data_dir.mkdir(mode=0o700)
        acl_file = _write(
            self.workdir / "users.acl",
            render_acl_file(
                app_password=self.material.app_password,
                healthcheck_password=self.material.healthcheck_password,
                key_prefix=key_prefix,
                rotation_password=self.material.rotation_password,
            ).encode()
            + extra_acl.encode(),
            0o600,
        )
        self.conf = RedisTlsConf(
            tls_port=self.port,
            cert_file=str(self.material.server.cert_file),
            key_file=str(self.material.server.key_file),
            ca_cert_file=str(self.material.ca_file),
            acl_file=str(acl_file),
            data_dir=str(self.data_dir),
            maxmemory_mb=maxmemory_mb,
            tls_protocols=tls_protocols,
            bind="127.0.0.1",
        )
        self.conf_file = _write(
            self.workdir / "redis.conf", render_redis_conf(self.conf).encode(), 0o600
        )
        self.log_file = self.workdir / "redis.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"rediss://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        """The running server's process id (scripts/bench.py pins it to a CPU)."""
        if self._process is None:
            raise RedisServerError("redis-server is not running: start() it first")
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        if self.running:
            return
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                [REDIS_SERVER, str(self.conf_file)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )
        self._wait_until_listening()

    def stop(self) -> None:
        """Graceful shutdown (SIGTERM): AOF is flushed, as on `docker stop`."""
        self._terminate(kill=False)

    def kill(self) -> None:
        """Abrupt death (SIGKILL), as when a container is killed mid-workload."""
        self._terminate(kill=True)

    def close(self) -> None:
        """Stop the server and remove every file it used."""
        self._terminate(kill=True)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def app_redis(self, **options: Any) -> redis.Redis:
        """redis-py as the app's ACL user over verified mutual TLS; `options` add to or
        override these (a timeout, a retry policy)."""
        settings: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "username": APP_USER,
            "password": self.material.app_password,
            "ssl": True,
            "ssl_ca_certs": str(self.material.ca_file),
            "ssl_certfile": str(self.material.app.cert_file),
            "ssl_keyfile": str(self.material.app.key_file),
            "ssl_cert_reqs": "required",
            "socket_timeout": 10,
            # RESP2 with AUTH, as the stack's clients: its Redis has no HELLO (redis_conf.py).
            "protocol": 2,
        }
        return redis.Redis(**{**settings, **options})

    def client_ssl_context(self, identity: ClientIdentity | None = None) -> ssl.SSLContext:
        """A verifying client context, optionally presenting `identity` (default: the app)."""
        ctx = ssl.create_default_context(cafile=str(self.material.ca_file))
        ident = identity or self.material.app
        ctx.load_cert_chain(str(ident.cert_file), str(ident.key_file))
        return ctx

    def _terminate(self, *, kill: bool) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        if kill:
            process.kill()
        else:
            process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RedisServerError(
                    f"redis-server exited with {self._process.returncode}; log:\n{self._log_tail()}"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), timeout=0.2),
            ):
                return
            time.sleep(0.02)
        self._terminate(kill=True)
        raise RedisServerError(
            f"redis-server did not listen on {self.port}; log:\n{self._log_tail()}"
        )

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return "(no log)"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _write(path: Path, data: bytes, mode: int) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


def _write_pair(root: Path, name: str, pair: pki.CertifiedKey) -> ClientIdentity:
    return ClientIdentity(
        cert_file=_write(root / f"{name}.crt", pair.cert_pem, 0o444),
        key_file=_write(root / f"{name}.key", pair.key_pem, 0o400),
    )
