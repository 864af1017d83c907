"""infra.redis_acl and infra.redis_conf: the rendered text a server loads."""

from __future__ import annotations

import hashlib

import pytest

from infra.redis_acl import AclError, password_hash, render_acl_file
from infra.redis_conf import RedisConfError, RedisTlsConf, directives, render_redis_conf


def _acl() -> str:
    return render_acl_file(app_password="a" * 24, healthcheck_password="h" * 24)


def _user_line(acl: str, user: str) -> str:
    (line,) = [ln for ln in acl.splitlines() if ln.startswith(f"user {user} ")]
    return line


def test_acl__default_user_is_off() -> None:
    assert _user_line(_acl(), "default").split()[2] == "off"


def test_acl__stores_hashes_never_passwords() -> None:
    acl = _acl()
    assert "a" * 24 not in acl
    assert "h" * 24 not in acl
    assert "#" + hashlib.sha256(b"a" * 24).hexdigest() in _user_line(acl, "app")


def test_acl__app_is_confined_to_its_prefix_without_dangerous_commands() -> None:
    tokens = _user_line(_acl(), "app").split()
    assert "~cache:*" in tokens
    assert "resetkeys" in tokens
    # Later rules win, so the revocations must come after every grant.
    assert tokens[-2:] == ["-@dangerous", "-@admin"]


def test_acl__healthcheck_may_only_ping() -> None:
    assert _user_line(_acl(), "healthcheck").endswith("-@all +ping")


@pytest.mark.parametrize(
    "prefix", ["cache", "*", "a b:", ""], ids=["no-colon", "glob", "space", "empty"]
)
def test_acl__rejects_unsafe_prefixes(prefix: str) -> None:
    with pytest.raises(AclError, match="key prefix"):
        render_acl_file(app_password="x" * 24, healthcheck_password="y" * 24, key_prefix=prefix)


def test_acl__refuses_an_empty_password() -> None:
    with pytest.raises(AclError, match="non-empty password"):
        password_hash("")


def _conf(**overrides: object) -> RedisTlsConf:
    base: dict[str, object] = {
        "tls_port": 6379,
        "cert_file": "/t/server.crt",
        "key_file": "/t/server.key",
        "ca_cert_file": "/t/ca.crt",
        "acl_file": "/t/users.acl",
        "data_dir": "/data",
        "maxmemory_mb": 200,
    }
    return RedisTlsConf(**{**base, **overrides})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("port", "0"),
        ("tls-auth-clients", "yes"),
        ("protected-mode", "yes"),
        ("enable-debug-command", "no"),
        ("enable-module-command", "no"),
        ("enable-protected-configs", "no"),
        ("maxmemory", "200mb"),
        ("tls-protocols", '"TLSv1.2 TLSv1.3"'),
    ],
)
def test_conf__secure_directive(name: str, value: str) -> None:
    assert (name, value) in directives(_conf())


def test_conf__production_protocols_are_tls13_only() -> None:
    assert ("tls-protocols", '"TLSv1.3"') in directives(_conf(tls_protocols=("TLSv1.3",)))


@pytest.mark.parametrize(
    "protocols", [("TLSv1.1", "TLSv1.2"), (), ("SSLv3",)], ids=["tls11", "empty", "ssl3"]
)
def test_conf__rejects_legacy_or_empty_protocols(protocols: tuple[str, ...]) -> None:
    with pytest.raises(RedisConfError, match="tls_protocols"):
        _conf(tls_protocols=protocols)


def test_conf__renders_one_directive_per_line() -> None:
    text = render_redis_conf(_conf())
    assert text.splitlines()[0] == "port 0"
    assert len(text.splitlines()) == len(directives(_conf()))
