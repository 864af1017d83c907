"""infra/applier/host_conflicts.py: which of a stack's settings another stack already holds.

The engine's side is given as `Held` records; tests/e2e/test_e2e_host_conflicts.py reads them
from a real engine and runs the refused `up`.
"""

from __future__ import annotations

import socket
from dataclasses import replace

import pytest

from infra.applier.engine import host_port_taken
from infra.applier.host_conflicts import Held, conflicts, ports_to_probe, user_uid
from infra.naming import Role
from infra.runtime_ids import ID_BASE, ID_CEILING, MAX_SLOT, runtime_id, slot_of
from tests.support.tls_redis import free_port

pytestmark = pytest.mark.unit


def _held(stack: str, slot: int, *ports: int, role: Role = Role.APP) -> Held:
    return Held(
        stack, f"secure-redis-{stack}-{role.value}", runtime_id(stack, role, slot), frozenset(ports)
    )


def _ours(slot: int) -> list[int]:
    return [runtime_id("u9", role, slot) for role in (Role.REDIS, Role.APP, Role.EXPORTER)]


@pytest.mark.parametrize(
    ("user", "uid"),
    [("70102:70102", 70102), ("75702", 75702), ("", None), (None, None), ("redis", None)],
)
def test_user_uid__the_numeric_uid_of_a_containers_user(user: str | None, uid: int | None) -> None:
    assert user_uid(user) == uid


@pytest.mark.parametrize(
    ("uid", "slot"),
    [
        (runtime_id("u9", Role.REDIS, 57), 57),
        (runtime_id("u9", Role.ROTATION, MAX_SLOT), MAX_SLOT),
        (runtime_id("dev", Role.APP), 1),
        (ID_BASE + 2, None),  # the image default's block (slot 0): no stack has it
        (ID_CEILING, None),
        (1000, None),
        (None, None),
    ],
)
def test_slot_of__the_stack_block_a_uid_lies_in(uid: int | None, slot: int | None) -> None:
    assert slot_of(uid) == slot


def test_conflicts__none_beside_stacks_with_other_slots_and_ports() -> None:
    held = [_held("dev", 1, 18080), _held("prod", 3, 18081), _held("d2n9", 56, 18099)]
    assert conflicts("u9", _ours(57), [18100], held) == []


def test_conflicts__the_stacks_own_containers_are_no_conflict() -> None:
    """A second `up` of the stack sees its own app on its port and its own uids."""
    assert conflicts("u9", _ours(57), [18100], [_held("u9", 57, 18100)]) == []


def test_conflicts__the_stacks_own_containers_in_another_slot_refuse_the_move() -> None:
    """runtimeIdSlot changed on a deployed stack (s90, 90 -> 91, 2026-12-03): the up built four
    images, then the material writers, running as the new uids, could not remove the old
    material (`rm: cannot remove '/etc/secure-redis/..<rev>': Permission denied`, exit 3), and
    Redis's append-only files in its data volume are the old uid's too. Refused before any
    change instead, with the two ways on."""
    held = [replace(_held("u9", 57, 18100), running=True), _held("u9", 57, role=Role.REDIS)]
    (message,) = conflicts("u9", _ours(58), [18100], held)
    assert message.startswith(
        "runtimeIdSlot of stack u9 is 58, but its deployed containers run in slot 57 "
        f"(secure-redis-u9-app runs as uid {runtime_id('u9', Role.APP, 57)})"
    )
    assert "Set secure-redis:runtimeIdSlot back to 57 in Pulumi.u9.yaml" in message
    assert "scripts/teardown.sh u9" in message
    assert "cached data is lost" in message


def test_conflicts__a_stopped_redis_in_another_slot_refuses_the_move_too() -> None:
    """Its data volume holds the append-only file, whether it runs or not."""
    (message,) = conflicts("u9", _ours(58), [], [_held("u9", 57, role=Role.REDIS)])
    assert "secure-redis-u9-redis runs as uid" in message


def test_conflicts__initialisers_a_failed_move_left_do_not_refuse_the_way_back() -> None:
    """On s90 (2026-12-03) a move to slot 91 failed in the material writers, which were left
    made under slot 91's uids; the up with 90 set back must run (it replaced them, repaired)."""
    held = [
        replace(_held("u9", 57, 18100), running=True),
        replace(_held("u9", 57, role=Role.REDIS), running=True),
        Held("u9", "secure-redis-u9-redis-init", runtime_id("u9", Role.REDIS, 58), frozenset()),
    ]
    assert conflicts("u9", _ours(57), [18100], held) == []


def test_conflicts__a_slot_another_stack_runs_as_names_it_and_the_slots_taken() -> None:
    held = [_held("dev", 1, 18080), _held("d2n9", 57, 18099, role=Role.EXPORTER)]
    (message,) = conflicts("u9", _ours(57), [18100], held)
    uid = runtime_id("d2n9", Role.EXPORTER, 57)
    assert message == (
        f"runtimeIdSlot 57 is already used by stack d2n9 on this engine "
        f"(secure-redis-d2n9-exporter runs as uid {uid}); set secure-redis:runtimeIdSlot in "
        f"Pulumi.u9.yaml to a slot no other stack uses (1-{MAX_SLOT}; taken here: 1, 57)"
    )


def test_conflicts__a_port_another_stack_publishes_names_its_container() -> None:
    (message,) = conflicts("u9", _ours(57), [18099], [_held("d2n9", 56, 18099)])
    assert message == (
        "appHostPort 18099 is already published by secure-redis-d2n9-app of stack d2n9; set "
        "secure-redis:appHostPort in Pulumi.u9.yaml to a free port"
    )


def test_conflicts__both_at_once_are_both_reported() -> None:
    problems = conflicts("u9", _ours(1), [18080], [_held("dev", 1, 18080)])
    assert [p.split(" ", 1)[0] for p in problems] == ["runtimeIdSlot", "appHostPort"]


def test_conflicts__image_default_ids_of_unstacked_test_containers_are_no_slot() -> None:
    """Integration tests run the images with their default uids (slot 0), labelled `test`."""
    held = [Held("test", "c", ID_BASE + 2, frozenset())]
    assert conflicts("u9", _ours(57), [18100], held) == []


@pytest.mark.parametrize(
    ("held", "probed"),
    [
        ([], {18100}),
        ([_held("dev", 1, 18080)], {18100}),
        # Another stack's port is `conflicts`'s to name, running or not.
        ([_held("d2n9", 56, 18100)], set()),
        # The stack's own app, running on the port it keeps (a second up).
        ([replace(_held("u9", 57, 18100), running=True)], set()),
        # The stack's own app left created but not started (an up that failed at its start):
        # it holds no port, so whatever listens there is something else.
        ([_held("u9", 57, 18100)], {18100}),
    ],
    ids=["nothing", "other-port", "other-stack", "own-running", "own-stopped"],
)
def test_ports_to_probe__the_declared_ports_no_stacks_container_explains(
    held: list[Held], probed: set[int]
) -> None:
    assert ports_to_probe("u9", [18100], held) == probed


def test_conflicts__a_port_a_process_on_the_host_holds_names_the_port_and_how_to_find_it() -> None:
    (message,) = conflicts("u9", _ours(57), [18100], [], in_use=[18100])
    assert message == (
        "appHostPort 18100 is already in use on this host by a process that is not a stack's "
        "container (find it with `ss -ltnp 'sport = :18100'`, or `docker ps --filter "
        "publish=18100` for a container); stop it, or set secure-redis:appHostPort in "
        "Pulumi.u9.yaml to a free port"
    )


def test_host_port_taken__only_a_listener_counts() -> None:
    """A real socket on loopback: bound and listening is taken (on its address and on every
    address), bound and closed again is free."""
    unused_loopback_port = free_port()
    assert host_port_taken("127.0.0.1", unused_loopback_port) is False
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", unused_loopback_port))
        holder.listen()
        assert host_port_taken("127.0.0.1", unused_loopback_port) is True
        assert host_port_taken("0.0.0.0", unused_loopback_port) is True
    assert host_port_taken("127.0.0.1", unused_loopback_port) is False
