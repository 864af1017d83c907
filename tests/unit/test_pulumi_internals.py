"""Canary for the private Pulumi SDK symbols behind `infra/pulumi_internals.py`.

An SDK upgrade that moves or changes one of them fails here, naming the installed SDK version,
instead of silently breaking the mock engine or the offline checker.
"""

from __future__ import annotations

import asyncio
import importlib
import pickle
import threading
import types

import pytest
from pulumi.dynamic import dynamic
from pulumi.runtime import rpc

from infra import pulumi_internals
from infra.providers.certificates import CertificateAuthorityProvider
from infra.pulumi_internals import SDK_VERSION, PulumiSdkChanged, require

pytestmark = pytest.mark.unit

# The strings the engine itself uses to mark secrets on the wire when `pulumi preview` sends
# properties to a policy pack; they must never drift.
# checkov:skip=CKV_SECRET_6: Pulumi's public wire signatures, not credentials
ENGINE_SIG_KEY = "4dabf18193072939515e22adb298388d"
# checkov:skip=CKV_SECRET_6: Pulumi's public wire signatures, not credentials
ENGINE_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


def test_secret_signature__is_the_engines_wire_format() -> None:
    assert (pulumi_internals.SECRET_SIG_KEY, pulumi_internals.SECRET_SIG) == (
        ENGINE_SIG_KEY,
        ENGINE_SECRET_SIG,
    ), f"pulumi {SDK_VERSION} changed the secret signature"


def test_wrap_secret__round_trips_through_the_sdks_own_deserializer() -> None:
    wrapped = pulumi_internals.wrap_secret("value")
    assert rpc.is_rpc_secret(wrapped), f"pulumi {SDK_VERSION} no longer reads our secret wrapper"
    assert rpc.unwrap_rpc_secret(wrapped) == "value"


def test_run_sync__runs_a_coroutine_from_a_thread_without_a_loop() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    results: list[int] = []

    def servicer() -> None:  # what the mock monitor's gRPC thread does
        pulumi_internals.ensure_event_loop()
        results.append(pulumi_internals.run_sync(answer()))

    thread = threading.Thread(target=servicer)
    thread.start()
    thread.join(timeout=30)
    assert results == [42], f"pulumi {SDK_VERSION}: the sync-await helpers changed behaviour"


def test_a_moved_symbol__fails_naming_the_sdk_version_and_the_shim() -> None:
    moved = types.ModuleType("pulumi.runtime.rpc")
    with pytest.raises(PulumiSdkChanged) as caught:
        require(moved, "_special_sig_key")
    message = str(caught.value)
    assert f"pulumi {SDK_VERSION}" in message
    assert "pulumi.runtime.rpc._special_sig_key" in message
    assert "infra/pulumi_internals.py" in message


def test_importing_the_shim_against_an_sdk_without_the_symbol__fails_at_import(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(rpc, "_special_secret_sig")
    try:
        # reload defines a fresh PulumiSdkChanged class; match its base and its name.
        with pytest.raises(ImportError, match=r"rpc\._special_secret_sig") as caught:
            importlib.reload(pulumi_internals)
        assert type(caught.value).__name__ == "PulumiSdkChanged"
    finally:
        monkeypatch.undo()
        importlib.reload(pulumi_internals)


def test_provider_serialization__leaves_pickle_as_it_found_it() -> None:
    """The SDK's serialize_provider wraps pickle's _batch_setitems anew on every call and never
    restores it; importing infra.providers installs the bound (pulumi_internals), so pickle's
    own method is back after each call, and a process that serializes providers over and over
    (the unit suite in one process renders the stack hundreds of times) does not end in
    RecursionError, as it did after about a thousand calls."""
    provider = CertificateAuthorityProvider()
    first = dynamic.serialize_provider(provider)
    stock = vars(pickle._Pickler)
    assert stock["_batch_setitems"].__qualname__ == "_Pickler._batch_setitems"
    assert stock["save_dict"].__qualname__ == "_Pickler.save_dict"
    for _ in range(2 * 1000):
        last = dynamic.serialize_provider(provider)
    assert last == first  # still deterministic: the SDK's sorting applies within each call
