"""The private parts of the pinned Pulumi Python SDK this repository relies on, in one place.

The mock engine (`infra/mock_engine.py`) and the offline policy checker (`policies/analyzer.py`)
need three things the SDK does not export: the signature that marks a secret value on the wire
(`rpc._special_sig_key`, `rpc._special_secret_sig`; the engine sends the same strings, which the
canary test pins), and the helpers that run a coroutine to completion from the synchronous gRPC
servicer (`sync_await._sync_await`, `sync_await._ensure_event_loop`).
It also bounds one SDK side effect (`bound_provider_serialization`, below).
Everything else imports them from here, so an SDK upgrade that moves one fails at import with a
message naming the SDK version, and `tests/unit/test_pulumi_internals.py` is the canary.
"""

from __future__ import annotations

import functools
import importlib.metadata
import pickle
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Final, TypeVar, cast

from pulumi.dynamic import dynamic
from pulumi.runtime import rpc, sync_await

SDK_VERSION: Final = importlib.metadata.version("pulumi")

T = TypeVar("T")


class PulumiSdkChanged(ImportError):
    """A private SDK symbol this repository uses is gone or changed in the installed SDK."""


def require(module: ModuleType, name: str) -> object:
    """`module.name`, or PulumiSdkChanged naming the symbol and the installed SDK version."""
    try:
        return getattr(module, name)
    except AttributeError:
        raise PulumiSdkChanged(
            f"pulumi {SDK_VERSION}: {module.__name__}.{name} no longer exists; "
            f"infra/pulumi_internals.py must be updated for this SDK version (the pin in "
            f"pyproject.toml is the version it was written for)"
        ) from None


def _text(module: ModuleType, name: str) -> str:
    value = require(module, name)
    if not isinstance(value, str):
        raise PulumiSdkChanged(
            f"pulumi {SDK_VERSION}: {module.__name__}.{name} is no longer a string"
        )
    return value


SECRET_SIG_KEY: Final = _text(rpc, "_special_sig_key")
"""The key that marks a wrapped value on the wire (`{SECRET_SIG_KEY: SECRET_SIG, "value": v}`)."""
SECRET_SIG: Final = _text(rpc, "_special_secret_sig")
"""The signature of a secret value."""

_sync_await = cast("Callable[[Awaitable[object]], object]", require(sync_await, "_sync_await"))
_ensure_event_loop = cast("Callable[[], object]", require(sync_await, "_ensure_event_loop"))


def run_sync(awaitable: Awaitable[T]) -> T:
    """Run an awaitable to completion from synchronous code (the mock monitor's servicer)."""
    return cast("T", _sync_await(awaitable))


def ensure_event_loop() -> None:
    """Give the current thread an asyncio event loop, as the SDK's own servicers do."""
    _ensure_event_loop()


def wrap_secret(value: object) -> dict[str, object]:
    """`value` wrapped as a secret, as the engine marshals secrets to policies and programs."""
    return {SECRET_SIG_KEY: SECRET_SIG, "value": value}


def bound_provider_serialization() -> None:
    """Make each dynamic provider's serialization leave `pickle` as it found it.

    The SDK's `serialize_provider` sorts dict items by wrapping `pickle._Pickler._batch_setitems`
    in a new function on every call and never puts the original back, so each call nests one
    more wrapper: in a process that declares dynamic resources many times (the unit suite
    renders the stack hundreds of times in one process, as does any long-lived program that
    renders repeatedly) pickling a provider ends in RecursionError after about a thousand
    (tests/unit/test_pulumi_internals.py). Installed by infra/providers/__init__.py and
    infra/mock_engine.py, each once per process (a second call finds the marker);
    what each call serializes is unchanged (the SDK's sorting applies within the call)."""
    serialize = cast("Callable[[object], str]", require(dynamic, "serialize_provider"))
    if getattr(serialize, "_restores_pickle", False):
        return
    stock = pickle._Pickler  # the class the SDK patches
    patched = ("_batch_setitems", "save_dict")

    @functools.wraps(serialize)
    def serialize_and_restore(provider: object) -> str:
        saved = {name: stock.__dict__[name] for name in patched}
        try:
            return serialize(provider)
        finally:
            for name, original in saved.items():
                setattr(stock, name, original)

    setattr(serialize_and_restore, "_restores_pickle", True)  # noqa: B010  # a marker, not an API
    setattr(dynamic, "serialize_provider", serialize_and_restore)  # noqa: B010  # the SDK's lookup
