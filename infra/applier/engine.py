"""The I/O half of the local applier: bring the local Docker engine from the stack's state to
its plan with the docker SDK (only what changed), or remove every object labelled as the stack's.

Containers are created the way pulumi-docker creates them: create, join the networks, upload
each `uploads` file as its own tar extracted at "/" (so it fails where the provider fails, e.g.
on a read-only root filesystem), start, then honour `attach` (run to completion; a non-zero
exit code is an error), `mustRun` and `wait` (healthy within `waitTimeout`).
"""

from __future__ import annotations

import contextlib
import errno
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import docker
from docker.errors import APIError, BuildError, DockerException, NotFound
from requests.exceptions import RequestException
from urllib3.exceptions import HTTPError

from infra.applier.build_lock import build_lock_path, building, no_build_running
from infra.applier.diff import (
    DOCKER_TYPES,
    INCOMPLETE,
    docker_changes,
    rebuilt_image_only,
    unfinished,
)
from infra.applier.drift import Drift, container_drift, material_drift
from infra.applier.errors import ApplyError, NothingChanged
from infra.applier.host_conflicts import Held, conflicts, ports_to_probe, user_uid
from infra.applier.plan import Plan, Step
from infra.applier.removal import removed_first
from infra.applier.schedule import Cancelled, abandonable, run_when_ready
from infra.applier.state import ResourceState, StackState
from infra.applier.translate import (
    CONTAINER,
    IMAGE,
    NETWORK,
    VOLUME,
    ContainerSpec,
    ImageSpec,
    NetworkSpec,
    VolumeSpec,
    destroy_grace_s,
    update_kwargs,
    upload_archive,
    uploads_archive,
)
from infra.changes import Change, Op
from infra.cli import printable
from infra.naming import MATERIAL_LABEL, ROLE_LABEL, STACK_LABEL, Role

Say = Callable[[str], None]
Checkpoint = Callable[[StackState], None]
_LOG_TAIL: Final = 15
_RUNNING_CHECK_DELAY_S: Final = 0.1
# A run-to-completion container (attach) has this long to exit, waited for in slices so that
# an interrupted up stops waiting within one.
_RUN_TO_COMPLETION_S: Final = 600
_WAIT_SLICE_S: Final = 1
# docker-py's base URL for an engine reached through its local unix socket.
LOCAL_ENGINE_URL: Final = "http+docker://localhost"


class ContainerRefused(ApplyError):
    """The engine refused to create a container: it created nothing."""


class WriteRefused(ApplyError):
    """A request that could change the engine, from a client made `reading_only`."""


# The HTTP methods of Docker's API that change nothing (inspect, list, archive reads, ping).
_READS: Final = frozenset({"GET", "HEAD"})


def reading_only(client: docker.DockerClient) -> docker.DockerClient:
    """`client`, made to refuse every request but a read (GET, HEAD) before it is sent.
    `plan` asks the engine what the next up would do about drift (infra/apply.py) with the
    up's own code, which also creates, updates and removes: this is what keeps any path of
    it from changing the engine (the docker SDK sends every request through the session's
    `request`)."""
    api = client.api
    send = api.request

    def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if str(method).upper() not in _READS:
            raise WriteRefused(
                f"plan only reads the engine; it was about to send {method} "
                f"{urlsplit(str(url)).path} and did not (a bug: report it); nothing was changed"
            )
        return send(method, url, *args, **kwargs)

    setattr(api, "request", request)  # noqa: B010 - the instance's, not the class's
    return client


@dataclass
class StackObjects:
    """Docker objects labelled `io.secure-redis.stack=<stack>`, by kind (names or tags)."""

    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    """Containers an up planned to replace and kept: their image was rebuilt unchanged."""

    def add(self, spec: Any) -> None:
        """Record an object an up created, by its kind."""
        if isinstance(spec, ImageSpec):
            self.images.append(spec.tag)
        elif isinstance(spec, NetworkSpec):
            self.networks.append(spec.name)
        elif isinstance(spec, VolumeSpec):
            self.volumes.append(spec.name)
        else:
            self.containers.append(spec.name or spec.resource)

    def empty(self) -> bool:
        return not (self.containers or self.networks or self.volumes or self.images)

    def describe(self) -> str:
        parts = [
            f"{len(items)} {kind} ({', '.join(items)})"
            for kind, items in (
                ("containers", self.containers),
                ("networks", self.networks),
                ("volumes", self.volumes),
                ("images", self.images),
            )
            if items
        ]
        return "; ".join(parts) or "nothing"


@dataclass
class _Record:
    """The stack's state as an up changes it, from the threads of its steps: each change is
    made and checkpointed under one lock, so every checkpoint sees a whole state."""

    state: StackState
    save: Checkpoint
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, urn: str, resource: ResourceState) -> None:
        with self.lock:
            self.state.resources[urn] = resource
            self.save(self.state)

    def drop(self, urn: str) -> None:
        with self.lock:
            self.state.resources.pop(urn, None)
            self.save(self.state)


@dataclass
class _Up:
    """What the steps of one up share."""

    stack: str
    record: _Record
    changes: dict[str, Change]
    deferred: set[str]
    image_ids: dict[str, str]
    """Image placeholders -> image IDs: the unchanged images' at the start, each built one's
    as its step ends (before any container that runs it starts)."""
    applied: StackObjects = field(default_factory=StackObjects)


class LocalApplier:
    def __init__(
        self,
        client: docker.DockerClient,
        say: Say = print,
        poll_interval_s: float = 0.5,
        build_lock: Path | None = None,
    ) -> None:
        self.client = client
        # Held shared by every build, exclusively by `down` removing parents (build_lock.py).
        self.build_lock = build_lock or build_lock_path()
        self.api = client.api
        self.say = _one_at_a_time(say)
        self.poll_interval_s = poll_interval_s
        # Set when an up is interrupted: its steps stop at their next wait (schedule.py).
        self._cancel = threading.Event()

    # -- up ------------------------------------------------------------------------------------

    def up(
        self,
        plan: Plan,
        state: StackState | None = None,
        changes: Sequence[Change] | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> StackObjects:
        """Bring the engine from `state` (the last `up`, updated in place) to `plan`.

        `changes` defaults to `docker_changes` against `state` and the engine. Deleted
        containers go first, then replaced networks with the containers on them (and a
        container whose name or host port another takes), images and volumes
        (infra/applier/removal.py); then every created or replaced object, each as soon as the
        steps it depends on are done (`plan.needs`; several at once, as Pulumi's engine runs
        them: infra/applier/schedule.py). Any other replaced container is removed by its own
        step, just before its successor is created (its name and host port are fixed: delete
        before replace), so it keeps running while its image builds and the steps it needs
        run. Containers to update get their new limits and restart policy as they run.
        Unchanged objects are not touched. Volumes are never removed here, and images no
        longer declared stay as build cache (pulumi-docker's Image does not delete local
        images either); `down` removes both. `checkpoint(state)` runs after every
        step, one at a time, so a failure or an interrupt part-way leaves a state that matches
        the engine.
        """
        state = state if state is not None else StackState(plan.stack)
        if changes is None:
            changes = self.changes(plan, state)
        record = _Record(state, checkpoint or (lambda _state: None))
        by_urn = {c.urn: c for c in changes}
        self.refuse_before_change(plan, state, changes)
        # Containers replaced only because their image is rebuilt wait for the build: a
        # build giving the same image ID (a checkout moved elsewhere, so the declared context
        # path changed) leaves them running, as the engine would (diff.IMAGE_REBUILT).
        deferred = {c.urn for c in changes if rebuilt_image_only(c)}
        self._remove_leaving(removed_first(plan, changes, state.resources), record)
        run = _Up(
            stack=plan.stack,
            record=record,
            changes=by_urn,
            deferred=deferred,
            image_ids={
                s.placeholder: str(state.resources[s.urn].outputs.get("imageId"))
                for s in plan.steps
                if s.placeholder and by_urn[s.urn].op is Op.SAME
            },
        )
        steps = {s.urn: s for s in plan.steps if by_urn[s.urn].op is not Op.SAME}
        self._cancel.clear()
        run_when_ready(
            list(steps),
            plan.needs,
            lambda urn: self._apply(run, steps[urn]),
            cancel=self._cancel,
            also_failed=lambda exc: self.say(f"also failed: {_described(exc)}"),
        )
        return run.applied

    def refuse_before_change(
        self, plan: Plan, state: StackState, changes: Sequence[Change]
    ) -> None:
        """The refusals an up makes before its first change (a NothingChanged naming what is
        in the way); they only read the engine, so `plan` asks them too (infra/apply.py)."""
        # Networks and volumes an interrupted up recorded before their create (`_create`).
        unfinished = {
            urn
            for urn, prior in state.resources.items()
            if prior.type in (NETWORK, VOLUME) and prior.outputs.get(INCOMPLETE)
        }
        # A replaced container's name held by another container than the recorded one: made
        # again by hand since the last up (engine.py `_remove` removes it when it is labelled
        # as the stack's); one that is not the stack's is refused here, before any change.
        replacing = {
            c.urn: state.resources[c.urn].id
            for c in changes
            if c.op is Op.REPLACE
            and c.type == CONTAINER
            and c.urn in state.resources
            and not state.resources[c.urn].outputs.get(INCOMPLETE)  # handled by `_remove`
        }
        with _before_any_change():
            self._refuse_shared_network_names(plan, state)
            self._refuse_name_clashes(
                plan,
                {c.urn for c in changes if c.op is Op.CREATE} | unfinished | set(replacing),
                unfinished,
                replacing,
            )

    def _apply(self, run: _Up, step: Step) -> None:
        """One step of an up: update, or create (replace) the object; recorded when done. Any
        failure of it is an ApplyError naming the object (`_engine_errors`)."""
        with _engine_errors(f"{_kind(step.spec)} {_label(step.spec)}"):
            self._apply_step(run, step)

    def _apply_step(self, run: _Up, step: Step) -> None:
        spec, change = step.spec, run.changes[step.urn]
        replaced = isinstance(spec, ContainerSpec) and change.op is Op.REPLACE
        if replaced and not self._make_way(step, run):
            run.applied.kept.append(_label(spec))
            return
        start = time.monotonic()
        if change.op is Op.UPDATE:
            self._update(step, run.record)
            changed = ", ".join(change.reasons)
            self.say(f"{_kind(spec)} {_label(spec)} updated in place ({changed})")
            return
        object_id, outputs = self._create(run, step, change)
        run.applied.add(spec)
        run.record.put(
            step.urn,
            ResourceState(
                type=step.type, name=change.name, id=object_id, inputs=step.props, outputs=outputs
            ),
        )
        self.say(f"{_kind(spec)} {_label(spec)} ready ({time.monotonic() - start:.1f}s)")

    def _remove_leaving(self, leaving: Sequence[Change], record: _Record) -> None:
        """Remove what goes before the up's steps (removal.py), containers first (Docker
        removes no network with a container on it), then networks, images and volumes; each
        step saved."""
        for kind in (CONTAINER, NETWORK, IMAGE, VOLUME):
            for change in reversed([c for c in leaving if c.type == kind]):
                prior = record.state.resources.get(change.urn)
                if prior is not None:
                    with _engine_errors(f"removing {change.name}"):
                        self._remove(kind, prior, record.state.stack)
                record.drop(change.urn)

    def _create(self, run: _Up, step: Step, change: Change) -> tuple[str, dict[str, Any]]:
        """Create one planned object: its ID and outputs (a built image's ID is also entered
        in `run.image_ids` for the containers that run it)."""
        spec, image_ids = step.spec, run.image_ids
        if isinstance(spec, ImageSpec):
            image_id = self._build(spec, run.stack)
            if step.placeholder:
                image_ids[step.placeholder] = image_id
            return image_id, {"imageId": image_id}

        def created(object_id: str) -> None:
            # Recorded before the engine is asked to create it (by its name, which the engine
            # resolves like an ID), then (a container) by its ID, before its uploads, start and
            # wait: an up interrupted or failed at any point leaves no object the state does not
            # know (the next up refused it as a name clash). Marked INCOMPLETE, the next up
            # replaces it (a volume: takes it over), once it is labelled as the stack's.
            run.record.put(
                step.urn,
                ResourceState(step.type, change.name, object_id, step.props, {INCOMPLETE: True}),
            )

        if isinstance(spec, NetworkSpec | VolumeSpec):
            created(spec.name)
            try:
                if isinstance(spec, NetworkSpec):
                    return str(self.client.networks.create(spec.name, **spec.kwargs).id), {}
                self.client.volumes.create(name=spec.name, **spec.kwargs)
            except APIError:
                run.record.drop(step.urn)  # the engine answered: it created nothing
                raise
            return spec.name, {}
        assert isinstance(spec, ContainerSpec)

        if spec.name:
            created(spec.name)
        try:
            container_id = self._container(spec, image_ids, created)
        except ContainerRefused:
            # The engine answered that it created nothing (a name taken by a container of
            # something else, the image gone): the name must not stay recorded, or the next up
            # would remove whatever holds it as an unfinished container of the stack's.
            run.record.drop(step.urn)
            raise
        return container_id, {"imageId": image_ids.get(spec.image, spec.image)}

    def _update(self, step: Step, record: _Record) -> None:
        """Apply a container's new limits and restart policy to it as it runs (diff.IN_PLACE),
        as pulumi-docker does; the state then records the new declaration."""
        spec = step.spec
        assert isinstance(spec, ContainerSpec)
        prior = record.state.resources[step.urn]
        reply = self.api.update_container(prior.id, **update_kwargs(spec))
        for warning in (reply or {}).get("Warnings") or ():
            self.say(f"container {_label(spec)}: the engine warns: {warning}")
        record.put(
            step.urn, ResourceState(prior.type, prior.name, prior.id, step.props, prior.outputs)
        )

    def _make_way(self, step: Step, run: _Up) -> bool:
        """Remove a replaced container just before its successor is created (True: create
        it), once its image is built and the steps it needs are done: until then it runs.
        One replaced only because its image was rebuilt is kept running when the build gave
        the same image ID (False). One the up removed before its steps (removal.py) is gone."""
        spec = step.spec
        assert isinstance(spec, ContainerSpec)
        prior = run.record.state.resources.get(step.urn)
        if prior is None:
            return True
        if step.urn in run.deferred and run.image_ids.get(spec.image) == prior.outputs.get(
            "imageId"
        ):
            self.say(f"container {_label(spec)} kept: its image was rebuilt to the same image ID")
            return False
        with _engine_errors(f"removing {prior.name}"):
            self._remove(CONTAINER, prior, run.stack)
        run.record.drop(step.urn)
        return True

    def changes(self, plan: Plan, state: StackState) -> list[Change]:
        """`docker_changes` of `plan` against `state` and what the engine holds."""
        missing = self.missing(plan, state)
        return docker_changes(plan, state.resources, missing, self.drifted(plan, state, missing))

    def drifted(self, plan: Plan, state: StackState, missing: frozenset[str]) -> dict[str, Drift]:
        """Recorded containers that run with other limits, restart policy, networks or name
        than both the new declaration and the one the last up applied (changed on the engine
        since: drift.py), by URN. A container whose declaration changed is updated or
        replaced for that anyway (diff.py); only a field changed by hand is named as drift."""
        found: dict[str, Drift] = {}
        for step in plan.steps:
            prior = state.resources.get(step.urn)
            if prior is not None and step.urn in missing:
                if (held := self._stand_in(step.spec, prior)) is not None:
                    found[step.urn] = Drift(replace=(held,))
                continue
            if prior is None:
                continue
            if isinstance(step.spec, ImageSpec):
                if (tag := self._moved_tag(step.spec, prior)) is not None:
                    found[step.urn] = Drift(replace=(f"tag {tag} names another image",))
                continue
            if not isinstance(step.spec, ContainerSpec):
                continue
            with _engine_errors(f"looking up {prior.name}"):
                try:
                    inspected = self.api.inspect_container(prior.id)
                except NotFound:
                    continue  # removed since missing() looked: the next up makes it
            drift = container_drift(step.spec, inspected, prior.inputs)
            if material := self._material_drift(step.spec, inspected):
                drift = Drift(drift.updatable, (*drift.replace, *material))
            if drift:
                found[step.urn] = drift
        return found

    def _stand_in(self, spec: Any, prior: ResourceState) -> str | None:
        """For a recorded container gone from the engine: what holds its declared name now,
        when another container does (removed and made again by hand, e.g. with a capability
        added: attack pass of 2026-12-03), else None. The up removes it when it is labelled
        as the stack's (`_remove_stand_in`), refuses otherwise (`refuse_before_change`)."""
        if not isinstance(spec, ContainerSpec) or not spec.name or prior.outputs.get(INCOMPLETE):
            return None
        with _engine_errors(f"looking up {spec.name}"):
            try:
                held = self.api.inspect_container(spec.name)["Id"]
            except NotFound:
                return None
        if held == prior.id:
            return None  # the recorded one, stopped: missing() counts it gone
        return f"Id: {spec.name} is container {held[:12]}, not the one the last up made"

    def _material_drift(self, spec: ContainerSpec, inspected: Mapping[str, Any]) -> tuple[str, ...]:
        """A material initialiser's volume against its uploads (drift.material_drift): read
        through the exited initialiser, whose one writable mount is the volume. Replaced, the
        initialiser writes it again. Only for the revision it ran: another is replaced anyway."""
        revision = ((inspected.get("Config") or {}).get("Labels") or {}).get(MATERIAL_LABEL)
        if (
            not spec.uploads
            or not revision
            or spec.create["labels"].get(MATERIAL_LABEL) != revision
        ):
            return ()
        targets = [
            m["Destination"]
            for m in inspected.get("Mounts") or []
            if m.get("Type") == "volume" and m.get("RW")
        ]
        if len(targets) != 1:
            return ()
        with _engine_errors(f"reading {spec.name}'s volume"):
            try:
                stream, _stat = self.api.get_archive(inspected["Id"], targets[0])
            except NotFound:
                return ()
            archive = b"".join(stream)
        return material_drift(spec.uploads, str(revision), archive)

    def _moved_tag(self, spec: ImageSpec, prior: ResourceState) -> str | None:
        """The declared tag when it names another image than the one built (`docker tag`
        since): whatever runs the tag would run that one. Built again, it names the build.
        A tag the declaration changed is built anyway (diff.py), not drift."""
        if prior.inputs.get("imageName") != spec.tag:
            return None
        try:
            tagged = self.api.inspect_image(spec.tag)["Id"]
        except NotFound:
            return spec.tag
        return None if tagged == prior.outputs.get("imageId") else spec.tag

    def strangers(self, plan: Plan, state: StackState | None = None) -> list[str]:
        """One line per declared network with containers the stack does not declare attached
        (run there by hand: attack pass of 2026-12-03). They reach every container on it where
        no host firewall rule applies; the up names them and leaves them alone (not the
        stack's to remove). A container `state` records is the stack's own, also renamed by
        hand: the up replaces it (drift.py `Name`), so a plan does not call it a stranger."""
        ours = {s.spec.name for s in plan.steps if isinstance(s.spec, ContainerSpec)}
        recorded = {
            r.id for r in (state.resources.values() if state else ()) if r.type == CONTAINER
        }
        lines = []
        for step in plan.steps:
            if not isinstance(step.spec, NetworkSpec):
                continue
            name = step.spec.name
            with _engine_errors(f"looking up {name}"):
                try:
                    attached = self.api.inspect_network(name).get("Containers") or {}
                except NotFound:
                    continue
            others = sorted(
                str(e.get("Name") or cid[:12])
                for cid, e in attached.items()
                if e.get("Name") not in ours and cid not in recorded
            )
            if others:
                lines.append(
                    f"network {name} has a container the stack does not declare: "
                    f"{', '.join(others)}; it reaches the stack's containers there: remove it, "
                    f"or `docker network disconnect {name} <container>`"
                )
        return lines

    def missing(self, plan: Plan, state: StackState) -> frozenset[str]:
        """URNs of planned objects the state has but the Docker engine no longer does."""
        planned = {s.urn for s in plan.steps}
        left_unfinished = unfinished(plan, state.resources)  # by an up that did not finish
        gone = set(left_unfinished)
        for urn, prior in state.resources.items():
            if urn not in planned or prior.type not in DOCKER_TYPES or urn in left_unfinished:
                continue
            with _engine_errors(f"looking up {prior.name}"):
                if not self._exists(prior):
                    gone.add(urn)
        return frozenset(gone)

    def _exists(self, prior: ResourceState) -> bool:
        """Whether the object is still there. A container declared `mustRun` that is not
        running counts as gone, as pulumi-docker's read reports it (so up recreates it)."""
        lookups: dict[str, Callable[[], Any]] = {
            CONTAINER: lambda: self.api.inspect_container(prior.id),
            NETWORK: lambda: self.api.inspect_network(prior.id),
            VOLUME: lambda: self.api.inspect_volume(prior.id),
            IMAGE: lambda: self.api.inspect_image(str(prior.outputs.get("imageId"))),
        }
        try:
            found = lookups[prior.type]()
        except NotFound:
            return False
        if prior.type == CONTAINER and _must_run(prior.inputs):
            return bool((found.get("State") or {}).get("Running"))
        return True

    def _remove(self, kind: str, prior: ResourceState, stack: str) -> None:
        """Remove a replaced or deleted object; volumes and images are only forgotten. An
        unfinished container may be recorded by the name it was to have (an up interrupted
        before the engine answered its create): whatever holds that name is removed only when
        it is labelled as the stack's."""
        try:
            if kind == CONTAINER:
                if not prior.outputs.get(INCOMPLETE):
                    self._remove_stand_in(prior, stack)
                if prior.outputs.get(INCOMPLETE) and not self._labelled(prior.id, stack):
                    self.say(f"not removing container {prior.id}: not labelled as stack {stack}'s")
                    return
                self._stop_gracefully(prior)
                self.say(f"removing container {prior.name}")
                self.api.remove_container(prior.id, force=True, v=True)
            elif kind == NETWORK:
                network = (
                    self._unfinished_network(prior, stack)
                    if prior.outputs.get(INCOMPLETE)
                    else self.client.networks.get(prior.id)
                )
                if network is None:
                    return
                for cid in network.attrs.get("Containers") or {}:
                    self.say(f"disconnecting container {cid[:12]} from {network.name}")
                    network.disconnect(cid, force=True)
                self.say(f"removing network {prior.name}")
                network.remove()
            elif kind == VOLUME:
                self.say(f"keeping volume {prior.name}: no longer declared; down removes it")
        except NotFound:
            pass  # already gone: the goal of removing it holds

    def _remove_stand_in(self, prior: ResourceState, stack: str) -> None:
        """The recorded container is gone but another, labelled as the stack's, holds its name
        (removed and made again by hand, e.g. with a capability added or a port published):
        removed, and said, so the declared one can be created under the name."""
        try:
            self.api.inspect_container(prior.id)
            return  # the recorded one is there: removed as usual
        except NotFound:
            pass
        try:
            found = self.api.inspect_container(prior.name)
        except NotFound:
            return
        if ((found.get("Config") or {}).get("Labels") or {}).get(STACK_LABEL) != stack:
            return  # not the stack's: refused before the up changed anything
        self.say(
            f"removing container {prior.name} ({found['Id'][:12]}): not the container this "
            f"stack created ({prior.id[:12]}), made by hand since the last up"
        )
        self.api.remove_container(found["Id"], force=True, v=True)

    def _unfinished_network(self, prior: ResourceState, stack: str) -> Any | None:
        """The network an unfinished record (by name: `_create`) stands for: the one of that
        exact name labelled as the stack's, by ID; None (said) when there is none. Looked up
        by name, Docker refuses a name several networks share ("network ... is ambiguous"):
        another network of the name is left alone and named. Two labelled as the stack's: the
        state cannot tell which the interrupted up made, so neither is removed."""
        named = [n for n in self.client.networks.list(names=[prior.id]) if n.name == prior.id]
        ours = [n for n in named if (n.attrs.get("Labels") or {}).get(STACK_LABEL) == stack]
        others = [n for n in named if n not in ours]
        if len(ours) > 1:
            ids = " ".join(n.id[:12] for n in ours)
            raise ApplyError(
                f"network {prior.id}: {len(ours)} networks of that name ({ids}) are labelled as "
                f"stack {stack}'s and the state records the one an interrupted up made by its "
                f"name only; `docker network inspect {ids}` shows what is on them: remove the "
                f"one(s) to go with `docker network rm <ID>` (every one: `docker network rm "
                f"{ids}`), then run up again"
            )
        if others:
            listed = ", ".join(
                f"{n.id[:12]} ({_whose_network(n, stack, recorded=False)})" for n in others
            )
            self.say(f"leaving network {listed} of the same name as {prior.id}: not the stack's")
        if not ours:
            if others:
                self.say(f"not removing network {prior.id}: not labelled as stack {stack}'s")
            return None
        return ours[0]

    def _stop_gracefully(self, prior: ResourceState) -> None:
        """pulumi-docker's delete with `destroyGraceSeconds`: stop first (the stop signal,
        then the grace), so a replaced service ends its in-flight work (the app answers the
        requests it is serving, app/secure_cache/service.py) instead of being killed mid-answer.
        Read from the recorded inputs: the grace declared when it was created applies."""
        grace = destroy_grace_s(prior.name, prior.inputs)
        if grace > 0:
            self.say(f"stopping container {prior.name} (up to {grace}s)")
            start = time.monotonic()
            self.api.stop(prior.id, timeout=grace)
            code = (self.api.inspect_container(prior.id).get("State") or {}).get("ExitCode")
            # 0: it ended on its own within the grace; 137: killed when the grace ran out.
            self.say(
                f"container {prior.name} stopped in {time.monotonic() - start:.1f}s "
                f"(exit code {code})"
            )

    def _labelled(self, container: str, stack: str) -> bool:
        config = self.api.inspect_container(container).get("Config") or {}
        return bool((config.get("Labels") or {}).get(STACK_LABEL) == stack)

    def _refuse_shared_network_names(self, plan: Plan, state: StackState) -> None:
        """Refuse, before the first change, a declared network name that several networks on
        the engine share. Docker 20.10 lets a network be created under a name another already
        has (the API's CheckDuplicate is off unless asked for: the applier asks, other clients
        may not), and then starts no container joined to that name ("network ... is
        ambiguous"): a replaced container would be removed and its successor not started.
        Names the networks' IDs, whose each is, and the removal that is the way on."""
        for step in plan.steps:
            spec = step.spec
            if not isinstance(spec, NetworkSpec):
                continue
            named = [n for n in self.client.networks.list(names=[spec.name]) if n.name == spec.name]
            if len(named) < 2:
                continue
            prior = state.resources.get(step.urn)
            recorded = prior.id if prior is not None and not prior.outputs.get(INCOMPLETE) else None
            ours = next((n for n in named if n.id == recorded), None)
            others = [n for n in named if n is not ours]
            ids = " ".join(n.id[:12] for n in others)
            listed = "; ".join(
                f"{n.id[:12]} ({_whose_network(n, plan.stack, n is ours)})" for n in named
            )
            several = len(others) > 1
            what, keep = (
                (f"the other{'s' if several else ''}", f"keep {ours.id[:12]}")
                if ours is not None
                else ("them", "the up then creates the stack's own")
            )
            raise ApplyError(
                f"{len(named)} networks are named {spec.name}: {listed}. Docker starts no "
                "container joined to a name several networks share: "
                f"remove {what} by ID (`docker network inspect {ids}` shows what is on "
                f"{'them' if several else 'it'}): `docker network rm {ids}`; {keep}; then run "
                "up again"
            )

    def _refuse_name_clashes(
        self,
        plan: Plan,
        creating: set[str],
        unfinished: set[str],
        replacing: Mapping[str, str] | None = None,
    ) -> None:
        """Objects with a name the plan creates: never touch them. One labelled as this stack's
        but unknown to the state was deployed by something else (another checkout, an older
        applier): the stack must be removed with down first. One labelled as this stack's that
        the state records as `unfinished` (created by an up interrupted before it recorded the
        object as done) is the stack's: the up goes on."""
        lookups: list[tuple[str, str, str, Callable[[str], Any]]] = []
        for step in plan.steps:
            spec = step.spec
            if step.urn not in creating:
                continue
            if isinstance(spec, NetworkSpec):
                lookups.append((step.urn, "network", spec.name, self.client.networks.get))
            elif isinstance(spec, VolumeSpec):
                lookups.append((step.urn, "volume", spec.name, self.client.volumes.get))
            elif isinstance(spec, ContainerSpec) and spec.name:
                lookups.append((step.urn, "container", spec.name, self.client.containers.get))
        for urn, kind, name, get in lookups:
            try:
                found = get(name)
            except NotFound:
                continue
            labels = found.attrs.get("Labels") or (found.attrs.get("Config") or {}).get("Labels")
            if (labels or {}).get(STACK_LABEL) == plan.stack and urn in unfinished:
                continue
            if replacing and urn in replacing:
                if found.id == replacing[urn] or (labels or {}).get(STACK_LABEL) == plan.stack:
                    continue  # the recorded one, or its stand-in: `_remove` removes it
                raise ApplyError(
                    f"container {name} is to be replaced, but the container now holding its "
                    f"name ({found.id[:12]}) is not the one the stack created and is not labelled "
                    f"{STACK_LABEL}={plan.stack}; remove it (docker rm -f {name}) or rename it, "
                    "then run up again"
                )
            if (labels or {}).get(STACK_LABEL) == plan.stack:
                # A container holds no data (volumes do), so removing it alone is the way on
                # that keeps the stack's data; `down` removes the volumes too.
                way_on = (
                    f"remove it with `docker rm -f {name}` (its volumes and their data are kept)"
                    if kind == "container"
                    else f"remove the stack with `python -m infra.apply down --stack {plan.stack}`"
                )
                raise ApplyError(
                    f"a {kind} {name} of stack {plan.stack} exists but the stack's state does "
                    "not know it (deployed by another checkout, an older applier, or an up "
                    f"interrupted before this applier recorded objects on creation); {way_on}, "
                    "then up again"
                )
            held = str(getattr(found, "id", None) or name)
            ident = f" (ID {held[:12]})" if kind != "volume" else ""
            whose = (labels or {}).get(STACK_LABEL)
            raise ApplyError(
                f"a {kind} {name}{ident} already exists and is not labelled "
                f"{STACK_LABEL}={plan.stack} ("
                + (f"labelled as stack {whose}'s" if whose else f"no {STACK_LABEL} label")
                + f"); remove it (docker {kind} rm "
                f"{held[:12] if ident else name}) or rename it, then run up again"
            )

    def _build(self, spec: ImageSpec, stack: str) -> str:
        self.say(f"building image {spec.tag} from {spec.build_kwargs['dockerfile']}")
        # Shared with the other builds; `down` removes no parent while any build holds it.
        with building(self.build_lock):
            return self._build_locked(spec, stack)

    def _build_locked(self, spec: ImageSpec, stack: str) -> str:
        image_id: str | None = None
        try:
            # An interrupted up does not wait for the build's next line (infra/applier/schedule.py):
            # nothing is recorded before the stream ends, and the engine drops a build whose
            # client went away.
            with abandonable():
                for chunk in self.api.build(**spec.build_kwargs):
                    self._stop_if_cancelled()
                    if "error" in chunk:
                        raise ApplyError(f"{spec.resource}: docker build failed: {chunk['error']}")
                    line = str(chunk.get("stream", "")).strip()
                    if line.startswith("Step "):
                        # Named: an up builds the app's three images at once, and their
                        # unnamed steps ran together in one log, three of each.
                        self.say(f"  {spec.tag.rsplit(':', 1)[0]}: {line}")
                    aux = chunk.get("aux")
                    if isinstance(aux, dict) and "ID" in aux:
                        image_id = str(aux["ID"])
        except (APIError, BuildError) as exc:
            raise ApplyError(f"{spec.resource}: docker build failed: {exc}") from exc
        image_id = image_id or str(self.api.inspect_image(spec.tag)["Id"])
        labels = self.api.inspect_image(image_id)["Config"].get("Labels") or {}
        if labels.get(STACK_LABEL) != stack:
            # Teardown finds images by label only: do not leave this one behind (its parents
            # stay: build cache, as in `_down`).
            self.client.images.remove(spec.tag, force=True, noprune=True)
            raise ApplyError(
                f"{spec.resource}: image {spec.tag} has no label {STACK_LABEL}={stack}, so "
                "teardown could not find it; end its Dockerfile with `ARG SECURE_REDIS_STACK` and "
                f"`LABEL {STACK_LABEL}=$SECURE_REDIS_STACK`"
            )
        return image_id

    def _container(
        self,
        spec: ContainerSpec,
        image_ids: dict[str, str],
        created: Callable[[str], None] = lambda _cid: None,
    ) -> str:
        api = self.api
        image = image_ids.get(spec.image, spec.image)
        networking = None
        if spec.endpoints:
            first = spec.endpoints[0]
            networking = api.create_networking_config({first.network: _endpoint_config(api, first)})
        try:
            container = api.create_container(
                image,
                name=spec.name,
                host_config=api.create_host_config(**spec.host_config),
                networking_config=networking,
                **spec.create,
            )
        except APIError as exc:
            raise ContainerRefused(
                f"{spec.resource}: docker refused the container: {_why(exc)}"
            ) from exc
        cid = str(container["Id"])
        created(cid)
        for endpoint in spec.endpoints[1:]:
            api.connect_container_to_network(
                cid,
                endpoint.network,
                aliases=list(endpoint.aliases) or None,
                ipv4_address=endpoint.ipv4_address,
                ipv6_address=endpoint.ipv6_address,
            )
        if spec.uploads:
            self._upload(spec, cid)
        life = spec.lifecycle
        if not life.start:
            return cid
        api.start(cid)
        if life.attach:
            self._run_to_completion(spec, cid)
        elif life.must_run:
            self._await_running(spec, cid, life.running_timeout_s)
        if life.wait:
            self._await_healthy(spec, cid, life.wait_timeout_s)
        return cid

    def _upload(self, spec: ContainerSpec, cid: str) -> None:
        """Every upload in one archive: each put_archive costs the engine a mount of the
        container's filesystem (measured on the 2-core build machine: 9 uploads one by one
        1.0-1.2 s, in one archive 0.11-0.15 s; a certificate renewal's `up` refills 35 files
        of five initialisers). The files are those the provider writes one upload after
        another. When the engine refuses the archive, the uploads go one by one, so the error
        names the one refused as the provider's would (a file written twice: same content)."""
        now = time.time()
        try:
            self.api.put_archive(cid, "/", uploads_archive(spec.uploads, mtime=now))
        except APIError:
            pass
        else:
            return
        for upload in spec.uploads:
            try:
                self.api.put_archive(cid, "/", upload_archive(upload, mtime=now))
            except APIError as exc:
                raise ApplyError(
                    f"{spec.resource}: uploading {upload.path} failed ({_why(exc)}); pulumi-docker "
                    "uploads the same way and would fail too"
                ) from exc

    def _run_to_completion(self, spec: ContainerSpec, cid: str) -> None:
        self.say(f"running {spec.name} to completion (attach)")
        deadline = time.monotonic() + _RUN_TO_COMPLETION_S
        while True:
            try:
                code = int(self.api.wait(cid, timeout=_WAIT_SLICE_S)["StatusCode"])
                break
            except RequestException:
                # The slice ended (the SDK reports its read timeout as a ConnectionError) or
                # the engine went away: an inspect tells which (it raises for the latter).
                self.api.inspect_container(cid)
            self._stop_if_cancelled()
            if time.monotonic() > deadline:
                raise ApplyError(
                    f"{spec.resource}: {spec.name} did not exit within {_RUN_TO_COMPLETION_S}s"
                    f"{self._tail(cid)}"
                )
        if code != 0:
            raise ApplyError(
                f"{spec.resource}: {spec.name} exited with code {code}{self._tail(cid)}"
            )

    def _await_running(self, spec: ContainerSpec, cid: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        # Like the provider (containerReadRefreshDelay), look only after a moment, so that a
        # container that exits at once is seen as exited, not as briefly running.
        time.sleep(_RUNNING_CHECK_DELAY_S)
        while True:
            state = self.api.inspect_container(cid)["State"]
            if state.get("Running"):
                return
            if state.get("Status") == "exited" or time.monotonic() > deadline:
                raise ApplyError(
                    f"{spec.resource}: {spec.name} is not running (status {state.get('Status')}, "
                    f"exit code {state.get('ExitCode')}){self._tail(cid)}"
                )
            self._pause()

    def _await_healthy(self, spec: ContainerSpec, cid: str, timeout_s: int) -> None:
        self.say(f"waiting up to {timeout_s}s for {spec.name} to report healthy")
        start = time.monotonic()
        while True:
            state = self.api.inspect_container(cid)["State"]
            health = (state.get("Health") or {}).get("Status")
            if health is None:
                raise ApplyError(
                    f"{spec.resource}: wait is true but {spec.name} has no health check"
                )
            if health == "healthy":
                self.say(f"{spec.name} healthy after {time.monotonic() - start:.1f}s")
                return
            if health == "unhealthy" or not state.get("Running"):
                status = health if state.get("Running") else "not running"
                raise ApplyError(f"{spec.resource}: {spec.name} is {status}{self._tail(cid)}")
            if time.monotonic() - start > timeout_s:
                raise ApplyError(
                    f"{spec.resource}: {spec.name} was not healthy within waitTimeout={timeout_s}s"
                    f"{self._tail(cid)}"
                )
            self._pause()

    def _pause(self) -> None:
        """One poll interval of a wait; Cancelled when the up was interrupted meanwhile."""
        if self._cancel.wait(self.poll_interval_s):
            raise Cancelled

    def _stop_if_cancelled(self) -> None:
        if self._cancel.is_set():
            raise Cancelled

    def _tail(self, cid: str) -> str:
        """The container's last log lines: the services log no secret (event=... lines)."""
        try:
            logs = self.api.logs(cid, tail=_LOG_TAIL).decode(errors="replace").strip()
        except APIError:
            return ""
        # A taken-over container writes its log: shown escaped (infra/cli.py printable).
        shown = printable(logs, keep_newlines=True)
        return f"; its last log lines:\n{shown}" if logs else "; it logged nothing"

    # -- down ------------------------------------------------------------------------------------

    def host_conflicts(self, plan: Plan) -> list[str]:
        """What another stack's containers on this engine already hold that `plan` declares:
        a uid block or a published host port; and a declared host port something else on this
        host listens on (infra/applier/host_conflicts.py)."""
        uids: set[int] = set()
        bound: set[tuple[str, int]] = set()
        for step in plan.steps:
            if isinstance(step.spec, ContainerSpec):
                if (uid := user_uid(step.spec.create.get("user"))) is not None:
                    uids.add(uid)
                for bindings in (step.spec.host_config.get("port_bindings") or {}).values():
                    bound.update((ip, int(external)) for ip, external in bindings if external)
        ports = {port for _ip, port in bound}
        with _engine_errors("listing the other stacks' containers"):
            held = self.held_by_stacks()
        # The engine publishes on this host only when it is this host's (its unix socket):
        # trying a remote engine's ports here would prove nothing.
        local = self.api.base_url == LOCAL_ENGINE_URL
        probe = ports_to_probe(plan.stack, ports, held) if local else set()
        in_use = {port for ip, port in bound if port in probe and host_port_taken(ip, port)}
        return conflicts(plan.stack, uids, ports, held, in_use)

    def held_by_stacks(self) -> list[Held]:
        """Every container a stack deployed (labelled with a stack and one of the program's
        roles: the e2e suite's probe containers, role `probe`, run as a stack's uid on purpose
        and belong to none), running or not: its uid and published host ports."""
        roles = {role.value for role in Role}
        held: list[Held] = []
        for summary in self.api.containers(all=True, filters={"label": STACK_LABEL}):
            labels = summary.get("Labels") or {}
            if labels.get(ROLE_LABEL) not in roles:
                continue
            try:
                found = self.api.inspect_container(summary["Id"])
            except NotFound:
                continue  # removed since the listing
            bindings = (found.get("HostConfig") or {}).get("PortBindings") or {}
            held.append(
                Held(
                    stack=str(labels.get(STACK_LABEL)),
                    container=str(found.get("Name", "")).lstrip("/"),
                    uid=user_uid((found.get("Config") or {}).get("User")),
                    host_ports=frozenset(
                        int(b["HostPort"])
                        for entries in bindings.values()
                        for b in entries or ()
                        if str(b.get("HostPort") or "").isdigit()
                    ),
                    running=bool((found.get("State") or {}).get("Running")),
                )
            )
        return held

    def find(self, stack: str) -> StackObjects:
        label = {"label": f"{STACK_LABEL}={stack}"}
        return StackObjects(
            containers=sorted(c.name for c in self.client.containers.list(all=True, filters=label)),
            networks=sorted(n.name for n in self.client.networks.list(filters=label)),
            volumes=sorted(v.name for v in self.client.volumes.list(filters=label)),
            images=sorted(
                (i.tags[0] if i.tags else i.short_id)
                for i in self.client.images.list(filters=label)
            ),
        )

    def down(
        self,
        stack: str,
        *,
        quiet: bool = False,
        keep_images: bool = False,
        recorded: StackState | None = None,
    ) -> StackObjects:
        """Remove every container, network, volume and image labelled as `stack`'s (not the
        untagged images an image was built on: build cache, see `_down`). The
        containers `recorded` (the stack's state) declares with `destroyGraceSeconds` are
        first stopped with that grace, newest first, as pulumi-docker deletes them."""
        with _engine_errors(f"removing stack {stack}"):
            return self._down(stack, quiet=quiet, keep_images=keep_images, recorded=recorded)

    def _down(
        self, stack: str, *, quiet: bool, keep_images: bool, recorded: StackState | None
    ) -> StackObjects:
        label = {"label": f"{STACK_LABEL}={stack}"}
        removed = StackObjects()
        # The stop signal and the grace before the force: the app ends the requests it is
        # serving and closes its Redis connections (event=service_stopped); newest first, so
        # the app stops while the Redis it was created after still answers (`pulumi destroy`
        # deletes dependents first). Without a state nothing says which container declared a
        # grace: they are removed at once, as before.
        created = [
            r for r in (recorded.resources.values() if recorded else ()) if r.type == CONTAINER
        ]
        for prior in reversed(created):
            if not prior.outputs.get(INCOMPLETE):
                with contextlib.suppress(NotFound):  # removed by hand since the last up
                    self._stop_gracefully(prior)
        for container in self.client.containers.list(all=True, filters=label):
            container.remove(force=True, v=True)
            removed.containers.append(container.name)
        for network in self.client.networks.list(filters=label):
            network.reload()
            for cid in network.attrs.get("Containers") or {}:
                # A container of another stack or a leftover probe: it only loses this network.
                self.say(f"disconnecting container {cid[:12]} from {network.name}")
                network.disconnect(cid, force=True)
            network.remove()
            removed.networks.append(network.name)
        for volume in self.client.volumes.list(filters=label):
            try:
                volume.remove(force=True)
            except APIError as exc:
                users = self.client.containers.list(all=True, filters={"volume": volume.name})
                if not users:
                    raise ApplyError(
                        f"volume {volume.name} could not be removed: {_why(exc)}"
                    ) from exc
                raise ApplyError(
                    f"volume {volume.name} is in use by {', '.join(c.name for c in users)} "
                    f"(not part of stack {stack}); remove those containers and run down again"
                ) from exc
            removed.volumes.append(volume.name)
        parents: list[str] = []
        for image in [] if keep_images else self.client.images.list(filters=label):
            removed.images.append(image.tags[0] if image.tags else image.short_id)
            parents += self._untagged_parents(image.id)
            # Not its untagged parents (`docker rmi --no-prune`): the images of the build's
            # steps are build cache every build of the same steps shares, another stack's or
            # scripts/build-app-image.sh --cache-only's, and a build that found one in its
            # cache goes on from it; pruned, a build running beside this down could lose the
            # image its next step starts from. `_remove_orphaned_parents` removes them only
            # while no build runs.
            self.client.images.remove(image.id, force=True, noprune=True)
        if not quiet:
            self.say(
                f"removed {removed.describe()}" if not removed.empty() else "nothing to remove"
            )
        if parents:
            self._remove_orphaned_parents(parents, quiet=quiet)
        return removed

    def _orphan_removed(
        self,
        parent: str,
        images: dict[str, dict[str, Any]],
        children: dict[str, int],
        in_use: set[str],
    ) -> bool:
        """Remove `parent` if it is an orphan (see `_remove_orphaned_parents`): True when it
        went (`children` then counts one child less for its own parent)."""
        found = images.get(parent)
        if found is None or children.get(parent) or parent in in_use or _named(found):
            return False  # a child: another image's chain (kept, with all below it)
        try:
            self.api.remove_image(parent, noprune=True)
        except NotFound:
            return False
        except APIError as exc:  # a container or image made since the listing
            self.say(f"kept untagged image {parent[7:19]}: {_why(exc)}")
            return False
        grand = str(found.get("ParentId") or "")
        if grand:
            children[grand] -= 1
        return True

    def _untagged_parents(self, image_id: str) -> list[str]:
        """The untagged images `image_id` was built on (the legacy builder's one per step),
        nearest first, up to the first tagged one (a base image, or any image someone named)."""
        chain: list[str] = []
        parent = self.api.inspect_image(image_id).get("Parent")
        while parent:  # each image inspected once: a parent's own parent is in its inspect
            found = self.api.inspect_image(parent)
            if _named(found):
                break
            chain.append(str(parent))
            parent = found.get("Parent")
        return chain

    def _remove_orphaned_parents(self, parents: Sequence[str], *, quiet: bool) -> None:
        """Remove the untagged parents the stack's removed images leave with no child: each,
        nearest first, only while no image on the engine has it as its parent, no container
        (of any stack, running or not) runs it, and nobody named it; and only while holding
        the image-build lock exclusively (build_lock.py): a running build can be about to go
        on from any of them. A build holding it: all are kept, and the message says how to
        reclaim them later. Says how many were removed and the space their own layers took."""
        try:
            self._remove_orphans_locked(parents, quiet=quiet)
        except OSError as exc:  # the lock file: its errno and path
            self.say(
                f"kept the {len(set(parents))} untagged parent images of the removed images: "
                f"the build lock cannot be opened ({exc}); `docker image prune` reclaims them "
                "once no build runs"
            )

    def _remove_orphans_locked(self, parents: Sequence[str], *, quiet: bool) -> None:
        with no_build_running(self.build_lock) as free:
            if not free:
                self.say(
                    f"kept the {len(set(parents))} untagged parent images of the removed images "
                    "(build cache): an image build is running and may go on from them; "
                    "`docker image prune` reclaims them once no build runs"
                )
                return
            # One listing, then kept current as parents go: under the lock no build adds any.
            images = {str(i["Id"]): i for i in self.api.images(all=True)}
            children: dict[str, int] = {}
            for found in images.values():
                if found.get("ParentId"):
                    children[found["ParentId"]] = children.get(found["ParentId"], 0) + 1
            in_use = {str(c.get("ImageID")) for c in self.api.containers(all=True)}
            freed, freed_bytes = 0, 0
            pending = list(dict.fromkeys(parents))  # nearest first, each once
            while True:  # again while one goes: two removed images may share a parent
                left = [p for p in pending if not self._orphan_removed(p, images, children, in_use)]
                for parent in set(pending) - set(left):
                    found = images[parent]
                    grand = str(found.get("ParentId") or "")
                    own = int(found.get("Size") or 0) - int(
                        (images.get(grand) or {}).get("Size") or 0
                    )
                    freed, freed_bytes = freed + 1, freed_bytes + max(own, 0)
                if left == pending:
                    break
                pending = left
        if not quiet or freed:
            self.say(
                f"removed {freed} untagged parent images the removed images were the last "
                f"child of ({freed_bytes / 1e6:.1f} MB of their own layers); kept "
                f"{len(set(parents)) - freed} that other images are built on or containers run"
            )


def _whose_network(network: Any, stack: str, recorded: bool) -> str:
    """Whose a network of a shared name is, for the refusal naming it."""
    if recorded:
        return "the stack's, the one its state records"
    holder = (network.attrs.get("Labels") or {}).get(STACK_LABEL)
    if holder == stack:
        return f"labelled as stack {stack}'s, not in its state"
    return f"labelled {STACK_LABEL}={holder}" if holder else f"no {STACK_LABEL} label"


def _named(image: dict[str, Any]) -> bool:
    """Whether someone named the image (a tag, or a digest it was pulled by): not cache."""
    tags = [t for t in image.get("RepoTags") or () if t != "<none>:<none>"]
    digests = [d for d in image.get("RepoDigests") or () if not d.startswith("<none>@")]
    return bool(tags or digests)


def host_port_taken(ip: str, port: int) -> bool:
    """Whether a socket on this host listens on `ip`:`port` (or on every address), so the
    engine could not publish a container's port there ("bind: address already in use").
    SO_REUSEADDR, as the engine's own proxy binds: a port left only with connections in
    TIME_WAIT (a replaced app's) is free, only a listener counts."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((ip or ("::" if family == socket.AF_INET6 else "0.0.0.0"), port))  # noqa: S104
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def _must_run(props: dict[str, Any]) -> bool:
    """pulumi-docker's defaults: mustRun true, start true; an attached one-shot exits."""
    return bool(props.get("mustRun", True) and props.get("start", True) and not props.get("attach"))


@contextmanager
def _engine_errors(what: str) -> Iterator[None]:
    """Any failure of the work on an object -> an ApplyError naming the object, so that the
    command ends in one line whatever raised (infra/apply.py): Docker SDK and transport
    errors (an engine that goes away mid-build raises urllib3's, not requests'), an OSError
    (a build context's file, the state's disk), and anything else by its type only (its text
    could carry a value). Cancelled (an interrupted up) goes through as it is."""
    try:
        yield
    except (ApplyError, Cancelled):
        raise
    except APIError as exc:
        raise ApplyError(f"{what}: the Docker engine refused: {_why(exc)}") from exc
    except (DockerException, RequestException, HTTPError) as exc:
        raise ApplyError(
            f"{what}: no answer from the Docker engine ({type(exc).__name__}); check `docker info`"
        ) from exc
    except OSError as exc:  # its text is an errno's and a path
        raise ApplyError(f"{what}: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:
        raise ApplyError(
            f"{what}: failed with {type(exc).__name__}, an error the applier does not handle "
            "(a bug: report it with the command's output)"
        ) from exc


@contextmanager
def _before_any_change() -> Iterator[None]:
    """The checks an up makes before its first change: whatever refuses there (or fails on
    the engine) is a NothingChanged, the one place that decides an up's failure changed
    nothing (infra/apply.py then says no more)."""
    try:
        with _engine_errors("checking the engine before the first change"):
            yield
    except (NothingChanged, WriteRefused):
        raise
    except ApplyError as exc:
        raise NothingChanged(str(exc)) from exc


def _endpoint_config(api: Any, endpoint: Any) -> Any:
    return api.create_endpoint_config(
        aliases=list(endpoint.aliases) or None,
        ipv4_address=endpoint.ipv4_address,
        ipv6_address=endpoint.ipv6_address,
    )


def _one_at_a_time(say: Say) -> Say:
    """`say` for the threads of an up's steps, one message at a time: print writes a line and
    its newline apart, and two steps' lines ran together on the first up of a stack
    ("... from app/Dockerfileapply: building image ..."), as would any `say` that writes in
    parts."""
    lock = threading.Lock()

    def locked(message: str) -> None:
        with lock:
            say(message)

    return locked


def _described(exc: BaseException) -> str:
    """A failure for a one-line report: an ApplyError's own message (they name no secret),
    otherwise only its type."""
    return str(exc) if isinstance(exc, ApplyError) else type(exc).__name__


def _why(exc: APIError) -> str:
    return str(exc.explanation or exc)


def _kind(spec: Any) -> str:
    return {
        ImageSpec: "image",
        NetworkSpec: "network",
        VolumeSpec: "volume",
        ContainerSpec: "container",
    }[type(spec)]


def _label(spec: Any) -> str:
    return str(spec.tag if isinstance(spec, ImageSpec) else (spec.name or spec.resource))


__all__ = [
    "INCOMPLETE",
    "LocalApplier",
    "StackObjects",
    "WriteRefused",
    "host_port_taken",
    "reading_only",
]
