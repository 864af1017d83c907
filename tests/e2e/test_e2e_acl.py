"""Security model 2 (identity): the ACL in force on the running Redis (P-06, P-07, P-09).

Every session is a valid mTLS session with the app's certificate, so each refusal below comes
from Redis' authentication or ACL layer, not from TLS.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Final

import docker
import pytest

from infra.redis_acl import APP_COMMANDS, ROTATION_COMMANDS
from tests.e2e.hosts import container_host
from tests.e2e.probes import (
    APP_MATERIAL,
    ProbeContainer,
    app_auth,
    app_client_files,
    probe_labels,
    redis_tls,
)
from tests.e2e.stacks import Stack

pytestmark = pytest.mark.security("identity")

DANGEROUS = [
    ["CONFIG", "GET", "*"],
    ["CONFIG", "SET", "dir", "/tmp"],
    ["FLUSHALL"],
    ["FLUSHDB"],
    ["KEYS", "*"],
    ["MODULE", "LIST"],
    ["ACL", "LIST"],
    ["ACL", "SETUSER", "app", "+@all"],
    ["SHUTDOWN", "NOSAVE"],
    ["SAVE"],
    ["BGREWRITEAOF"],
    ["REPLICAOF", "127.0.0.1", "6379"],
    ["MONITOR"],
    ["CLIENT", "KILL", "TYPE", "normal"],
    ["EVAL", "return 1", "0"],
]


# ACL rules that carry a password or its hash: `>clear-text`, `<clear-text`, `#sha256`, `!sha256`.
_SECRET_RULE: Final = (">", "<", "#", "!")


def session(probe: ProbeContainer, stack: Stack, commands: list[list[Any]]) -> list[str]:
    result = probe.run("tls", **redis_tls(stack, **app_client_files(), commands=commands))
    assert result["error"] is None, f"the mTLS session itself failed: {result['error']}"
    return list(result["replies"])


def shown(reply: str) -> str:
    """What a failure message may show of a reply: an error reply (the server's own words),
    or only the type of any other (a refused command's data could be ACL rules or
    configuration, so it is never printed)."""
    return reply[:80] if reply.startswith("-") else f"a {reply[:1]!r} reply, content withheld"


def acl_rules(stack: Stack) -> dict[str, list[str]]:
    """{user: rules} of the ACL file Redis runs with, each password or hash rule reduced to its
    marker (`#<withheld>`), so that neither a failure message nor a local shows one."""
    __tracebackhide__ = True  # a failure in here would otherwise show the file's text
    acl = container_host(stack.redis).file("/etc/secure-redis/users.acl").content_string
    users = {}
    for line in acl.splitlines():
        if not line.strip():
            continue
        words = line.split()
        assert words[0] == "user", "users.acl has a line that is no user"
        assert len(words) >= 2, "users.acl has a user line without a name"
        users[words[1]] = [
            f"{rule[0]}<withheld>" if rule.startswith(_SECRET_RULE) else rule for rule in words[2:]
        ]
    return users


@pytest.mark.parametrize(
    ("command", "setting"),
    [
        (["DEBUG", "SLEEP", "0"], "enable-debug-command"),
        (["DEBUG", "OBJECT", "cache:x"], "enable-debug-command"),
        (["MODULE", "LOAD", "/tmp/evil.so"], "enable-module-command"),
    ],
    ids=["debug-sleep", "debug-object", "module-load"],
)
def test_acl__protected_commands_are_disabled_for_everyone(
    probe: ProbeContainer, stack: Stack, command: list[str], setting: str
) -> None:
    """REDIS-08: refused by the server's enable-* settings, before the ACL is even consulted."""
    replies = session(probe, stack, [app_auth(), command])
    refused = replies[1].startswith(f"-ERR {command[0]} command not allowed")
    assert refused, f"{command[0]} {command[1]} was not refused: {shown(replies[1])}"
    names_setting = setting in replies[1]
    assert names_setting, f"the refusal does not name {setting}: {shown(replies[1])}"


def test_acl__commands_before_auth_get_noauth(probe: ProbeContainer, stack: Stack) -> None:
    (reply,) = session(probe, stack, [["GET", "cache:anything"]])
    assert reply.startswith("-NOAUTH")


@pytest.mark.parametrize(
    "auth",
    [
        pytest.param(["AUTH", "app", "not-the-password"], id="app-wrong-password"),
        pytest.param(["AUTH", "default", "anything"], id="default-user-is-off"),
        pytest.param(["AUTH", {"file": f"{APP_MATERIAL}/redis.password"}], id="single-arg-auth"),
        pytest.param(["AUTH", "healthcheck", "not-the-password"], id="healthcheck-wrong-password"),
    ],
)
def test_acl__wrong_credentials_get_wrongpass(
    probe: ProbeContainer, stack: Stack, auth: list[Any]
) -> None:
    replies = session(probe, stack, [auth, ["GET", "cache:anything"]])
    assert replies[0].startswith("-WRONGPASS")
    assert replies[1].startswith("-NOAUTH"), "a failed AUTH leaves the session unauthenticated"


def test_acl__app_user_works_inside_its_prefix(probe: ProbeContainer, stack: Stack) -> None:
    key = f"{stack.settings.key_prefix}e2e-{uuid.uuid4().hex}"
    replies = session(
        probe, stack, [app_auth(), ["SET", key, "v"], ["GET", key], ["DEL", key], ["PING"]]
    )
    assert replies == ["+OK", "+OK", "$1 v", ":1", "+PONG"]


@pytest.mark.parametrize("command", DANGEROUS, ids=lambda c: "-".join(c[:2]).lower())
def test_acl__app_user_gets_noperm_for_dangerous_commands(
    probe: ProbeContainer, stack: Stack, command: list[str]
) -> None:
    replies = session(probe, stack, [app_auth(), command, ["PING"]])
    assert replies[0] == "+OK"
    refused = replies[1].startswith("-NOPERM")
    assert refused, f"{' '.join(command[:2])} was not refused: {shown(replies[1])}"
    assert replies[2] == "+PONG", "the server is still up and the session still usable"


@pytest.mark.parametrize("key", ["other:key", "xcache:key", "CACHE:key", "cache"])
@pytest.mark.parametrize("verb", ["GET", "SET", "DEL"])
def test_acl__app_user_gets_noperm_outside_its_prefix(
    probe: ProbeContainer, stack: Stack, key: str, verb: str
) -> None:
    command = [verb, key, "v"] if verb == "SET" else [verb, key]
    replies = session(probe, stack, [app_auth(), command])
    refused = replies[1].startswith("-NOPERM")
    assert refused, f"{verb} {key} was not refused: {shown(replies[1])}"


def test_acl__healthcheck_user_may_only_ping(stack: Stack) -> None:
    material = "/etc/secure-redis"
    base = (
        f'REDISCLI_AUTH="$(cat {material}/healthcheck.password)" redis-cli --tls '
        f"--cacert {material}/ca.crt --cert {material}/healthcheck.crt "
        f"--key {material}/healthcheck.key -h 127.0.0.1 -p {stack.settings.redis_port} "
        "--user healthcheck --no-auth-warning"
    )
    host = container_host(stack.redis)
    pong = host.run(f"{base} PING").stdout.strip() == "PONG"
    assert pong, "the healthcheck user's PING got no PONG"
    for command in ("GET cache:x", "INFO", "CONFIG GET port", "ACL WHOAMI"):
        refused = "NOPERM" in host.run(f"{base} {command}").stdout  # output never shown
        assert refused, f"the healthcheck user may run {command}"


def test_acl__file_in_force_turns_default_off_and_stores_only_hashes(stack: Stack) -> None:
    users = acl_rules(stack)  # passwords and hashes withheld: safe to show on failure
    assert set(users) == {"default", "app", "healthcheck", "reload", "exporter", "rotation"}
    assert "off" in users["default"], "user default is not off"
    for name, rules in users.items():
        assert "nopass" not in rules, f"user {name} has nopass"
        clear = [r for r in rules if r.startswith((">", "<"))]
        assert clear == [], f"user {name} has a clear-text password rule"
        if name != "default":
            assert "#<withheld>" in rules, f"user {name} has no password hash"
    assert f"~{stack.settings.key_prefix}*" in users["app"]
    app_commands = [r for r in users["app"] if r[:1] in "+-" and r != "-@all"]
    assert users["app"].index("-@all") < len(users["app"]) - len(app_commands)
    assert app_commands == [f"+{command}" for command in APP_COMMANDS], "not the allowlist"
    # The serving app may not WATCH (held names count against no memory limit): only the
    # rotation pass's own user, on the same prefix, may run WATCH/MULTI/EXEC/SCAN.
    assert "+watch" not in users["app"]
    assert f"~{stack.settings.key_prefix}*" in users["rotation"]
    rotation_commands = [r for r in users["rotation"] if r[:1] == "+"]
    assert rotation_commands == [f"+{command}" for command in ROTATION_COMMANDS]
    assert users["healthcheck"][-2:] == ["-@all", "+ping"]
    # The reload job's identity: CONFIG SET and ACL LOAD, no key, no channel, nothing else.
    assert users["reload"][-5:] == [
        "resetkeys",
        "resetchannels",
        "-@all",
        "+config|set",
        "+acl|load",
    ]
    # The metrics exporter's: INFO, ACL LOG and BGREWRITEAOF, no key, no channel, nothing else.
    assert users["exporter"][-6:] == [
        "resetkeys", "resetchannels", "-@all", "+info", "+acl|log", "+bgrewriteaof",
    ]  # fmt: skip


# What the exporter's identity tries on the deployed stack: its two grants must answer, every
# other command (a key read and write, another ACL or CONFIG subcommand, an admin command) must
# be NOPERM. Only the outcome's class is printed, never a reply.
EXPORTER_ATTEMPTS: Final = {
    "INFO": "ok",
    "ACL LOG": "ok",
    "PING": "NOPERM",
    "GET cache:x": "NOPERM",
    "SET cache:x 1": "NOPERM",
    "SCAN 0": "NOPERM",
    "CONFIG GET port": "NOPERM",
    "ACL LIST": "NOPERM",
    "ACL WHOAMI": "NOPERM",
    "ACL SETUSER exporter +@all": "NOPERM",
    "CLIENT LIST": "NOPERM",
    "FLUSHALL": "NOPERM",
    "KEYS *": "NOPERM",
    "SLOWLOG GET 1": "NOPERM",
}
_EXPORTER_PROBE: Final = """
import json, os, sys
import redis
from secure_cache.redis_exporter import ExporterSettings, connect
client = connect(ExporterSettings.from_env())
out = {}
for command in json.loads(sys.argv[1]):
    try:
        client.execute_command(*command.split())
        out[command] = "ok"
    except redis.exceptions.NoPermissionError:
        out[command] = "NOPERM"
    except redis.RedisError as exc:
        out[command] = type(exc).__name__
print(json.dumps(out))
"""


def test_acl__exporter_identity_may_read_info_and_the_acl_log_only(
    stack: Stack, docker_client: docker.DockerClient
) -> None:
    """With the exporter's own image, uid, volume and settings, on the backend network, as
    the exporter runs: INFO and ACL LOG answer, everything else is NOPERM."""
    exporter = docker_client.api.inspect_container(stack.exporter)
    output = docker_client.containers.run(
        exporter["Image"],
        entrypoint=["python3", "-c", _EXPORTER_PROBE, json.dumps(list(EXPORTER_ATTEMPTS))],
        name=f"secure-redis-e2e-probe-{stack.name}-exporter-{uuid.uuid4().hex[:8]}",
        labels=probe_labels(f"{stack.name}-exporter"),
        user=exporter["Config"]["User"],
        environment=[e for e in exporter["Config"]["Env"] if e.startswith(("REDIS_", "ENV"))],
        read_only=True,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges:true"],
        mem_limit="64m",
        network=stack.backend,
        mounts=[
            docker.types.Mount(
                "/etc/secure-cache", stack.object("redis-exporter-material"), read_only=True
            )
        ],
        remove=True,
    )
    assert json.loads(output) == EXPORTER_ATTEMPTS


@pytest.mark.parametrize(
    "command",
    ["PING", "GET cache:x", "CONFIG GET port", "ACL LIST", "ACL SETUSER x on", "FLUSHALL"],
)
def test_acl__reload_identity_is_refused_everything_but_its_reloads(
    stack: Stack, docker_client: docker.DockerClient, command: str
) -> None:
    """With the reload job's own volume (its certificate, key and password) and image, on the
    backend network, as the job runs: anything but CONFIG SET and ACL LOAD is NOPERM."""
    material = "/etc/secure-redis"
    script = (
        f'REDISCLI_AUTH="$(cat {material}/reload.password)" redis-cli --tls '
        f"--cacert {material}/ca.crt --cert {material}/reload.crt --key {material}/reload.key "
        f"-u rediss://redis:{stack.settings.redis_port} --user reload --no-auth-warning {command}"
    )
    job = docker_client.api.inspect_container(stack.object("reload-acl"))
    output = docker_client.containers.run(
        job["Image"],
        entrypoint=["sh", "-c", script],
        name=f"secure-redis-e2e-probe-{stack.name}-reload-{uuid.uuid4().hex[:8]}",
        labels=probe_labels(f"{stack.name}-reload"),
        user=job["Config"]["User"],  # the job's own (Redis's) uid, which owns its volume
        read_only=True,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges:true"],
        mem_limit="32m",
        network=stack.backend,
        mounts=[docker.types.Mount(material, stack.object("reload-material"), read_only=True)],
        remove=True,
    )
    refused = b"NOPERM" in output  # the reply itself is never shown
    assert refused, f"the reload user may run {command}"


def test_acl__passwords_have_the_environments_length(probe: ProbeContainer, stack: Stack) -> None:
    path = f"{APP_MATERIAL}/redis.password"
    facts = probe.run("file_facts", paths=[path])[path]
    assert facts["length"] == stack.settings.password_length
    assert facts["alnum"] is True
