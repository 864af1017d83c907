"""A real TLS redis-server fed the way a stack feeds it during rotation.

The server's TLS files and ACL file live in a directory written by the material initialiser's
own script (infra/components/material.py: `..<revision>` directories behind a `..data`
symlink), and it is told to reload them by the reload job's own script and commands
(infra/components/reload.py) under the reload ACL identity (infra/redis_acl.py). Nothing here
re-implements the stack's logic; it only runs it against a local process.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography import x509

from infra import pki
from infra.components.material import INIT_SCRIPT
from infra.components.reload import reload_script
from infra.redis_acl import APP_USER, HEALTHCHECK_USER, RELOAD_USER, render_acl_file_from_hashes
from infra.redis_acl import password_hash as acl_hash
from infra.redis_conf import render_redis_conf
from infra.secretgen import generate_password
from tests.support.tls_redis import TlsRedisServer

HOST_NAME = "localhost"
DAYS = 2


@dataclasses.dataclass
class Identity:
    cert: pki.CertifiedKey
    name: str


class RotatingRedis:
    """`deliver()` rewrites the material volume, `reload()` runs the reload job's script."""

    def __init__(self) -> None:
        self.server = TlsRedisServer()
        self.volume = self.server.workdir / "volume"
        self.volume.mkdir(mode=0o700)
        self._revision = 0
        self.ca = pki.create_ca("secure-redis test CA", validity_days=DAYS)
        self.trusted: list[pki.CertifiedKey] = [self.ca]
        self.passwords = {
            user: [generate_password(32)] for user in (APP_USER, HEALTHCHECK_USER, RELOAD_USER)
        }
        # The reload identity's second try (infra/components/reload.py), "" when none.
        self.retired_reload_password = ""
        # Its certificate's second try: the one the last CA promote replaced, None when none.
        self.previous_reload_cert: pki.CertifiedKey | None = None
        self.server_cert = self.issue_server(self.ca)
        self.reload_cert = pki.issue_client_certificate(self.ca, RELOAD_USER, validity_days=DAYS)
        self.deliver()
        conf = dataclasses.replace(
            self.server.conf,
            cert_file=str(self.volume / "server.crt"),
            key_file=str(self.volume / "server.key"),
            ca_cert_file=str(self.volume / "ca.crt"),
            acl_file=str(self.volume / "users.acl"),
        )
        self.server.conf = conf
        self.server.conf_file.write_text(render_redis_conf(conf))

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> None:
        self.server.start()

    def close(self) -> None:
        self.server.close()

    @staticmethod
    def issue_server(ca: pki.CertifiedKey) -> pki.CertifiedKey:
        return pki.issue_server_certificate(
            ca, "redis", dns_names=[HOST_NAME], ip_addresses=["127.0.0.1"], validity_days=DAYS
        )

    def acl_text(self) -> str:
        hashes = {user: [acl_hash(p) for p in pws] for user, pws in self.passwords.items()}
        return render_acl_file_from_hashes(
            app_password_hash=hashes[APP_USER],
            healthcheck_password_hash=hashes[HEALTHCHECK_USER],
            reload_password_hash=hashes[RELOAD_USER],
        )

    def deliver(self) -> None:
        """Write the current material through the initialiser's script (one atomic switch)."""
        self._revision += 1
        previous = self.previous_reload_cert
        files = {
            "ca.crt": (pki.trust_bundle([c.cert_pem for c in self.trusted]), 0o444),
            "server.crt": (self.server_cert.cert_pem, 0o444),
            "server.key": (self.server_cert.key_pem, 0o400),
            "users.acl": (self.acl_text().encode(), 0o400),
            "reload.crt": (self.reload_cert.cert_pem, 0o444),
            "reload.key": (self.reload_cert.key_pem, 0o400),
            # The reload job authenticates with the password valid before and after the load.
            "reload.password": (self.passwords[RELOAD_USER][-1].encode(), 0o400),
            "reload.retired-password": (self.retired_reload_password.encode(), 0o400),
            "reload.previous.crt": (previous.cert_pem if previous else b"", 0o444),
            "reload.previous.key": (previous.key_pem if previous else b"", 0o400),
        }
        run_initialiser(self.volume, files, f"r{self._revision}")

    def reload(self, *command: str) -> subprocess.CompletedProcess[str]:
        """Run the reload job's script with `command` (e.g. tls_reload_command(...))."""
        script = reload_script(str(self.volume), HOST_NAME, self.port)
        return subprocess.run(
            ["sh", "-euc", script, "redis-reload", *command],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def client_context(
        self, identity: pki.CertifiedKey, trusted: Sequence[pki.CertifiedKey] | None = None
    ) -> ssl.SSLContext:
        """A verifying client context presenting `identity`, trusting `trusted` (default: the
        current bundle)."""
        tmp = Path(tempfile.mkdtemp(dir=self.server.workdir))
        bundle = pki.trust_bundle([c.cert_pem for c in (trusted or self.trusted)])
        (tmp / "ca.crt").write_bytes(bundle)
        (tmp / "c.crt").write_bytes(identity.cert_pem)
        (tmp / "c.key").write_bytes(identity.key_pem)
        ctx = ssl.create_default_context(cafile=str(tmp / "ca.crt"))
        ctx.load_cert_chain(str(tmp / "c.crt"), str(tmp / "c.key"))
        shutil.rmtree(tmp)
        return ctx

    def served_serial(self, ctx: ssl.SSLContext) -> int:
        """The serial of the certificate a new TLS connection is served (after a round trip,
        so a refused client certificate surfaces here too)."""
        with (
            socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname=HOST_NAME) as tls,
        ):
            tls.sendall(b"PING\r\n")
            reply = tls.recv(64)
            if not reply:
                raise ConnectionResetError("the server closed the connection")
            der = tls.getpeercert(binary_form=True)
            assert der is not None
            return x509.load_der_x509_certificate(der).serial_number


def serial(cert: pki.CertifiedKey) -> int:
    return cert.certificate.serial_number


def run_initialiser(volume: Path, files: Mapping[str, tuple[bytes, int]], revision: str) -> None:
    """Stage `files` (content, mode) and run the initialiser's script on `volume`."""
    staging = Path(tempfile.mkdtemp(prefix="secure-redis-staging-"))
    try:
        for name, (content, mode) in files.items():
            path = staging / name
            path.write_bytes(content)
            path.chmod(mode)
        subprocess.run(
            ["sh", "-euc", INIT_SCRIPT, "material-init", str(staging), str(volume), revision],
            check=True,
            capture_output=True,
            timeout=30,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)


__all__ = ["HOST_NAME", "RotatingRedis", "run_initialiser", "serial"]
