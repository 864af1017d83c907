"""Attacks on a running stack that its second hardening round closes (one test per point).

Each attack is made the way the attack report made it - as the app's Redis identity, as code
inside the app container, from the backend network - and each has a positive control beside
it, so a refusal is the stack's and not a broken probe's. After an attack the containers must
still be healthy with their restart counts unchanged.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import docker
import pytest

from infra.components.app import APP_NPROC
from infra.components.exporter import EXPORTER_NPROC, EXPORTER_PORT
from infra.components.redis import REDIS_NPROC
from infra.docker_exec import exec_run
from infra.firewall import bridge_name, chains
from infra.naming import Role
from infra.redis_acl import APP_COMMANDS
from infra.redis_conf import ENVELOPE_OVERHEAD_BYTES, VALUE_LIMIT_BYTES, output_limit_bytes
from infra.runtime_ids import runtime_id
from tests.e2e import appclient
from tests.e2e.hosts import container_host, docker_cli
from tests.e2e.probes import (
    ProbeContainer,
    app_auth,
    app_client_files,
    app_image,
    hardened,
    image_user,
    probe_labels,
    redis_tls,
)
from tests.e2e.stacks import PROBE_LABEL, Stack
from tests.support.image_builds import image_build
from tests.support.redis_commands import (
    COMMAND_REFUSED,
    CONNECTION_ONLY,
    REFUSED_BY_CONFIG,
    CommandSpec,
    local_catalog_server,
    runnable,
)

CONNECT_TIMEOUT_S: Final = 3


def session(probe: ProbeContainer, stack: Stack, commands: list[list[Any]]) -> list[str]:
    result = probe.run("tls", **redis_tls(stack, **app_client_files(), commands=commands))
    assert result["error"] is None, f"the mTLS session itself failed: {result['error']}"
    return list(result["replies"])


def restarts(client: docker.DockerClient, container: str) -> tuple[int, bool, str]:
    state = client.api.inspect_container(container)
    health = state["State"].get("Health", {}).get("Status", "none")
    return int(state["RestartCount"]), bool(state["State"]["OOMKilled"]), str(health)


def wait_healthy(client: docker.DockerClient, container: str) -> str:
    def healthy() -> str | None:
        status = restarts(client, container)[2]
        return status if status == "healthy" else None

    return appclient.wait_for(f"{container} healthy", healthy, 60)


# -- identity: one allocation cannot take Redis past its memory limit ---------------------------


@pytest.mark.security("identity")
def test_attack__setrange_oom_is_refused_and_redis_survives(
    probe: ProbeContainer, stack: Stack, docker_client: docker.DockerClient
) -> None:
    """The report's attack, as the app's identity: 256 MiB in one command. The ACL refuses
    SETRANGE to the app; for any identity that has it, proto-max-bulk-len refuses it (both are
    shown on a real server in tests/integration/test_redis_app_acl.py)."""
    before = restarts(docker_client, stack.redis)
    key = f"{stack.settings.key_prefix}oom"
    replies = session(probe, stack, [app_auth(), ["SETRANGE", key, "268435455", "x"], ["GET", key]])
    assert replies[0] == "+OK"
    assert replies[1].startswith(("-NOPERM", "-ERR string exceeds maximum allowed size")), shown(
        replies[1]
    )
    assert replies[2] == "$-1", "nothing was stored under the key"
    assert restarts(docker_client, stack.redis) == (before[0], False, "healthy")


def value_file(probe: ProbeContainer, size: int) -> dict[str, str]:
    """A value of `size` bytes in the probe's /tmp, sent from the file (argv cannot carry it)."""
    path = f"/tmp/value-{size}"  # the probe container's private tmpfs
    written = probe.host.run(f"head -c {size} /dev/zero | tr '\\0' x > {path}")
    assert written.rc == 0, written.stderr
    return {"file": path}


@pytest.mark.security("identity")
def test_attack__a_value_beyond_the_bulk_cap_is_refused_and_redis_survives(
    probe: ProbeContainer, stack: Stack, docker_client: docker.DockerClient
) -> None:
    before = restarts(docker_client, stack.redis)
    cap = int(argv_setting(docker_client, stack, "--proto-max-bulk-len").removesuffix("mb")) << 20
    key = f"{stack.settings.key_prefix}huge"
    result = probe.run("tls", **redis_tls(stack, **app_client_files(), commands=[
        app_auth(), ["SET", key, value_file(probe, cap + 1)]]))  # fmt: skip
    refused = result["error"] is not None or result["replies"][1].startswith("-ERR Protocol")
    assert refused, "a value beyond proto-max-bulk-len was accepted"
    assert session(probe, stack, [app_auth(), ["GET", key], ["PING"]])[1:] == ["$-1", "+PONG"]
    assert restarts(docker_client, stack.redis) == (before[0], False, "healthy")


@pytest.mark.security("identity")
def test_attack__positive_control_the_largest_value_is_stored(
    probe: ProbeContainer, stack: Stack
) -> None:
    key = f"{stack.settings.key_prefix}big"
    size = VALUE_LIMIT_BYTES + ENVELOPE_OVERHEAD_BYTES
    stored = value_file(probe, size)
    replies = session(probe, stack, [app_auth(), ["SET", key, stored], ["GET", key], ["DEL", key]])
    assert replies[:2] == ["+OK", "+OK"]
    assert replies[2].startswith(f"${size} "), "the whole value came back"
    assert replies[3] == ":1"


@pytest.mark.security("identity")
def test_attack__mget_of_one_large_key_many_times_is_cut_off_and_redis_survives(
    probe: ProbeContainer, stack: Stack, docker_client: docker.DockerClient
) -> None:
    """MGET may name one key any number of times: with the largest value, a reply four times
    the output-buffer limit (REDIS-14). Redis closes that connection and keeps serving."""
    before = restarts(docker_client, stack.redis)
    key = f"{stack.settings.key_prefix}amplified"
    stored = session(probe, stack, [app_auth(), ["SET", key, value_file(probe, VALUE_LIMIT_BYTES)]])
    assert stored[1] == "+OK", "positive control: the value itself is stored"
    repeats = 4 * output_limit_bytes() // VALUE_LIMIT_BYTES
    result = probe.run("tls", **redis_tls(stack, **app_client_files(), commands=[
        app_auth(), ["MGET", *[key] * repeats]]))  # fmt: skip
    cut = result["error"] is not None or result["replies"][1] == "<eof>"
    assert cut, "a reply four times the output-buffer limit was delivered"
    assert session(probe, stack, [app_auth(), ["DEL", key], ["PING"]])[1:] == [":1", "+PONG"]
    assert restarts(docker_client, stack.redis) == (before[0], False, "healthy")


def argv_setting(docker_client: docker.DockerClient, stack: Stack, option: str) -> str:
    """A setting from the command the Redis container was started with (Redis rewrites its
    process title, so /proc/1/cmdline no longer shows it); argv wins over the file."""
    argv = [str(a) for a in docker_client.api.inspect_container(stack.redis)["Args"]]
    return argv[argv.index(option) + 1]


@pytest.mark.security("identity")
def test_runtime__redis_runs_with_the_bulk_cap_and_one_database(
    stack: Stack, docker_client: docker.DockerClient
) -> None:
    assert argv_setting(docker_client, stack, "--proto-max-bulk-len") == "2mb"
    assert argv_setting(docker_client, stack, "--databases") == "1"


# -- identity: the app's user runs exactly its allowlist ----------------------------------------


@pytest.fixture(scope="module")
def catalog() -> list[CommandSpec]:
    """COMMAND DOCS of a real redis-server (Debian's, the one the Redis image installs)."""
    with local_catalog_server() as send:
        return runnable(send)


def shown(reply: str) -> str:
    """An error reply in the server's words; of anything else only its type (a command that
    ran could return data)."""
    return reply[:80] if reply.startswith("-") else f"a {reply[:1]!r} reply, content withheld"


@pytest.mark.security("identity")
def test_attack__every_command_outside_the_allowlist_is_refused(
    probe: ProbeContainer, stack: Stack, catalog: list[CommandSpec]
) -> None:
    key = f"{stack.settings.key_prefix}probe"
    probes = [s for s in catalog if s.name not in APP_COMMANDS and s.name not in CONNECTION_ONLY]
    replies = session(probe, stack, [app_auth(), *[s.argv(key) for s in probes], ["PING"]])
    assert replies[0] == "+OK"
    assert replies[-1] == "+PONG", "the session and the server survived every refusal"
    not_refused = [
        f"{spec.name}: {shown(reply)}"
        for spec, reply in zip(probes, replies[1:-1], strict=True)
        if COMMAND_REFUSED not in reply and not any(r in reply for r in REFUSED_BY_CONFIG)
    ]
    assert len(probes) > 200
    assert not_refused == []


@pytest.mark.security("identity")
def test_attack__positive_control_every_allowlisted_command_runs(
    probe: ProbeContainer, stack: Stack
) -> None:
    key = f"{stack.settings.key_prefix}allow"
    commands = [
        ["SET", key, "v", "PX", "60000"], ["GET", key], ["MGET", key], ["DEL", key], ["PING"],
    ]  # fmt: skip
    assert {c[0].lower() for c in commands} == set(APP_COMMANDS)
    replies = session(probe, stack, [app_auth(), *commands])
    assert not [r for r in replies if r.startswith("-")], [shown(r) for r in replies]


# -- runtime: a process limit per container ----------------------------------------------------

_THREAD_BOMB: Final = """
import json, sys, threading
threading.stack_size(64 * 1024)
stop = threading.Event()
started, error = 0, None
for _ in range(int(sys.argv[1])):
    try:
        threading.Thread(target=stop.wait, daemon=True).start()
    except RuntimeError as exc:
        error = str(exc)
        break
    started += 1
stop.set()
print(json.dumps({"started": started, "error": error}))
"""


@pytest.mark.security("runtime")
def test_attack__thread_bomb_in_the_app_stops_at_the_limit(
    stack: Stack, docker_client: docker.DockerClient
) -> None:
    before = restarts(docker_client, stack.app)
    attempts = 4 * APP_NPROC
    container = docker_client.containers.get(stack.app)
    code, output = exec_run(container, ["python3", "-c", _THREAD_BOMB, str(attempts)])
    assert code == 0, output[-300:]
    result = json.loads(output.decode().strip().splitlines()[-1])
    assert result["started"] >= 8, "positive control: threads do start below the limit"
    assert result["started"] < APP_NPROC, f"{result['started']} threads of {attempts} started"
    assert result["error"] is not None
    assert "can't start new thread" in result["error"]
    assert wait_healthy(docker_client, stack.app) == "healthy"
    assert restarts(docker_client, stack.app)[:2] == (before[0], False)
    assert appclient.healthz(stack)[0] == 200


@pytest.mark.security("runtime")
@pytest.mark.parametrize(
    ("role", "nproc"),
    [("redis", REDIS_NPROC), ("app", APP_NPROC), ("redis-exporter", EXPORTER_NPROC)],
)
def test_runtime__process_limit_is_in_force(stack: Stack, role: str, nproc: int) -> None:
    limits = container_host(stack.object(role)).file("/proc/1/limits").content_string
    (line,) = [x for x in limits.splitlines() if x.startswith("Max processes")]
    assert line.split()[2:4] == [str(nproc), str(nproc)], line


# -- runtime: ids that no host account or group has ---------------------------------------------


@pytest.mark.security("runtime")
@pytest.mark.parametrize(
    ("role", "kind"),
    [("redis", Role.REDIS), ("app", Role.APP), ("redis-exporter", Role.EXPORTER)],
)
def test_attack__container_ids_belong_to_nothing_on_the_host(
    stack: Stack, docker_client: docker.DockerClient, role: str, kind: Role
) -> None:
    uid = runtime_id(stack.name, kind, stack.settings.runtime_id_slot)
    user = docker_client.api.inspect_container(stack.object(role))["Config"]["User"]
    assert user == f"{uid}:{uid}"
    for database, key in (("passwd", uid), ("group", uid)):
        found = subprocess.run(
            ["getent", database, str(key)], capture_output=True, text=True, check=False
        )
        assert found.returncode == 2, f"host {database} has id {key}: {found.stdout.strip()}"


@pytest.mark.security("runtime")
def test_attack__positive_control_getent_finds_host_ids() -> None:
    assert (
        subprocess.run(["getent", "passwd", "0"], capture_output=True, check=False).returncode == 0
    )


# -- network: nothing from the stack's bridges reaches the host ---------------------------------


@pytest.fixture
def as_root() -> None:
    """The host firewall rules (and reading the engine's layers) need root; the setup script
    runs as root and so does CI's e2e step. Elsewhere these checks cannot run."""
    if os.geteuid() != 0:
        pytest.skip(
            "not root: the stack's host firewall rules are not installed (infra/firewall.py)"
        )


@contextlib.contextmanager
def host_listener(address: str) -> Iterator[tuple[str, int, list[str]]]:
    """A TCP listener on this host at `address` (a bridge's gateway), on a free port; yields
    (address, port, peers that connected). Closed afterwards."""
    server = socket.socket()
    server.bind((address, 0))
    server.listen(8)
    server.settimeout(0.2)
    peers: list[str] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                conn, peer = server.accept()
                peers.append(peer[0])
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield address, server.getsockname()[1], peers
    finally:
        stop.set()
        thread.join(timeout=2)
        server.close()


def gateway(docker_client: docker.DockerClient, network: str) -> str:
    config = docker_client.api.inspect_network(network)["IPAM"]["Config"][0]
    return str(config.get("Gateway") or next(ipaddress.ip_network(config["Subnet"]).hosts()))


def connects_from_redis(stack: Stack, address: str, port: int) -> bool:
    """bash's /dev/tcp inside the Redis container (its image has no other client)."""
    script = f"timeout {CONNECT_TIMEOUT_S} bash -c 'exec 3<>/dev/tcp/{address}/{port}'"
    return bool(container_host(stack.redis).run(script).rc == 0)


_CONNECT: Final = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()
    print("connected")
except OSError as exc:
    print(type(exc).__name__)
"""


def connects_from_app(stack: Stack, address: str, port: int) -> bool:
    out = container_host(stack.app).check_output(
        "python3 -c %s %s %s %s", _CONNECT, address, str(port), str(CONNECT_TIMEOUT_S)
    )
    return bool(out.strip() == "connected")


@pytest.mark.security("network")
@pytest.mark.usefixtures("as_root")
def test_attack__redis_cannot_reach_a_listener_on_the_host_gateway(
    stack: Stack, docker_client: docker.DockerClient
) -> None:
    with host_listener(gateway(docker_client, stack.backend)) as (address, port, peers):
        assert not connects_from_redis(stack, address, port)
        with socket.create_connection((address, port), timeout=CONNECT_TIMEOUT_S):
            pass  # positive control: the listener itself answers
    assert peers == [address], "only the host's own control connection arrived"


@pytest.mark.security("network")
@pytest.mark.usefixtures("as_root")
def test_attack__app_cannot_reach_the_host_through_either_bridge(
    stack: Stack, docker_client: docker.DockerClient
) -> None:
    for network in (stack.frontend, stack.backend):
        with host_listener(gateway(docker_client, network)) as (address, port, peers):
            reached = connects_from_app(stack, address, port)
        assert not reached, f"the app reached the host at {address} via {network}"
        assert peers == []


# An account of the host that is not root (and so cannot run docker): `nobody`.
NOBODY: Final = 65534


def _connects_as(uid: int, address: str, port: int) -> bool:
    """Whether a process of host account `uid` (no groups) opens a TCP connection to
    `address`:`port` (bash's /dev/tcp, so no interpreter of the checkout is needed)."""
    opened = subprocess.run(
        ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "timeout", "5",
         "bash", "-c", f"exec 3<>/dev/tcp/{address}/{port}"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return opened.returncode == 0


@pytest.mark.security("network")
@pytest.mark.usefixtures("as_root")
def test_attack__a_host_account_other_than_root_cannot_connect_to_the_backend(
    stack: Stack, docker_client: docker.DockerClient
) -> None:
    """Any account of the host reached Redis's TLS port at its backend address: the host has
    an address on every bridge, internal ones too, and connections it opens itself pass no
    chain Docker filters. Redis counts a connection against `maxclients` (512) before its TLS
    handshake, so an account with no Docker access held 600 plain TCP connections and Redis
    refused every new client for as long as it liked: its health check failed (unhealthy
    after 25 s), and a new client of the app's (a reconnect, `secure-cache status`) fell
    back to memory (attack pass of 2026-12-03 on s43). Only root opens connections into the
    backend bridge now (infra/firewall.py; root runs docker anyway). The frontend stays open
    to the host, where a Prometheus on the host scrapes the exporter (README, Scrape config)."""
    redis = docker_client.api.inspect_container(stack.redis)["NetworkSettings"]["Networks"]
    exporter = docker_client.api.inspect_container(stack.exporter)["NetworkSettings"]["Networks"]
    redis_address = str(redis[stack.backend]["IPAddress"])
    port = stack.settings.redis_port
    assert _connects_as(0, redis_address, port), "positive control: root reaches Redis's port"
    assert _connects_as(NOBODY, str(exporter[stack.frontend]["IPAddress"]), EXPORTER_PORT), (
        "positive control: the same account reaches the exporter on the frontend"
    )
    assert not _connects_as(NOBODY, redis_address, port), (
        f"uid {NOBODY} opened a connection to Redis at {redis_address}:{port}"
    )


@pytest.mark.security("network")
def test_attack__positive_control_the_app_reaches_redis_and_serves_its_port(
    stack: Stack,
) -> None:
    assert connects_from_app(stack, "redis", stack.settings.redis_port)
    key = "hardening-control"
    assert appclient.put(stack, key, b"v") == 204
    assert appclient.get(stack, key) == b"v"
    appclient.delete(stack, key)


@pytest.mark.security("network")
def test_attack__positive_control_a_container_elsewhere_reaches_a_host_listener(
    stack: Stack, docker_client: docker.DockerClient
) -> None:
    """Without the stack's rules (a scratch network) the same kind of connection succeeds:
    the refusals above are the rules', not the host's or the probe's."""
    name = f"secure-redis-e2e-scratch-{uuid.uuid4().hex[:8]}"
    network = docker_client.networks.create(name, driver="bridge", labels={PROBE_LABEL: "scratch"})
    try:
        with host_listener(gateway(docker_client, name)) as (address, port, peers):
            image = app_image(docker_client, stack)
            out = docker_client.containers.run(
                image, entrypoint=["python3", "-c", _CONNECT, address, str(port), "3"],
                network=name, remove=True, labels=probe_labels("scratch"),
                **hardened(image_user(docker_client, image)),
            )  # fmt: skip
        assert out.decode().strip() == "connected"
        assert peers
    finally:
        network.remove()


@pytest.mark.security("network")
@pytest.mark.usefixtures("as_root")
def test_network__loopback_dnat_from_other_interfaces_is_dropped(
    stack: Stack, docker_client: docker.DockerClient
) -> None:
    """moby/moby#45610 cannot be sent from here (it needs an L2 neighbour); the rule that
    closes it is checked instead: new connections into the frontend bridge from any other
    interface end in the stack's DROP."""
    _in_chain, fwd_chain = chains(stack.name)
    network = docker_client.api.inspect_network(stack.frontend)
    front = bridge_name(network["Id"], network.get("Options") or {})
    user = subprocess.run(["iptables", "-w", "-S", "DOCKER-USER"], capture_output=True,
                          text=True, check=True).stdout  # fmt: skip
    assert f"-o {front} " in user
    assert f"-j {fwd_chain}" in user
    rules = subprocess.run(["iptables", "-w", "-S", fwd_chain], capture_output=True, text=True,
                           check=True).stdout.splitlines()  # fmt: skip
    assert rules[-1] == f"-A {fwd_chain} -j DROP"
    refused = [r for r in rules if r.startswith(f"-A {fwd_chain} -i {front} -j REJECT")]
    assert refused, "the app's own new connections out of the frontend are refused"


def _matches(rule: list[str], flag: str, bridges: set[str]) -> bool:
    """Whether the rule's `-i`/`-o` match (absent: any interface; `+` ends a prefix) can be
    one of the stack's bridges."""
    if flag not in rule:
        return True
    name = rule[rule.index(flag) + 1]
    if "!" in rule[max(0, rule.index(flag) - 1) : rule.index(flag)]:
        return True  # negated: matches every other interface, the bridges among them
    return any(b.startswith(name[:-1]) if name.endswith("+") else b == name for b in bridges)


@pytest.mark.security("network")
@pytest.mark.usefixtures("as_root")
@pytest.mark.parametrize("chain", ["INPUT", "DOCKER-USER", "OUTPUT"])
def test_network__no_rule_ahead_of_the_stacks_firewall_lets_its_traffic_past(
    stack: Stack, docker_client: docker.DockerClient, chain: str
) -> None:
    """The stack's rules are in force only while they come first: an ACCEPT (or RETURN, or a
    jump elsewhere) inserted ahead of them for the stack's bridges lets its traffic past them
    (attack pass of 2026-12-03 on s88: `iptables -I DOCKER-USER 1 -i <frontend bridge> -j
    ACCEPT` gave the app egress again, and no other check noticed)."""
    bridges = set()
    for network in (stack.backend, stack.frontend):
        inspected = docker_client.api.inspect_network(network)
        bridges.add(bridge_name(inspected["Id"], inspected.get("Options") or {}))
    listing = subprocess.run(["iptables", "-w", "-S", chain], capture_output=True, text=True,
                             check=True).stdout.splitlines()  # fmt: skip
    rules = [line.split() for line in listing if line.startswith("-A ")]
    ours = [i for i, rule in enumerate(rules) if f"secure-redis:{stack.name}" in " ".join(rule)]
    assert ours, f"{chain}: the stack's rules are not installed (python -m infra.firewall up)"
    ahead = [
        " ".join(rule)
        for rule in rules[: max(ours)]
        if f"secure-redis:{stack.name}" not in " ".join(rule)
        and rule[rule.index("-j") + 1] not in ("DROP", "REJECT")
        and _matches(rule, "-i", bridges)
        and _matches(rule, "-o", bridges)
    ]
    assert ahead == [], (
        f"{chain}: rules ahead of the stack's let its bridges' traffic past them: {ahead}; "
        f"remove them, or run `python -m infra.firewall up --stack {stack.name}` (it puts the "
        "stack's rules first again)"
    )


# -- image hygiene ----------------------------------------------------------------------------


def image_file(docker_client: docker.DockerClient, image: str, path: str) -> bytes:
    """A file as the image's own layers hold it. Not through a container: the engine adds
    empty /etc/resolv.conf and /etc/hostname to every container it creates, which would hide
    the image's. Read from the overlay2 layer directories on this host (the engine's)."""
    driver = docker_client.api.inspect_image(image)["GraphDriver"]
    if driver["Name"] != "overlay2":
        pytest.skip(f"reads image layers of overlay2 only; this engine uses {driver['Name']}")
    data = driver["Data"]
    layers = [data["UpperDir"], *filter(None, data.get("LowerDir", "").split(":"))]
    for layer in layers:  # the top layer first: the first that has the file holds it
        candidate = Path(layer) / path.lstrip("/")
        if candidate.is_file():
            return candidate.read_bytes()
    return b""


@pytest.mark.security("data")
@pytest.mark.parametrize("path", ["/etc/resolv.conf", "/etc/hostname"])
@pytest.mark.parametrize("role", ["redis", "app"])
@pytest.mark.usefixtures("as_root")
def test_attack__images_carry_nothing_of_the_build_host(
    stack: Stack, docker_client: docker.DockerClient, role: str, path: str
) -> None:
    image = docker_client.api.inspect_container(stack.object(role))["Image"]
    content = image_file(docker_client, image, path)
    host = Path(path).read_bytes()
    assert host.strip(), f"positive control: this host's {path} is not empty"
    assert content.strip() == b"", f"{role} image's {path} has {len(content)} bytes"


@pytest.mark.security("data")
def test_attack__the_app_image_installs_only_hash_pinned_wheels(tmp_path: Path) -> None:
    """A wheel altered in the wheelhouse after its hash was recorded fails the image build."""
    root = Path(__file__).resolve().parents[2]
    context = tmp_path / "app"
    docker_cli("version")  # the engine is reachable
    subprocess.run(["cp", "-a", str(root / "app"), str(context)], check=True)
    hashed = (context / "wheelhouse" / "requirements.hashed.txt").read_text()
    assert all("--hash=sha256:" in line for line in hashed.splitlines())
    wheel = next((context / "wheelhouse").glob("redis-*.whl"))
    wheel.write_bytes(wheel.read_bytes() + b"\0")
    with image_build():
        build = subprocess.run(
            ["docker", "build", "--force-rm", "--target", "build", str(context)],
            capture_output=True, text=True, check=False, timeout=600,
        )  # fmt: skip
    for image in new_layers(build.stdout):  # the legacy builder keeps the steps that ran
        subprocess.run(["docker", "image", "rm", image], capture_output=True, check=False)
    assert build.returncode != 0
    assert "DO NOT MATCH THE HASHES" in build.stdout + build.stderr


def new_layers(output: str) -> list[str]:
    """Ids of the images a legacy `docker build` created (steps not taken from its cache)."""
    created, cached = [], False
    for line in output.splitlines():
        words = line.split()
        if line.startswith("Step "):
            cached = False
        elif words[:3] == ["--->", "Using", "cache"]:
            cached = True
        elif len(words) == 2 and words[0] == "--->" and not cached:
            created.append(words[1])
    return created
