"""The local applier's second `up`, on the real Docker engine, with the real program.

A throwaway stack (unique name, its own Pulumi.<name>.yaml and state in a temporary project
directory, a free host port, a passphrase-encrypted state) is deployed once through
`python -m infra.apply`, then changed step by step as an operator would: nothing, the app's
memory limit, a forced certificate renewal. Each step is checked on what runs (container IDs and
start times, the certificates and ACL hashes the containers read, data written before) and the
state file is checked for encryption and refusal of tampered or wrongly-keyed copies.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml
from cryptography import x509

from infra import firewall
from infra.applier.engine import LocalApplier
from infra.applier.host_conflicts import Held
from infra.applier.state import PASSPHRASE_ENV, STATE_DIR
from infra.docker_exec import exec_run
from infra.naming import Role
from infra.render import render_stack
from infra.runtime_ids import MAX_SLOT, STACK_SLOTS, runtime_id, slot_of
from infra.settings import REPO_ROOT
from tests.e2e import appclient
from tests.e2e.stacks import Stack, leftovers
from tests.support.tls_redis import free_port

pytestmark = pytest.mark.security("deployment")

BASE = "debian:bookworm-slim"
PASSPHRASE = "e2e passphrase " + uuid.uuid4().hex
REDIS_DIR = "/etc/secure-redis"
# What `plan` counts for a stack: its Docker objects and dynamic resources (networks, volumes,
# images, Redis, the app, the metrics exporter and the rotation pass, their initialisers, the
# reload jobs, certificates, passwords, the API token and the data keyring);
# tests/unit/test_applier_cli.py pins the same number.
PLANNED = 37
APP_DIR = "/etc/secure-cache"


@dataclass
class Scratch:
    name: str
    project: Path
    client: docker.DockerClient

    @property
    def state_file(self) -> Path:
        return self.project / STATE_DIR / f"{self.name}.state"

    def apply(
        self, action: str, *, passphrase: str = PASSPHRASE
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, PASSPHRASE_ENV: passphrase}
        argv = [sys.executable, "-m", "infra.apply", action, "--stack", self.name]
        return subprocess.run(
            [*argv, "--project-dir", str(self.project)],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )

    def up(self, what: str = "up") -> str:
        start = time.monotonic()
        result = self.apply("up")
        assert result.returncode == 0, result.stdout + result.stderr
        # A figure for docs/applier.md (shown with -s), not an assertion on time.
        print(f"figure: {what}: {time.monotonic() - start:.1f}s wall")
        return result.stdout

    def configure(self, **settings: Any) -> None:
        path = self.project / f"Pulumi.{self.name}.yaml"
        document = yaml.safe_load(path.read_text())
        document["config"].update({f"secure-redis:{k}": v for k, v in settings.items()})
        path.write_text(yaml.safe_dump(document))

    @property
    def stack(self) -> Stack:
        return Stack(self.name, declared=render_stack(self.name, root=self.project))

    def container(self, suffix: str) -> str:
        return f"secure-redis-{self.name}-{suffix}"

    def read(self, suffix: str, path: str) -> bytes:
        result = exec_run(self.client.containers.get(self.container(suffix)), ["cat", path])
        assert result.exit_code == 0, f"cat {path} in {suffix}: exit {result.exit_code}"
        return bytes(result.output)


@dataclass(frozen=True)
class Snapshot:
    ids: dict[str, str]
    started: dict[str, str]
    serials: dict[str, int]
    acl_sha256: str


def snapshot(s: Scratch) -> Snapshot:
    containers = s.client.containers.list(
        all=True, filters={"label": f"io.secure-redis.stack={s.name}"}
    )
    ids = {c.name: c.id for c in containers}
    started = {c.name: c.attrs["State"]["StartedAt"] for c in containers}

    def serial(suffix: str, path: str) -> int:
        return x509.load_pem_x509_certificate(s.read(suffix, path)).serial_number

    serials = {
        "ca": serial("redis", f"{REDIS_DIR}/ca.crt"),
        "server": serial("redis", f"{REDIS_DIR}/server.crt"),
        "healthcheck": serial("redis", f"{REDIS_DIR}/healthcheck.crt"),
        "app": serial("app", f"{APP_DIR}/app.crt"),
    }
    # The ACL file holds the users' password hashes (#<sha256>): it changes with any password.
    acl = hashlib.sha256(s.read("redis", f"{REDIS_DIR}/users.acl")).hexdigest()
    return Snapshot(ids, started, serials, acl)


def scratch_config(held: Sequence[Held]) -> dict[str, object]:
    """The scratch stack's settings, given what the engine's stacks hold (`held_by_stacks`,
    running or not): a uid slot none of them runs as, apart from dev's, staging's and prod's
    (infra/runtime_ids.py), chosen at random so two runs at once rarely pick the same one
    (the applier would refuse the second: tests/e2e/test_e2e_host_conflicts.py); a host port
    nothing listens on and no stack's container publishes (a stopped one does not listen)."""
    taken = {slot_of(h.uid) for h in held}
    slots = [s for s in range(1, MAX_SLOT + 1) if s not in taken | set(STACK_SLOTS.values())]
    if not slots:
        pytest.skip(f"every runtimeIdSlot 1-{MAX_SLOT} is held by a stack on this engine")
    published = {port for h in held for port in h.host_ports}
    port = free_port()
    while port in published:
        port = free_port()
    return {
        "secure-redis:environment": "development",
        "secure-redis:appHostPort": port,
        "secure-redis:runtimeIdSlot": secrets.choice(slots),
    }


def test_scratch_config__takes_no_slot_or_port_another_stack_holds() -> None:
    """A hard-coded slot collided with a stack of that slot on the same engine (a helper's
    s90, 2026-12-03: the applier refuses such an up). Every slot but one is held here, and a
    port, as `held_by_stacks` reports deployed stacks (no container is made: one holding a
    slot would refuse another agent's up of that slot on a shared engine)."""
    spare = 57
    port = free_port()
    held = [
        Held(f"s{slot}", f"secure-redis-s{slot}-app", runtime_id(f"s{slot}", Role.APP, slot),
             frozenset({port}))
        for slot in range(1, MAX_SLOT + 1)
        if slot != spare
    ]  # fmt: skip
    assert slot_of(held[0].uid) == 1  # the stand-ins hold the slots they name
    for _ in range(20):
        config = scratch_config(held)
        assert config["secure-redis:runtimeIdSlot"] == spare
        assert config["secure-redis:appHostPort"] != port


@pytest.fixture(scope="module")
def scratch(
    docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scratch]:
    if not docker_client.images.list(name=BASE):
        pytest.skip(f"{BASE} is not present; run scripts/bootstrap-base-image.sh")
    if not any((REPO_ROOT / "app" / "wheelhouse").glob("*.whl")):
        pytest.skip("no app wheelhouse; run scripts/build-app-image.sh --wheelhouse-only")
    name = f"ap{uuid.uuid4().hex[:8]}"
    project = tmp_path_factory.mktemp("project")
    config = scratch_config(LocalApplier(docker_client, say=lambda _m: None).held_by_stacks())
    (project / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump({"config": config}))
    s = Scratch(name, project, docker_client)
    try:
        s.up("first up")
        yield s
    finally:
        result = s.apply("down")
        assert result.returncode == 0, result.stdout + result.stderr
        assert leftovers(docker_client, name) == []
        assert not s.state_file.exists(), "down removes the state too"


def test_up_twice__the_second_replaces_nothing_and_keeps_data_and_material(
    scratch: Scratch,
) -> None:
    stack = scratch.stack
    assert appclient.put(stack, "kept", b"written before the second up") in (200, 201, 204)
    before = snapshot(scratch)
    out = scratch.up("second up, nothing changed")
    assert f"{PLANNED} unchanged" in out, out
    for word in ("to create", "to replace", "to re-run", "to update", "to delete"):
        assert word not in out, out
    assert snapshot(scratch) == before
    assert appclient.get(stack, "kept") == b"written before the second up"


def test_changed_app_memory__replaces_only_the_app_and_redis_data_survives(
    scratch: Scratch, docker_client: docker.DockerClient
) -> None:
    stack = scratch.stack
    assert appclient.put(stack, "survivor", b"in redis") in (200, 201, 204)
    before = snapshot(scratch)
    scratch.configure(appMemoryMb=320)
    out = scratch.up("up after appMemoryMb changed")
    assert f"replace container {scratch.container('app')}" in " ".join(out.split()), out
    assert f"1 to replace, {PLANNED - 1} unchanged" in out, out
    after = snapshot(scratch)
    app = scratch.container("app")
    assert after.ids[app] != before.ids[app]
    assert {k: v for k, v in after.ids.items() if k != app} == {
        k: v for k, v in before.ids.items() if k != app
    }
    redis = scratch.container("redis")
    assert after.started[redis] == before.started[redis], "Redis was not restarted"
    assert (after.serials, after.acl_sha256) == (before.serials, before.acl_sha256)
    memory = docker_client.api.inspect_container(app)["HostConfig"]["Memory"]
    assert memory == 320 * 1024 * 1024
    assert appclient.get(stack, "survivor") == b"in redis"


def test_forced_renewal__new_leaf_certificates_are_served_the_ca_and_passwords_kept(
    scratch: Scratch,
) -> None:
    stack = scratch.stack
    assert appclient.put(stack, "across-renewal", b"still here") in (200, 201, 204)
    before = snapshot(scratch)
    scratch.configure(certRenewalGeneration=1)
    out = scratch.up("up with certRenewalGeneration raised")
    assert "replace tls-redis-server: renewalGeneration" in " ".join(out.split()), out
    after = snapshot(scratch)
    assert after.serials["ca"] == before.serials["ca"]
    for leaf in ("server", "healthcheck", "app"):
        assert after.serials[leaf] != before.serials[leaf], leaf
    assert after.acl_sha256 == before.acl_sha256, "passwords are kept"
    assert appclient.wait_for("the app healthy", lambda: appclient.healthz(stack)[0] == 200)
    assert appclient.get(stack, "across-renewal") == b"still here"


def test_a_stopped_app_is_created_again_and_nothing_else_is_touched(
    scratch: Scratch, docker_client: docker.DockerClient
) -> None:
    """mustRun: a stopped container counts as gone, as pulumi-docker's read reports it."""
    before = snapshot(scratch)
    app = scratch.container("app")
    docker_client.api.stop(app, timeout=10)
    out = scratch.up("up after the app container was stopped")
    assert f"1 to replace, {PLANNED - 1} unchanged" in out, out
    after = snapshot(scratch)
    assert docker_client.api.inspect_container(app)["State"]["Running"]
    assert after.ids[app] != before.ids[app]
    assert {k: v for k, v in after.ids.items() if k != app} == {
        k: v for k, v in before.ids.items() if k != app
    }
    assert after.serials == before.serials


def test_state_file__encrypted_0600_and_no_secret_visible(scratch: Scratch) -> None:
    blob = scratch.state_file.read_bytes()
    assert scratch.state_file.stat().st_mode & 0o777 == 0o600
    password = scratch.read("app", f"{APP_DIR}/redis.password").strip()
    data_key = scratch.read("app", f"{APP_DIR}/data.key").strip()
    assert len(password) >= 24
    for secret in (password, data_key, b"PRIVATE KEY", b"BEGIN CERTIFICATE", b"secure-redis"):
        assert secret not in blob


def refused(scratch: Scratch, result: subprocess.CompletedProcess[str], before: Snapshot) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(scratch) == before, "nothing was deployed"
    return errors[0]


def test_state_file__tampered_wrongly_keyed_or_missing_is_refused_and_nothing_deployed(
    scratch: Scratch,
) -> None:
    before = snapshot(scratch)
    original = scratch.state_file.read_bytes()
    try:
        tampered = bytearray(original)
        tampered[len(tampered) // 2] ^= 0x01
        scratch.state_file.write_bytes(bytes(tampered))
        assert "does not decrypt" in refused(scratch, scratch.apply("up"), before)
        scratch.state_file.write_bytes(original[: len(original) // 2])
        assert "does not decrypt" in refused(scratch, scratch.apply("up"), before)
        scratch.state_file.write_bytes(original)
        wrong = scratch.apply("up", passphrase="not the passphrase")
        assert "does not decrypt with the passphrase" in refused(scratch, wrong, before)
        scratch.state_file.unlink()
        missing = refused(scratch, scratch.apply("up"), before)
        assert "has Docker objects but no state" in missing
        for what_to_do in ("copy the state file", "down --stack", "cached data", "API token"):
            assert what_to_do in missing, missing
    finally:
        scratch.state_file.write_bytes(original)
        scratch.state_file.chmod(0o600)
    assert f"{PLANNED} unchanged" in scratch.up()


def test_firewall__an_up_that_recreates_a_network_leaves_the_rules_naming_its_bridge(
    scratch: Scratch,
) -> None:
    """The host firewall's rules (infra/firewall.py) name the stack's bridges. The network is
    removed behind the applier's back; the next `up` creates it again (and the app on it). The
    new bridge has the interface the rules installed before still name, so they need no
    refresh (with Docker's br-<network id> they would name an interface that is gone)."""
    if os.geteuid() != 0:
        pytest.skip("installing host firewall rules needs root")
    run = firewall._runner()
    before = firewall.stack_bridges(scratch.name)
    firewall.up(scratch.name, before, run)
    try:
        frontend = scratch.client.networks.get(f"secure-redis-{scratch.name}-frontend")
        old_id = frontend.id
        # Every container on it (the app and the Redis exporter) is cut off first: Docker
        # refuses to remove a network with endpoints.
        frontend.reload()
        attached = [container.name for container in frontend.containers]
        assert scratch.container("app") in attached
        for name in attached:
            frontend.disconnect(name, force=True)
        frontend.remove()
        out = scratch.up("a removed network made again")
        assert f"network secure-redis-{scratch.name}-frontend" in out, out
        renewed = scratch.client.networks.get(f"secure-redis-{scratch.name}-frontend")
        assert renewed.id != old_id, "the network is a new one"
        after = firewall.stack_bridges(scratch.name)
        assert after == before
        assert Path(f"/sys/class/net/{after.frontend}").exists(), "the new bridge has that name"
        jumps = run(["-S", "DOCKER-USER"]).stdout
        assert f"-i {after.frontend} " in jumps
        assert f"-o {after.frontend} " in jumps
        assert appclient.put(scratch.stack, "after-network", b"v") in (200, 201, 204)
    finally:
        firewall.down(scratch.name, run)
