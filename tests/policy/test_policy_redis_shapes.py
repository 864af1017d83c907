"""Redis in the shapes public programs run it: sentinels, clusters, replicas, options spelled
`--name=value`, start scripts, and servers that speak Redis's protocol but are not Redis.

Each case asserts the reason the owning rule gives (pure rules), so a rule that fires for
another reason, or not at all, fails. Sources of the shapes: tests/policy/external_programs/.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from policies.records import Record, parse_records
from policies.rules._model import CONTAINER, SERVICE
from policies.rules._props import shell_words
from policies.rules._redisconf import Verdict, recognise, shell_expanded
from policies.rules.redis import RULES
from tests.policy.support import run_rule, to_resources

pytestmark = pytest.mark.policy

TLS_ARGS = ["--port", "0", "--tls-port", "6380", "--tls-cert-file", "/t/s.crt",
            "--tls-key-file", "/t/s.key", "--tls-ca-cert-file", "/t/ca.crt"]  # fmt: skip


def stack(*items: dict[str, Any]) -> list[Record]:
    return parse_records(list(items), source="test", stack="qa", project="shop")


def container(logical: str, **props: Any) -> dict[str, Any]:
    return {"type": CONTAINER, "name": logical, "props": props}


def only(messages: list[str]) -> str:
    assert len(messages) == 1, messages
    return messages[0]


# -- options spelled --name=value -----------------------------------------------------------------
# redis-server 7.0.15 here: `redis-server --port=0` prints ">>> 'port=0' Bad directive or wrong
# number of arguments" and exits; it never listens at all.


def test_port_given_as_name_equals_value__is_told_redis_refuses_it() -> None:
    records = stack(container("redis", image="redis:7",
                              command=["redis-server", "--port=0", *TLS_ARGS[2:]]))  # fmt: skip
    assert only(run_rule("redis-tls-only", records)) == (
        "Redis container redis must give port as two arguments, --port <value>; it gives "
        "--port=<value>, which redis-server refuses ('Bad directive or wrong number of "
        "arguments'), so it does not start."
    )


def test_tls_port_given_as_name_equals_value__is_named_not_called_missing() -> None:
    args = ["--port", "0", "--tls-port=6380", *TLS_ARGS[4:]]
    records = stack(container("redis", image="redis:7", command=["redis-server", *args]))
    assert "it gives --tls-port=<value>, which redis-server refuses" in only(
        run_rule("redis-tls-configured", records)
    )


def test_password_given_as_name_equals_value__is_named_and_never_shown() -> None:
    secret = hashlib.sha256(b"stand-in").hexdigest()  # not a real credential
    records = stack(container("redis", image="redis:7",
                              command=["redis-server", f"--requirepass={secret}"]))  # fmt: skip
    message = only(run_rule("redis-auth-required", records))
    assert "it gives --requirepass=<value>, which redis-server refuses" in message
    assert secret not in message


# -- Redis Sentinel --------------------------------------------------------------------------------

SENTINEL_CONF = """\
port 0
tls-port 26379
tls-cert-file /t/s.crt
tls-key-file /t/s.key
tls-ca-cert-file /t/ca.crt
tls-auth-clients yes
tls-replication yes
tls-protocols "TLSv1.3"
tls-prefer-server-ciphers yes
protected-mode yes
user default off
user watcher on #{digest} resetkeys resetchannels -@all +ping +sentinel|get-master-addr-by-name
sentinel monitor cache cache-primary 6380 2
""".format(digest=hashlib.sha256(b"stand-in").hexdigest())
OPEN_SENTINEL_CONF = "port 26379\nsentinel monitor cache cache-primary 6379 2\n"
SENTINEL_UPLOAD = {"file": "/etc/redis/sentinel.conf", "content": SENTINEL_CONF}


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(["redis-sentinel", "/etc/redis/sentinel.conf"], id="redis-sentinel"),
        pytest.param(["redis-server", "/etc/redis/sentinel.conf", "--sentinel"],
                     id="redis-server-sentinel"),
        pytest.param(["/etc/redis/sentinel.conf", "--sentinel"], id="official-image-options"),
        pytest.param(["sh", "-c", "exec redis-sentinel /etc/redis/sentinel.conf"],
                     id="behind-sh-c"),
    ],
)  # fmt: skip
def test_sentinel__is_recognised_as_one(command: list[str]) -> None:
    found = recognise({"image": "redis:7.2", "command": command})
    assert (found.verdict, found.sentinel) == (Verdict.SERVER, True)


def test_open_sentinel__is_told_why_by_the_transport_and_auth_rules() -> None:
    upload = {"file": "/etc/redis/sentinel.conf", "content": OPEN_SENTINEL_CONF}
    records = stack(container("sentinel", image="redis:7.2", uploads=[upload],
                              command=["redis-sentinel", "/etc/redis/sentinel.conf"]))  # fmt: skip
    assert only(run_rule("redis-tls-only", records)) == (
        "Redis Sentinel container sentinel must set port 0 (with tls-port) so it accepts TLS "
        "connections only; it listens for plaintext connections."
    )
    assert only(run_rule("redis-protected-mode-on", records)) == (
        "Redis Sentinel container sentinel must keep protected-mode yes; sentinel mode turns it "
        "off by default."
    )
    assert "anyone who connects is let in" in only(run_rule("redis-auth-required", records))


def test_sentinel__is_named_a_sentinel_by_the_network_and_certificate_rules() -> None:
    upload = {"file": "/etc/redis/sentinel.conf", "content": OPEN_SENTINEL_CONF}
    sentinel = container("sentinel", image="redis:7.2", uploads=[upload], networkMode="host",
                         ports=[{"internal": 26379, "external": 26379}],
                         command=["redis-sentinel", "/etc/redis/sentinel.conf"])  # fmt: skip
    cert = {"file": "/t/s.crt", "content": "not a certificate"}
    tls = container("tls-sentinel", image="redis:7.2", uploads=[SENTINEL_UPLOAD, cert],
                    command=["redis-sentinel", "/etc/redis/sentinel.conf"])  # fmt: skip
    records = stack(sentinel, tls)
    assert only(run_rule("network-redis-internal-only", records[:1])) == (
        "Redis Sentinel container sentinel must attach only to internal networks of this stack "
        "(networksAdvanced); it is on the host's network (networkMode host)."
    )
    assert only(run_rule("network-redis-no-published-port", records[:1])).startswith(
        "Redis Sentinel container sentinel must not publish ports to the Docker host;"
    )
    assert only(run_rule("tls-server-certificate-profile", records[1:])).startswith(
        "Redis Sentinel container tls-sentinel must serve a certificate this stack uploads"
    )


def test_sentinel__is_not_judged_by_the_data_server_rules() -> None:
    records = stack(container("sentinel", image="redis:7.2", uploads=[SENTINEL_UPLOAD],
                              command=["redis-sentinel", "/etc/redis/sentinel.conf"]))  # fmt: skip
    data_rules = ("redis-maxmemory-below-limit", "redis-bulk-length-capped",
                  "redis-single-database", "redis-maxmemory-policy-evicts",
                  "redis-escape-hatches-disabled", "redis-client-output-bounded",
                  "redis-data-on-named-volume", "redis-memory-fork-headroom")  # fmt: skip
    assert {rule: run_rule(rule, records) for rule in data_rules} == {
        rule: [] for rule in data_rules
    }


def test_sentinel_with_tls_only_and_acl__passes_every_redis_rule() -> None:
    records = stack(container("sentinel", image="redis:7.2", uploads=[SENTINEL_UPLOAD],
                              readOnly=True,
                              command=["redis-sentinel", "/etc/redis/sentinel.conf"]))  # fmt: skip
    found = {rule.name: run_rule(rule.name, records) for rule in RULES}
    assert {name: messages for name, messages in found.items() if messages} == {}


@pytest.mark.parametrize(
    ("envs", "reason"),
    [
        pytest.param(["ALLOW_EMPTY_PASSWORD=yes", "REDIS_MASTER_PASSWORD=x"],
                     "ALLOW_EMPTY_PASSWORD with no password variable lets anyone who connects in",
                     id="master-password-protects-nothing-of-the-sentinel"),
        pytest.param(["ALLOW_EMPTY_PASSWORD=yes", "REDIS_SENTINEL_PASSWORD_FILE=/run/s/p"],
                     "its image (bitnami/redis-sentinel:7.2) starts Redis through its own "
                     "entrypoint and config, which the pack cannot read",
                     id="sentinel-password-set"),
    ],
)  # fmt: skip
def test_bitnami_sentinel__judged_by_the_sentinels_own_password(
    envs: list[str], reason: str
) -> None:
    records = stack(container("sentinel", image="bitnami/redis-sentinel:7.2", envs=envs))
    assert reason in only(run_rule("redis-auth-required", records))


# -- Redis's own links: cluster bus and replication ------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        pytest.param(["--cluster-enabled", "yes"],
                     "must set tls-cluster yes, as it sets cluster-enabled; without it its "
                     "cluster bus (gossip, failover and slot migration between nodes) speaks "
                     "plaintext.", id="cluster"),
        pytest.param(["--replicaof", "primary", "6380"],
                     "must set tls-replication yes, as it sets replicaof; without it its link to "
                     "its master (masterauth and every write) speaks plaintext.", id="replica"),
        pytest.param(["--cluster-enabled", "yes", "--tls-cluster", "yes"], None,
                     id="cluster-over-tls"),
        pytest.param(["--replicaof", "primary", "6380", "--tls-replication", "yes"], None,
                     id="replica-over-tls"),
        pytest.param(["--cluster-enabled", "no"], None, id="not-a-cluster"),
        pytest.param(["--replicaof", "no", "one"], None, id="replicaof-no-one-is-a-primary"),
    ],
)  # fmt: skip
def test_tls_only_server__keeps_its_cluster_bus_and_replication_on_tls(
    extra: list[str], reason: str | None
) -> None:
    records = stack(container("redis", image="redis:7",
                              command=["redis-server", *TLS_ARGS, *extra]))  # fmt: skip
    found = run_rule("redis-tls-configured", records)
    assert found == ([] if reason is None else [f"Redis container redis {reason}"])


# replicaof and slaveof are one setting to Redis: the last occurrence of either wins, config file
# first, then argv (tests/integration/test_redis_config_differential.py runs these on Redis).
REPLICA_CONF = "/etc/redis/redis.conf"


@pytest.mark.parametrize(
    ("conf", "extra", "sets"),
    [
        pytest.param("", ["--slaveof", "primary", "6380", "--replicaof", "no", "one"], None,
                     id="argv-slaveof-then-replicaof-no-one"),
        pytest.param("", ["--replicaof", "primary", "6380", "--slaveof", "no", "one"], None,
                     id="argv-replicaof-then-slaveof-no-one"),
        pytest.param("slaveof primary 6380\nreplicaof no one\n", [], None,
                     id="file-slaveof-then-replicaof-no-one"),
        pytest.param("replicaof primary 6380\n", ["--slaveof", "no", "one"], None,
                     id="argv-slaveof-no-one-after-the-file"),
        pytest.param("slaveof no one\n", ["--replicaof", "primary", "6380"], "replicaof",
                     id="argv-replicaof-after-the-files-no-one"),
        pytest.param("", ["--replicaof", "no", "one", "--slaveof", "primary", "6380"], "slaveof",
                     id="argv-slaveof-last-is-named"),
    ],
)  # fmt: skip
def test_replicaof_and_slaveof__one_setting_whose_last_occurrence_wins(
    conf: str, extra: list[str], sets: str | None
) -> None:
    uploads = [{"file": REPLICA_CONF, "content": conf}] if conf else []
    head = ["redis-server", REPLICA_CONF] if conf else ["redis-server"]
    records = stack(container("redis", image="redis:7", uploads=uploads,
                              command=[*head, *TLS_ARGS, *extra]))  # fmt: skip
    found = run_rule("redis-tls-configured", records)
    assert found == ([] if sets is None else [
        f"Redis container redis must set tls-replication yes, as it sets {sets}; without it its "
        f"link to its master (masterauth and every write) speaks plaintext."
    ])  # fmt: skip


# -- starts the pack cannot read ------------------------------------------------------------------


def test_official_image_started_by_a_script__its_default_is_not_claimed() -> None:
    # The script may load a config file that turns protected mode on: unknown, not "off".
    records = stack(container("valkey", image="valkey/valkey:8.1",
                              command=["sh", "/usr/local/etc/valkey/start.sh"]))  # fmt: skip
    assert only(run_rule("redis-protected-mode-on", records)) == (
        "Redis container valkey must set protected-mode yes on its command line or in a "
        "redis.conf uploaded by this stack; its start script runs a script file "
        "(/usr/local/etc/valkey/start.sh), which the pack cannot read and which may start a "
        "server with any settings: run redis-server from the command line, its settings on it "
        "or in an uploaded config file, so the setting is unknown."
    )


def test_redis_image_with_its_own_entrypoint__says_so() -> None:
    records = stack(container("stack", image="redis/redis-stack:7.4.0-v8",
                              command=["--maxmemory", "64mb"]))  # fmt: skip
    assert (
        "its image (redis/redis-stack:7.4.0-v8) starts Redis through its own entrypoint and "
        "config, which the pack cannot read, so the setting is unknown."
    ) in only(run_rule("redis-tls-only", records))


# -- redis-stack: redis-server's options in REDIS_ARGS ------------------------------------------
# The images' start script (their default command, /entrypoint.sh) runs redis-server
# [/redis-stack.conf] --dir /data --protected-mode no --daemonize no, a --loadmodule per module,
# then ${REDIS_ARGS}, which the images' documentation says to set requirepass in
# (tests/policy/external_programs/ has programs that do).

STACK_IMAGE = "redis/redis-stack-server:7.2.0-v10"
STACK_HINT = (
    f" Its image ({STACK_IMAGE}) starts redis-server with --protected-mode no and a "
    "--loadmodule per module of its own, then the options in envs REDIS_ARGS, which win: set "
    "redis-server's options there (no option unloads a module: an image without modules loads "
    "none)."
)


def test_redis_stack__judged_by_the_options_in_redis_args() -> None:
    records = stack(container("stack", image=STACK_IMAGE,
                              envs=["REDIS_ARGS=--port 6379"]))  # fmt: skip
    assert only(run_rule("redis-tls-only", records)) == (
        "Redis container stack must set port 0 (with tls-port) so it accepts TLS connections "
        "only; it listens for plaintext connections." + STACK_HINT
    )
    assert only(run_rule("redis-protected-mode-on", records)) == (
        "Redis container stack must keep protected-mode yes; it is turned off." + STACK_HINT
    )
    assert "must set loadmodule to no" in only(run_rule("redis-escape-hatches-disabled", records))


@pytest.mark.parametrize("command", [None, ["/entrypoint.sh"], ["sh", "-c", "/entrypoint.sh"]])
def test_redis_stack_with_tls_and_protected_mode_in_redis_args__passes_those_rules(
    command: list[str] | None,
) -> None:
    options = " ".join([*TLS_ARGS, "--tls-auth-clients", "yes", "--protected-mode", "yes"])
    envs = [f"REDIS_ARGS={options}", "REDISEARCH_ARGS=MAXSEARCHRESULTS 5"]
    props: dict[str, Any] = {"image": "docker.io/redis/redis-stack:7.4.0-v8", "envs": envs}
    if command is not None:
        props["command"] = command
    records = stack(container("stack", **props))
    for rule in (
        "redis-tls-only",
        "redis-tls-configured",
        "redis-client-cert-required",
        "redis-protected-mode-on",
    ):
        assert run_rule(rule, records) == [], rule


def test_redis_stack_conf__is_overridden_by_the_start_scripts_own_options() -> None:
    conf = {"file": "/redis-stack.conf", "content": "protected-mode yes\nport 0\n"}
    records = stack(container("stack", image=STACK_IMAGE, uploads=[conf]))
    assert run_rule("redis-tls-only", records) == []
    assert only(run_rule("redis-protected-mode-on", records)) == (
        "Redis container stack must keep protected-mode yes; it is turned off." + STACK_HINT
    )


def test_redis_stack_server_wrapper__adds_its_modules_and_protected_mode_before_its_arguments() -> (
    None
):
    """`redis-stack-server` (on the images' PATH) is a script: it loads every module and
    turns protected mode off, then passes its own arguments, which win."""
    hint = (
        " redis-stack-server starts redis-server with --protected-mode no and a --loadmodule per "
        "module of its own, then its arguments, which win: set redis-server's options after it "
        "(no option unloads a module: run redis-server from an image without modules to load "
        "none)."
    )
    records = stack(container("stack", image=STACK_IMAGE,
                              command=["redis-stack-server", *TLS_ARGS]))  # fmt: skip
    assert run_rule("redis-tls-only", records) == []
    assert only(run_rule("redis-escape-hatches-disabled", records)) == (
        "Redis container stack must set loadmodule to no (and load no modules); they let a "
        "client reconfigure or extend the server." + hint
    )
    assert only(run_rule("redis-protected-mode-on", records)) == (
        "Redis container stack must keep protected-mode yes; it is turned off." + hint
    )
    records = stack(container("stack", image=STACK_IMAGE, command=[
        "redis-stack-server", *TLS_ARGS, "--protected-mode", "yes"]))  # fmt: skip
    assert run_rule("redis-protected-mode-on", records) == []


def test_redis_stack_service__is_told_where_a_service_sets_redis_args() -> None:
    records = stack({"type": SERVICE, "name": "stack", "props": {"taskSpec": {"containerSpec": {
        "image": STACK_IMAGE, "env": {"REDIS_ARGS": "--port 6379"}}}}})  # fmt: skip
    message = only(run_rule("redis-tls-only", records))
    assert message.startswith("Redis service stack must set port 0 (with tls-port)"), message
    assert message.endswith(
        STACK_HINT.replace("envs REDIS_ARGS", "taskSpec.containerSpec.env REDIS_ARGS")
    ), message


def test_redis_stack_with_redis_args_redacted__says_so() -> None:
    records = stack(container("stack", image=STACK_IMAGE, envs=["REDIS_ARGS=[secret]"]))
    assert only(run_rule("redis-tls-only", records)) == (
        "Redis container stack must set port 0 in envs REDIS_ARGS or in a /redis-stack.conf "
        f"uploaded by this stack; its image ({STACK_IMAGE}) starts redis-server with the "
        "options in REDIS_ARGS, which these records show redacted, so the setting is unknown."
        + STACK_HINT
    )


@pytest.mark.parametrize(
    ("props", "name"),
    [
        pytest.param({"image": "docker.dragonflydb.io/dragonflydb/dragonfly",
                      "command": ["--maxmemory=2gb", "--dbfilename="]}, "Dragonfly",
                     id="dragonfly-options"),
        pytest.param({"image": "alpine:3.20", "command": ["dragonfly", "--requirepass", "x"]},
                     "Dragonfly", id="dragonfly-binary"),
        pytest.param({"image": "ghcr.io/microsoft/garnet"}, "Garnet", id="garnet"),
        pytest.param({"image": "apache/kvrocks:2.9.0"}, "Apache Kvrocks", id="kvrocks"),
    ],
)  # fmt: skip
def test_redis_protocol_server_that_is_not_redis__fails_closed_saying_so(
    props: dict[str, Any], name: str
) -> None:
    assert recognise(props).foreign == name
    records = stack(container("cache", **props))
    assert (
        f"it runs {name}, whose flags and config are not redis-server's and cannot be judged by "
        f"the Redis rules (run redis-server or valkey-server), so the setting is unknown."
    ) in only(run_rule("redis-tls-only", records))


def test_shell_words__each_call_gets_a_list_of_its_own() -> None:
    """The split is cached (every stack policy splits the same argv again): a caller that
    changes the words it got must not change what the next caller gets."""
    script = "exec redis-server /etc/redis/redis.conf --port 0"
    words = shell_words(script)
    words.append("--protected-mode")
    words[1] = "valkey-server"
    assert shell_words(script) == ["exec", "redis-server", "/etc/redis/redis.conf", "--port", "0"]
    assert shell_words('sh -c "unbalanced') == ["sh", "-c", '"unbalanced']


# -- the official image's modules (Redis 8 and later) ---------------------------------------------
# Built with its modules (amd64, arm64); its docker-entrypoint.sh appends --loadmodule for each
# .so in /usr/local/lib/redis/modules when it starts redis-server, not a sentinel. A digest
# alone names no version, so whether modules load is unknown and the rule fails closed
# (docs/policy.md).


@pytest.mark.parametrize(
    ("props", "loads"),
    [
        pytest.param({"image": "redis:8.2"}, True, id="default-command"),
        pytest.param({"image": "redis:latest", "command": ["redis-server", "/r/redis.conf"]},
                     True, id="latest-redis-server-through-the-entrypoint"),
        pytest.param({"image": "redis", "command": ["/r/redis.conf"]}, True, id="untagged-conf"),
        pytest.param({"image": "redis:alpine",
                      "command": ["sh", "-euc", "exec docker-entrypoint.sh --port 0"]},
                     True, id="entrypoint-in-a-script"),
        pytest.param({"image": "redis:8.0@sha256:" + "4" * 64}, True, id="tag-and-digest"),
        pytest.param({"image": "redis:7.4", "command": ["redis-server", "/r/redis.conf"]},
                     False, id="redis-7"),
        pytest.param({"image": "redis:8.2", "entrypoints": ["redis-server"],
                      "command": ["/r/redis.conf"]}, False, id="entrypoint-skipped"),
        pytest.param({"image": "redis:8.2", "command": ["sh", "-c", "exec redis-server /r/c"]},
                     False, id="shell-runs-redis-server-itself"),
        pytest.param({"image": "redis:8.2", "command": ["redis-sentinel", "/r/s.conf"]},
                     False, id="sentinel"),
        pytest.param({"image": "valkey/valkey:8.1"}, False, id="valkey"),
    ],
)  # fmt: skip
def test_official_image_from_redis_8__loads_its_modules_through_its_entrypoint(
    props: dict[str, Any], loads: bool
) -> None:
    args = recognise(props).args
    assert args is not None
    assert ("--loadmodule" in args) is loads, args


def test_official_image_from_redis_8__is_told_its_entrypoint_loads_modules() -> None:
    records = stack(container("redis", image="redis:8.2", command=["redis-server", *TLS_ARGS]))
    assert only(run_rule("redis-escape-hatches-disabled", records)) == (
        "Redis container redis must set loadmodule to no (and load no modules); they let a "
        "client reconfigure or extend the server. The official redis image's "
        "docker-entrypoint.sh (Redis 8 and later) loads every module in "
        "/usr/local/lib/redis/modules/ after the options it is given: start redis-server "
        'without it (entrypoints: ["redis-server"]) or run Redis 7.'
    )


DIGEST = "sha256:" + "5" * 64


@pytest.mark.parametrize(
    "props",
    [
        pytest.param({"image": f"redis@{DIGEST}"}, id="default-command"),
        pytest.param({"image": f"docker.io/library/redis@{DIGEST}",
                      "command": ["redis-server", *TLS_ARGS]}, id="redis-server-through-it"),
        pytest.param({"image": f"redis@{DIGEST}", "command": TLS_ARGS}, id="options"),
    ],
)  # fmt: skip
def test_official_image_by_digest_alone__fails_closed_on_module_loads(
    props: dict[str, Any],
) -> None:
    """A digest names no version: redis:8's entrypoint loads modules, redis:7's does not."""
    records = stack(container("redis", **props))
    assert only(run_rule("redis-escape-hatches-disabled", records)) == (
        f"Redis container redis must load no modules; its image ({props['image']}) is named by "
        "digest alone, which names no version, and from Redis 8 on the official image's "
        "docker-entrypoint.sh loads every module in /usr/local/lib/redis/modules/, so whether "
        "it loads them is unknown: name the version beside the digest (redis:7.4@sha256:...), "
        "use the repoDigest of a RemoteImage named with its tag, or start redis-server without "
        'the entrypoint (entrypoints: ["redis-server"]).'
    )


@pytest.mark.parametrize(
    "props",
    [
        pytest.param({"image": f"redis:7.4@{DIGEST}"}, id="version-beside-the-digest"),
        pytest.param({"image": f"redis@{DIGEST}", "entrypoints": ["redis-server"],
                      "command": TLS_ARGS}, id="entrypoint-skipped"),
        pytest.param({"image": f"redis@{DIGEST}", "command": ["redis-sentinel", "/r/s.conf"]},
                     id="sentinel"),
    ],
)  # fmt: skip
def test_official_image_by_digest__told_its_version_or_skipping_the_entrypoint__passes(
    props: dict[str, Any],
) -> None:
    records = stack(container("redis", **props))
    assert run_rule("redis-escape-hatches-disabled", records) == []


def test_official_image_by_digest_of_a_remote_image_named_with_its_tag__is_judged_by_the_tag() -> (
    None
):
    def pulled(name: str) -> dict[str, Any]:
        return {"type": "docker:index/remoteImage:RemoteImage", "name": "redis-image",
                "props": {"name": name, "repoDigest": f"redis@{DIGEST}"}}  # fmt: skip

    records = stack(pulled("redis:7.4"), container("redis", image=f"redis@{DIGEST}"))
    assert run_rule("redis-escape-hatches-disabled", records) == []
    records = stack(pulled("redis:8.2"), container("redis", image=f"redis@{DIGEST}"))
    assert "must set loadmodule to no" in only(run_rule("redis-escape-hatches-disabled", records))


# -- Bitnami's redis and valkey images: redis-server's settings from their variables --------------
# Their entrypoint's setup writes the config from REDIS_*/VALKEY_* variables, and run.sh starts the
# server with it, then REDIS_EXTRA_FLAGS and its own arguments (policies/rules/_bitnami.py).
# Programs that run them: tests/policy/external/*bitnami*, murat2424-terraform-docker-swarm-redis.

BITNAMI_TLS = ["REDIS_TLS_ENABLED=yes", "REDIS_TLS_CERT_FILE=/certs/s.crt",
               "REDIS_TLS_KEY_FILE=/certs/s.key", "REDIS_TLS_CA_FILE=/certs/ca.crt"]  # fmt: skip


def bitnami(*envs: str, image: str = "bitnami/redis:7.4", **props: Any) -> list[Record]:
    return stack(container("cache", image=image, envs=list(envs), **props))


_SETUP_SKIPPED = (
    "its command runs Bitnami's /opt/bitnami/scripts/redis/run.sh itself, so the image's "
    "entrypoint skips the setup that writes redis.conf from the REDIS_* variables: give run.sh "
    "and its options as the command itself"
)


@pytest.mark.parametrize(
    ("envs", "rule", "reason"),
    [
        pytest.param(["ALLOW_EMPTY_PASSWORD=yes"], "redis-tls-only",
                     "it listens for plaintext connections.", id="no-tls-is-plaintext"),
        pytest.param(["ALLOW_EMPTY_PASSWORD=yes", "REDIS_TLS_ENABLED=no"], "redis-tls-only",
                     "it listens for plaintext connections.", id="tls-enabled-no"),
        pytest.param([*BITNAMI_TLS, "REDIS_TLS_PORT_NUMBER=6380", "REDIS_PASSWORD=p"],
                     "redis-tls-only", "it listens for plaintext connections.",
                     id="tls-on-another-port-keeps-plaintext"),
        pytest.param(["ALLOW_EMPTY_PASSWORD=true"], "redis-protected-mode-on",
                     "must keep protected-mode yes; it is turned off.",
                     id="empty-password-turns-protected-mode-off"),
        pytest.param(["ALLOW_EMPTY_PASSWORD=yes"], "redis-auth-required",
                     "ALLOW_EMPTY_PASSWORD with no password variable lets anyone who connects in",
                     id="empty-password-is-no-auth"),
        pytest.param([*BITNAMI_TLS, "REDIS_PASSWORD=p", "REDIS_TLS_AUTH_CLIENTS=no"],
                     "redis-client-cert-required",
                     "must set tls-auth-clients yes; it accepts TLS clients without a client "
                     "certificate.", id="tls-auth-clients-no"),
        pytest.param(["REDIS_PASSWORD=p", "REDIS_EXTRA_FLAGS=--enable-debug-command yes"],
                     "redis-escape-hatches-disabled", "must set enable-debug-command to no",
                     id="extra-flags-parsed-like-args"),
        pytest.param(["REDIS_PASSWORD=p", "REDIS_EXTRA_FLAGS=--maxmemory 1gb"],
                     "redis-maxmemory-below-limit", "must set maxmemory above 0 and below the "
                     "container's memory limit", id="extra-flags-maxmemory"),
        pytest.param(["REDIS_PASSWORD=p", "REDIS_EXTRA_FLAGS=--port=0"], "redis-tls-only",
                     "it gives --port=<value>, which redis-server refuses",
                     id="extra-flags-misspelled"),
        pytest.param(["REDIS_PASSWORD=p", "REDIS_REPLICATION_MODE=replica",
                      "REDIS_MASTER_HOST=primary", "REDIS_EXTRA_FLAGS=--port 0 --tls-port 6380 "
                      "--tls-cert-file /c/s.crt --tls-key-file /c/s.key --tls-ca-cert-file /c/ca"],
                     "redis-tls-configured", "must set tls-replication yes, as it sets replicaof",
                     id="replica-without-tls"),
        pytest.param(["REDIS_PASSWORD=p", "REDIS_EXTRA_FLAGS=[secret]"], "redis-tls-only",
                     "its image (bitnami/redis:7.4) reads REDIS_EXTRA_FLAGS, which these records "
                     "show redacted, so the setting is unknown.", id="extra-flags-redacted"),
        pytest.param(["REDIS_PASSWORD=p", "REDIS_TLS_ENABLED_FILE=/run/secrets/tls"],
                     "redis-tls-only", "reads REDIS_TLS_ENABLED from the file "
                     "REDIS_TLS_ENABLED_FILE names, which the pack cannot read",
                     id="setting-from-a-file"),
        pytest.param(["REDIS_REQUIREPASS=p"], "redis-auth-required",
                     "sets requirepass from REDIS_REQUIREPASS, and from REDIS_PASSWORD only while "
                     "REDIS_USER is unset", id="requirepass-version-dependent"),
    ],
)  # fmt: skip
def test_bitnami_image__variables_judged_like_the_options_they_write(
    envs: list[str], rule: str, reason: str
) -> None:
    message = only(run_rule(rule, bitnami(*envs, memory=256)))
    assert reason in message, message
    assert message.endswith(
        "starts redis-server with it, then the options in REDIS_EXTRA_FLAGS and its command's, "
        "which win: set the other options there."
    ), message


def test_bitnami_image_with_tls_only_and_a_password__passes_what_its_variables_set() -> None:
    records = bitnami(*BITNAMI_TLS, "REDIS_PASSWORD=p",
                      "REDIS_EXTRA_FLAGS=--tls-protocols TLSv1.3 --protected-mode yes")  # fmt: skip
    for rule in ("redis-tls-only", "redis-tls-configured", "redis-client-cert-required",
                 "redis-tls-protocols-modern", "redis-protected-mode-on", "redis-auth-required",
                 "redis-escape-hatches-disabled"):  # fmt: skip
        assert run_rule(rule, records) == [], rule


@pytest.mark.parametrize(
    ("props", "reason"),
    [
        pytest.param({"mounts": [{"type": "bind", "source": "/srv/redis.conf", "readOnly": True,
                                  "target": "/opt/bitnami/redis/mounted-etc/redis.conf"}]},
                     "in envs REDIS_EXTRA_FLAGS or in a /opt/bitnami/redis/mounted-etc/redis.conf "
                     "uploaded by this stack; its config file cannot be read",
                     id="mounted-config-replaces-it"),
        pytest.param({"volumes": [{"hostPath": "/srv/conf",
                                   "containerPath": "/opt/bitnami/redis/mounted-etc"}]},
                     "its config file cannot be read", id="mounted-config-directory"),
        pytest.param({"entrypoints": ["/opt/bitnami/scripts/redis/run.sh"]},
                     _SETUP_SKIPPED, id="setup-skipped"),
        pytest.param({"command": ["/bin/bash", "-c", "/opt/bitnami/scripts/redis/run.sh"]},
                     _SETUP_SKIPPED, id="own-script"),
    ],
)  # fmt: skip
def test_bitnami_image__config_it_cannot_see__fails_closed(
    props: dict[str, Any], reason: str
) -> None:
    message = only(run_rule("redis-tls-only", bitnami(*BITNAMI_TLS, "REDIS_PASSWORD=p", **props)))
    assert reason in message, message


def test_bitnami_image__uploaded_config_replaces_what_its_variables_write() -> None:
    conf = {"file": "/opt/bitnami/redis/mounted-etc/redis.conf", "content": "port 6379\n"}
    records = bitnami(*BITNAMI_TLS, "REDIS_PASSWORD=p", uploads=[conf])
    assert "it listens for plaintext connections." in only(run_rule("redis-tls-only", records))
    assert "anyone who connects is let in" in only(run_rule("redis-auth-required", records))
    overrides = {"file": "/opt/bitnami/redis/mounted-etc/overrides.conf",
                 "content": "enable-debug-command yes\n"}  # fmt: skip
    records = bitnami(*BITNAMI_TLS, "REDIS_PASSWORD=p", uploads=[overrides])
    assert "must set enable-debug-command to no" in only(
        run_rule("redis-escape-hatches-disabled", records)
    )
    assert run_rule("redis-tls-only", records) == []


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        pytest.param("bitnami/redis:6.2", "Redis before 7.0 has them on", id="redis-6"),
        pytest.param("bitnami/redis:8.2", "is Bitnami's Redis 8 or later", id="redis-8"),
        pytest.param("bitnami/redis@" + "sha256:" + "6" * 64, "or names no version",
                     id="digest-alone"),
        pytest.param("bitnami/redis:7.4", None, id="redis-7"),
        pytest.param("docker.io/bitnami/valkey:8.1", None, id="valkey"),
    ],
)  # fmt: skip
def test_bitnami_image__escape_hatches_by_the_version_its_tag_names(
    image: str, reason: str | None
) -> None:
    found = run_rule("redis-escape-hatches-disabled", bitnami("REDIS_PASSWORD=p", image=image))
    if reason is None:
        assert found == []
    else:
        assert reason in only(found)


def test_bitnami_image_running_redis_server_itself__skips_the_setup_and_its_variables() -> None:
    """grainer/docker-redis (tests/policy/external): CMD ["redis-server"] on bitnami/redis is not
    its run.sh, so the setup never writes a config: Redis's own defaults (protected mode on, no
    password), whatever REDIS_PASSWORD or ALLOW_EMPTY_PASSWORD say."""
    records = bitnami("ALLOW_EMPTY_PASSWORD=yes", "REDIS_PASSWORD=p", command=["redis-server"])
    assert run_rule("redis-protected-mode-on", records) == []
    assert only(run_rule("redis-auth-required", records)) == (
        "Redis container cache must require authentication (an aclfile with users that have "
        "passwords); anyone who connects is let in."
    )


@pytest.mark.parametrize(
    ("image", "variable", "conf"),
    [
        pytest.param("bitnami/redis:7.2", "REDIS_EXTRA_FLAGS",
                     "/opt/bitnami/redis/mounted-etc/overrides.conf", id="bitnami"),
        pytest.param(STACK_IMAGE, "REDIS_ARGS", "/redis-stack.conf", id="redis-stack"),
    ],
)  # fmt: skip
def test_service_on_an_image_reading_options_from_env__is_told_where_a_service_gives_them(
    image: str, variable: str, conf: str
) -> None:
    """A service cannot upload files: the image's options file comes as a config or secret."""
    records = stack({"type": SERVICE, "name": "cache", "props": {"taskSpec": {"containerSpec": {
        "image": image, "env": {"REDIS_PASSWORD": "p", variable: "[secret]"}}}}})  # fmt: skip
    assert only(run_rule("redis-tls-only", records)).startswith(
        f"Redis service cache must set port 0 in taskSpec.containerSpec.env {variable} or in a "
        f"{conf} this stack gives it as a ServiceConfig or Secret (taskSpec.containerSpec.configs "
        f"or secrets); "
    )


@pytest.mark.parametrize(
    ("image", "on"),
    [
        pytest.param("redis:6.2", True, id="redis-6"),
        pytest.param("docker.io/library/redis:5.0.3-alpine3.8", True, id="redis-5"),
        pytest.param("redis:7.0", False, id="redis-7"),
        pytest.param("valkey/valkey:7.2", False, id="valkey-7.2-has-the-switches"),
    ],
)  # fmt: skip
def test_official_image_before_redis_7__has_its_escape_hatches_on_and_says_so(
    image: str, on: bool
) -> None:
    """enable-debug-command and its siblings came in Redis 7.0: before it DEBUG, MODULE and
    every CONFIG parameter are on, and redis-server refuses the directives as unknown."""
    records = stack(container("redis", image=image, command=["redis-server", *TLS_ARGS]))
    found = run_rule("redis-escape-hatches-disabled", records)
    if not on:
        assert found == []
        return
    assert only(found) == (
        "Redis container redis must set enable-protected-configs, enable-debug-command, "
        "enable-module-command to no (and load no modules); they let a client reconfigure or "
        "extend the server. Redis before 7.0 has them on and no directive to turn them off: run "
        "Redis 7 or later."
    )


@pytest.mark.parametrize("image", ["redis:6.0", "bitnami/redis:6.2"], ids=["official", "bitnami"])
def test_redis_before_7_with_a_config_file_it_cannot_read__is_told_to_run_redis_7(
    image: str,
) -> None:
    """No file can turn the escape hatches off before Redis 7.0 (it has no such directive), so
    an unreadable config leaves them on, not unknown: DY56GO/mbp_back ran redis:6.0 with a
    host-mounted redis.conf (tests/policy/external/dy56go-mbp-back-*.json) and was told to set
    enable-debug-command no, which its Redis would refuse."""
    command = ["redis-server", "/etc/redis/redis.conf", *TLS_ARGS]
    records = stack(container("redis", image=image, command=command))
    assert only(run_rule("redis-escape-hatches-disabled", records)) == (
        "Redis container redis must set enable-protected-configs, enable-debug-command, "
        "enable-module-command to no (and load no modules); they let a client reconfigure or "
        "extend the server. Redis before 7.0 has them on and no directive to turn them off: run "
        "Redis 7 or later."
    )


# -- a start script that writes the config file before redis-server reads it ----------------------
# rettoman/redis (tests/policy/external/rettoman-redis-envsubst-truncates-conf-before-start.json)
# ran `envsubst < redis.conf > redis.conf && exec redis-server ./redis.conf`: the shell truncates
# the file before envsubst reads it, so Redis loads an empty config, not the one uploaded.
SAFE_CONF = "protected-mode yes\nrequirepass ${REDIS_PASSWORD}\n"
REWRITES = [
    "envsubst < redis.conf > redis.conf && exec redis-server ./redis.conf",
    'sed -i "s/^requirepass.*/requirepass $REDIS_PASSWORD/" redis.conf && redis-server redis.conf',
    "echo 'protected-mode no' >>/data/redis.conf; exec redis-server /data/redis.conf",
    "cp /etc/redis.conf.tmpl redis.conf && redis-server --include /data/redis.conf",
]


def _started_by_script(script: str) -> dict[str, Any]:
    upload = {"file": "/data/redis.conf", "content": SAFE_CONF}
    return container(
        "redis", image="redis:7.4", entrypoints=["/bin/sh", "-c", script], uploads=[upload]
    )


@pytest.mark.parametrize("script", REWRITES)
def test_config_file_written_by_the_script_before_redis_starts__is_unknown(script: str) -> None:
    records = stack(_started_by_script(script))
    assert only(run_rule("redis-protected-mode-on", records)) == (
        "Redis container redis must set protected-mode yes on its command line or in a "
        "redis.conf uploaded by this stack; its start script names redis.conf before it "
        "starts redis-server, so the file redis-server reads may not be the one uploaded "
        "(upload it as Redis is to read it, or give the options on redis-server's command "
        "line), so the setting is unknown."
    )


def test_config_file_only_read_by_redis__is_read_from_the_upload() -> None:
    script = "chown redis /data && exec redis-server /data/redis.conf"
    records = stack(_started_by_script(script))
    assert run_rule("redis-protected-mode-on", records) == []


# -- one argv word with spaces, given without a shell ---------------------------------------------
# redis-server 7.0.15 here: an argument starting with -- is one config line ('--port 0' is
# `port 0`); the first argument, when it does not start with -, is the config file's name, spaces
# and all (`redis-server " --save 60 1" f.conf`: "can't open config file '/tmp/--save 60 1'");
# any other word is one value of the option before it. moviology/backend's CMD gave
# " --save 60 1 --loglevel warning" as one word
# (tests/policy/external/moviology-backend-redis-options-in-one-argument.json).


def test_option_and_value_in_one_word__is_the_config_line_redis_reads() -> None:
    args = ["--port 0", "--tls-port 6380", *TLS_ARGS[4:]]
    records = stack(container("redis", image="redis:7.4", command=["redis-server", *args]))
    assert run_rule("redis-tls-only", records) == []


def test_value_with_spaces__is_one_value_not_more_options() -> None:
    """`--requirepass "pw --port 0"` sets a password with spaces; Redis listens on 6379."""
    args = ["--requirepass", "pw --port 0", *TLS_ARGS[2:]]
    records = stack(container("redis", image="redis:7.4", command=["redis-server", *args]))
    assert only(run_rule("redis-tls-only", records)) == (
        "Redis container redis must set port 0 (with tls-port) so it accepts TLS connections "
        "only; it listens for plaintext connections."
    )


def test_first_word_with_spaces_not_an_option__is_the_config_file_name() -> None:
    conf = {"file": "/usr/local/etc/redis/redis.conf", "content": "port 0\n"}
    command = ["redis-server", " --port 0", "/usr/local/etc/redis/redis.conf", *TLS_ARGS[2:]]
    records = stack(container("redis", image="redis:7.4", command=command, uploads=[conf]))
    assert only(run_rule("redis-tls-only", records)) == (
        "Redis container redis must set port 0 on its command line or in a redis.conf uploaded "
        "by this stack; its config file cannot be read, so the setting is unknown."
    )


# -- a placeholder where the password should be ----------------------------------------------------
# Redis reads redis.conf as written: it expands no variable and no template, so `requirepass
# ${REDIS_PASSWORD}` sets the password to those sixteen characters, readable in the program.
PLACEHOLDERS = ["${REDIS_PASSWORD}", "$REDIS_PASSWORD", "{{ .Password }}", '"${REDIS_PASSWORD}"']


def _with_conf(conf: str, **props: Any) -> list[Record]:
    upload = {"file": "/data/redis.conf", "content": conf}
    props.setdefault("command", ["redis-server", "/data/redis.conf"])
    return stack(container("redis", image="redis:7.4", uploads=[upload], **props))


@pytest.mark.parametrize("placeholder", PLACEHOLDERS)
def test_requirepass_placeholder_in_uploaded_conf__is_a_literal_password(placeholder: str) -> None:
    records = _with_conf(f"protected-mode yes\nrequirepass {placeholder}\n")
    assert only(run_rule("redis-auth-required", records)) == (
        "Redis container redis must require authentication with a password only its clients "
        "know; requirepass in the config file it loads is a placeholder (${NAME}, $NAME or "
        "{{ ... }}), which Redis does not expand, so the password is that text as this program "
        "writes it. Substitute it before redis-server reads the file, or load users with "
        "#<sha256> passwords from an aclfile delivered as a protected file."
    )


@pytest.mark.parametrize(
    "conf",
    [
        pytest.param("requirepass ${REDIS_PASSWORD}\nuser default off\n", id="user-default-after"),
        pytest.param("user default off\nrequirepass ${REDIS_PASSWORD}\n", id="user-default-before"),
    ],
)
def test_requirepass_placeholder_beside_a_user_default_line__is_ignored_by_redis(
    conf: str,
) -> None:
    # Redis applies the `user default` line's rules and ignores requirepass wherever it stands
    # (redis.requirepass_in_force), so no client's password is that text.
    records = _with_conf(f"protected-mode yes\n{conf}")
    assert run_rule("redis-auth-required", records) == []


def test_requirepass_real_value_in_uploaded_conf__is_no_placeholder() -> None:
    records = _with_conf("requirepass pa$sword{{x}}Q9\n")
    assert run_rule("redis-auth-required", records) == []


def test_requirepass_placeholder_substituted_by_the_start_script__is_not_judged_literal() -> None:
    # The script writes the file Redis reads from the template: what it holds is unknown
    # (corpus15's handling of a file named before redis-server), never the placeholder.
    script = (
        "envsubst < /tmpl/redis.conf.tmpl > /data/redis.conf && exec redis-server /data/redis.conf"
    )
    upload = {"file": "/data/redis.conf", "content": "requirepass ${REDIS_PASSWORD}\n"}
    records = stack(container("redis", image="redis:7.4", entrypoints=["/bin/sh", "-c", script],
                              uploads=[upload]))  # fmt: skip
    assert "placeholder" not in only(run_rule("redis-auth-required", records))


def test_requirepass_placeholder_on_argv__is_left_to_the_shell() -> None:
    script = "exec redis-server --requirepass $REDIS_PASSWORD"
    records = stack(
        container("redis", image="redis:7.4", entrypoints=["/bin/sh", "-c"], command=[script],
                  envs=["REDIS_PASSWORD_FILE=/run/secrets/pw", "REDIS_PASSWORD=${FROM_A_SECRET}"])
    )  # fmt: skip
    assert run_rule("redis-auth-required", records) == []


# Without a shell nothing expands `${REDIS_PASSWORD}` on argv either: Docker hands exec-form words
# to the program as written, and docker-library's docker-entrypoint.sh ends in `exec "$@"`. A
# shell, or a script the pack cannot read (another image's entrypoint, /start.sh), may expand it.
EXEC_FORM_MESSAGE = (
    "Redis container redis must require authentication with a password only its clients know; "
    "requirepass on its command line is a placeholder (${NAME}, $NAME or {{ ... }}), which "
    "nothing expands (Docker starts redis-server in exec form, with no shell or script before "
    "it), so the password is that text as this program writes it. Instead load users with "
    "#<sha256> passwords from an aclfile delivered as a protected file."
)


@pytest.mark.parametrize(
    "props",
    [
        {"command": ["redis-server", "--requirepass", "${REDIS_PASSWORD}"]},
        {"command": ["--requirepass", "$REDIS_PASSWORD"]},  # the image's docker-entrypoint.sh
        {"entrypoints": ["redis-server"], "command": ["--requirepass", "{{ .Password }}"]},
        {"entrypoints": ["tini", "--"], "command": ["redis-server", "--requirepass", "${P}"]},
        {"command": ["docker-entrypoint.sh", "redis-server", "--requirepass", "${P}"]},
    ],
)
def test_requirepass_placeholder_in_exec_form__is_a_literal_password(
    props: dict[str, Any],
) -> None:
    records = stack(container("redis", image="redis:7.4", **props))
    assert only(run_rule("redis-auth-required", records)) == EXEC_FORM_MESSAGE


@pytest.mark.parametrize(
    ("image", "props"),
    [
        # a shell before redis-server, in the entrypoint or the command
        ("redis:7.4", {"command": ["sh", "-c", "redis-server --requirepass ${P}"]}),
        (
            "redis:7.4",
            {"entrypoints": ["/bin/bash", "-c"], "command": ["exec redis-server --requirepass $P"]},
        ),
        # a script the pack cannot read, or another image's own entrypoint
        (
            "redis:7.4",
            {"entrypoints": ["/start.sh"], "command": ["redis-server", "--requirepass", "${P}"]},
        ),
        ("example/redis-custom:1", {"command": ["redis-server", "--requirepass", "${P}"]}),
        # a whole command line in one string: whoever splits it may expand it
        ("redis:7.4", {"command": ["redis-server --requirepass ${P}"]}),
    ],
)
def test_requirepass_placeholder_where_something_may_expand_it__is_not_judged_literal(
    image: str, props: dict[str, Any]
) -> None:
    records = stack(container("redis", image=image, **props))
    assert all("placeholder" not in m for m in run_rule("redis-auth-required", records))


def test_acl_placeholder_password_in_exec_form__is_a_literal_password() -> None:
    # redis-server takes each rule as a word of its own (one word with spaces is one value).
    command = ["redis-server", "--user", "app", "on", ">${APP_PASSWORD}", "~app:*", "+get",
               "--user", "default", "off"]  # fmt: skip
    records = stack(container("redis", image="redis:7.4", command=command))
    assert only(run_rule("redis-auth-required", records)) == (
        "Redis container redis must require authentication with a password only its clients "
        "know; the >password of ACL user app is a placeholder (${NAME}, $NAME or {{ ... }}), "
        "which Redis does not expand, so the password is that text as this program writes it "
        "(in a file, on a command line Docker starts in exec form, with no shell to expand "
        "it, or quoted by its start script, '>$NAME' or \">\\$NAME\", which the shell hands "
        "over as written). Instead load users with #<sha256> passwords from an aclfile "
        "delivered as a protected file."
    )


def test_acl_placeholder_password_in_aclfile__is_a_literal_password() -> None:
    acl = {"file": "/etc/redis/users.acl", "content": "user app on >${APP_PASSWORD} ~a:* +get\n"}
    script = "exec redis-server --aclfile /etc/redis/users.acl"
    records = stack(container("redis", image="redis:7.4", command=["sh", "-c", script],
                              uploads=[acl]))  # fmt: skip
    assert "the >password of ACL user app is a placeholder" in only(
        run_rule("redis-auth-required", records)
    )


def test_acl_placeholder_password_behind_a_shell__is_left_to_it() -> None:
    script = "exec redis-server --user 'app on >${APP_PASSWORD} ~a:* +get' --user 'default off'"
    records = stack(container("redis", image="redis:7.4", command=["sh", "-c", script]))
    assert run_rule("redis-auth-required", records) == []


def test_acl_placeholder_password_reset_later__is_no_finding() -> None:
    command = ["redis-server", "--user", "app", "on", ">${P}", "~a:*", "+get", "--user", "app",
               "resetpass", "--user", "default", "off"]  # fmt: skip
    records = stack(container("redis", image="redis:7.4", command=command))
    assert all("placeholder" not in m for m in run_rule("redis-auth-required", records))


def test_masterauth_placeholder_in_exec_form__is_the_masters_literal_password() -> None:
    secret = hashlib.sha256(b"stand-in").hexdigest()  # not a real credential
    command = ["redis-server", "--replicaof", "master", "6379", "--requirepass", secret,
               "--masterauth", "${REDIS_PASSWORD}"]  # fmt: skip
    records = stack(container("replica", image="redis:7.4", command=command))
    assert only(run_rule("redis-auth-required", records)) == (
        "Redis container replica must authenticate to its master with a password only the two "
        "of them know; masterauth on its command line is a placeholder (${NAME}, $NAME or "
        "{{ ... }}), which nothing expands (Docker starts redis-server in exec form, with no "
        "shell or script before it), so the password is that text as this program writes it: "
        "a master that accepts it accepts anyone who reads this program (else replication "
        "fails). Instead load users with #<sha256> passwords from an aclfile delivered as a "
        "protected file."
    )


def test_masterauth_placeholder_in_uploaded_conf__is_judged_as_written() -> None:
    records = _with_conf("requirepass Xq9v7Lr2mT4sWb8Kc3Jh6Fd1\nmasterauth ${MASTER_PASSWORD}\n")
    assert "masterauth in the config file it loads is a placeholder" in only(
        run_rule("redis-auth-required", records)
    )


# `$(cat /run/secrets/redis_password)` is a shell's too: compose's `"$$(cat ...)"` in exec form
# hands Redis those characters as the password (corpus16's report: find_string
# `"--requirepass", "$$`), and a file Redis reads runs nothing either.
SUBSTITUTIONS = ["$(cat /run/secrets/redis_password)", "`cat /run/secrets/redis_password`",
                 '"$(cat /run/secrets/redis_password)"']  # fmt: skip
EXEC_FORM_SUBSTITUTION_MESSAGE = (
    "Redis container redis must require authentication with a password only its clients know; "
    "requirepass on its command line is a command substitution ($(...) or `...`), which nothing "
    "runs (Docker starts redis-server in exec form, with no shell or script before it), so the "
    "password is that text as this program writes it. Instead load users with #<sha256> "
    "passwords from an aclfile delivered as a protected file."
)


@pytest.mark.parametrize("substitution", SUBSTITUTIONS)
@pytest.mark.parametrize(
    "head",
    [["redis-server"], ["docker-entrypoint.sh", "redis-server"], ["tini", "--", "redis-server"]],
)
def test_requirepass_command_substitution_in_exec_form__is_a_literal_password(
    head: list[str], substitution: str
) -> None:
    command = [*head, "--requirepass", substitution]
    records = stack(container("redis", image="redis:7.4", command=command))
    assert only(run_rule("redis-auth-required", records)) == EXEC_FORM_SUBSTITUTION_MESSAGE


@pytest.mark.parametrize(
    ("image", "command"),
    [
        ("redis:7.4", ["sh", "-c", "exec redis-server --requirepass $(cat /run/secrets/pw)"]),
        ("redis:7.4", ["redis-server --requirepass $(cat /run/secrets/pw)"]),
        ("example/redis-custom:1", ["redis-server", "--requirepass", "$(cat /run/secrets/pw)"]),
        ("redis:7.4", ["redis-server", "--requirepass", "pa$(x)ss-and-more"]),  # not whole
    ],
)
def test_requirepass_command_substitution_something_may_run__is_not_judged_literal(
    image: str, command: list[str]
) -> None:
    records = stack(container("redis", image=image, command=command))
    assert all("command substitution" not in m for m in run_rule("redis-auth-required", records))


def test_masterauth_command_substitution_in_exec_form__is_the_masters_literal_password() -> None:
    secret = hashlib.sha256(b"stand-in").hexdigest()  # not a real credential
    command = ["redis-server", "--requirepass", secret, "--masterauth",
               "$(cat /run/secrets/master_password)"]  # fmt: skip
    records = stack(container("replica", image="redis:7.4", command=command))
    assert only(run_rule("redis-auth-required", records)).startswith(
        "Redis container replica must authenticate to its master with a password only the two "
        "of them know; masterauth on its command line is a command substitution ($(...) or "
        "`...`), which nothing runs (Docker starts"
    )


def test_requirepass_command_substitution_in_uploaded_conf__is_judged_as_written() -> None:
    records = _with_conf("requirepass $(cat /run/secrets/redis_password)\n")
    assert only(run_rule("redis-auth-required", records)) == (
        "Redis container redis must require authentication with a password only its clients "
        "know; requirepass in the config file it loads is a command substitution ($(...) or "
        "`...`), which Redis does not run, so the password is that text as this program writes "
        "it. Substitute it before redis-server reads the file, or load users with #<sha256> "
        "passwords from an aclfile delivered as a protected file."
    )


# -- Redis in another container's network namespace -----------------------------------------------
# `docker run --network container:web redis`: Redis listens in web's namespace, so a port web
# publishes is Redis's when Redis listens on it; web (nginx) runs no Redis.


def _shared_namespace(published: int) -> list[Record]:
    web = container("web", image="nginx:1.27", name="web",
                    ports=[{"internal": published, "external": published}])  # fmt: skip
    redis = container("redis", image="redis:7.4", command=["redis-server"],
                      networkMode="container:web")  # fmt: skip
    return stack(web, redis)


def test_port_published_by_the_namespace_owner__is_the_redis_containers() -> None:
    records = _shared_namespace(6379)
    assert only(run_rule("network-redis-no-published-port", records)) == (
        "Redis container redis must not publish ports to the Docker host; clients reach it "
        "over an internal network. It listens in the network namespace of container web "
        "(networkMode container:web), which publishes its port 6379."
    )


def test_namespace_owner_publishing_redis_port__is_not_judged_as_redis() -> None:
    records = _shared_namespace(6379)
    (server,) = [r for r in to_resources(records) if r.name == "web"]
    assert recognise(server.props).verdict is Verdict.SERVER  # alone, the port says Redis
    assert [m for m in run_rule("redis-auth-required", records) if "container web" in m] == []


def test_namespace_owner_publishing_another_port__publishes_nothing_of_redis() -> None:
    assert run_rule("network-redis-no-published-port", _shared_namespace(8080)) == []


# -- a password shared on two command lines -------------------------------------------------------
# DY56GO/mbp_back (tests/policy/external/dy56go-mbp-back-redis6-and-exporter-privileged.json)
# gave one literal password to redis-server and to redis_exporter on their command lines.


def test_password_on_two_command_lines__is_reported_as_shared_without_its_value() -> None:
    # checkov:skip=CKV_SECRET_6: a made-up password the test program shares, not a credential
    password = "Sh4red-pa55word"
    records = stack(
        container("redis", image="redis:7.4", command=["redis-server", "--requirepass", password]),
        container(
            "exporter",
            image="oliver006/redis_exporter:v1.62.0",
            command=["--redis.password", password],
        ),
    )
    messages = run_rule("secret-not-shared-in-plain-form", records)
    assert sorted(messages) == [
        f"Container {name} must not hold, in plain form, a secret another resource carries "
        f"(command); deliver it as a protected file and list the property in "
        f"additionalSecretOutputs."
        for name in ("exporter", "redis")
    ]
    assert not any(password in m for m in messages)


def test_password_on_one_command_line__is_not_shared() -> None:
    records = stack(
        container(
            "redis", image="redis:7.4", command=["redis-server", "--requirepass", "Sh4red-pa55word"]
        ),
        container("app", image="app:1", command=["app", "--port", "6379"]),
    )
    assert run_rule("secret-not-shared-in-plain-form", records) == []


# -- Redis before 3.2 has no protected mode --------------------------------------------------------


@pytest.mark.parametrize("image", ["redis:3.0.7", "redis:3.0-alpine", "redis:2.8", "redis:2"])
def test_redis_3_0__is_told_it_has_no_protected_mode(image: str) -> None:
    records = stack(container("redis", image=image))
    assert only(run_rule("redis-protected-mode-on", records)) == (
        f"Redis container redis must keep protected-mode yes; Redis before 3.2 (its image, "
        f"{image}) has no protected mode, so run Redis 3.2 or later."
    )


@pytest.mark.parametrize("image", ["redis:3.2", "redis:3", "redis:3-alpine", "redis:7.4"])
def test_redis_3_2__still_says_the_image_turns_it_off(image: str) -> None:
    # `redis:3` is the last Redis 3 the image was built from (3.2.x), not 3.0.
    records = stack(container("redis", image=image))
    assert only(run_rule("redis-protected-mode-on", records)) == (
        "Redis container redis must keep protected-mode yes; the image turns it off by default."
    )


# -- a sentinel chosen by what the container shows, not by argv ------------------------------------
# stormning/env-tool-suite (tests/policy/external/stormning-env-tool-suite-private-registry-redis-
# sentinel-by-env.json): one image runs redis-server or redis-sentinel by its MODE variable.
SENTINEL_SIGNS = [
    {"envs": ["MODE=sentinel"]},
    {"envs": ["REDIS_ROLE=redis-sentinel"]},
    {"envs": ["REDIS_ARGS=--sentinel"]},
    {"uploads": [{"file": "/etc/redis/sentinel.conf", "content": "port 26379\n"}]},
]


@pytest.mark.parametrize("sign", SENTINEL_SIGNS)
def test_sentinel_told_by_env_or_sentinel_conf__skips_data_server_rules(
    sign: dict[str, Any],
) -> None:
    records = stack(container("sentinel", image="hub.slyak.com/redis",
                              ports=[{"internal": 26379}], **sign))  # fmt: skip
    assert run_rule("redis-maxmemory-below-limit", records) == []
    assert run_rule("redis-data-on-named-volume", records) == []
    assert only(run_rule("redis-protected-mode-on", records)).startswith(
        "Redis Sentinel container sentinel must set protected-mode yes on its command line or "
        "in a sentinel config uploaded by this stack;"
    )
    assert run_rule("redis-auth-required", records) != []


# A custom image (`FROM redis`, its entrypoint running `--sentinel`) shows only the sentinel's port:
# 26379 with another sentinel sign is a sentinel; 26379 alone is said to be unsure, never Redis.
@pytest.mark.parametrize("sign", SENTINEL_SIGNS)
def test_custom_image_with_sentinel_port_and_a_sentinel_sign__is_a_sentinel(
    sign: dict[str, Any],
) -> None:
    props = {"image": "registry.example/shop-sentinel:1", "ports": [{"internal": 26379}], **sign}
    found = recognise(props)
    assert (found.verdict, found.sentinel) == (Verdict.SERVER, True)
    records = stack(container("sentinel", **props))
    assert only(run_rule("redis-protected-mode-on", records)).startswith(
        "Redis Sentinel container sentinel must set protected-mode yes on its command line or "
        "in a sentinel config uploaded by this stack;"
    )
    assert run_rule("redis-maxmemory-below-limit", records) == []


def test_custom_image_with_sentinel_port_and_sentinel_settings__is_a_sentinel() -> None:
    # qkr107781/hhplus_e-commerce_server: FROM redis, an entrypoint that seds these three into
    # sentinel.conf and runs --sentinel; the container shows the port and the variables only.
    envs = ["SENTINEL_QUORUM=2", "SENTINEL_DOWN_AFTER=5000", "SENTINEL_FAILOVER=500"]
    props = {"image": "hhplus-sentinel", "ports": [{"internal": 26379}], "envs": envs}
    found = recognise(props)
    assert (found.verdict, found.sentinel) == (Verdict.SERVER, True)
    assert "sentinel settings in SENTINEL_DOWN_AFTER, SENTINEL_FAILOVER, SENTINEL_QUORUM" in (
        found.signs
    )


@pytest.mark.parametrize("variable", ["SENTINEL_MASTER=mymaster", "REDIS_SENTINEL_HOST=s1"])
def test_client_settings_of_a_sentinel__do_not_make_26379_a_sentinel(variable: str) -> None:
    props = {"image": "example/proxy:1", "ports": [{"internal": 26379}], "envs": [variable]}
    assert recognise(props).verdict is Verdict.UNSURE


def test_custom_image_with_only_the_sentinel_port__is_unsure_not_redis() -> None:
    props = {"image": "registry.example/shop-sentinel:1", "ports": [{"internal": 26379}]}
    assert recognise(props).verdict is Verdict.UNSURE
    records = stack(container("sentinel", **props))
    assert only(run_rule("redis-recognised", records)) == (
        "Could not tell whether Container sentinel runs Redis (Redis Sentinel port 26379); if "
        "it does, start it with redis-server and its settings on the command line or in an "
        "uploaded redis.conf so the Redis rules can judge it."
    )
    assert run_rule("redis-auth-required", records) == []


def test_program_running_its_own_command_on_26379__is_not_redis() -> None:
    props = {"image": "example/metrics:1", "command": ["metrics", "--listen", ":26379"],
             "ports": [{"internal": 26379}], "envs": ["MODE=sentinel"]}  # fmt: skip
    assert recognise(props).verdict is Verdict.NOT_REDIS


def test_data_server_beside_a_sentinel_variable_of_another_meaning__stays_a_data_server() -> None:
    records = stack(container("redis", image="hub.slyak.com/redis", ports=[{"internal": 6379}],
                              envs=["SENTINEL_HOST=sentinel", "MODE=slave"]))  # fmt: skip
    assert run_rule("redis-maxmemory-below-limit", records) != []


def test_tls_only_redis_in_a_namespace_publishing_6379__is_not_published() -> None:
    web = container("web", image="nginx:1.27", name="web",
                    ports=[{"internal": 6379, "external": 6379}])  # fmt: skip
    redis = container("redis", image="redis:7.4", command=["redis-server", *TLS_ARGS],
                      networkMode="container:web")  # fmt: skip
    assert run_rule("network-redis-no-published-port", stack(web, redis)) == []


@pytest.mark.parametrize("source", ["$REDIS_PASSWORD", '"$(cat /run/secrets/redis_password)"'])
def test_password_variable_on_two_command_lines__is_no_shared_secret(source: str) -> None:
    script = f"exec redis-server --requirepass {source}"
    records = stack(
        container("redis", image="redis:7.4", entrypoints=["/bin/sh", "-c"], command=[script]),
        container(
            "app",
            image="app:1",
            entrypoints=["/bin/sh", "-c"],
            command=[f"exec app --redis-password {source}"],
        ),
    )
    assert run_rule("secret-not-shared-in-plain-form", records) == []


# -- a script with more than one command -----------------------------------------------------------
# MISP's Valkey (tests/policy/external_programs/misp_docker_valkey_sh_c_requirepass_default.py)
# picks one of two `exec valkey-server` lines with `if ... else ... fi`. A shell ends a command at
# a newline as at `;`: the words of the other branch are no arguments of the first server, and
# either server may be the one that runs, so each is judged and a finding both share said once.

STRONG = hashlib.sha256(b"stand-in").hexdigest()  # not a real credential; 64 characters
BRANCHES = [
    # the insecure server in the else branch, then in the then branch
    f'if [ "$EMPTY" = true ]; then\n  exec redis-server --requirepass {STRONG}\nelse\n'
    "  exec redis-server\nfi\n",
    f'if [ "$EMPTY" = true ]; then\n  exec redis-server\nelse\n'
    f"  exec redis-server --requirepass {STRONG}\nfi\n",
    # one line, and elif
    f'if [ -n "$A" ]; then exec redis-server --requirepass {STRONG}; elif [ -n "$B" ]; then '
    "exec redis-server; fi",
    # && / || instead of if
    f'[ "$EMPTY" = true ] && exec redis-server || exec redis-server --requirepass {STRONG}',
]


@pytest.mark.parametrize("script", BRANCHES)
def test_script_with_a_branch_that_starts_redis_without_a_password__is_rejected_for_it(
    script: str,
) -> None:
    records = stack(container("redis", image="redis:7.4", command=["sh", "-c", script]))
    assert only(run_rule("redis-auth-required", records)) == (
        "Redis container redis must require authentication (an aclfile with users that have "
        "passwords); anyone who connects is let in."
    )


@pytest.mark.parametrize("script", BRANCHES)
def test_script_with_two_branches__says_a_finding_both_share_once(script: str) -> None:
    records = stack(container("redis", image="redis:7.4", command=["sh", "-c", script]))
    assert only(run_rule("redis-tls-only", records)) == (
        "Redis container redis must set port 0 (with tls-port) so it accepts TLS connections "
        "only; it listens for plaintext connections."
    )


def test_short_password_in_the_else_branch__is_judged_for_length() -> None:
    script = (
        f'if [ "$EMPTY" = true ]; then\n  exec valkey-server --requirepass {STRONG}\nelse\n'
        '  exec valkey-server --requirepass "${REDIS_PASSWORD:-redispassword}"\nfi\n'
    )
    records = stack(container("redis", image="valkey/valkey:7.2", command=["sh", "-c", script]))
    assert "its requirepass is shorter" in only(run_rule("secret-password-length", records))


def test_two_servers_in_one_script__are_both_judged_with_their_own_config_files() -> None:
    # The first server's config file is no file the second one's script rewrites.
    good = f"port 0\ntls-port 6380\nrequirepass {STRONG}\n"
    bad = "port 6379\n"
    script = "redis-server /etc/a.conf --daemonize yes\nexec redis-server /etc/b.conf"
    uploads = [{"file": "/etc/a.conf", "content": good}, {"file": "/etc/b.conf", "content": bad}]
    records = stack(
        container("redis", image="redis:7.4", command=["sh", "-c", script], uploads=uploads)
    )
    assert only(run_rule("redis-tls-only", records)).endswith(
        "it listens for plaintext connections."
    )


@pytest.mark.parametrize(
    "before",
    [
        "command -v redis-server >/dev/null || exit 1",
        "redis-server --version",
        "pgrep redis-server && exit 0",
        "echo starting redis-server; # exec redis-server --port 6379",
    ],
)
def test_a_command_that_only_names_a_server__starts_none(before: str) -> None:
    script = f"{before}\nexec redis-server {' '.join(TLS_ARGS)}"
    records = stack(container("redis", image="redis:7.4", command=["sh", "-c", script]))
    assert run_rule("redis-tls-only", records) == []


@pytest.mark.parametrize(
    "password",
    [
        f"'{STRONG[:30]};{STRONG[:30]}'",  # a quoted ; is part of the word
        f'"{STRONG[:30]}&&{STRONG[:30]}"',
        f'"$(cat /run/secrets/p; echo {STRONG})"',  # nor does one inside $(...) end the command
    ],
)
def test_separators_in_quotes_or_substitutions__do_not_end_the_command(password: str) -> None:
    script = f"exec redis-server --requirepass {password} --port 6379"
    records = stack(container("redis", image="redis:7.4", command=["sh", "-c", script]))
    assert only(run_rule("redis-tls-only", records)).endswith(
        "it listens for plaintext connections."
    )


# -- an ACL >password that is a command substitution -----------------------------------------------
# As for requirepass (SUBSTITUTIONS above): `>$(cat /run/secrets/app)` in a file Redis loads, or on
# a command line nothing runs, is that text, which anyone reading the program knows.

ACL_SUBSTITUTION_MESSAGE = (
    "Redis container redis must require authentication with a password only its clients know; "
    "the >password of ACL user app is a command substitution ($(...) or `...`), which Redis does "
    "not run, so the password is that text as this program writes it (in a file, or on a "
    "command line Docker starts in exec form, with no shell to run it). Instead load users with "
    "#<sha256> passwords from an aclfile delivered as a protected file."
)


@pytest.mark.parametrize("substitution", [*SUBSTITUTIONS, "$(</run/secrets/app)"])
def test_acl_command_substitution_password_in_exec_form__is_a_literal_password(
    substitution: str,
) -> None:
    command = ["redis-server", "--user", "app", "on", f">{substitution}", "~app:*", "+get",
               "--user", "default", "off"]  # fmt: skip
    records = stack(container("redis", image="redis:7.4", command=command))
    assert only(run_rule("redis-auth-required", records)) == ACL_SUBSTITUTION_MESSAGE


@pytest.mark.parametrize(
    "rule", ['">$(cat /run/secrets/app)"', ">$(</run/secrets/app)", "'>`cat /run/secrets/app`'"]
)
def test_acl_command_substitution_password_in_aclfile__is_a_literal_password(rule: str) -> None:
    acl = {"file": "/etc/redis/users.acl", "content": f"user app on {rule} ~a:* +get\n"}
    script = "exec redis-server --aclfile /etc/redis/users.acl"
    records = stack(container("redis", image="redis:7.4", command=["sh", "-c", script],
                              uploads=[acl]))  # fmt: skip
    assert only(run_rule("redis-auth-required", records)) == ACL_SUBSTITUTION_MESSAGE


def test_acl_placeholder_and_substitution_passwords__are_each_told() -> None:
    command = ["redis-server", "--user", "app", "on", ">$(cat /run/secrets/app)", "~a:*", "+get",
               "--user", "ops", "on", ">${OPS_PASSWORD}", "~o:*", "+get",
               "--user", "default", "off"]  # fmt: skip
    records = stack(container("redis", image="redis:7.4", command=command))
    messages = run_rule("redis-auth-required", records)
    assert [m.split("; the >password of ACL ")[1][:40] for m in messages] == [
        "user ops is a placeholder (${NAME}, $NAM",
        "user app is a command substitution ($(..",
    ]


def test_acl_command_substitution_behind_a_shell__is_left_to_it() -> None:
    script = (
        "exec redis-server --user 'app on >$(cat /run/secrets/app) ~a:* +get' --user 'default off'"
    )
    records = stack(container("redis", image="redis:7.4", command=["sh", "-c", script]))
    assert run_rule("redis-auth-required", records) == []


def test_acl_command_substitution_reset_later__is_no_finding() -> None:
    command = ["redis-server", "--user", "app", "on", ">$(cat /f)", "~a:*", "+get", "--user",
               "app", "resetpass", "--user", "default", "off"]  # fmt: skip
    records = stack(container("redis", image="redis:7.4", command=command))
    assert all("substitution" not in m for m in run_rule("redis-auth-required", records))


def test_case_branches_for_a_sentinel_and_a_server__are_each_judged_in_their_own_words() -> None:
    script = (
        'case "$ROLE" in\n'
        f"  sentinel) exec redis-sentinel /etc/s.conf ;;\n"
        f"  *) exec redis-server --protected-mode yes --requirepass {STRONG} ;;\n"
        "esac\n"
    )
    uploads = [{"file": "/etc/s.conf", "content": "port 26379\n"}]
    records = stack(
        container("redis", image="redis:7.4", command=["sh", "-c", script], uploads=uploads)
    )
    assert only(run_rule("redis-protected-mode-on", records)) == (
        "Redis Sentinel container redis must keep protected-mode yes; sentinel mode turns it "
        "off by default."
    )
    assert sorted(m.split(" must ")[0] for m in run_rule("redis-tls-only", records)) == [
        "Redis Sentinel container redis",
        "Redis container redis",
    ]


# -- redirections in a script: the shell's, not the server's arguments --------------------------

# port 0 last, where a redirection read as an argument would change it.
TLS_SCRIPT = " ".join([*TLS_ARGS[2:], *TLS_ARGS[:2]])


@pytest.mark.parametrize(
    "redirections",
    [
        pytest.param(">/var/log/r.log 2>&1", id="stdout-and-stderr"),
        pytest.param(">> /var/log/r.log 2> /var/log/e.log", id="append-with-spaces"),
        pytest.param("</dev/null &>'/var/log/a log'", id="stdin-and-quoted-target"),
        pytest.param('1>"$LOG"', id="fd-and-variable-target"),
    ],
)
def test_script__redirections_after_the_server_are_not_its_arguments(redirections: str) -> None:
    script = f"exec redis-server {TLS_SCRIPT} {redirections}"
    recognition = recognise({"image": "redis:7", "command": ["sh", "-c", script]})
    assert (recognition.verdict, recognition.args) == (Verdict.SERVER, tuple(TLS_SCRIPT.split()))
    records = stack(container("redis", image="redis:7", command=["sh", "-c", script]))
    assert run_rule("redis-tls-only", records) == []
    assert run_rule("redis-tls-configured", records) == []


def test_script__a_quoted_acl_rule_like_a_redirection_stays_an_argument() -> None:
    # '>pw' quoted is the ACL rule "add password pw" (Redis's argument), not a redirection.
    script = f"exec redis-server {TLS_SCRIPT} --user app on '>pw' '~*' '+get' --port 6379"
    records = stack(container("redis", image="redis:7", command=["sh", "-c", script]))
    assert "it listens for plaintext connections." in only(run_rule("redis-tls-only", records))
    script = f"exec redis-server --user app on '>pw' '~*' '+get' {TLS_SCRIPT} >/dev/null"
    records = stack(container("redis", image="redis:7", command=["sh", "-c", script]))
    assert run_rule("redis-tls-only", records) == []


def test_script__a_redirection_onto_the_config_file_is_a_rewrite() -> None:
    # The shell opens (and truncates) the file before Redis reads it: fail closed.
    conf = {"file": "/etc/redis/redis.conf", "content": "port 0\n"}
    script = "redis-server /etc/redis/redis.conf > /etc/redis/redis.conf"
    records = stack(container("redis", image="redis:7", uploads=[conf],
                              command=["sh", "-c", script]))  # fmt: skip
    assert run_rule("redis-tls-only", records) != []


# -- what the shell hands redis-server (tests/policy/test_policy_shell_differential.py) ----------
# Each shape below was found by running the script under dash and bash with a recording
# redis-server: the pack believed a safer server than the one the shell starts.
ANYONE = "anyone who connects is let in."


@pytest.mark.parametrize(
    ("script", "envs"),
    [
        pytest.param('exec redis-server --requirepass "$REDIS_PASSWORD"', [], id="unset"),
        pytest.param('exec redis-server --requirepass "${REDIS_PASSWORD}"', ["REDIS_PASSWORD="],
                     id="set-empty"),
        pytest.param('p=; exec redis-server --requirepass "$p"', [], id="emptied-by-the-script"),
    ],
)  # fmt: skip
def test_script__a_password_variable_the_shell_makes_empty__is_no_password(
    script: str, envs: list[str]
) -> None:
    # The official image's ENV sets no password variable: unset, the shell passes "".
    records = stack(container("redis", image="redis:7.4", command=["sh", "-c", script],
                              envs=envs))  # fmt: skip
    assert only(run_rule("redis-auth-required", records)).endswith(ANYONE)


def test_script__an_unset_variable_on_another_image__may_be_set_by_its_env() -> None:
    script = 'exec redis-server --requirepass "$REDIS_PASSWORD"'
    records = stack(container("redis", image="example.org/redis:7", command=["sh", "-c", script]))
    assert run_rule("redis-auth-required", records) == []


def test_script__a_short_password_the_script_assigns__is_judged_by_its_length() -> None:
    script = 'p=demo; exec redis-server --requirepass "$p"'
    records = stack(container("redis", image="redis:7.4", command=["sh", "-c", script]))
    assert "shorter" in only(run_rule("secret-password-length", records))


@pytest.mark.parametrize(
    "script",
    [
        pytest.param(f"command redis-server --port 6379; exec redis-server {TLS_SCRIPT}",
                     id="command-runs-it"),
        pytest.param(f"x=$(redis-server --port 6379 --daemonize yes); exec redis-server "
                     f"{TLS_SCRIPT}", id="in-an-assignment's-substitution"),
        pytest.param(f"echo `redis-server --port 6379 --daemonize yes`; exec redis-server "
                     f"{TLS_SCRIPT}", id="in-backquotes"),
        pytest.param(f'eval "redis-server --port 6379"; exec redis-server {TLS_SCRIPT}',
                     id="eval"),
        pytest.param(f"cat <(redis-server --port 6379); exec redis-server {TLS_SCRIPT}",
                     id="process-substitution"),
        pytest.param(f"tee >(true; redis-server --port 6379) </dev/null; exec redis-server "
                     f"{TLS_SCRIPT}", id="process-substitution-with-a-list"),
        pytest.param(f"exec redis-server {TLS_SCRIPT} --protected-mode yes $(true ; true) "
                     f"--port 6379", id="semicolon-inside-a-substitution"),
        pytest.param(f"exec sh -c 'exec \"$@\"' sh redis-server {TLS_SCRIPT} --port 6379",
                     id="the-script's-arguments"),
    ],
)  # fmt: skip
def test_script__a_plaintext_server_the_shell_starts__is_judged(script: str) -> None:
    records = stack(container("redis", image="redis:7.4", command=["sh", "-c", script]))
    assert "it listens for plaintext connections." in only(run_rule("redis-tls-only", records))


def test_script__its_own_arguments__are_no_words_of_its_commands() -> None:
    # `sh -c SCRIPT sh --port 6379`: $0 and $1 of the script, which does not use them.
    command = ["sh", "-c", f"exec redis-server {TLS_SCRIPT}", "sh", "--port", "6379"]
    recognition = recognise({"image": "redis:7.4", "command": command})
    assert recognition.args == tuple(TLS_SCRIPT.split())


@pytest.mark.parametrize(
    "script",
    [
        pytest.param(f"R=redis-server; $R --port 6379 & exec redis-server {TLS_SCRIPT}",
                     id="variable"),
        pytest.param(f"alias r=redis-server\nr --port 6379 & exec redis-server {TLS_SCRIPT}",
                     id="alias"),
        pytest.param(f"${{R:-redis-server}} --port 6379 & exec redis-server {TLS_SCRIPT}",
                     id="variable-default"),
        pytest.param('alias r="exec redis-server"\nr --port 6379', id="alias-through-exec"),
        pytest.param(f'alias r="nohup redis-server"\nr --port 6379 & exec redis-server '
                     f"{TLS_SCRIPT}", id="alias-through-nohup"),
    ],
)  # fmt: skip
def test_script__a_server_named_by_a_variable_or_an_alias__is_judged(script: str) -> None:
    records = stack(container("redis", image="redis:7.4", command=["sh", "-c", script]))
    assert "it listens for plaintext connections." in only(run_rule("redis-tls-only", records))


def test_script__a_program_named_by_what_the_pack_cannot_resolve__is_a_server_it_cannot_read() -> (
    None
):
    script = f"$SERVER {TLS_SCRIPT} --port 6379"
    recognition = recognise({"image": "redis:7.4", "command": ["sh", "-c", script],
                             "envs": ["SERVER=/usr/local/bin/start"]})  # fmt: skip
    assert (recognition.verdict, recognition.args) == (Verdict.SERVER, None)


@pytest.mark.parametrize(
    ("script", "image"),
    [
        pytest.param(f'set -- --port 6379; exec redis-server {TLS_SCRIPT} "$@"', "redis:7.4",
                     id="positional-parameters"),
        pytest.param(f"exec redis-server {TLS_SCRIPT} $(echo --port 6379)", "redis:7.4",
                     id="substitution-printing-options"),
        pytest.param(f'IFS=:; a="--port:6379"; exec redis-server {TLS_SCRIPT} $a', "redis:7.4",
                     id="ifs"),
        pytest.param(f"a=--port; exec redis-server {TLS_SCRIPT} $a 6379", "redis:7.4",
                     id="option-in-a-variable"),
        # Another image may set EXTRA_FLAGS in its own ENV (the official image's sets none).
        pytest.param(f"exec redis-server {TLS_SCRIPT} $EXTRA_FLAGS", "example.org/redis:7",
                     id="unresolved-variable"),
        pytest.param(f'A=""\nif [ -n "$DEBUG" ]; then A="--port 6379"; fi\n'
                     f"exec redis-server {TLS_SCRIPT} $A", "redis:7.4",
                     id="assigned-empty-and-options"),
        pytest.param(f'A=x; [ -n "$DEBUG" ] && A="--port 6379"; exec redis-server {TLS_SCRIPT} $A',
                     "redis:7.4", id="assigned-a-word-and-options"),
        pytest.param(f'A=; [ -n "$DEBUG" ] && A=--port; exec redis-server {TLS_SCRIPT} "$A" 6379',
                     "redis:7.4", id="assigned-empty-or-an-option-quoted"),
        pytest.param(f'for A in "--port 6379"; do :; done; exec redis-server {TLS_SCRIPT} $A',
                     "redis:7.4", id="set-by-for"),
        pytest.param(f'P="a-long-enough-password-0123456789 --port 6379"\n'
                     f"exec redis-server {TLS_SCRIPT} --requirepass $P",
                     "redis:7.4", id="an-unquoted-value-with-blanks"),
        pytest.param(f": ${{A:=--port 6379}}; exec redis-server {TLS_SCRIPT} $A", "redis:7.4",
                     id="set-by-a-default-assignment"),
        pytest.param(f"read A < /etc/extra; exec redis-server {TLS_SCRIPT} $A", "redis:7.4",
                     id="set-by-read"),
    ],
)  # fmt: skip
def test_script__words_the_shell_may_expand_into_options__make_what_comes_before_unknown(
    script: str, image: str
) -> None:
    records = stack(container("redis", image=image, command=["sh", "-c", script]))
    message = only(run_rule("redis-tls-only", records))
    assert "passes redis-server words the pack cannot read" in message
    # What argv sets after such a word stands: it wins over whatever the word holds.
    records = stack(container("redis", image=image, command=["sh", "-c", f"{script} --port 0"]))
    assert run_rule("redis-tls-only", records) == []


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(["sh", "-c", f"echo --port 6379 | xargs redis-server {TLS_SCRIPT}"],
                     id="xargs"),
        pytest.param(["sh", "-c", f"exec redis-server {TLS_SCRIPT} ${{EXTRA:+--port 6379}}"],
                     id="conditional-expansion"),
        pytest.param(["sh", "-c", f'exec docker-entrypoint.sh {TLS_SCRIPT} "$@"', "sh",
                      "--port", "6379"], id="through-docker-entrypoint"),
    ],
)  # fmt: skip
def test_script__more_words_the_shell_passes_on__are_not_read_as_safe(command: list[str]) -> None:
    records = stack(container("redis", image="redis:7.4", command=command, envs=["EXTRA=1"]))
    message = only(run_rule("redis-tls-only", records))
    assert "passes redis-server words the pack cannot read" in message


def test_script__the_entrypoints_options_among_the_scripts_arguments__are_unknown() -> None:
    # docker-entrypoint.sh prepends redis-server to the options "$@" expands to.
    command = ["sh", "-c", 'exec docker-entrypoint.sh "$@"', "sh", "--port", "6379"]
    recognition = recognise({"image": "redis:7.4", "command": command})
    assert (recognition.verdict, recognition.args) == (Verdict.SERVER, None)
    # Named among them, the server is read where the script's arguments stand.
    command = ["sh", "-c", 'exec docker-entrypoint.sh "$@"', "sh", "redis-server", "--port", "0"]
    assert recognise({"image": "redis:7.4", "command": command}).args == ("--port", "0")


@pytest.mark.parametrize(
    "script",
    [
        pytest.param(f"printf 'enable-debug-command yes\\n' | redis-server - {TLS_SCRIPT}",
                     id="piped"),
        pytest.param(f"exec redis-server {TLS_SCRIPT} - < /etc/redis/extra.conf", id="redirected"),
    ],
)  # fmt: skip
def test_config_read_from_stdin__is_unknown(script: str) -> None:
    # redis-server - reads config text from stdin after its config file, before its options.
    records = stack(container("redis", image="redis:7.4", command=["sh", "-c", script]))
    messages = run_rule("redis-escape-hatches-disabled", records)
    assert messages
    assert all("reads config text from its stdin" in m for m in messages)
    assert run_rule("redis-tls-only", records) == []


def test_script__a_function_passing_its_arguments_on__is_not_read_as_safe() -> None:
    script = f'start() {{ exec redis-server {TLS_SCRIPT} "$@"; }}; start --port 6379'
    records = stack(container("redis", image="redis:7.4", command=["sh", "-c", script]))
    message = only(run_rule("redis-tls-only", records))
    assert "passes redis-server words the pack cannot read" in message


def test_script__a_value_from_a_substitution__stays_one_value() -> None:
    script = f"exec redis-server {TLS_SCRIPT} --requirepass $(cat /run/secrets/pw)"
    recognition = recognise({"image": "redis:7.4", "command": ["sh", "-c", script]})
    assert recognition.args == (*TLS_SCRIPT.split(), "--requirepass", "$(cat /run/secrets/pw)")
    records = stack(container("redis", image="redis:7.4", command=["sh", "-c", script]))
    assert run_rule("redis-tls-only", records) == []


def test_script__an_assignment_with_blanks_first_in_the_script__is_one_assignment() -> None:
    # The `-c` before the script names the script, not the script's first word: `P="a b"` is
    # not split again into `P=a` and `b`.
    props = {"image": "redis:7.4", "command": ["sh", "-c", 'P="a b c"; exec redis-server $P']}
    assert shell_expanded("$P", props, "redis:7.4") == "a b c"


def test_script__the_options_an_alias_gives_its_server__are_read() -> None:
    # dash expands `r` into all the alias's words: the server gets --enable-debug-command yes.
    script = f'alias r="redis-server --enable-debug-command yes"\nr {TLS_SCRIPT}'
    records = stack(container("redis", image="redis:7.4", command=["sh", "-c", script]))
    assert run_rule("redis-escape-hatches-disabled", records) != []


# -- what a script runs that the pack cannot read, beside a server it reads ------------------------
# tests/policy/test_policy_shell_differential.py runs these under dash and bash: a script file, a
# sourced file or a shell reading a pipe started `redis-server --port 6379` beside the TLS-only
# server the pack saw, and the pack passed the container.
UNSEEN = "which the pack cannot read and which may start a server with any settings"


@pytest.mark.parametrize(
    ("script", "what"),
    [
        pytest.param(f"redis-server {TLS_SCRIPT} & exec /other.sh", "a script file (/other.sh)",
                     id="script-after"),
        pytest.param(f"/start.sh; exec redis-server {TLS_SCRIPT}", "a script file (/start.sh)",
                     id="script-before"),
        pytest.param(f"sh ./init; exec redis-server {TLS_SCRIPT}", "a script file (./init)",
                     id="shell-running-a-file"),
        pytest.param(f"nice -n 5 /start.sh & exec redis-server {TLS_SCRIPT}",
                     "a script file (/start.sh)", id="after-nice-options"),
        pytest.param(f"timeout -s KILL 10 /start.sh & exec redis-server {TLS_SCRIPT}",
                     "a script file (/start.sh)", id="after-timeout-options"),
        pytest.param(f". /etc/extra.sh; exec redis-server {TLS_SCRIPT}",
                     "a file it sources (/etc/extra.sh)", id="sourced"),
        pytest.param(f"cat /etc/cmd | sh & exec redis-server {TLS_SCRIPT}",
                     "a shell reading its script from its input (`| sh`, `sh <<<`, `sh < file`)",
                     id="piped-into-sh"),
        pytest.param(f'eval "$CMD" & exec redis-server {TLS_SCRIPT}',
                     "a program a variable or command substitution names", id="eval-variable"),
        pytest.param(f"echo /x.sh | xargs -n 1 sh & exec redis-server {TLS_SCRIPT}",
                     "what xargs reads, as a program", id="xargs-sh"),
        pytest.param(f"env -iu B /start.sh & exec redis-server {TLS_SCRIPT}",
                     "a script file (/start.sh)", id="env-option-cluster-taking-a-value"),
        pytest.param(f"python3 /app/start.py & exec redis-server {TLS_SCRIPT}",
                     "a python3 program (/app/start.py)", id="python-file"),
        pytest.param(f"node -e 'require(1)' & exec redis-server {TLS_SCRIPT}",
                     "a node program", id="node-code"),
        pytest.param(f"perl x.pl; exec redis-server {TLS_SCRIPT}", "a perl program (x.pl)",
                     id="perl-file"),
    ],
)  # fmt: skip
def test_script__what_it_runs_unseen_beside_a_server__is_one_more_unknown_server(
    script: str, what: str
) -> None:
    recognition = recognise({"image": "redis:7.4", "command": ["sh", "-c", script]})
    assert recognition.args == tuple(TLS_SCRIPT.split())
    assert [branch.args for branch in recognition.branches] == [None]
    records = stack(container("redis", image="redis:7.4", command=["sh", "-c", script]))
    assert only(run_rule("redis-tls-only", records)) == (
        f"Redis container redis must set port 0 on its command line or in a redis.conf uploaded "
        f"by this stack; its start script runs {what}, {UNSEEN}: run redis-server from the "
        f"command line, its settings on it or in an uploaded config file, so the setting is "
        f"unknown."
    )


@pytest.mark.parametrize(
    "script",
    [
        pytest.param(f"cat /etc/redis/redis.conf; exec redis-server {TLS_SCRIPT}", id="a-path-"
                     "argument"),
        pytest.param(f"/usr/bin/touch /data/x; exec redis-server {TLS_SCRIPT}", id="system-bin"),
        pytest.param(f"echo ok >/tmp/started; exec redis-server {TLS_SCRIPT}", id="redirection"),
        pytest.param(f"a#!/bin/sh\nexec redis-server {TLS_SCRIPT}", id="a-shebang-glued-to-a-word"),
        pytest.param(f"echo redis-server | xargs echo; exec redis-server {TLS_SCRIPT}",
                     id="xargs-echo"),
        pytest.param(f"python3 --version; exec redis-server {TLS_SCRIPT}",
                     id="interpreter-version"),
    ],
)  # fmt: skip
def test_script__programs_it_names_and_runs_visibly__add_no_server(script: str) -> None:
    recognition = recognise({"image": "redis:7.4", "command": ["sh", "-c", script]})
    assert (recognition.args, recognition.branches) == (tuple(TLS_SCRIPT.split()), ())


@pytest.mark.parametrize(
    "script",
    [
        "echo 'redis-server --port 6379' | sh",
        "sh < /etc/start-redis",  # names no server: the image decides below
    ],
)
def test_script__a_shell_reading_a_pipe_that_names_a_server__is_an_unknown_server(
    script: str,
) -> None:
    recognition = recognise({"image": "alpine:3.20", "command": ["sh", "-c", script]})
    if "redis-server" in script:
        assert (recognition.verdict, recognition.args) == (Verdict.SERVER, None)
    recognition = recognise({"image": "redis:7.4", "command": ["sh", "-c", script]})
    assert (recognition.verdict, recognition.args) == (Verdict.SERVER, None)


# -- env -S: env splits its string into the program and its arguments -----------------------------
@pytest.mark.parametrize(
    "command",
    [
        ["env", "-S", "redis-server --port 6379"],
        ["env", "-Sredis-server --port 6379"],
        ["env", "--split-string=redis-server --port 6379"],
        ["/usr/bin/env", "--split-string", "redis-server --port 6379"],
        ["sh", "-c", "exec env -S 'redis-server --port 6379'"],
    ],
)
def test_env_split_string__runs_the_server_in_it(command: list[str]) -> None:
    recognition = recognise({"image": "redis:7.4", "entrypoints": command})
    assert recognition.args == ("--port", "6379")
    records = stack(container("redis", image="redis:7.4", entrypoints=command))
    assert "it listens for plaintext connections." in only(run_rule("redis-tls-only", records))


# -- quoting: what the shell hands over as written -------------------------------------------------
@pytest.mark.parametrize(
    "password", ["'$REDIS_PASSWORD'", '"\\$REDIS_PASSWORD"', "'${REDIS_PASSWORD}'"]
)
def test_script__a_quoted_placeholder_password__is_that_text(password: str) -> None:
    # The container sets REDIS_PASSWORD long: quoted, the shell does not expand it.
    script = f"exec redis-server {TLS_SCRIPT} --requirepass {password}"
    records = stack(container("redis", image="redis:7.4", command=["sh", "-c", script],
                              envs=["REDIS_PASSWORD=" + STRONG]))  # fmt: skip
    assert only(run_rule("redis-auth-required", records)) == (
        "Redis container redis must require authentication with a password only its clients "
        "know; requirepass on its command line is a placeholder its start script quotes "
        "('$NAME' or \"\\$NAME\"), which the shell hands over as written, so the password is "
        "that text as this program writes it. Instead load users with #<sha256> passwords from "
        "an aclfile delivered as a protected file."
    )
    assert STRONG not in only(run_rule("redis-auth-required", records))


def test_script__a_double_quoted_variable__is_still_expanded() -> None:
    script = f'exec redis-server {TLS_SCRIPT} --requirepass "$REDIS_PASSWORD"'
    records = stack(container("redis", image="redis:7.4", command=["sh", "-c", script],
                              envs=["REDIS_PASSWORD=" + STRONG]))  # fmt: skip
    assert run_rule("redis-auth-required", records) == []


def test_script__an_escaped_dollar_in_double_quotes__is_one_literal_dollar() -> None:
    script = f'exec redis-server {TLS_SCRIPT} --requirepass "\\$P"'
    recognition = recognise({"image": "redis:7.4", "command": ["sh", "-c", script]})
    assert recognition.args == (*TLS_SCRIPT.split(), "--requirepass", "$P")


# -- wrappers and their options ----------------------------------------------------------------
@pytest.mark.parametrize(
    "wrapper",
    ["nice -n 5", "timeout -s KILL 10", "stdbuf -oL", "env -u B -C /data A=1", "exec -a name",
     "setpriv --reuid 1000", "chroot /", "ionice -c 3", "taskset 0x1"],
)  # fmt: skip
def test_script__a_wrapper_with_options__runs_the_server_after_them(wrapper: str) -> None:
    script = f"exec {wrapper} redis-server {TLS_SCRIPT} --port 6379"
    recognition = recognise({"image": "redis:7.4", "command": ["bash", "-c", script]})
    assert (recognition.args, recognition.branches) == ((*TLS_SCRIPT.split(), "--port", "6379"), ())


# -- exec form: argv's `&` and `;` are arguments, which no shell reads -----------------------------
@pytest.mark.parametrize("operator", ["&", ";", "&&", "|"])
def test_exec_form__an_operator_word_is_an_argument_and_what_follows_is_read(
    operator: str,
) -> None:
    # redis-server takes `&` as requirepass's value and `--port 6379` as an option of its own.
    command = ["redis-server", *TLS_ARGS, "--requirepass", operator, "--port", "6379"]
    recognition = recognise({"image": "redis:7.4", "command": command})
    assert recognition.args == tuple(command[1:])
    records = stack(container("redis", image="redis:7.4", command=command))
    assert "it listens for plaintext connections." in only(run_rule("redis-tls-only", records))


def test_exec_form__an_operator_word_after_a_shells_script_is_one_of_its_arguments() -> None:
    command = ["sh", "-c", 'exec "$@"', "sh", "redis-server", *TLS_ARGS, "--requirepass", "&",
               "--port", "6379"]  # fmt: skip
    recognition = recognise({"image": "redis:7.4", "command": command})
    assert recognition.args == tuple(command[5:])


# -- quoting: an ACL rule's password the shell hands over as written -------------------------------
@pytest.mark.parametrize("rule", ["'>$APP_PASSWORD'", "'>${APP_PASSWORD}'", '">\\$APP_PASSWORD"'])
def test_script__a_quoted_placeholder_acl_password__is_that_text(rule: str) -> None:
    script = (f"exec redis-server {TLS_SCRIPT} --user default off --user app on {rule} "
              "'~app:*' -@all +get")  # fmt: skip
    records = stack(container("redis", image="redis:7.4", command=["sh", "-c", script],
                              envs=["APP_PASSWORD=" + STRONG]))  # fmt: skip
    message = only(run_rule("redis-auth-required", records))
    assert message.startswith(
        "Redis container redis must require authentication with a password only its clients "
        "know; the >password of ACL user app is a placeholder"
    )
    assert "quoted by its start script" in message
    assert STRONG not in message


def test_script__an_unquoted_placeholder_acl_password__may_be_expanded() -> None:
    script = (f"exec redis-server {TLS_SCRIPT} --user default off --user app on "
              '">$APP_PASSWORD" \'~app:*\' -@all +get')  # fmt: skip
    records = stack(container("redis", image="redis:7.4", command=["sh", "-c", script],
                              envs=["APP_PASSWORD=" + STRONG]))  # fmt: skip
    assert run_rule("redis-auth-required", records) == []


def test_interpreter_as_the_only_command__is_an_application_not_an_unseen_server() -> None:
    recognition = recognise({"image": "alpine:3.20", "command": ["python3", "/app/main.py"]})
    assert recognition.verdict is Verdict.NOT_REDIS


# -- what a user must change where the pack cannot see the settings --------------------------------
def test_config_piped_into_stdin__names_what_writes_it_and_how_to_show_it() -> None:
    # hectorm/grist-deployment (tests/policy/external): a script's heredoc piped into `-`.
    script = "sh /etc/valkey/valkey.conf.sh | exec valkey-server -"
    records = stack(
        container(
            "redis",
            image="valkey/valkey:8",
            command=["sh", "-euc", script],
            uploads=[
                {
                    "file": "/etc/valkey/valkey.conf.sh",
                    "content": "exec cat - <<EOF\nport 6379\nEOF\n",
                }
            ],
        )
    )
    # The other message is the script's own: it runs a file, which may start another server.
    assert run_rule("redis-tls-only", records)[0] == (
        "Redis container redis must set port 0 on its command line or in a redis.conf uploaded "
        "by this stack; it reads config text from its stdin (`redis-server -`), which `sh "
        "/etc/valkey/valkey.conf.sh` writes into the pipe when the container starts, unseen by "
        "the pack: upload the config file itself and name it in place of `-` (`redis-server "
        "/path/redis.conf`), or give the options on the command line after `-`, so the setting "
        "is unknown."
    )


def test_config_piped_into_stdin__never_names_what_the_writer_is_given() -> None:
    script = f"echo 'requirepass {STRONG}' | exec redis-server -"
    records = stack(container("redis", image="redis:7.4", command=["sh", "-c", script]))
    message = only(run_rule("redis-tls-only", records))
    assert "which `echo` writes into the pipe" in message
    assert STRONG not in message


def test_uploaded_entrypoint_script__says_the_pack_does_not_run_it_and_what_to_give() -> None:
    # rukh93/foundation (tests/policy/external): the image's entrypoint replaced by an upload.
    records = stack(container("redis", image="redis:7.4",
                              entrypoints=["/usr/local/bin/redis-entrypoint.sh"],
                              uploads=[{"file": "/usr/local/bin/redis-entrypoint.sh",
                                        "content": "#!/bin/sh\nexec redis-server \"$@\"\n",
                                        "executable": True}]))  # fmt: skip
    assert only(run_rule("redis-tls-only", records)) == (
        "Redis container redis must set port 0 on its command line or in a redis.conf uploaded "
        "by this stack; it starts through /usr/local/bin/redis-entrypoint.sh, a script this "
        "stack gives it, which the pack does not run: give redis-server (or docker-entrypoint.sh) "
        "and its options as its command, with its settings on it or in an uploaded config file, "
        "so the setting is unknown."
    )


def test_bitnami_run_sh_from_a_shell__says_the_setup_is_skipped_and_what_to_give() -> None:
    # clickup/distributed-pacer (tests/policy/external): run.sh from `bash -c`.
    script = "/opt/bitnami/scripts/redis/run.sh --appendonly yes"
    records = stack(container("redis", image="bitnami/redis:7.2",
                              command=["bash", "-c", script]))  # fmt: skip
    assert only(run_rule("redis-tls-only", records)) == (
        "Redis container redis must set port 0 on its command line or in a redis.conf uploaded "
        "by this stack; its command runs Bitnami's /opt/bitnami/scripts/redis/run.sh itself, so "
        "the image's entrypoint skips the setup that writes redis.conf from the REDIS_* "
        'variables: give run.sh and its options as the command itself (["/opt/bitnami/scripts/'
        'redis/run.sh", "--appendonly", "yes", ...]), which the entrypoint sets up first, so the '
        "setting is unknown."
    )
