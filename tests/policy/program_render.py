"""Run a pulumi-docker program written in Python under Pulumi's mock runtime; return its records.

The program runs as under `pulumi up`: the pulumi-docker SDK turns its arguments into the
engine's camelCase properties and its secrets into secret values, and infra/mock_engine.py's
RecordingMonitor stands in for the engine. Two things the engine adds that the monitor does not,
derived here so a value a program passes on has the right shape:
- a `RemoteImage`'s `imageId` and `repoDigest` (the docker provider reports them once it has
  pulled the image), which programs hand to their containers;
- the auto-name of a container, network, volume or Swarm service declared without `name`
  (`<logical name>-<7 hex>`, as Pulumi names resources), which containers join and mount;
- a `Volume`'s ID, which is its Docker name (Docker names a volume by it; the provider takes
  it as the ID), so a program that mounts `volume.id` mounts the volume it declares.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from typing import Any

import pulumi
from pulumi.runtime.proto import resource_pb2

from infra.mock_engine import RecordingMonitor
from policies.records import Record
from policies.rules._model import CONTAINER, NETWORK, REMOTE_IMAGE, SERVICE, VOLUME

_AUTO_NAMED = frozenset({CONTAINER, NETWORK, VOLUME, SERVICE})


class _EngineMonitor(RecordingMonitor):
    """The recording monitor, plus what the engine and the docker provider compute."""

    def RegisterResource(self, request: Any) -> Any:
        if request.type == REMOTE_IMAGE:
            request = _copy(request)
            reference = str(request.object["name"]) if "name" in request.object else ""
            digest = hashlib.sha256(reference.encode()).hexdigest()
            repository = reference.split("@", 1)[0].rsplit(":", 1)[0] if reference else "image"
            request.object["imageId"] = f"sha256:{digest}"
            request.object["repoDigest"] = f"{repository}@sha256:{digest}"
        elif request.type in _AUTO_NAMED and "name" not in request.object:
            request = _copy(request)
            suffix = hashlib.sha256(f"{request.type}::{request.name}".encode()).hexdigest()[:7]
            request.object["name"] = f"{request.name}-{suffix}"
        response = super().RegisterResource(request)
        if request.type == VOLUME:
            response = self._identified_by_name(response)
        return response

    def _identified_by_name(self, response: Any) -> Any:
        # By URN: the engine's registrations arrive on several threads at once.
        with self._lock:
            index = next(i for i, r in enumerate(self.registrations) if r.urn == response.urn)
            named = dataclasses.replace(
                self.registrations[index], id=str(self.registrations[index].props["name"])
            )
            self.registrations[index] = named
            entry = self.resources[named.urn]
            self.resources[named.urn] = type(entry)(entry.urn, named.id, entry.state)
        identified = resource_pb2.RegisterResourceResponse()
        identified.CopyFrom(response)
        identified.id = named.id
        return identified


def _copy(request: Any) -> Any:
    copied = resource_pb2.RegisterResourceRequest()
    copied.CopyFrom(request)
    return copied


def render_program(program: Callable[[], None], *, project: str, stack: str) -> list[Record]:
    """Every resource `program` declares, as the records the engine hands the pack at `up`."""
    monitor = _EngineMonitor()
    monitor.install(project=project, stack=stack)
    pulumi.runtime.test(program)()  # type: ignore[no-untyped-call]
    if monitor.refused:
        raise monitor.refused[0]
    return [
        Record(r.type, r.name, r.props, r.urn, dict(r.options), tuple(r.secret_paths))
        for r in monitor.registrations
        if r.custom
    ]
