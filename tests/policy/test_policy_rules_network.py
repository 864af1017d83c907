"""Pure network and per-stack isolation rules: pass/fail tables on the foreign stack."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.policy import foreign
from tests.policy.support import add, assert_reasons, mutate, run_rule

Change = Callable[[dict[str, Any]], object]


def _set(**values: Any) -> Change:
    return lambda props: props.update(values)


CASES = [
    pytest.param("network-container-no-host-network", "web", _set(networkMode="host"), True,
                 id="cis-5.10-fail-host"),
    pytest.param("network-container-user-defined-network", "web",
                 _set(networksAdvanced=[]), True, id="cis-5.30-fail-default-bridge"),
    pytest.param("network-container-user-defined-network", "web",
                 _set(networksAdvanced=[], networkMode="none"), False, id="cis-5.30-pass-none"),
    pytest.param("network-port-bound-to-interface", "web",
                 _set(ports=[{"internal": 8000, "external": 8443}]), True,
                 id="cis-5.14-fail-ip-unset"),
    pytest.param("network-port-bound-to-interface", "web",
                 _set(ports=[{"internal": 8000, "ip": "::"}]), True, id="cis-5.14-fail-ipv6-any"),
    # Every spelling of the unspecified address binds every interface (Go's IsUnspecified).
    *[pytest.param("network-port-bound-to-interface", "web",
                   _set(ports=[{"internal": 8000, "external": 8443, "ip": ip}]), True,
                   id=f"cis-5.14-fail-unspecified-{ip}")
      for ip in ("0:0:0:0:0:0:0:0", "::0", "[::]", "::ffff:0.0.0.0")],
    pytest.param("network-port-bound-to-interface", "web",
                 _set(ports=[{"internal": 8000, "external": 8443, "ip": "[::1]"}]), False,
                 id="cis-5.14-pass-ipv6-loopback"),
    pytest.param("network-redis-no-published-port", "cache",
                 _set(ports=[{"internal": 6380, "external": 6380, "ip": "127.0.0.1"}]), True,
                 id="fail-loopback-port"),
    pytest.param("network-redis-no-published-port", "cache", _set(publishAllPorts=True), True,
                 id="fail-publish-all"),
    pytest.param("network-redis-no-published-port", "web",
                 _set(ports=[{"internal": 8000, "ip": "127.0.0.1"}]), False,
                 id="pass-non-redis-port"),
    pytest.param("network-container-no-unneeded-ports", "web", _set(publishAllPorts=True), True,
                 id="cis-5.9-fail-publish-all"),
    pytest.param("network-container-no-unneeded-ports", "web",
                 _set(ports=[{"internal": 22, "external": 2222, "ip": "127.0.0.1"}]), True,
                 id="cis-5.7-fail-ssh-port"),
    pytest.param("network-container-no-unneeded-ports", "web",
                 _set(command=["/usr/sbin/sshd", "-D"]), True, id="cis-5.7-fail-sshd"),
    pytest.param("network-port-unprivileged", "web",
                 _set(ports=[{"internal": 8000, "external": 443, "ip": "127.0.0.1"}]), True,
                 id="cis-5.8-fail-443"),
    pytest.param("network-driver-isolated", "edge-net", _set(driver="macvlan"), True,
                 id="cis-5.10-fail-macvlan"),
    pytest.param("network-driver-isolated", "edge-net", _set(ingress=True), True,
                 id="fail-ingress"),
    pytest.param("network-driver-not-attachable", "edge-net", _set(attachable=True), True,
                 id="fail-attachable"),
    pytest.param("network-redis-internal-only", "cache-net", _set(internal=False), True,
                 id="fail-not-internal"),
    pytest.param("network-redis-internal-only", "cache-net", lambda p: p.pop("internal"), True,
                 id="fail-internal-unset"),
    pytest.param("network-redis-internal-only", "cache",
                 _set(networksAdvanced=[{"name": "somebody-elses-net"}]), True,
                 id="fail-undeclared-network"),
    pytest.param("network-redis-internal-only", "cache",
                 _set(networksAdvanced=[], networkMode="bridge"), True, id="fail-default-bridge"),
    pytest.param("network-redis-internal-only", "cache",
                 _set(networkMode="container:shop-prod-web"), True, id="fail-joined-netns"),
    pytest.param("network-redis-internal-only", "edge-net", _set(internal=False), False,
                 id="pass-non-redis-network-external"),
    # `docker run --network NAME` and Terraform's `network_mode = docker_network.x.name` join
    # the network by networkMode (tests/policy/external_programs/nginyc_rafiki_*, cloyne_*).
    pytest.param("network-redis-internal-only", "cache",
                 _set(networksAdvanced=[], networkMode="shop-prod-edge"), True,
                 id="fail-network-mode-names-routed-network"),
    pytest.param("network-redis-internal-only", "cache",
                 _set(networksAdvanced=[], networkMode="somebody-elses-net"), True,
                 id="fail-network-mode-names-undeclared-network"),
    pytest.param("network-redis-internal-only", "cache",
                 _set(networksAdvanced=[], networkMode="shop-prod-cache"), False,
                 id="pass-network-mode-names-internal-network"),
    pytest.param("stack-network-scoped", "edge-net", _set(name="edge"), True,
                 id="fail-network-name-without-stack"),
    pytest.param("stack-network-scoped", "web",
                 _set(networksAdvanced=[{"name": "shop-dev-edge"}]), True,
                 id="fail-joins-foreign-network"),
    pytest.param("stack-network-scoped", "web", _set(networkMode="shop-dev-edge"), True,
                 id="fail-network-mode-names-foreign-network"),
    pytest.param("stack-network-scoped", "edge-net", _set(name="shop-prodution-edge"), True,
                 id="fail-stack-only-as-substring"),
    pytest.param("network-redis-network-dedicated", "web", _set(envs=[]), True,
                 id="fail-non-client-on-redis-net"),
    pytest.param("stack-volume-no-host-path", "cache-data",
                 _set(driverOpts={"type": "none", "o": "bind", "device": "/srv/data"}), True,
                 id="cis-5.6-fail-bind-volume"),
    pytest.param("stack-volume-scoped", "cache-data", _set(name="cache-data"), True,
                 id="fail-volume-name-without-stack"),
    pytest.param("stack-volume-scoped", "web",
                 _set(mounts=[{"type": "volume", "source": "shop-dev-web-secrets",
                               "target": "/run/shop", "readOnly": True}]), True,
                 id="fail-mounts-foreign-volume"),
    pytest.param("stack-volume-scoped", "web",
                 _set(mounts=[{"type": "volume", "target": "/scratch"}]), False,
                 id="pass-anonymous-volume"),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "resource", "change", "fails"), CASES)
def test_network_rule(
    request: pytest.FixtureRequest, rule: str, resource: str, change: Change, fails: bool
) -> None:
    messages = run_rule(rule, mutate(foreign.records(), resource, change))
    assert bool(messages) is fails, messages
    if fails:
        assert_reasons("network", request, messages)


def test_stack_network_scoped__accepts_only_allowed_subnets() -> None:
    stack = mutate(foreign.records(), "edge-net",
                   _set(ipamConfigs=[{"subnet": "10.20.1.0/24"}]))  # fmt: skip
    assert run_rule("stack-network-scoped", stack, {"allowedSubnets": ["10.20.0.0/16"]}) == []
    assert run_rule("stack-network-scoped", stack, {"allowedSubnets": ["10.30.0.0/16"]})


@pytest.mark.parametrize(
    ("host", "props", "fails"),
    [
        pytest.param("tcp://docker.example.com:2375", {}, True, id="cis-2.7-fail-plain-tcp"),
        pytest.param("tcp://docker.example.com:2376", {"certPath": "/certs"}, False,
                     id="pass-tls-cert-path"),
        pytest.param("ssh://deploy@docker.example.com", {}, False, id="pass-ssh"),
        pytest.param("unix:///var/run/docker.sock", {}, False, id="pass-unix"),
    ],
)  # fmt: skip
def test_docker_api_authenticated(host: str, props: dict[str, Any], fails: bool) -> None:
    stack = add(foreign.records(), "pulumi:providers:docker", "remote", {"host": host, **props})
    assert bool(run_rule("network-docker-api-authenticated", stack)) is fails


_LOOPBACK_DEFAULT = {"com.docker.network.bridge.host_binding_ipv4": "127.0.0.1"}


@pytest.mark.parametrize(
    ("cache_net", "edge_net", "bound"),
    [
        (_LOOPBACK_DEFAULT, _LOOPBACK_DEFAULT, True),
        (_LOOPBACK_DEFAULT, None, False),
        (_LOOPBACK_DEFAULT, {"com.docker.network.bridge.host_binding_ipv4": "0.0.0.0"}, False),
        ({"com.docker.network.bridge.host_binding_ipv4": "10.0.0.200"},
         {"com.docker.network.bridge.host_binding_ipv4": "10.0.0.200"}, True),
    ],
    ids=["every-network-loopback", "one-network-without", "one-network-any", "a-host-address"],
)  # fmt: skip
def test_port_without_ip__is_bound_where_every_network_it_joins_binds_by_default(
    cache_net: dict[str, str] | None, edge_net: dict[str, str] | None, bound: bool
) -> None:
    """A port with no `ip` binds to the default address of the bridge network it is published
    through (`com.docker.network.bridge.host_binding_ipv4`, Docker's port-publishing docs;
    bkk87/docker-home-server's networks set it to 127.0.0.1). The web container joins two
    networks: only when both give one specific address is the port bound (red before: always
    "listens on every interface")."""
    stack = foreign.raw()
    for name, options in (("cache-net", cache_net), ("edge-net", edge_net)):
        if options is not None:
            next(i for i in stack if i["name"] == name)["props"]["options"] = options
    web = next(i for i in stack if i["name"] == "web")["props"]
    web["ports"] = [{"internal": 8000, "external": 8443}]
    found = run_rule("network-port-bound-to-interface", foreign.records(stack))
    assert (found == []) is bound, found


def test_port_without_ip_on_the_default_bridge__listens_on_every_interface() -> None:
    """The default bridge's default address is the daemon's (`--ip`), which the stack does
    not declare: every interface, as before."""
    stack = foreign.raw()
    web = next(i for i in stack if i["name"] == "web")["props"]
    web.update(ports=[{"internal": 8000, "external": 8443}], networksAdvanced=[])
    assert run_rule("network-port-bound-to-interface", foreign.records(stack)) == [
        "Container web (shop-prod-web) must bind ports[0] to a specific host address "
        "(ip: 127.0.0.1); it listens on every interface (CIS Docker 5.14)."
    ]


def test_port_without_ip__binds_where_the_network_named_by_network_mode_says() -> None:
    """A port given no `ip` publishes through the one network the container joins; joined by
    networkMode, that network's default address is Docker's (host_binding_ipv4)."""
    loopback = {"com.docker.network.bridge.host_binding_ipv4": "127.0.0.1"}
    stack = mutate(
        mutate(foreign.records(), "edge-net", _set(options=loopback)),
        "web",
        _set(networksAdvanced=[], networkMode="shop-prod-edge",
             ports=[{"internal": 8000, "external": 8443}]),
    )  # fmt: skip
    assert run_rule("network-port-bound-to-interface", stack) == []
    everywhere = mutate(stack, "edge-net", _set(options={}))
    assert run_rule("network-port-bound-to-interface", everywhere) == [
        "Container web (shop-prod-web) must bind ports[0] to a specific host address "
        "(ip: 127.0.0.1); it listens on every interface (CIS Docker 5.14)."
    ]
