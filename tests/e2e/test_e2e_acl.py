"""Security model 2 (identity): the ACL in force on the running Redis (P-06, P-07, P-09).

Every session is a valid mTLS session with the app's certificate, so each refusal below comes
from Redis' authentication or ACL layer, not from TLS.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e.hosts import container_host
from tests.e2e.probes import APP_MATERIAL, ProbeContainer, app_auth, app_client_files, redis_tls
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


def session(probe: ProbeContainer, stack: Stack, commands: list[list[Any]]) -> list[str]:
    result = probe.run("tls", **redis_tls(stack, **app_client_files(), commands=commands))
    assert result["error"] is None, f"the mTLS session itself failed: {result['error']}"
    return list(result["replies"])


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
    assert replies[1].startswith(f"-ERR {command[0]} command not allowed"), replies[1][:60]
    assert setting in replies[1]


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
    assert replies[1].startswith("-NOPERM"), f"{command[0]} was not refused: {replies[1][:60]}"
    assert replies[2] == "+PONG", "the server is still up and the session still usable"


@pytest.mark.parametrize("key", ["other:key", "xcache:key", "CACHE:key", "cache"])
@pytest.mark.parametrize("verb", ["GET", "SET", "DEL"])
def test_acl__app_user_gets_noperm_outside_its_prefix(
    probe: ProbeContainer, stack: Stack, key: str, verb: str
) -> None:
    command = [verb, key, "v"] if verb == "SET" else [verb, key]
    replies = session(probe, stack, [app_auth(), command])
    assert replies[1].startswith("-NOPERM"), f"{verb} {key}: {replies[1][:60]}"


def test_acl__healthcheck_user_may_only_ping(stack: Stack) -> None:
    material = "/etc/secure-redis"
    base = (
        f'REDISCLI_AUTH="$(cat {material}/healthcheck.password)" redis-cli --tls '
        f"--cacert {material}/ca.crt --cert {material}/healthcheck.crt "
        f"--key {material}/healthcheck.key -h 127.0.0.1 -p {stack.settings.redis_port} "
        "--user healthcheck --no-auth-warning"
    )
    host = container_host(stack.redis)
    assert host.run(f"{base} PING").stdout.strip() == "PONG"
    for command in ("GET cache:x", "INFO", "CONFIG GET port", "ACL WHOAMI"):
        assert "NOPERM" in host.run(f"{base} {command}").stdout, command


def test_acl__file_in_force_turns_default_off_and_stores_only_hashes(stack: Stack) -> None:
    acl = container_host(stack.redis).file("/etc/secure-redis/users.acl").content_string
    users = {line.split()[1]: line.split()[2:] for line in acl.splitlines() if line.strip()}
    assert set(users) == {"default", "app", "healthcheck"}
    assert "off" in users["default"]
    for name, rules in users.items():
        assert "nopass" not in rules, name
        assert not any(r.startswith(">") for r in rules), f"{name}: a clear-text password"
    assert "-@dangerous" in users["app"]
    assert "-@admin" in users["app"]
    assert f"~{stack.settings.key_prefix}*" in users["app"]
    assert "+@all" not in users["app"]
    assert users["healthcheck"][-2:] == ["-@all", "+ping"]


def test_acl__passwords_have_the_environments_length(probe: ProbeContainer, stack: Stack) -> None:
    path = f"{APP_MATERIAL}/redis.password"
    facts = probe.run("file_facts", paths=[path])[path]
    assert facts["length"] == stack.settings.password_length
    assert facts["alnum"] is True
