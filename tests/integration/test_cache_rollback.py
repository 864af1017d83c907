"""This code as the older one after a rollback, against a real TLS redis-server: entries a newer
secure-cache wrote (a version-3 envelope, tests/support/envelopes.py) are misses counted as
`newer_envelope`, and the rotation pass, as a stack runs it (its own ACL user and client),
leaves them byte for byte, reports them and, from the CLI, exits 7 (docs/day2.md, "Rolling back the
app"). Before 2026-12-03 the pass deleted them at exit 0: on s78, 1888 entries."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from secure_cache import SecureCache
from secure_cache.__main__ import main as cli_main
from secure_cache.core import BatchPlan, CacheCore
from secure_cache.crypto import VERSION, Keyring
from tests.support.cache_env import cache_environ, new_data_key, raw_client, rotation_environ
from tests.support.cache_shells import open_cache
from tests.support.envelopes import future_envelope
from tests.support.tls_redis import TlsRedisServer


def _keyring(server: TlsRedisServer, data_key: str) -> Keyring:
    return Keyring(base64.b64decode(data_key), prefix=server.key_prefix)


def _newer_entries(server: TlsRedisServer, tmp_path: Path) -> dict[bytes, bytes]:
    """Six entries of this version and three of a newer one, all under the fixture's key:
    what a rollback finds after the newer code wrote for a while. Returns the newer ones'
    stored names and envelopes."""
    with SecureCache.from_env(cache_environ(server, tmp_path / "now")) as now:
        now.set_many({f"rb:{i}": b"v%d" % i for i in range(6)}, ttl=3600)
    keyring = _keyring(server, server.material.data_key)
    newer = dict(future_envelope(keyring, b"rb:new%d" % i, b"newer %d" % i) for i in range(3))
    raw = server.app_redis()
    for name, envelope in newer.items():
        raw.set(name, envelope, ex=3600)
    return newer


def test_read__a_newer_entry_is_a_miss_counted_apart(
    shell: str, server: TlsRedisServer, tmp_path: Path
) -> None:
    _newer_entries(server, tmp_path)
    with open_cache(shell, cache_environ(server, tmp_path / "old")) as cache:
        assert cache.get("rb:new0") is None
        assert cache.get_many(["rb:new1", "rb:new2", "rb:1"]) == {"rb:1": b"v1"}
        assert cache.get("rb:0") == b"v0"
        counters = cache.status()["counters"]
    assert counters["newer_envelopes"] == 3
    assert counters["integrity_failures"] == 0


def test_rotation__leaves_newer_entries_untouched_and_reports_them(
    shell: str, server: TlsRedisServer, tmp_path: Path
) -> None:
    newer = _newer_entries(server, tmp_path)
    old_key, new_key = server.material.data_key, new_data_key()
    env = rotation_environ(server, tmp_path / "p", data_key=new_key, previous_keys=(old_key,))
    with open_cache(shell, env) as rotator:
        report = rotator.rotate(batch_size=4)
        again = rotator.rotate(batch_size=4)  # running it again moves nothing more
        assert rotator.events.count("newer_envelopes") == 6
        assert rotator.events.count("integrity_failures") == 0
    assert (report.migrated, report.discarded, report.left_newer) == (6, 0, 3)
    assert (report.remaining, report.complete) == (3, False)
    assert (again.migrated, again.left_newer, again.remaining, again.complete) == (0, 3, 3, False)
    raw, rotation = raw_client(server), raw_client(server, rotation=True)  # PTTL: rotation's
    for name, envelope in newer.items():
        assert raw.get(name) == envelope  # byte for byte
        assert 0 < rotation.pttl(name) <= 3600_000  # and its TTL
    with open_cache(shell, cache_environ(server, tmp_path / "new", data_key=new_key)) as after:
        assert after.get_many([f"rb:{i}" for i in range(6)]) == {
            f"rb:{i}": b"v%d" % i for i in range(6)
        }


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "secure_cache", *args],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_cli_rotate__exits_7_with_what_to_do_and_deletes_nothing(
    tls_redis_factory: Any, tmp_path: Path
) -> None:
    server: TlsRedisServer = tls_redis_factory()
    newer = _newer_entries(server, tmp_path)
    env = rotation_environ(
        server, tmp_path / "r", data_key=new_data_key(), previous_keys=(server.material.data_key,)
    )
    result = _cli(env, "rotate")
    assert result.returncode == 7, result.stderr
    report = json.loads(result.stdout)
    assert (report["left_newer"], report["discarded"], report["complete"]) == (3, 0, False)
    err = result.stderr.decode()
    assert "Traceback" not in err
    assert "rotation incomplete: 3 entries written by a newer secure-cache" in err
    assert f"above {VERSION}, the newest this version reads" in err
    assert "Keep the old data key" in err
    # Logged once, with what to do; the other two are counted only.
    assert err.count("event=newer_envelope") == 2  # the log line, and the summary's mention
    assert "upgrade the app again" in err
    assert "event=integrity_failure" not in err
    raw = raw_client(server)
    assert [raw.get(name) for name in newer] == list(newer.values())


def test_cli_rotate__a_batch_given_up_after_three_watch_aborts_still_exits_7(
    tls_redis_factory: Any, tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    """Another client writes to the batch between every read and its EXEC (the pass gives
    the batch up after three WATCH aborts): the newer entries in it are still counted, so the
    exit is 7 (keep the old key), not 3 (run again: no run of this version moves them).
    Before 2026-12-03 (rollback14's leftover) such a run exited 3 with `left_newer` 0."""
    server: TlsRedisServer = tls_redis_factory()
    _newer_entries(server, tmp_path)
    env = rotation_environ(
        server, tmp_path / "r", data_key=new_data_key(), previous_keys=(server.material.data_key,)
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    raw = raw_client(server)
    real_plan = CacheCore.plan_batch
    touched: list[bytes] = []

    def plan_then_touched(
        core: CacheCore, names: list[bytes], raws: list[Any], pttls: list[Any]
    ) -> BatchPlan:
        plan = real_plan(core, names, raws, pttls)
        # A write to a watched name (the same value and TTL): EXEC aborts.
        raw.set(names[0], raw.get(names[0]) or b"", keepttl=True)
        touched.append(names[0])
        return plan

    monkeypatch.setattr(CacheCore, "plan_batch", plan_then_touched)
    code = cli_main(["rotate", "--batch-size", "100"])
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert code == 7, report
    assert (report["conflicts"], report["left_newer"], report["migrated"]) == (1, 3, 0)
    assert (report["remaining"], report["complete"]) == (9, False)
    assert len(touched) == 3
    assert "rotation incomplete: 3 entries written by a newer secure-cache" in err
