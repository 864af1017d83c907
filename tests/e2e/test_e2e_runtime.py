"""Security model 4 (runtime) on the running containers: docker inspect from the host
(CIS Docker Benchmark v1.6 section 5, docs/security-catalog.md P-12) and the processes themselves
seen from inside (P-13, P-14)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker
import pytest

from infra.naming import Role
from infra.redis_conf import min_memory_limit_mb
from infra.runtime_ids import runtime_id
from tests.e2e.hosts import container_host
from tests.e2e.stacks import ONE_SHOT, STOPPED, Stack

pytestmark = pytest.mark.security("runtime")

ROLES = ("redis", "app", "redis-exporter")
ROLE_OF = {"redis": Role.REDIS, "app": Role.APP, "redis-exporter": Role.EXPORTER}
# The containers that run once (stacks.ONE_SHOT: the material initialisers and Redis's reload
# jobs; stacks.STOPPED: the data-key rotation pass) run the same images with credentials of
# their own, so docker inspect holds them to the same confinement. Not running, they are
# seen from the host only; the initialisers' root filesystem stays writable, because the
# engine uploads their files into it before they start (infra/components/material.py).
JOBS = (*ONE_SHOT, *STOPPED)
INITIALISERS = tuple(job for job in JOBS if job.endswith("-init"))
CONFINED = (*ROLES, *JOBS)


def uid_of(stack: Stack, role: str) -> int:
    """The uid (= gid) the role's container of this stack runs as (infra/runtime_ids.py)."""
    return runtime_id(stack.name, ROLE_OF[role], stack.settings.runtime_id_slot)


MATERIAL = {
    "redis": "/etc/secure-redis",
    "app": "/etc/secure-cache",
    "redis-exporter": "/etc/secure-cache",
}


@pytest.fixture(scope="module")
def inspected(stack: Stack, docker_client: docker.DockerClient) -> dict[str, dict[str, Any]]:
    return {role: docker_client.api.inspect_container(stack.object(role)) for role in CONFINED}


def proc_status(stack: Stack, role: str) -> dict[str, str]:
    text = container_host(stack.object(role)).file("/proc/1/status").content_string
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def mount_options(stack: Stack, role: str, target: str) -> set[str]:
    mounts = container_host(stack.object(role)).file("/proc/mounts").content_string
    for line in mounts.splitlines():
        fields = line.split()
        if fields[1] == target:
            return set(fields[3].split(","))
    raise AssertionError(f"{target} is not a mount point in {stack.object(role)}")


# -- P-12: docker inspect ------------------------------------------------------------------


@pytest.mark.parametrize("role", CONFINED)
@pytest.mark.parametrize(
    ("field", "expected"),
    [
        pytest.param("Privileged", False, id="cis-5.5-not-privileged"),
        pytest.param("CapDrop", ["ALL"], id="cis-5.4-drop-all-capabilities"),
        pytest.param("PublishAllPorts", False, id="cis-5.9-no-publish-all"),
    ],
)
def test_runtime__host_config(
    inspected: dict[str, dict[str, Any]], role: str, field: str, expected: Any
) -> None:
    assert inspected[role]["HostConfig"][field] == expected


@pytest.mark.parametrize("role", [r for r in CONFINED if r not in INITIALISERS])
def test_runtime__read_only_root_filesystem(
    inspected: dict[str, dict[str, Any]], role: str
) -> None:
    assert inspected[role]["HostConfig"]["ReadonlyRootfs"] is True, "cis-5.13"


@pytest.mark.parametrize("role", CONFINED)
def test_runtime__no_added_capabilities_or_devices(
    inspected: dict[str, dict[str, Any]], role: str
) -> None:
    host = inspected[role]["HostConfig"]
    assert not host.get("CapAdd"), "cis-5.4"
    assert not host.get("Devices"), "cis-5.18"


@pytest.mark.parametrize("role", CONFINED)
def test_runtime__no_new_privileges_and_default_seccomp(
    inspected: dict[str, dict[str, Any]], role: str
) -> None:
    opts = inspected[role]["HostConfig"]["SecurityOpt"]
    assert "no-new-privileges:true" in opts, "cis-5.26"
    assert not any(o.replace("=", ":") == "seccomp:unconfined" for o in opts), "cis-5.22"


@pytest.mark.parametrize("role", CONFINED)
@pytest.mark.parametrize(
    "namespace", ["NetworkMode", "PidMode", "IpcMode", "UsernsMode", "UTSMode"]
)
def test_runtime__shares_no_host_namespace(
    inspected: dict[str, dict[str, Any]], role: str, namespace: str
) -> None:
    assert inspected[role]["HostConfig"].get(namespace) != "host", "cis-5.10/5.16/5.17/5.21/5.31"


@pytest.mark.parametrize("role", CONFINED)
def test_runtime__memory_and_cpu_limited_without_swap(
    inspected: dict[str, dict[str, Any]], role: str
) -> None:
    host = inspected[role]["HostConfig"]
    assert host["Memory"] > 0, "cis-5.11"
    assert host["MemorySwap"] == host["Memory"], "no swap beyond the memory limit"
    assert host["NanoCpus"] > 0 or host["CpuShares"] > 0, "cis-5.12"


@pytest.mark.parametrize("role", ROLES)
def test_runtime__restart_on_failure_at_most_5(
    inspected: dict[str, dict[str, Any]], role: str
) -> None:
    policy = inspected[role]["HostConfig"]["RestartPolicy"]
    assert policy["Name"] == "on-failure", "cis-5.15"
    assert 0 < policy["MaximumRetryCount"] <= 5


@pytest.mark.parametrize("role", JOBS)
def test_runtime__a_job_is_never_restarted_by_the_engine(
    inspected: dict[str, dict[str, Any]], role: str
) -> None:
    """A job that failed stays failed for the operator to see (scripts/rotate.sh reports
    it); the engine restarting it would run its work again unasked."""
    assert inspected[role]["HostConfig"]["RestartPolicy"]["Name"] in ("no", ""), "cis-5.15"


@pytest.mark.parametrize("role", CONFINED)
def test_runtime__no_bind_mounts_or_docker_socket(
    inspected: dict[str, dict[str, Any]], role: str
) -> None:
    for mount in inspected[role]["Mounts"]:
        assert mount["Type"] in ("volume", "tmpfs"), f"cis-5.6: {mount['Type']} mount"
        assert "docker.sock" not in str(mount.get("Source")), "cis-5.32"
        assert mount.get("Propagation") not in ("shared", "rshared"), "cis-5.20"


@pytest.mark.parametrize("role", ROLES)
def test_runtime__healthy(inspected: dict[str, dict[str, Any]], role: str) -> None:
    assert inspected[role]["State"]["Health"]["Status"] == "healthy", "cis-5.27"


def test_runtime__redis_health_check_speaks_tls_as_the_ping_only_user(
    inspected: dict[str, dict[str, Any]],
) -> None:
    test = " ".join(inspected["redis"]["Config"]["Healthcheck"]["Test"])
    assert "--tls" in test
    assert "--user healthcheck" in test
    assert "REDISCLI_AUTH" in test, "the password is handed over in the environment..."
    assert " -a " not in test, "...never on argv"


@pytest.mark.parametrize("role", ROLES)
def test_runtime__apparmor_confined_when_the_host_has_apparmor(
    inspected: dict[str, dict[str, Any]], role: str
) -> None:
    enabled = Path("/sys/module/apparmor/parameters/enabled")
    if not enabled.exists() or enabled.read_text().strip() != "Y":
        pytest.skip("this host's kernel has no AppArmor; Docker cannot apply a profile (cis-5.2)")
    assert inspected[role]["AppArmorProfile"] not in ("", "unconfined")


# -- P-13: the process, from inside -----------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_runtime__process_runs_as_its_unprivileged_uid(stack: Stack, role: str) -> None:
    status = proc_status(stack, role)
    uids = set(status["Uid"].split())
    gids = set(status["Gid"].split())
    assert uids == {str(uid_of(stack, role))}, f"real/effective/saved/fs uid {status['Uid']}"
    assert gids == {str(uid_of(stack, role))}
    assert "0" not in status.get("Groups", "").split(), "no root supplementary group"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("field", ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"])
def test_runtime__process_holds_no_capability(stack: Stack, role: str, field: str) -> None:
    held = proc_status(stack, role)[field]
    assert int(held, 16) == 0, f"{stack.object(role)}: pid 1 holds capabilities, {field} {held}"


@pytest.mark.parametrize("role", ROLES)
def test_runtime__process_cannot_gain_privileges_and_is_seccomp_filtered(
    stack: Stack, role: str
) -> None:
    status = proc_status(stack, role)
    where = stack.object(role)
    assert status["NoNewPrivs"].strip() == "1", f"{where}: pid 1 may gain privileges (NoNewPrivs)"
    assert status["Seccomp"].strip() == "2", (
        f"{where}: pid 1 seccomp mode {status['Seccomp'].strip()}; mode 2: the default profile"
        " filters syscalls"
    )


def test_runtime__redis_is_pid_1_with_maxmemory_below_the_container_limit(
    stack: Stack, inspected: dict[str, dict[str, Any]]
) -> None:
    # redis-server rewrites its process title to "redis-server <bind>:<port>", so the argv it
    # was started with is read from the engine; the title proves which process is PID 1.
    title = container_host(stack.redis).file("/proc/1/cmdline").content.split(b"\0")[0]
    assert title.decode().split()[0] == "redis-server"
    argv = [inspected["redis"]["Path"], *inspected["redis"]["Args"]]
    maxmemory = argv[argv.index("--maxmemory") + 1]
    assert maxmemory.endswith("mb")
    limit_mb = inspected["redis"]["HostConfig"]["Memory"] // (1024 * 1024)
    assert 0 < int(maxmemory[:-2]) < limit_mb, "REDIS-10: maxmemory below the memory limit"
    # REDIS-15: room for the AOF rewrite's fork beside maxmemory (infra/redis_conf.py).
    assert limit_mb >= min_memory_limit_mb(int(maxmemory[:-2])), "REDIS-15: fork headroom"


# -- P-14: the filesystem -------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("path", ["/etc/e2e-probe", "/usr/local/bin/e2e-probe", "/e2e-probe"])
def test_runtime__root_filesystem_refuses_writes(stack: Stack, role: str, path: str) -> None:
    result = container_host(stack.object(role)).run("touch %s", path)
    assert result.rc != 0, f"{stack.object(role)}: {path} was written (a writable root)"
    assert "Read-only file system" in result.stderr


@pytest.mark.parametrize("role", ROLES)
def test_runtime__material_volume_is_mounted_read_only(stack: Stack, role: str) -> None:
    assert "ro" in mount_options(stack, role, MATERIAL[role])
    result = container_host(stack.object(role)).run("touch %s/e2e-probe", MATERIAL[role])
    assert result.rc != 0, f"{stack.object(role)}: {MATERIAL[role]} was written (mounted rw)"
    assert "Read-only file system" in result.stderr


@pytest.mark.parametrize("role", ROLES)
def test_runtime__tmp_is_a_small_noexec_tmpfs(stack: Stack, role: str) -> None:
    assert {"rw", "noexec", "nosuid", "nodev"} <= mount_options(stack, role, "/tmp")
    host = container_host(stack.object(role))
    assert host.run("test -w /tmp").rc == 0


def test_runtime__redis_data_dir_is_private_to_redis(stack: Stack) -> None:
    data = container_host(stack.redis).file("/data")
    redis_uid = uid_of(stack, "redis")
    assert (data.uid, data.gid, data.mode) == (redis_uid, redis_uid, 0o700)
    assert "rw" in mount_options(stack, "redis", "/data")
