"""The app's HTTP API as the program deploys it: a generated token staged as a file, the Host
allowlist, and memory budgets that keep the process below its container's limit."""

from __future__ import annotations

import pytest

from infra.components.app import (
    APP_MAX_CONNECTIONS,
    APP_MAX_VALUE_BYTES,
    HTTP_ALIAS,
    memory_budgets,
)
from infra.render import RenderedStack
from secure_cache.http_budget import COPIES_PER_VALUE
from secure_cache.listen import bind, listen_addresses
from secure_cache.settings import MIN_API_TOKEN_LENGTH, ServiceSettings, max_value_bytes_from_env
from tests.support.tls_redis import free_port
from tests.unit.conftest import container, uploads

# What the interpreter with its libraries takes before any request (measured: 51 MiB
# RSS for `python -m secure_cache serve`, CPython 3.11, 2026-11-30), rounded up.
INTERPRETER_MIB = 60
# uvicorn's per-connection read buffer (64 KiB) plus h11's largest request head (16 KiB).
CONNECTION_BYTES = (64 + 16) * 1024


def _env(stack: RenderedStack) -> dict[str, str]:
    app = container(stack, "app")
    return dict(item.split("=", 1) for item in app.props["envs"])


def test_api_token__is_a_secret_file_in_the_material_volume(stack: RenderedStack) -> None:
    init = container(stack, "app-init")
    token = uploads(init)["api.token"]
    assert token["permissions"] == "0400"
    assert len(token["content"]) >= MIN_API_TOKEN_LENGTH
    assert _env(stack)["HTTP_API_TOKEN_FILE"] == "/etc/secure-cache/api.token"
    assert not any(e.startswith("HTTP_API_TOKEN=") for e in container(stack, "app").props["envs"])


def test_api_token__rotation_adds_the_new_token_and_keeps_the_old_one_until_the_next_up(
    stack: RenderedStack,
) -> None:
    """Steady: one token, an empty second file. The two-phase rotation itself (ROTATE keeps
    `previous`, the next up drops it) is the password provider's, tested with the passwords
    (tests/unit/test_infra_rotation_providers.py); here: the app gets both files."""
    files = uploads(container(stack, "app-init"))
    assert files["api.previous-tokens"]["content"] == ""
    assert files["api.previous-tokens"]["permissions"] == "0400"
    env = _env(stack)
    assert env["HTTP_API_PREVIOUS_TOKENS_FILE"] == "/etc/secure-cache/api.previous-tokens"
    token = next(r for r in stack.resources if r.name == "secrets-api-token")
    assert token.props["rotationGeneration"] == stack.settings.api_token_rotation_generation


def test_api_token__differs_per_stack_and_from_every_password(
    dev: RenderedStack, prod: RenderedStack
) -> None:
    tokens = {uploads(container(s, "app-init"))["api.token"]["content"] for s in (dev, prod)}
    passwords = {
        uploads(container(s, "app-init"))["redis.password"]["content"] for s in (dev, prod)
    }
    assert len(tokens) == 2
    assert not tokens & passwords


def test_allowed_hosts__loopback_and_the_container_name_only(stack: RenderedStack) -> None:
    hosts = _env(stack)["HTTP_ALLOWED_HOSTS"].split(",")
    assert sorted(hosts) == sorted(["localhost", "127.0.0.1", f"secure-redis-{stack.stack}-app"])


def test_listener__a_name_only_the_frontend_network_resolves(stack: RenderedStack) -> None:
    """With HTTP_HOST=0.0.0.0 a container on the backend network alone reached the API at the
    app's backend address (attack pass of 2026-12-03 on s92). The app listens where a name of
    the frontend network alone resolves, and on loopback (listen_addresses)."""
    assert _env(stack)["HTTP_HOST"] == HTTP_ALIAS
    networks = {
        n["name"]: n.get("aliases") or [] for n in container(stack, "app").props["networksAdvanced"]
    }
    holding = [name for name, aliases in networks.items() if HTTP_ALIAS in aliases]
    assert holding == [f"secure-redis-{stack.stack}-frontend"], networks


def test_listener__loopback_beside_any_address_but_the_wildcard() -> None:
    """The health check probes 127.0.0.1 (app_healthcheck_test), whatever HTTP_HOST names."""
    assert listen_addresses("192.0.2.7") == ["192.0.2.7", "127.0.0.1"]
    assert listen_addresses("localhost") == ["127.0.0.1"]
    assert listen_addresses("127.0.0.1") == ["127.0.0.1"]
    assert listen_addresses("0.0.0.0") == ["0.0.0.0"]  # the image run on its own


def test_listener__binds_each_address_and_nothing_else() -> None:
    settings = ServiceSettings.from_env(
        {"HTTP_API_TOKEN": "t" * 40, "HTTP_HOST": "127.0.0.2", "HTTP_PORT": str(free_port())}
    )
    sockets = bind(settings.host, settings.port)
    try:
        assert [s.getsockname()[0] for s in sockets] == ["127.0.0.2", "127.0.0.1"]
    finally:
        for sock in sockets:
            sock.close()


def test_service_settings__the_deployed_environment_is_valid(stack: RenderedStack) -> None:
    env = {k: v for k, v in _env(stack).items() if k.startswith("HTTP_")}
    env.pop("HTTP_API_TOKEN_FILE")
    env.pop("HTTP_API_PREVIOUS_TOKENS_FILE")
    settings = ServiceSettings.from_env({**env, "HTTP_API_TOKEN": "t" * MIN_API_TOKEN_LENGTH})
    assert settings.max_value_bytes == APP_MAX_VALUE_BYTES
    assert settings.max_connections == APP_MAX_CONNECTIONS


def test_value_limit__the_rotation_pass_reads_as_large_values_as_the_app_stores(
    stack: RenderedStack,
) -> None:
    """The rotation pass reads and re-seals every entry the app stored, each reply up to the
    limit its client derives from HTTP_MAX_VALUE_BYTES (from_env, app/secure_cache/client.py),
    as the app's does. Without the variable the pass took the library's default: the app's
    own only while the stack's limit is that default."""
    rotation = dict(item.split("=", 1) for item in container(stack, "rotation").props["envs"])
    assert rotation.get("HTTP_MAX_VALUE_BYTES") == _env(stack)["HTTP_MAX_VALUE_BYTES"]
    assert max_value_bytes_from_env(rotation) == APP_MAX_VALUE_BYTES


@pytest.mark.parametrize("memory_mb", [128, 160, 192, 256, 1024])
def test_memory_budgets__stay_below_the_container_limit(memory_mb: int) -> None:
    inflight, fallback = memory_budgets(memory_mb)
    worst = (INTERPRETER_MIB << 20) + inflight + fallback + APP_MAX_CONNECTIONS * CONNECTION_BYTES
    assert worst < memory_mb << 20
    assert inflight >= APP_MAX_VALUE_BYTES * COPIES_PER_VALUE, "the largest value must fit"


def test_memory_budgets__the_deployed_environment_carries_them(stack: RenderedStack) -> None:
    app = container(stack, "app")
    inflight, fallback = memory_budgets(app.props["memory"])
    env = _env(stack)
    assert int(env["HTTP_MAX_INFLIGHT_BYTES"]) == inflight
    assert int(env["CACHE_FALLBACK_MAX_BYTES"]) == fallback
