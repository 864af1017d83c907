"""What another stack on the same Docker engine already holds that this stack would take too.

Every stack on a host needs a uid block of its own (`runtimeIdSlot`, infra/runtime_ids.py: the
`nproc` ulimit counts a uid's processes across the whole host, so two stacks sharing a block
share each role's budget) and a host port of its own for the app (`appHostPort`). Neither the
program nor the engine sees the other stack: the engine ran a second stack's containers under
the first one's uids without a word, and a port already published failed only when the app
started, after everything before it had been created ("port is already allocated", naming
neither the container holding it nor the setting). So `up` compares, before its first change,
what this stack declares with what the other stacks' containers on the engine run as and
publish (running or stopped: a stopped stack starts again with its next `up`).

A port can also be held by something no stack accounts for: a program on the host
(`python -m http.server 18080`) or a container of no stack. The engine refused that one too only
as the app started ("bind: address already in use", exit 3, 23 objects created before it), so
`up` also tries, before its first change, each declared host port no stack's container
explains (`ports_to_probe`), and names the one taken and how to find its holder.

Pure: the engine's side comes in as `Held` records and the ports found taken on the host
(infra/applier/engine.py reads both).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from infra.naming import Role, object_name
from infra.runtime_ids import MAX_SLOT, slot_of


@dataclass(frozen=True)
class Held:
    """A container of a stack: the uid it runs as and the host ports it publishes."""

    stack: str
    container: str
    uid: int | None
    host_ports: frozenset[int]
    running: bool = False


def user_uid(user: str | None) -> int | None:
    """The numeric uid of a container's `user` ("70102:70102", "70102"); None for a name or
    none at all (the stacks' containers always run as numbers)."""
    uid = (user or "").split(":", 1)[0]
    return int(uid) if uid.isdigit() else None


def ports_to_probe(stack: str, host_ports: Iterable[int], held: Iterable[Held]) -> set[int]:
    """The declared host ports no stack's container explains: not published by another stack
    (`conflicts` names that one) nor held by a running container of this stack (its own app on
    the port it keeps: its next up replaces it). Anything listening on one of these is
    something else's."""
    explained = {port for h in held if h.stack != stack or h.running for port in h.host_ports}
    return set(host_ports) - explained


def conflicts(
    stack: str,
    uids: Iterable[int],
    host_ports: Iterable[int],
    held: Iterable[Held],
    in_use: Iterable[int] = (),
) -> list[str]:
    """One message per setting another stack already holds, naming the setting, the stack and
    container holding it, and the fix, and one per port of `ports_to_probe` found `in_use` on
    the host; empty when the stack can go up beside the others."""
    ours = {slot for uid in uids if (slot := slot_of(uid)) is not None}
    ports = set(host_ports)
    others = [h for h in held if h.stack != stack]
    taken = sorted({s for h in others if (s := slot_of(h.uid)) is not None})
    problems: list[str] = []
    if (moved := _moved_slot(stack, ours, held)) is not None:
        problems.append(moved)
    for slot in sorted(ours):
        holder = next((h for h in others if slot_of(h.uid) == slot), None)
        if holder is not None:
            problems.append(
                f"runtimeIdSlot {slot} is already used by stack {holder.stack} on this engine "
                f"({holder.container} runs as uid {holder.uid}); set secure-redis:runtimeIdSlot "
                f"in Pulumi.{stack}.yaml to a slot no other stack uses (1-{MAX_SLOT}; taken here: "
                f"{', '.join(map(str, taken))})"
            )
    for port in sorted(ports):
        holder = next((h for h in others if port in h.host_ports), None)
        if holder is not None:
            problems.append(
                f"appHostPort {port} is already published by {holder.container} of stack "
                f"{holder.stack}; set secure-redis:appHostPort in Pulumi.{stack}.yaml to a free "
                "port"
            )
    for port in sorted(set(in_use)):
        problems.append(
            f"appHostPort {port} is already in use on this host by a process that is not a "
            f"stack's container (find it with `ss -ltnp 'sport = :{port}'`, or `docker ps "
            f"--filter publish={port}` for a container); stop it, or set "
            f"secure-redis:appHostPort in Pulumi.{stack}.yaml to a free port"
        )
    return problems


def _moved_slot(stack: str, ours: set[int], held: Iterable[Held]) -> str | None:
    """The refusal of a runtimeIdSlot changed on a deployed stack, or None. Its volumes' files
    belong to the old uids: the material writers, running as the new ones, cannot remove the
    old material (found on s90, 90 -> 91, 2026-12-03: `rm: cannot remove
    '/etc/secure-redis/..<rev>': Permission denied`, exit 3 after four images were rebuilt),
    and Redis's append-only files in its data volume are the old Redis uid's, read and written
    by it alone. Nothing in the stack changes owners, so the move is refused before anything
    changes.

    Only the containers that hold the volumes count: the running ones, and Redis (its data
    volume) running or not. The run-once initialisers a failed move left made under the new
    uids must not refuse the way back: on s90, after such a failure, the up with the old slot
    set back replaced them and repaired the stack."""
    redis = object_name(stack, Role.REDIS.value)
    own = [
        h
        for h in held
        if h.stack == stack
        and (h.running or h.container == redis)
        and slot_of(h.uid) not in (None, *ours)
    ]
    if not own or not ours:
        return None
    first = own[0]
    old = slot_of(first.uid)
    return (
        f"runtimeIdSlot of stack {stack} is {', '.join(map(str, sorted(ours)))}, but its "
        f"deployed containers run in slot {old} ({first.container} runs as uid {first.uid}): "
        "a deployed stack cannot move to another uid block in place, since the files in its "
        "volumes (its material, Redis's append-only file) belong to the old uids and the "
        f"containers made anew could not replace or read them. Set secure-redis:runtimeIdSlot "
        f"back to {old} in Pulumi.{stack}.yaml; or, to move the stack to the new slot, "
        f"`scripts/teardown.sh {stack}` and deploy it again: its volumes go with it, so the "
        "cached data is lost and every certificate, password, data key and the API token is "
        "made anew"
    )


__all__ = ["Held", "conflicts", "ports_to_probe", "user_uid"]
