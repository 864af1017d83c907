"""Security model 5 (data): the app encrypts before anything reaches Redis, so Redis' own files
hold neither the values nor the key names a client used."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e import appclient
from tests.e2e.hosts import container_host
from tests.e2e.probes import ProbeContainer, app_auth, app_client_files, redis_tls
from tests.e2e.stacks import Stack
from tests.e2e.stored import put_and_find, stored_names

pytestmark = pytest.mark.security("data")

AOF_DIR = "/data/appendonlydir"


def redis_files(stack: Stack) -> dict[str, bytes]:
    host = container_host(stack.redis)
    return {
        f"{AOF_DIR}/{name}": bytes(host.file(f"{AOF_DIR}/{name}").content)
        for name in host.file(AOF_DIR).listdir()
    }


def integrity_failures(stack: Stack) -> int:
    return int(appclient.status(stack)["counters"]["integrity_failures"])


def test_data__app_round_trip_over_its_loopback_port(stack: Stack) -> None:
    """The app reads back what it wrote, and counts no integrity failure for it. The count is
    compared with its value at the test's start, not with 0: tests that tamper on purpose
    (this module's, tests/e2e/test_e2e_monitoring.py's) may have run before on the stack."""
    key, value = f"e2e/round-trip/{uuid.uuid4()}", b"\x00binary\xffvalue"
    before = integrity_failures(stack)
    assert appclient.put(stack, key, value) == 204
    assert appclient.get(stack, key) == value
    assert integrity_failures(stack) == before, "the app's own value failed its integrity check"
    assert appclient.delete(stack, key) == 204
    assert appclient.get(stack, key) is None


def test_data__app_reports_its_tls_session_and_cipher(stack: Stack) -> None:
    status = appclient.status(stack)
    assert status["backend"] == "redis"
    assert status["redis"]["tls_version"] in stack.settings.tls_protocols
    if stack.production:
        assert status["redis"]["tls_version"] == "TLSv1.3"
    assert status["redis"]["acl_user"] == "app"
    assert status["encryption"]["cipher"] == "AES-256-GCM"


def test_data__values_and_key_names_at_rest_are_not_plaintext(
    stack: Stack, rotation_probe: ProbeContainer
) -> None:
    """The files are searched once they hold this test's own entry, found by its name in Redis:
    counting entries instead took another worker's write (scripts/test.sh runs two) for this
    one, and an AOF rewrite meanwhile shrinks the count for good."""
    marker = f"e2e-plaintext-{uuid.uuid4().hex}"
    key = f"e2e-key-name-{uuid.uuid4().hex}"
    name = put_and_find(rotation_probe, stack, key, (marker * 4).encode()).encode()

    def written() -> dict[str, bytes] | None:  # appendfsync everysec
        files = redis_files(stack)
        return files if any(name in data for data in files.values()) else None

    files: dict[str, Any] = appclient.wait_for("the write to reach the AOF", written, 15)
    for path, data in files.items():  # booleans only: a failure must not print Redis' files
        holds_value = marker.encode() in data
        assert not holds_value, f"{path} holds the value in plaintext"
        holds_key = key.encode() in data
        assert not holds_key, f"{path} holds the client's key name"
    assert appclient.get(stack, key) == (marker * 4).encode(), "and the app still reads it back"
    leave_no_entry(rotation_probe, stack, {key: name.decode()})


# `fault`: the integrity failure it counts on purpose fires the critical CacheIntegrityFailure
# on any Prometheus watching the stack, so it is not among the checks a user runs after every
# deploy (docs/verification.md).
@pytest.mark.fault
def test_data__a_ciphertext_moved_to_another_key_is_a_miss_and_a_security_event(
    stack: Stack, probe: ProbeContainer, rotation_probe: ProbeContainer
) -> None:
    """An attacker with the app's Redis credentials copies one entry over another: the value
    is bound to its key, so the app refuses it (a miss), counts it, and never returns it."""
    run = uuid.uuid4().hex[:8]
    victim, donor = f"e2e-victim-{run}", f"e2e-donor-{run}"
    victim_name = put_and_find(rotation_probe, stack, victim, b"the victim's value")
    donor_name = put_and_find(rotation_probe, stack, donor, b"the donor's value")
    assert victim_name != donor_name
    assert victim not in victim_name, "the name in Redis reveals the client's key"
    before = integrity_failures(stack)
    # The app's ACL has no COPY or RENAME: the attacker reads the donor's bytes and writes
    # them under the victim's name, in one session.
    copy = [["GET", donor_name], ["SET", victim_name, {"reply": 1}]]
    result = probe.run(
        "tls", **redis_tls(stack, **app_client_files(), commands=[app_auth(), *copy])
    )
    assert result["replies"][2] == "+OK", "the attacker's copy went through"
    assert appclient.get(stack, victim) is None, "the swapped value must not be returned"
    assert integrity_failures(stack) == before + 1
    assert appclient.get(stack, donor) == b"the donor's value"
    leave_no_entry(rotation_probe, stack, {victim: victim_name, donor: donor_name})


def leave_no_entry(rotation_probe: ProbeContainer, stack: Stack, names: dict[str, str]) -> None:
    """Delete the test's entries (key -> name in Redis) through the app and check they are
    gone. The setup script verifies a user's own stack with these tests: the tampered victim
    left behind was the first data-key rotation's `event=integrity_failure` warning and
    "1 entry no data key opens was deleted ... tampered with or foreign" (s45, 2026-12-03)."""
    for key in names:
        appclient.delete(stack, key)
    left = set(names.values()) & stored_names(rotation_probe, stack)
    assert not left, f"{len(left)} of this test's entries are still in Redis"
