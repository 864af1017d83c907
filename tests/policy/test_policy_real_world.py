"""How real programs write Redis stacks, and the exact reason each rule gives (pure rules).

Each case is a small stack in the shape public pulumi-docker programs use (image IDs from a
RemoteImage, wrapper entrypoints, host/port clients, wrong-typed props, Swarm services) and
asserts the reason the owning rule reports, so a rule that fires for another reason, or for
nothing, fails the test.
"""

from __future__ import annotations

import json
from typing import Any, Final

import pytest

from infra.profiles import REQUIRED_TLS_MIN, Environment
from policies.records import Record, parse_records
from policies.rules._environment import FLOORS
from policies.rules._model import (
    CONTAINER,
    LOCAL_COMMAND,
    NETWORK,
    REGISTRY_IMAGE,
    REMOTE_IMAGE,
    SERVICE,
    SERVICE_CONFIG,
    SWARM_SECRET,
)
from policies.rules._redisconf import ImageIndex, Verdict, recognise
from policies.rules.redis import weak_tls12_ciphers
from policies.strictness import config_file
from tests.policy.support import run_rule, to_resources

pytestmark = pytest.mark.policy

IMAGE_ID = "sha256:" + "4" * 64
TLS_ARGS = ["--port", "0", "--tls-port", "6380", "--tls-cert-file", "/t/s.crt",
            "--tls-key-file", "/t/s.key", "--tls-ca-cert-file", "/t/ca.crt"]  # fmt: skip


def stack(*items: dict[str, Any], name: str = "qa") -> list[Record]:
    return parse_records(list(items), source="test", stack=name, project="shop")


def container(logical: str, **props: Any) -> dict[str, Any]:
    return {"type": CONTAINER, "name": logical, "props": props}


def only(messages: list[str]) -> str:
    assert len(messages) == 1, messages
    return messages[0]


# -- recognition --------------------------------------------------------------------------------

REMOTE_REDIS = {"type": REMOTE_IMAGE, "name": "redis-image",
                "props": {"name": "redis:6.2", "imageId": IMAGE_ID}}  # fmt: skip


@pytest.mark.parametrize(
    ("props", "verdict", "args"),
    [
        pytest.param({"image": IMAGE_ID}, Verdict.SERVER, (), id="image-id-of-a-redis-image"),
        pytest.param({"image": "redis:7", "command": ["/bin/sh", "-c", "/entrypoint.sh"]},
                     Verdict.SERVER, None, id="script-wrapper-in-a-redis-image"),
        pytest.param({"image": "x",
                      "command": ["docker-entrypoint.sh", "redis-server", "--port", "0"]},
                     Verdict.SERVER, ("--port", "0"), id="docker-entrypoint-wrapper"),
        pytest.param({"image": "redis:7", "command": ["/usr/local/etc/redis/redis.conf"]},
                     Verdict.SERVER, ("/usr/local/etc/redis/redis.conf",), id="conf-file-only"),
        # The official image's docker-entrypoint.sh prepends redis-server to options or a
        # .conf file wherever argv names it; another image's is a script like any other.
        pytest.param({"image": "redis:7", "entrypoints": ["docker-entrypoint.sh"],
                      "command": ["--port", "0"]},
                     Verdict.SERVER, ("--port", "0"), id="official-entrypoint-as-entrypoints"),
        pytest.param({"image": "redis:7",
                      "command": ["/usr/local/bin/docker-entrypoint.sh", "/r/redis.conf"]},
                     Verdict.SERVER, ("/r/redis.conf",), id="official-entrypoint-in-command"),
        pytest.param({"image": "redis:7", "command": [
                         "sh", "-c", "chown redis /data && exec docker-entrypoint.sh --save 60 1"]},
                     Verdict.SERVER, ("--save", "60", "1"), id="official-entrypoint-in-a-script"),
        pytest.param({"image": "redis:7", "entrypoints": ["tini", "--"],
                      "command": ["--port", "0"]},
                     Verdict.SERVER, None, id="options-after-another-entrypoint"),
        pytest.param({"image": "postgres:16",
                      "command": ["docker-entrypoint.sh", "-c", "max_connections=200"]},
                     Verdict.NOT_REDIS, None, id="another-images-docker-entrypoint"),
        pytest.param({"image": "sha256:" + "9" * 64,
                      "healthcheck": {"tests": ["CMD", "redis-cli", "ping"]}},
                     Verdict.SERVER, None, id="opaque-image-with-redis-cli-healthcheck"),
        pytest.param({"image": "sha256:" + "9" * 64, "ports": [{"internal": 6379}]},
                     Verdict.SERVER, None, id="opaque-image-on-the-redis-port"),
        pytest.param({"image": "sha256:" + "9" * 64, "envs": ["REDIS_ARGS=--save 60 1"]},
                     Verdict.UNSURE, None, id="only-server-settings-in-env"),
        pytest.param({"image": "myorg/web:1", "envs": ["REDIS_HOST=cache"]},
                     Verdict.NOT_REDIS, None, id="client-with-redis-host"),
        pytest.param({"image": "redis:7", "command": ["sh", "-c", "cp /stage/* /out/"]},
                     Verdict.NOT_REDIS, None, id="visible-script-that-is-not-redis"),
        pytest.param({"image": "redis:7", "command": ["redis-cli", "-h", "cache", "ping"]},
                     Verdict.NOT_REDIS, None, id="redis-cli-is-a-client"),
        # Only options after an image the pack does not know (`docker run img --opt v`): they
        # are for its entrypoint, not another program, so the signs decide.
        pytest.param({"image": "myorg/cache:1", "command": ["--save", "60", "1"],
                      "ports": [{"internal": 6379}]},
                     Verdict.SERVER, None, id="options-only-on-the-redis-port"),
        pytest.param({"image": "postgres:16", "command": ["-c", "max_connections=200"],
                      "ports": [{"internal": 5432}]},
                     Verdict.NOT_REDIS, None, id="options-only-and-no-redis-sign"),
    ],
)  # fmt: skip
def test_recognise__like_a_reviewer(
    props: dict[str, Any], verdict: Verdict, args: tuple[str, ...] | None
) -> None:
    images = ImageIndex(to_resources(stack(REMOTE_REDIS)))
    found = recognise(props, images)
    assert (found.verdict, found.args) == (verdict, args)


# Images that run redis-server (or valkey-server) through entrypoints of their own: cluster nodes
# and servers with modules loaded (tests/policy/external_programs/shotover_*, guyroyse_*).
@pytest.mark.parametrize(
    "image",
    [
        "bitnami/redis-cluster:6.0-debian-10",
        "docker.io/bitnami/valkey-cluster:8.0",
        "grokzen/redis-cluster:6.2.0",
        "valkey/valkey-bundle:8.1",
        "redislabs/redismod",
        "redislabs/redisearch:2.8.4",
        "redislabs/rejson:latest",
        "registry.example.com:5000/redislabs/redisgears@sha256:" + "4" * 64,
    ],
)
def test_redis_image_with_an_entrypoint_of_its_own__is_a_server_with_unknown_settings(
    image: str,
) -> None:
    for props in ({"image": image}, {"image": image, "command": ["--loadmodule", "/m.so"]}):
        found = recognise(props)
        assert (found.verdict, found.args, found.signs) == (
            Verdict.SERVER, None, ("a Redis image",)
        ), props  # fmt: skip


@pytest.mark.parametrize(
    "image",
    ["redis/redisinsight:2.50", "rediscommander/redis-commander", "oliver006/redis_exporter",
     "bitnami/redis-cluster-operator:1", "redislabs/redis-cluster-proxy"],
)  # fmt: skip
def test_redis_tool_images__are_not_servers(image: str) -> None:
    assert recognise({"image": image}).verdict is Verdict.NOT_REDIS


def test_unsure_container__is_reported_not_skipped() -> None:
    records = stack(container("cache", image=IMAGE_ID, envs=["REDIS_ARGS=--appendonly yes"]))
    assert only(run_rule("redis-recognised", records)) == (
        "Could not tell whether Container cache runs Redis (server settings in REDIS_ARGS); if "
        "it does, start it with redis-server and its settings on the command line or in an "
        "uploaded redis.conf so the Redis rules can judge it."
    )


def test_redis_behind_an_image_id__gets_the_redis_rules() -> None:
    records = stack(REMOTE_REDIS, container("redis", image=IMAGE_ID))
    assert "must set port 0 (with tls-port)" in only(run_rule("redis-tls-only", records))


# -- effective configuration ---------------------------------------------------------------------


def test_official_image_default__protected_mode_is_off() -> None:
    records = stack(container("redis", image="redis:7.2", command=["--port", "0"]))
    assert only(run_rule("redis-protected-mode-on", records)) == (
        "Redis container redis must keep protected-mode yes; the image turns it off by default."
    )


def test_argv_wins_over_the_image_default() -> None:
    records = stack(container("redis", image="redis:7.2",
                              command=["--protected-mode", "yes"]))  # fmt: skip
    assert run_rule("redis-protected-mode-on", records) == []


def test_script_wrapper__settings_are_unknown_and_fail_closed() -> None:
    records = stack(
        container("redis", image="redis:7", command=["/bin/sh", "-c", "/entrypoint.sh"])
    )
    assert (
        "its start script runs a script file (/entrypoint.sh), which the pack cannot read and "
        "which may start a server with any settings: run redis-server from the command line, its "
        "settings on it or in an uploaded config file, so the setting is unknown."
    ) in only(run_rule("redis-tls-only", records))


# -- TLS directives where their protocol is enabled ----------------------------------------------


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        pytest.param([], "it allows OpenSSL's default list (tls-ciphers unset)", id="unset"),
        pytest.param(["--tls-ciphers", "ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES128-GCM-SHA256"],
                     "it allows ECDHE-RSA-AES128-SHA256 (no CBC", id="cbc"),
        pytest.param(["--tls-ciphers", "AES256-GCM-SHA384"], "it allows AES256-GCM-SHA384",
                     id="rsa-key-exchange"),
        pytest.param(["--tls-ciphers", "HIGH:!aNULL"], "it allows HIGH", id="alias"),
        pytest.param(["--tls-ciphers", "ECDHE-ECDSA-AES256-GCM-SHA384",
                      "--tls-ciphersuites", "TLS_AES_128_CCM_8_SHA256"],
                     "it allows TLS_AES_128_CCM_8_SHA256", id="tls13-ccm8"),
    ],
)  # fmt: skip
def test_tls12_enabled__every_cipher_directive_is_judged(extra: list[str], reason: str) -> None:
    records = stack(
        container("redis", image="redis:7", command=["redis-server", *TLS_ARGS, *extra])
    )
    assert reason in only(run_rule("redis-tls-ciphers-strong", records))


def test_strong_cipher_list__passes() -> None:
    assert (
        weak_tls12_ciphers("ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305:!aNULL") == []
    )


def test_server_without_tls__gets_no_cipher_findings() -> None:
    records = stack(container("redis", image="redis:7", command=["redis-server", "--port", "6379"]))
    assert run_rule("redis-tls-ciphers-strong", records) == []
    assert run_rule("redis-tls-prefer-server-ciphers", records) == []


@pytest.mark.parametrize(
    ("declared", "fails"),
    [
        (None, True),
        ("ENVIRONMENT=production", True),
        ("ENVIRONMENT=staging", True),
        ("ENVIRONMENT=development", False),
    ],
    ids=["undeclared-strictest", "production", "staging", "development"],
)
def test_tls12_floor__follows_the_declared_environment(declared: str | None, fails: bool) -> None:
    """Staging as the program deploys it (infra/profiles.py REQUIRED_TLS_MIN): TLSv1.3 only."""
    client = container("web", image="web:1", envs=[declared] if declared else [])
    server = container("redis", image="redis:7", command=[
        "redis-server", *TLS_ARGS, "--tls-protocols", "TLSv1.2 TLSv1.3"])  # fmt: skip
    messages = run_rule("redis-tls-protocols-modern", stack(server, client, name="prod-eu"))
    if fails:
        assert "it enables a protocol older than TLSv1.3" in only(messages)
    else:
        assert messages == []


@pytest.mark.parametrize("environment", list(Environment))
def test_tls_floor__is_the_programs_for_every_environment(environment: Environment) -> None:
    """What the pack accepts is what infra/settings.py lets a stack deploy: one value."""
    assert FLOORS[environment].tls_minimum == f"TLSv{REQUIRED_TLS_MIN[environment]}"
    config = json.loads(config_file(environment).read_text())
    assert config["redis-tls-protocols-modern"]["minimumVersion"] == FLOORS[environment].tls_minimum


# -- cleartext credentials wherever they travel --------------------------------------------------

ACL_LINE = "user app on >" + "x" * 20 + " ~app:* +@read"


@pytest.mark.parametrize(
    ("rule", "props", "reason"),
    [
        pytest.param("secret-env-not-plain", {"envs": [f"REDIS_ACL={ACL_LINE}"]},
                     "environment variables (REDIS_ACL)", id="acl-in-innocent-env"),
        pytest.param("secret-env-not-plain", {"envs": ["REDIS_ARGS=--requirepass hunter22x"]},
                     "environment variables (REDIS_ARGS)", id="requirepass-in-env"),
        pytest.param("secret-labels-not-plain",
                     {"labels": [{"label": "conf", "value": "requirepass hunter22x"}]},
                     "labels (conf)", id="requirepass-in-label"),
        pytest.param("secret-argv-not-plain",
                     {"command": ["sh", "-c", f"echo '{ACL_LINE}' > /a.acl && redis-server"]},
                     "command line (an ACL rule with a >password)", id="acl-in-argv"),
    ],
)  # fmt: skip
def test_cleartext_credentials__found_in_env_labels_and_argv(
    rule: str, props: dict[str, Any], reason: str
) -> None:
    records = stack(container("redis", image="redis:7", **props))
    message = only(run_rule(rule, records))
    assert reason in message
    assert "x" * 20 not in message
    assert "hunter22x" not in message


# -- resources the container rules do not cover ---------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "reason"),
    [
        (SERVICE_CONFIG, "a Swarm config is not checked"),
        (SWARM_SECRET, "a Swarm secret is not checked"),
        (LOCAL_COMMAND, "a command run on the deploying machine is not checked"),
    ],
)
def test_unjudged_resource__is_reported_as_unchecked(type_: str, reason: str) -> None:
    records = stack({"type": type_, "name": "thing", "props": {}})
    assert reason in only(run_rule("coverage-unchecked-resource", records))


def test_swarm_service_as_root_without_selinux_on_ingress__is_rejected() -> None:
    service = {"taskSpec": {"containerSpec": {
        "image": "nginx", "privileges": {"seLinuxContext": {"disable": True}}}},
        "endpointSpec": {"ports": [{"targetPort": 8080, "publishedPort": 8080}]}}  # fmt: skip
    messages = run_rule("service-task-hardened", stack({"type": SERVICE, "name": "web",
                                                        "props": service}))  # fmt: skip
    assert "must run as a non-root user (taskSpec.containerSpec.user" in messages[0]
    assert "remove privileges.seLinuxContext.disable" in messages[2]
    assert messages[-1] == (
        "Service web must not publish endpointSpec.ports[0]; Swarm cannot bind a published port "
        "to one host address, so it listens on every interface (of every node, in the default "
        "ingress mode) (CIS Docker 5.14)."
    )


def _swarm_redis(container_spec: dict[str, Any], port: int = 6379) -> list[Record]:
    props = {
        "name": "shop-redis",
        "taskSpec": {"containerSpec": container_spec, "networks": ["backend"]},
        "endpointSpec": {"ports": [{"targetPort": port, "publishedPort": port}]},
    }
    return stack({"type": SERVICE, "name": "redis-master", "props": props})  # fmt: skip


def test_swarm_service_running_redis__is_judged_by_the_redis_rules() -> None:
    """Murat2424/terraform-docker (tests/policy/external): a Bitnami Redis service with
    ALLOW_EMPTY_PASSWORD=yes got the container rules only; its server went unjudged."""
    records = _swarm_redis({"image": "bitnami/redis:latest",
                            "env": {"ALLOW_EMPTY_PASSWORD": "yes"}})  # fmt: skip
    assert only(run_rule("redis-auth-required", records)) == (
        "Redis service redis-master (shop-redis) must require authentication (an aclfile with "
        "users that have passwords); ALLOW_EMPTY_PASSWORD with no password variable lets anyone "
        "who connects in. Its image (bitnami/redis:latest) writes its redis.conf from REDIS_* "
        "variables (ALLOW_EMPTY_PASSWORD=yes turns protected mode off, REDIS_PASSWORD sets "
        "requirepass, REDIS_TLS_ENABLED=yes sets the REDIS_TLS_* files and listens for TLS only "
        "when REDIS_PORT_NUMBER and REDIS_TLS_PORT_NUMBER are both 6379) and starts redis-server "
        "with it, then the options in REDIS_EXTRA_FLAGS and its command's, which win: set the "
        "other options there."
    )
    plaintext = _swarm_redis({"image": "redis:7.2", "args": ["--port", "6379"]})
    assert only(run_rule("redis-tls-only", plaintext)) == (
        "Redis service redis-master (shop-redis) must set port 0 (with tls-port) so it accepts "
        "TLS connections only; it listens for plaintext connections."
    )
    web = _swarm_redis({"image": "nginx:1.27"}, port=8080)
    assert run_rule("redis-tls-only", web) == []


@pytest.mark.parametrize(
    "port",
    [{"targetPort": 6379, "publishedPort": 6379},
     {"targetPort": 6379, "publishedPort": 6379, "publishMode": "host"},
     {"targetPort": 6379}],
    ids=["ingress", "host-mode", "random-published-port"],
)  # fmt: skip
def test_swarm_service_running_redis__publishes_no_port(port: dict[str, Any]) -> None:
    """NET-04: service-task-hardened asks published ports to use host mode; a Redis service
    publishes none at all (Swarm publishes a port without publishedPort on a random one)."""

    def service(endpoint: dict[str, Any]) -> list[Record]:
        props = {"name": "shop-redis", "taskSpec": {"containerSpec": {"image": "redis:7.2"}},
                 "endpointSpec": endpoint}  # fmt: skip
        return stack({"type": SERVICE, "name": "redis-master", "props": props})

    assert only(run_rule("network-redis-no-published-port", service({"ports": [port]}))) == (
        "Redis service redis-master (shop-redis) must not publish ports (endpointSpec.ports); "
        "clients reach it over an internal network."
    )
    assert run_rule("network-redis-no-published-port", service({})) == []


def test_swarm_service_running_redis__joins_only_internal_networks_of_the_stack() -> None:
    def service(*networks: dict[str, Any]) -> list[Record]:
        props = {
            "name": "shop-redis",
            "taskSpec": {
                "containerSpec": {"image": "redis:7.2"},
                "networks": ["backend", "shared"],
            },
        }
        return stack({"type": SERVICE, "name": "redis-master", "props": props}, *networks)

    open_backend = {"type": NETWORK, "name": "backend", "props": {"name": "backend",
                    "driver": "overlay"}}  # fmt: skip
    assert run_rule("network-redis-internal-only", service(open_backend)) == [
        "Network backend must set internal: true, because Redis service redis-master "
        "(shop-redis) joins it; it has a route to other networks.",
        "Redis service redis-master (shop-redis) must attach only to networks this stack "
        "declares with internal: true; its network 'shared' is not declared here, so it cannot "
        "be verified. Declare it in this stack with internal: true and join it by its name "
        "output.",
    ]
    internal = {"type": NETWORK, "name": "backend", "props": {"name": "backend",
                "driver": "overlay", "internal": True}}  # fmt: skip
    shared = {"type": NETWORK, "name": "shared", "props": {"name": "shared", "internal": True}}
    assert run_rule("network-redis-internal-only", service(internal, shared)) == []


def test_swarm_service_on_a_mutable_tag__is_rejected_like_a_container() -> None:
    tagged = _swarm_redis({"image": "bitnami/redis:latest", "user": "70001:70001"})
    assert any(
        m.startswith("Service redis-master (shop-redis) must reference its image by ID or digest")
        for m in run_rule("service-task-hardened", tagged)
    )
    pinned = _swarm_redis({"image": "redis@sha256:" + "4" * 64})
    assert not any("by ID or digest" in m for m in run_rule("service-task-hardened", pinned))


def test_registry_image_skipping_tls_verification__is_rejected() -> None:
    push = {"name": "reg.example/app:1", "insecureSkipVerify": True}
    records = stack({"type": REGISTRY_IMAGE, "name": "push",
                     "props": push})  # fmt: skip
    assert "remove insecureSkipVerify: true" in only(
        run_rule("image-registry-tls-verified", records)
    )


# -- clients configured by host and port ---------------------------------------------------------


@pytest.mark.parametrize(
    ("envs", "reason"),
    [
        (["REDIS_HOST=cache", "REDIS_PORT=6379"], "env REDIS_HOST does not"),
        (["QUEUE_BULL_REDIS_HOST=cache"], "env QUEUE_BULL_REDIS_HOST does not"),
        (["REDIS_HOST=cache", "REDIS_TLS=true"], None),
    ],
    ids=["redis-host", "bull-queue-host", "tls-switched-on"],
)
def test_host_port_clients__must_use_tls(envs: list[str], reason: str | None) -> None:
    messages = run_rule("redis-clients-use-tls", stack(container("web", image="web:1", envs=envs)))
    if reason is None:
        assert messages == []
    else:
        assert reason in only(messages)


# -- wrong-typed properties fail closed ----------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "props", "reason"),
    [
        ("network-port-bound-to-interface", {"ports": "6379:6379"}, "ports must be a list"),
        ("container-not-privileged", {"privileged": "true"}, "privileged must be true or false"),
        ("secret-env-not-plain", {"envs": {"A": "b"}}, "envs must be a list"),
        ("container-no-added-capabilities", {"capabilities": {"adds": "SYS_ADMIN"}},
         "capabilities.adds must be a list"),
        ("container-memory-limited", {"memory": 536870912}, "memory must be megabytes"),
    ],
    ids=["ports-string", "privileged-string", "envs-object", "adds-string", "memory-bytes"],
)  # fmt: skip
def test_unreadable_value__violates_the_rule_that_needed_it(
    rule: str, props: dict[str, Any], reason: str
) -> None:
    message = only(run_rule(rule, stack(container("web", image="web:1", **props))))
    assert message.startswith("Container web: " + reason)


def test_unreadable_value_in_a_stack_rule__names_the_resource() -> None:
    records = stack(container("web", image="web:1", ports="6379:6379"))
    assert only(run_rule("network-redis-no-published-port", records)) == (
        "Container web: ports must be a list, not a string; the pack cannot read it, so "
        "network-redis-no-published-port cannot confirm it is safe. Fix the property's type."
    )


# -- false positives that must not fire ------------------------------------------------------------


def test_host_port_client__is_a_redis_client_on_the_redis_network() -> None:
    net = {"type": NETWORK, "name": "net", "props": {"name": "services"}}
    records = stack(
        net,
        container("redis", image="redis:6.2", networksAdvanced=[{"name": "services",
                                                                "aliases": ["redisdb"]}]),
        container("app", image="app:1", envs=["REDIS_HOST=redisdb"],
                  networksAdvanced=[{"name": "services"}]),
    )  # fmt: skip
    assert run_rule("network-redis-network-dedicated", records) == []


def test_edge_proxy_on_443__is_not_told_to_bind_loopback() -> None:
    records = stack(container("edge", image="nginx:1", ports=[{"internal": 443, "external": 443}]))
    assert run_rule("network-port-bound-to-interface", records) == []


def test_single_stack_program__is_not_told_to_put_the_stack_in_names() -> None:
    records = stack({"type": NETWORK, "name": "net",
                     "props": {"name": "services"}}, name="dev")  # fmt: skip
    assert run_rule("stack-network-scoped", records) == []


STACK_START: Final = (
    "--dir", "/data", "--protected-mode", "no", "--daemonize", "no",
    "--loadmodule", "/opt/redis-stack/lib/redisearch.so",
    "--loadmodule", "/opt/redis-stack/lib/redistimeseries.so",
    "--loadmodule", "/opt/redis-stack/lib/rejson.so",
    "--loadmodule", "/opt/redis-stack/lib/redisbloom.so",
)  # fmt: skip


@pytest.mark.parametrize(
    ("image", "args"),
    [("redis:7.2", ()),
     ("bitnami/redis:7.2", ("--save", "", "--appendonly", "yes", "--port", "6379",
                            "--daemonize", "no")),
     ("redis/redis-stack-server:7.2.0-v6", STACK_START)],
    ids=["official-default-command", "bitnami-run-script", "redis-stack-start-script"],
)  # fmt: skip
def test_image_default_command__known_for_the_official_image_and_redis_stack(
    image: str, args: tuple[str, ...] | None
) -> None:
    found = recognise({"image": image})
    assert (found.verdict, found.args) == (Verdict.SERVER, args)


@pytest.mark.parametrize(
    ("envs", "reason"),
    [
        (["ALLOW_EMPTY_PASSWORD=yes"], "ALLOW_EMPTY_PASSWORD with no password variable"),
        (["ALLOW_EMPTY_PASSWORD=yes", "VALKEY_PASSWORD_FILE=/run/secrets/p"], None),
        (["ALLOW_EMPTY_PASSWORD=no", "VALKEY_PASSWORD=x"], None),
    ],
    ids=["empty-password-allowed", "password-file-given", "password-given"],
)
def test_bitnami_image__allow_empty_password_without_a_password_is_no_authentication(
    envs: list[str], reason: str | None
) -> None:
    """NickSeagull/king-paimon (tests/policy/external): Bitnami's valkey with only
    ALLOW_EMPTY_PASSWORD=yes starts without a password; a password variable (or the file its
    _FILE twin names) is the requirepass its setup writes (policies/rules/_bitnami.py)."""
    records = stack(container("valkey", image="bitnami/valkey:8.0", envs=envs))
    found = run_rule("redis-auth-required", records)
    if reason is None:
        assert found == []
    else:
        assert reason in only(found)
