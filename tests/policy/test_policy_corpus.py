"""Insecure variants of the real stacks, one weakness each, judged by the real pack.

Each variant is the rendered dev or prod stack (real certificates and keys, secrets sent as
secrets) with one weakness, and must be rejected by the policy that owns that weakness: the set
of mandatory policies violated is exactly {owner} plus the consequences listed in `also`, and
the owner names the resource that carries the weakness. Every mandatory policy owns at least
one variant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from infra.proppath import get
from policies.records import Record
from policies.rules import RULES, Enforcement
from policies.rules._model import REGISTRY_IMAGE, SERVICE
from tests.policy.conftest import Analyze
from tests.policy.support import (
    add,
    describe,
    find,
    generated_password,
    mandatory,
    mutate,
    set_arg,
    upload,
)

Apply = Callable[[list[Record]], list[Record]]
Props = dict[str, Any]
LITERAL_PASSWORD = generated_password(24)  # generated: never a literal in the repository


@dataclass(frozen=True)
class Weakness:
    id: str
    stack: str
    owner: str
    where: str
    """The resource the owner's violation must name."""
    apply: Apply
    also: frozenset[str] = frozenset()
    """Mandatory policies the weakness necessarily trips as well."""


def on(name: str, change: Callable[[Props], object], **kwargs: Any) -> Apply:
    return lambda records: mutate(records, name, change, **kwargs)


def then(*steps: Apply) -> Apply:
    def apply(records: list[Record]) -> list[Record]:
        for step in steps:
            records = step(records)
        return records

    return apply


def extend(key: str, *values: Any) -> Callable[[Props], None]:
    return lambda p: p.setdefault(key, []).extend(values)


def arg(option: str, value: str | None) -> Callable[[Props], None]:
    return lambda p: set_arg(p, option, value)


def conf_without(directive: str) -> Callable[[Props], None]:
    def change(p: Props) -> None:
        entry = upload(p, "redis.conf")
        lines = entry["content"].splitlines(keepends=True)
        entry["content"] = "".join(x for x in lines if not x.startswith(directive + " "))

    return change


def acl(old: str, new: str) -> Callable[[Props], None]:
    def change(p: Props) -> None:
        entry = upload(p, "users.acl")
        assert old in entry["content"]
        entry["content"] = entry["content"].replace(old, new)

    return change


def copy_upload(source: str, target: str) -> Callable[[Props], None]:
    return lambda p: upload(p, target).update(content=upload(p, source)["content"])


def with_value(read: Callable[[list[Record]], str], make: Callable[[str], Apply]) -> Apply:
    """A step that needs a real value from the rendered stack (a key, a certificate)."""
    return lambda records: make(read(records))(records)


def ca_key(records: list[Record]) -> str:
    return str(find(records, "tls-redis-server").props["caKeyPem"])


def data_key(records: list[Record]) -> str:
    return str(upload(dict(find(records, "app-material-init").props), "data.key")["content"])


REDIS, APP, REDIS_INIT, APP_INIT = (
    "redis-container",
    "app-container",
    "redis-material-init",
    "app-material-init",
)
BIND = {"type": "bind", "readOnly": True, "target": "/host"}


def depend_on_stack_reference(records: list[Record]) -> list[Record]:
    records = add(records, "pulumi:pulumi:StackReference", "shared-secrets",
                  {"name": "org/secure-redis/prod"})  # fmt: skip
    reference = records[-1].urn
    return [
        r if r.name != APP
        else Record(r.type, r.name, r.props, r.urn,
                    {**r.options, "dependencies": [*r.options.get("dependencies", []), reference]},
                    r.secret_paths)
        for r in records
    ]  # fmt: skip


W = Weakness
CORPUS = [
    # network
    W("app-host-network", "dev", "network-container-no-host-network", APP,
      on(APP, lambda p: p.update(networkMode="host"))),
    W("app-default-bridge", "prod", "network-container-user-defined-network", APP,
      on(APP, lambda p: p.update(networksAdvanced=[]))),
    W("app-port-all-interfaces", "dev", "network-port-bound-to-interface", APP,
      on(APP, lambda p: p["ports"][0].pop("ip"))),
    W("redis-port-published-loopback", "dev", "network-redis-no-published-port", REDIS,
      on(REDIS, lambda p: p.update(ports=[{"internal": 6380, "external": 16380,
                                           "ip": "127.0.0.1"}]))),
    W("redis-port-published-everywhere", "prod", "network-redis-no-published-port", REDIS,
      on(REDIS, lambda p: p.update(ports=[{"internal": 6380, "external": 6380}])),
      also=frozenset({"network-port-bound-to-interface"})),
    W("app-publish-all-ports", "prod", "network-container-no-unneeded-ports", APP,
      on(APP, lambda p: p.update(publishAllPorts=True))),
    W("frontend-macvlan", "dev", "network-driver-isolated", "networks-frontend",
      on("networks-frontend", lambda p: p.update(driver="macvlan"))),
    W("docker-api-plain-tcp", "prod", "network-docker-api-authenticated", "remote-docker",
      lambda r: add(r, "pulumi:providers:docker", "remote-docker",
                    {"host": "tcp://docker.internal:2375"})),
    W("backend-not-internal", "dev", "network-redis-internal-only", "networks-backend",
      on("networks-backend", lambda p: p.update(internal=False))),
    W("redis-joins-frontend", "prod", "network-redis-internal-only", "networks-frontend",
      on(REDIS, lambda p: p["networksAdvanced"].append({"name": "secure-redis-prod-frontend"}))),
    W("network-not-stack-named", "prod", "stack-network-scoped", "networks-frontend",
      then(on("networks-frontend", lambda p: p.update(name="frontend")),
           on(APP, lambda p: p["networksAdvanced"][1].update(name="frontend")))),
    W("app-joins-other-stack-network", "dev", "stack-network-scoped", APP,
      on(APP, lambda p: p["networksAdvanced"].append({"name": "secure-redis-prod-backend"}))),
    # container
    W("app-privileged", "dev", "container-not-privileged", APP,
      on(APP, lambda p: p.update(privileged=True))),
    W("redis-keeps-capabilities", "prod", "container-capabilities-dropped", REDIS,
      on(REDIS, lambda p: p.update(capabilities={"drops": []}))),
    W("app-adds-net-admin", "dev", "container-no-added-capabilities", APP,
      on(APP, lambda p: p["capabilities"].update(adds=["NET_ADMIN"]))),
    W("redis-may-gain-privileges", "dev", "container-no-new-privileges", REDIS,
      on(REDIS, lambda p: p.update(securityOpts=[]))),
    W("app-seccomp-unconfined", "prod", "container-seccomp-enabled", APP,
      on(APP, extend("securityOpts", "seccomp=unconfined"))),
    W("app-apparmor-unconfined", "dev", "container-lsm-confined", APP,
      on(APP, extend("securityOpts", "apparmor=unconfined"))),
    W("redis-runs-as-root", "prod", "container-non-root-user", REDIS,
      on(REDIS, lambda p: p.pop("user")),
      also=frozenset({"container-ids-apart-from-host"})),
    W("app-writable-rootfs", "dev", "container-read-only-rootfs", APP,
      on(APP, lambda p: p.update(readOnly=False))),
    W("init-writable-and-networked", "prod", "container-read-only-rootfs", REDIS_INIT,
      on(REDIS_INIT, lambda p: p.update(networkMode="bridge")),
      also=frozenset({"network-container-user-defined-network", "container-process-limited"})),
    W("app-host-pid", "prod", "container-no-host-pid", APP,
      on(APP, lambda p: p.update(pidMode="host"))),
    W("redis-host-ipc", "dev", "container-no-host-ipc", REDIS,
      on(REDIS, lambda p: p.update(ipcMode="host"))),
    W("app-host-userns", "prod", "container-no-host-userns", APP,
      on(APP, lambda p: p.update(usernsMode="host"))),
    W("app-gets-a-device", "dev", "container-no-host-devices", APP,
      on(APP, lambda p: p.update(devices=[{"hostPath": "/dev/fuse"}]))),
    W("app-mounts-docker-socket", "prod", "container-no-docker-socket", APP,
      on(APP, extend("mounts", {**BIND, "source": "/var/run/docker.sock"}))),
    W("app-mounts-etc", "dev", "container-no-sensitive-mounts", APP,
      on(APP, extend("mounts", {**BIND, "source": "/etc"}))),
    W("app-shared-propagation", "prod", "container-mount-propagation-private", APP,
      on(APP, extend("mounts", {**BIND, "source": "/srv/x",
                                "bindOptions": {"propagation": "rshared"}}))),
    W("app-no-memory-limit", "dev", "container-memory-limited", APP,
      on(APP, lambda p: p.pop("memory"))),
    W("app-no-healthcheck", "prod", "container-healthcheck-defined", APP,
      on(APP, lambda p: p.pop("healthcheck"))),
    # redis
    W("redis-plaintext-port", "prod", "redis-tls-only", REDIS, on(REDIS, arg("--port", "6379"))),
    W("redis-plaintext-port-in-conf", "dev", "redis-tls-only", REDIS,
      then(on(REDIS, arg("--port", None)),
           on(REDIS_INIT, lambda p: upload(p, "redis.conf").update(
               content=upload(p, "redis.conf")["content"].replace("port 0\n", "port 6379\n"))))),
    W("redis-tls-listener-off", "dev", "redis-tls-configured", REDIS,
      on(REDIS, arg("--tls-port", "0"))),
    W("redis-no-ca", "prod", "redis-tls-configured", REDIS,
      then(on(REDIS, arg("--tls-ca-cert-file", None)),
           on(REDIS_INIT, conf_without("tls-ca-cert-file")))),
    W("redis-client-cert-optional", "prod", "redis-client-cert-required", REDIS,
      on(REDIS, arg("--tls-auth-clients", "optional"))),
    W("redis-cbc-cipher-in-dev", "dev", "redis-tls-ciphers-strong", REDIS,
      on(REDIS, arg("--tls-ciphers", "ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES128-GCM-SHA256"))),
    W("redis-tls12-in-a-stack-declaring-production", "dev", "redis-tls-protocols-modern", REDIS,
      on(APP, lambda p: p["envs"].__setitem__(
          next(i for i, e in enumerate(p["envs"]) if e.startswith("ENVIRONMENT=")),
          "ENVIRONMENT=production")),
      also=frozenset({"secret-password-length", "tls-certificate-validity-bounded"})),
    W("redis-tls11-in-dev", "dev", "redis-tls-protocols-modern", REDIS,
      on(REDIS, arg("--tls-protocols", "TLSv1.1 TLSv1.2 TLSv1.3"))),
    W("redis-tls12-in-prod", "prod", "redis-tls-protocols-modern", REDIS,
      on(REDIS, arg("--tls-protocols", "TLSv1.2 TLSv1.3"))),
    W("redis-protected-mode-off", "dev", "redis-protected-mode-on", REDIS,
      on(REDIS, arg("--protected-mode", "no"))),
    W("redis-no-acl-at-all", "prod", "redis-auth-required", REDIS,
      then(on(REDIS, arg("--aclfile", None)), on(REDIS_INIT, conf_without("aclfile"))),
      also=frozenset({"redis-default-user-disabled", "redis-acl-least-privilege",
                      "redis-acl-command-allowlist"})),
    W("redis-default-user-on", "dev", "redis-default-user-disabled", REDIS,
      on(REDIS_INIT, acl("user default off", "user default on nopass"))),
    W("redis-app-user-dangerous", "prod", "redis-acl-least-privilege", REDIS,
      on(REDIS_INIT, acl("-@all +del", "+@all +del")),
      also=frozenset({"redis-acl-command-allowlist"})),
    W("redis-app-user-flushall", "dev", "redis-acl-least-privilege", REDIS,
      on(REDIS_INIT, acl("+watch", "+watch +flushall"))),
    # second hardening round (issue 12): the insecure form of each point a declaration shows
    W("redis-app-user-categories", "dev", "redis-acl-command-allowlist", REDIS,
      on(REDIS_INIT, acl("-@all +del", "-@all +@read +@write -@dangerous -@admin +del"))),
    W("redis-no-bulk-cap", "prod", "redis-bulk-length-capped", REDIS,
      then(on(REDIS_INIT, conf_without("proto-max-bulk-len")),
           on(REDIS, arg("--proto-max-bulk-len", None)))),
    W("redis-bulk-cap-above-maxmemory", "dev", "redis-bulk-length-capped", REDIS,
      on(REDIS, arg("--proto-max-bulk-len", "512mb"))),
    W("app-without-nproc", "dev", "container-process-limited", APP,
      on(APP, lambda p: p.pop("ulimits"))),
    W("redis-nproc-soft-above-hard", "prod", "container-process-limited", REDIS,
      on(REDIS, lambda p: p["ulimits"][0].update(soft=100000))),
    W("redis-as-systemd-journal-gid", "prod", "container-ids-apart-from-host", REDIS,
      on(REDIS, lambda p: p.update(user="70301:999"))),
    W("app-as-uid-10001", "dev", "container-ids-apart-from-host", APP,
      on(APP, lambda p: p.update(user="10001:10001"))),
    W("redis-debug-command-on", "prod", "redis-escape-hatches-disabled", REDIS,
      on(REDIS, arg("--enable-debug-command", "yes"))),
    W("redis-module-command-local", "dev", "redis-escape-hatches-disabled", REDIS,
      on(REDIS, arg("--enable-module-command", "local"))),
    W("redis-maxmemory-above-limit", "dev", "redis-maxmemory-below-limit", REDIS,
      on(REDIS, arg("--maxmemory", "1gb"))),
    W("redis-no-maxmemory", "prod", "redis-maxmemory-below-limit", REDIS,
      then(on(REDIS, arg("--maxmemory", None)), on(REDIS_INIT, conf_without("maxmemory"))),
      also=frozenset({"redis-bulk-length-capped"})),
    W("redis-plaintext-healthcheck", "prod", "redis-healthcheck-uses-tls", REDIS,
      on(REDIS, lambda p: p["healthcheck"]["tests"].__setitem__(
          1, p["healthcheck"]["tests"][1].replace("--tls ", "")))),
    W("redis-key-volume-writable", "dev", "redis-tls-key-mount-read-only", REDIS,
      on(REDIS, lambda p: p["mounts"][0].update(readOnly=False))),
    W("app-plaintext-redis-url", "prod", "redis-clients-use-tls", APP,
      on(APP, lambda p: p["envs"].__setitem__(1, "REDIS_URL=redis://redis:6379"))),
    W("app-skips-verification", "dev", "redis-clients-use-tls", APP,
      on(APP, lambda p: p["envs"].__setitem__(
          1, "REDIS_URL=rediss://redis:6380/0?ssl_cert_reqs=none"))),
    # tls
    W("ca-key-weak-algorithm", "dev", "tls-private-key-strong", "tls-ca",
      on("tls-ca", lambda p: p.update(keyAlgorithm="rsa-1024"))),
    W("pulumi-tls-key-p224", "prod", "tls-private-key-strong", "legacy-key",
      lambda r: add(r, "tls:index/privateKey:PrivateKey", "legacy-key", {"algorithm": "ECDSA"})),
    W("pulumi-tls-leaf-is-ca", "dev", "tls-certificate-profile", "legacy-leaf",
      lambda r: add(r, "tls:index/locallySignedCert:LocallySignedCert", "legacy-leaf",
                    {"isCaCertificate": True, "allowedUses": ["server_auth"],
                     "validityPeriodHours": 720, "earlyRenewalHours": 24})),
    W("prod-leaf-valid-31-days", "prod", "tls-certificate-validity-bounded", "tls-app-client",
      on("tls-app-client", lambda p: p.update(validityDays=31))),
    W("dev-leaf-without-early-renewal", "dev", "tls-certificate-validity-bounded",
      "tls-redis-server", on("tls-redis-server", lambda p: p.pop("renewBeforeDays"))),
    W("server-key-reused-for-healthcheck", "prod", "tls-private-key-unique", REDIS_INIT,
      on(REDIS_INIT, copy_upload("server.key", "healthcheck.key"))),
    W("redis-serves-client-cert", "dev", "tls-server-certificate-profile", REDIS,
      on(REDIS_INIT, copy_upload("healthcheck.crt", "server.crt"))),
    W("redis-cert-misses-dialled-name", "prod", "tls-server-certificate-profile", REDIS,
      then(on(REDIS, lambda p: p["networksAdvanced"][0]["aliases"].append("cache")),
           on(APP, lambda p: p["envs"].__setitem__(1, "REDIS_URL=rediss://cache:6380")))),
    W("ca-key-shipped-to-app", "dev", "tls-ca-key-not-deployed", APP_INIT,
      with_value(ca_key, lambda key: on(APP_INIT, extend(
          "uploads", {"file": "/run/secure-redis-init/ca.key", "content": key,
                      "permissions": "0400", "owner": "10001", "group": "10001"})))),
    # secret
    W("app-password-in-env", "dev", "secret-env-not-plain", APP,
      on(APP, extend("envs", f"REDIS_PASSWORD={LITERAL_PASSWORD}"))),
    W("redis-requirepass-on-argv", "prod", "secret-argv-not-plain", REDIS,
      on(REDIS, extend("command", "--requirepass", LITERAL_PASSWORD))),
    W("healthcheck-password-on-argv", "dev", "secret-argv-not-plain", REDIS,
      on(REDIS, lambda p: p["healthcheck"].update(tests=[
          "CMD", "redis-cli", "--tls", "--user", "healthcheck", "-a", LITERAL_PASSWORD, "ping"]))),
    W("password-in-a-label", "prod", "secret-labels-not-plain", APP,
      on(APP, extend("labels", {"label": "redis.conf",
                                "value": f"requirepass {LITERAL_PASSWORD}"}))),
    W("app-key-world-readable", "dev", "secret-upload-file-mode", APP_INIT,
      on(APP_INIT, lambda p: upload(p, "app.key").update(permissions="0644"))),
    W("password-mode-unset", "prod", "secret-upload-file-mode", REDIS_INIT,
      on(REDIS_INIT, lambda p: upload(p, "healthcheck.password").pop("permissions"))),
    W("password-as-build-arg", "prod", "secret-image-build-args", "app-image",
      on("app-image", lambda p: p["build"]["args"].update(REDIS_PASSWORD=LITERAL_PASSWORD))),
    W("short-generated-password-in-prod", "prod", "secret-password-length",
      "secrets-app-password", on("secrets-app-password", lambda p: p.update(length=24))),
    W("random-password-12", "dev", "secret-password-length", "extra-password",
      lambda r: add(r, "random:index/randomPassword:RandomPassword", "extra-password",
                    {"length": 12})),
    W("data-key-copied-into-a-label", "dev", "secret-not-shared-in-plain-form", APP,
      with_value(data_key, lambda key: on(APP, extend("labels", {"label": "k", "value": key})))),
    W("prod-secrets-via-stack-reference", "dev", "secret-stack-reference-isolated", APP,
      depend_on_stack_reference),
    # image
    W("app-image-by-tag", "prod", "image-container-pinned", APP,
      on(APP, lambda p: p.update(image="secure-redis-prod-app:latest"))),
    W("swarm-service-as-root", "prod", "service-task-hardened", "web-service",
      lambda r: add(r, SERVICE, "web-service",
                    {"taskSpec": {"containerSpec": {"image": "nginx@sha256:" + "1" * 64}}})),
    W("registry-push-skips-tls-verification", "prod", "image-registry-tls-verified", "push",
      lambda r: add(r, REGISTRY_IMAGE, "push",
                    {"name": "registry.example/app:1", "insecureSkipVerify": True})),
    W("redis-image-latest", "dev", "image-tag-not-latest", "redis-image",
      on("redis-image", lambda p: p.update(imageName="secure-redis-dev-redis:latest"))),
    W("app-python-tls-verify-off", "dev", "image-tls-verification-enabled", APP,
      on(APP, extend("envs", "PYTHONHTTPSVERIFY=0"))),
    # stack
    W("data-volume-binds-host", "prod", "stack-volume-no-host-path", "redis-data",
      on("redis-data", lambda p: p.update(driverOpts={"type": "none", "o": "bind",
                                                      "device": "/srv/redis"}))),
    W("data-volume-of-other-stack", "dev", "stack-volume-scoped", REDIS,
      on(REDIS, lambda p: p["mounts"][1].update(source="secure-redis-prod-redis-data"))),
    W("volume-not-stack-named", "prod", "stack-volume-scoped", "redis-data",
      then(on("redis-data", lambda p: p.update(name="redis-data")),
           on(REDIS, lambda p: p["mounts"][1].update(source="redis-data")))),
]  # fmt: skip


@pytest.mark.parametrize("weakness", CORPUS, ids=[w.id for w in CORPUS])
def test_weakness__is_rejected_by_the_policy_that_owns_it(
    analyze: Analyze, rendered: dict[str, list[Record]], weakness: Weakness
) -> None:
    records = weakness.apply(list(rendered[weakness.stack]))
    findings = analyze(records)
    assert mandatory(findings) == {weakness.owner} | weakness.also, describe(findings)
    owned = [f for f in findings if f.policy == weakness.owner]
    assert any(f.resource == weakness.where for f in owned), describe(owned)
    secrets_ = _secret_values(records) | {LITERAL_PASSWORD}
    leaked = [f.policy for f in findings if any(s in f.message for s in secrets_)]
    assert not leaked, f"messages must never echo a secret value: {leaked}"


def _secret_values(records: list[Record]) -> set[str]:
    values = set()
    for record in records:
        for path in record.secret_paths:
            node = get(record.props, path)
            if isinstance(node, str) and len(node) >= 8:
                values.add(node)
    return values


def test_corpus__covers_every_mandatory_policy_with_at_least_40_variants() -> None:
    owners = {w.owner for w in CORPUS}
    assert {r.name for r in RULES if r.enforcement is Enforcement.MANDATORY} <= owners
    assert len(CORPUS) >= 40
    assert {w.stack for w in CORPUS} == {"dev", "prod"}
    assert len({w.id for w in CORPUS}) == len(CORPUS)
