"""Container runtime hardening: privileges, namespaces, mounts, resources (CIS Docker §5).

Every rule applies to every container. The one exemption (docs/design.md#material-delivery):
a one-shot initialiser may keep a writable root filesystem, because Docker cannot copy `uploads`
into a read-only one; everything else is checked on it like on any container.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Mapping
from pathlib import PurePosixPath
from typing import Any, Final

from policies.rules._model import ADVISORY, CONTAINER, Resource, ResourceRule
from policies.rules._props import (
    entries,
    flag,
    healthcheck_tests,
    is_under,
    items,
    label,
    mapping,
    memory_mb,
    number,
    strings,
    text,
    text_at,
)

_SENSITIVE_HOST_DIRS: Final = ("/", "/boot", "/dev", "/etc", "/lib", "/proc", "/sys", "/usr")
_SOCKETS: Final = ("docker.sock", "containerd.sock", "podman.sock", "crio.sock")
_ROOT_USERS: Final = frozenset({"", "root", "0"})
_PRIVILEGED_GROUPS: Final = frozenset({"0", "root", "docker"})


def _capabilities(props: Mapping[str, Any], key: str) -> set[str]:
    values = strings(
        mapping(props.get("capabilities"), "capabilities").get(key), f"capabilities.{key}"
    )
    return {v.upper().removeprefix("CAP_") for v in values}


def one_shot_initialiser(props: Mapping[str, Any]) -> bool:
    """Runs to completion offline, once, with no capabilities (docs/design.md#material-delivery)."""
    return (
        flag(props.get("attach"), "attach") is True
        and text(props.get("networkMode"), "networkMode") == "none"
        and not items(props.get("ports"), "ports")
        and flag(props.get("publishAllPorts"), "publishAllPorts") is not True
        and (text(props.get("restart"), "restart") or "no") == "no"
        and "ALL" in _capabilities(props, "drops")
    )


def not_privileged(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    if flag(resource.props.get("privileged"), "privileged") is True:
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


_TRUE: Final = ("true", "1", "t")  # lowered: 1, t, T, TRUE, true, True
_FALSE: Final = ("false", "0", "f")


def no_new_privileges(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    opts = {
        o.replace("=", ":").lower()
        for o in strings(resource.props.get("securityOpts"), "securityOpts")
    }
    # Docker reads the value with Go's strconv.ParseBool (moby daemon: parseSecurityOpt).
    enabled = bool(opts & {"no-new-privileges", *(f"no-new-privileges:{v}" for v in _TRUE)})
    if not enabled or opts & {f"no-new-privileges:{v}" for v in _FALSE}:
        yield (
            f'{label(resource)} must set securityOpts ["no-new-privileges:true"] so setuid '
            f"binaries cannot raise privileges (CIS Docker 5.26)."
        )


def seccomp_enabled(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    opts = {
        o.replace("=", ":").lower()
        for o in strings(resource.props.get("securityOpts"), "securityOpts")
    }
    if "seccomp:unconfined" in opts:
        yield (
            f"{label(resource)} must keep Docker's default seccomp profile; remove "
            f"seccomp=unconfined from securityOpts (CIS Docker 5.22)."
        )


def lsm_confined(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    opts = {
        o.replace("=", ":").lower()
        for o in strings(resource.props.get("securityOpts"), "securityOpts")
    }
    if opts & {"apparmor:unconfined", "label:disable"}:
        yield (
            f"{label(resource)} must keep its AppArmor/SELinux confinement; remove "
            f"apparmor=unconfined and label=disable from securityOpts (CIS Docker 5.2, 5.3)."
        )
    if "systempaths:unconfined" in opts:
        yield (
            f"{label(resource)} must keep Docker's masked and read-only system paths "
            f"(/proc/kcore, /proc/sys, /sys/firmware, ...); remove systempaths=unconfined from "
            f"securityOpts."
        )


def non_root_user(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    user = (text(resource.props.get("user"), "user") or "").strip()
    if user.split(":", 1)[0] in _ROOT_USERS:
        yield (
            f'{label(resource)} must run as a non-root user (user: "<uid>:<gid>", not root or '
            f"0) (CIS Docker 4.1)."
        )


def no_privileged_groups(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    user = text(resource.props.get("user"), "user") or ""
    groups = set(strings(resource.props.get("groupAdds"), "groupAdds"))
    if ":" in user:
        groups.add(user.split(":", 1)[1])
    if groups & _PRIVILEGED_GROUPS:
        yield f"{label(resource)} should not run with the root or docker group."


def read_only_rootfs(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    props = resource.props
    if flag(props.get("readOnly"), "readOnly") is not True and not one_shot_initialiser(props):
        yield (
            f"{label(resource)} must set readOnly to true; its root filesystem is writable "
            f"(CIS Docker 5.13). Writable paths belong on tmpfs or named volumes."
        )


def no_host_pid(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    if text(resource.props.get("pidMode"), "pidMode") == "host":
        yield f"{label(resource)} must not share the host's PID namespace (CIS Docker 5.16)."


def no_host_ipc(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    if text(resource.props.get("ipcMode"), "ipcMode") == "host":
        yield f"{label(resource)} must not share the host's IPC namespace (CIS Docker 5.17)."


def no_host_userns(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    if text(resource.props.get("usernsMode"), "usernsMode") == "host":
        yield f"{label(resource)} must not share the host's user namespace (CIS Docker 5.31)."


def namespaces_private(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    props = resource.props
    ipc = text(props.get("ipcMode"), "ipcMode") or ""
    shared = (
        ipc == "shareable"
        or ipc.startswith("container:")
        or (text(props.get("networkMode"), "networkMode") or "").startswith("container:")
        or text(props.get("cgroupnsMode"), "cgroupnsMode") == "host"
        or bool(text(props.get("cgroupParent"), "cgroupParent"))
    )
    if shared:
        yield (
            f"{label(resource)} should keep private IPC, network and cgroup namespaces and the "
            f"default cgroup parent (CIS Docker 5.17, 5.25)."
        )


def no_host_devices(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    props = resource.props
    devices = items(props.get("devices"), "devices") + items(
        props.get("deviceRequests"), "deviceRequests"
    )
    if devices or text(props.get("gpus"), "gpus"):
        yield (
            f"{label(resource)} must not be given host devices or GPUs (devices, "
            f"deviceRequests, gpus) (CIS Docker 5.18)."
        )


def _resolved(path: str) -> str:
    """The host directory an absolute bind source names: Docker resolves `.`, `..` and repeated
    slashes, so `/tmp/../var/run` and `//etc` are judged as /var/run and /etc."""
    if not path.startswith("/"):
        return path
    return "/" + posixpath.normpath(path).lstrip("/")


def _host_paths(props: Mapping[str, Any]) -> list[tuple[str, str, bool]]:
    """(where, host path as Docker resolves it, read-only) for every bind mount and host
    volume."""
    found = []
    for where, m in entries(props, "mounts"):
        source = text_at(m, where, "source")
        if text_at(m, where, "type") == "bind" and source:
            found.append(
                (where, _resolved(source),
                 m.get("readOnly") is True)
            )  # fmt: skip
    for where, v in entries(props, "volumes"):
        host_path = text_at(v, where, "hostPath")
        if host_path:
            found.append(
                (where, _resolved(host_path),
                 v.get("readOnly") is True)
            )  # fmt: skip
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
        if any(path == d or (d != "/" and is_under(path, d)) for d in _SENSITIVE_HOST_DIRS):
            yield (
                f"{label(resource)} must not mount a sensitive host directory ({where}: the "
                f"host's {path}) (CIS Docker 5.6); mount a named volume of this stack, or a "
                f"host directory kept for it, instead."
            )


def mount_propagation_private(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    for index, mount in enumerate(items(resource.props.get("mounts"), "mounts")):
        where = f"mounts[{index}].bindOptions"
        options = mapping(mapping(mount, f"mounts[{index}]").get("bindOptions"), where)
        if (text(options.get("propagation"), f"{where}.propagation") or "").lower() in (
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
    memory = memory_mb(resource.props)
    if not memory or memory <= 0:
        yield (
            f"{label(resource)} must set a memory limit (memory, in MB) so it cannot exhaust "
            f"the host (CIS Docker 5.11)."
        )


def swap_limited(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    memory = memory_mb(resource.props)
    swap = number(resource.props.get("memorySwap"), "memorySwap")
    if memory and (swap is None or swap < 0 or swap > memory):
        yield f"{label(resource)} should set memorySwap equal to memory (no swap)."


def cpu_limited(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    props = resource.props
    limits = (
        number(props.get("cpus"), "cpus"),
        number(props.get("cpuShares"), "cpuShares"),
        number(props.get("cpuQuota"), "cpuQuota"),
    )
    if not any(v and v > 0 for v in limits):
        yield f"{label(resource)} should set a CPU limit (cpus) (CIS Docker 5.12)."


def restart_bounded(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    props = resource.props
    policy = text(props.get("restart"), "restart") or "no"
    retries = number(props.get("maxRetryCount"), "maxRetryCount")
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
    driver = text(props.get("logDriver"), "logDriver") or ""
    if driver == "none" or (
        driver in ("", "json-file", "local")
        and not mapping(props.get("logOpts"), "logOpts").get("max-size")
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
    if not (value.isascii() and value.isdigit()):
        return True  # a name resolves inside the image: not provably apart from the host's
    return any(low <= int(value) <= high for low, high in _HOST_ID_RANGES)


def ids_apart_from_host(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    user = (text(resource.props.get("user"), "user") or "").strip()
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
        (f"ulimits[{index}]", mapping(u, f"ulimits[{index}]"))
        for index, u in enumerate(items(resource.props.get("ulimits"), "ulimits"))
        if text(mapping(u, f"ulimits[{index}]").get("name"), f"ulimits[{index}].name") == "nproc"
    ]
    hard = number(nproc[0][1].get("hard"), f"{nproc[0][0]}.hard") if nproc else None
    soft = number(nproc[0][1].get("soft"), f"{nproc[0][0]}.soft") if nproc else None
    if not hard or hard <= 0 or not soft or soft <= 0 or soft > hard:
        yield (
            f'{label(resource)} must bound its processes: ulimits [{{name: "nproc", soft: N, '
            f"hard: N}}] under a uid no other container shares (pulumi-docker has no "
            f"pidsLimit) (CIS Docker 5.29)."
        )


RULES: Final = (
    ResourceRule(
        name="container-not-privileged",
        description="Containers are not privileged.",
        resource_types=(CONTAINER,),
        check=not_privileged,
        refs=("RUNTIME-01", "cis-docker-5.5"),
    ),
    ResourceRule(
        name="container-capabilities-dropped",
        description="Containers drop all Linux capabilities.",
        resource_types=(CONTAINER,),
        check=capabilities_dropped,
        refs=("RUNTIME-02", "cis-docker-5.4"),
    ),
    ResourceRule(
        name="container-no-added-capabilities",
        description="Containers add no Linux capabilities.",
        resource_types=(CONTAINER,),
        check=no_added_capabilities,
        refs=("RUNTIME-03", "cis-docker-5.4"),
    ),
    ResourceRule(
        name="container-no-new-privileges",
        description="Containers run with no-new-privileges.",
        resource_types=(CONTAINER,),
        check=no_new_privileges,
        refs=("RUNTIME-04", "cis-docker-5.26"),
    ),
    ResourceRule(
        name="container-seccomp-enabled",
        description="Containers keep the default seccomp profile.",
        resource_types=(CONTAINER,),
        check=seccomp_enabled,
        refs=("RUNTIME-05", "cis-docker-5.22"),
    ),
    ResourceRule(
        name="container-lsm-confined",
        description="Containers keep AppArmor/SELinux confinement and masked system paths.",
        resource_types=(CONTAINER,),
        check=lsm_confined,
        refs=("RUNTIME-06", "cis-docker-5.2", "cis-docker-5.3"),
    ),
    ResourceRule(
        name="container-non-root-user",
        description="Containers run as a non-root user.",
        resource_types=(CONTAINER,),
        check=non_root_user,
        refs=("RUNTIME-07", "cis-docker-4.1"),
    ),
    ResourceRule(
        name="container-no-privileged-groups",
        description="Containers do not run with the root or docker group.",
        resource_types=(CONTAINER,),
        check=no_privileged_groups,
        refs=("RUNTIME-07",),
        enforcement=ADVISORY,
    ),
    ResourceRule(
        name="container-read-only-rootfs",
        description="Containers have a read-only root filesystem (one-shot initialisers excepted).",
        resource_types=(CONTAINER,),
        check=read_only_rootfs,
        refs=("RUNTIME-08", "cis-docker-5.13"),
    ),
    ResourceRule(
        name="container-no-host-pid",
        description="Containers do not share the host's PID namespace.",
        resource_types=(CONTAINER,),
        check=no_host_pid,
        refs=("RUNTIME-09", "cis-docker-5.16"),
    ),
    ResourceRule(
        name="container-no-host-ipc",
        description="Containers do not share the host's IPC namespace.",
        resource_types=(CONTAINER,),
        check=no_host_ipc,
        refs=("RUNTIME-10", "cis-docker-5.17"),
    ),
    ResourceRule(
        name="container-no-host-userns",
        description="Containers do not share the host's user namespace.",
        resource_types=(CONTAINER,),
        check=no_host_userns,
        refs=("RUNTIME-11", "cis-docker-5.31"),
    ),
    ResourceRule(
        name="container-namespaces-private",
        description="Containers keep private IPC, network and cgroup namespaces.",
        resource_types=(CONTAINER,),
        check=namespaces_private,
        refs=("RUNTIME-10", "RUNTIME-13", "NET-01", "cis-docker-5.25"),
        enforcement=ADVISORY,
    ),
    ResourceRule(
        name="container-no-host-devices",
        description="Containers get no host devices or GPUs.",
        resource_types=(CONTAINER,),
        check=no_host_devices,
        refs=("RUNTIME-14", "cis-docker-5.18"),
    ),
    ResourceRule(
        name="container-no-docker-socket",
        description="Containers do not mount the container runtime's socket.",
        resource_types=(CONTAINER,),
        check=no_docker_socket,
        refs=("RUNTIME-15", "cis-docker-5.32"),
    ),
    ResourceRule(
        name="container-no-sensitive-mounts",
        description="Containers do not mount sensitive host directories.",
        resource_types=(CONTAINER,),
        check=no_sensitive_mounts,
        refs=("RUNTIME-16", "cis-docker-5.6"),
    ),
    ResourceRule(
        name="container-mount-propagation-private",
        description="Container mounts do not share propagation.",
        resource_types=(CONTAINER,),
        check=mount_propagation_private,
        refs=("RUNTIME-17", "cis-docker-5.20"),
    ),
    ResourceRule(
        name="container-bind-mounts-read-only",
        description="Host paths are mounted read-only.",
        resource_types=(CONTAINER,),
        check=bind_mounts_read_only,
        refs=("RUNTIME-17", "cis-docker-5.6"),
        enforcement=ADVISORY,
    ),
    ResourceRule(
        name="container-memory-limited",
        description="Containers have a memory limit.",
        resource_types=(CONTAINER,),
        check=memory_limited,
        refs=("RES-01", "cis-docker-5.11"),
    ),
    ResourceRule(
        name="container-swap-limited",
        description="Containers do not swap beyond their memory limit.",
        resource_types=(CONTAINER,),
        check=swap_limited,
        refs=("RES-01",),
        enforcement=ADVISORY,
    ),
    ResourceRule(
        name="container-cpu-limited",
        description="Containers have a CPU limit.",
        resource_types=(CONTAINER,),
        check=cpu_limited,
        refs=("RES-02", "cis-docker-5.12"),
        enforcement=ADVISORY,
    ),
    ResourceRule(
        name="container-restart-bounded",
        description="Containers restart on failure a bounded number of times.",
        resource_types=(CONTAINER,),
        check=restart_bounded,
        refs=("RES-04", "cis-docker-5.15"),
        enforcement=ADVISORY,
    ),
    ResourceRule(
        name="container-healthcheck-defined",
        description="Containers define a health check.",
        resource_types=(CONTAINER,),
        check=healthcheck_defined,
        refs=("RES-05", "cis-docker-5.27"),
    ),
    ResourceRule(
        name="container-ids-apart-from-host",
        description="Containers run as a uid and gid that no Debian host account or group has.",
        resource_types=(CONTAINER,),
        check=ids_apart_from_host,
        refs=("RUNTIME-18",),
    ),
    ResourceRule(
        name="container-process-limited",
        description=(
            "Containers bound their processes with an nproc ulimit (one-shot initialisers "
            "excepted)."
        ),
        resource_types=(CONTAINER,),
        check=process_limited,
        refs=("RES-07", "cis-docker-5.29"),
    ),
    ResourceRule(
        name="container-logging-bounded",
        description="Container logs are kept and bounded.",
        resource_types=(CONTAINER,),
        check=logging_bounded,
        refs=("RES-06",),
        enforcement=ADVISORY,
    ),
)
