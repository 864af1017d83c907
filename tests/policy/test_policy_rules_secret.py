"""Pure secret, TLS/PKI and image rules: pass/fail tables on the foreign stack."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from policies.records import parse_records
from policies.rules import BY_NAME
from policies.rules._model import CONTAINER, RANDOM_PASSWORD, StackRule
from policies.rules._secrets import secret_named
from tests.policy import foreign
from tests.policy.support import (
    add,
    assert_reasons,
    mutate,
    run_rule,
    to_resources,
    upload,
    weak_rsa_certificate,
)

Change = Callable[[dict[str, Any]], object]
PASSWORD = foreign.PROBE_PASSWORD


def _set(**values: Any) -> Change:
    return lambda props: props.update(values)


def _upload(name: str, **values: Any) -> Change:
    return lambda props: upload(props, name).update(values)


def _health(script: str) -> Change:
    return _set(healthcheck={"tests": ["CMD-SHELL", script]})


def _material(name: str) -> str:
    return foreign.material()[name].decode()


# An entrypoint script (rukh93/foundation's, tests/policy/external/) that puts the password it is
# given in its environment into an ACL rule and on redis-server's command line: the file names
# the variable, it holds no password, and must stay executable.
START_SCRIPT = """#!/bin/bash
set -e
if [ -n "$REDIS_USERNAME" ] && [ -n "$REDIS_PASSWORD" ]; then
  echo "user $REDIS_USERNAME on >$REDIS_PASSWORD ~* +@all" > /tmp/redis_acl.conf
  exec redis-server /usr/local/etc/redis/redis.conf --aclfile /tmp/redis_acl.conf
elif [ -n "$REDIS_PASSWORD" ]; then
  exec redis-server /usr/local/etc/redis/redis.conf --requirepass "${REDIS_PASSWORD}"
fi
"""


CASES = [
    pytest.param("secret-env-not-plain", "web",
                 _set(envs=["CACHE_URL=rediss://cache:6380", f"CACHE_PASSWORD={PASSWORD}"]),
                 True, id="secret-02-fail-password-env"),
    pytest.param("secret-env-not-plain", "web",
                 _set(envs=[f"CACHE_URL=rediss://web:{PASSWORD}@cache:6380"]), True,
                 id="secret-02-fail-url-userinfo"),
    pytest.param("secret-env-not-plain", "web", _set(envs=["DATA_KEYS=a,b"]), True,
                 id="secret-02-fail-keys"),
    pytest.param("secret-env-not-plain", "web",
                 _set(envs=["CACHE_PASSWORD_FILE=/run/pw", "CACHE_KEY_PREFIX=shop:"]), False,
                 id="secret-02-pass-file-and-prefix"),
    pytest.param("secret-env-not-plain", "web",
                 _set(envs=[f"SECRET_KEY_BASE={PASSWORD}", f"DB_PASSWORD_PLAIN={PASSWORD}"]),
                 True, id="secret-02-fail-secret-word-not-last"),
    pytest.param("secret-env-not-plain", "web",
                 _set(envs=["ALLOW_EMPTY_PASSWORD=yes", "REDIS_AUTH=true", "USE_TOKEN=off",
                            "PASSWORD_MIN_LENGTH=12", "TOKEN_TTL=3600", "SECRET_NAME=app-db",
                            "SECRET_STORE_REGION=eu-west-1", "TOKEN_ROTATION_DAYS=30",
                            "GITHUB_TOKEN_PERMISSIONS=read"]),
                 False, id="secret-02-pass-flags-and-settings-about-a-secret"),
    pytest.param("secret-argv-not-plain", "cache",
                 lambda p: p["command"].extend(["--requirepass", PASSWORD]), True,
                 id="secret-03-fail-requirepass"),
    pytest.param("secret-argv-not-plain", "cache",
                 _set(healthcheck={"tests": ["CMD", "redis-cli", "--tls", "-a", PASSWORD,
                                             "ping"]}), True, id="secret-03-fail-cli-a"),
    pytest.param("secret-argv-not-plain", "cache",
                 _set(healthcheck={"tests": ["CMD", "keydb-cli", "-a", PASSWORD, "ping"]}), True,
                 id="secret-03-fail-keydb-cli-a"),
    pytest.param("secret-argv-not-plain", "cache",
                 _set(healthcheck={"tests": ["CMD-SHELL",
                                             f"redis-cli --tls AUTH probe {PASSWORD}"]}),
                 True, id="secret-03-fail-auth-in-shell"),
    pytest.param("secret-argv-not-plain", "web", _set(command=["cp", "-a", "/src", "/dst"]),
                 False, id="secret-03-pass-cp-a-is-not-redis-cli"),
    pytest.param("secret-argv-not-plain", "web", _set(command=["sh", "-c", "run > /dev/null"]),
                 False, id="secret-03-pass-shell-redirect"),
    pytest.param("secret-state-encrypted", "cache", _set(uploads=[
        {"file": "/x/tls.key", "content": _material("tls.key"), "permissions": "0400"}]),
                 True, id="secret-04-fail-key-upload-without-aso"),
    # A health check that names the password only as a variable, or reads it from a file: the
    # state holds that name, not the password (the check's argv still shows it at run time).
    pytest.param("secret-state-encrypted", "cache",
                 _health('redis-cli --tls -a "$REDIS_PASSWORD" ping'), False,
                 id="secret-04-pass-health-check-cli-a-variable"),
    pytest.param("secret-state-encrypted", "cache",
                 _health('redis-cli --tls --pass "${REDIS_PASSWORD:?unset}" ping'), False,
                 id="secret-04-pass-health-check-cli-pass-variable"),
    pytest.param("secret-state-encrypted", "cache",
                 _health("REDISCLI_AUTH=$REDIS_PASSWORD redis-cli --tls ping"), False,
                 id="secret-04-pass-health-check-auth-variable"),
    pytest.param("secret-state-encrypted", "cache",
                 _health("redis-cli --tls -a $(cat /run/secrets/redis) ping"), False,
                 id="secret-04-pass-health-check-cli-a-file"),
    pytest.param("secret-state-encrypted", "cache",
                 _health(f"redis-cli --tls -a '{PASSWORD}' ping"), True,
                 id="secret-04-fail-health-check-cli-a-literal"),
    pytest.param("secret-state-encrypted", "cache",
                 _health('redis-cli --tls -a "${REDIS_PASSWORD:-changeme}" ping'), True,
                 id="secret-04-fail-health-check-cli-a-default"),
    pytest.param("secret-state-encrypted", "cache",
                 _health(f"REDISCLI_AUTH={PASSWORD} redis-cli --tls ping"), True,
                 id="secret-04-fail-health-check-auth-literal"),
    pytest.param("secret-argv-not-plain", "cache",
                 _health(f"REDISCLI_AUTH={PASSWORD} redis-cli --tls ping"), True,
                 id="secret-03-fail-health-check-auth-literal"),
    pytest.param("secret-argv-not-plain", "cache",
                 _health("REDISCLI_AUTH=$REDIS_PASSWORD redis-cli --tls ping"), False,
                 id="secret-03-pass-health-check-auth-variable"),
    pytest.param("secret-state-encrypted", "cache", lambda p: p.update(command=[
        "sh", "-c", 'exec redis-server /secrets/redis.conf --masterauth "$MASTER_PASSWORD"']),
                 False, id="secret-04-pass-command-masterauth-variable"),
    pytest.param("secret-state-encrypted", "cache", lambda p: p.update(command=[
        "redis-server", "/secrets/redis.conf", "--masterauth", PASSWORD]),
                 True, id="secret-04-fail-command-masterauth-literal"),
    pytest.param("secret-upload-file-mode", "cache-loader", _upload("tls.key", permissions=None),
                 True, id="tls-10-fail-mode-unset"),
    pytest.param("secret-upload-file-mode", "cache-loader", _upload("probe.pw", permissions="644"),
                 True, id="tls-10-fail-0644"),
    pytest.param("secret-upload-file-mode", "cache-loader",
                 _upload("tls.key", permissions="0400", executable=True), True,
                 id="tls-10-fail-executable"),
    pytest.param("secret-upload-file-mode", "cache-loader", _upload("tls.crt", permissions="0644"),
                 False, id="tls-10-pass-cert-0644"),
    pytest.param("secret-upload-file-mode", "cache-loader", lambda p: p["uploads"].append(
        {"file": "/usr/local/bin/start.sh", "content": START_SCRIPT, "executable": True}),
                 False, id="tls-10-pass-script-naming-password-variables"),
    pytest.param("secret-upload-file-mode", "cache-loader", lambda p: p["uploads"].append(
        {"file": "/usr/local/bin/start.sh", "executable": True,
         "content": "exec redis-server --requirepass ${REDIS_PASSWORD:-changeme}\n"}),
                 True, id="tls-10-fail-script-with-a-default-password"),
    pytest.param("secret-upload-file-mode", "cache-loader", lambda p: p["uploads"].append(
        {"file": "/usr/local/etc/redis/redis.conf", "content": f"requirepass {PASSWORD}\n"}),
                 True, id="tls-10-fail-conf-with-a-password"),
    pytest.param("secret-not-shared-in-plain-form", "web",
                 lambda p: p["envs"].append(f"HINT={PASSWORD}"), True,
                 id="fail-probe-password-in-web-env"),
    pytest.param("secret-not-shared-in-plain-form", "edge-net",
                 _set(labels=[{"label": "k", "value": _material("client.key")}]), True,
                 id="fail-key-in-network-label"),
    pytest.param("tls-ca-key-not-deployed", "web-loader", lambda p: p["uploads"].append(
        {"file": "/stage/ca.key", "content": _material("ca.key"), "permissions": "0400"}),
                 True, id="tls-10-fail-ca-key-uploaded"),
    pytest.param("tls-private-key-unique", "web-loader",
                 _upload("client.key", content=_material("tls.key")), True,
                 id="tls-08-fail-server-key-reused-by-client"),
    pytest.param("tls-server-certificate-profile", "cache-loader",
                 _upload("tls.crt", content=_material("client.crt")), True,
                 id="tls-08-fail-client-cert-served"),
    pytest.param("tls-server-certificate-profile", "cache-loader",
                 _upload("tls.crt", content=_material("ca.crt")), True,
                 id="tls-08-fail-ca-cert-served"),
    pytest.param("tls-server-certificate-profile", "cache",
                 lambda p: p["networksAdvanced"][0].update(aliases=["cache", "redis"]), False,
                 id="tls-08-pass-alias-nobody-dials"),
    pytest.param("tls-server-certificate-profile", "web",
                 _set(envs=["CACHE_URL=rediss://shop-prod-cache:6380"]), True,
                 id="tls-08-fail-dialled-name-not-in-san"),
    pytest.param("tls-server-certificate-profile", "cache-loader",
                 _upload("tls.crt", content="[secret]"), True, id="tls-08-fail-unreadable"),
    pytest.param("tls-private-key-strong", "cache-loader",
                 _upload("tls.crt", content=weak_rsa_certificate()), True,
                 id="tls-07-fail-rsa-1024-cert"),
    pytest.param("image-container-pinned", "web", _set(image="shop/web:1.2"), True,
                 id="cis-5.28-fail-tag"),
    pytest.param("image-container-pinned", "web", _set(image="sha256:abc"), True,
                 id="cis-5.28-fail-short-id"),
    pytest.param("image-tag-not-latest", "redis-image", _set(name="redis"), True,
                 id="ckv-docker-7-fail-no-tag"),
    pytest.param("image-tag-not-latest", "redis-image", _set(name="localhost:5000/redis:latest"),
                 True, id="ckv-docker-7-fail-latest-with-registry-port"),
    pytest.param("image-tag-not-latest", "redis-image", _set(name="localhost:5000/redis"),
                 True, id="ckv-docker-7-fail-registry-port-is-not-a-tag"),
    pytest.param("image-tls-verification-enabled", "web",
                 lambda p: p["envs"].append("NODE_TLS_REJECT_UNAUTHORIZED=0"), True,
                 id="image-03-fail-env"),
    pytest.param("image-tls-verification-enabled", "redis-image",
                 _set(build={"buildArgs": {"PIP_TRUSTED_HOST": "pypi.example"}}), True,
                 id="image-03-fail-build-arg"),
    pytest.param("image-tls-verification-enabled", "web",
                 lambda p: p["envs"].append("PYTHONHTTPSVERIFY=1"), False, id="image-03-pass-1"),
    pytest.param("secret-image-build-args", "redis-image",
                 _set(build={"buildArgs": {"NPM_TOKEN": "abc123"}}), True,
                 id="secret-05-fail-token"),
    pytest.param("secret-image-build-args", "redis-image",
                 _set(build={"buildArgs": {"SECRET_ARG": "supersecret", "TOKEN_URL": "x"}}),
                 True, id="secret-05-fail-secret-word-first"),
    pytest.param("image-registry-trusted", "redis-image", _set(name="evil.example/redis:7"),
                 True, id="cis-4.2-fail-registry"),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "resource", "change", "fails"), CASES)
def test_secret_tls_image_rule(
    request: pytest.FixtureRequest, rule: str, resource: str, change: Change, fails: bool
) -> None:
    messages = run_rule(rule, mutate(foreign.records(), resource, change))
    assert bool(messages) is fails, messages
    if fails:
        assert_reasons("secret", request, messages)


# Variable names from public programs (found with the code search, 2026-11-30): settings about a
# token or password, whose value is a lifetime, a count or a 1/0 switch, and real secrets.
SETTING_NAMES = [
    "ACCESS_TOKEN_EXPIRES_IN=1h",  # jsonwebtoken's expiresIn, the usual Node.js spelling
    "JWT_TOKEN_EXPIRES_IN=30d",
    "ACCESS_TOKEN_EXPIRED=60",
    "JWT_ACCESS_TOKEN_EXPIRE=30",
    "ACCESS_TOKEN_EXPIRE_TIME=1800",
    "REFRESH_TOKEN_DURATION=7d",
    "TOKEN_LIFETIME=3600",
    "LOGIN_TOKEN_LIFESPAN_MS=604800000",
    "ACCESS_TOKEN_TTL_MS=900000",
    "SESSION_SECRET_MAX_AGE=86400",
    "PASSWORD_EXPIRY_DAYS=90",
    "DB_SECRET_ARN=arn:aws:secretsmanager:us-east-1:123456789012:secret:db",  # where, not what
    "PASSWORD_SALT_ROUNDS=10",
    "PASSWORD_HASH_ITERATIONS=600000",
    "PASSWORD_HASH_MEMORY_KB=19456",
    "HEMMELIG_MAX_PASSWORD_ATTEMPTS=5",
    "MYSQL_ALLOW_EMPTY_PASSWORD=1",  # the MySQL image takes any non-empty value
    "MARIADB_RANDOM_ROOT_PASSWORD=1",
    "DISABLE_PASSWORD_LOGIN=0",
    "REDIS_PASSWORD_FILE=/run/secrets/redis",
    "GF_SECURITY_ADMIN_PASSWORD__FILE=/run/secrets/grafana",
    "PASSWORD_HASHERS=argon2",  # Django's list of hashing algorithms
    "ACCESS_TOKEN_KEY=access-token",  # the cookie the token is kept under, named by the variable
    "REFRESH_TOKEN_KEY=refresh_token",
]
SECRET_NAMES = [
    "JWT_SECRET_KEY=jwt-secret",  # a weak secret, not the name of where one is kept
    "SECRET_KEY=secret",
    "API_KEY=api",
    "ACCESS_TOKEN_KEY=" + PASSWORD,
    "PASSWORD_HASH=" + PASSWORD,
    "SECRET_KEY_BASE=" + PASSWORD,
    "JWT_ACCESS_TOKEN_SECRET=" + PASSWORD,
    "DB_PASSWORD_PLAIN=" + PASSWORD,
    "SECRET_TOKEN_V2=" + PASSWORD,
    "REDIS_PASSWORD=123456",  # a number is a secret where the name ends in the secret's word
    "SECRET_KEY_BASE=" + "7" * 40,  # and no count or duration is 40 digits long
    "REDIS_PASSWORD=" + PASSWORD,
]


# The password is drawn per run: ids must not show it, or two xdist workers collect
# different tests.
@pytest.mark.parametrize(
    "variable",
    SETTING_NAMES + SECRET_NAMES,
    ids=lambda variable: variable.replace(PASSWORD, "<password>"),
)
def test_secret_named__a_setting_about_a_secret_is_not_the_secret(variable: str) -> None:
    name, value = variable.split("=", 1)
    assert secret_named(name, value) is (variable in SECRET_NAMES)


@pytest.mark.parametrize(
    "rule", ["secret-env-not-plain", "secret-argv-not-plain", "secret-not-shared-in-plain-form"]
)
def test_messages_never_echo_the_secret(rule: str) -> None:
    stack = mutate(foreign.records(), "web", lambda p: p.update(
        envs=[f"CACHE_PASSWORD={PASSWORD}"], command=["redis-cli", "-a", PASSWORD]))  # fmt: skip
    messages = run_rule(rule, stack)
    assert messages
    assert not any(PASSWORD in m for m in messages)


# (type, props, fails) for resources the foreign stack does not have.
EXTRA = [
    pytest.param("tls:index/privateKey:PrivateKey", {"algorithm": "ECDSA"}, True,
                 "tls-private-key-strong", id="tls-07-fail-default-p224"),
    pytest.param("tls:index/privateKey:PrivateKey", {"algorithm": "RSA", "rsaBits": 1024}, True,
                 "tls-private-key-strong", id="tls-07-fail-rsa-1024"),
    pytest.param("tls:index/privateKey:PrivateKey", {"algorithm": "RSA"}, False,
                 "tls-private-key-strong", id="tls-07-pass-rsa-default-2048"),
    pytest.param("tls:index/privateKey:PrivateKey",
                 {"algorithm": "ECDSA", "ecdsaCurve": "P384"}, False,
                 "tls-private-key-strong", id="tls-07-pass-p384"),
    pytest.param("pulumi-python:dynamic/acme:Cert", {"keyAlgorithm": "ecdsa-p224"}, True,
                 "tls-private-key-strong", id="tls-07-fail-dynamic-p224"),
    pytest.param("pulumi-python:dynamic/acme:Cert", {"keyAlgorithm": "rsa-3072"}, False,
                 "tls-private-key-strong", id="tls-07-pass-dynamic-rsa-3072"),
    pytest.param("tls:index/locallySignedCert:LocallySignedCert",
                 {"isCaCertificate": True, "allowedUses": ["server_auth"]}, True,
                 "tls-certificate-profile", id="tls-08-fail-leaf-is-ca"),
    pytest.param("tls:index/locallySignedCert:LocallySignedCert",
                 {"allowedUses": ["digital_signature"]}, True,
                 "tls-certificate-profile", id="tls-08-fail-no-auth-usage"),
    pytest.param("tls:index/locallySignedCert:LocallySignedCert",
                 {"allowedUses": ["key_encipherment", "server_auth"]}, False,
                 "tls-certificate-profile", id="tls-08-pass-server"),
    pytest.param("tls:index/selfSignedCert:SelfSignedCert",
                 {"isCaCertificate": True, "allowedUses": ["digital_signature"]}, True,
                 "tls-certificate-profile", id="tls-08-fail-ca-cannot-sign"),
    pytest.param("tls:index/locallySignedCert:LocallySignedCert",
                 {"validityPeriodHours": 24 * 800, "earlyRenewalHours": 24}, True,
                 "tls-certificate-validity-bounded", id="tls-09-fail-800-days"),
    pytest.param("pulumi-python:dynamic/acme:Leaf", {"usage": "server", "validityDays": 90},
                 True, "tls-certificate-validity-bounded", id="tls-09-fail-no-renewal"),
    pytest.param("random:index/randomPassword:RandomPassword", {"length": 16}, True,
                 "secret-password-length", id="redis-07-fail-16"),
    pytest.param("random:index/randomPassword:RandomPassword", {}, True,
                 "secret-password-length", id="redis-07-fail-length-unset"),
    pytest.param("random:index/randomPassword:RandomPassword", {"length": 48}, False,
                 "secret-password-length", id="redis-07-pass-48"),
    pytest.param("pulumi-python:dynamic/acme:GeneratedPassword", {"length": 12}, True,
                 "secret-password-length", id="redis-07-fail-dynamic-12"),
    pytest.param("pulumi-python:dynamic/acme:DataKeyring", {"generation": 1}, False,
                 "secret-password-length", id="redis-07-pass-not-a-password"),
    pytest.param("pulumi:providers:docker", {"keyMaterial": "-----BEGIN..."}, True,
                 "secret-provider-credentials-inline", id="secret-06-fail-key-material"),
    pytest.param("docker:index/image:Image", {"imageName": "shop/web:latest"}, True,
                 "image-tag-not-latest", id="ckv-docker-7-fail-image-latest"),
]  # fmt: skip


@pytest.mark.parametrize(("type_", "props", "fails", "rule"), EXTRA)
def test_rule_on_added_resource(type_: str, props: dict[str, Any], fails: bool, rule: str) -> None:
    stack = add(foreign.records(), type_, "extra", props)
    assert bool(run_rule(rule, stack)) is fails


@pytest.mark.parametrize(
    ("declared", "length", "reason"),
    [
        pytest.param(None, 32, "at least 48 characters", id="undeclared-is-production"),
        pytest.param("ENVIRONMENT=development", 32, None, id="development-floor-24"),
        pytest.param("ENVIRONMENT=staging", 24, "at least 32 characters", id="staging-floor-32"),
        pytest.param("NODE_ENV=production", 32, "at least 48 characters", id="node-env-production"),
        pytest.param(
            "ENVIRONMENT=qa-eu", 32, "at least 48 characters", id="unknown-word-strictest"
        ),
    ],
)
def test_password_floor__follows_the_declared_environment_not_the_stack_name(
    declared: str | None, length: int, reason: str | None
) -> None:
    stack = add(foreign.records(), "random:index/randomPassword:RandomPassword", "extra",
                {"length": length})  # fmt: skip
    if declared:
        stack = mutate(stack, "web", lambda p: p["envs"].append(declared))
    messages = run_rule("secret-password-length", stack)
    if reason is None:
        assert messages == []
    else:
        assert len(messages) == 1
        assert reason in messages[0]


LEAF = "pulumi-python:dynamic/acme:LeafCertificate"
LOOSE = {"tls-certificate-validity-bounded": {"maximumLeafValidityDays": 397}}


# (declared environment, leaf validity in days, policy config): the environment's floor holds
# whatever the config says, and a config below it tightens it.
@pytest.mark.parametrize(
    ("declared", "days", "config", "fails"),
    [
        pytest.param(None, 31, LOOSE, True, id="tls-09-fail-undeclared-31-days-config-397"),
        pytest.param("ENVIRONMENT=production", 31, LOOSE, True,
                     id="tls-09-fail-production-31-days-config-397"),
        pytest.param("ENVIRONMENT=production", 31, None, True,
                     id="tls-09-fail-production-31-days-default-config"),
        pytest.param("ENVIRONMENT=production", 30, LOOSE, False,
                     id="tls-09-pass-production-30-days-config-397"),
        pytest.param("ENVIRONMENT=staging", 91, LOOSE, True,
                     id="tls-09-fail-staging-91-days-config-397"),
        pytest.param("ENVIRONMENT=staging", 90, LOOSE, False,
                     id="tls-09-pass-staging-90-days-config-397"),
        pytest.param("ENVIRONMENT=development", 91, LOOSE, True,
                     id="tls-09-fail-development-91-days-config-397"),
        pytest.param("ENVIRONMENT=development", 90, LOOSE, False,
                     id="tls-09-pass-development-90-days-config-397"),
        pytest.param("ENVIRONMENT=development", 61,
                     {"tls-certificate-validity-bounded": {"maximumLeafValidityDays": 60}}, True,
                     id="tls-09-fail-development-config-tightens-to-60"),
    ],
)  # fmt: skip
def test_leaf_validity__the_environments_floor_holds_against_the_config(
    request: pytest.FixtureRequest,
    declared: str | None,
    days: int,
    config: dict[str, dict[str, int]] | None,
    fails: bool,
) -> None:
    stack = add(foreign.records(), LEAF, "extra",
                {"usage": "server", "validityDays": days, "renewBeforeDays": 10})  # fmt: skip
    if declared:
        stack = mutate(stack, "web", lambda p: p["envs"].append(declared))
    rule_config = (config or {}).get("tls-certificate-validity-bounded")
    messages = run_rule("tls-certificate-validity-bounded", stack, rule_config)
    assert bool(messages) is fails, messages
    if fails:
        assert_reasons("secret", request, messages)


def test_leaf_validity__pulumi_tls_hours_meet_the_production_floor() -> None:
    """pulumi-tls states validity in hours: 30 days and one hour is over production's 30."""
    cert = "tls:index/locallySignedCert:LocallySignedCert"
    over = add(foreign.records(), cert, "extra",
               {"validityPeriodHours": 30 * 24 + 1, "earlyRenewalHours": 24})  # fmt: skip
    at = add(foreign.records(), cert, "extra",
             {"validityPeriodHours": 30 * 24, "earlyRenewalHours": 24})  # fmt: skip
    config = LOOSE["tls-certificate-validity-bounded"]
    assert run_rule("tls-certificate-validity-bounded", over, config) == [
        "LocallySignedCert extra must be valid for at most 30 days in this stack's environment "
        "and renew early (earlyRenewalHours / renewBeforeDays)."
    ]
    assert run_rule("tls-certificate-validity-bounded", at, config) == []


@pytest.mark.parametrize(
    ("type_", "props"),
    [
        pytest.param(LEAF, {"usage": "client", "renewBeforeDays": 10}, id="dynamic"),
        pytest.param("tls:index/locallySignedCert:LocallySignedCert", {"earlyRenewalHours": 24},
                     id="pulumi-tls"),
    ],
)  # fmt: skip
def test_leaf_validity__a_leaf_stating_none_is_rejected(type_: str, props: dict[str, Any]) -> None:
    """No stated validity cannot be confirmed within the limit: fail closed, not as 0 days."""
    stack = add(foreign.records(), type_, "extra", props)
    stack = mutate(stack, "web", lambda p: p["envs"].append("ENVIRONMENT=development"))
    messages = run_rule("tls-certificate-validity-bounded", stack)
    assert len(messages) == 1
    assert "must be valid for at most 90 days" in messages[0]


def test_stack_reference_feeding_a_container_is_rejected() -> None:
    with_reference = add(foreign.records(), "pulumi:pulumi:StackReference", "other", {})
    urn = with_reference[-1].urn
    stack = [
        r if r.name != "web" else type(r)(r.type, r.name, r.props, r.urn, {"dependencies": [urn]})
        for r in with_reference
    ]
    assert run_rule("secret-stack-reference-isolated", with_reference) == []
    assert run_rule("secret-stack-reference-isolated", stack)


# Flags named for a secret, of any program, as public programs pass them (redis_exporter's
# --redis.password: tests/policy/external/dy56go-mbp-back-redis6-and-exporter-privileged.json;
# Go's single-dash flags; --name=value), and flags about a secret that carry none.
SECRET_FLAGS = [
    (["--redis.addr", "redis://cache:6379", "--redis.password", PASSWORD], "--redis.password"),
    (["-redis.password", PASSWORD], "-redis.password"),
    (["--db-password=" + PASSWORD], "--db-password="),
    (["sh", "-c", f"exec exporter --api-token {PASSWORD}"], "--api-token"),
]
NOT_SECRET_FLAGS = [
    ["--password-file", "/run/secrets/cache"],
    ["--token-ttl", "3600"],
    ["--tls-auth-clients", "yes"],
    ["--auth", "--verbose"],  # a switch: the next word is another flag, not its value
    ["--require-password=true"],
]


def _argv_stack(command: list[str]) -> list[Any]:
    return parse_records(
        [{"type": CONTAINER, "name": "exporter",
          "props": {"image": "oliver006/redis_exporter:v1.62.0", "command": command}}],
        source="test", stack="qa", project="shop",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("command", "named"),
    SECRET_FLAGS,
    ids=[named for _, named in SECRET_FLAGS],
)
def test_argv_flag_named_for_a_secret__is_found_whatever_the_program(
    command: list[str], named: str
) -> None:
    messages = run_rule("secret-argv-not-plain", _argv_stack(command))
    assert messages == [
        f"Container exporter must not put secrets on its command line ({named}); read them "
        f"from files, as argv is visible in docker inspect and ps."
    ]
    assert PASSWORD not in messages[0]


@pytest.mark.parametrize("command", NOT_SECRET_FLAGS, ids=" ".join)
def test_argv_flag_about_a_secret__is_not_one(command: list[str]) -> None:
    assert run_rule("secret-argv-not-plain", _argv_stack(command)) == []


# -- a short password a Redis server is given (REDIS-07) ------------------------------------------
# secret-password-length judged only passwords the stack generates; `--requirepass demo`
# (zhenyangze/spring-boot-demo, tests/policy/external/zhenyangze-spring-boot-demo-host-network-
# replica-and-sentinel.json) and redis.conf's example `foobared` passed every rule.
LONG_ENOUGH = hashlib.sha256(b"stand-in").hexdigest()  # 64 characters, not a real credential


def only(messages: list[str]) -> str:
    assert len(messages) == 1, messages
    return messages[0]


def _redis_stack(
    *, envs: tuple[str, ...] = ("ENVIRONMENT=development",), **props: Any
) -> list[Any]:
    props.setdefault("image", "redis:7.4")
    return parse_records(
        [{"type": CONTAINER, "name": "redis", "props": {"envs": list(envs), **props}}],
        source="test", stack="qa", project="shop",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("props", "what"),
    [
        pytest.param({"command": ["redis-server", "--requirepass", "demo"]}, "its requirepass",
                     id="requirepass-demo"),
        pytest.param({"command": ["redis-server", "/r/redis.conf"],
                      "uploads": [{"file": "/r/redis.conf", "content": "requirepass foobared\n"}]},
                     "its requirepass", id="requirepass-foobared-in-conf"),
        pytest.param({"command": ["sh", "-c", "exec redis-server --requirepass redis123"]},
                     "its requirepass", id="requirepass-behind-a-shell"),
        pytest.param({"command": ["sh", "-c", "redis-server --requirepass ${REDIS_PASSWORD}"],
                      "envs": ("REDIS_PASSWORD=bismillah", "ENVIRONMENT=development")},
                     "its requirepass", id="variable-the-container-sets-expanded-by-sh"),
        pytest.param({"command": ["redis-server", "--user", "app", "on", ">app", "~a:*", "+get"]},
                     "the >password of ACL user app", id="acl-user"),
        pytest.param({"image": "bitnami/redis:7.2",
                      "envs": ("REDIS_PASSWORD=password", "ENVIRONMENT=development")},
                     "its requirepass", id="bitnami-variable"),
    ],
)  # fmt: skip
def test_short_password_given_to_redis__is_rejected(props: dict[str, Any], what: str) -> None:
    message = only(run_rule("secret-password-length", _redis_stack(**props)))
    # A Bitnami image's message goes on to say which of its variables set what.
    assert message.startswith(
        f"Redis container redis must be given passwords of at least 24 characters in this "
        f"stack's environment; {what} is shorter, so it can be guessed at Redis's speed. "
        f"Generate it (pulumi_random's RandomPassword with length 24 or more) and deliver it "
        f"as a protected file: an aclfile with #<sha256> passwords."
    )


def test_short_password_given_to_redis__follows_the_declared_environment() -> None:
    command = ["redis-server", "--requirepass", LONG_ENOUGH[:32]]
    assert run_rule("secret-password-length", _redis_stack(command=command)) == []
    production = _redis_stack(command=command, envs=("ENVIRONMENT=production",))  # floor 48
    assert "at least 48 characters" in only(run_rule("secret-password-length", production))


@pytest.mark.parametrize(
    "props",
    [
        pytest.param({"command": ["redis-server", "--requirepass", LONG_ENOUGH]}, id="long"),
        pytest.param({"command": ["sh", "-c", "exec redis-server --requirepass $REDIS_PASSWORD"]},
                     id="variable"),
        pytest.param({"command": ["sh", "-c",
                                  'exec redis-server --requirepass "$(cat /run/secrets/pw)"']},
                     id="command-substitution"),
        pytest.param({"command": ["redis-server", "--aclfile", "/r/users.acl", "--requirepass",
                                  "demo"],
                      "uploads": [{"file": "/r/users.acl",
                                   "content": f"user app on #{LONG_ENOUGH} ~a:* +get\n"}]},
                     id="aclfile-makes-redis-ignore-requirepass"),
        pytest.param({"command": ["redis-server", "--requirepass", "demo", "--user", "default",
                                  "off"]},
                     id="user-default-makes-redis-ignore-requirepass"),
        pytest.param({"command": ["redis-server", "--user", "default", "off", "--requirepass",
                                  "demo"]},
                     id="user-default-before-requirepass-too"),
        pytest.param({"image": "bitnami/redis:7.2",
                      "envs": (f"REDIS_PASSWORD={LONG_ENOUGH}", "ENVIRONMENT=development")},
                     id="bitnami-variable-long"),
        pytest.param({"command": ["sh", "-c", "redis-server --requirepass $P"],
                      "envs": (f"P={LONG_ENOUGH}", "ENVIRONMENT=development")},
                     id="variable-expanded-long"),
        pytest.param({"command": ["sh", "-c", "P=$(cat /s/p); redis-server --requirepass $P"],
                      "envs": ("P=short", "ENVIRONMENT=development")},
                     id="variable-the-script-assigns"),
        pytest.param({"command": ["sh", "-c", "redis-server --requirepass $P"]},
                     id="variable-the-container-does-not-set"),
        pytest.param({"command": ["redis-server", "--user", "app", "off", ">app"]},
                     id="disabled-acl-user"),
        pytest.param({"command": ["redis-server", "--user", "app", "on", ">app", "resetpass"]},
                     id="acl-password-reset"),
    ],
)  # fmt: skip
def test_password_given_to_redis__long_unknown_or_unused__is_not_judged(
    props: dict[str, Any],
) -> None:
    assert run_rule("secret-password-length", _redis_stack(**props)) == []


def test_short_password_of_a_sentinel__is_told_in_sentinel_words() -> None:
    records = _redis_stack(command=["redis-sentinel", "/r/s.conf", "--requirepass", "demo"])
    assert only(run_rule("secret-password-length", records)).startswith(
        "Redis Sentinel container redis must be given passwords of at least 24 characters"
    )


# -- ${NAME:-default} behind a shell -----------------------------------------------------------
# A shell gives `${P:-default}` the container's P when it sets a non-empty one (`${P-default}`:
# when it sets one at all), else the default. The official image's own ENV sets no password;
# another image may set P itself, so there the default is not assumed.


@pytest.mark.parametrize(
    ("script", "envs"),
    [
        pytest.param("exec redis-server --requirepass ${REDIS_PASSWORD:-changeme}", (),
                     id="default-when-unset"),
        pytest.param('exec redis-server --requirepass "${REDIS_PASSWORD:-changeme}"',
                     ("REDIS_PASSWORD=",), id="colon-default-when-empty"),
        pytest.param("exec redis-server --requirepass ${REDIS_PASSWORD:-" + LONG_ENOUGH + "}",
                     ("REDIS_PASSWORD=bismillah",), id="container-value-over-default"),
        pytest.param("exec redis-server --requirepass ${REDIS_PASSWORD-" + LONG_ENOUGH + "}",
                     ("REDIS_PASSWORD=bismillah",), id="dash-container-value"),
    ],
)  # fmt: skip
def test_shell_default_expansion__is_judged_as_the_shell_resolves_it(
    script: str, envs: tuple[str, ...]
) -> None:
    records = _redis_stack(command=["sh", "-c", script], envs=("ENVIRONMENT=development", *envs))
    assert "its requirepass is shorter" in only(run_rule("secret-password-length", records))


@pytest.mark.parametrize(
    ("image", "script", "envs"),
    [
        pytest.param("redis:7.4", "exec redis-server --requirepass ${P:-demo}",
                     (f"P={LONG_ENOUGH}",), id="container-value-long"),
        pytest.param("redis:7.4", "exec redis-server --requirepass ${P-demo}", ("P=",),
                     id="dash-set-but-empty-is-no-default"),
        pytest.param("example/redis-custom:1", "exec redis-server --requirepass ${P:-demo}", (),
                     id="another-image-may-set-it"),
        pytest.param("redis:7.4", "P=$(cat /s/p); exec redis-server --requirepass ${P:-demo}",
                     (), id="the-script-assigns-it"),
        pytest.param("redis:7.4", "exec redis-server --requirepass ${P:-$OTHER}", (),
                     id="default-itself-a-variable"),
    ],
)  # fmt: skip
def test_shell_default_expansion__the_pack_cannot_know__is_not_judged(
    image: str, script: str, envs: tuple[str, ...]
) -> None:
    records = _redis_stack(
        image=image, command=["sh", "-c", script], envs=("ENVIRONMENT=development", *envs)
    )
    assert all("requirepass" not in m for m in run_rule("secret-password-length", records))


# -- masterauth: the password a replica sends its master -------------------------------------------


@pytest.mark.parametrize(
    ("props", "what"),
    [
        pytest.param({"command": ["redis-server", "--requirepass", LONG_ENOUGH, "--masterauth",
                                  "demo"]}, "its masterauth is shorter, so it", id="argv"),
        pytest.param({"command": ["redis-server", "/r/redis.conf"],
                      "uploads": [{"file": "/r/redis.conf", "content":
                                   f"requirepass {LONG_ENOUGH}\nmasterauth foobared\n"}]},
                     "its masterauth is shorter, so it", id="in-conf"),
        pytest.param({"command": ["redis-server", "--aclfile", "/r/users.acl", "--masterauth",
                                  "demo"],
                      "uploads": [{"file": "/r/users.acl",
                                   "content": f"user app on #{LONG_ENOUGH} ~a:* +get\n"}]},
                     "its masterauth is shorter, so it", id="sent-even-with-an-aclfile"),
        pytest.param({"command": ["sh", "-c", "exec redis-server --requirepass $P --masterauth $P"],
                      "envs": ("P=password", "ENVIRONMENT=development")},
                     "its requirepass and its masterauth are shorter, so they", id="both"),
    ],
)  # fmt: skip
def test_short_masterauth__is_rejected_like_requirepass(props: dict[str, Any], what: str) -> None:
    message = only(run_rule("secret-password-length", _redis_stack(**props)))
    assert f"at least 24 characters in this stack's environment; {what} can be guessed" in message
    if "they" in what:
        assert (
            "Generate them (pulumi_random's RandomPassword with length 24 or more) and "
            "deliver them as a protected file" in message
        )


def test_long_or_unknown_masterauth__is_not_judged() -> None:
    for value in (LONG_ENOUGH, "$MASTER_PASSWORD", "$(cat /run/secrets/master)"):
        command = ["sh", "-c", f"exec redis-server --requirepass {LONG_ENOUGH} --masterauth "
                               f"'{value}'"]  # fmt: skip
        assert run_rule("secret-password-length", _redis_stack(command=command)) == []


# -- a short generated password Redis is given: once, on the generator --------------------------
# Under `pulumi up` the pack sees what RandomPassword made, and the same text on the server.
# Lengthening the generator is the one change that fixes both, so that is where it is told.
GENERATED = "q7Xr2mKp9LwT4vNz"  # stand-in for a 16-character RandomPassword result


def _generated_stack(server_password: str, length: int = 16) -> list[Any]:
    return parse_records(
        [
            {"type": RANDOM_PASSWORD, "name": "auth",
             "props": {"length": length, "special": False, "result": GENERATED}},
            {"type": CONTAINER, "name": "redis",
             "props": {"image": "redis:7.4", "envs": ["ENVIRONMENT=development"],
                       "command": ["redis-server", "--requirepass", server_password,
                                   "--masterauth", server_password]}},
        ],
        source="test", stack="qa", project="shop",
    )  # fmt: skip


def test_short_generated_password_given_to_redis__is_reported_once_on_the_generator() -> None:
    records = _generated_stack(GENERATED)
    rule = BY_NAME["secret-password-length"]
    assert isinstance(rule, StackRule)
    violations = list(rule.run(to_resources(records), None))
    assert [(v.urn.rsplit("::", 1)[-1], v.message) for v in violations] == [
        ("auth", "RandomPassword auth must generate passwords of at least 24 characters "
                 "(length) in this stack's environment; shorter ones can be guessed at Redis's "
                 "speed. It is the requirepass and masterauth of Redis container redis, which "
                 "this length sets too."),
    ]  # fmt: skip


def test_short_password_given_to_redis_not_generated_here__stays_on_the_server() -> None:
    messages = run_rule("secret-password-length", _generated_stack("demo-short"))
    assert len(messages) == 2
    assert messages[0].endswith("shorter ones can be guessed at Redis's speed.")
    assert messages[1].startswith("Redis container redis must be given passwords")


# The same for an ACL user's >password (corpus16b's report: the ACL model kept lengths only, so a
# generated one was reported on the generator and again on the server).
def _generated_acl_stack(command: list[str], uploads: list[Any] | None = None) -> list[Any]:
    return parse_records(
        [
            {"type": RANDOM_PASSWORD, "name": "auth",
             "props": {"length": 16, "special": False, "result": GENERATED}},
            {"type": CONTAINER, "name": "redis",
             "props": {"image": "redis:7.4", "envs": ["ENVIRONMENT=development"],
                       "command": command, "uploads": uploads or []}},
        ],
        source="test", stack="qa", project="shop",
    )  # fmt: skip


def _judged(records: list[Any]) -> list[tuple[str, str]]:
    rule = BY_NAME["secret-password-length"]
    assert isinstance(rule, StackRule)
    return [(v.urn.rsplit("::", 1)[-1], v.message) for v in rule.run(to_resources(records), None)]


ON_THE_GENERATOR = (
    "RandomPassword auth must generate passwords of at least 24 characters (length) in this "
    "stack's environment; shorter ones can be guessed at Redis's speed. It is the {uses} of "
    "Redis container redis, which this length sets too."
)


def test_short_generated_acl_password__is_reported_once_on_the_generator() -> None:
    command = ["redis-server", "--user", "app", "on", f">{GENERATED}", "~a:*", "+get",
               "--user", "ops", "on", f">{GENERATED}", "~o:*", "+get",
               "--user", "default", "off"]  # fmt: skip
    assert _judged(_generated_acl_stack(command)) == [
        ("auth", ON_THE_GENERATOR.format(uses=">password of ACL users app, ops")),
    ]


def test_short_generated_password_in_an_aclfile__is_reported_once_on_the_generator() -> None:
    acl = {"file": "/etc/redis/users.acl",
           "content": f"user default off\nuser app on >{GENERATED} ~a:* +get\n"}  # fmt: skip
    command = ["redis-server", "--aclfile", "/etc/redis/users.acl"]
    assert _judged(_generated_acl_stack(command, [acl])) == [
        ("auth", ON_THE_GENERATOR.format(uses=">password of ACL user app")),
    ]


def test_generated_acl_password_beside_a_short_written_one__leaves_that_one_on_the_server() -> None:
    command = ["redis-server", "--requirepass", GENERATED,
               "--user", "app", "on", f">{GENERATED}", "~a:*", "+get",
               "--user", "ops", "on", ">demo-short", "~o:*", "+get"]  # fmt: skip
    judged = _judged(_generated_acl_stack(command))
    assert judged[0] == (
        "auth",
        ON_THE_GENERATOR.format(uses="requirepass and >password of ACL user app"),
    )
    assert [urn for urn, _ in judged] == ["auth", "redis"]
    assert "; the >password of ACL user ops is shorter, so it can" in judged[1][1]


def test_generated_password_in_both_branches_of_a_script__names_each_setting_once() -> None:
    script = (
        f'if [ -n "$A" ]; then exec redis-server --requirepass {GENERATED}; '
        f"else exec redis-server --requirepass {GENERATED} --appendonly yes; fi"
    )
    assert _judged(_generated_acl_stack(["sh", "-c", script])) == [
        ("auth", ON_THE_GENERATOR.format(uses="requirepass")),
    ]
