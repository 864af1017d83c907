"""Security model points 1 (transport) and 2 (identity) on the rendered Redis, for each stack."""

from __future__ import annotations

import re

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from infra import pki
from infra.profiles import PASSWORD_FLOOR
from infra.pulumi_names import PYTHON_DYNAMIC_PREFIX
from infra.redis_acl import (
    APP_COMMANDS,
    AclError,
    password_hash,
    render_acl_file,
    render_acl_file_from_hashes,
)
from infra.render import RenderedResource, RenderedStack
from tests.unit.conftest import argv_value, container, uploads

WEAK_CIPHER = re.compile(r"RC4|3DES|DES-|NULL|MD5|EXPORT|CBC|aNULL|eNULL", re.IGNORECASE)


def _command(stack: RenderedStack) -> list[str]:
    command: list[str] = container(stack, "redis").props["command"]
    return command


def _conf(stack: RenderedStack) -> dict[str, str]:
    content = uploads(container(stack, "redis-init"))["redis.conf"]["content"]
    pairs = (line.split(" ", 1) for line in content.splitlines() if line.strip())
    return {name: value.strip('"') for name, value in pairs}


def _acl_lines(stack: RenderedStack) -> dict[str, str]:
    content = uploads(container(stack, "redis-init"))["users.acl"]["content"]
    return {line.split()[1]: line for line in content.splitlines() if line.startswith("user ")}


def test_redis__runs_redis_server_with_its_config_file(stack: RenderedStack) -> None:
    command = _command(stack)
    assert command[:2] == ["redis-server", "/etc/secure-redis/redis.conf"], (
        f"{container(stack, 'redis').urn}: must run redis-server with the delivered redis.conf"
    )


def test_redis__has_no_plaintext_port(stack: RenderedStack) -> None:
    urn = container(stack, "redis").urn
    assert argv_value(_command(stack), "--port") == "0", f"{urn}: argv must set --port 0"
    assert _conf(stack)["port"] == "0", f"{urn}: redis.conf must set port 0"


def test_redis__listens_on_the_tls_port(stack: RenderedStack) -> None:
    expected = str(stack.settings.redis_port)
    assert argv_value(_command(stack), "--tls-port") == expected, (
        f"{container(stack, 'redis').urn}: --tls-port must be {expected}"
    )


def test_redis__requires_client_certificates(stack: RenderedStack) -> None:
    assert argv_value(_command(stack), "--tls-auth-clients") == "yes", (
        f"{container(stack, 'redis').urn}: --tls-auth-clients must be yes (mutual TLS)"
    )


def test_redis__tls_protocols_follow_the_environment(stack: RenderedStack) -> None:
    expected = {"dev": "TLSv1.2 TLSv1.3", "prod": "TLSv1.3"}[stack.stack]
    assert argv_value(_command(stack), "--tls-protocols") == expected
    assert _conf(stack)["tls-protocols"] == expected


def test_redis__offers_only_aead_forward_secret_ciphers(stack: RenderedStack) -> None:
    ciphers = argv_value(_command(stack), "--tls-ciphers") or ""
    assert ciphers, f"{container(stack, 'redis').urn}: --tls-ciphers must be set"
    for suite in ciphers.split(":"):
        assert suite.startswith("ECDHE-"), f"{suite} lacks forward secrecy"
        assert not WEAK_CIPHER.search(suite), f"{suite} is weak"


@pytest.mark.parametrize(
    "flag", ["--tls-cert-file", "--tls-key-file", "--tls-ca-cert-file", "--aclfile"]
)
def test_redis__tls_files_come_from_the_material_volume(stack: RenderedStack, flag: str) -> None:
    delivered = set(uploads(container(stack, "redis-init")))
    path = argv_value(_command(stack), flag) or ""
    directory, _, name = path.rpartition("/")
    assert directory == "/etc/secure-redis", f"{flag} {path} is outside the material volume"
    assert name in delivered, f"{flag} {path} is not delivered by the init container"


@pytest.mark.parametrize(
    "setting", ["enable-debug-command", "enable-module-command", "enable-protected-configs"]
)
def test_redis__escape_hatches_are_off(stack: RenderedStack, setting: str) -> None:
    assert argv_value(_command(stack), f"--{setting}") == "no", f"--{setting} must be no"
    assert _conf(stack)[setting] == "no", f"redis.conf {setting} must be no"


def test_redis__protected_mode_is_on(stack: RenderedStack) -> None:
    assert argv_value(_command(stack), "--protected-mode") == "yes"


def test_redis__persists_with_aof_on_the_data_volume(stack: RenderedStack) -> None:
    command = _command(stack)
    assert (argv_value(command, "--appendonly"), argv_value(command, "--dir")) == ("yes", "/data")


def test_redis__argv_and_config_file_agree(stack: RenderedStack) -> None:
    conf, command = _conf(stack), _command(stack)
    for name, value in conf.items():
        on_argv = argv_value(command, f"--{name}")
        assert on_argv in (None, value), f"--{name} {on_argv!r} contradicts redis.conf {value!r}"


def test_acl__default_user_is_off(stack: RenderedStack) -> None:
    default = _acl_lines(stack)["default"].split()
    assert "off" in default
    assert "on" not in default
    assert "nopass" not in default


def test_acl__app_user_is_limited_to_its_prefix(stack: RenderedStack) -> None:
    app = _acl_lines(stack)["app"].split()
    prefix = stack.settings.key_prefix
    assert [w for w in app if w.startswith("~")] == [f"~{prefix}*"], "app must see its prefix only"
    assert "allkeys" not in app


def test_acl__app_user_is_exactly_its_command_allowlist(stack: RenderedStack) -> None:
    rules = [w for w in _acl_lines(stack)["app"].split() if w[0] in "+-"]
    assert rules == ["-@all", *(f"+{command}" for command in APP_COMMANDS)]


def test_acl__healthcheck_user_may_only_ping(stack: RenderedStack) -> None:
    rules = [w for w in _acl_lines(stack)["healthcheck"].split() if w[0] in "+-"]
    assert rules == ["-@all", "+ping"]


def test_acl__holds_hashes_not_passwords(stack: RenderedStack) -> None:
    enabled = {user: line for user, line in _acl_lines(stack).items() if user != "default"}
    assert {"app", "healthcheck", "reload"} <= set(enabled)
    for user, line in enabled.items():
        words = line.split()
        assert any(re.fullmatch(r"#[0-9a-f]{64}", w) for w in words), f"{user}: no #sha256 hash"
        assert not any(w.startswith(">") for w in words), f"{user}: cleartext password in ACL"


def _dynamic(stack: RenderedStack, kind: str, suffix: str = "") -> list[RenderedResource]:
    """Every dynamic resource of `kind` (GeneratedPassword, LeafCertificate) whose name ends
    in `suffix`: derived from the stack, so a user or certificate added later is checked too."""
    found = [
        r
        for r in stack.resources
        if r.type.startswith(PYTHON_DYNAMIC_PREFIX)
        and r.type.endswith(f":{kind}")
        and r.name.endswith(suffix)
    ]
    assert found, f"no {kind} named *{suffix} in stack {stack.stack}"
    return found


def test_passwords__length_follows_the_environment(stack: RenderedStack) -> None:
    expected = stack.settings.password_length
    assert expected >= PASSWORD_FLOOR[stack.settings.environment]
    passwords = _dynamic(stack, "GeneratedPassword", "-password")
    assert {p.name for p in passwords} >= {f"secrets-{u}-password" for u in ("app", "reload")}
    for password in passwords:
        assert len(password.outputs["value"]) == expected, f"{password.urn}: length"


def test_server_certificate__names_what_clients_dial(stack: RenderedStack) -> None:
    server = next(r for r in stack.resources if r.name == "tls-redis-server")
    cert = x509.load_pem_x509_certificate(server.outputs["certPem"].encode())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = set(sans.get_values_for_type(x509.DNSName))
    assert {"redis", f"secure-redis-{stack.stack}-redis"} <= names, f"{server.urn}: SANs {names}"


def test_redis_url__uses_a_name_in_the_server_certificate(stack: RenderedStack) -> None:
    envs = dict(e.split("=", 1) for e in container(stack, "app").props["envs"])
    host = envs["REDIS_URL"].removeprefix("rediss://").rsplit(":", 1)[0]
    server = next(r for r in stack.resources if r.name == "tls-redis-server")
    assert host in server.props["dnsNames"], f"REDIS_URL host {host} is not a server SAN"


def test_certificates__chain_to_this_stacks_ca(stack: RenderedStack) -> None:
    ca = next(r for r in stack.resources if r.name == "tls-ca").outputs["certPem"].encode()
    leaves = _dynamic(stack, "LeafCertificate")
    assert {leaf.name for leaf in leaves} >= {"tls-redis-server", "tls-reload-client"}
    for leaf in leaves:
        assert pki.verify_chain(leaf.outputs["certPem"].encode(), ca), f"{leaf.urn}: bad chain"


def test_client_certificates__are_for_client_auth_only(stack: RenderedStack) -> None:
    for leaf in _dynamic(stack, "LeafCertificate", "-client"):
        cert = x509.load_pem_x509_certificate(leaf.outputs["certPem"].encode())
        usages = list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
        assert usages == [ExtendedKeyUsageOID.CLIENT_AUTH], f"{leaf.urn}: EKU {usages}"


def test_acl_from_hashes__refuses_a_cleartext_password() -> None:
    with pytest.raises(AclError, match="64 lowercase hex digits"):
        render_acl_file_from_hashes(
            app_password_hash="not-a-hash", healthcheck_password_hash=password_hash("x" * 24)
        )


def test_acl_from_hashes__matches_the_password_form() -> None:
    hashes = render_acl_file_from_hashes(
        app_password_hash=password_hash("a" * 24), healthcheck_password_hash=password_hash("b" * 24)
    )
    assert hashes == render_acl_file(app_password="a" * 24, healthcheck_password="b" * 24)
