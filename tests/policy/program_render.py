"""Run a pulumi-docker program written in Python under Pulumi's mock runtime; return its records.

The program runs as under `pulumi up`: the pulumi-docker SDK turns its arguments into the
engine's camelCase properties and its secrets into secret values, and infra/mock_engine.py's
RecordingMonitor stands in for the engine. One thing the engine adds that the monitor does not:
a `RemoteImage`'s computed `imageId` and `repoDigest` (the docker provider reports them once it
has pulled the image), which programs hand to their containers. They are derived here from the
image name, so a container that uses them carries a value of the right shape.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pulumi
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.proto import resource_pb2

from infra.mock_engine import RecordingMonitor
from policies.records import Record
from policies.rules._model import REMOTE_IMAGE


class _PullingMonitor(RecordingMonitor):
    """The recording monitor, with a RemoteImage's pulled image ID and digest as outputs."""

    def RegisterResource(self, request: Any) -> Any:
        if request.type == REMOTE_IMAGE:
            pulled = resource_pb2.RegisterResourceRequest()
            pulled.CopyFrom(request)
            reference = str(request.object["name"]) if "name" in request.object else ""
            digest = hashlib.sha256(reference.encode()).hexdigest()
            repository = reference.split("@", 1)[0].rsplit(":", 1)[0] if reference else "image"
            pulled.object["imageId"] = f"sha256:{digest}"
            pulled.object["repoDigest"] = f"{repository}@sha256:{digest}"
            request = pulled
        return super().RegisterResource(request)


def render_program(program: Callable[[], None], *, project: str, stack: str) -> list[Record]:
    """Every resource `program` declares, as the records the engine hands the pack at `up`."""
    monitor = _PullingMonitor()
    runtime_settings.ROOT.set(None)  # a fresh root stack resource for this program
    pulumi.runtime.set_mocks(
        monitor.mocks, project=project, stack=stack, preview=False, monitor=monitor
    )
    pulumi.runtime.test(program)()  # type: ignore[no-untyped-call]
    if monitor.refused:
        raise monitor.refused[0]
    return [
        Record(r.type, r.name, r.props, r.urn, dict(r.options), tuple(r.secret_paths))
        for r in monitor.registrations
        if r.custom
    ]
