"""A recording stand-in for the Pulumi engine, on top of Pulumi's own mock monitor.

Pulumi's `MockMonitor` hands `Mocks.new_resource` the inputs with secretness pushed up to whole
lists and without the resource options. This monitor reads the registration request itself, so
it records, per resource:
- the inputs as the engine would hand them to policies (camelCase, secrets unwrapped) and the
  exact paths of the values that arrived secret (leaf precision, docs/design.md#secret-paths);
- the options (parent, dependencies, additionalSecretOutputs, ...);
- outputs, computed the way the engine would: inputs echo back, docker.Image gets a local
  image ID, and outputs named in additionalSecretOutputs (or fed by secret inputs) come back
  secret;
- for dynamic resources (certificates, passwords, keys), the engine's lifecycle with their own
  provider: with no previous state `check` then `create`; with the previous inputs and outputs
  (`Prior`, from the local applier's state) `check(olds, news)` then `diff(id, old outputs,
  news)`, then nothing (outputs kept), `update`, or `create` of a replacement, as the engine's
  step generator does. What happened is recorded as a `Change`.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dill  # type: ignore[import-untyped]  # no stubs; pulumi.dynamic uses it too
import pulumi
from google.protobuf import struct_pb2
from pulumi.dynamic import ResourceProvider
from pulumi.runtime import Mocks, rpc
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs
from pulumi.runtime.proto import resource_pb2

from infra.changes import Change, Op
from infra.proppath import PropPath
from infra.providers._common import PROVIDER_KEY, ChangeRefused
from infra.pulumi_internals import SECRET_SIG as _SECRET_SIG
from infra.pulumi_internals import SECRET_SIG_KEY as _SIG_KEY
from infra.pulumi_internals import bound_provider_serialization
from infra.pulumi_internals import ensure_event_loop as _ensure_event_loop
from infra.pulumi_internals import run_sync as _sync_await
from infra.pulumi_names import IMAGE, PYTHON_DYNAMIC_PREFIX, STACK, urn_type
from infra.rendered_resource import RenderedResource

# Programs rendered here may declare dynamic resources of their own (the policy corpus), and
# one process renders many times: see bound_provider_serialization.
bound_provider_serialization()


class RenderError(RuntimeError):
    """A resource could not be rendered (e.g. a dynamic provider's check failed)."""


@dataclass(frozen=True)
class Prior:
    """A dynamic resource as the previous `up` left it (without the serialized provider)."""

    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]


@dataclass(frozen=True)
class _Lifecycle:
    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    op: Op
    reasons: tuple[str, ...]


class _UnusedMocks(Mocks):
    """`set_mocks` wants a Mocks; every call is answered by RecordingMonitor instead."""

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        raise RenderError(f"the program called {args.token}; the render engine answers no invokes")


class RecordingMonitor(MockMonitor):
    def __init__(self, previous: Mapping[str, Prior] | None = None) -> None:
        """`previous`: dynamic resources by URN, as the last `up` left them."""
        super().__init__(_UnusedMocks())
        self.registrations: list[RenderedResource] = []
        self.previous: Mapping[str, Prior] = previous or {}
        self.refused: list[RenderError] = []
        """Dynamic resources whose provider refused them; the render raises the first."""
        self._lock = threading.Lock()

    def install(self, *, project: str, stack: str, preview: bool = False) -> None:
        """Be the engine of the next `pulumi.runtime.test()` in this thread: a fresh root stack
        resource, created at once, and an event loop for it. asyncio.run() leaves its thread
        with no current loop, and a program run after it failed with "There is no current
        event loop" (seen under xdist, an async test before the render tests on one worker)."""
        runtime_settings.ROOT.set(None)
        _ensure_event_loop()
        pulumi.runtime.set_mocks(
            self.mocks, project=project, stack=stack, preview=preview, monitor=self
        )

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        # The engine leaves the root stack out of its children's type chain.
        if parent and urn_type(parent) == STACK:
            parent = ""
        return str(super().make_urn(parent, type_, name))

    def RegisterResource(self, request: Any) -> Any:
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == STACK:
            return resource_pb2.RegisterResourceResponse(urn=urn)
        _ensure_event_loop()
        secret_paths: list[PropPath] = []
        props = plain_struct(request.object, secret_paths)
        secret_inputs = {str(p[0]) for p in secret_paths}
        extra_secret = list(request.additionalSecretOutputs)
        change: Change | None = None
        state_inputs: dict[str, Any] = {}
        if request.type.startswith(PYTHON_DYNAMIC_PREFIX):
            done = self._dynamic(request.type, request.name, urn, props)
            id_, outputs, state_inputs = done.id, done.outputs, done.inputs
            change = Change(urn, request.type, request.name, done.op, done.reasons)
            props.pop(PROVIDER_KEY, None)
            secret_paths = [p for p in secret_paths if p[0] != PROVIDER_KEY]
        else:
            id_, outputs = (
                (f"{request.name}-id" if request.custom else ""),
                _outputs(request.type, props),
            )
        secret_outputs = sorted((secret_inputs | set(extra_secret)) & set(outputs))
        registration = RenderedResource(
            type=request.type,
            name=request.name,
            urn=urn,
            id=id_,
            custom=bool(request.custom),
            props=props,
            secret_paths=tuple(secret_paths),
            options=_options(request),
            outputs=outputs,
            secret_outputs=tuple(secret_outputs),
            change=change,
            state_inputs=state_inputs,
        )
        with self._lock:
            self.registrations.append(registration)
        state = {
            k: rpc.wrap_rpc_secret(v) if k in secret_outputs else v for k, v in outputs.items()
        }
        obj_proto = _sync_await(rpc.serialize_properties(state, {}))
        self.resources[urn] = MockMonitor.ResourceRegistration(urn, id_, state)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=id_, object=obj_proto)

    def _dynamic(self, type_: str, name: str, urn: str, props: dict[str, Any]) -> _Lifecycle:
        """A refusal is recorded, not raised into the program: raised there, every output
        waiting on this resource would fail too and log its own traceback when collected.
        The program finishes on the previous (or declared) values, then the render raises."""
        prior = self.previous.get(urn)
        try:
            return _dynamic(type_, name, props, prior)
        except RenderError as exc:
            with self._lock:
                self.refused.append(exc)
            declared = {k: v for k, v in props.items() if k != PROVIDER_KEY}
            outputs = dict(prior.outputs) if prior else declared
            return _Lifecycle(prior.id if prior else "", declared, outputs, Op.SAME, ())


def plain_struct(struct: struct_pb2.Struct, secret_paths: list[PropPath]) -> dict[str, Any]:
    """The struct as plain Python values; appends the path of every secret-wrapped value."""
    result = _plain(struct, (), secret_paths, inside_secret=False)
    return result if isinstance(result, dict) else {}


def _plain(value: Any, path: PropPath, secret_paths: list[PropPath], *, inside_secret: bool) -> Any:
    if isinstance(value, struct_pb2.Struct):
        if _SIG_KEY in value.fields:
            if value[_SIG_KEY] == _SECRET_SIG:
                if not inside_secret:
                    secret_paths.append(path)
                return _plain(value["value"], path, secret_paths, inside_secret=True)
            # Assets, archives and resource references: the SDK's own decoding.
            return rpc.deserialize_properties(value)
        return {
            k: _plain(v, (*path, k), secret_paths, inside_secret=inside_secret)
            for k, v in value.items()
            if v is not None
        }
    if isinstance(value, struct_pb2.ListValue):
        return [
            _plain(v, (*path, i), secret_paths, inside_secret=inside_secret)
            for i, v in enumerate(value)
        ]
    # Protobuf carries every number as a double; integral ones read better as ints.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _outputs(type_: str, props: dict[str, Any]) -> dict[str, Any]:
    outputs = dict(props)
    if type_ == IMAGE:
        # For a local (never pushed) image the provider reports its image ID as repoDigest. The
        # render cannot build, so it derives a stable stand-in from the image name; the local
        # applier substitutes the ID of the image it builds.
        name = str(props.get("imageName", ""))
        outputs["repoDigest"] = "sha256:" + hashlib.sha256(name.encode()).hexdigest()
        outputs["baseImageName"] = name
    return outputs


def _dynamic(type_: str, name: str, props: dict[str, Any], prior: Prior | None) -> _Lifecycle:
    """The engine's steps for one dynamic resource: check, then create, or diff against the
    previous outputs and keep, update or replace (create the new one; the old one is simply
    dropped from the state: nothing of it lives outside the state)."""
    serialized = props.get(PROVIDER_KEY)
    if not isinstance(serialized, str):
        raise RenderError(f"{type_} {name}: no serialized provider in its inputs")
    # Our own program serialized this provider moments ago in this process (pulumi.dynamic).
    provider = dill.loads(base64.b64decode(serialized))  # noqa: S301
    if not isinstance(provider, ResourceProvider):
        raise RenderError(f"{type_} {name}: the serialized provider is not a ResourceProvider")
    news = {k: v for k, v in props.items() if k != PROVIDER_KEY}
    checked = provider.check(dict(prior.inputs) if prior else {}, news)
    if checked.failures:
        failed = "; ".join(f"{f.property}: {f.reason}" for f in checked.failures)
        raise RenderError(f"{type_} {name}: check failed: {failed}")
    inputs = dict(checked.inputs or {})
    if prior is None:
        created = provider.create(inputs)
        return _Lifecycle(created.id, inputs, dict(created.outs or {}), Op.CREATE, ())
    try:
        diff = provider.diff(prior.id, dict(prior.outputs), inputs)
    except ChangeRefused as refused:
        raise RenderError(f"{type_} {name}: {refused}") from None
    changed_inputs = sorted(
        k for k in set(inputs) | set(prior.inputs) if _differs(prior, inputs, k)
    )
    # changes=None: the provider does not know; the engine then compares the inputs itself.
    changes = diff.changes if diff.changes is not None else bool(changed_inputs)
    if not changes:
        return _Lifecycle(prior.id, inputs, dict(prior.outputs), Op.SAME, ())
    if diff.replaces:
        created = provider.create(inputs)
        reasons = tuple(
            k if k in changed_inputs else f"{k}: the provider asks for a new one"
            for k in diff.replaces
        )
        return _Lifecycle(created.id, inputs, dict(created.outs or {}), Op.REPLACE, reasons)
    updated = provider.update(prior.id, dict(prior.outputs), inputs)
    return _Lifecycle(prior.id, inputs, dict(updated.outs or {}), Op.UPDATE, tuple(changed_inputs))


def _differs(prior: Prior, inputs: Mapping[str, Any], key: str) -> bool:
    return prior.inputs.get(key) != inputs.get(key)


def _options(request: Any) -> dict[str, Any]:
    return {
        "parent": request.parent or None,
        "dependencies": list(request.dependencies),
        # Which resources' outputs flowed into which property (policies tie a network joined
        # by ID to its network with them: policies/rules/_service_shape.py).
        "propertyDependencies": {
            key: list(value.urns) for key, value in request.propertyDependencies.items()
        },
        "protect": bool(request.protect),
        "provider": request.provider or None,
        "additionalSecretOutputs": list(request.additionalSecretOutputs),
        "deleteBeforeReplace": bool(request.deleteBeforeReplace),
        "ignoreChanges": list(request.ignoreChanges),
        "replaceOnChanges": list(request.replaceOnChanges),
        "retainOnDelete": bool(request.retainOnDelete),
    }


__all__ = ["Prior", "PropPath", "RecordingMonitor", "RenderError", "plain_struct"]
