"""Pulumi's own dynamic-provider host, started the way the engine starts it, and a gRPC client.

The engine runs the `pulumi-resource-pulumi-python` launcher (shipped with the Pulumi CLI, not
with the Python SDK, so it is not installed here) in the program's directory (`main: infra/`),
with the project's `virtualenv` in PULUMI_RUNTIME_VIRTUALENV. The launcher makes a relative
path absolute against its working directory, requires `<venv>/bin/python`, puts `<venv>/bin`
first on PATH, unsets PYTHONHOME, and runs `<venv>/bin/python -u -m pulumi.dynamic <engine>`.
`launch` does exactly that, so `virtualenv: .venv` in Pulumi.yaml is looked up as infra/.venv
(pulumi/pulumi#7061; scripts/bootstrap.sh links it to the repository's .venv).

The host prints its port on the first line and never connects to the engine address; it is
killed with its whole process group.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import grpc
from google.protobuf import struct_pb2
from pulumi.dynamic import ResourceProvider
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from infra.providers._common import PROVIDER_KEY
from infra.settings import REPO_ROOT

PROGRAM_DIR: Final = REPO_ROOT / "infra"  # Pulumi.yaml: main: infra/
VIRTUALENV: Final = ".venv"  # Pulumi.yaml: runtime.options.virtualenv
# Nothing listens here: the host is given an engine address but never dials it.
ENGINE_ADDRESS: Final = "127.0.0.1:1"
_START_TIMEOUT_S: Final = 60


class LauncherError(RuntimeError):
    """The launcher would refuse to start the host (no virtualenv where it looks)."""


def launcher_python(cwd: Path, virtualenv: str) -> Path:
    """The interpreter the launcher runs: `virtualenv` made absolute against `cwd`."""
    venv = virtualenv.rstrip("/")
    root = Path(venv) if venv.startswith("/") else cwd / venv
    python = root / "bin" / "python"
    if not python.is_file():
        raise LauncherError(f"{root} doesn't appear to be a virtual environment")
    return python


@contextmanager
def launch(cwd: Path = PROGRAM_DIR, virtualenv: str = VIRTUALENV) -> Iterator[ProviderHost]:
    python = launcher_python(cwd, virtualenv)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH")}
    env["PATH"] = f"{python.parent}:{env.get('PATH', '')}"
    env["PULUMI_RUNTIME_VIRTUALENV"] = virtualenv
    proc = subprocess.Popen(
        [str(python), "-u", "-m", "pulumi.dynamic", ENGINE_ADDRESS],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().decode().strip()
        if not first.isdigit():
            proc.kill()
            _, err = proc.communicate(timeout=_START_TIMEOUT_S)
            raise LauncherError(f"the provider host did not start: {err.decode()[-2000:]}")
        channel = grpc.insecure_channel(f"127.0.0.1:{first}")
        grpc.channel_ready_future(channel).result(timeout=_START_TIMEOUT_S)
        try:
            yield ProviderHost(provider_pb2_grpc.ResourceProviderStub(channel), python)
        finally:
            channel.close()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=_START_TIMEOUT_S)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@dataclass(frozen=True)
class DiffAnswer:
    changes: int
    replaces: tuple[str, ...]
    delete_before_replace: bool

    @property
    def none(self) -> bool:
        return self.changes == provider_pb2.DiffResponse.DIFF_NONE


@dataclass(frozen=True)
class ProviderHost:
    """The ResourceProvider calls the engine makes for a dynamic resource, with what it sends:
    `__provider` in every property map, plain values (acceptSecrets=False: the engine strips
    secrets), numbers as doubles."""

    stub: provider_pb2_grpc.ResourceProviderStub
    python: Path

    def configure(self) -> bool:
        """Whether the host accepts secrets."""
        answer = self.stub.Configure(provider_pb2.ConfigureRequest(args=struct({})))
        return bool(answer.acceptSecrets)

    def check(
        self, provider: ResourceProvider, olds: dict[str, Any], news: dict[str, Any]
    ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        answer = self.stub.Check(
            provider_pb2.CheckRequest(
                urn=URN,
                olds=struct(with_provider(provider, olds) if olds else {}),
                news=struct(with_provider(provider, news)),
            )
        )
        failures = [(f.property, f.reason) for f in answer.failures]
        return plain(answer.inputs), failures

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffAnswer:
        answer = self.stub.Diff(
            provider_pb2.DiffRequest(id=id_, urn=URN, olds=struct(olds), news=struct(news))
        )
        return DiffAnswer(answer.changes, tuple(answer.replaces), answer.deleteBeforeReplace)

    def create(self, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        answer = self.stub.Create(provider_pb2.CreateRequest(urn=URN, properties=struct(inputs)))
        return answer.id, plain(answer.properties)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
        answer = self.stub.Update(
            provider_pb2.UpdateRequest(id=id_, urn=URN, olds=struct(olds), news=struct(news))
        )
        return plain(answer.properties)

    def read(self, id_: str, outputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        answer = self.stub.Read(
            provider_pb2.ReadRequest(id=id_, urn=URN, properties=struct(outputs))
        )
        return answer.id, plain(answer.properties)

    def delete(self, id_: str, outputs: dict[str, Any]) -> None:
        self.stub.Delete(provider_pb2.DeleteRequest(id=id_, urn=URN, properties=struct(outputs)))


URN: Final = "urn:pulumi:test::secure-redis::pulumi-python:dynamic:Resource::r"


def with_provider(provider: ResourceProvider, props: dict[str, Any]) -> dict[str, Any]:
    return {**props, PROVIDER_KEY: serialize_provider(provider)}


def struct(props: dict[str, Any]) -> struct_pb2.Struct:
    loop = asyncio.new_event_loop()
    try:
        result: struct_pb2.Struct = loop.run_until_complete(rpc.serialize_properties(props, {}))
    finally:
        loop.close()
    return result


def plain(message: struct_pb2.Struct) -> dict[str, Any]:
    return dict(rpc.deserialize_properties(message))


__all__ = [
    "ENGINE_ADDRESS",
    "PROGRAM_DIR",
    "VIRTUALENV",
    "DiffAnswer",
    "LauncherError",
    "ProviderHost",
    "launch",
    "launcher_python",
    "plain",
    "with_provider",
]
