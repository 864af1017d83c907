"""scripts/bench.py puts its TLS server on the CPUs its placement plan gives the servers
(scripts/cpu_placement.py; docs/benchmark.md, "Where the process runs")."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scripts import bench


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to tell them apart")
def test_bench_tls_server__runs_on_the_servers_cpus_with_all_its_threads() -> None:
    """The server the client columns talk to is on the plan's server CPUs once it answers,
    its background threads (started before it answers) included."""
    servers = frozenset({max(os.sched_getaffinity(0))})
    with bench.tls_server(servers) as server:
        tasks = [int(t.name) for t in Path(f"/proc/{server.pid}/task").iterdir()]
        assert len(tasks) > 1  # redis-server's bio threads
        assert {tid: os.sched_getaffinity(tid) for tid in tasks} == dict.fromkeys(tasks, servers)
