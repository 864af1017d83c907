"""The API token rotates in place on the deployed stack: `scripts/rotate.sh S api-token`, then
`scripts/rotate.sh S api-token-retire`, with requests carrying the old token all along.

Requests with the old token are never refused before the retirement; the new token (read
where operators read it, the app's material volume) works from the add step on; the old one
is refused after the retirement; the app container is the same throughout (rotate.sh fails
if it was restarted); neither token appears in what rotate.sh and the applier print.

A `fault` test: it retires the token other tests' clients hold (the monitoring module's
Prometheus scrapes with a copy of it, tests/e2e/test_e2e_app_api.py sends it raw) and rewrites
the app's material volume while the secrets tests read it, so it runs after every check of
the undisturbed stacks, alone (scripts/test.sh runs those on two workers).
"""

from __future__ import annotations

import time

import pytest

from infra.stack_config import get_setting, set_setting
from tests.e2e import appclient
from tests.e2e.commands import applied, rotated
from tests.e2e.stacks import Stack
from tests.support.status_loop import status_loop, statuses_before

pytestmark = [
    pytest.mark.security("operations"),
    pytest.mark.fault,
    pytest.mark.usefixtures("stack_files_restored"),
]

# The app checks its token files at least once a second (app/secure_cache/api_tokens.py); the
# bound only keeps a broken stack from hanging the run.
RETIRE_DEADLINE_S = 15.0


def _status_with(stack: Stack, token: str) -> int:
    auth = {"Authorization": f"Bearer {token}"}
    return appclient.raw_call(stack, "GET", "/security-status", None, auth)[0]


def _status_or_0(stack: Stack, token: str) -> int:
    """_status_with, a request that failed outright counted as refused (0)."""
    try:
        return _status_with(stack, token)
    except OSError:
        return 0


@pytest.mark.one_stack(
    "the two phases, the service's re-read of its token files and the retirement are one code "
    "path in the app and the applier: no stack setting (memory, CPUs, validity, TLS, key "
    "algorithm) changes them; the token's length per stack and its rotation are rendered and "
    "checked for every stack in tests/unit/test_infra_app_api.py"
)
def test_api_token_rotation__old_token_until_retired_new_one_from_the_add_step(
    stack: Stack,
) -> None:
    old = appclient.api_token(stack, refresh=True)
    assert _status_with(stack, old) == 200
    with status_loop(lambda: _status_or_0(stack, old), pause_s=0.05) as old_traffic:
        added = rotated(stack, "api-token")
        new = appclient.api_token(stack, refresh=True)
        assert new != old
        assert len(new) >= 32
        assert _status_with(stack, new) == 200
        assert _status_with(stack, old) == 200
        retire_started = time.monotonic()
        retired = rotated(stack, "api-token-retire")
        deadline = time.monotonic() + RETIRE_DEADLINE_S
        while _status_with(stack, old) != 401:
            assert time.monotonic() < deadline, "the retired token is still accepted"
            time.sleep(0.2)
        assert _status_with(stack, new) == 200
    before = statuses_before(old_traffic, retire_started)
    assert before, "no request with the old token finished before the retirement"
    assert set(before) == {200}, "the old token was refused before its retirement"
    for output in (added, retired):
        assert old not in output
        assert new not in output
    assert "cat /etc/secure-cache/api.token" in added  # where to read the new one


@pytest.mark.one_stack(
    "which up retires the old token is the API token provider's decision "
    "(infra/providers/secrets.py, the same for every stack); the render across ups is checked "
    "for dev in tests/unit/test_api_token_retire_generation.py"
)
def test_api_token_rotation__an_unrelated_up_keeps_the_old_token_until_the_retire(
    stack: Stack,
) -> None:
    """Before apiTokenRetireGeneration, any `up` after `rotate.sh S api-token` (re-run, a
    setting changed, an upgrade) retired the old token: every client not yet switched got
    401, an outage nobody asked for. Here two such ups run between the rotation and its
    retire: `up` again with nothing changed, then appMemoryMb changed, which replaces the app
    (the new one reads its token files at start, so what it accepts is what the up wrote). The
    old token is never refused until `api-token-retire` (a request that failed outright while
    the app was replaced counts 0), and refused after it."""
    old = appclient.api_token(stack, refresh=True)
    memory = get_setting(stack.name, "appMemoryMb")
    rotated(stack, "api-token")
    new = appclient.api_token(stack, refresh=True)
    assert new != old
    with status_loop(lambda: _status_or_0(stack, old), pause_s=0.05) as old_traffic:
        outputs = [applied(stack)]
        set_setting(stack.name, "appMemoryMb", str(int(memory) + 16))
        try:
            outputs.append(applied(stack))
            # Each status taken apart first: a failed assert shows its operands, and a token
            # must not reach the test's output.
            replaced_old, replaced_new = _status_with(stack, old), _status_with(stack, new)
            assert replaced_old == 200, "the replaced app refused the old token"
            assert replaced_new == 200
        finally:
            set_setting(stack.name, "appMemoryMb", memory)
        outputs.append(applied(stack))
        after_ups = _status_with(stack, old)
        assert after_ups == 200
        retire_started = time.monotonic()
        rotated(stack, "api-token-retire")
        deadline = time.monotonic() + RETIRE_DEADLINE_S
        while _status_with(stack, old) != 401:
            assert time.monotonic() < deadline, "the retired token is still accepted"
            time.sleep(0.2)
    retired_new = _status_with(stack, new)
    assert retired_new == 200
    before = statuses_before(old_traffic, retire_started)
    assert 200 in before, "no request with the old token answered between the ups"
    assert 401 not in before, "an up other than the retire refused the old token"
    assert set(before) <= {200, 0}, sorted(set(before))
    for output in outputs:
        assert old not in output, "a token in the up's output"
        assert new not in output, "a token in the up's output"
