"""A Redis deployed as Swarm services is judged as strictly as one deployed as containers.

Each case changes the foreign stack (tests/policy/foreign.py) once and applies the same change
to its Swarm twin (tests/policy/swarm.py, the Redis server and its client as services): the rule
that rejects the container stack must reject the service stack too, naming the service as a
service ("Redis service cache", "Service web") and in the service's own property names. A pass
case must pass on both.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from policies.rules import RULES, ResourceRule, service
from policies.rules._model import CONTAINER, SERVICE, SERVICE_CONFIG, SWARM_SECRET
from tests.policy import foreign, swarm
from tests.policy.support import (
    generated_password,
    mutate,
    run_rule,
    upload,
    weak_rsa_certificate,
)

pytestmark = pytest.mark.policy

Change = Callable[[dict[str, Any]], object]
CA_KEY = foreign.material()["ca.key"].decode()
CLIENT_CERT = foreign.material()["client.crt"].decode()


# How containers spell properties a service spells otherwise (policies/rules/_service_shape.py).
CONTAINER_WORDS = (
    "(memory, in MB)",
    "networksAdvanced[",
    "capabilities.",
    "securityOpts",
    "healthcheck.tests",
    "bind ports[",
    "(user:",
    "container's memory limit",
    "command line",
)


def _set(**values: Any) -> Change:
    return lambda props: props.update(values)


def _env(entry: str) -> Change:
    return lambda props: props["envs"].append(entry)


def _twins(target: str, change: Change) -> tuple[list[Any], list[Any]]:
    """The foreign stack and its Swarm twin, each with `change` applied to `target`'s
    container properties (a service's are rebuilt from the changed container's)."""
    containers = mutate(foreign.records(), target, change)
    items = foreign.raw()
    for item in items:
        if item["name"] == target:
            change(item["props"])
        if item["name"] in swarm.SERVICES:
            item["type"] = SERVICE
            item["props"] = swarm.as_service(item["props"])
    return containers, swarm.records(items)


# (container rule, service rule, resource changed, change, rejected?)
CASES = [
    pytest.param("network-redis-internal-only", "network-redis-internal-only", "cache",
                 _set(networksAdvanced=[]), True, id="net-02-fail-no-network"),
    pytest.param("network-redis-internal-only", "network-redis-internal-only", "cache",
                 _set(networkMode="host", networksAdvanced=[]), True,
                 id="net-01-fail-host-network"),
    pytest.param("network-container-no-host-network", "service-task-hardened", "web",
                 _set(networkMode="host", networksAdvanced=[], ports=[]), True,
                 id="net-01-fail-client-on-host-network"),
    pytest.param("network-container-user-defined-network", "service-task-hardened", "web",
                 _set(networksAdvanced=[]), True, id="net-02-fail-client-on-no-network"),
    pytest.param("network-port-bound-to-interface", "service-task-hardened", "web",
                 _set(ports=[{"internal": 8000, "external": 8443}]), True,
                 id="net-03-fail-port-on-every-interface"),
    pytest.param("network-port-bound-to-interface", "service-task-hardened", "web",
                 _set(ports=[{"internal": 8000, "external": 443}]), False,
                 id="net-03-pass-edge-port"),
    pytest.param("network-redis-no-published-port", "network-redis-no-published-port", "cache",
                 _set(ports=[{"internal": 6380}]), True, id="net-04-fail-redis-port-published"),
    pytest.param("stack-network-scoped", "stack-network-scoped", "web",
                 _set(networksAdvanced=[{"name": "shop-dev-edge"}]), True,
                 id="net-09-fail-joins-foreign-network"),
    pytest.param("stack-volume-scoped", "stack-volume-scoped", "web",
                 lambda p: p["mounts"][0].update(source="shop-dev-web-secrets"), True,
                 id="stack-01-fail-mounts-foreign-volume"),
    pytest.param("network-container-no-unneeded-ports", "service-task-hardened", "web",
                 _set(command=["/usr/sbin/sshd", "-D"]), True, id="net-05-fail-sshd"),
    pytest.param("network-redis-internal-only", "network-redis-internal-only", "cache-net",
                 _set(internal=False), True, id="net-07-fail-network-not-internal"),
    pytest.param("network-redis-network-dedicated", "network-redis-network-dedicated", "web",
                 _set(envs=[]), True, id="net-10-fail-non-client-on-redis-network"),
    pytest.param("redis-clients-use-tls", "redis-clients-use-tls", "web",
                 _set(envs=["CACHE_URL=redis://cache:6380/0"]), True,
                 id="tls-06-fail-plaintext-url"),
    pytest.param("redis-clients-use-tls", "redis-clients-use-tls", "web",
                 _set(envs=["CACHE_URL=rediss://cache:6380/0?ssl_cert_reqs=none"]), True,
                 id="tls-06-fail-no-verification"),
    pytest.param("redis-clients-use-tls", "redis-clients-use-tls", "web",
                 _set(envs=["REDIS_HOST=cache", "REDIS_TLS=true"]), False,
                 id="tls-06-pass-host-port-client-with-tls"),
    pytest.param("tls-server-certificate-profile", "tls-server-certificate-profile", "web",
                 _set(envs=["CACHE_URL=rediss://shop-prod-cache:6380"]), True,
                 id="tls-08-fail-dialled-name-not-in-san"),
    pytest.param("tls-server-certificate-profile", "tls-server-certificate-profile",
                 "cache-loader", lambda p: upload(p, "tls.crt").update(content=CLIENT_CERT),
                 True, id="tls-08-fail-client-cert-served"),
    pytest.param("tls-ca-key-not-deployed", "tls-ca-key-not-deployed", "web",
                 _env(f"CA_KEY={CA_KEY}"), True, id="tls-10-fail-ca-key-in-env"),
    pytest.param("redis-tls-key-mount-read-only", "redis-tls-key-mount-read-only", "cache",
                 lambda p: p["mounts"][0].update(readOnly=False), True,
                 id="tls-10-fail-key-mount-writable"),
    pytest.param("redis-tls-only", "redis-tls-only", "cache",
                 _set(command=["redis-server", "/secrets/redis.conf", "--port", "6379"]), True,
                 id="tls-01-fail-plaintext-port"),
    pytest.param("redis-maxmemory-below-limit", "redis-maxmemory-below-limit", "cache",
                 _set(memory=200), True, id="redis-10-fail-limit-below-maxmemory"),
    pytest.param("container-ids-apart-from-host", "service-task-hardened", "cache",
                 _set(user="999:999"), True, id="runtime-07-fail-host-allocated-ids"),
    pytest.param("secret-labels-not-plain", "service-task-hardened", "web",
                 _set(labels=[{"label": "cache.password", "value": foreign.WEB_PASSWORD}]),
                 True, id="secret-02-fail-password-label"),
    pytest.param("image-tls-verification-enabled", "service-task-hardened", "web",
                 _env("NODE_TLS_REJECT_UNAUTHORIZED=0"), True, id="image-03-fail-env"),
    pytest.param("secret-argv-not-plain", "service-task-hardened", "web",
                 _set(command=["redis-cli", "-a", foreign.WEB_PASSWORD]), True,
                 id="secret-03-fail-password-in-args"),
    pytest.param("secret-not-shared-in-plain-form", "secret-not-shared-in-plain-form", "web",
                 _env(f"HINT={foreign.PROBE_PASSWORD}"), True,
                 id="secret-04-fail-probe-password-copied"),
]  # fmt: skip


@pytest.mark.parametrize(("container_rule", "service_rule", "target", "change", "rejected"), CASES)
def test_service_is_judged_like_the_container(
    container_rule: str, service_rule: str, target: str, change: Change, rejected: bool
) -> None:
    containers, services = _twins(target, change)
    as_container = run_rule(container_rule, containers)
    as_service = run_rule(service_rule, services)
    assert bool(as_container) is rejected, as_container
    assert bool(as_service) is rejected, as_service
    for message in as_service:
        assert "Container" not in message, message
        assert not any(word in message for word in CONTAINER_WORDS), message
    if target in swarm.SERVICES:
        assert all(("Redis service" in m or "Service " in m) for m in as_service), as_service


def test_unchanged_twins__pass_every_rule_alike() -> None:
    """The baseline: neither the foreign stack nor its Swarm twin has any finding."""
    for rule in RULES:
        assert run_rule(rule.name, foreign.records()) == [], rule.name
        assert run_rule(rule.name, swarm.records()) == [], rule.name


def test_redis_service_joining_no_network__says_where_swarm_puts_it() -> None:
    _, services = _twins("cache", _set(networksAdvanced=[]))
    assert run_rule("network-redis-internal-only", services) == [
        "Redis service cache (shop-prod-cache) must join internal networks of this stack "
        "(taskSpec.networksAdvanceds); it joins none, so Swarm runs its tasks on each node's "
        "default bridge network, and on the ingress network if it publishes a port."
    ]


def test_key_in_a_swarm_secret__is_on_a_read_only_mount() -> None:
    """Docker mounts Swarm secrets read-only (at /run/secrets/<fileName>, or an absolute
    fileName): a key there is read-only even on a writable root filesystem."""

    def key_from_swarm_secret(props: dict[str, Any]) -> None:
        props["mounts"] = props["mounts"][1:]  # no secrets volume: the key comes from Swarm
        props["readOnly"] = False

    _, services = _twins("cache", key_from_swarm_secret)
    cache = next(r for r in services if r.name == "cache")
    spec = cache.props["taskSpec"]["containerSpec"]
    assert run_rule("redis-tls-key-mount-read-only", services) != []
    spec["secrets"] = [{"secretId": "s1", "secretName": "tls-key", "fileName": "/secrets/tls.key"}]
    assert run_rule("redis-tls-key-mount-read-only", services) == []
    spec["secrets"] = [{"secretId": "s1", "secretName": "tls-key", "fileName": "tls.key"}]
    assert run_rule("redis-tls-key-mount-read-only", services) != []  # at /run/secrets/tls.key


def test_client_service__named_as_a_service_in_the_message() -> None:
    _, services = _twins("web", _set(envs=["CACHE_URL=redis://cache:6380/0"]))
    assert run_rule("redis-clients-use-tls", services) == [
        "Service web (shop-prod-web) must connect to Redis with a rediss:// URL that verifies the "
        "server (no ssl_cert_reqs=none, no ssl_check_hostname=false), or switch its host/port "
        "client to TLS; env CACHE_URL does not."
    ]


def test_port_published_in_host_mode__listens_on_every_interface_too() -> None:
    """Swarm has no host address for a published port: host mode listens on every interface
    of the node running the task, so only the edge port (443) passes, and the message names
    the endpoint port by its own index."""

    def publish(props: dict[str, Any]) -> None:
        props["taskSpec"]["networksAdvanceds"] = [{"name": "shop-prod-edge"}]
        props["endpointSpec"] = {"ports": [
            {"targetPort": 8000, "publishedPort": 443},
            {"targetPort": 8000, "publishedPort": 8443, "publishMode": "host"},
        ]}  # fmt: skip

    records = mutate(swarm.records(), "web", publish)
    assert [m for m in run_rule("service-task-hardened", records) if "publish" in m] == [
        "Service web (shop-prod-web) must not publish endpointSpec.ports[1]; Swarm cannot bind a "
        "published port to one host address, so it listens on every interface (of every node, in "
        "the default ingress mode) (CIS Docker 5.14)."
    ]


def test_every_container_rule__is_asked_of_services_or_says_why_not() -> None:
    """The table of docs/policy.md, "Policy as code": each container rule is folded into
    service-task-hardened or named in service.NOT_FOR_SERVICES with its reason, never both."""
    undecided = []
    for rule in RULES:
        if isinstance(rule, ResourceRule) and rule.applies_to(CONTAINER):
            folded = rule.check in service.CHECKS
            if folded == (rule.name in service.NOT_FOR_SERVICES):
                undecided.append(rule.name)
    assert undecided == []
    assert set(service.NOT_FOR_SERVICES) <= {rule.name for rule in RULES}


def test_secret_in_a_service_env__is_a_source_another_resource_must_not_copy() -> None:
    """secret-not-shared-in-plain-form: a secret a service carries (here in its env, which
    service-task-hardened rejects on its own) must not turn up in plain form elsewhere."""
    password = generated_password(18)  # a secret nothing else in the stack carries

    def carry(props: dict[str, Any]) -> None:
        props["envs"].append(f"CACHE_PASSWORD={password}")

    def copy_into_label(props: dict[str, Any]) -> None:
        props["labels"] = [{"label": "note", "value": password}]

    for records in _twins("web", carry):
        copied = mutate(records, "edge-net", copy_into_label)
        assert run_rule("secret-not-shared-in-plain-form", copied) == [
            "Network edge-net (shop-prod-edge) must not hold, in plain form, a secret another "
            "resource carries (labels); deliver it as a protected file and list the property in "
            "additionalSecretOutputs."
        ]


# The Redis service's user (tests/policy/foreign.py) owns the files Swarm gives it.
CACHE_FILE_OWNER = {"fileUid": "71001", "fileGid": "71001"}


def _delivered_by_swarm(
    unreadable: str = "",
    probe_key: str = "",
    served: str = "",
    owner: Mapping[str, str] = CACHE_FILE_OWNER,
) -> list[Any]:
    """The Swarm twin with the Redis service's files given as Swarm configs (redis.conf and
    certificates) and secrets (ACL, key, probe password) instead of a volume an initialiser
    fills: the stack has no cache-loader, so no upload holds them."""
    m = {k: v.decode() for k, v in foreign.material().items()}
    files = {"redis.conf": (SERVICE_CONFIG, foreign.REDIS_CONF),
             "ca.crt": (SERVICE_CONFIG, m["ca.crt"]), "tls.crt": (SERVICE_CONFIG, m["tls.crt"]),
             "users.acl": (SWARM_SECRET, foreign.ACL),
             "tls.key": (SWARM_SECRET, m["tls.key"]),
             "probe.pw": (SWARM_SECRET, foreign.PROBE_PASSWORD)}  # fmt: skip
    if probe_key:
        files["probe.key"] = (SWARM_SECRET, probe_key)
    if served:
        files["tls.crt"] = (SERVICE_CONFIG, served)
    items = [i for i in swarm.raw() if i["name"] not in ("cache-loader", "cache-secrets")]
    for item in items:
        if item["name"] == "cache":
            spec = item["props"]["taskSpec"]["containerSpec"]
            spec["mounts"] = [m for m in spec["mounts"] if m["target"] != "/secrets"]
            for name, (type_, _) in files.items():
                key, ref = (
                    ("configs", "configName")
                    if type_ == SERVICE_CONFIG
                    else ("secrets", "secretName")
                )
                spec.setdefault(key, []).append(
                    {
                        ref: f"shop-{name}",
                        "fileName": f"/secrets/{name}",
                        "fileMode": 0o400,
                        **owner,
                    }
                )
    for name, (type_, content) in files.items():
        data = base64.b64encode(content.encode()).decode()
        if name == unreadable:
            data = "not base64!"
        items.append({"type": type_, "name": name.replace(".", "-"),
                      "props": {"name": f"shop-{name}", "data": data}})  # fmt: skip
    return swarm.records(items)


def test_files_given_as_swarm_configs_and_secrets__are_read_like_uploads() -> None:
    """A Redis service's redis.conf, ACL and certificate delivered by Swarm are judged, not
    failed closed as unreadable; a config whose data is not base64 text stays unknown."""
    redis_rules = [r.name for r in RULES if r.name.startswith(("redis-", "tls-"))]
    delivered = _delivered_by_swarm()
    assert {
        name: run_rule(name, delivered) for name in redis_rules if run_rule(name, delivered)
    } == {}
    assert run_rule("redis-tls-only", _delivered_by_swarm(unreadable="redis.conf")) == [
        "Redis service cache (shop-prod-cache) must set port 0 in taskSpec.containerSpec.args or "
        "in a redis.conf this stack gives it as a ServiceConfig or Secret "
        "(taskSpec.containerSpec.configs or secrets); its config file cannot be read, so the "
        "setting is unknown."
    ]
    assert run_rule("tls-server-certificate-profile", _delivered_by_swarm("tls.crt")) == [
        "Redis service cache (shop-prod-cache) must serve a certificate (tls-cert-file) this "
        "stack gives it as a ServiceConfig or Secret (taskSpec.containerSpec.configs or secrets), "
        "so its profile can be verified; it cannot be read."
    ]


def test_service_that_may_run_redis__is_told_what_a_service_can_do() -> None:
    """redis-recognised: a container is told to put its settings on its command line or in an
    uploaded redis.conf; a service cannot upload files, so it is told its args or a
    ServiceConfig/Secret."""
    opaque = _set(
        image="registry.example/cache@sha256:" + "a" * 64,
        command=[],
        entrypoints=[],
        healthcheck={"tests": ["CMD", "true"]},
        envs=["REDIS_ARGS=--appendonly yes"],
    )
    containers, services = _twins("cache", opaque)
    assert run_rule("redis-recognised", containers) == [
        "Could not tell whether Container cache (shop-prod-cache) runs Redis (server settings in "
        "REDIS_ARGS); if it does, start it with redis-server and its settings on the command line "
        "or in an uploaded redis.conf so the Redis rules can judge it."
    ]
    assert run_rule("redis-recognised", services) == [
        "Could not tell whether Service cache (shop-prod-cache) runs Redis (server settings in "
        "REDIS_ARGS); if it does, start it with redis-server and its settings in "
        "taskSpec.containerSpec.args or in a redis.conf this stack gives it as a ServiceConfig or "
        "Secret (taskSpec.containerSpec.configs or secrets) so the Redis rules can judge it."
    ]


def test_one_key_given_by_swarm_under_two_names__is_refused() -> None:
    """tls-private-key-unique reads the keys Swarm gives a service, as it reads uploads."""
    server_key = foreign.material()["tls.key"].decode()
    assert run_rule("tls-private-key-unique", _delivered_by_swarm()) == []
    assert run_rule("tls-private-key-unique", _delivered_by_swarm(probe_key=server_key)) == [
        "Service cache (shop-prod-cache) receives one private key under 2 different file names; "
        "give every certificate (server, each client) its own key."
    ]


def test_weak_certificate_given_by_swarm__is_refused() -> None:
    """tls-private-key-strong reads the certificates Swarm gives a service, as it reads a
    container's uploads (TLS-07)."""
    assert run_rule("tls-private-key-strong", _delivered_by_swarm()) == []
    assert run_rule(
        "tls-private-key-strong", _delivered_by_swarm(served=weak_rsa_certificate())
    ) == [
        "Service cache (shop-prod-cache) must use RSA keys of at least 2048 bits or ECDSA "
        "P-256/P-384/P-521 (pulumi-tls defaults to P224, which TLS 1.3 cannot use)."
    ]


def test_swarm_secret_without_an_owner_only_mode__is_refused() -> None:
    """Docker gives a Swarm secret's file mode 0444 unless fileMode says otherwise (TLS-10)."""
    delivered = _delivered_by_swarm()
    assert not [m for m in run_rule("service-task-hardened", delivered) if "fileMode" in m]

    def default_mode(props: dict[str, Any]) -> None:
        secret = props["taskSpec"]["containerSpec"]["secrets"][1]
        del secret["fileMode"]

    assert [
        m
        for m in run_rule("service-task-hardened", mutate(delivered, "cache", default_mode))
        if "fileMode" in m
    ] == [
        "Service cache (shop-prod-cache) must give taskSpec.containerSpec.secrets[1] fileMode "
        "0400 (or 0440/0600), with fileUid/fileGid of its user; Docker's default 0444 lets every "
        "process in the task read the secret (CIS Docker 3.14)."
    ]


@pytest.mark.parametrize(
    ("mode", "given"),
    [
        pytest.param(400, "got 400, which is 0620 in octal", id="decimal-400-meant-as-octal"),
        pytest.param(0o444, "got 292, which is 0444 in octal", id="docker-default-written-out"),
        pytest.param(-1, "got -1, which is not a file mode", id="negative"),
        pytest.param(1e30, "got 1e+30, which is not a file mode", id="huge"),
    ],
)
def test_swarm_secret_mode_that_is_not_owner_only__says_what_was_given(
    mode: float, given: str
) -> None:
    """fileMode is a number: 400 written for 0400 is 0620 (owner and group may write), and the
    message says so instead of asking for the 0400 the author believes they gave."""

    def set_mode(props: dict[str, Any]) -> None:
        props["taskSpec"]["containerSpec"]["secrets"][1]["fileMode"] = mode

    stack = mutate(_delivered_by_swarm(), "cache", set_mode)
    (found,) = [m for m in run_rule("service-task-hardened", stack) if "fileMode" in m]
    assert f"fileMode 0400 (or 0440/0600); {given}" in found
    assert "0o400 in Python or TypeScript, 256 in YAML or JSON" in found
    if given.endswith("not a file mode"):  # nothing to judge readability by
        assert not [m for m in run_rule("service-swarm-files-readable", stack) if "[1]" in m]


def _readable_by(user: str, groups: list[str], **entry: Any) -> Change:
    """The Redis service as `user` (in `groups`), its key given as a Swarm secret `entry`."""

    def change(props: dict[str, Any]) -> None:
        spec = props["taskSpec"]["containerSpec"]
        spec.update(user=user, groups=groups)
        key = next(s for s in spec["secrets"] if s["fileName"] == "/secrets/tls.key")
        for name in ("fileUid", "fileGid", "fileMode"):
            key.pop(name, None)
        key.update(entry)

    return change


@pytest.mark.parametrize(
    ("user", "groups", "entry", "readable"),
    [
        pytest.param("71001:71001", [], {"fileMode": 0o400}, False, id="fail-root-owned-0400"),
        pytest.param("71001:71001", [], {"fileUid": "71002", "fileMode": 0o400}, False,
                     id="fail-other-owner-0400"),
        pytest.param("71001:71001", [], {"fileUid": "71001", "fileMode": 0o040}, False,
                     id="fail-owner-class-decides"),
        pytest.param("71001:71001", [], {"fileUid": "71001", "fileMode": 0o400}, True,
                     id="pass-owned-by-user"),
        pytest.param("71001:71001", [], {"fileGid": "71001", "fileMode": 0o440}, True,
                     id="pass-root-owned-0440-user-group"),
        pytest.param("71001:71001", ["71005"], {"fileGid": "71005", "fileMode": 0o440}, True,
                     id="pass-supplementary-group"),
        pytest.param("71001:71001", [], {"fileGid": "71005", "fileMode": 0o440}, False,
                     id="fail-0440-group-user-is-not-in"),
        pytest.param("71001", [], {"fileGid": "71005", "fileMode": 0o440}, True,
                     id="pass-unknown-primary-group"),
        pytest.param("71001:71001", [], {}, True, id="pass-docker-default-0444"),
        pytest.param("redis", [], {"fileMode": 0o400}, True, id="pass-user-name-unknown"),
        # Digits to str.isdigit() that int() refuses ('²'): the rule raised ValueError.
        pytest.param("71001:71001", ["\u00b2"], {"fileGid": "71005", "fileMode": 0o440}, True,
                     id="pass-unicode-digit-group-unknown"),
        pytest.param("71001:71001", [], {"fileUid": "\u00b2", "fileMode": 0o400}, True,
                     id="pass-unicode-digit-owner-unknown"),
    ],
)  # fmt: skip
def test_swarm_file_its_user_cannot_read__is_advised(
    user: str, groups: list[str], entry: dict[str, Any], readable: bool
) -> None:
    """service-swarm-files-readable: Swarm makes a secret's file root-owned unless fileUid/
    fileGid say otherwise; Linux grants read by the one class (owner, group, others) that
    applies. A Redis that cannot read its key does not start: advisory (availability)."""
    stack = mutate(_delivered_by_swarm(), "cache", _readable_by(user, groups, **entry))
    found = run_rule("service-swarm-files-readable", stack)
    assert (found == []) is readable, found
    if not readable:
        owner, group = entry.get("fileUid", "0"), entry.get("fileGid", "0")
        assert found == [
            f"Service cache (shop-prod-cache) runs as uid 71001, which cannot read "
            f"taskSpec.containerSpec.secrets[1] (fileUid {owner}, fileGid {group}, fileMode "
            f"{entry['fileMode']:04o}), so the task cannot use it (a Redis that cannot read its "
            f"key or config does not start). Set fileUid/fileGid to the ids of "
            f"taskSpec.containerSpec.user, keeping an owner-only fileMode."
        ]


def test_swarm_files_given_with_docker_defaults_and_an_owner_only_mode__are_advised() -> None:
    """The fixture's files without fileUid/fileGid: every owner-only one is root's."""
    found = run_rule("service-swarm-files-readable", _delivered_by_swarm(owner={}))
    assert len(found) == 6, found  # redis.conf, certificates (configs), ACL, key, probe password
    assert run_rule("service-swarm-files-readable", _delivered_by_swarm()) == []
