"""An exec's output that reaches the client with the `101 UPGRADED` headers is read, not lost
(infra/docker_exec.py).

Found as `MalformedFraming` from tests/e2e/test_e2e_applier_incremental.py (the scratch stack's
`app.crt` read back empty, exit 0, at a load average of 17; it passed alone), and as the
rotation probe's "expected 3 files, read 0" (tests/unit/test_rotation_probe_lost_output.py).
On the real engine, `cat` of a 1200-byte file in a container, 200 times by a reader at nice 19
beside two busy loops at nice 10 (2 cores), came back empty 21 times through docker-py's
`exec_run`. The fake engine (tests/support/fake_docker_engine.py) writes the headers and the
output in one write, which is what such a reader finds in its socket: every time, not by chance.
"""

from __future__ import annotations

import re

import docker
import pytest
from docker.errors import APIError

from infra import docker_exec
from infra.rotation_probe import Probe
from infra.settings import REPO_ROOT
from tests.support.fake_docker_engine import API, fake_engine, frames

pytestmark = pytest.mark.unit

PEM = b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n"


def _container(url: str) -> docker.models.containers.Container:
    return docker.DockerClient(base_url=url, version=API).containers.get("fake")


def test_docker_py_exec_run_loses_output_that_came_with_the_headers() -> None:
    """Why infra/docker_exec.py exists. Should a docker-py release read what its HTTP reader
    buffered (this fails then), docker_exec.exec_run can give way to Container.exec_run."""
    with fake_engine(frames((1, PEM))) as engine:
        result = _container(engine.url).exec_run(["cat", "/etc/secure-cache/app.crt"])
    assert (result.exit_code, result.output) == (0, b"")


@pytest.mark.parametrize(
    "written",
    [
        pytest.param([(1, PEM)], id="one-frame"),
        pytest.param([(1, b"out "), (2, b"err "), (1, b"out again")], id="stdout-and-stderr"),
        # Longer than http.client's 8 KiB buffer: part comes from the buffer, the rest from
        # the socket after it.
        pytest.param([(1, bytes(range(256)) * 80), (1, b"tail")], id="past-the-buffer"),
        pytest.param([], id="no-output"),
    ],
)
def test_every_byte_written_is_read(written: list[tuple[int, bytes]]) -> None:
    with fake_engine(frames(*written), exit_code=0) as engine:
        result = docker_exec.exec_run(_container(engine.url), ["cat", "f"])
    assert result == (0, b"".join(data for _stream, data in written))
    assert engine.starts == 1


def test_the_exit_code_is_the_commands() -> None:
    with fake_engine(frames((2, b"cat: f: No such file or directory\n")), exit_code=1) as engine:
        result = docker_exec.exec_run(_container(engine.url), ["cat", "f"])
    assert result == (1, b"cat: f: No such file or directory\n")


def test_the_exit_code_is_waited_for_when_the_stream_ends_before_the_exit_is_recorded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The engine ends an exec's stream when the output's pipe closes and records the exit
    code when the exit event reaches it, later (moby's ProcessEvent): an inspect in between
    says Running, ExitCode null. The exit code returned was None, which Probe._exec took for
    a failed command ("exited None") and did not read again."""
    monkeypatch.setattr(docker_exec, "_INSPECT_PAUSE_S", 0.0)
    with fake_engine(frames((1, PEM)), exit_code=0, running_inspects=2) as engine:
        result = docker_exec.exec_run(_container(engine.url), ["cat", "f"])
    assert result == (0, PEM)
    assert sum(r.endswith("/json") and "/exec/" in r for r in engine.requests) == 3


def test_an_exit_code_never_recorded_is_none_after_a_bounded_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(docker_exec, "_INSPECT_PAUSE_S", 0.0)
    with fake_engine(frames((1, PEM)), running_inspects=10**6) as engine:
        result = docker_exec.exec_run(_container(engine.url), ["cat", "f"])
    assert result == (None, PEM)
    assert sum("/exec/" in r and r.endswith("/json") for r in engine.requests) == (
        docker_exec._INSPECT_TRIES
    )


def test_an_engine_refusal_is_dockers_api_error() -> None:
    with fake_engine(b"", start_status=409) as engine, pytest.raises(APIError) as raised:
        docker_exec.exec_run(_container(engine.url), ["cat", "f"])
    assert raised.value.status_code == 409
    assert "container is not running" in str(raised.value)


def test_a_stream_cut_short_returns_what_was_read() -> None:
    class Reader:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def read(self, size: int = -1, /) -> bytes:
            # A reader that returns less than asked for, as a raw socket may.
            chunk, self.data = self.data[: min(size, 3)], self.data[min(size, 3) :]
            return chunk

    whole = frames((1, b"first"), (1, b"second"))
    assert docker_exec.read_frames(Reader(whole)) == b"firstsecond"
    assert docker_exec.read_frames(Reader(whole[:-2])) == b"firstseco"
    assert docker_exec.read_frames(Reader(whole[:3])) == b""


def test_the_rotation_probe_reads_redis_files_on_the_first_exec() -> None:
    """scripts/rotate.sh's look at Redis's files: before, each of its three tries lost the
    output the same way, and the look failed with "expected 3 files, read 0"."""
    with fake_engine(frames((1, b"ca\0server\0acl\0"))) as engine:
        probe = Probe.__new__(Probe)
        probe.stack = "s1"
        probe.client = docker.DockerClient(base_url=engine.url, version=API)
        paths = ["/etc/secure-redis/ca.crt", "/etc/secure-redis/server.crt", "/x/users.acl"]
        assert probe._files("secure-redis-s1-redis", paths) == ["ca", "server", "acl"]
    assert engine.starts == 1


# Where a docker-py Container's own exec_run could be called on a real engine.
_READERS = (
    "infra",
    "app",
    "scripts",
    "policies",
    "tests/e2e",
    "tests/integration",
    "tests/support",
)


def test_nothing_reads_an_exec_through_docker_pys_exec_run() -> None:
    """What the project and its e2e tests read of a container goes through docker_exec, as the
    rotation probe's does: a test that read differently would flake where a user does not."""
    pattern = re.compile(r"\.exec_run\(")
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{number}"
        for top in _READERS
        for path in sorted((REPO_ROOT / top).rglob("*.py"))
        if path != REPO_ROOT / "infra" / "docker_exec.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []
