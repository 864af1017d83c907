"""scripts/bench.sh stopped by a signal other than Ctrl-C (kill, timeout, a closed terminal)
leaves nothing behind: its two redis-servers stop and their directories, which hold the TLS
server's certificates and private keys, are removed."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
READY = "bench: servers ready"


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _is_redis_server(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"redis-server")
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_bench_stopped_by_signal__its_servers_and_their_directories_are_gone(
    signum: signal.Signals,
) -> None:
    bench = subprocess.Popen(  # fixed argv
        [
            str(ROOT / "scripts" / "bench.sh"),
            "--only",
            "sizes",
            "--rounds",
            "5",
            "--placement",
            "free",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    servers: list[int] = []
    try:
        assert bench.stderr is not None
        for line in bench.stderr:
            if line.startswith(READY):
                break
        else:
            pytest.fail(f"bench.sh exited ({bench.wait()}) before its servers were ready")
        servers[:] = [pid for pid in _children(bench.pid) if _is_redis_server(pid)]
        assert len(servers) == 2, "the bench starts a plaintext and a TLS redis-server"
        directories = [Path(os.readlink(f"/proc/{pid}/cwd")) for pid in servers]
        assert all(d.is_dir() for d in directories)

        bench.send_signal(signum)
        assert bench.wait(timeout=60) == 128 + signum
        # The servers were the bench's children: stopped, they are gone (reaped by it).
        deadline = time.monotonic() + 10
        while any(_is_redis_server(pid) for pid in servers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in servers if _is_redis_server(pid)]
        assert not [d for d in directories if d.exists()]
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
        for pid in servers:  # what a failed run left behind
            if _is_redis_server(pid):
                os.kill(pid, signal.SIGKILL)
