"""An exec whose output came back short is read again, not reported as a stack that cannot be
observed.

An exec's output came back empty now and then: the command ran and exited 0 (docker-py's
exec_run drops what reaches it with the engine's response headers, docker/docker-py#2042; the
probe now reads through infra/docker_exec.py, tests/unit/test_docker_exec.py). Found by the
randomized day-2 walk (tests/e2e/walk.py, seed 5204 on s52, 2026-12-03): `scripts/rotate.sh s52
data-key` had retired the old key and, reading Redis's files before its last up, failed with
`secure-redis-s52-redis: expected 3 files, read 0 ... then run the rotation again` (exit 1),
leaving `dataKeyKeepPrevious` at 0 in the state. Redis's three files are framed by NULs
(`files_command`), so a short read, whatever its cause, is known for what it is and read again.
So is the certificate Redis serves, read before an up that retires a CA (`Probe._served`): one
PEM block (`served_pem`); lost, it raised PkiError out of `served_issuer`, and that up ended at
exit 3, "an error the applier does not handle".
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from infra import docker_exec, pki
from infra.naming import ROLE_LABEL, STACK_LABEL
from infra.rotation_probe import Probe, ProbeError, issuer_serial, read_app_facts

pytestmark = pytest.mark.unit

PATHS = ("/etc/secure-redis/ca.crt", "/etc/secure-redis/server.crt", "/etc/secure-redis/users.acl")


IMAGE = "sha256:" + "a" * 64


class _Container:
    """A running container of the stack's app, running IMAGE, whose execs print `outputs` in
    turn (the last one again after them)."""

    status = "running"
    attrs = {  # noqa: RUF012 - read only
        "Config": {"Labels": {STACK_LABEL: "s1", ROLE_LABEL: "app"}},
        "Image": IMAGE,
        "Id": "c1",
    }

    def __init__(self, outputs: list[bytes]) -> None:
        self.outputs = outputs
        self.calls = 0

    def exec_run(self, _argv: list[str], demux: bool = False) -> tuple[int, bytes]:
        out = self.outputs[min(self.calls, len(self.outputs) - 1)]
        self.calls += 1
        return 0, out


@pytest.fixture(autouse=True)
def _exec_through_the_fake(monkeypatch: pytest.MonkeyPatch) -> None:
    """Probe._exec runs infra.docker_exec.exec_run(container, argv): here, the fake's own."""
    monkeypatch.setattr(
        docker_exec, "exec_run", lambda c, argv: docker_exec.ExecResult(*c.exec_run(argv))
    )


def _probe(container: _Container) -> Probe:
    probe = Probe.__new__(Probe)
    probe.stack = "s1"
    probe.app, probe.port = "secure-redis-s1-app", 6379
    probe.recorded = None
    probe.client = SimpleNamespace(containers=SimpleNamespace(get=lambda _name: container))
    return probe


@pytest.mark.parametrize("lost", [b"", b"ca\0serv"])
def test_an_exec_output_lost_once_is_read_again(lost: bytes) -> None:
    container = _Container([lost, b"ca\0server\0acl\0"])
    assert _probe(container)._files("secure-redis-s1-redis", PATHS) == ["ca", "server", "acl"]
    assert container.calls == 2


def test_an_output_lost_every_time_still_fails_with_the_count() -> None:
    container = _Container([b""])
    with pytest.raises(ProbeError, match="expected 3 files, read 0"):
        _probe(container)._files("secure-redis-s1-redis", PATHS)
    assert 2 <= container.calls <= 5, "bounded"


def test_the_apps_facts_lost_once_are_read_again() -> None:
    container = _Container([b"", b'{"served": "x"}'])
    probe = _probe(container)
    facts = probe._read(
        "secure-redis-s1-app", ["python3"], None, lambda p: read_app_facts("app", p)
    )
    assert facts == {"served": "x"}
    assert container.calls == 2


def _served() -> tuple[str, str]:
    """What SERVED_ONLY prints (a certificate and print's newline), and its CA's PEM."""
    ca = pki.create_ca("probe CA", validity_days=2)
    server = pki.issue_server_certificate(ca, "redis", dns_names=["redis"], validity_days=2)
    return server.cert_pem.decode() + "\n", ca.cert_pem.decode()


@pytest.mark.parametrize("cut", [0, 200], ids=["empty", "short"])
def test_the_served_certificate_lost_once_is_read_again(cut: int) -> None:
    printed, ca = _served()
    container = _Container([printed[:cut].encode(), printed.encode()])
    served = _probe(container)._served(IMAGE)
    assert container.calls == 2
    assert issuer_serial(served, ca) == f"{pki.load_certificate(ca.encode()).serial_number:X}"


def test_the_served_certificate_lost_every_time_fails_saying_so() -> None:
    container = _Container([b""])
    with pytest.raises(ProbeError, match="expected the certificate Redis serves, read nothing"):
        _probe(container)._served(IMAGE)
    assert 2 <= container.calls <= 5, "bounded"
