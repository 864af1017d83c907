"""SecureCache and AsyncSecureCache offer the same public API, modulo async.

Same public names, same parameters (names, kinds, defaults, annotations with `Async`
dropped), and every method a class defines itself is plain in the sync shell and a
coroutine in the async one (what both inherit from their shared base is one object).
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import pytest

from secure_cache import AsyncSecureCache, SecureCache

_DUNDER_TWINS = {"__enter__": "__aenter__", "__exit__": "__aexit__"}


def _public(cls: type) -> dict[str, Any]:
    twins = {*_DUNDER_TWINS, *_DUNDER_TWINS.values()}
    names = {n for n in dir(cls) if not n.startswith("_")} | {"__init__", *twins}
    return {n: inspect.getattr_static(cls, n) for n in names if hasattr(cls, n)}


def _plain(annotation: Any) -> str:
    return re.sub(r"\bAsync(?=[A-Z])", "", str(annotation))


def _shape(member: Any) -> tuple[Any, ...]:
    """What must match between the twins: kind and signature, `Async` names made plain."""
    if isinstance(member, property):
        assert member.fget is not None
        return ("property", _plain(inspect.signature(member.fget).return_annotation))
    func = member.__func__ if isinstance(member, classmethod | staticmethod) else member
    signature = inspect.signature(func)
    params = tuple(
        (p.name, p.kind, p.default, _plain(p.annotation)) for p in signature.parameters.values()
    )
    return (type(member).__name__, params, _plain(signature.return_annotation))


def api_differences(sync_cls: type, async_cls: type) -> list[str]:
    """Every way the async class's public API differs from the sync class's."""
    sync_api, async_api = _public(sync_cls), _public(async_cls)
    renamed = {_DUNDER_TWINS.get(n, n): m for n, m in sync_api.items()}
    problems = [f"only in {sync_cls.__name__}: {n}" for n in sorted(set(renamed) - set(async_api))]
    problems += [
        f"only in {async_cls.__name__}: {n}" for n in sorted(set(async_api) - set(renamed))
    ]
    for name in sorted(set(renamed) & set(async_api)):
        sync_member, async_member = renamed[name], async_api[name]
        if _shape(sync_member) != _shape(async_member):
            problems.append(f"{name}: {_shape(sync_member)} != {_shape(async_member)}")
        own = name in vars(async_cls) and name != "__init__"
        func = getattr(async_member, "__func__", async_member)
        if own and not isinstance(async_member, property):
            if not inspect.iscoroutinefunction(func):
                problems.append(f"{async_cls.__name__}.{name} is not a coroutine")
            if inspect.iscoroutinefunction(getattr(sync_member, "__func__", sync_member)):
                problems.append(f"{sync_cls.__name__}.{name} is a coroutine")
    return problems


def test_public_apis__match_modulo_async() -> None:
    assert api_differences(SecureCache, AsyncSecureCache) == []


def test_public_apis__cover_the_cache_calls() -> None:
    calls = {"get", "set", "delete", "get_many", "set_many", "get_json", "set_json"}
    assert calls | {"ping", "status", "rotate", "close", "from_env"} <= set(_public(SecureCache))


class _Sync:
    def get(self, key: str) -> bytes | None:
        return None

    def rotate(self, *, batch_size: int = 200) -> None:
        return None


class _DriftedAsync:
    async def get(self, key: str, default: bytes | None = None) -> bytes | None:
        return default

    def rotate(self, *, batch_size: int = 100) -> None:
        return None

    async def require_redis(self) -> None:
        return None


@pytest.mark.parametrize(
    "fragment",
    ["only in _DriftedAsync: require_redis", "get:", "rotate:", "_DriftedAsync.rotate is not"],
)
def test_api_differences__finds_drift(fragment: str) -> None:
    """The checker itself: an extra method, an extra parameter, a changed default and a
    method that forgot to be async are each reported."""
    assert any(p.startswith(fragment) for p in api_differences(_Sync, _DriftedAsync))
