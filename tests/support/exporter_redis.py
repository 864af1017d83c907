"""A TLS-only redis-server that also holds the Redis exporter's ACL user, for the tests of
app/secure_cache/redis_exporter.py and of the alert rules with a real Prometheus.

The exporter's user gets exactly `EXPORTER_COMMANDS` (that module's single source) and a
client certificate of its own, issued by the server's test CA.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from infra import pki
from infra.redis_acl import password_hash
from secure_cache.redis_exporter import (
    EXPORTER_COMMANDS,
    EXPORTER_USER,
    ExporterSettings,
)
from tests.support.cache_env import raw_client
from tests.support.tls_redis import REDIS_SERVER, TlsRedisServer


class ExporterRedis:
    """A TLS redis-server whose ACL file also holds the exporter's user."""

    def __init__(self, tmp: Path, tls_protocols: tuple[str, ...] = ("TLSv1.2", "TLSv1.3")) -> None:
        self.server = TlsRedisServer(tls_protocols=tls_protocols)
        self.password = secrets.token_urlsafe(32)
        acl = self.server.workdir / "users.acl"
        acl.write_text(
            acl.read_text() + f"user {EXPORTER_USER} on {password_hash(self.password)} "
            f"resetkeys resetchannels {EXPORTER_COMMANDS}\n"
        )
        identity = pki.issue_client_certificate(
            self.server.material.ca, EXPORTER_USER, validity_days=1
        )
        self.cert_file = tmp / "exporter.crt"
        self.cert_file.write_bytes(identity.cert_pem)
        self.key_file = tmp / "exporter.key"
        self.key_file.write_bytes(identity.key_pem)
        self.key_file.chmod(0o400)

    def settings(self, **overrides: str) -> ExporterSettings:
        env = {
            "REDIS_URL": self.server.url,
            "REDIS_USERNAME": EXPORTER_USER,
            "REDIS_PASSWORD": self.password,
            "REDIS_TLS_CA_CERT": str(self.server.material.ca_file),
            "REDIS_TLS_CERT_FILE": str(self.cert_file),
            "REDIS_TLS_KEY_FILE": str(self.key_file),
            "ENVIRONMENT": "development",
            **overrides,
        }
        return ExporterSettings.from_env(env)

    def wrong_password(self) -> None:
        """One AUTH with the app's name and a wrong password, as an intruder would try."""
        intruder = raw_client(self.server)
        # checkov:skip=CKV_SECRET_6: a wrong password the server must refuse
        intruder.connection_pool.connection_kwargs["password"] = "not-the-password"
        try:
            with pytest.raises(redis.AuthenticationError):
                intruder.ping()
        finally:
            intruder.close()

    def denied_key(self) -> None:
        """One NOPERM: the app's identity reads a key outside its prefix."""
        app = raw_client(self.server)
        try:
            with pytest.raises(redis.exceptions.NoPermissionError):
                app.get("outside-the-app-prefix")
        finally:
            app.close()


@contextmanager
def running_exporter_redis(tmp: Path) -> Iterator[ExporterRedis]:
    if shutil.which(REDIS_SERVER) is None:
        pytest.skip("redis-server is not installed; run scripts/bootstrap.sh as root")
    setup = ExporterRedis(tmp)
    try:
        setup.server.start()
        yield setup
    finally:
        setup.server.close()
