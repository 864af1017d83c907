"""The I/O half of the local applier: create a planned stack on the local Docker engine with
the docker SDK, or remove every object labelled as the stack's.

Containers are created the way pulumi-docker creates them: create, join the networks, upload
each `uploads` file as its own tar extracted at "/" (so it fails where the provider fails, e.g.
on a read-only root filesystem), start, then honour `attach` (run to completion; a non-zero
exit code is an error), `mustRun` and `wait` (healthy within `waitTimeout`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import docker
from docker.errors import APIError, BuildError, DockerException, NotFound
from requests.exceptions import RequestException

from infra.applier.errors import ApplyError
from infra.applier.plan import Plan
from infra.applier.translate import (
    ContainerSpec,
    ImageSpec,
    NetworkSpec,
    VolumeSpec,
    upload_archive,
)
from infra.naming import STACK_LABEL

Say = Callable[[str], None]
_LOG_TAIL: Final = 15
_RUNNING_CHECK_DELAY_S: Final = 0.1


@dataclass
class StackObjects:
    """Docker objects labelled `io.secure-redis.stack=<stack>`, by kind (names or tags)."""

    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)

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


class LocalApplier:
    def __init__(
        self, client: docker.DockerClient, say: Say = print, poll_interval_s: float = 0.5
    ) -> None:
        self.client = client
        self.api = client.api
        self.say = say
        self.poll_interval_s = poll_interval_s

    # -- up ------------------------------------------------------------------------------------

    def up(self, plan: Plan) -> StackObjects:
        """Recreate the stack: remove what is labelled as it, then create every planned object.

        Images are rebuilt, not removed: an unchanged build context is then a build-cache hit.
        (Removing an image also prunes the cached layers below it.) `down` removes them all.
        """
        previous = self.find(plan.stack)
        previous.images = []
        if not previous.empty():
            self.say(f"recreating: removing the previous deployment ({previous.describe()})")
            self.down(plan.stack, quiet=True, keep_images=True)
        self._refuse_name_clashes(plan)
        created = StackObjects()
        image_ids: dict[str, str] = {}
        for step in plan.steps:
            spec = step.spec
            start = time.monotonic()
            with _engine_errors(f"{_kind(spec)} {_label(spec)}"):
                if isinstance(spec, ImageSpec):
                    image_id = self._build(spec, plan.stack)
                    if step.placeholder:
                        image_ids[step.placeholder] = image_id
                    created.images.append(spec.tag)
                elif isinstance(spec, NetworkSpec):
                    self.client.networks.create(spec.name, **spec.kwargs)
                    created.networks.append(spec.name)
                elif isinstance(spec, VolumeSpec):
                    self.client.volumes.create(name=spec.name, **spec.kwargs)
                    created.volumes.append(spec.name)
                else:
                    self._container(spec, image_ids)
                    created.containers.append(spec.name or spec.resource)
            self.say(f"{_kind(spec)} {_label(spec)} ready ({time.monotonic() - start:.1f}s)")
        return created

    def _refuse_name_clashes(self, plan: Plan) -> None:
        """Objects with a planned name that are not labelled as this stack's: never touch them."""
        lookups: list[tuple[str, str, Callable[[str], Any]]] = []
        for spec in (s.spec for s in plan.steps):
            if isinstance(spec, NetworkSpec):
                lookups.append(("network", spec.name, self.client.networks.get))
            elif isinstance(spec, VolumeSpec):
                lookups.append(("volume", spec.name, self.client.volumes.get))
            elif isinstance(spec, ContainerSpec) and spec.name:
                lookups.append(("container", spec.name, self.client.containers.get))
        for kind, name, get in lookups:
            try:
                get(name)
            except NotFound:
                continue
            raise ApplyError(
                f"a {kind} {name} already exists and is not labelled {STACK_LABEL}={plan.stack}; "
                f"remove it (docker {kind} rm {name}) or rename it, then run up again"
            )

    def _build(self, spec: ImageSpec, stack: str) -> str:
        self.say(f"building image {spec.tag} from {spec.build_kwargs['dockerfile']}")
        image_id: str | None = None
        try:
            for chunk in self.api.build(**spec.build_kwargs):
                if "error" in chunk:
                    raise ApplyError(f"{spec.resource}: docker build failed: {chunk['error']}")
                line = str(chunk.get("stream", "")).strip()
                if line.startswith("Step "):
                    self.say(f"  {line}")
                aux = chunk.get("aux")
                if isinstance(aux, dict) and "ID" in aux:
                    image_id = str(aux["ID"])
        except (APIError, BuildError) as exc:
            raise ApplyError(f"{spec.resource}: docker build failed: {exc}") from exc
        image_id = image_id or str(self.api.inspect_image(spec.tag)["Id"])
        labels = self.api.inspect_image(image_id)["Config"].get("Labels") or {}
        if labels.get(STACK_LABEL) != stack:
            # Teardown finds images by label only: do not leave this one behind.
            self.client.images.remove(spec.tag, force=True)
            raise ApplyError(
                f"{spec.resource}: image {spec.tag} has no label {STACK_LABEL}={stack}, so "
                "teardown could not find it; end its Dockerfile with `ARG SECURE_REDIS_STACK` and "
                f"`LABEL {STACK_LABEL}=$SECURE_REDIS_STACK`"
            )
        return image_id

    def _container(self, spec: ContainerSpec, image_ids: dict[str, str]) -> None:
        api = self.api
        image = image_ids.get(spec.image, spec.image)
        networking = None
        if spec.endpoints:
            first = spec.endpoints[0]
            networking = api.create_networking_config({first.network: _endpoint_config(api, first)})
        try:
            created = api.create_container(
                image,
                name=spec.name,
                host_config=api.create_host_config(**spec.host_config),
                networking_config=networking,
                **spec.create,
            )
        except APIError as exc:
            raise ApplyError(f"{spec.resource}: docker refused the container: {_why(exc)}") from exc
        cid = str(created["Id"])
        for endpoint in spec.endpoints[1:]:
            api.connect_container_to_network(
                cid,
                endpoint.network,
                aliases=list(endpoint.aliases) or None,
                ipv4_address=endpoint.ipv4_address,
                ipv6_address=endpoint.ipv6_address,
            )
        for upload in spec.uploads:
            try:
                api.put_archive(cid, "/", upload_archive(upload, mtime=time.time()))
            except APIError as exc:
                raise ApplyError(
                    f"{spec.resource}: uploading {upload.path} failed ({_why(exc)}); pulumi-docker "
                    "uploads the same way and would fail too"
                ) from exc
        life = spec.lifecycle
        if not life.start:
            return
        api.start(cid)
        if life.attach:
            self._run_to_completion(spec, cid)
        elif life.must_run:
            self._await_running(spec, cid, life.running_timeout_s)
        if life.wait:
            self._await_healthy(spec, cid, life.wait_timeout_s)

    def _run_to_completion(self, spec: ContainerSpec, cid: str) -> None:
        self.say(f"running {spec.name} to completion (attach)")
        code = int(self.api.wait(cid, timeout=600)["StatusCode"])
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
            time.sleep(self.poll_interval_s)

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
            time.sleep(self.poll_interval_s)

    def _tail(self, cid: str) -> str:
        """The container's last log lines: the services log no secret (event=... lines)."""
        try:
            logs = self.api.logs(cid, tail=_LOG_TAIL).decode(errors="replace").strip()
        except APIError:
            return ""
        return f"; its last log lines:\n{logs}" if logs else "; it logged nothing"

    # -- down ------------------------------------------------------------------------------------

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

    def down(self, stack: str, *, quiet: bool = False, keep_images: bool = False) -> StackObjects:
        """Remove every container, network, volume and image labelled as `stack`'s."""
        with _engine_errors(f"removing stack {stack}"):
            return self._down(stack, quiet=quiet, keep_images=keep_images)

    def _down(self, stack: str, *, quiet: bool, keep_images: bool) -> StackObjects:
        label = {"label": f"{STACK_LABEL}={stack}"}
        removed = StackObjects()
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
        for image in [] if keep_images else self.client.images.list(filters=label):
            removed.images.append(image.tags[0] if image.tags else image.short_id)
            self.client.images.remove(image.id, force=True)
        if not quiet:
            self.say(
                f"removed {removed.describe()}" if not removed.empty() else "nothing to remove"
            )
        return removed


@contextmanager
def _engine_errors(what: str) -> Iterator[None]:
    """Docker SDK and transport errors -> an ApplyError naming the object being worked on."""
    try:
        yield
    except ApplyError:
        raise
    except APIError as exc:
        raise ApplyError(f"{what}: the Docker engine refused: {_why(exc)}") from exc
    except (DockerException, RequestException) as exc:
        raise ApplyError(
            f"{what}: no answer from the Docker engine ({type(exc).__name__}); check `docker info`"
        ) from exc


def _endpoint_config(api: Any, endpoint: Any) -> Any:
    return api.create_endpoint_config(
        aliases=list(endpoint.aliases) or None,
        ipv4_address=endpoint.ipv4_address,
        ipv6_address=endpoint.ipv6_address,
    )


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


__all__ = ["LocalApplier", "StackObjects"]
