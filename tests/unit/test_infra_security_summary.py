"""The `securitySummary` output (infra/security_summary.py): read from the declared resources.

Each regression below loosens the program the way a later change could (a published port on
Redis, a new container with a writable root filesystem, a kept capability) and checks that
the summary says so, without any change to the summary's code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_docker as docker
import pytest

from infra import stack as stack_module
from infra.components import app as app_component
from infra.components import redis as redis_component
from infra.components.hardening import hardened_runtime
from infra.pulumi_names import CONTAINER, NETWORK
from infra.render import RenderedStack, render_settings
from infra.security_summary import redis_listener
from tests.unit.conftest import argv_value, container


def _summary(stack: RenderedStack) -> dict[str, Any]:
    summary: dict[str, Any] = stack.outputs["securitySummary"]
    return summary


def test_summary__lists_every_declared_container_with_its_own_properties(
    stack: RenderedStack,
) -> None:
    declared = {r.props["name"]: r.props for r in stack.of_type(CONTAINER)}
    summarized = _summary(stack)["containers"]
    assert set(summarized) == set(declared)
    for name, props in declared.items():
        facts = summarized[name]
        assert facts["readOnlyRootFilesystem"] == bool(props.get("readOnly")), name
        assert facts["user"] == props["user"], name
        assert facts["capabilitiesDropped"] == props["capabilities"]["drops"], name
        assert len(facts["publishedPorts"]) == len(props.get("ports", [])), name
        assert facts["networks"] == [n["name"] for n in props.get("networksAdvanced", [])], name


def test_summary__the_only_published_port_is_the_apps_loopback_binding(
    stack: RenderedStack,
) -> None:
    app = container(stack, "app").props["name"]
    port = stack.settings.app_host_port
    assert _summary(stack)["publishedPorts"] == {app: [f"127.0.0.1:{port}->8080/tcp"]}


def test_summary__networks_say_whether_they_are_internal(stack: RenderedStack) -> None:
    declared = {r.props["name"]: r.props.get("internal", False) for r in stack.of_type(NETWORK)}
    assert _summary(stack)["internalNetworks"] == declared
    assert declared[stack.outputs["backendNetwork"]] is True


def test_summary__redis_listener_is_read_from_its_argv(stack: RenderedStack) -> None:
    command = container(stack, "redis").props["command"]
    listener = _summary(stack)["redis"]
    assert listener["plaintextPort"] == int(argv_value(command, "--port") or -1) == 0
    assert listener["tlsProtocols"] == list(stack.settings.tls_protocols)
    assert listener["clientCertificatesRequired"] is True


@pytest.mark.parametrize(
    ("argv", "field", "expected"),
    [
        pytest.param(["redis-server"], "plaintext_port", 6379, id="no-port-flag-is-6379"),
        pytest.param(["redis-server", "--port", "0"], "plaintext_port", 0, id="port-0"),
        pytest.param(["redis-server", "--port", "0", "--port", "7"], "plaintext_port", 7,
                     id="the-last-flag-wins"),
        pytest.param(["redis-server", "--tls-auth-clients", "optional"],
                     "client_certificates_required", False, id="optional-client-certs"),
        pytest.param(["redis-server"], "tls_protocols", (), id="no-tls"),
    ],
)  # fmt: skip
def test_redis_listener__redis_defaults_where_argv_is_silent(
    argv: list[str], field: str, expected: object
) -> None:
    assert getattr(redis_listener(argv), field) == expected


def _redis_with(**extra: Any) -> Callable[..., dict[str, Any]]:
    return lambda **kwargs: {**hardened_runtime(**kwargs), **extra}


def _app_and_an_extra_container(*args: Any, **kwargs: Any) -> app_component.CacheApp:
    """The program as a later change could leave it: one more container, declared plainly."""
    app = app_component.CacheApp(*args, **kwargs)
    docker.Container(
        "sidecar",
        name="secure-redis-dev-sidecar",
        image="sidecar:1",
        opts=pulumi.ResourceOptions(parent=app),
    )
    return app


REDIS = "secure-redis-dev-redis"
SIDECAR = "secure-redis-dev-sidecar"


@pytest.mark.parametrize(
    ("target", "replacement", "key", "name"),
    [
        pytest.param(redis_component, ("hardened_runtime", _redis_with(
            ports=[docker.ContainerPortArgs(internal=6380, external=16380)])),
            "publishedPorts", REDIS, id="ports-on-redis"),
        pytest.param(redis_component, ("hardened_runtime", _redis_with(read_only=False)),
                     "writableRootFilesystems", REDIS, id="redis-writable-root"),
        pytest.param(redis_component, ("hardened_runtime", _redis_with(
            capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"], adds=["NET_ADMIN"]))),
            "capabilitiesKept", REDIS, id="redis-keeps-a-capability"),
        pytest.param(redis_component, ("hardened_runtime", _redis_with(security_opts=[])),
                     "withoutNoNewPrivileges", REDIS, id="redis-may-gain-privileges"),
        pytest.param(redis_component, ("hardened_runtime", _redis_with(user="0:0")),
                     "runningAsRoot", REDIS, id="redis-as-root"),
        pytest.param(stack_module, ("CacheApp", _app_and_an_extra_container),
                     "runningAsRoot", SIDECAR, id="a-new-container-as-root"),
    ],
)  # fmt: skip
def test_summary__shows_a_loosened_declaration(
    dev: RenderedStack,
    monkeypatch: pytest.MonkeyPatch,
    target: object,
    replacement: tuple[str, object],
    key: str,
    name: str,
) -> None:
    assert name not in _summary(dev)[key], "the stack as committed must not show it"
    monkeypatch.setattr(target, *replacement)
    assert name in _summary(render_settings(dev.settings))[key]


def test_summary__a_new_container_is_listed_with_what_it_lacks(
    dev: RenderedStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stack_module, "CacheApp", _app_and_an_extra_container)
    summary = _summary(render_settings(dev.settings))
    assert summary["containers"][SIDECAR] == {
        "user": "",
        "readOnlyRootFilesystem": False,
        "privileged": False,
        "capabilitiesDropped": [],
        "capabilitiesAdded": [],
        "noNewPrivileges": False,
        "publishedPorts": [],
        "networks": [],
        "oneShot": False,
        "memoryMb": None,
    }
    for exception in ("writableRootFilesystems", "capabilitiesKept", "withoutNoNewPrivileges"):
        assert SIDECAR in summary[exception], exception
