"""Stacks that are not ours (other names, no labels): the pack judges what they run.

All go through the real pack. The secure hand-written stack passes, so nothing depends on this
project's names or layout; insecure ones are rejected by the policies that own their faults.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pulumi
import pulumi_docker as docker
import pytest

from policies.records import parse_records
from policies.rules._model import CONTAINER, NETWORK, REMOTE_IMAGE, SERVICE, VOLUME
from tests.policy import foreign, swarm
from tests.policy.conftest import Analyze
from tests.policy.program_render import render_program
from tests.policy.support import describe, mandatory, mutate

HARDENED: dict[str, Any] = {
    "user": "71001:71001",
    "ulimits": [{"name": "nproc", "soft": 64, "hard": 64}],
    "readOnly": True,
    "capabilities": {"drops": ["ALL"]},
    "securityOpts": ["no-new-privileges:true"],
    "memory": 256,
    "healthcheck": {"tests": ["CMD", "true"]},
}
NET = {"type": NETWORK, "name": "net",
       "props": {"name": "kv-qa-net", "internal": True}}  # fmt: skip


def _stack(*items: dict[str, Any]) -> list[Any]:
    return parse_records(list(items), source="test", stack="qa", project="kv")


def _container(logical: str, **props: Any) -> dict[str, Any]:
    return {"type": CONTAINER, "name": logical, "props": props}


def test_secure_foreign_stack__passes(analyze: Analyze) -> None:
    findings = analyze(foreign.records())
    assert not mandatory(findings), describe(findings)


# Keys that are data, not property names: the SDK passes them through as written.
_DATA_KEYS = frozenset({"tmpfs", "logOpts", "env"})
_SDK_TYPES: dict[str, Any] = {
    CONTAINER: docker.Container, NETWORK: docker.Network, VOLUME: docker.Volume,
    REMOTE_IMAGE: docker.RemoteImage, SERVICE: docker.Service,
}  # fmt: skip


def _snake(value: Any, parent: str = "") -> Any:
    """The engine's camelCase properties as the pulumi-docker SDK's keyword arguments."""
    if isinstance(value, dict):
        return {
            key if parent in _DATA_KEYS else re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower(): (
                _snake(item, key)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_snake(item, parent) for item in value]
    return value


@pytest.mark.parametrize("raw", [foreign.raw, swarm.raw], ids=["containers", "swarm-services"])
def test_secure_foreign_stack_written_with_the_sdk__passes_under_the_mock_engine(
    analyze: Analyze, raw: Callable[[], list[dict[str, Any]]]
) -> None:
    """The same stack declared through pulumi_docker's classes and run as `pulumi up` runs a
    program (tests/policy/program_render.py): the SDK's own serialization of the secure
    settings (capabilities, ulimits, uploads marked secret, tmpfs, log options) passes."""

    def program() -> None:
        for item in raw():
            secret = item.get("options", {}).get("additionalSecretOutputs", [])
            opts = pulumi.ResourceOptions(additional_secret_outputs=secret)
            _SDK_TYPES[item["type"]](item["name"], **_snake(item["props"]), opts=opts)

    records = render_program(program, project=foreign.PROJECT, stack=foreign.STACK)
    declared = {item["name"]: item["props"] for item in raw()}
    for record in records:  # the SDK wrote what the records say, plus engine-computed names
        computed = {"name", "imageId", "repoDigest"} - set(declared[record.name])
        assert {k: v for k, v in record.props.items() if k not in computed} == declared[
            record.name
        ], record.name
    findings = analyze(records)
    assert not mandatory(findings), describe(findings)


def _sdk_program_joining_networks_by_id(
    raw: Callable[[], list[dict[str, Any]]],
    *,
    foreign_ids: bool = False,
    own_names_elsewhere: bool = False,
) -> Callable[[], None]:
    """The stack with every network joined by `network.id`, as pulumi-docker recommends for a
    service (`networksAdvanceds[].name` is deprecated there); `foreign_ids`: by literal IDs of
    networks this stack does not declare instead; `own_names_elsewhere`: the network it used
    to join still named, by its `name` output, in the entry's aliases or the task's env."""

    def program() -> None:
        networks: dict[str, docker.Network] = {}
        for item in raw():
            props = _snake(item["props"])
            for key, field in (("networks_advanced", "name"), ("networks_advanceds", "id")):
                holder = props.get("task_spec", props)
                for entry in holder.get(key, []):
                    name = entry.pop("name")
                    entry[field] = "f" * 64 if foreign_ids else networks[name].id
                    if own_names_elsewhere and key == "networks_advanced":
                        entry["aliases"] = [networks[name].name]
                    elif own_names_elsewhere:
                        env = holder["container_spec"].setdefault("env", {})
                        env[f"NETWORK_{len(env)}"] = networks[name].name
            created = _SDK_TYPES[item["type"]](item["name"], **props)
            if item["type"] == NETWORK:
                networks[item["props"]["name"]] = created

    return program


@pytest.mark.parametrize("raw", [foreign.raw, swarm.raw], ids=["containers", "swarm-services"])
def test_secure_foreign_stack_joining_networks_by_id__passes(
    analyze: Analyze, raw: Callable[[], list[dict[str, Any]]]
) -> None:
    """An ID in the name's place is tied to its network through the engine's dependencies
    (policies/rules/_service_shape.py _networks_by_name): not "belongs to something else"."""
    program = _sdk_program_joining_networks_by_id(raw)
    records = render_program(program, project=foreign.PROJECT, stack=foreign.STACK)
    findings = analyze(records)
    assert not mandatory(findings), describe(findings)


def test_network_id_of_another_stack__is_still_not_this_stacks(analyze: Analyze) -> None:
    program = _sdk_program_joining_networks_by_id(foreign.raw, foreign_ids=True)
    records = render_program(program, project=foreign.PROJECT, stack=foreign.STACK)
    violated = mandatory(analyze(records))
    assert {"stack-network-scoped", "network-redis-internal-only"} <= violated


@pytest.mark.parametrize("raw", [foreign.raw, swarm.raw], ids=["containers", "swarm-services"])
def test_network_id_of_another_stack_beside_its_own_networks_name__is_still_not_this_stacks(
    analyze: Analyze, raw: Callable[[], list[dict[str, Any]]]
) -> None:
    """Its own network's name in an alias (or a service's env) flowed into the same property
    as another stack's network ID: that is no sign the ID is its own network's (it passed)."""
    program = _sdk_program_joining_networks_by_id(raw, foreign_ids=True, own_names_elsewhere=True)
    records = render_program(program, project=foreign.PROJECT, stack=foreign.STACK)
    violated = mandatory(analyze(records))
    assert {"stack-network-scoped", "network-redis-internal-only"} <= violated


def test_network_id_of_another_stack_beside_its_own_networks_address__is_still_not_this_stacks(
    analyze: Analyze,
) -> None:
    """An address taken from its own network's IPAM output (`ipv4_address`) flowed into the
    same property as another stack's network ID: the dependency is explained by the address,
    so it is no sign the ID is its own network's (red before: the ID passed as its own)."""

    def program() -> None:
        network = docker.Network(
            "cache-net",
            name="shop-prod-cache",
            internal=True,
            ipam_configs=[docker.NetworkIpamConfigArgs(subnet="10.9.0.0/24")],
        )
        address = network.ipam_configs.apply(lambda _: "10.9.0.5")
        docker.Container(
            "cache",
            name="shop-prod-cache",
            image=foreign.REDIS_IMAGE,
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(name="f" * 64, ipv4_address=address)
            ],
        )

    records = render_program(program, project=foreign.PROJECT, stack=foreign.STACK)
    violated = mandatory(analyze(records))
    assert {"stack-network-scoped", "network-redis-internal-only"} <= violated


def test_service_network_id_of_another_stack_beside_its_own_networks_id_in_a_label__is_rejected(
    analyze: Analyze,
) -> None:
    """A service's task spec is one property to the engine: its own network's ID in a task
    label explains the dependency as well as the networks entry would, so another stack's
    network ID in the entry is not taken for its own (red before: it passed as its own)."""

    def program() -> None:
        network = docker.Network("cache-net", name="shop-prod-cache", internal=True)
        docker.Service(
            "cache",
            name="shop-prod-cache",
            task_spec=docker.ServiceTaskSpecArgs(
                container_spec=docker.ServiceTaskSpecContainerSpecArgs(
                    image=foreign.REDIS_IMAGE,
                    labels=[
                        docker.ServiceTaskSpecContainerSpecLabelArgs(
                            label="network", value=network.id
                        )
                    ],
                ),
                networks_advanceds=[docker.ServiceTaskSpecNetworksAdvancedArgs(id="f" * 64)],
            ),
        )

    records = render_program(program, project=foreign.PROJECT, stack=foreign.STACK)
    violated = mandatory(analyze(records))
    assert {"stack-network-scoped", "network-redis-internal-only"} <= violated


def test_service_joining_by_id_with_its_networks_name_as_plain_text__is_told_the_truth(
    analyze: Analyze,
) -> None:
    """A secure service joined by `network.id` that also holds the network's name as a plain
    string in its env: the records cannot tell it from another stack's network ID beside a
    name that flowed in (the test above, with aliases/env), so it is refused, but told why
    and how to fix it, not that its network "belongs to something else" (red before)."""

    def with_plain_name(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for item in items:
            if item["name"] == "cache":
                item["props"]["taskSpec"]["containerSpec"].setdefault("env", {})[
                    "CACHE_NETWORK"
                ] = "shop-prod-cache"
        return items

    program = _sdk_program_joining_networks_by_id(lambda: with_plain_name(swarm.raw()))
    records = render_program(program, project=foreign.PROJECT, stack=foreign.STACK)
    findings = analyze(records)
    messages = {
        f.policy: f.message
        for f in findings
        if f.policy in ("stack-network-scoped", "network-redis-internal-only")
    }
    assert set(messages) == {"stack-network-scoped", "network-redis-internal-only"}, describe(
        findings
    )
    for message in messages.values():
        assert "belongs to something else" not in message
        assert "is not declared here" not in message
        assert "cannot tell" in message
        assert "network cache-net (shop-prod-cache)" in message
        assert "taskSpec.containerSpec.env.CACHE_NETWORK ('shop-prod-cache')" in message
        assert "Join it by name" in message


def test_network_id_of_another_stack_beside_a_depends_on__is_still_not_this_stacks(
    analyze: Analyze,
) -> None:
    """`depends_on` one of its own networks does not make another stack's network ID its own:
    only outputs that flowed into the networks property count (the engine's
    propertyDependencies)."""

    def program() -> None:
        network = docker.Network("cache-net", name="shop-prod-cache", internal=True)
        docker.Container(
            "cache",
            name="shop-prod-cache",
            image=foreign.REDIS_IMAGE,
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name="f" * 64)],
            opts=pulumi.ResourceOptions(depends_on=[network]),
        )

    records = render_program(program, project=foreign.PROJECT, stack=foreign.STACK)
    violated = mandatory(analyze(records))
    assert {"stack-network-scoped", "network-redis-internal-only"} <= violated


def test_network_id_in_records_without_property_dependencies__is_not_taken_on_trust(
    analyze: Analyze,
) -> None:
    """Records written by hand (`policies.check --resources`) may carry `dependencies` but no
    `propertyDependencies`: a network ID is then tied to no network, whatever the record
    depends on (red before: dependencies stood in for them, so a `depends_on` one of the
    stack's networks made another stack's network ID pass as it)."""

    def program() -> None:
        network = docker.Network("cache-net", name="shop-prod-cache", internal=True)
        docker.Container(
            "cache",
            name="shop-prod-cache",
            image=foreign.REDIS_IMAGE,
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name="f" * 64)],
            opts=pulumi.ResourceOptions(depends_on=[network]),
        )

    records = [
        replace(r, options={k: v for k, v in r.options.items() if k != "propertyDependencies"})
        for r in render_program(program, project=foreign.PROJECT, stack=foreign.STACK)
    ]
    assert any(r.options.get("dependencies") for r in records)
    violated = mandatory(analyze(records))
    assert {"stack-network-scoped", "network-redis-internal-only"} <= violated


def test_redis_joining_a_routable_network_by_id__is_told_which_network(
    analyze: Analyze,
) -> None:
    def routable(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for item in items:
            if item["name"] == "cache-net":
                item["props"]["internal"] = False
        return items

    program = _sdk_program_joining_networks_by_id(lambda: routable(foreign.raw()))
    records = render_program(program, project=foreign.PROJECT, stack=foreign.STACK)
    messages = [f.message for f in analyze(records) if f.policy == "network-redis-internal-only"]
    assert messages == [
        "Network cache-net (shop-prod-cache) must set internal: true, because Redis container "
        "cache (shop-prod-cache) joins it; it has a route to other networks."
    ]


def test_plaintext_redis_with_published_port__is_rejected(analyze: Analyze) -> None:
    stack = _stack(_container("kv", image="redis:7",
                              ports=[{"internal": 6379, "external": 6379}]))  # fmt: skip
    violated = mandatory(analyze(stack))
    assert {
        "network-redis-no-published-port",
        "network-port-bound-to-interface",
        "network-redis-internal-only",
        "redis-tls-only",
        "redis-tls-configured",
        "redis-auth-required",
        "redis-default-user-disabled",
        "container-read-only-rootfs",
        "container-non-root-user",
        "image-container-pinned",
    } <= violated


def test_official_image_default_config_on_an_internal_network__is_rejected(
    analyze: Analyze,
) -> None:
    """Container hardening alone does not make Redis safe: its defaults are plaintext, no auth,
    and the official image turns protected mode off (and, named by digest alone, may load
    Redis 8's modules)."""
    stack = _stack(NET, _container(
        "kv", image="redis@sha256:" + "d" * 64, networksAdvanced=[{"name": "kv-qa-net"}],
        **HARDENED))  # fmt: skip
    findings = analyze(stack)
    assert mandatory(findings) == {
        "redis-tls-only",
        "redis-tls-configured",
        "redis-protected-mode-on",
        "redis-auth-required",
        "redis-default-user-disabled",
        "redis-acl-least-privilege",
        "redis-acl-command-allowlist",
        "redis-maxmemory-below-limit",
        "redis-bulk-length-capped",
        "redis-escape-hatches-disabled",
    }, describe(findings)


def test_redis_behind_a_shell_entrypoint_and_an_opaque_image__is_recognised(
    analyze: Analyze,
) -> None:
    stack = _stack(NET, _container(
        "cache", image="sha256:" + "e" * 64,
        command=["sh", "-c",
                 "exec redis-server --port 6379 --requirepass " + foreign.PROBE_PASSWORD],
        networksAdvanced=[{"name": "kv-qa-net"}], **HARDENED))  # fmt: skip
    violated = mandatory(analyze(stack))
    assert {"redis-tls-only", "secret-argv-not-plain"} <= violated


def test_tls_without_client_certificates_and_argv_password__is_rejected(
    analyze: Analyze,
) -> None:
    stack = _stack(NET, _container(
        "kv", image="bitnami/redis@sha256:" + "f" * 64,
        command=["redis-server", "--port", "0", "--tls-port", "6379", "--tls-cert-file", "/c",
                 "--tls-key-file", "/k", "--tls-ca-cert-file", "/ca", "--tls-auth-clients", "no",
                 "--requirepass", foreign.PROBE_PASSWORD],
        networksAdvanced=[{"name": "kv-qa-net"}], **HARDENED))  # fmt: skip
    violated = mandatory(analyze(stack))
    assert {"redis-client-cert-required", "secret-argv-not-plain"} <= violated
    assert "redis-tls-only" not in violated


def test_app_whose_name_mentions_redis__is_not_judged_as_redis(analyze: Analyze) -> None:
    stack = _stack(NET, _container(
        "redis-exporter", name="redis-exporter",
        image="oliver006/redis_exporter@sha256:" + "1" * 64,
        networksAdvanced=[{"name": "kv-qa-net"}], **HARDENED))  # fmt: skip
    findings = analyze(stack)
    assert not mandatory(findings), describe(findings)


@pytest.mark.parametrize(
    "url",
    ["redis://cache:6379/0", "rediss://cache:6380/0?ssl_cert_reqs=none",
     "rediss://web:" + foreign.WEB_PASSWORD + "@cache:6380/0"],
    ids=["plaintext", "no-verification", "password-in-url"],
)  # fmt: skip
def test_foreign_client_with_a_weak_redis_url__is_rejected(analyze: Analyze, url: str) -> None:
    stack = mutate(foreign.records(), "web", lambda p: p["envs"].__setitem__(0, f"CACHE_URL={url}"))
    violated = mandatory(analyze(stack))
    expected = "secret-env-not-plain" if "@" in url else "redis-clients-use-tls"
    assert expected in violated


def _joined_the_v3_way(network: str) -> list[Any]:
    """The secure stack with Redis joining its network through pulumi-docker v3's deprecated
    `networks` and `networkAliases` (the provider joins them as networksAdvanced entries)."""
    raw = foreign.raw()
    cache = next(item for item in raw if item["name"] == "cache")["props"]
    del cache["networksAdvanced"]
    cache.update(networks=[network], networkAliases=["cache"])
    return foreign.records(raw)


def test_secure_foreign_stack_joining_by_v3_networks__passes(analyze: Analyze) -> None:
    """Red before: "it is on Docker's default bridge" for a container on the stack's network."""
    findings = analyze(_joined_the_v3_way("shop-prod-cache"))
    assert not mandatory(findings), describe(findings)


def test_v3_networks_naming_another_network__is_rejected_naming_it(analyze: Analyze) -> None:
    findings = analyze(_joined_the_v3_way("someone-elses-net"))
    assert {"stack-network-scoped", "network-redis-internal-only"} <= mandatory(findings)
    assert any(
        f.policy == "network-redis-internal-only" and "its network 'someone-elses-net'" in f.message
        for f in findings
    ), describe(findings)


def _joined_by_a_computed_id(entry: str, *, edge_id: str | None) -> list[Any]:
    """A Redis container whose networksAdvanced entry an `apply` computed from the internal
    cache network's outputs (the engine's propertyDependencies name that network), beside a
    routable edge network; the networks carry their `id` outputs as a stack policy sees them
    under `pulumi up` (the bridged provider's outputs include `id`)."""
    cache_urn = f"urn:pulumi:qa::kv::{NETWORK}::cache-net"
    edge = {"name": "kv-qa-edge", **({"id": edge_id} if edge_id else {})}
    return parse_records(
        [
            {"type": NETWORK, "name": "cache-net",
             "props": {"name": "kv-qa-cache", "internal": True, "id": "c" * 64}},
            {"type": NETWORK, "name": "edge-net", "props": edge},
            {"type": CONTAINER, "name": "kv",
             "props": {**HARDENED, "image": foreign.REDIS_IMAGE, "name": "kv-qa-redis",
                       "networksAdvanced": [{"name": entry}]},
             "options": {"propertyDependencies": {"networksAdvanced": [cache_urn]}}},
        ],
        source="test", stack="qa", project="kv",
    )  # fmt: skip


def test_network_id_an_apply_computed__is_the_network_whose_id_output_it_is(
    analyze: Analyze,
) -> None:
    """`cache_net.id.apply(...)` returning the routable edge network's short ID: the entry is
    the edge network's, by its `id` output, not the cache network's whose outputs flowed in
    (red before: tied to the internal cache network by the flow alone, so Redis on a
    routable network passed)."""
    findings = analyze(_joined_by_a_computed_id("e" * 12, edge_id="e" * 64))
    messages = [f.message for f in findings if f.policy == "network-redis-internal-only"]
    assert messages == [
        "Network edge-net (kv-qa-edge) must set internal: true, because Redis container kv "
        "(kv-qa-redis) joins it; it has a route to other networks."
    ], describe(findings)


def test_network_id_matching_no_networks_id_output__is_not_this_stacks(
    analyze: Analyze,
) -> None:
    """Every network's `id` is known and the ID-shaped entry is none of them: another
    network's, whatever flowed into the property (red before: the cache network's)."""
    findings = analyze(_joined_by_a_computed_id("f" * 64, edge_id="e" * 64))
    assert {"stack-network-scoped", "network-redis-internal-only"} <= mandatory(findings)


def test_network_id_with_a_networks_id_unknown__is_tied_by_the_flow_as_before(
    analyze: Analyze,
) -> None:
    """Where a network's `id` is not in the records (a first preview, a render, inputs), the
    pack cannot see what the apply computed: the network whose outputs flowed in, alone and
    accounting for nothing else, is taken to be the one joined (docs/policy.md, "On
    someone else's program")."""
    findings = analyze(_joined_by_a_computed_id("f" * 64, edge_id=None))
    assert not {"stack-network-scoped", "network-redis-internal-only"} & mandatory(findings), (
        describe(findings)
    )


def test_redis_joining_its_internal_network_by_id_through_network_mode__passes_the_network_rules(
    analyze: Analyze,
) -> None:
    """`network_mode=network.id` joins the network as networksAdvanced by ID does: the network
    whose outputs flowed into networkMode (the engine's propertyDependencies) is the one it is
    on, so an internal network of the stack passes and a routed one is named."""

    def program(internal: bool) -> Callable[[], None]:
        def declare() -> None:
            network = docker.Network("cache-net", name="shop-prod-cache", internal=internal)
            docker.Container(
                "cache", name="shop-prod-cache", image=foreign.REDIS_IMAGE, network_mode=network.id
            )

        return declare

    def network_findings(internal: bool) -> list[str]:
        records = render_program(program(internal), project=foreign.PROJECT, stack=foreign.STACK)
        return [
            f"{f.policy}: {f.message}"
            for f in analyze(records)
            if f.policy in ("stack-network-scoped", "network-redis-internal-only")
        ]

    assert network_findings(internal=True) == []
    assert network_findings(internal=False) == [
        "network-redis-internal-only: Network cache-net (shop-prod-cache) must set internal: "
        "true, because Redis container cache (shop-prod-cache) joins it; it has a route to other "
        "networks."
    ]


# -- the official image's docker-entrypoint.sh named on argv -------------------------------------
# It prepends redis-server to options or a .conf file wherever it runs (as the image's
# entrypoint, as `entrypoints`, first in `command`, or inside `sh -c`), so the settings it is
# handed are judged, not refused as a script's.


@pytest.mark.parametrize(
    ("entrypoints", "command"),
    [
        pytest.param(["docker-entrypoint.sh"], ["/secrets/redis.conf"], id="entrypoints"),
        pytest.param(["/usr/local/bin/docker-entrypoint.sh"], ["/secrets/redis.conf"],
                     id="entrypoints-full-path"),
        pytest.param(None, ["docker-entrypoint.sh", "/secrets/redis.conf"], id="command"),
        pytest.param(None, ["sh", "-c", "umask 077 && exec docker-entrypoint.sh "
                            "/secrets/redis.conf"], id="behind-sh-c"),
    ],
)  # fmt: skip
def test_secure_server_started_through_the_official_entrypoint__passes(
    analyze: Analyze, entrypoints: list[str] | None, command: list[str]
) -> None:
    def start(props: dict[str, Any]) -> None:
        props["command"] = command
        if entrypoints is not None:
            props["entrypoints"] = entrypoints

    findings = analyze(mutate(foreign.records(), "cache", start))
    assert not mandatory(findings), describe(findings)


def test_plaintext_server_behind_a_script_that_runs_the_official_entrypoint__is_rejected(
    analyze: Analyze,
) -> None:
    """It was taken for a script that runs something else, and no Redis rule judged it."""
    stack = _stack(NET, _container(
        "kv", image="redis@sha256:" + "d" * 64, networksAdvanced=[{"name": "kv-qa-net"}],
        command=["sh", "-c", "chown -R redis /data && exec docker-entrypoint.sh --appendonly yes"],
        **HARDENED))  # fmt: skip
    findings = analyze(stack)
    assert {"redis-tls-only", "redis-protected-mode-on", "redis-auth-required"} <= mandatory(
        findings
    ), describe(findings)
    assert any(
        f.message == "Redis container kv must keep protected-mode yes; the image turns it off by "
        "default."
        for f in findings
    ), describe(findings)


@pytest.mark.parametrize(
    ("image", "entrypoints", "violated"),
    [
        pytest.param("redis:8.2.1@sha256:" + "a" * 64, None, {"redis-escape-hatches-disabled"},
                     id="redis-8-through-its-entrypoint"),
        pytest.param("redis:8.2.1@sha256:" + "a" * 64, ["redis-server"], set(),
                     id="redis-8-without-its-entrypoint"),
        pytest.param("redis:7.4.2@sha256:" + "a" * 64, None, set(), id="redis-7"),
        pytest.param("docker.io/library/redis@sha256:" + "a" * 64, None,
                     {"redis-escape-hatches-disabled"}, id="digest-alone-names-no-version"),
        pytest.param("docker.io/library/redis@sha256:" + "a" * 64, ["redis-server"], set(),
                     id="digest-alone-without-its-entrypoint"),
    ],
)  # fmt: skip
def test_secure_server_on_the_official_redis_8_image__is_told_it_loads_modules(
    analyze: Analyze, image: str, entrypoints: list[str] | None, violated: set[str]
) -> None:
    """From Redis 8 the official image's entrypoint loads the modules it ships, after the
    program's own options: a secure config otherwise passed with four modules loaded."""

    def run(props: dict[str, Any]) -> None:
        props["image"] = image
        if entrypoints is not None:
            props["entrypoints"] = entrypoints
            props["command"] = ["/secrets/redis.conf"]

    findings = analyze(mutate(foreign.records(), "cache", run))
    assert mandatory(findings) == violated, describe(findings)
