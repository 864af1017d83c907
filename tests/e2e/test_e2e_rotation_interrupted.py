"""A CA rollover whose introduce step never reached Redis, finished on the deployed stack.

The introduce's `up` rewrites Redis's volume (a bundle of the old and the new CA), then runs the
TLS reload job. Here Redis is paused while that job waits for its handshake, and the `up` is
interrupted (Ctrl-C, as an operator would once it hung), so the job never reaches Redis: the
running Redis trusts only the old CA, its volume both. The next `up` is the promote: it
reissues the reload job's certificate from the new CA, which that Redis refuses at the
handshake, and the job then tries the certificate the promote replaced
(infra/components/reload.py). Before, the promote and every `up` after it failed until Redis
was restarted by hand (docs/day2.md). `scripts/rotate.sh S ca`, the documented way on, then
finishes the rollover it finds half done. Redis is never restarted here (rotate.sh fails if it
was, and the test compares its container and start time).

A `fault` test: it pauses Redis and rolls the stack's CA over, so it runs after every check of
the undisturbed stack.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from typing import Final

import docker
import pytest
from docker.errors import NotFound

from infra.settings import REPO_ROOT
from tests.e2e.commands import config, output, rotate, rotated, succeeded, up, up_command
from tests.e2e.stacks import Stack

pytestmark = [
    pytest.mark.security("operations"),
    pytest.mark.fault,
    pytest.mark.usefixtures("stack_files_restored"),
]

# Bounds that only keep a broken stack from hanging the run (a busy 2-core machine: an up's
# render alone took up to a minute at load 30).
JOB_START_S: Final = 300.0
INTERRUPTED_EXIT_S: Final = 120.0
ROTATE_S: Final = 600.0


def _state(client: docker.DockerClient, name: str) -> tuple[str, dict[str, object]] | None:
    """The container's ID and state, None when there is none."""
    try:
        found = client.api.inspect_container(name)
    except NotFound:
        return None
    return str(found["Id"]), dict(found["State"])


def _interrupt_once_the_tls_job_runs(stack: Stack, client: docker.DockerClient) -> str:
    """One `up` of the local applier, interrupted (SIGINT) once the TLS reload job it made is
    running; its output."""
    job = stack.object("reload-tls")
    before = _state(client, job)
    up = subprocess.Popen(
        up_command(stack),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + JOB_START_S
        while True:
            now = _state(client, job)
            if now and (before is None or now[0] != before[0]) and now[1].get("Running"):
                break
            assert up.poll() is None, f"the up ended before its TLS reload job ran:\n{_out(up)}"
            assert time.monotonic() < deadline, "the up's TLS reload job never started"
            time.sleep(0.2)
        up.send_signal(signal.SIGINT)
        output = _out(up)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    assert up.returncode == 3, f"the interrupted up exited {up.returncode}:\n{output}"
    return output


def _out(up: subprocess.Popen[str]) -> str:
    return up.communicate(timeout=INTERRUPTED_EXIT_S)[0]


@pytest.mark.one_stack(
    "the reload job's second try and the CA's phases are one code path for every stack: no "
    "stack setting changes them (the integration test runs the same script on a real "
    "redis-server: tests/integration/test_redis_rotation.py)"
)
def test_ca_rollover__an_introduce_interrupted_before_its_reload__finishes_without_a_restart(
    stack: Stack, docker_client: docker.DockerClient
) -> None:
    redis = docker_client.containers.get(stack.redis)
    started = (redis.id, redis.attrs["State"]["StartedAt"])
    generation = int(config(stack, "get", "caRolloverGeneration"))
    config(stack, "set", "caRolloverGeneration", str(generation + 1))

    redis.pause()
    try:
        _interrupt_once_the_tls_job_runs(stack, docker_client)
        # The job is still waiting for the paused Redis's handshake (or the applier removed
        # it): it never reached Redis. Removed before Redis answers again.
        job = _state(docker_client, stack.object("reload-tls"))
        if job is not None:
            assert job[1].get("Running") or job[1].get("ExitCode") != 0, "the reload took"
            docker_client.api.remove_container(job[0], force=True)
    finally:
        with contextlib.suppress(docker.errors.APIError):
            redis.unpause()

    # The promote, as rotate.sh's first up would take it: its TLS reload job is refused with
    # the new CA's certificate and reloads Redis with the one the promote replaced.
    promote = succeeded(up(stack), "the promote")
    log = docker_client.containers.get(stack.object("reload-tls")).logs().decode()
    assert "trying the certificate the promote replaced" in log, log
    assert "CONFIG SET OK" in log, log
    assert "PRIVATE KEY" not in log + promote

    # rotate.sh, the documented way on, finds the rollover half done and finishes it (the
    # retire step), checking that every consumer switched.
    said = rotated(stack, "ca")
    assert "left unfinished" in said, f"rotate.sh did not find the rollover half done:\n{said}"
    redis.reload()
    assert (redis.id, redis.attrs["State"]["StartedAt"]) == started, "Redis was restarted"
    assert int(config(stack, "get", "caRolloverGeneration")) == generation + 1, (
        "rotate.sh started another rollover instead of finishing this one"
    )


@pytest.mark.one_stack(
    "the retire step's check and the CA's phases are one code path for every stack: no stack "
    "setting changes them (tests/integration/test_redis_rotation.py runs the decision against "
    "a real redis-server)"
)
def test_ca_rollover__a_promote_whose_reload_did_not_take__the_retire_refuses_not_locks_out(
    stack: Stack, docker_client: docker.DockerClient
) -> None:
    """The promote's `up` interrupted while its TLS reload job waits for the paused Redis: the
    running Redis serves the old CA's certificate, its volume the new one. Before, the next
    `up` (the retire step) gave the job a bundle of the new CA alone, the job failed with
    `certificate verify failed`, and so did every `up` after until Redis was restarted. Now
    the `up` and scripts/rotate.sh refuse before changing anything, naming the promote's
    reload; run as they say, the rollover finishes without a restart of Redis."""
    redis = docker_client.containers.get(stack.redis)
    started = (redis.id, redis.attrs["State"]["StartedAt"])
    generation = int(config(stack, "get", "caRolloverGeneration"))
    config(stack, "set", "caRolloverGeneration", str(generation + 1))
    succeeded(up(stack), "the introduce")

    job_name = stack.object("reload-tls")
    redis.pause()
    try:
        _interrupt_once_the_tls_job_runs(stack, docker_client)
        # Stopped before Redis answers again, so it never reaches Redis; kept, as a job the
        # engine ended is (the way on below starts it again).
        job = _state(docker_client, job_name)
        assert job is not None, "the interrupted promote's reload job is gone"
        if job[1].get("Running"):
            docker_client.api.kill(job[0])
    finally:
        with contextlib.suppress(docker.errors.APIError):
            redis.unpause()

    refused = up(stack)
    said = output(refused)
    assert refused.returncode == 3, f"the retire was not refused:\n{said[-3000:]}"
    errors = [line for line in said.splitlines() if line.startswith("apply: error:")]
    assert len(errors) == 1, said[-3000:]
    assert "the TLS reload of the CA rollover's promote step did not take" in errors[0]
    way_on = f"docker start --attach {job_name}"
    assert way_on in errors[0]
    assert _state(docker_client, job_name) is not None, "the refused up changed the job"
    refusal = rotate(stack, "ca")
    said = output(refusal)
    assert refusal.returncode == 1, f"rotate.sh did not refuse:\n{said[-3000:]}"
    assert way_on in said, said[-3000:]

    reloaded = subprocess.run(
        way_on.split(), capture_output=True, text=True, timeout=ROTATE_S, check=False
    )
    assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr
    assert "CONFIG SET OK" in reloaded.stdout + reloaded.stderr
    rotated(stack, "ca")
    redis.reload()
    assert (redis.id, redis.attrs["State"]["StartedAt"]) == started, "Redis was restarted"
