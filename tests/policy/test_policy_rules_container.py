"""Pure container rules: pass/fail tables on the hand-written foreign stack (no pack, no engine)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from policies.records import Record
from policies.rules import RULES
from policies.rules._model import CONTAINER
from tests.policy import foreign
from tests.policy.support import assert_reasons, mutate, run_rule

Change = Callable[[dict[str, Any]], object]


def _set(**values: Any) -> Change:
    return lambda props: props.update(values)


def _drop(*keys: str) -> Change:
    return lambda props: [props.pop(k, None) for k in keys]


@pytest.mark.parametrize("rule", [r.name for r in RULES])
def test_every_rule__passes_the_secure_foreign_stack(rule: str) -> None:
    config = {"minimumVersion": "TLSv1.3"} if rule == "redis-tls-protocols-modern" else None
    assert run_rule(rule, foreign.records(), config) == []


# (rule, resource, change, fails)
CASES = [
    pytest.param("container-not-privileged", "cache", _set(privileged=True), True,
                 id="cis-5.5-fail-privileged"),
    pytest.param("container-not-privileged", "cache", _set(privileged=False), False,
                 id="cis-5.5-pass-false"),
    pytest.param("container-capabilities-dropped", "cache", _drop("capabilities"), True,
                 id="cis-5.4-fail-missing"),
    pytest.param("container-capabilities-dropped", "cache",
                 _set(capabilities={"drops": ["NET_RAW"]}), True, id="cis-5.4-fail-partial"),
    pytest.param("container-capabilities-dropped", "cache",
                 _set(capabilities={"drops": ["cap_all"]}), False, id="cis-5.4-pass-cap-prefix"),
    pytest.param("container-no-added-capabilities", "web",
                 _set(capabilities={"drops": ["ALL"], "adds": ["NET_BIND_SERVICE"]}), True,
                 id="cis-5.4-fail-adds"),
    pytest.param("container-no-new-privileges", "web", _drop("securityOpts"), True,
                 id="cis-5.26-fail-missing"),
    pytest.param("container-no-new-privileges", "web",
                 _set(securityOpts=["no-new-privileges:true", "no-new-privileges:false"]), True,
                 id="cis-5.26-fail-false-wins"),
    pytest.param("container-no-new-privileges", "web",
                 _set(securityOpts=["no-new-privileges=true"]), False, id="cis-5.26-pass-equals"),
    # Docker reads the value with Go's strconv.ParseBool: 1, t, T, TRUE, true, True.
    pytest.param("container-no-new-privileges", "web",
                 _set(securityOpts=["no-new-privileges=1"]), False, id="cis-5.26-pass-one"),
    pytest.param("container-no-new-privileges", "web",
                 _set(securityOpts=["no-new-privileges:T"]), False, id="cis-5.26-pass-t"),
    pytest.param("container-no-new-privileges", "web",
                 _set(securityOpts=["no-new-privileges=1", "no-new-privileges=0"]), True,
                 id="cis-5.26-fail-zero-after-one"),
    pytest.param("container-seccomp-enabled", "web",
                 _set(securityOpts=["no-new-privileges", "seccomp=unconfined"]), True,
                 id="cis-5.22-fail-unconfined"),
    pytest.param("container-lsm-confined", "web",
                 _set(securityOpts=["no-new-privileges", "apparmor:unconfined"]), True,
                 id="cis-5.2-fail-apparmor"),
    pytest.param("container-lsm-confined", "web",
                 _set(securityOpts=["no-new-privileges", "label=disable"]), True,
                 id="cis-5.3-fail-selinux"),
    # Docker's --security-opt systempaths=unconfined unmasks /proc/kcore, /proc/keys, /sys/firmware
    # and makes /proc/sys writable: a confinement off like the LSM's (red before: passed).
    pytest.param("container-lsm-confined", "web",
                 _set(securityOpts=["no-new-privileges", "systempaths=unconfined"]), True,
                 id="systempaths-fail-unconfined"),
    pytest.param("container-non-root-user", "cache", _drop("user"), True, id="cis-4.1-fail-unset"),
    pytest.param("container-non-root-user", "cache", _set(user="0:999"), True,
                 id="cis-4.1-fail-uid0"),
    pytest.param("container-non-root-user", "cache", _set(user="root"), True,
                 id="cis-4.1-fail-root"),
    pytest.param("container-non-root-user", "cache", _set(user="redis"), False,
                 id="cis-4.1-pass-name"),
    pytest.param("container-ids-apart-from-host", "cache", _set(user="999:999"), True,
                 id="ids-fail-systemd-journal-gid"),
    pytest.param("container-ids-apart-from-host", "cache", _set(user="71001:999"), True,
                 id="ids-fail-gid-only"),
    pytest.param("container-ids-apart-from-host", "cache", _set(user="10001:10001"), True,
                 id="ids-fail-account-range"),
    pytest.param("container-ids-apart-from-host", "cache", _set(user="165536:165536"), True,
                 id="ids-fail-subuid-range"),
    pytest.param("container-ids-apart-from-host", "cache", _set(user="redis"), True,
                 id="ids-fail-name"),
    pytest.param("container-ids-apart-from-host", "cache", _set(user="71001"), True,
                 id="ids-fail-no-gid"),
    # A digit to str.isdigit() that int() refuses: the rule raised ValueError (fuzzed).
    pytest.param("container-ids-apart-from-host", "cache", _set(user="\u00b2:70001"), True,
                 id="ids-fail-unicode-digit"),
    pytest.param("container-ids-apart-from-host", "cache", _set(user="99999:99999"), False,
                 id="ids-pass-upper-edge"),
    pytest.param("container-process-limited", "cache", _drop("ulimits"), True,
                 id="cis-5.29-fail-missing"),
    pytest.param("container-process-limited", "cache",
                 _set(ulimits=[{"name": "nofile", "soft": 64, "hard": 64}]), True,
                 id="cis-5.29-fail-other-limit"),
    pytest.param("container-process-limited", "cache",
                 _set(ulimits=[{"name": "nproc", "soft": 128, "hard": 64}]), True,
                 id="cis-5.29-fail-soft-above-hard"),
    pytest.param("container-process-limited", "cache-loader", _drop("ulimits"), False,
                 id="cis-5.29-pass-one-shot-initialiser"),
    pytest.param("container-no-privileged-groups", "web", _set(groupAdds=["docker"]), True,
                 id="fail-docker-group"),
    pytest.param("container-read-only-rootfs", "web", _drop("readOnly"), True,
                 id="cis-5.13-fail-missing"),
    pytest.param("container-read-only-rootfs", "web", _set(readOnly=False), True,
                 id="cis-5.13-fail-false"),
    pytest.param("container-read-only-rootfs", "cache-loader", _set(networkMode="bridge"), True,
                 id="cis-5.13-fail-init-with-network"),
    pytest.param("container-read-only-rootfs", "cache-loader", _set(restart="always"), True,
                 id="cis-5.13-fail-init-restarting"),
    pytest.param("container-read-only-rootfs", "cache-loader", _drop("attach"), True,
                 id="cis-5.13-fail-init-detached"),
    pytest.param("container-read-only-rootfs", "cache-loader",
                 _set(capabilities={"drops": ["NET_RAW"]}), True, id="cis-5.13-fail-init-caps"),
    pytest.param("container-read-only-rootfs", "cache-loader",
                 _set(ports=[{"internal": 1, "ip": "127.0.0.1"}]), True,
                 id="cis-5.13-fail-init-ports"),
    pytest.param("container-read-only-rootfs", "cache-loader", _drop("restart"), False,
                 id="cis-5.13-pass-init-restart-unset"),
    pytest.param("container-no-host-pid", "web", _set(pidMode="host"), True, id="cis-5.16-fail"),
    pytest.param("container-no-host-ipc", "web", _set(ipcMode="host"), True, id="cis-5.17-fail"),
    pytest.param("container-no-host-ipc", "web", _set(ipcMode="private"), False,
                 id="cis-5.17-pass-private"),
    pytest.param("container-no-host-userns", "web", _set(usernsMode="host"), True,
                 id="cis-5.31-fail"),
    pytest.param("container-namespaces-private", "web", _set(ipcMode="shareable"), True,
                 id="fail-ipc-shareable"),
    pytest.param("container-namespaces-private", "web", _set(cgroupnsMode="host"), True,
                 id="cis-5.25-fail-cgroupns"),
    pytest.param("container-namespaces-private", "web", _set(networkMode="container:other"),
                 True, id="fail-joined-netns"),
    pytest.param("container-no-host-devices", "web",
                 _set(devices=[{"hostPath": "/dev/kvm"}]), True, id="cis-5.18-fail-devices"),
    pytest.param("container-no-host-devices", "web", _set(gpus="all"), True,
                 id="cis-5.18-fail-gpus"),
    pytest.param("container-no-docker-socket", "web",
                 _set(volumes=[{"hostPath": "/var/run/docker.sock", "containerPath": "/s"}]),
                 True, id="cis-5.32-fail-volume"),
    pytest.param("container-no-docker-socket", "web",
                 _set(mounts=[{"type": "bind", "source": "/run/containerd/containerd.sock",
                               "target": "/s", "readOnly": True}]), True,
                 id="cis-5.32-fail-containerd-mount"),
    pytest.param("container-no-sensitive-mounts", "web",
                 _set(mounts=[{"type": "bind", "source": "/etc", "target": "/h",
                               "readOnly": True}]), True, id="cis-5.6-fail-etc"),
    pytest.param("container-no-sensitive-mounts", "web",
                 _set(volumes=[{"hostPath": "/", "containerPath": "/host"}]), True,
                 id="cis-5.6-fail-root"),
    pytest.param("container-no-sensitive-mounts", "web",
                 _set(mounts=[{"type": "bind", "source": "/srv/shop", "target": "/srv",
                               "readOnly": True}]), False, id="cis-5.6-pass-srv"),
    pytest.param("container-mount-propagation-private", "web",
                 _set(mounts=[{"type": "bind", "source": "/srv/x", "target": "/x",
                               "bindOptions": {"propagation": "rshared"}}]), True,
                 id="cis-5.20-fail-rshared"),
    pytest.param("container-bind-mounts-read-only", "web",
                 _set(mounts=[{"type": "bind", "source": "/srv/x", "target": "/x"}]), True,
                 id="fail-rw-bind"),
    pytest.param("container-memory-limited", "web", _drop("memory"), True,
                 id="cis-5.11-fail-missing"),
    pytest.param("container-memory-limited", "web", _set(memory=0), True, id="cis-5.11-fail-0"),
    pytest.param("container-swap-limited", "web", _drop("memorySwap"), True,
                 id="fail-swap-unset"),
    pytest.param("container-cpu-limited", "web", _drop("cpus"), True, id="cis-5.12-fail"),
    pytest.param("container-cpu-limited", "web", _set(cpus=None, cpuShares=512), False,
                 id="cis-5.12-pass-shares"),
    pytest.param("container-restart-bounded", "web", _set(restart="always"), True,
                 id="cis-5.15-fail-always"),
    pytest.param("container-restart-bounded", "web", _set(maxRetryCount=0), True,
                 id="cis-5.15-fail-unbounded"),
    pytest.param("container-healthcheck-defined", "web", _drop("healthcheck"), True,
                 id="cis-5.27-fail-missing"),
    pytest.param("container-healthcheck-defined", "web",
                 _set(healthcheck={"tests": ["NONE"]}), True, id="cis-5.27-fail-none"),
    pytest.param("container-logging-bounded", "web", _set(logDriver="none"), True,
                 id="fail-no-logs"),
    pytest.param("container-logging-bounded", "web", _drop("logDriver", "logOpts"), True,
                 id="fail-unbounded"),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "resource", "change", "fails"), CASES)
def test_container_rule(
    request: pytest.FixtureRequest, rule: str, resource: str, change: Change, fails: bool
) -> None:
    stack = mutate(foreign.records(), resource, change)
    messages = run_rule(rule, stack)
    assert bool(messages) is fails, messages
    if fails:
        assert_reasons("container", request, messages)
    for message in messages:
        assert resource in message, "a message names the resource it is about"


@pytest.mark.parametrize(
    ("host_path", "policy"),
    [
        ("/tmp/../var/run", "container-no-docker-socket"),
        ("/srv/./../run/", "container-no-docker-socket"),
        ("/var//run", "container-no-docker-socket"),
        ("/tmp/../etc", "container-no-sensitive-mounts"),
        ("/home/../../proc", "container-no-sensitive-mounts"),
        ("//etc", "container-no-sensitive-mounts"),
    ],
)
def test_host_path_spelled_with_dot_dot_or_double_slashes__is_judged_where_it_leads(
    host_path: str, policy: str
) -> None:
    """Docker resolves a bind source's `..`; the pack judges the directory it names (red
    before: `/tmp/../var/run` mounted the runtime's socket directory unnoticed)."""
    for props in (
        {"volumes": [{"hostPath": host_path, "containerPath": "/x", "readOnly": True}]},
        {"mounts": [{"type": "bind", "source": host_path, "target": "/x", "readOnly": True}]},
    ):
        record = Record(CONTAINER, "web", props, "urn:pulumi:qa::p::" + CONTAINER + "::web")
        assert run_rule(policy, [record]), (host_path, props)
