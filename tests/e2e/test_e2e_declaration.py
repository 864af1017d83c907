"""What runs is what the program declares: each Docker object compared with its declaration.

Expectations are written here from pulumi-docker's documented semantics (MB -> bytes, Go
durations -> ns, labels lists -> maps), not by calling the applier's translation, so a
translation bug cannot confirm itself. Values the render generates afresh each time
(certificates, secrets, the material-revision label) are compared for consistency instead.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import docker
import pytest

from infra.naming import MATERIAL_LABEL
from infra.pulumi_names import IMAGE, VOLUME
from infra.render import RenderedResource
from tests.e2e.hosts import container_host, stat_dir
from tests.e2e.probes import ProbeContainer, probe_labels, started_probes
from tests.e2e.stacks import CONTAINER, ONE_SHOT, SERVICES, STOPPED, Stack

pytestmark = pytest.mark.security("deployment")

MIB = 1024 * 1024
CONTAINERS = (*SERVICES, *ONE_SHOT, *STOPPED)
# The health-check durations the program declares, in the nanoseconds Docker stores, written
# out here (not computed by the applier's parser): Redis and the app 5s interval, 5s timeout,
# 10s start period; the initialisers 5s interval, 3s timeout.
DURATION_NS = {"3s": 3_000_000_000, "5s": 5_000_000_000, "10s": 10_000_000_000}


def duration_ns(where: str, text: str) -> int:
    if text not in DURATION_NS:
        pytest.fail(
            f"{where}: declared duration {text!r} is not in this test's table {sorted(DURATION_NS)}"
            "; add its nanoseconds to DURATION_NS (worked out by hand, not by the applier)",
            pytrace=False,
        )
    return DURATION_NS[text]


def labels(props: dict[str, Any]) -> dict[str, str]:
    return {item["label"]: item["value"] for item in props.get("labels") or []}


def declared(stack: Stack, suffix: str) -> dict[str, Any]:
    return stack.declared_container(suffix).props


@pytest.fixture(scope="module")
def inspected(stack: Stack, docker_client: docker.DockerClient) -> dict[str, dict[str, Any]]:
    return {s: docker_client.api.inspect_container(stack.object(s)) for s in CONTAINERS}


@pytest.mark.parametrize("suffix", CONTAINERS)
def test_declaration__container_config(
    stack: Stack, inspected: dict[str, dict[str, Any]], suffix: str
) -> None:
    props, actual = declared(stack, suffix), inspected[suffix]
    config, host = actual["Config"], actual["HostConfig"]
    where = stack.object(suffix)
    if "command" in props and suffix.endswith("-init"):
        # An initialiser's last argument is its material revision, generated afresh by each
        # render: checked against the container's own label instead.
        assert config["Cmd"][:-1] == props["command"][:-1], f"{where}: Cmd differs"
        assert config["Cmd"][-1] == config["Labels"][MATERIAL_LABEL], f"{where}: revision"
    elif "command" in props:
        assert config["Cmd"] == props["command"], f"{where}: Cmd differs from `command`"
    if "entrypoints" in props:
        assert config["Entrypoint"] == props["entrypoints"], f"{where}: Entrypoint differs"
    assert config["User"] == props["user"], f"{where}: User"
    # Env is compared by name only in the message: a value could be a secret.
    missing = sorted(
        e.split("=", 1)[0] for e in props.get("envs") or [] if e not in (config["Env"] or [])
    )
    assert missing == [], f"{where}: Env lacks (or has another value for) {missing}"
    assert host["ReadonlyRootfs"] is bool(props.get("readOnly")), f"{where}: ReadonlyRootfs"
    assert (host.get("Tmpfs") or {}) == (props.get("tmpfs") or {}), f"{where}: Tmpfs"
    assert host["CapDrop"] == props["capabilities"]["drops"], f"{where}: CapDrop"
    assert not host.get("CapAdd"), f"{where}: CapAdd"
    assert host["SecurityOpt"] == props["securityOpts"], f"{where}: SecurityOpt"
    assert host["Privileged"] is bool(props.get("privileged")), f"{where}: Privileged"
    assert host["Memory"] == props["memory"] * MIB, f"{where}: Memory"
    assert host["MemorySwap"] == props["memorySwap"] * MIB, f"{where}: MemorySwap"
    assert host["NanoCpus"] == int(float(props["cpus"]) * 1e9), f"{where}: NanoCpus"
    # Settable on the running container with `docker update` (drift the applier's up sets
    # back, infra/applier/drift.py); the program leaves them unset unless it declares them.
    assert (host.get("CpuShares") or 0) == props.get("cpuShares", 0), f"{where}: CpuShares"
    assert (host.get("CpusetCpus") or "") == props.get("cpuSet", ""), f"{where}: CpusetCpus"
    assert host.get("PidsLimit") in (None, 0, -1), f"{where}: PidsLimit set (none is declared)"
    assert host["IpcMode"] == props.get("ipcMode", host["IpcMode"]), f"{where}: IpcMode"
    if "stopTimeout" in props:
        assert config["StopTimeout"] == props["stopTimeout"], f"{where}: StopTimeout"
    if "logDriver" in props:
        assert host["LogConfig"]["Type"] == props["logDriver"], f"{where}: LogConfig.Type"
        assert host["LogConfig"]["Config"] == props.get("logOpts", {}), f"{where}: log opts"
    restart = host["RestartPolicy"]
    assert restart["Name"] == props.get("restart", "no"), f"{where}: RestartPolicy"
    assert restart["MaximumRetryCount"] == props.get("maxRetryCount", 0), f"{where}: retries"


@pytest.mark.parametrize("suffix", CONTAINERS)
def test_declaration__container_labels(
    stack: Stack, inspected: dict[str, dict[str, Any]], suffix: str
) -> None:
    want = labels(declared(stack, suffix))
    have = inspected[suffix]["Config"]["Labels"]
    # The revision hashes freshly generated material, so it differs from a new render; it is
    # checked for consistency between initialiser and consumer below.
    want.pop(MATERIAL_LABEL, None)
    assert {k: have.get(k) for k in want} == want
    if suffix in ONE_SHOT:
        assert have.get(MATERIAL_LABEL), "every initialiser and reload job carries its revision"
    else:
        assert MATERIAL_LABEL not in have, "a consumer never names its material (no restart)"


@pytest.mark.parametrize("consumer", ["redis", "app", "redis-exporter"])
def test_declaration__consumer_reads_the_material_its_initialiser_wrote(
    stack: Stack, inspected: dict[str, dict[str, Any]], consumer: str
) -> None:
    init = inspected[f"{consumer}-init"]["Config"]["Labels"][MATERIAL_LABEL]
    mount = declared(stack, f"{consumer}-init")["mounts"][0]["target"]
    current = container_host(stack.object(consumer)).run("readlink %s/..data", mount)
    assert current.stdout.strip() == f"..{init}", "the volume's current revision"


@pytest.mark.parametrize("suffix", [*SERVICES, "redis-init", "app-init", "redis-exporter-init"])
def test_declaration__healthcheck(
    stack: Stack, inspected: dict[str, dict[str, Any]], suffix: str
) -> None:
    want = declared(stack, suffix)["healthcheck"]
    have = inspected[suffix]["Config"]["Healthcheck"]
    where = stack.object(suffix)
    assert have["Test"] == want["tests"]
    for key, name in (
        ("interval", "Interval"),
        ("timeout", "Timeout"),
        ("startPeriod", "StartPeriod"),
    ):
        if key in want:  # an undeclared one is the image's HEALTHCHECK value (engine merge)
            expected = duration_ns(f"{where} healthcheck.{key}", want[key])
            assert have.get(name) == expected, f"{where}: Healthcheck.{name}"
    assert have.get("Retries", 0) == want.get("retries", 0)


@pytest.mark.parametrize("suffix", CONTAINERS)
def test_declaration__mounts(
    stack: Stack, inspected: dict[str, dict[str, Any]], suffix: str
) -> None:
    want = sorted(
        (m["type"], m["source"], m["target"], not m.get("readOnly", False))
        for m in declared(stack, suffix).get("mounts") or []
    )
    have = sorted(
        # A bind mount has a Source and no Name (a docker.sock one, for instance).
        (m["Type"], m.get("Name") or m.get("Source"), m["Destination"], m["RW"])
        for m in inspected[suffix]["Mounts"]
        if m["Type"] != "tmpfs"
    )
    assert have == want, "only the declared volumes, with the declared access (no anonymous ones)"


@pytest.mark.parametrize("suffix", CONTAINERS)
def test_declaration__networks(
    stack: Stack, inspected: dict[str, dict[str, Any]], suffix: str
) -> None:
    props = declared(stack, suffix)
    networks = inspected[suffix]["NetworkSettings"]["Networks"]
    if "networksAdvanced" in props:
        want = {n["name"] for n in props["networksAdvanced"]}
        assert set(networks) == want, (
            f"{stack.object(suffix)}: on networks it does not declare: "
            f"{sorted(set(networks) - want)}, missing from {sorted(want - set(networks))}"
        )
        for net in props["networksAdvanced"]:
            assert set(net.get("aliases") or []) <= set(networks[net["name"]]["Aliases"] or [])
    else:
        assert inspected[suffix]["HostConfig"]["NetworkMode"] == props["networkMode"]
        assert set(networks) <= {props["networkMode"]}


@pytest.mark.parametrize("suffix", CONTAINERS)
def test_declaration__ports(
    stack: Stack, inspected: dict[str, dict[str, Any]], suffix: str
) -> None:
    want = {
        f"{p['internal']}/{p.get('protocol', 'tcp')}": [
            {"HostIp": p.get("ip", "0.0.0.0"), "HostPort": str(p["external"])}
        ]
        for p in declared(stack, suffix).get("ports") or []
    }
    assert (inspected[suffix]["HostConfig"].get("PortBindings") or {}) == want


@pytest.mark.parametrize("suffix", CONTAINERS)
def test_declaration__image_is_the_one_built_from_the_declared_build(
    stack: Stack,
    inspected: dict[str, dict[str, Any]],
    docker_client: docker.DockerClient,
    suffix: str,
) -> None:
    props = declared(stack, suffix)
    images = {r.outputs["repoDigest"]: r for r in stack.declared.resources if r.type == IMAGE}
    declared_image: RenderedResource = images[props["image"]]
    built = docker_client.api.inspect_image(declared_image.props["imageName"])
    tag = declared_image.props["imageName"]
    assert inspected[suffix]["Image"] == built["Id"], (
        f"{stack.object(suffix)} runs {inspected[suffix]['Image'][:19]}, not {built['Id'][:19]}"
        f" that {tag} names (the tag moved, or the container runs another image)"
    )


@pytest.mark.parametrize("suffix", ONE_SHOT)
def test_declaration__initialiser_ran_to_completion(
    inspected: dict[str, dict[str, Any]], suffix: str
) -> None:
    state = inspected[suffix]["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 0)


@pytest.mark.parametrize("suffix", STOPPED)
def test_declaration__the_rotation_pass_is_declared_and_not_running(
    inspected: dict[str, dict[str, Any]], suffix: str
) -> None:
    """Created stopped by the up (start false); scripts/rotate.sh runs it to completion."""
    state = inspected[suffix]["State"]
    assert state["Running"] is False
    assert state["Status"] in ("created", "exited")
    assert state["Status"] == "created" or state["ExitCode"] == 0


@pytest.mark.parametrize("suffix", SERVICES)
def test_declaration__long_running_container_is_running_and_healthy(
    inspected: dict[str, dict[str, Any]], suffix: str
) -> None:
    state = inspected[suffix]["State"]
    assert state["Running"] is True
    assert state["Health"]["Status"] == "healthy"


@pytest.mark.parametrize("role", ["backend", "frontend"])
def test_declaration__network(stack: Stack, docker_client: docker.DockerClient, role: str) -> None:
    props = stack.declared.named(stack.object(role)).props
    net = docker_client.api.inspect_network(stack.object(role))
    assert net["Driver"] == props["driver"]
    assert net["Internal"] is bool(props.get("internal"))
    assert net["Attachable"] is bool(props.get("attachable"))
    assert net["Ingress"] is bool(props.get("ingress"))
    assert (net.get("Options") or {}) == (props.get("options") or {})
    assert net["Labels"] == labels(props)


@pytest.mark.parametrize("role", ["backend", "frontend"])
def test_declaration__only_the_stacks_containers_are_on_its_network(
    stack: Stack, docker_client: docker.DockerClient, probe_ids: Path, role: str
) -> None:
    """A container attached by hand (`docker run --network <backend>`: attack pass of
    2026-12-03) reaches Redis's port from inside the network, where no firewall rule applies;
    only what the stack declares, and the probes this run of the suite created (by ID), may be
    there."""
    network = stack.object(role)
    foreign = strangers(docker_client, stack, network, started_probes(probe_ids))
    assert foreign == [], (
        f"{network}: containers the stack does not declare are attached: {sorted(foreign)}; "
        f"remove them or `docker network disconnect {network} <container>`"
    )


def strangers(
    client: docker.DockerClient, stack: Stack, network: str, probes: frozenset[str]
) -> list[str]:
    """Names of the containers on `network` that are neither the stack's nor among `probes`
    (IDs of the probes this run created: tests/e2e/probes.py record_probes)."""
    ours = {stack.object(suffix) for suffix in CONTAINERS}
    attached = client.api.inspect_network(network).get("Containers") or {}
    return sorted(
        endpoint.get("Name", cid[:12])
        for cid, endpoint in attached.items()
        if endpoint.get("Name") not in ours and cid not in probes
    )


def test_declaration__a_container_with_the_probe_label_the_suite_did_not_start_is_a_stranger(
    stack: Stack, docker_client: docker.DockerClient, probe_ids: Path
) -> None:
    """The probe label is only a label: anyone who can run a container can set it (and
    `docker inspect` shows it on any probe), so it must not exempt a container from the
    check above. Made here with the docker CLI, not the suite's client, as an attacker would."""
    image = str(docker_client.api.inspect_container(stack.app)["Image"])
    name = f"secure-redis-e2e-forged-{uuid.uuid4().hex[:8]}"
    labels = [f"--label={key}={value}" for key, value in probe_labels("forged").items()]
    subprocess.run(
        ["docker", "run", "-d", "--name", name, "--network", stack.backend, *labels,
         "--entrypoint", "sleep", "--read-only", "--cap-drop", "ALL", image, "infinity"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    try:
        probes = started_probes(probe_ids)
        assert name in strangers(docker_client, stack, stack.backend, probes)
        # One the suite made itself is no stranger.
        ours = ProbeContainer(docker_client, image, network=stack.backend, mounts={}, purpose="own")
        try:
            assert ours.name not in strangers(
                docker_client, stack, stack.backend, started_probes(probe_ids)
            )
        finally:
            ours.remove()
    finally:
        subprocess.run(["docker", "rm", "-f", name], check=False, capture_output=True, timeout=60)


def test_declaration__volumes(stack: Stack, docker_client: docker.DockerClient) -> None:
    for volume in stack.declared.of_type(VOLUME):
        have = docker_client.api.inspect_volume(volume.props["name"])
        assert have["Driver"] == volume.props.get("driver", "local")
        assert have["Labels"] == labels(volume.props)


def test_declaration__images_carry_the_stack_labels(
    stack: Stack, docker_client: docker.DockerClient
) -> None:
    for image in stack.declared.of_type(IMAGE):
        have = docker_client.api.inspect_image(image.props["imageName"])["Config"]["Labels"]
        assert have["io.secure-redis.stack"] == stack.name
        # The exporter's image is the app's, built with the exporter's uid (its role label is
        # the Dockerfile's own).
        assert have["io.secure-redis.role"] in ("redis", "app")


def test_declaration__every_declared_container_exists(
    stack: Stack, docker_client: docker.DockerClient
) -> None:
    names = {r.props["name"] for r in stack.declared.of_type(CONTAINER)}
    have = {
        c.name
        for c in docker_client.containers.list(
            all=True, filters={"label": f"io.secure-redis.stack={stack.name}"}
        )
    }
    assert have == names, (
        f"exactly the declared containers carry the stack label; missing {sorted(names - have)}, "
        f"not declared {sorted(have - names)}"
    )


@pytest.mark.parametrize("suffix", ["redis-init", "app-init", "redis-exporter-init"])
def test_declaration__uploaded_files_landed_with_declared_mode_and_owner(
    stack: Stack, suffix: str
) -> None:
    """The initialiser's uploads, copied into the consumer's volume: every declared file,
    with the declared permissions and owner (read in the consumer, which mounts it read-only)."""
    props = declared(stack, suffix)
    consumer = container_host(stack.object(suffix.removesuffix("-init")))
    mount = props["mounts"][0]["target"]
    landed = stat_dir(consumer, mount)
    for upload in props["uploads"]:
        name = upload["file"].rsplit("/", 1)[1]
        assert name in landed, f"{mount}/{name} missing"
        want = (int(upload["permissions"], 8), int(upload["owner"]), int(upload["group"]))
        mode, uid, gid = landed[name]
        assert landed[name] == want, (
            f"{mount}/{name}: mode {mode:04o} owner {uid}:{gid}, declared "
            f"{want[0]:04o} {want[1]}:{want[2]}"
        )


def test_declaration__non_secret_uploads_have_the_declared_content(stack: Stack) -> None:
    """redis.conf carries no generated value: the file Redis reads is byte-for-byte the
    declared one."""
    props = declared(stack, "redis-init")
    (conf,) = [u for u in props["uploads"] if u["file"].endswith("/redis.conf")]
    have = container_host(stack.redis).file("/etc/secure-redis/redis.conf").content_string
    # Only line numbers on failure: the file is not meant to hold a secret, but if a bug put
    # one there, the message must not show it.
    have_lines, want_lines = have.splitlines(), str(conf["content"]).splitlines()
    differ = [
        n + 1
        for n in range(max(len(have_lines), len(want_lines)))
        if have_lines[n : n + 1] != want_lines[n : n + 1]
    ]
    same = have == conf["content"]
    assert same, f"redis.conf in {stack.redis} differs from the declared one at lines {differ}"
