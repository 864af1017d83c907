"""Container runtime hardening: privileges, namespaces, mounts, resources (CIS Docker §5).

Every rule applies to every container. The one exemption (TEAM.md contract 2): a one-shot
initialiser may keep a writable root filesystem, because Docker cannot copy `uploads` into a
read-only one; everything else is checked on it like on any container.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import PurePosixPath
from typing import Any, Final

from policies.rules._model import CONTAINER, Resource, ResourceRule
from policies.rules._props import (
    healthcheck_tests,
    is_under,
    items,
    label,
    mapping,
    number,
    strings,
    text,
)

_SENSITIVE_HOST_DIRS: Final = ("/", "/boot", "/dev", "/etc", "/lib", "/proc", "/sys", "/usr")
_SOCKETS: Final = ("docker.sock", "containerd.sock", "podman.sock", "crio.sock")
_ROOT_USERS: Final = frozenset({"", "root", "0"})
_PRIVILEGED_GROUPS: Final = frozenset({"0", "root", "docker"})


def _capabilities(props: Mapping[str, Any], key: str) -> set[str]:
    values = strings(mapping(props.get("capabilities")).get(key))
    return {v.upper().removeprefix("CAP_") for v in values}


def one_shot_initialiser(props: Mapping[str, Any]) -> bool:
    """Runs to completion offline, once, with no capabilities (TEAM.md contract 2)."""
    return (
        props.get("attach") is True
        and text(props.get("networkMode")) == "none"
        and not items(props.get("ports"))
        and props.get("publishAllPorts") is not True
        and (text(props.get("restart")) or "no") == "no"
        and "ALL" in _capabilities(props, "drops")
    )


def not_privileged(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    if resource.props.get("privileged") is True:
        yield f"{label(resource)} must not set privileged to true (CIS Docker 5.5)."


def capabilities_dropped(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    if "ALL" not in _capabilities(resource.props, "drops"):
        yield (
            f'{label(resource)} must drop all Linux capabilities (capabilities.drops: ["ALL"]) '
            f"(CIS Docker 5.4)."
        )


def no_added_capabilities(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    if _capabilities(resource.props, "adds"):
        yield (
            f"{label(resource)} must not add Linux capabilities (capabilities.adds); run as a "
            f"non-root user that needs none (CIS Docker 5.4)."
        )


def no_new_privileges(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    opts = {o.replace("=", ":").lower() for o in strings(resource.props.get("securityOpts"))}
    enabled = bool(opts & {"no-new-privileges", "no-new-privileges:true"})
    if not enabled or "no-new-privileges:false" in opts:
        yield (
            f'{label(resource)} must set securityOpts ["no-new-privileges:true"] so setuid '
            f"binaries cannot raise privileges (CIS Docker 5.26)."
        )


def seccomp_enabled(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    opts = {o.replace("=", ":").lower() for o in strings(resource.props.get("securityOpts"))}
    if "seccomp:unconfined" in opts:
        yield (
            f"{label(resource)} must keep Docker's default seccomp profile; remove "
            f"seccomp=unconfined from securityOpts (CIS Docker 5.22)."
        )


def lsm_confined(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    opts = {o.replace("=", ":").lower() for o in strings(resource.props.get("securityOpts"))}
    if opts & {"apparmor:unconfined", "label:disable"}:
        yield (
            f"{label(resource)} must keep its AppArmor/SELinux confinement; remove "
            f"apparmor=unconfined and label=disable from securityOpts (CIS Docker 5.2, 5.3)."
        )


def non_root_user(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    user = (text(resource.props.get("user")) or "").strip()
    if user.split(":", 1)[0] in _ROOT_USERS:
        yield (
            f'{label(resource)} must run as a non-root user (user: "<uid>:<gid>", not root or '
            f"0) (CIS Docker 4.1)."
        )


def no_privileged_groups(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    user = text(resource.props.get("user")) or ""
    groups = set(strings(resource.props.get("groupAdds")))
    if ":" in user:
        groups.add(user.split(":", 1)[1])
    if groups & _PRIVILEGED_GROUPS:
        yield f"{label(resource)} should not run with the root or docker group."


def read_only_rootfs(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    props = resource.props
    if props.get("readOnly") is not True and not one_shot_initialiser(props):
        yield (
            f"{label(resource)} must set readOnly to true; its root filesystem is writable "
            f"(CIS Docker 5.13). Writable paths belong on tmpfs or named volumes."
        )


def no_host_pid(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    if text(resource.props.get("pidMode")) == "host":
        yield f"{label(resource)} must not share the host's PID namespace (CIS Docker 5.16)."


def no_host_ipc(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    if text(resource.props.get("ipcMode")) == "host":
        yield f"{label(resource)} must not share the host's IPC namespace (CIS Docker 5.17)."


def no_host_userns(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    if text(resource.props.get("usernsMode")) == "host":
        yield f"{label(resource)} must not share the host's user namespace (CIS Docker 5.31)."


def namespaces_private(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    props = resource.props
    ipc = text(props.get("ipcMode")) or ""
    shared = (
        ipc == "shareable"
        or ipc.startswith("container:")
        or (text(props.get("networkMode")) or "").startswith("container:")
        or text(props.get("cgroupnsMode")) == "host"
        or bool(text(props.get("cgroupParent")))
    )
    if shared:
        yield (
            f"{label(resource)} should keep private IPC, network and cgroup namespaces and the "
            f"default cgroup parent (CIS Docker 5.17, 5.25)."
        )


def no_host_devices(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    props = resource.props
    if items(props.get("devices")) or items(props.get("deviceRequests")) or props.get("gpus"):
        yield (
            f"{label(resource)} must not be given host devices or GPUs (devices, "
            f"deviceRequests, gpus) (CIS Docker 5.18)."
        )


def _host_paths(props: Mapping[str, Any]) -> list[tuple[str, str, bool]]:
    """(where, host path, read-only) for every bind mount and host volume."""
    found = []
    for index, mount in enumerate(items(props.get("mounts"))):
        m = mapping(mount)
        if text(m.get("type")) == "bind" and text(m.get("source")):
            found.append(
                (f"mounts[{index}]", text(m.get("source")) or "", m.get("readOnly") is True)
            )
    for index, volume in enumerate(items(props.get("volumes"))):
        v = mapping(volume)
        if text(v.get("hostPath")):
            found.append(
                (f"volumes[{index}]", text(v.get("hostPath")) or "", v.get("readOnly") is True)
            )
    return found


def no_docker_socket(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    for where, path, _ in _host_paths(resource.props):
        if PurePosixPath(path).name in _SOCKETS or path.rstrip("/") in ("/run", "/var/run"):
            yield (
                f"{label(resource)} must not mount the container runtime's socket ({where}); it "
                f"grants root on the host (CIS Docker 5.32)."
            )


def no_sensitive_mounts(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    for where, path, _ in _host_paths(resource.props):
        normalised = str(PurePosixPath(path)) if path.startswith("/") else path
        if any(
            normalised == d or (d != "/" and is_under(normalised, d)) for d in _SENSITIVE_HOST_DIRS
        ):
            yield (
                f"{label(resource)} must not mount a sensitive host directory ({where}) "
                f"(CIS Docker 5.6)."
            )


def mount_propagation_private(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    for index, mount in enumerate(items(resource.props.get("mounts"))):
        options = mapping(mapping(mount).get("bindOptions"))
        if (text(options.get("propagation")) or "").lower() in (
            "shared",
            "rshared",
            "slave",
            "rslave",
        ):
            yield (
                f"{label(resource)} must keep mounts[{index}] propagation private (rprivate) "
                f"(CIS Docker 5.20)."
            )


def bind_mounts_read_only(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    for where, _, read_only in _host_paths(resource.props):
        if not read_only:
            yield f"{label(resource)} should mount the host path in {where} read-only (CIS Docker 5.6)."  # noqa: E501


def memory_limited(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    memory = number(resource.props.get("memory"))
    if not memory or memory <= 0:
        yield (
            f"{label(resource)} must set a memory limit (memory, in MB) so it cannot exhaust "
            f"the host (CIS Docker 5.11)."
        )


def swap_limited(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    memory = number(resource.props.get("memory"))
    swap = number(resource.props.get("memorySwap"))
    if memory and (swap is None or swap < 0 or swap > memory):
        yield f"{label(resource)} should set memorySwap equal to memory (no swap)."


def cpu_limited(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    props = resource.props
    limits = (
        number(props.get("cpus")),
        number(props.get("cpuShares")),
        number(props.get("cpuQuota")),
    )
    if not any(v and v > 0 for v in limits):
        yield f"{label(resource)} should set a CPU limit (cpus) (CIS Docker 5.12)."


def restart_bounded(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    props = resource.props
    policy = text(props.get("restart")) or "no"
    retries = number(props.get("maxRetryCount"))
    if policy in ("always", "unless-stopped") or (
        policy == "on-failure" and (not retries or retries > 5)
    ):
        yield (
            f"{label(resource)} should restart on-failure with maxRetryCount 5 at most "
            f"(CIS Docker 5.15)."
        )


def healthcheck_defined(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    tests = healthcheck_tests(resource.props)
    if not tests or tests[0].upper() == "NONE" or len(tests) < 2:
        yield (
            f"{label(resource)} must define a healthcheck (healthcheck.tests) so Docker can tell "
            f"when it is unhealthy (CIS Docker 5.27)."
        )


def logging_bounded(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    props = resource.props
    driver = text(props.get("logDriver")) or ""
    if driver == "none" or (
        driver in ("", "json-file", "local") and not mapping(props.get("logOpts")).get("max-size")
    ):
        yield (
            f"{label(resource)} should keep bounded logs (logDriver json-file or local with "
            f"logOpts max-size)."
        )


# Ids a Debian host hands out (Debian Policy 9.2.2, adduser.conf, login.defs, systemd):
# 0-99 static, 100-999 dynamic system ids (999 is often systemd-journal), 1000-59999
# accounts, 60000-65535 Debian's on-demand ids, systemd's DynamicUser= range and nobody, and
# from 100000 the subordinate ranges of /etc/subuid. Without user-namespace remapping a
# container's ids are host ids, so the container's must be none of these.
_HOST_ID_RANGES: Final = ((0, 65535), (100000, 2**32 - 1))


def _host_allocated(value: str) -> bool:
    if not value.isdigit():
        return True  # a name resolves inside the image: not provably apart from the host's
    return any(low <= int(value) <= high for low, high in _HOST_ID_RANGES)


def ids_apart_from_host(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    user = (text(resource.props.get("user")) or "").strip()
    uid, _, gid = user.partition(":")
    if not gid or _host_allocated(uid) or _host_allocated(gid):
        yield (
            f'{label(resource)} must run as a numeric "<uid>:<gid>" outside the ids a Debian host '
            f"allocates (0-65535, 100000 and up), e.g. 70001:70001; got {user or 'none'!r}. "
            f"Without userns-remap a host account or group with the same id owns the "
            f"container's processes and files."
        )


def process_limited(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    if one_shot_initialiser(resource.props):
        return
    nproc = [
        u for u in items(resource.props.get("ulimits")) if text(mapping(u).get("name")) == "nproc"
    ]
    hard = number(mapping(nproc[0]).get("hard")) if nproc else None
    soft = number(mapping(nproc[0]).get("soft")) if nproc else None
    if not hard or hard <= 0 or not soft or soft <= 0 or soft > hard:
        yield (
            f'{label(resource)} must bound its processes: ulimits [{{name: "nproc", soft: N, '
            f"hard: N}}] under a uid no other container shares (pulumi-docker has no "
            f"pidsLimit) (CIS Docker 5.28)."
        )


def _r(
    name: str, description: str, check: Any, refs: tuple[str, ...], advisory: bool = False
) -> ResourceRule:
    return ResourceRule(
        name, description, (CONTAINER,), check, refs, "advisory" if advisory else "mandatory"
    )


RULES: Final = (
    _r("container-not-privileged", "Containers are not privileged.",
       not_privileged, ("RUNTIME-01", "cis-docker-5.5")),
    _r("container-capabilities-dropped", "Containers drop all Linux capabilities.",
       capabilities_dropped, ("RUNTIME-02", "cis-docker-5.4")),
    _r("container-no-added-capabilities", "Containers add no Linux capabilities.",
       no_added_capabilities, ("RUNTIME-03", "cis-docker-5.4")),
    _r("container-no-new-privileges", "Containers run with no-new-privileges.",
       no_new_privileges, ("RUNTIME-04", "cis-docker-5.26")),
    _r("container-seccomp-enabled", "Containers keep the default seccomp profile.",
       seccomp_enabled, ("RUNTIME-05", "cis-docker-5.22")),
    _r("container-lsm-confined", "Containers keep AppArmor/SELinux confinement.",
       lsm_confined, ("RUNTIME-06", "cis-docker-5.2", "cis-docker-5.3")),
    _r("container-non-root-user", "Containers run as a non-root user.",
       non_root_user, ("RUNTIME-07", "cis-docker-4.1")),
    _r("container-no-privileged-groups", "Containers do not run with the root or docker group.",
       no_privileged_groups, ("RUNTIME-07",), advisory=True),
    _r("container-read-only-rootfs",
       "Containers have a read-only root filesystem (one-shot initialisers excepted).",
       read_only_rootfs, ("RUNTIME-08", "cis-docker-5.13")),
    _r("container-no-host-pid", "Containers do not share the host's PID namespace.",
       no_host_pid, ("RUNTIME-09", "cis-docker-5.16")),
    _r("container-no-host-ipc", "Containers do not share the host's IPC namespace.",
       no_host_ipc, ("RUNTIME-10", "cis-docker-5.17")),
    _r("container-no-host-userns", "Containers do not share the host's user namespace.",
       no_host_userns, ("RUNTIME-11", "cis-docker-5.31")),
    _r("container-namespaces-private",
       "Containers keep private IPC, network and cgroup namespaces.",
       namespaces_private, ("RUNTIME-10", "RUNTIME-13", "NET-01", "cis-docker-5.25"),
       advisory=True),
    _r("container-no-host-devices", "Containers get no host devices or GPUs.",
       no_host_devices, ("RUNTIME-14", "cis-docker-5.18")),
    _r("container-no-docker-socket", "Containers do not mount the container runtime's socket.",
       no_docker_socket, ("RUNTIME-15", "cis-docker-5.32")),
    _r("container-no-sensitive-mounts", "Containers do not mount sensitive host directories.",
       no_sensitive_mounts, ("RUNTIME-16", "cis-docker-5.6")),
    _r("container-mount-propagation-private", "Container mounts do not share propagation.",
       mount_propagation_private, ("RUNTIME-17", "cis-docker-5.20")),
    _r("container-bind-mounts-read-only", "Host paths are mounted read-only.",
       bind_mounts_read_only, ("RUNTIME-17", "cis-docker-5.6"), advisory=True),
    _r("container-memory-limited", "Containers have a memory limit.",
       memory_limited, ("RES-01", "cis-docker-5.11")),
    _r("container-swap-limited", "Containers do not swap beyond their memory limit.",
       swap_limited, ("RES-01",), advisory=True),
    _r("container-cpu-limited", "Containers have a CPU limit.",
       cpu_limited, ("RES-02", "cis-docker-5.12"), advisory=True),
    _r("container-restart-bounded", "Containers restart on failure a bounded number of times.",
       restart_bounded, ("RES-04", "cis-docker-5.15"), advisory=True),
    _r("container-healthcheck-defined", "Containers define a health check.",
       healthcheck_defined, ("RES-05", "cis-docker-5.27")),
    _r("container-ids-apart-from-host",
       "Containers run as a uid and gid that no Debian host account or group has.",
       ids_apart_from_host, ("RUNTIME-18",)),
    _r("container-process-limited",
       "Containers bound their processes with an nproc ulimit (one-shot initialisers excepted).",
       process_limited, ("RES-07", "cis-docker-5.28")),
    _r("container-logging-bounded", "Container logs are kept and bounded.",
       logging_bounded, ("RES-06",), advisory=True),
)  # fmt: skip
