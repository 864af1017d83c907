"""Day-2 sequences an operator was not told to run, on the deployed stack.

`dataKeyGeneration` raised by hand a second time before the first rotation finished: the
first raise keeps the old key readable (`dataKeyKeepPrevious` 1), so entries sealed with it
still read; the second raise made another key and kept only one previous one, retiring the
key the entries not yet moved by the rotation pass were sealed with. Every such entry was a
miss from then on, and `up` said nothing (found on s90, 2026-12-03: an entry written before
the two raises answered 404). Now that `up` is refused before anything changes, with the way
on; `scripts/rotate.sh S data-key` then finishes the rotation and the entry still reads.

A `fault` test: it rotates the stack's data key, so it runs after every check of the
undisturbed stack.

`scripts/rotate.sh` run while an `up` of the stack runs (a second shell, a deploy job): it
raised the setting in Pulumi.S.yaml, then its probe met the containers that `up` was
replacing and printed Docker's bare `404 ... No such container: <id>` under "could not be
observed ... Not deployed: scripts/setup-secure-redis.sh", or its own `up` was refused by the
lock; either way it said "nothing was changed by this step" and left the setting raised, so
the next plain `up` started the rotation with no check that every consumer switched (found on
s90, 2026-12-03). Now rotate.sh names the running `up` and leaves the file as it was.

`docker restart` of the app in the middle of `rotate.sh S certs` (after its up): rotate.sh
failed with a Python dict and no way on, though the rotation had taken; now it names the
restart and exits 0. `runtimeIdSlot` changed on the deployed stack: the up failed midway
(the material writers under the new uids could not replace the old uids' files); now it is
refused before anything changes (found on s90, 2026-12-03).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid

import docker
import pytest

from infra.applier.host_conflicts import user_uid
from infra.applier.state import StateStore
from infra.naming import STACK_LABEL
from infra.runtime_ids import slot_of
from infra.settings import REPO_ROOT
from tests.e2e import appclient
from tests.e2e.commands import (
    ROTATE_S,
    applied,
    config,
    output,
    rotate,
    rotate_script,
    rotated,
    up,
)
from tests.e2e.stacks import Stack

pytestmark = [
    pytest.mark.security("operations"),
    pytest.mark.fault,
    pytest.mark.usefixtures("stack_files_restored"),
]


def _previous_key_ids(stack: Stack) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "infra.rotation_probe", "snapshot", "--stack", stack.name],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return list(json.loads(done.stdout)["previous_key_ids"])


def _primary_key_id(stack: Stack) -> str:
    return str(appclient.status(stack)["encryption"]["primary_key_id"])


def _reloaded(stack: Stack, before: str) -> str:
    """The app's primary data key id once it is another than `before`."""

    def another() -> str | None:
        now = _primary_key_id(stack)
        return now if now != before else None

    return appclient.wait_for("the app to read its new data key", another)


@pytest.mark.one_stack(
    "the keyring's rotation is one provider for every stack: no stack setting changes it "
    "(tests/unit/test_infra_rotation_providers.py drives the same provider)"
)
def test_data_key_raised_twice_by_hand__the_second_up_is_refused_and_no_entry_is_lost(
    stack: Stack,
) -> None:
    if _previous_key_ids(stack):
        rotated(stack, "data-key")  # a rotation left half done by an earlier run: finished first
    key, value = f"day2-{uuid.uuid4().hex[:8]}", b"sealed with the key in use before the raises"
    assert appclient.put(stack, key, value) in (200, 201, 204)
    generation = int(config(stack, "get", "dataKeyGeneration"))

    config(stack, "set", "dataKeyGeneration", str(generation + 1))
    before = _primary_key_id(stack)
    applied(stack)
    first_key = _reloaded(stack, before)
    assert appclient.get(stack, key) == value, "the first raise keeps the old key readable"

    config(stack, "set", "dataKeyGeneration", str(generation + 2))
    second = up(stack)
    if second.returncode == 0:
        _reloaded(stack, first_key)  # the app reads its files again a moment after the up
    assert appclient.get(stack, key) == value, (
        "the entry sealed with the old key is lost: the second raise retired that key before "
        f"the rotation pass moved it (up exit {second.returncode})"
    )
    assert second.returncode == 2, output(second)[-3000:]
    errors = [line for line in second.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, second.stderr
    assert "Traceback" not in second.stderr, second.stderr
    assert "dataKeyKeepPrevious" in errors[0], errors[0]
    assert "rotate.sh" in errors[0], errors[0]
    assert "nothing was changed" in errors[0], errors[0]

    # The way on the line names: the setting back, then rotate.sh finishes the rotation.
    config(stack, "set", "dataKeyGeneration", str(generation + 1))
    said = rotated(stack, "data-key")
    assert "left unfinished" in said, said[-3000:]
    assert appclient.get(stack, key) == value, "the rotation pass moved the entry"
    assert _previous_key_ids(stack) == [], "the old key is retired"


@pytest.mark.one_stack(
    "the stack's lock and rotate.sh's steps are one code path for every stack: no stack "
    "setting changes them"
)
def test_rotate_while_an_up_runs__refused_naming_it_and_the_setting_left_as_it_was(
    stack: Stack,
) -> None:
    stack_file = REPO_ROOT / f"Pulumi.{stack.name}.yaml"
    before = stack_file.read_text()
    # The lock as a running `up` holds it (this process records itself as its holder): the
    # same wait for whichever moment an up of another shell would be in.
    with StateStore(REPO_ROOT, stack.name).locked("up"):
        done = rotate(stack, "certs")
    said = output(done)
    assert done.returncode == 1, said[-3000:]
    assert stack_file.read_text() == before, f"rotate.sh left its setting raised:\n{said}"
    assert "locked by a running `up`" in said, said[-3000:]
    assert "No such container" not in said, said[-3000:]


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), cwd=REPO_ROOT, capture_output=True, text=True, timeout=ROTATE_S, check=False
    )


@pytest.mark.one_stack(
    "the stack's lock and rotate.sh's steps are one code path for every stack: no stack "
    "setting changes them"
)
def test_between_two_steps_of_a_rotation__another_rotation_setting_or_up_is_refused(
    stack: Stack,
) -> None:
    """`rotate.sh S passwords` stopped (SIGSTOP) between its two ups, the old passwords still
    accepted beside the new: each up held the stack's lock for itself only, so a second
    rotate.sh, a setting or an `up` by hand went through there. Measured on s61 (2026-12-04,
    docs/day2.md "Two rotations, or an up, at once"): two `rotate.sh s61 certs` at once left
    the generation put back below what the state applied, and an `up` by hand during a
    data-key pass restarted Redis and left the retire undone. Now the rotation holds the lock
    from its first look to its report: each is refused naming it, nothing changed, and the
    rotation, continued, takes its own second step."""
    name = stack.name
    stack_file = REPO_ROOT / f"Pulumi.{name}.yaml"
    holder = f"is being rotated by a running `scripts/rotate.sh {name} passwords` (pid "
    rotation = subprocess.Popen(
        rotate_script(stack, "passwords"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, stopped and continued as one
    )
    said: list[str] = []
    try:
        assert rotation.stdout is not None
        for line in rotation.stdout:
            said.append(line)
            if "up (passwords ROTATE: new beside old) done" in line:
                os.killpg(rotation.pid, signal.SIGSTOP)
                break
        else:
            pytest.fail("rotate.sh passwords ended before its second step:\n" + "".join(said))
        try:
            before = stack_file.read_text()
            memory = config(stack, "get", "redisMaxmemoryMb")
            second = rotate(stack, "certs")
            setting = _run(
                sys.executable, "-m", "infra.stack_config", "set", "--stack", name,
                "redisMaxmemoryMb", memory,
            )  # fmt: skip
            by_hand = up(stack)
            after = stack_file.read_text()
        finally:
            os.killpg(rotation.pid, signal.SIGCONT)
        rest = rotation.communicate(timeout=ROTATE_S)[0]
    finally:
        if rotation.poll() is None:
            os.killpg(rotation.pid, signal.SIGKILL)
            rotation.communicate()
    text = "".join(said) + rest
    for what, done, code in (("rotate.sh", second, 1), ("set", setting, 2), ("up", by_hand, 2)):
        out = output(done)
        assert done.returncode == code, f"{what} went through the rotation:\n{out[-3000:]}"
        assert holder in out, out[-3000:]
        assert "nothing was changed" in out, out[-3000:]
    assert after == before, "the refused rotate.sh or set changed the stack file"
    assert rotation.returncode == 0, text[-3000:]
    # Its second up took the SET step itself (no up by hand took it first, unchecked).
    assert "apply:   update  secrets-app-password" in rest, rest[-3000:]
    assert "passwords rotated in place" in rest, rest[-3000:]
    assert StateStore(REPO_ROOT, name).busy("the test") is None, "the lock went with the run"


@pytest.mark.one_stack(
    "the probe's look at a stopped container is one code path for every stack: no stack "
    "setting changes it"
)
def test_rotate_with_redis_stopped__says_so_and_the_up_it_names_brings_the_data_back(
    stack: Stack, docker_client: docker.DockerClient
) -> None:
    """`docker kill` of Redis (on-failure does not restart a container killed so): rotate.sh
    ended with Docker's bare `409 ... Container <id> is not running` and the advice for a
    stack never deployed. Now the probe names the stopped container and the `up` that makes
    it again; that `up` keeps the entries written to Redis before."""
    key, value = f"day2-{uuid.uuid4().hex[:8]}", b"written before Redis was killed"
    assert appclient.put(stack, key, value) in (200, 201, 204)
    stack_file = REPO_ROOT / f"Pulumi.{stack.name}.yaml"
    before = stack_file.read_text()
    docker_client.api.kill(stack.redis)
    try:
        done = rotate(stack, "passwords")
        said = output(done)
        assert done.returncode == 1, said[-3000:]
        assert f"{stack.redis} is not running (exited 137" in said, said[-3000:]
        assert f"python -m infra.apply up --stack {stack.name}" in said, said[-3000:]
        assert "409" not in said, said[-3000:]
        assert stack_file.read_text() == before, "nothing was changed"
    finally:
        recreated = up(stack)
    assert recreated.returncode == 0, output(recreated)[-3000:]

    def read_back() -> bool:
        served = appclient.status(stack)["fallback"]["active"] is False
        return served and appclient.get(stack, key) == value

    assert appclient.wait_for("the entry read back from Redis", read_back)


@pytest.mark.one_stack(
    "rotate.sh's wait and report are one code path for every stack: no stack setting changes them"
)
def test_app_restarted_during_a_rotation__says_so_and_the_rotation_that_took_exits_0(
    stack: Stack, docker_client: docker.DockerClient
) -> None:
    """`docker restart` of the app right after the up of `rotate.sh S certs`: rotate.sh
    failed with a Python dict (`app was restarted or replaced ({'id': ...} -> {...})`) and no
    way on, though the restarted app had read the new files (found on s90, 2026-12-03). Now
    the restart is named in words and the rotation that took ends 0 (README, Exit codes)."""
    served_before = docker_client.api.inspect_container(stack.app)["State"]["StartedAt"]
    rotation = subprocess.Popen(
        rotate_script(stack, "certs"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    said: list[str] = []
    try:
        assert rotation.stdout is not None
        for line in rotation.stdout:
            said.append(line)
            if "apply: up finished" in line:
                docker_client.api.restart(stack.app, timeout=2)
        code = rotation.wait(timeout=ROTATE_S)
    finally:
        if rotation.poll() is None:
            rotation.kill()
    text = "".join(said)
    assert docker_client.api.inspect_container(stack.app)["State"]["StartedAt"] != served_before
    assert code == 0, text[-3000:]
    assert "the app container was restarted while the rotation ran" in text, text[-3000:]
    assert "{'id'" not in text, text[-3000:]
    assert "server certificate serial: changed" in text, text[-3000:]


@pytest.mark.one_stack(
    "every stack's containers run in its own uid block; the check compares the stack's own "
    "containers with its setting, whatever the stack"
)
def test_runtime_id_slot_changed_on_a_deployed_stack__refused_before_anything_changes(
    stack: Stack, docker_client: docker.DockerClient
) -> None:
    """runtimeIdSlot 90 -> 91 on s90 (2026-12-03): the up rebuilt four images, then its
    material writers, running as the new uids, could not remove the old uids' material
    (`Permission denied`, exit 3), and Redis's append-only files are the old uid's. Now the up
    is refused before any change (exit 2), with the ways on (docs/stack-settings.md)."""
    label = {"label": f"{STACK_LABEL}={stack.name}"}
    containers = sorted(c.id for c in docker_client.containers.list(all=True, filters=label))
    written = config(stack, "get", "runtimeIdSlot")
    # The slot the containers run in: dev, staging and prod write 0, their name's slot (1-3).
    redis = docker_client.api.inspect_container(f"secure-redis-{stack.name}-redis")
    deployed = slot_of(user_uid(redis["Config"]["User"]))
    assert deployed is not None, redis["Config"]["User"]
    config(stack, "set", "runtimeIdSlot", str((deployed + 49) % 99 + 1))
    try:
        done = up(stack)
    finally:
        # stack_files_restored keeps the file of a stack this session did not deploy as it is
        config(stack, "set", "runtimeIdSlot", written)
    said = output(done)
    assert done.returncode == 2, said[-3000:]
    assert f"but its deployed containers run in slot {deployed}" in said, said[-3000:]
    assert f"Set secure-redis:runtimeIdSlot back to {deployed}" in said, said[-3000:]
    assert "nothing was changed" in said, said[-3000:]
    assert sorted(c.id for c in docker_client.containers.list(all=True, filters=label)) == (
        containers
    )
