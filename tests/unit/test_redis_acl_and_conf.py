"""infra.redis_acl and infra.redis_conf: the rendered text a server loads."""

from __future__ import annotations

import hashlib

import pytest

from infra.redis_acl import (
    APP_COMMANDS,
    EXPORTER_RULES,
    EXPORTER_USER,
    ROTATION_COMMANDS,
    ROTATION_USER,
    AclError,
    AclUserRules,
    password_hash,
    render_acl_file,
    render_acl_file_from_hashes,
    render_users,
    users,
)
from infra.redis_conf import (
    RedisConfError,
    RedisTlsConf,
    bulk_limit_bytes,
    directives,
    render_redis_conf,
)
from secure_cache import redis_exporter


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


def test_acl__app_is_confined_to_its_prefix_and_an_allowlist() -> None:
    tokens = _user_line(_acl(), "app").split()
    assert "~cache:*" in tokens
    assert "resetkeys" in tokens
    # Everything revoked first, then each command by name: no category is ever granted.
    start = tokens.index("-@all")
    assert tokens[start + 1 :] == [f"+{c}" for c in APP_COMMANDS]
    assert not [t for t in tokens if t.startswith("+@")]


def test_acl__app_allowlist_holds_no_command_it_does_not_send() -> None:
    # The commands of the attack report stay out, whatever the client grows into.
    assert not {"select", "setrange", "append", "copy", "dump", "object", "client", "keys"} & set(
        APP_COMMANDS
    )


# What only the rotation pass sends (core.py `rotation`): the serving app never gets them.
# WATCH above all (attack4: watched names are held until the connection ends, outside every
# memory limit of Redis 7.0, and OOM-killed a deployed Redis).
_PASS_ONLY = ("exec", "multi", "pttl", "scan", "strlen", "unwatch", "watch")


def test_acl__app_may_not_watch_nor_run_the_rotation_pass() -> None:
    tokens = _user_line(_acl(), "app").split()
    assert not {f"+{c}" for c in _PASS_ONLY} & set(tokens)
    assert not set(_PASS_ONLY) & set(APP_COMMANDS)


def test_acl__rotation_user_has_the_pass_commands_on_the_apps_prefix_only() -> None:
    acl = render_acl_file(
        app_password="a" * 24, healthcheck_password="h" * 24, rotation_password="r" * 24
    )
    line = _user_line(acl, ROTATION_USER)
    assert line == (
        f"user rotation on {password_hash('r' * 24)} resetkeys ~cache:* resetchannels -@all "
        + " ".join(f"+{c}" for c in ROTATION_COMMANDS)
    )
    assert set(_PASS_ONLY) <= set(ROTATION_COMMANDS)
    # It moves entries, it does not serve them: no GET, and nothing the app does not send
    # but the pass's own commands.
    assert set(ROTATION_COMMANDS) - set(_PASS_ONLY) == {"del", "mget", "ping", "set"}
    assert "r" * 24 not in acl


def test_acl__rotation_user_only_when_its_hash_is_given() -> None:
    assert f"user {ROTATION_USER}" not in _acl()
    text = render_acl_file_from_hashes(
        app_password_hash=password_hash("a"),
        healthcheck_password_hash=password_hash("h"),
        rotation_password_hash=(password_hash("r1"), password_hash("r2")),
    )
    # Two hashes while its password rotates, like every user's.
    assert f"{password_hash('r1')} {password_hash('r2')}" in _user_line(text, ROTATION_USER)
    assert text.splitlines()[-1].startswith(f"user {ROTATION_USER} ")


def test_acl__healthcheck_may_only_ping() -> None:
    assert _user_line(_acl(), "healthcheck").endswith("-@all +ping")


def test_acl__a_user_beside_the_others_renders_from_its_rules() -> None:
    reload_user = AclUserRules("reload", ("acl|load",))
    text = render_users(
        (*users("cache:"), reload_user),
        {
            "app": password_hash("a"),
            "healthcheck": password_hash("h"),
            "reload": password_hash("r"),
        },
    )
    assert _user_line(text, "reload").endswith("resetkeys resetchannels -@all +acl|load")


def test_acl__exporter_may_read_info_and_the_acl_log_only() -> None:
    text = render_acl_file_from_hashes(
        app_password_hash=password_hash("a"),
        healthcheck_password_hash=password_hash("h"),
        exporter_password_hash=password_hash("e"),
    )
    line = _user_line(text, EXPORTER_USER)
    assert line == (
        f"user exporter on {password_hash('e')} resetkeys resetchannels "
        "-@all +info +acl|log +bgrewriteaof"
    )
    assert "user exporter" not in _acl()  # only when the stack passes its hash


def test_acl__exporter_rules_are_the_exporters_own() -> None:
    """One identity, spelled in two places (the program's ACL and the exporter's docs and
    fixture): they must say the same."""
    assert EXPORTER_USER == redis_exporter.EXPORTER_USER
    assert EXPORTER_RULES.rules(password_hash("e")).endswith(redis_exporter.EXPORTER_COMMANDS)


def test_acl__a_user_without_a_hash_is_refused() -> None:
    with pytest.raises(AclError, match="ACL user app has no password hash"):
        render_users(users("cache:"), {"healthcheck": password_hash("h")})


@pytest.mark.parametrize(
    "command", ["@all", "get ~*", "", "GET"], ids=["category", "rule", "empty", "upper"]
)
def test_acl__an_allowlist_entry_must_be_a_command_name(command: str) -> None:
    with pytest.raises(AclError, match="is not a command name"):
        AclUserRules("x", (command,)).rules(password_hash("x"))


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
        ("databases", "1"),
        ("proto-max-bulk-len", "2mb"),
        ("rename-command", 'HELLO ""'),
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


# A version 3 envelope adds at most 4,188 bytes: 26 of header, nonce and expiry, 2 of key
# length, 16 + 4,128 of the longest sealed key (4,096 bytes padded past a multiple of 32) and
# the 16-byte tag. Until 2026-12-03 the file counted 4,132 (version 1's layout), so a value
# 4,132 bytes under a MiB boundary with a 4 KiB key sealed past proto-max-bulk-len.
@pytest.mark.parametrize(
    ("value_limit", "bulk"),
    [(1, 1 << 20), (1 << 20, 2 << 20), ((8 << 20) - 4188, 8 << 20), ((8 << 20) - 4187, 9 << 20)],
    ids=["redis-floor", "default", "exact-fit", "one-byte-over"],
)
def test_conf__bulk_limit_is_the_largest_sealed_value_rounded_to_mib(
    value_limit: int, bulk: int
) -> None:
    assert bulk_limit_bytes(value_limit) == bulk


def test_conf__bulk_limit_follows_the_value_limit() -> None:
    assert ("proto-max-bulk-len", "5mb") in directives(_conf(value_limit_bytes=4 << 20))


@pytest.mark.parametrize("maxmemory_mb", [1, 15], ids=["tiny", "just-below"])
def test_conf__refuses_a_maxmemory_one_allocation_could_fill(maxmemory_mb: int) -> None:
    with pytest.raises(RedisConfError, match="proto-max-bulk-len"):
        _conf(maxmemory_mb=maxmemory_mb)


def test_conf__accepts_maxmemory_eight_allocations_wide() -> None:
    assert ("maxmemory", "16mb") in directives(_conf(maxmemory_mb=16))
