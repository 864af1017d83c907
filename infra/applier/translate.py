"""Pure translation: pulumi-docker 5.2.0 properties (camelCase, as the engine hands them to
providers and policies) -> docker SDK (docker==7.2.0) arguments. No I/O, no Docker needed.

Every property of a resource is read through a `_Props` reader; whatever is left unread when a
translation finishes is an `UnsupportedProperty` error naming the resource and the property,
so nothing declared is ever silently dropped. Provider defaults (restart "no", port ip
"0.0.0.0", mustRun true, waitTimeout 60, upload mode 0644 root:root...) are applied here, as
pulumi-docker documents them.
"""

from __future__ import annotations

import base64
import grp
import io
import pwd
import re
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final, overload

from docker.types import LogConfig, Mount, Ulimit

from infra.applier.errors import UnsupportedProperty
from infra.pulumi_names import CONTAINER, IMAGE, NETWORK, VOLUME

MIB: Final = 1024 * 1024
DEFAULT_UPLOAD_MODE: Final = 0o644  # the provider's default: root-owned, world-readable
EXECUTABLE_UPLOAD_MODE: Final = 0o744
DEFAULT_WAIT_TIMEOUT_S: Final = 60
DEFAULT_READ_REFRESH_MS: Final = 15_000
_DURATION_UNITS_NS: Final = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_DURATION: Final = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")


class _Props:
    """One object's properties, read key by key; `finish()` rejects the keys nobody read."""

    def __init__(self, resource: str, props: Mapping[str, Any] | None, path: str = "") -> None:
        self.resource = resource
        self.props: Mapping[str, Any] = props or {}
        self.path = path
        self._read: set[str] = set()

    def where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, default: Any = None) -> Any:
        self._read.add(key)
        value = self.props.get(key)
        return default if value is None else value

    def require(self, key: str) -> Any:
        value = self.get(key)
        if value is None or value == "":
            raise UnsupportedProperty(self.resource, self.where(key), "it is required")
        return value

    @overload
    def integer(self, key: str, default: int, *, base: int = 10) -> int: ...
    @overload
    def integer(self, key: str, default: None = None, *, base: int = 10) -> int | None: ...
    def integer(self, key: str, default: int | None = None, *, base: int = 10) -> int | None:
        """An integer property (base 8 for file modes), or `default` when it is not set."""
        value = self.get(key)
        return default if value is None else self._int(key, value, base)

    def required_integer(self, key: str, *, base: int = 10) -> int:
        return self._int(key, self.require(key), base)

    def _int(self, key: str, value: Any, base: int) -> int:
        """An unreadable number names the property, never its value (it may be secret)."""
        try:
            # Numbers reach providers as JSON doubles (256.0); modes as strings ("0400").
            return int(value) if base == 10 else int(str(value), base)
        except (TypeError, ValueError) as exc:
            kind = "an octal mode such as 0400" if base == 8 else "an integer"
            raise UnsupportedProperty(self.resource, self.where(key), f"it must be {kind}") from exc

    def only(self, key: str, allowed: tuple[Any, ...], why: str) -> Any:
        """A property the applier honours only with these values (usually the default)."""
        value = self.get(key)
        if value is not None and value not in allowed:
            raise UnsupportedProperty(self.resource, self.where(key), why)
        return value

    def child(self, key: str, value: Mapping[str, Any] | None) -> _Props:
        return _Props(self.resource, value, self.where(key))

    def items(self, key: str) -> Iterator[tuple[int, _Props]]:
        for index, item in enumerate(self.get(key, [])):
            yield index, _Props(self.resource, item, f"{self.where(key)}[{index}]")

    def finish(self) -> None:
        for key in sorted(set(self.props) - self._read):
            if self.props[key] is not None:
                raise UnsupportedProperty(self.resource, self.where(key))


def parse_duration_ns(text: str) -> int:
    """A Go duration ("10s", "1m30s", "500ms", "0s") in nanoseconds, as Docker wants them."""
    if text in ("0", ""):
        return 0
    position, total = 0, Decimal(0)
    for match in _DURATION.finditer(text):
        if match.start() != position:
            break
        total += Decimal(match.group(1)) * _DURATION_UNITS_NS[match.group(2)]
        position = match.end()
    if position != len(text) or position == 0:
        raise ValueError(f"{text!r} is not a duration such as 10s, 1m30s or 500ms")
    return int(total)


def labels_of(items: list[Mapping[str, Any]] | None) -> dict[str, str]:
    """`[{"label": k, "value": v}]` (pulumi-docker's label lists) -> {k: v}."""
    return {str(item["label"]): str(item["value"]) for item in items or []}


# -- networks and volumes ---------------------------------------------------------------------


@dataclass(frozen=True)
class NetworkSpec:
    resource: str
    name: str
    kwargs: dict[str, Any]
    """For `client.networks.create(name, **kwargs)`."""


def translate_network(resource: str, props: Mapping[str, Any]) -> NetworkSpec:
    p = _Props(resource, props)
    name = p.require("name")
    kwargs: dict[str, Any] = {
        "driver": p.get("driver", "bridge"),
        "internal": bool(p.get("internal", False)),
        "attachable": bool(p.get("attachable", False)),
        "ingress": bool(p.get("ingress", False)),
        "enable_ipv6": bool(p.get("ipv6", False)),
        "labels": labels_of(p.get("labels")),
        "options": dict(p.get("options", {})),
        "check_duplicate": True,
    }
    p.only("ipamDriver", ("default",), "only the default IPAM driver is supported")
    for key in ("ipamConfigs", "ipamOptions"):
        if p.get(key):
            raise UnsupportedProperty(resource, key, "custom IPAM is not implemented")
    p.finish()
    return NetworkSpec(resource, name, kwargs)


@dataclass(frozen=True)
class VolumeSpec:
    resource: str
    name: str
    kwargs: dict[str, Any]
    """For `client.volumes.create(name=name, **kwargs)`."""


def translate_volume(resource: str, props: Mapping[str, Any]) -> VolumeSpec:
    p = _Props(resource, props)
    name = p.require("name")
    kwargs = {
        "driver": p.get("driver", "local"),
        "driver_opts": dict(p.get("driverOpts", {})),
        "labels": labels_of(p.get("labels")),
    }
    if p.get("cluster"):
        raise UnsupportedProperty(resource, "cluster", "swarm cluster volumes are not supported")
    p.finish()
    return VolumeSpec(resource, name, kwargs)


# -- images ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageSpec:
    resource: str
    tag: str
    """The declared imageName; the image is built and tagged locally, never pushed."""
    build_kwargs: dict[str, Any]
    """For `client.api.build(**build_kwargs)`."""


def translate_image(resource: str, props: Mapping[str, Any]) -> ImageSpec:
    p = _Props(resource, props)
    tag = p.require("imageName")
    if p.get("skipPush") is not True:
        raise UnsupportedProperty(
            resource, "skipPush", "the local applier never pushes; declare skip_push=True"
        )
    p.get("buildOnPreview")  # only matters to `pulumi preview`; the applier always builds
    if p.get("registry"):
        raise UnsupportedProperty(resource, "registry", "there is no registry to log in to")
    build = p.child("build", p.get("build"))
    if not build.props:
        raise UnsupportedProperty(resource, "build", "only locally built images are supported")
    context = Path(build.require("context"))
    dockerfile = Path(build.get("dockerfile") or context / "Dockerfile")
    if not dockerfile.is_absolute():
        dockerfile = context / dockerfile
    build.only(
        "builderVersion",
        ("BuilderV1",),
        "the docker SDK builds with the classic builder (BuilderV1) only",
    )
    kwargs: dict[str, Any] = {
        "path": str(context),
        "dockerfile": str(dockerfile),
        "tag": tag,
        "buildargs": {str(k): str(v) for k, v in build.get("args", {}).items()},
        "rm": True,
        "forcerm": True,
        "decode": True,
    }
    for key, kwarg in (("target", "target"), ("network", "network_mode"), ("platform", "platform")):
        if build.get(key):
            kwargs[kwarg] = build.get(key)
    if build.get("addHosts"):
        kwargs["extra_hosts"] = dict(h.split(":", 1) for h in build.get("addHosts"))
    if build.get("cacheFrom"):
        raise UnsupportedProperty(resource, "build.cacheFrom", "there is no registry cache")
    build.finish()
    p.finish()
    return ImageSpec(resource, tag, kwargs)


# -- containers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    network: str
    aliases: tuple[str, ...] = ()
    ipv4_address: str | None = None
    ipv6_address: str | None = None


@dataclass(frozen=True)
class Upload:
    path: str
    content: bytes = field(repr=False)  # may be a private key or a password: never printed
    mode: int
    uid: int
    gid: int


@dataclass(frozen=True)
class Lifecycle:
    start: bool = True
    attach: bool = False
    """Run to completion before the next resource; a non-zero exit code is an error."""
    must_run: bool = True
    wait: bool = False
    """Wait for the health check to report healthy."""
    wait_timeout_s: int = DEFAULT_WAIT_TIMEOUT_S
    running_timeout_s: float = DEFAULT_READ_REFRESH_MS / 1000
    destroy_grace_s: int = 0
    """`destroyGraceSeconds`: on removal (replace, delete) the container is first stopped
    (its stop signal, then this long) as pulumi-docker does; 0 removes it with force at once
    (the provider's default)."""


@dataclass(frozen=True)
class ContainerSpec:
    resource: str
    name: str | None
    image: str
    """As declared: an image ID (the render's placeholder for a built image) or a reference."""
    create: dict[str, Any]
    """For `client.api.create_container(image, **create)` (without host/networking config)."""
    host_config: dict[str, Any]
    """For `client.api.create_host_config(**host_config)`."""
    endpoints: tuple[Endpoint, ...]
    """Networks to join before start; the first one is given at creation."""
    uploads: tuple[Upload, ...] = field(repr=False)
    lifecycle: Lifecycle


# Container properties with a one-to-one docker SDK equivalent: camelCase -> (kwarg, where).
_CREATE_SAME: Final = {
    "command": "command",
    "entrypoints": "entrypoint",
    "envs": "environment",
    "user": "user",
    "workingDir": "working_dir",
    "hostname": "hostname",
    "domainname": "domainname",
    "stopSignal": "stop_signal",
    "stopTimeout": "stop_timeout",
    "tty": "tty",
    "stdinOpen": "stdin_open",
}
_HOST_SAME: Final = {
    "privileged": "privileged",
    "publishAllPorts": "publish_all_ports",
    "readOnly": "read_only",
    "tmpfs": "tmpfs",
    "securityOpts": "security_opt",
    "ipcMode": "ipc_mode",
    "pidMode": "pid_mode",
    "usernsMode": "userns_mode",
    "cgroupnsMode": "cgroupns",
    "cpuShares": "cpu_shares",
    "cpuSet": "cpuset_cpus",
    "cpuPeriod": "cpu_period",
    "cpuQuota": "cpu_quota",
    "groupAdds": "group_add",
    "sysctls": "sysctls",
    "storageOpts": "storage_opt",
    "dns": "dns",
    "dnsOpts": "dns_opt",
    "dnsSearches": "dns_search",
    "runtime": "runtime",
    "init": "init",
    "rm": "auto_remove",
}
_NOT_SUPPORTED: Final = {
    "devices": "host devices are never passed to this project's containers",
    "deviceRequests": "GPU/device requests are not implemented",
    "gpus": "GPU requests are not implemented",
    "deviceReadBps": "device I/O limits are not implemented",
    "deviceReadIops": "device I/O limits are not implemented",
    "deviceWriteBps": "device I/O limits are not implemented",
    "deviceWriteIops": "device I/O limits are not implemented",
    "cgroupParent": "custom cgroup parents are not implemented",
    "platform": "cross-platform containers are not implemented",
    "volumes": "declare `mounts` instead (volumes/binds are not implemented)",
}


def translate_container(resource: str, props: Mapping[str, Any], *, root: Path) -> ContainerSpec:
    """`root` resolves relative `uploads[].source` paths (the program's working directory)."""
    p = _Props(resource, props)
    image = p.require("image")
    name = p.get("name")
    create: dict[str, Any] = {}
    host: dict[str, Any] = {}
    for key, kwarg in _CREATE_SAME.items():
        if p.get(key) is not None:
            create[kwarg] = p.get(key)
    for key, kwarg in _HOST_SAME.items():
        if p.get(key) is not None:
            host[kwarg] = p.get(key)
    for key, why in _NOT_SUPPORTED.items():
        if p.get(key):
            raise UnsupportedProperty(resource, key, why)
    if "command" in create and any(arg == "" for arg in create["command"]):
        # The provider refuses empty argv words ("values for command may not be empty").
        raise UnsupportedProperty(resource, "command", "argv words may not be empty")

    create["labels"] = labels_of(p.get("labels"))
    if p.get("healthcheck"):
        create["healthcheck"] = _healthcheck(p.child("healthcheck", p.get("healthcheck")))
    _structured(p, create, host)
    _memory(p, host)
    _restart(p, host)
    _logging(p, host)
    endpoints = _endpoints(p, host)
    uploads = tuple(_upload(u, root) for _, u in p.items("uploads"))
    lifecycle = _lifecycle(p)
    p.finish()
    return ContainerSpec(
        resource=resource,
        name=name,
        image=str(image),
        create=create,
        host_config=host,
        endpoints=endpoints,
        uploads=uploads,
        lifecycle=lifecycle,
    )


def _structured(p: _Props, create: dict[str, Any], host: dict[str, Any]) -> None:
    """Capabilities, ports, extra hosts, ulimits and mounts: lists/objects with their own keys."""
    if p.get("capabilities"):
        caps = p.child("capabilities", p.get("capabilities"))
        host["cap_add"] = list(caps.get("adds", []))
        host["cap_drop"] = list(caps.get("drops", []))
        caps.finish()
    ports, bindings = _ports(p)
    if ports:
        create["ports"] = ports
        host["port_bindings"] = bindings
    if p.get("hosts"):
        host["extra_hosts"] = dict(_host_entry(item) for _, item in p.items("hosts"))
    if p.get("ulimits"):
        host["ulimits"] = [_ulimit(u) for _, u in p.items("ulimits")]
    if p.get("mounts"):
        host["mounts"] = [_mount(m) for _, m in p.items("mounts")]


def _host_entry(item: _Props) -> tuple[str, str]:
    entry = (str(item.require("host")), str(item.require("ip")))
    item.finish()
    return entry


def _ulimit(u: _Props) -> Ulimit:
    ulimit = Ulimit(
        name=u.require("name"), soft=u.required_integer("soft"), hard=u.required_integer("hard")
    )
    u.finish()
    return ulimit


def _healthcheck(h: _Props) -> dict[str, Any]:
    tests = list(h.require("tests"))
    result: dict[str, Any] = {"test": tests, "retries": h.integer("retries", 0)}
    for key, kwarg in (
        ("interval", "interval"),
        ("timeout", "timeout"),
        ("startPeriod", "start_period"),
    ):
        try:
            result[kwarg] = parse_duration_ns(str(h.get(key, "0s")))
        except ValueError as exc:
            raise UnsupportedProperty(
                h.resource, h.where(key), "it must be a duration such as 10s, 1m30s or 500ms"
            ) from exc
    h.only("startInterval", ("0s", "0"), "Docker's start interval needs API 1.44")
    h.finish()
    return result


def _memory(p: _Props, host: dict[str, Any]) -> None:
    # pulumi-docker takes MB, Docker bytes. A swap limit <= 0 passes through (-1 = unlimited).
    if p.get("memory") is not None:
        host["mem_limit"] = _mib(p, "memory")
    if p.get("memorySwap") is not None:
        swap = p.required_integer("memorySwap")
        host["memswap_limit"] = swap * MIB if swap > 0 else swap
    if p.get("memoryReservation") is not None:
        host["mem_reservation"] = _mib(p, "memoryReservation")
    if p.get("shmSize") is not None:
        host["shm_size"] = _mib(p, "shmSize")
    if p.get("cpus") is not None:
        try:
            host["nano_cpus"] = int(Decimal(str(p.get("cpus"))) * 1_000_000_000)
        except InvalidOperation as exc:
            raise UnsupportedProperty(p.resource, "cpus", "it must be a number") from exc


# The host_config entries of diff.IN_PLACE's inputs: the docker SDK's update_container takes
# them under the same names (Docker's container update API).
_UPDATABLE: Final = (
    "mem_limit",
    "memswap_limit",
    "mem_reservation",
    "cpu_shares",
    "cpuset_cpus",
    "restart_policy",
)


def update_kwargs(spec: ContainerSpec) -> dict[str, Any]:
    """`client.api.update_container(id, **update_kwargs(spec))`: the declaration's limits and
    restart policy, all of them, as pulumi-docker's update sends them all."""
    return {key: spec.host_config[key] for key in _UPDATABLE if key in spec.host_config}


def _mib(p: _Props, key: str) -> int:
    return p.required_integer(key) * MIB


def _restart(p: _Props, host: dict[str, Any]) -> None:
    name = p.get("restart", "no")
    if name not in ("no", "on-failure", "always", "unless-stopped"):
        raise UnsupportedProperty(p.resource, "restart", "unknown restart policy")
    policy: dict[str, Any] = {"Name": name}
    retries = p.integer("maxRetryCount")
    if retries is not None:
        policy["MaximumRetryCount"] = retries
    host["restart_policy"] = policy


def _logging(p: _Props, host: dict[str, Any]) -> None:
    driver, opts = p.get("logDriver"), p.get("logOpts")
    if driver is not None or opts:
        host["log_config"] = LogConfig(type=driver or "json-file", config=dict(opts or {}))


def _ports(p: _Props) -> tuple[list[tuple[int, str]], dict[str, list[tuple[str, int | None]]]]:
    ports: list[tuple[int, str]] = []
    bindings: dict[str, list[tuple[str, int | None]]] = {}
    for _, port in p.items("ports"):
        internal = port.required_integer("internal")
        protocol = str(port.get("protocol", "tcp"))
        ip = str(port.get("ip", "0.0.0.0"))  # noqa: S104 - the provider's documented default
        external = port.integer("external")
        ports.append((internal, protocol))
        bindings.setdefault(f"{internal}/{protocol}", []).append((ip, external))
        port.finish()
    return ports, bindings


def _mount(m: _Props) -> Mount:
    kind = m.require("type")
    kwargs: dict[str, Any] = {
        "target": m.require("target"),
        "source": m.get("source"),
        "type": kind,
        "read_only": bool(m.get("readOnly", False)),
    }
    if m.get("bindOptions"):
        bind = m.child("bindOptions", m.get("bindOptions"))
        kwargs["propagation"] = bind.get("propagation")
        bind.finish()
    if m.get("tmpfsOptions"):
        tmpfs = m.child("tmpfsOptions", m.get("tmpfsOptions"))
        kwargs["tmpfs_size"] = tmpfs.get("sizeBytes")
        kwargs["tmpfs_mode"] = tmpfs.get("mode")
        tmpfs.finish()
    if m.get("volumeOptions"):
        vol = m.child("volumeOptions", m.get("volumeOptions"))
        kwargs["no_copy"] = bool(vol.get("noCopy", False))
        kwargs["labels"] = labels_of(vol.get("labels")) or None
        if vol.get("driverName") or vol.get("driverOptions"):
            raise UnsupportedProperty(m.resource, vol.where("driverName"), "not implemented")
        vol.only("subpath", (), "volume subpaths need Docker API 1.45")
        vol.finish()
    m.finish()
    return Mount(**kwargs)


def _endpoints(p: _Props, host: dict[str, Any]) -> tuple[Endpoint, ...]:
    endpoints: list[Endpoint] = []
    for _, net in p.items("networksAdvanced"):
        endpoints.append(
            Endpoint(
                network=net.require("name"),
                aliases=tuple(net.get("aliases", [])),
                ipv4_address=net.get("ipv4Address"),
                ipv6_address=net.get("ipv6Address"),
            )
        )
        for key in ("driverOpts", "gwPriority", "linkLocalIps", "macAddress"):
            if net.get(key):
                raise UnsupportedProperty(p.resource, net.where(key), "not implemented")
        net.finish()
    mode = p.get("networkMode")
    if endpoints:
        # The provider joins the networksAdvanced networks and leaves the default bridge; the
        # applier creates the container on the first of them instead (same networks in the end).
        if mode not in (None, "bridge"):
            raise UnsupportedProperty(
                p.resource, "networkMode", "declare networkMode or networksAdvanced, not both"
            )
        host["network_mode"] = endpoints[0].network
    else:
        host["network_mode"] = mode or "bridge"
    return tuple(endpoints)


def _upload(u: _Props, root: Path) -> Upload:
    """One file, as the provider uploads it: its own tar, extracted at "/" before start."""
    path = str(u.require("file"))
    sources = [k for k in ("content", "contentBase64", "source") if u.get(k) is not None]
    if len(sources) != 1:
        raise UnsupportedProperty(
            u.resource, u.path, "exactly one of content, contentBase64 or source must be set"
        )
    if u.get("content") is not None:
        content = str(u.get("content")).encode()
    elif u.get("contentBase64") is not None:
        try:
            content = base64.b64decode(str(u.get("contentBase64")), validate=True)
        except ValueError:  # binascii.Error, whose message would quote the content
            raise UnsupportedProperty(u.resource, u.where("contentBase64"), "not base64") from None
    else:
        source = Path(str(u.get("source")))
        path_on_host = source if source.is_absolute() else root / source
        try:
            content = path_on_host.read_bytes()
        except OSError as exc:
            raise UnsupportedProperty(
                u.resource, u.where("source"), f"cannot read {path_on_host}: {exc.strerror}"
            ) from exc
    u.get("sourceHash")  # a replacement trigger for the engine; nothing to do on "recreate"
    if u.get("permissions") is not None:
        mode = u.required_integer("permissions", base=8)
    else:
        mode = EXECUTABLE_UPLOAD_MODE if u.get("executable") else DEFAULT_UPLOAD_MODE
    uid = _id(u, "owner", lambda name: pwd.getpwnam(name).pw_uid)
    gid = _id(u, "group", lambda name: grp.getgrnam(name).gr_gid)
    u.get("executable")
    u.finish()
    return Upload(path=path, content=content, mode=mode, uid=uid, gid=gid)


def _id(u: _Props, key: str, lookup: Any) -> int:
    """Numeric ids as given; names through this host's user database (as the provider does)."""
    value = u.get(key)
    if value is None or str(value) == "":
        return 0
    text = str(value)
    if text.isascii() and text.isdigit():
        return int(text)
    try:
        return int(lookup(text))
    except KeyError as exc:
        raise UnsupportedProperty(
            u.resource, u.where(key), f"no such {key} on this host; use a numeric id"
        ) from exc


def _lifecycle(p: _Props) -> Lifecycle:
    p.only("logs", (False,), "container logs are kept in Pulumi state only")
    p.only("removeVolumes", (True,), "the applier always removes anonymous volumes")
    lifecycle = Lifecycle(
        start=bool(p.get("start", True)),
        attach=bool(p.get("attach", False)),
        must_run=bool(p.get("mustRun", True)),
        wait=bool(p.get("wait", False)),
        wait_timeout_s=p.integer("waitTimeout", DEFAULT_WAIT_TIMEOUT_S),
        running_timeout_s=p.integer(
            "containerReadRefreshTimeoutMilliseconds", DEFAULT_READ_REFRESH_MS
        )
        / 1000,
        destroy_grace_s=_destroy_grace_s(p),
    )
    # Contradictions are refused before anything is created, not discovered mid-deploy.
    if lifecycle.attach and lifecycle.wait:
        raise UnsupportedProperty(p.resource, "wait", "a container that is attached exits")
    if lifecycle.attach and lifecycle.must_run:
        raise UnsupportedProperty(
            p.resource, "mustRun", "an attached container exits; set mustRun=False with attach"
        )
    if not lifecycle.start:
        for key in ("attach", "wait", "mustRun"):
            if p.props.get(key):
                raise UnsupportedProperty(p.resource, key, "the container is not started")
    return lifecycle


def destroy_grace_s(resource: str, props: Mapping[str, Any]) -> int:
    """A container's `destroyGraceSeconds` (0 when not declared): read at create, and at
    removal from the inputs recorded in the state."""
    return _destroy_grace_s(_Props(resource, props))


def _destroy_grace_s(p: _Props) -> int:
    return p.integer("destroyGraceSeconds", 0)


def upload_archive(upload: Upload, *, mtime: float = 0.0) -> bytes:
    """The tar the provider sends for one upload: a single regular file named by its absolute
    path (Docker extracts it relative to "/"), with the declared mode and numeric owner."""
    return uploads_archive([upload], mtime=mtime)


def uploads_archive(uploads: Sequence[Upload], *, mtime: float = 0.0) -> bytes:
    """The members of upload_archive for every upload, in their order, in one tar: extracted,
    the same files as the provider's one upload after another (a later upload of the same
    path wins in both)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for upload in uploads:
            info = tarfile.TarInfo(name=upload.path)
            info.size = len(upload.content)
            info.mode = upload.mode
            info.uid, info.gid = upload.uid, upload.gid
            info.uname = info.gname = ""
            info.mtime = int(mtime)
            archive.addfile(info, io.BytesIO(upload.content))
    return buffer.getvalue()


__all__ = [
    "CONTAINER",
    "IMAGE",
    "NETWORK",
    "VOLUME",
    "ContainerSpec",
    "Endpoint",
    "ImageSpec",
    "Lifecycle",
    "NetworkSpec",
    "Upload",
    "VolumeSpec",
    "labels_of",
    "parse_duration_ns",
    "translate_container",
    "translate_image",
    "translate_network",
    "translate_volume",
    "update_kwargs",
    "upload_archive",
    "uploads_archive",
]
