"""Security model points 3 (network) and 4 (runtime) on the rendered containers, per stack."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from infra.components.app import APP_NPROC
from infra.components.exporter import METRICS_ALIAS
from infra.components.redis import REDIS_NPROC
from infra.naming import Role
from infra.pulumi_names import CONTAINER, IMAGE, NETWORK, VOLUME
from infra.render import RenderedResource, RenderedStack, render_settings
from infra.rotation_probe import APP_API
from infra.runtime_ids import STACK_SLOTS, RuntimeIdError, image_default_id, runtime_id
from infra.settings import SettingsError, load_settings
from tests.unit.conftest import argv_value, container, container_roles, labels

SERVICES = container_roles(one_shot=False)
ALL_CONTAINERS = container_roles()
# Well-known ids of a Debian host (0-999 system, 1000-59999 accounts, 60000-65535 Debian's
# global and systemd's dynamic ranges, 100000+ subordinate ranges); see infra/runtime_ids.py.
HOST_RANGES = (range(0, 65536), range(100000, 2**32))


def _network(stack: RenderedStack, role: str) -> RenderedResource:
    return stack.named(f"secure-redis-{stack.stack}-{role}")


def _network_names(resource: RenderedResource) -> list[str]:
    return [n["name"] for n in resource.props.get("networksAdvanced", [])]


# --- 3. Network ----------------------------------------------------------------------------


def test_backend_network__is_internal(stack: RenderedStack) -> None:
    backend = _network(stack, "backend")
    assert backend.props.get("internal") is True, f"{backend.urn}: backend must be internal"


def test_networks__use_the_bridge_driver_and_no_swarm_features(stack: RenderedStack) -> None:
    for network in stack.of_type(NETWORK):
        props = network.props
        assert props["driver"] == "bridge", f"{network.urn}: driver {props['driver']}"
        assert not props.get("attachable"), f"{network.urn}: must not be attachable"
        assert not props.get("ingress"), f"{network.urn}: must not be a swarm ingress"


def test_frontend_network__binds_published_ports_to_loopback(stack: RenderedStack) -> None:
    frontend = _network(stack, "frontend")
    options = frontend.props.get("options", {})
    assert options.get("com.docker.network.bridge.host_binding_ipv4") == "127.0.0.1", frontend.urn


def test_redis__is_only_on_the_backend_network(stack: RenderedStack) -> None:
    redis = container(stack, "redis")
    assert _network_names(redis) == [f"secure-redis-{stack.stack}-backend"], (
        f"{redis.urn}: Redis must join the internal backend network only"
    )
    assert "networkMode" not in redis.props or redis.props["networkMode"] != "host"


def test_redis__publishes_no_port(stack: RenderedStack) -> None:
    redis = container(stack, "redis")
    assert not redis.props.get("ports"), f"{redis.urn}: Redis must not publish a port"
    assert not redis.props.get("publishAllPorts"), f"{redis.urn}: publishAllPorts must be off"


def test_app__joins_backend_and_frontend(stack: RenderedStack) -> None:
    names = _network_names(container(stack, "app"))
    assert sorted(names) == sorted(
        [f"secure-redis-{stack.stack}-backend", f"secure-redis-{stack.stack}-frontend"]
    )


def test_app__publishes_http_on_loopback_only(stack: RenderedStack) -> None:
    app = container(stack, "app")
    ports = app.props["ports"]
    assert [(p["ip"], p["internal"], p["external"]) for p in ports] == [
        ("127.0.0.1", 8080, stack.settings.app_host_port)
    ], f"{app.urn}: the HTTP port must be published on 127.0.0.1 only"


def test_rotation_probe__asks_the_api_on_the_port_the_app_container_listens_on(
    stack: RenderedStack,
) -> None:
    """The probe asks the API from inside the app container (infra/rotation_probe.py); the
    port it uses and the one the program publishes are one constant (infra/naming.py)."""
    app = container(stack, "app")
    assert [p["internal"] for p in app.props["ports"]] == [urlsplit(APP_API).port]
    assert urlsplit(APP_API).hostname == "127.0.0.1"


def test_exporter__listens_on_a_name_only_the_frontend_network_gives_it(
    stack: RenderedStack,
) -> None:
    """A container on the backend network alone (Redis, a reload job, the rotation pass) has no
    route to the frontend network, so it can neither read the exporter's /metrics nor take
    its connection slots from Prometheus (it took them while the exporter listened on
    0.0.0.0). Its own name resolves on both networks; the alias only on the frontend."""
    exporter = container(stack, "redis-exporter")
    envs = dict(e.split("=", 1) for e in exporter.props["envs"])
    networks = {n["name"]: n.get("aliases") or [] for n in exporter.props["networksAdvanced"]}
    assert envs["METRICS_HOST"] == METRICS_ALIAS, f"{exporter.urn}: listens on every interface"
    assert networks == {
        f"secure-redis-{stack.stack}-backend": [],
        f"secure-redis-{stack.stack}-frontend": [METRICS_ALIAS],
    }, f"{exporter.urn}: {networks}"


def test_container_networks__belong_to_this_stack(stack: RenderedStack) -> None:
    declared = {n.props["name"] for n in stack.of_type(NETWORK)}
    for resource in stack.of_type(CONTAINER):
        for name in _network_names(resource):
            assert name in declared, f"{resource.urn}: joins {name}, not a network of this stack"


@pytest.mark.parametrize("role", ["redis-init", "app-init"])
def test_init_container__has_no_network(stack: RenderedStack, role: str) -> None:
    init = container(stack, role)
    assert init.props["networkMode"] == "none", f"{init.urn}: an initialiser needs no network"
    assert not init.props.get("networksAdvanced"), f"{init.urn}: joins a network"
    assert not init.props.get("ports"), f"{init.urn}: publishes a port"


# --- 4. Runtime ----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ALL_CONTAINERS)
def test_container__runs_as_the_uid_its_image_was_built_for(
    stack: RenderedStack, role: str
) -> None:
    """Each image is built for its role's uid (test_images__are_built_locally_for_this_stack);
    every container, initialisers and reload jobs included, runs as the uid of its image."""
    resource = container(stack, role)
    images = {image.outputs["repoDigest"]: image for image in stack.of_type(IMAGE)}
    uid = images[resource.props["image"]].props["build"]["args"]["SECURE_REDIS_UID"]
    assert resource.props.get("user") == f"{uid}:{uid}", f"{resource.urn}: must run as {uid}"


@pytest.mark.parametrize("role", ALL_CONTAINERS)
def test_container__uid_is_allocated_to_nothing_on_a_debian_host(
    stack: RenderedStack, role: str
) -> None:
    user, group = (int(x) for x in container(stack, role).props["user"].split(":"))
    for value in (user, group):
        assert not any(value in r for r in HOST_RANGES), f"{role}: id {value} is a host id"


def test_containers__of_every_stack_and_role_have_their_own_uid() -> None:
    ids = [runtime_id(s, r) for s in STACK_SLOTS for r in (Role.REDIS, Role.APP)]
    assert len(set(ids)) == len(ids)
    assert (
        len(set(ids) | {image_default_id(Role.REDIS), image_default_id(Role.APP)}) == len(ids) + 2
    )


@pytest.mark.parametrize(("role", "nproc"), [("redis", REDIS_NPROC), ("app", APP_NPROC)])
def test_service__has_an_nproc_ulimit(stack: RenderedStack, role: str, nproc: int) -> None:
    ulimits = container(stack, role).props.get("ulimits")
    assert ulimits == [{"name": "nproc", "soft": nproc, "hard": nproc}], ulimits


def test_runtime_id__refuses_a_stack_without_a_block() -> None:
    with pytest.raises(RuntimeIdError, match=r"set secure-redis:runtimeIdSlot"):
        runtime_id("qa", Role.APP)


def test_runtime_id__a_configured_slot_gives_the_stack_its_own_block() -> None:
    assert runtime_id("qa", Role.APP, 42) == 74202
    assert runtime_id("qa", Role.REDIS, 42) == 74201


def test_render__a_stack_without_a_slot_is_told_to_set_runtime_id_slot() -> None:
    config = {"secure-redis:environment": "development"}
    with pytest.raises(SettingsError, match=r"needs secure-redis:runtimeIdSlot"):
        render_settings(load_settings("qa", config))
    slotted = render_settings(load_settings("qa", {**config, "secure-redis:runtimeIdSlot": 42}))
    users = {r.props.get("user") for r in slotted.resources if r.props.get("user")}
    assert "74201:74201" in users
    assert "74202:74202" in users


@pytest.mark.parametrize("role", SERVICES)
def test_service__has_a_read_only_root_filesystem(stack: RenderedStack, role: str) -> None:
    resource = container(stack, role)
    assert resource.props.get("readOnly") is True, f"{resource.urn}: readOnly must be true"


@pytest.mark.parametrize("role", SERVICES)
def test_service__tmp_is_a_noexec_tmpfs(stack: RenderedStack, role: str) -> None:
    options = container(stack, role).props["tmpfs"]["/tmp"].split(",")
    assert {"noexec", "nosuid", "nodev"} <= set(options)


@pytest.mark.parametrize("role", ALL_CONTAINERS)
def test_container__drops_all_capabilities(stack: RenderedStack, role: str) -> None:
    resource = container(stack, role)
    capabilities = resource.props.get("capabilities", {})
    assert capabilities.get("drops") == ["ALL"], f"{resource.urn}: must drop ALL capabilities"
    assert not capabilities.get("adds"), f"{resource.urn}: must add no capability"


@pytest.mark.parametrize("role", ALL_CONTAINERS)
def test_container__sets_no_new_privileges(stack: RenderedStack, role: str) -> None:
    resource = container(stack, role)
    assert "no-new-privileges:true" in resource.props.get("securityOpts", []), resource.urn


@pytest.mark.parametrize("role", ALL_CONTAINERS)
def test_container__is_not_privileged_and_shares_no_host_namespace(
    stack: RenderedStack, role: str
) -> None:
    props = container(stack, role).props
    assert props.get("privileged") is False
    for mode in ("networkMode", "pidMode", "ipcMode", "usernsMode"):
        assert props.get(mode) != "host", f"{mode} must not be host"


@pytest.mark.parametrize("role", ALL_CONTAINERS)
def test_container__has_memory_and_cpu_limits_without_swap(stack: RenderedStack, role: str) -> None:
    props = container(stack, role).props
    assert props.get("memory", 0) > 0, "memory limit missing"
    assert props.get("memorySwap") == props["memory"], "swap must not extend the limit"
    assert float(props.get("cpus", "0")) > 0, "cpu limit missing"


def test_redis__maxmemory_is_below_the_memory_limit(stack: RenderedStack) -> None:
    redis = container(stack, "redis")
    maxmemory = argv_value(redis.props["command"], "--maxmemory") or ""
    assert maxmemory.endswith("mb"), f"{redis.urn}: --maxmemory {maxmemory!r}"
    assert int(maxmemory[:-2]) < redis.props["memory"], f"{redis.urn}: maxmemory >= memory"


@pytest.mark.parametrize("role", SERVICES)
def test_service__restarts_on_failure_a_bounded_number_of_times(
    stack: RenderedStack, role: str
) -> None:
    props = container(stack, role).props
    assert (props.get("restart"), props.get("maxRetryCount")) == ("on-failure", 5)


@pytest.mark.parametrize("role", ALL_CONTAINERS)
def test_container__has_a_healthcheck(stack: RenderedStack, role: str) -> None:
    resource = container(stack, role)
    tests = resource.props.get("healthcheck", {}).get("tests", [])
    assert tests, f"{resource.urn}: healthcheck missing"
    assert tests[0] in {"CMD", "CMD-SHELL"}, f"{resource.urn}: healthcheck form {tests[0]!r}"


@pytest.mark.parametrize("role", SERVICES)
def test_service__deployment_waits_until_healthy(stack: RenderedStack, role: str) -> None:
    resource = container(stack, role)
    assert resource.props.get("wait") is True, f"{resource.urn}: pulumi up must wait for health"


def test_redis_healthcheck__speaks_tls_as_the_healthcheck_user(stack: RenderedStack) -> None:
    script = container(stack, "redis").props["healthcheck"]["tests"][1]
    for needed in ("--tls", "--cert /etc/secure-redis/healthcheck.crt", "--user healthcheck"):
        assert needed in script, f"healthcheck lacks {needed!r}"
    assert f"-p {stack.settings.redis_port}" in script


def test_redis_healthcheck__reads_its_password_from_a_file(stack: RenderedStack) -> None:
    script = container(stack, "redis").props["healthcheck"]["tests"][1]
    assert 'REDISCLI_AUTH="$(cat /etc/secure-redis/healthcheck.password)"' in script
    assert not re.search(r"(^|\s)(-a|--pass)\s", script), "no password flag on argv"


@pytest.mark.parametrize("role", SERVICES)
def test_service__mounts_its_material_read_only(stack: RenderedStack, role: str) -> None:
    mounts = container(stack, role).props["mounts"]
    material = [m for m in mounts if m["source"].endswith(f"{role}-material")]
    assert len(material) == 1, f"{role}: one material mount expected, got {material}"
    assert material[0]["readOnly"] is True, f"{role}: material must be mounted read-only"
    assert material[0]["type"] == "volume"


def test_redis_data__lives_on_the_stacks_named_volume(stack: RenderedStack) -> None:
    mounts = container(stack, "redis").props["mounts"]
    data = [m for m in mounts if m["target"] == "/data"]
    assert data == [
        {
            "type": "volume",
            "source": f"secure-redis-{stack.stack}-redis-data",
            "target": "/data",
            "readOnly": False,
        }
    ]


def test_containers__mount_only_volumes_of_this_stack(stack: RenderedStack) -> None:
    declared = {v.props["name"] for v in stack.of_type(VOLUME)}
    for resource in stack.of_type(CONTAINER):
        assert not resource.props.get("volumes"), f"{resource.urn}: no host paths"
        for mount in resource.props.get("mounts", []):
            assert mount["type"] == "volume", f"{resource.urn}: {mount['type']} mount"
            assert mount["source"] in declared, f"{resource.urn}: foreign volume"


# --- Identity of Docker objects -----------------------------------------------------------


def test_docker_names__are_the_stable_names(stack: RenderedStack) -> None:
    s = stack.stack
    names = {r.props["name"] for r in stack.resources if r.type in (CONTAINER, NETWORK, VOLUME)}
    assert names == {
        f"secure-redis-{s}-{suffix}"
        for suffix in (
            "redis",
            "app",
            "redis-init",
            "app-init",
            "backend",
            "frontend",
            "redis-material",
            "app-material",
            "redis-data",
            "reload-init",
            "reload-material",
            "reload-tls",
            "reload-acl",
            "redis-exporter",
            "redis-exporter-init",
            "redis-exporter-material",
            "rotation",
            "rotation-init",
            "rotation-material",
        )
    }


def test_docker_objects__carry_stack_and_role_labels(stack: RenderedStack) -> None:
    roles = {"redis", "app", "exporter", "rotation", "backend", "frontend", "data"}
    for resource in stack.resources:
        if resource.type in (CONTAINER, NETWORK, VOLUME):
            found = labels(resource)
            assert found.get("io.secure-redis.stack") == stack.stack, f"{resource.urn}: stack"
            assert found.get("io.secure-redis.role") in roles, f"{resource.urn}: role"


@pytest.mark.parametrize(
    ("suffix", "role"),
    [
        ("redis", "redis"),
        ("app", "app"),
        ("redis-exporter", "exporter"),
        ("rotation", "rotation"),
        ("backend", "backend"),
        ("frontend", "frontend"),
    ],
)
def test_role_label__matches_the_object(stack: RenderedStack, suffix: str, role: str) -> None:
    resource = stack.named(f"secure-redis-{stack.stack}-{suffix}")
    assert labels(resource)["io.secure-redis.role"] == role


def test_images__are_built_locally_for_this_stack(stack: RenderedStack) -> None:
    images = stack.of_type(IMAGE)
    assert len(images) == 4
    for image in images:
        props = image.props
        assert props["skipPush"] is True, f"{image.urn}: must never be pushed"
        assert "registry" not in props, f"{image.urn}: no registry"
        role = Role(props["imageName"].split(":")[0].rsplit("-", 1)[1])
        assert props["build"]["args"] == {
            "SECURE_REDIS_STACK": stack.stack,
            "SECURE_REDIS_UID": str(runtime_id(stack.stack, role)),
        }
        assert re.fullmatch(
            rf"secure-redis-{stack.stack}-(redis|app|exporter|rotation):[0-9a-f]{{12}}",
            props["imageName"],
        )


def test_containers__run_their_image_by_id(stack: RenderedStack) -> None:
    digests = {i.outputs["repoDigest"] for i in stack.of_type(IMAGE)}
    for resource in stack.of_type(CONTAINER):
        image = resource.props["image"]
        assert image in digests, f"{resource.urn}: image {image} is not built by this stack"
        assert image.startswith("sha256:"), f"{resource.urn}: image must be an immutable ID"


def test_redis_image__is_built_from_infra(stack: RenderedStack) -> None:
    image = next(i for i in stack.of_type(IMAGE) if i.name == "redis-image")
    assert image.props["build"]["context"].endswith("/infra/redis-image")


def test_named_docker_objects__are_deleted_before_replacement(stack: RenderedStack) -> None:
    for resource in stack.resources:
        if resource.type in (CONTAINER, NETWORK, VOLUME):
            assert resource.options["deleteBeforeReplace"] is True, (
                f"{resource.urn}: a fixed Docker name needs deleteBeforeReplace, or a "
                "replacement fails with a name conflict"
            )
