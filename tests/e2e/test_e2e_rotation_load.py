"""Rotation under live load: `scripts/rotate.sh` while traffic runs through the app's HTTP API
and through the `secure_cache` library in a process started before the rotation.

Every write is checked against what was acknowledged: 0 failed requests, 0 wrong values, 0 lost
acknowledged writes, and Redis and the app are never restarted (rotate.sh fails if they are);
HTTP requests were answered inside every rotation's window, so the counts are of traffic that
ran through it.
The figures (requests, failures, p50/p99 latency during vs. outside the rotation) are printed
as one JSON line per run, a benchmark, not a timed assertion.

- `test_rotation_under_load__certs_short`: the short bounded version in the default e2e run
  (one certificate renewal, a few seconds of traffic on each side of it). Its traffic is paced
  (PACED_PAUSE_S between one client's calls): a request still starts every few milliseconds
  all through the rotation, but unpaced clients (about 200 HTTP requests and 3,900 library
  operations a second) kept both cores busy and tripled the rotation's time on the 2-core CI
  machine, for no more evidence.
- `test_rotation_under_load__everything` (`-m rotation_load`, opt-in): every rotation in turn
  under at least two minutes of traffic (SECURE_REDIS_ROTATION_LOAD_S, default 120 s); the
  figures also go to $SECURE_REDIS_ROTATION_REPORT when set. The HTTP workers switch to the
  new API token between `api-token` and `api-token-retire`, as an operator's clients do.

Both need the incremental local applier (infra/applier/state.py): with an applier that
recreates the stack on every `up` there is nothing in place to measure, so they skip.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pytest

from infra.settings import REPO_ROOT
from tests.e2e import appclient
from tests.e2e.commands import rotated
from tests.e2e.interrupted import data_key_stopped_after_first_up
from tests.e2e.stacks import Stack

pytestmark = [
    pytest.mark.security("operations"),
    pytest.mark.fault,
    pytest.mark.usefixtures("stack_files_restored"),
]

LOAD_ENV: Final = "SECURE_REDIS_ROTATION_LOAD_S"
HTTP_WORKERS: Final = 4
# The pause of a paced client between one write-and-read and the next (the short test).
PACED_PAUSE_S: Final = 0.05
# Each writer overwrites a bounded set of keys, and "lost" means the last acknowledged value is
# gone. The working set (a few MB) stays far below maxmemory however long the run: a store that
# keeps growing ends in allkeys-lru eviction, which a cache is allowed to do and which is not
# what this test measures.
HTTP_KEYS_PER_WORKER: Final = 1000
LIBRARY_KEYS: Final = 5000
# The library client, run inside the app container with the app's own environment and files:
# set and get in a loop until the deadline (argv[1]: seconds to pause between two rounds);
# every acknowledged write is read back at the end.
LIBRARY_LOOP: Final = """
import json, os, sys, threading, time
KEYS = __KEYS__
PAUSE = float(sys.argv[1])
from secure_cache import SecureCache
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
cache = SecureCache.from_env()
acked, failures, wrong, n = {}, 0, 0, 0
while not stop.is_set():
    key, value = f"lib-{os.getpid()}-{n % KEYS}", os.urandom(16).hex().encode()
    n += 1
    try:
        cache.set(key, value)
        acked[key] = value
        if cache.get(key) != value:
            wrong += 1
    except Exception:
        acked.pop(key, None)  # what it holds now is unknown; counted as a failure
        failures += 1
    if PAUSE:
        stop.wait(PAUSE)
lost = sum(1 for k, v in acked.items() if cache.get(k) != v)
print(json.dumps({"requests": 2 * n, "failures": failures, "wrong": wrong, "lost": lost,
                  "backend": cache.backend, "fallbacks": cache.events.count("fallbacks")}))
""".replace("__KEYS__", str(LIBRARY_KEYS))


def _incremental_applier() -> bool:
    return (REPO_ROOT / "infra" / "applier" / "state.py").is_file()


@dataclass
class HttpLoad:
    base: str
    token: str
    """The stack's API token (the HTTP API authenticates every request, tests/e2e/appclient.py)."""
    stop: threading.Event = field(default_factory=threading.Event)
    acked: dict[str, bytes] = field(default_factory=dict)
    failed_at: list[float] = field(default_factory=list)  # start of each failed request
    wrong_at: list[float] = field(default_factory=list)  # start of each read of a wrong value
    requests: int = 0
    samples: list[tuple[float, float]] = field(default_factory=list)  # (start, seconds)
    pause_s: float = 0.0
    """Between one write-and-read and the next of a worker (0: unpaced)."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _call(self, method: str, key: str, body: bytes | None = None) -> bytes | None:
        req = urllib.request.Request(
            f"{self.base}/cache/{key}",
            data=body,
            method=method,
            headers={"Authorization": f"Bearer {self.token}"},
        )
        start = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                data: bytes = resp.read()
        except (urllib.error.URLError, OSError):
            with self._lock:
                self.failed_at.append(start)
                self.requests += 1
            return None
        with self._lock:
            self.requests += 1
            self.samples.append((start, time.monotonic() - start))
        return data

    def worker(self, n: int) -> None:
        rng = random.Random(n)
        i = 0
        mine: list[str] = []  # this worker's acknowledged keys: no other worker writes them
        while not self.stop.is_set():
            key, value = f"load-{n}-{i % HTTP_KEYS_PER_WORKER}", uuid.uuid4().hex.encode()
            i += 1
            stored = self._call("PUT", key, value) is not None
            with self._lock:
                if stored:
                    if key not in self.acked:
                        mine.append(key)
                    self.acked[key] = value
                elif key in self.acked:  # unknown now; the failure is counted
                    del self.acked[key]
                    mine.remove(key)
                known = rng.choice(mine) if mine else None
                expected = self.acked.get(known) if known else None
            started = time.monotonic()
            if known and (got := self._call("GET", known)) is not None and got != expected:
                with self._lock:
                    self.wrong_at.append(started)
            if self.pause_s:
                self.stop.wait(self.pause_s)

    def lost(self) -> int:
        return sum(1 for k, v in self.acked.items() if self._call("GET", k) != v)


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if len(values) < 2:
        return {"p50_ms": None, "p99_ms": None}
    q = statistics.quantiles(values, n=100)
    return {"p50_ms": round(q[49] * 1000, 2), "p99_ms": round(q[98] * 1000, 2)}


def _run_under_load(
    stack: Stack, kinds: list[str], quiet_s: float, min_total_s: float = 0.0, pause_s: float = 0.0
) -> dict[str, Any]:
    # Read now, not from the session's cache: an earlier test may have rotated the token.
    load = HttpLoad(stack.app_url, appclient.api_token(stack, refresh=True), pause_s=pause_s)
    # The client falls back to memory instead of failing a call: a clean count proves nothing
    # unless no fallback happened, so every read and the final "lost" check came from Redis.
    fallbacks_before = appclient.status(stack)["counters"]["fallbacks"]
    # Started before the rotation and kept running through it; stops at a newline on stdin.
    library = subprocess.Popen(
        ["docker", "exec", "-i", stack.app, "python3", "-c", LIBRARY_LOOP, str(pause_s)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    began = time.monotonic()
    threads = [threading.Thread(target=load.worker, args=(n,)) for n in range(HTTP_WORKERS)]
    windows: list[tuple[float, float]] = []
    try:
        for thread in threads:
            thread.start()
        time.sleep(quiet_s)
        for kind in kinds:
            start = time.monotonic()
            rotated(stack, kind)
            windows.append((start, time.monotonic()))
            if kind == "api-token":
                # The clients switch to the new token while the old one is still accepted.
                load.token = appclient.api_token(stack, refresh=True)
        time.sleep(max(quiet_s, began + min_total_s - time.monotonic()))
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(timeout=30)
    out, _err = library.communicate("stop\n", timeout=300)
    app_status = appclient.status(stack)
    lib = json.loads(out.strip().splitlines()[-1])
    seconds = time.monotonic() - began
    during = [d for s, d in load.samples if any(a <= s <= b for a, b in windows)]
    outside = [d for s, d in load.samples if not any(a <= s <= b for a, b in windows)]
    return {
        "benchmark": "rotation_under_load",
        "stack": stack.name,
        "rotations": kinds,
        "paced_pause_s": pause_s,
        "seconds": round(seconds, 1),
        "http": {
            "requests": load.requests,
            "per_second": round(load.requests / seconds),
            "failures": len(load.failed_at),
            "wrong": len(load.wrong_at),
            "lost": load.lost(),
            "backend": app_status["backend"],
            "fallbacks": app_status["counters"]["fallbacks"] - fallbacks_before,
            "during": {"requests": len(during), **_percentiles(during)},
            "outside": {"requests": len(outside), **_percentiles(outside)},
        },
        "library": {**lib, "per_second": round(lib["requests"] / seconds)},
        # Each rotation's own window: HTTP requests started in it, their latency, failures.
        "steps": [_step(kind, window, load) for kind, window in zip(kinds, windows, strict=True)],
        "rotation_seconds": [round(b - a, 1) for a, b in windows],
    }


def _step(kind: str, window: tuple[float, float], load: HttpLoad) -> dict[str, Any]:
    a, b = window
    latencies = [d for s, d in load.samples if a <= s <= b]
    return {
        "rotation": kind,
        "seconds": round(b - a, 1),
        "requests": len(latencies),
        **_percentiles(latencies),
        "failures": sum(1 for t in load.failed_at if a <= t <= b),
        "wrong": sum(1 for t in load.wrong_at if a <= t <= b),
    }


def _assert_clean(figures: dict[str, Any]) -> None:
    print(json.dumps(figures))
    for side in ("http", "library"):
        got = {k: figures[side][k] for k in ("failures", "wrong", "lost", "fallbacks", "backend")}
        clean = {"failures": 0, "wrong": 0, "lost": 0, "fallbacks": 0, "backend": "redis"}
        assert got == clean, f"{side}: {got}"
    # Clean counts prove nothing of a rotation no request ran through (workers that died or
    # hung, a pause longer than the rotation): every rotation had HTTP requests started and
    # answered inside its window, and the library client made requests.
    for step in figures["steps"]:
        assert step["requests"] > 0, f"no HTTP request was answered during {step['rotation']}"
    assert figures["library"]["requests"] > 0, "the library client made no request"


@pytest.fixture
def incremental() -> None:
    if not _incremental_applier():
        pytest.skip("needs the incremental local applier (infra/applier/state.py)")


# On every stack: what is renewed and served under load depends on the stack's settings (the
# leaves' key algorithm and validity, TLS 1.3 only in production, the CPU and memory limits of
# Redis and the app that carry the load); production's 0.5-CPU Redis settles the slowest.
@pytest.mark.usefixtures("incremental")
def test_rotation_under_load__certs_short(stack: Stack) -> None:
    _assert_clean(_run_under_load(stack, ["certs"], quiet_s=3.0, pause_s=PACED_PAUSE_S))


@pytest.mark.rotation_load
@pytest.mark.usefixtures("incremental")
def test_rotation_under_load__everything(stack: Stack) -> None:
    total = float(os.environ.get(LOAD_ENV, "120"))
    kinds = ["certs", "passwords", "ca", "data-key", "api-token", "api-token-retire"]
    figures = _run_under_load(stack, kinds, quiet_s=10.0, min_total_s=total)
    if report := os.environ.get("SECURE_REDIS_ROTATION_REPORT"):
        Path(report).write_text(json.dumps(figures))
    _assert_clean(figures)


# Opt-in with the load test (about a minute): an operator's Ctrl-C, a CI timeout or a dropped
# session can stop rotate.sh between its steps.
@pytest.mark.rotation_load
@pytest.mark.one_stack("rotate.sh's resume decision reads the running app's data keys only")
@pytest.mark.usefixtures("incremental")
def test_rotate_data_key__stopped_after_its_first_up_then_run_again_loses_no_entry(
    stack: Stack,
) -> None:
    """Stopped after the new key's `up`, before the rotation pass: run again, rotate.sh
    finishes that rotation. Started anew, it made a second key and retired the one the
    entries were still sealed with (on a deployed stack 400 of 400 entries were lost)."""
    values = {f"resume-{uuid.uuid4().hex[:8]}-{i}": uuid.uuid4().hex.encode() for i in range(50)}
    for key, value in values.items():
        assert appclient.put(stack, key, value) in (200, 201, 204)
    data_key_stopped_after_first_up(stack)
    again = rotated(stack, "data-key")
    read_back = {key: appclient.get(stack, key) for key in values}
    assert sum(1 for key in values if read_back[key] != values[key]) == 0, "entries lost"
    assert "a data-key rotation was left unfinished" in again
    assert appclient.status(stack)["encryption"]["previous_key_ids"] == []
