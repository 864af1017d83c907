"""Pure Redis rules: settings read from the uploaded redis.conf, argv overrides, ACL semantics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from policies.rules._acl import acl_users
from policies.rules._redisconf import is_redis_server, parse_args, server_args
from tests.policy import foreign
from tests.policy.support import assert_reasons, mutate, run_rule, upload

Change = Callable[[dict[str, Any]], object]


def _conf(old: str, new: str) -> Change:
    """Edit the redis.conf the cache's loader uploads."""

    def change(props: dict[str, Any]) -> None:
        entry = upload(props, "redis.conf")
        assert old in entry["content"], old
        entry["content"] = entry["content"].replace(old, new)

    return change


def _acl(old: str, new: str) -> Change:
    def change(props: dict[str, Any]) -> None:
        entry = upload(props, "users.acl")
        assert old in entry["content"], old
        entry["content"] = entry["content"].replace(old, new)

    return change


def _args(*args: str) -> Change:
    return lambda props: props["command"].extend(args)


CASES = [
    pytest.param("redis-tls-only", "cache-loader", _conf("port 0\n", ""), True,
                 id="tls-01-fail-default-port"),
    pytest.param("redis-tls-only", "cache-loader", _conf("port 0\n", "port 6379\n"), True,
                 id="tls-01-fail-conf-port"),
    pytest.param("redis-tls-only", "cache", _args("--port", "6379"), True,
                 id="tls-01-fail-argv-overrides-conf"),
    pytest.param("redis-tls-only", "cache-loader",
                 lambda p: upload(p, "redis.conf").update(content="[secret]"), True,
                 id="tls-01-fail-conf-unreadable"),
    pytest.param("redis-tls-configured", "cache-loader",
                 _conf("tls-key-file /secrets/tls.key\n", ""), True, id="tls-02-fail-no-key"),
    pytest.param("redis-tls-configured", "cache-loader",
                 _conf("tls-ca-cert-file /secrets/ca.crt\n", "tls-ca-cert-dir /secrets/ca\n"),
                 False, id="tls-02-pass-ca-dir"),
    pytest.param("redis-client-cert-required", "cache-loader",
                 _conf("tls-auth-clients yes", "tls-auth-clients optional"), True,
                 id="tls-03-fail-optional"),
    pytest.param("redis-client-cert-required", "cache-loader",
                 _conf("tls-auth-clients yes\n", ""), False, id="tls-03-pass-redis-default"),
    pytest.param("redis-tls-protocols-modern", "cache-loader",
                 _conf('"TLSv1.3"', '"TLSv1.2 TLSv1.3"'), True, id="tls-04-fail-below-config"),
    pytest.param("redis-tls-protocols-modern", "cache-loader",
                 _conf('"TLSv1.3"', '"TLSv1.3 SSLv3"'), True, id="tls-04-fail-unknown"),
    pytest.param("redis-tls-ciphers-strong", "cache-loader",
                 _conf("tls-ciphers ECDHE", "tls-ciphers ALL:ECDHE"), False,
                 id="tls-05-pass-tls12-cipher-list-unused-under-tls13-only"),
    pytest.param("redis-protected-mode-on", "cache", _args("--protected-mode", "no"), True,
                 id="redis-01-fail-off"),
    pytest.param("redis-auth-required", "cache-loader",
                 _conf("aclfile /secrets/users.acl\n", ""), True, id="redis-02-fail-no-auth"),
    pytest.param("redis-auth-required", "cache-loader",
                 _acl("-@all +ping\n", "-@all +ping nopass\n"), True,
                 id="redis-02-fail-nopass-user"),
    pytest.param("redis-auth-required", "cache-loader",
                 _acl("user probe on ", "user probe on nopass "), False,
                 id="redis-02-pass-a-password-after-nopass-ends-it"),
    pytest.param("redis-auth-required", "cache-loader",
                 _acl("-@all +ping\n", "-@all +ping nopass off\n"), False,
                 id="redis-02-pass-nopass-user-disabled"),
    pytest.param("redis-auth-required", "cache-loader",
                 _acl("user default off", "user default on nopass"), False,
                 id="redis-02-pass-default-nopass-is-redis-03s-finding"),
    pytest.param("redis-default-user-disabled", "cache-loader",
                 _acl("user default off", "user default on nopass"), True,
                 id="redis-03-fail-on-nopass"),
    pytest.param("redis-default-user-disabled", "cache-loader",
                 _acl("user default off resetkeys resetchannels -@all\n", ""), True,
                 id="redis-03-fail-not-mentioned"),
    pytest.param("redis-default-user-disabled", "cache-loader",
                 lambda p: upload(p, "users.acl").update(content="[secret]"), True,
                 id="redis-03-fail-acl-unreadable"),
    pytest.param("redis-default-user-disabled", "cache-loader",
                 _conf("aclfile /secrets/users.acl\n",
                       f"requirepass {foreign.PROBE_PASSWORD}\n"), True,
                 id="redis-03-fail-requirepass-only"),
    # With an aclfile Redis ignores requirepass (redis.conf, SECURITY; redis-server 7.0 shown):
    # the default user the file leaves out stays nopass.
    pytest.param("redis-default-user-disabled", "cache-loader",
                 lambda p: (_conf("aclfile /secrets/users.acl\n", "aclfile /secrets/users.acl\n"
                                  f"requirepass {foreign.PROBE_PASSWORD}\n")(p),
                            _acl("user default off resetkeys resetchannels -@all\n", "")(p)),
                 True, id="redis-03-fail-requirepass-ignored-with-aclfile"),
    pytest.param("redis-acl-least-privilege", "cache-loader",
                 _acl("-@all +get +set +del +mget +ping", "+@all"), True,
                 id="redis-04-fail-all"),
    pytest.param("redis-acl-least-privilege", "cache-loader",
                 _acl("+mget +ping", "+mget +ping +config|set"), True,
                 id="redis-04-fail-regranted-command"),
    pytest.param("redis-acl-least-privilege", "cache-loader",
                 _acl("+mget +ping", "+mget +ping -@dangerous -@admin +@read"), True,
                 id="redis-04-fail-category-after-deny"),
    pytest.param("redis-acl-least-privilege", "cache-loader",
                 _acl("-@all +get +set +del +mget +ping", "+@all -@dangerous -@admin"),
                 False, id="redis-04-pass-all-minus-dangerous"),
    pytest.param("redis-acl-command-allowlist", "cache-loader",
                 _acl("-@all +get +set +del +mget +ping", "-@all +@read -@dangerous -@admin"),
                 True, id="redis-13-fail-categories"),
    pytest.param("redis-acl-command-allowlist", "cache-loader",
                 _acl("-@all +get +set +del +mget +ping", "allcommands -@dangerous"), True,
                 id="redis-13-fail-allcommands"),
    pytest.param("redis-acl-command-allowlist", "cache-loader",
                 _acl("-@all +get +set +del +mget +ping", "-@all +get +set +select"), False,
                 id="redis-13-pass-named-commands"),
    pytest.param("redis-bulk-length-capped", "cache-loader",
                 _conf("proto-max-bulk-len 4mb\n", ""), True, id="redis-12-fail-default-512mb"),
    pytest.param("redis-bulk-length-capped", "cache-loader",
                 _conf("proto-max-bulk-len 4mb", "proto-max-bulk-len 64mb"), True,
                 id="redis-12-fail-above-an-eighth-of-maxmemory"),
    pytest.param("redis-bulk-length-capped", "cache",
                 _args("--proto-max-bulk-len", "1gb"), True, id="redis-12-fail-argv-wins"),
    pytest.param("redis-bulk-length-capped", "cache-loader",
                 _conf("proto-max-bulk-len 4mb", "proto-max-bulk-len 32mb"), False,
                 id="redis-12-pass-an-eighth"),
    pytest.param("redis-client-output-bounded", "cache-loader",
                 _conf("client-output-buffer-limit normal 64mb 32mb 60\n", ""), True,
                 id="redis-14-fail-unlimited-by-default"),
    pytest.param("redis-client-output-bounded", "cache-loader",
                 _conf("client-output-buffer-limit normal 64mb", "client-output-buffer-limit "
                       "normal 0"), True, id="redis-14-fail-hard-0"),
    pytest.param("redis-client-output-bounded", "cache-loader",
                 _conf("client-output-buffer-limit normal 64mb", "client-output-buffer-limit "
                       "normal 1gb"), True, id="redis-14-fail-above-maxmemory"),
    pytest.param("redis-client-output-bounded", "cache",
                 _args("--client-output-buffer-limit", "normal 0 0 0"), True,
                 id="redis-14-fail-argv-wins"),
    pytest.param("redis-client-output-bounded", "cache-loader",
                 _conf("client-output-buffer-limit normal 64mb 32mb 60\n",
                       "client-output-buffer-limit normal 64mb 32mb 60\n"
                       "client-output-buffer-limit pubsub 0 0 0\n"), False,
                 id="redis-14-pass-one-line-per-class"),
    pytest.param("redis-single-database", "cache-loader",
                 _conf("databases 1\n", ""), True, id="redis-13-fail-16-databases"),
    pytest.param("redis-acl-key-scope", "cache-loader", _acl("~shop:*", "~*"), True,
                 id="redis-05-fail-all-keys"),
    pytest.param("redis-acl-hashed-passwords", "cache-loader",
                 _acl("user probe on #", "user probe on >cleartext #"), True,
                 id="redis-06-fail-cleartext"),
    pytest.param("redis-escape-hatches-disabled", "cache-loader",
                 _conf("enable-debug-command no", "enable-debug-command local"), True,
                 id="redis-08-fail-debug-local"),
    pytest.param("redis-escape-hatches-disabled", "cache",
                 _args("--loadmodule", "/x.so"), True, id="redis-08-fail-loadmodule"),
    pytest.param("redis-rename-command-not-sole-control", "cache-loader",
                 _conf("aclfile /secrets/users.acl\n", 'rename-command CONFIG ""\n'), True,
                 id="redis-09-fail-rename-only"),
    pytest.param("redis-maxmemory-below-limit", "cache-loader",
                 _conf("maxmemory 256mb", "maxmemory 620mb"), True, id="redis-10-fail-equal"),
    pytest.param("redis-maxmemory-below-limit", "cache-loader", _conf("maxmemory 256mb\n", ""),
                 True, id="redis-10-fail-unset"),
    pytest.param("redis-maxmemory-below-limit", "cache", lambda p: p.pop("memory"), True,
                 id="redis-10-fail-no-container-limit"),
    pytest.param("redis-maxmemory-below-limit", "cache-loader",
                 _conf("maxmemory 256mb", "maxmemory 500000000"), False,
                 id="redis-10-pass-bytes"),
    pytest.param("redis-memory-fork-headroom", "cache-loader",
                 _conf("maxmemory 256mb", "maxmemory 272mb"), True,
                 id="redis-15-fail-rdb-default-limit-below-twice-maxmemory"),
    pytest.param("redis-memory-fork-headroom", "cache-loader",
                 _conf("maxmemory 256mb\n", 'maxmemory 272mb\nappendonly yes\nsave ""\n'), True,
                 id="redis-15-fail-aof"),
    pytest.param("redis-memory-fork-headroom", "cache-loader",
                 _conf("maxmemory 256mb", "maxmemory 200mb"), False,
                 id="redis-15-pass-twice-maxmemory-plus-headroom-or-more"),
    pytest.param("redis-memory-fork-headroom", "cache-loader",
                 _conf("maxmemory 256mb\n", 'maxmemory 272mb\nappendonly no\nsave ""\n'), False,
                 id="redis-15-pass-no-persistence-no-fork"),
    pytest.param("redis-memory-fork-headroom", "cache-loader", _conf("maxmemory 256mb\n", ""),
                 False, id="redis-15-pass-no-maxmemory-is-redis-10s-finding"),
    pytest.param("redis-maxmemory-policy-evicts", "cache-loader",
                 _conf("maxmemory-policy allkeys-lfu\n", ""), True, id="redis-10-fail-noeviction"),
    pytest.param("redis-data-on-named-volume", "cache",
                 lambda p: p["mounts"].__setitem__(
                     1, {"type": "bind", "source": "/srv/redis", "target": "/data"}),
                 True, id="redis-11-fail-host-bind"),
    pytest.param("redis-healthcheck-uses-tls", "cache",
                 lambda p: p.update(healthcheck={"tests": ["CMD", "redis-cli", "ping"]}), True,
                 id="res-05-fail-plaintext-probe"),
    pytest.param("redis-tls-key-mount-read-only", "cache",
                 lambda p: p["mounts"][0].update(readOnly=False), True, id="tls-10-fail-rw"),
    pytest.param("redis-clients-use-tls", "web",
                 lambda p: p.update(envs=["CACHE_URL=redis://cache:6379/0"]), True,
                 id="tls-06-fail-plaintext-url"),
    pytest.param("redis-clients-use-tls", "web",
                 lambda p: p.update(envs=["CACHE_URL=rediss://cache:6380/0?ssl_cert_reqs=none"]),
                 True, id="tls-06-fail-no-verify"),
    pytest.param("redis-clients-use-tls", "web",
                 lambda p: p.update(command=["app", "--cache", "redis://cache:6379"]), True,
                 id="tls-06-fail-url-on-argv"),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "resource", "change", "fails"), CASES)
def test_redis_rule(
    request: pytest.FixtureRequest, rule: str, resource: str, change: Change, fails: bool
) -> None:
    config = {"minimumVersion": "TLSv1.3"} if rule == "redis-tls-protocols-modern" else None
    messages = run_rule(rule, mutate(foreign.records(), resource, change), config)
    assert bool(messages) is fails, messages
    if fails:
        assert_reasons("redis", request, messages)


@pytest.mark.parametrize(
    ("props", "is_redis"),
    [
        pytest.param({"image": "redis:7"}, True, id="official-image-default-cmd"),
        pytest.param({"image": "docker.io/bitnami/redis:7.2"}, True, id="bitnami-image"),
        pytest.param({"image": "redis:7", "command": ["--port", "0"]}, True,
                     id="official-image-options-only"),
        pytest.param({"image": "sha256:" + "c" * 64, "command": ["redis-server", "/c"]}, True,
                     id="image-id-with-redis-server"),
        pytest.param({"image": "x", "command": ["sh", "-c", "exec redis-server /c --port 0"]},
                     True, id="shell-exec"),
        pytest.param({"image": "secure-redis-app:1", "command": ["python", "-m", "app"]}, False,
                     id="name-contains-redis-but-is-an-app"),
        pytest.param({"image": "redis:7", "command": ["redis-cli", "ping"]}, False,
                     id="redis-cli-is-not-a-server"),
        # KeyDB, a Redis fork that takes redis-server's arguments and redis.conf directives.
        pytest.param({"image": "eqalpha/keydb:x86_64_v6.3.3",
                      "command": ["keydb-server", "--protected-mode", "no"]}, True,
                     id="keydb-server"),
        pytest.param({"image": "eqalpha/keydb:alpine"}, True, id="keydb-image-default-cmd"),
        pytest.param({"image": "x", "healthcheck": {"tests": ["CMD", "keydb-cli", "ping"]}},
                     True, id="keydb-cli-health-check"),
        pytest.param({"image": "eqalpha/keydb:alpine", "command": ["keydb-cli", "ping"]}, False,
                     id="keydb-cli-is-not-a-server"),
    ],
)  # fmt: skip
def test_redis_is_recognised_by_what_it_runs(props: dict[str, Any], is_redis: bool) -> None:
    assert is_redis_server(props) is is_redis


def test_argv_overrides_the_uploaded_conf__in_both_directions() -> None:
    plaintext_conf = mutate(foreign.records(), "cache-loader", _conf("port 0\n", "port 6379\n"))
    fixed_on_argv = mutate(plaintext_conf, "cache", _args("--port", "0"))
    assert run_rule("redis-tls-only", plaintext_conf)
    assert run_rule("redis-tls-only", fixed_on_argv) == []


def _with_extra_conf(content: str) -> Change:
    """The cache container also uploads /etc/redis/extra.conf with this text."""

    def change(props: dict[str, Any]) -> None:
        props["uploads"] = [{"file": "/etc/redis/extra.conf", "content": content}]

    return change


@pytest.mark.parametrize(
    ("args", "plaintext"),
    [
        pytest.param(("--include", "/etc/redis/extra.conf"), True, id="include-after-conf-wins"),
        pytest.param(("--port", "0", "--include", "/etc/redis/extra.conf"), True,
                     id="include-after-argv-wins"),
        pytest.param(("--include", "/etc/redis/extra.conf", "--port", "0"), False,
                     id="argv-after-include-wins"),
    ],
)  # fmt: skip
def test_include_on_argv__is_read_where_it_stands(args: tuple[str, ...], plaintext: bool) -> None:
    """redis-server reads an `include` in place (redis-server 7.0.15 here: `--port A --include
    f`, f setting `port B`, listens on B): what it sets overrides what came before it."""
    records = mutate(foreign.records(), "cache", _with_extra_conf("port 6379\n"))
    records = mutate(records, "cache", _args(*args))
    assert bool(run_rule("redis-tls-only", records)) is plaintext


def test_include_on_argv__settings_hidden_in_it_are_judged() -> None:
    records = mutate(foreign.records(), "cache", _with_extra_conf("enable-debug-command yes\n"))
    records = mutate(records, "cache", _args("--include", "/etc/redis/extra.conf"))
    assert run_rule("redis-escape-hatches-disabled", records)


def test_include_on_argv__nobody_uploads__fails_closed() -> None:
    records = mutate(foreign.records(), "cache", _args("--include", "/etc/redis/extra.conf"))
    assert run_rule("redis-escape-hatches-disabled", records)


@pytest.mark.parametrize(
    ("conf", "plaintext"),
    [
        pytest.param("include /etc/redis/extra.conf\nport 0\n", False, id="line-after-include"),
        pytest.param("port 0\ninclude /etc/redis/extra.conf\n", True, id="include-after-line"),
    ],
)
def test_include_in_a_conf__is_read_in_place(conf: str, plaintext: bool) -> None:
    records = mutate(foreign.records(), "cache", _with_extra_conf("port 6379\n"))
    records = mutate(records, "cache-loader", _conf("port 0\n", conf))
    assert bool(run_rule("redis-tls-only", records)) is plaintext


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        pytest.param("redis:7.2.4", "the image turns it off by default", id="official"),
        pytest.param("docker.m.daocloud.io/redis:5.0.5", "by default is unknown", id="mirror"),
        pytest.param("spectre/redis:1.0", "by default is unknown", id="built-from-it"),
    ],
)
def test_protected_mode_left_to_the_image__off_in_the_official_one_unknown_elsewhere(
    image: str, reason: str
) -> None:
    """docker-library's redis turns protected mode off at build time; a mirror of it, or an
    image built FROM it, does the same, and the pack cannot tell those from one that compiled
    Redis itself (public programs: ysl2/scripts, ardihikaru/eagleeye in tests/policy/external)."""
    left = mutate(foreign.records(), "cache-loader", _conf("protected-mode yes\n", ""))
    left = mutate(left, "cache", lambda p: p.update(image=image))
    assert [m for m in run_rule("redis-protected-mode-on", left) if reason in m]
    on_argv = mutate(left, "cache", _args("--protected-mode", "yes"))
    assert run_rule("redis-protected-mode-on", on_argv) == []


def test_conf_is_found_in_any_upload_of_the_stack__own_uploads_first() -> None:
    own_copy = mutate(
        foreign.records(),
        "cache",
        lambda p: p.update(uploads=[{"file": "/secrets/redis.conf", "content": "port 6379\n"}]),
    )
    assert run_rule("redis-tls-only", foreign.records()) == []
    assert run_rule("redis-tls-only", own_copy), "the container's own redis.conf wins"


def test_parse_args__conf_file_then_options_with_multiword_values() -> None:
    conf, directives = parse_args(
        ["/etc/redis.conf", "--tls-protocols", "TLSv1.2 TLSv1.3", "--save", "", "--port", "0"]
    )
    assert conf == "/etc/redis.conf"
    assert directives == [("tls-protocols", ("TLSv1.2 TLSv1.3",)), ("save", ("",)),
                          ("port", ("0",))]  # fmt: skip


def test_server_args__stop_at_a_shell_separator() -> None:
    props = {"image": "x", "command": ["sh", "-c", "redis-server /c --port 0 && echo done"]}
    assert server_args(props) == ["/c", "--port", "0"]


def test_acl__default_user_unmentioned_is_redis_default() -> None:
    users = acl_users([("app", "on", "#abc", "~app:*", "+get")])
    assert users["default"].enabled
    assert users["default"].privileged
    assert users["app"].enabled
    assert not users["app"].privileged


def test_acl__reset_clears_earlier_rules() -> None:
    users = acl_users([("ops", "on", "+@all", "reset")])
    assert not users["ops"].enabled
    assert not users["ops"].privileged


RELOAD = "user reload on #abc resetkeys resetchannels -@all +config|set +acl|load"


@pytest.mark.parametrize(
    ("line", "reload_only"),
    [
        (RELOAD, True),
        ("user reload on #abc -@all +acl|load", True),
        (RELOAD + " +get", False),
        (RELOAD + " +config|get", False),
        (RELOAD + " +config", False),
        (RELOAD + " +@admin", False),
        (RELOAD + " ~*", False),
        (RELOAD + " ~reload:*", False),
        (RELOAD + " &*", False),
        ("user reload on #abc +@all -@dangerous +config|set", False),
        ("user reload on #abc -@all", False),
    ],
    ids=[
        "exact",
        "acl-load-only",
        "plus-get",
        "plus-config-get",
        "plus-whole-config",
        "plus-admin",
        "all-keys",
        "key-prefix",
        "all-channels",
        "categories",
        "nothing-granted",
    ],
)
def test_acl__reload_identity_is_config_set_and_acl_load_only(line: str, reload_only: bool) -> None:
    users = acl_users([tuple(line.split()[1:])])
    assert users["reload"].reload_only is reload_only


def test_acl_least_privilege__accepts_the_reload_identity_and_nothing_broader() -> None:
    def with_reload(rules: str) -> Change:
        def change(props: dict[str, Any]) -> None:
            upload(props, "users.acl")["content"] += f"user reload on #abc {rules}\n"

        return change

    minimal = "resetkeys resetchannels -@all +config|set +acl|load"
    assert not run_rule(
        "redis-acl-least-privilege", mutate(foreign.records(), "cache-loader", with_reload(minimal))
    )
    broader = minimal + " +config|get"
    assert run_rule(
        "redis-acl-least-privilege", mutate(foreign.records(), "cache-loader", with_reload(broader))
    )


EXPORTER = "user exporter on #abc resetkeys resetchannels -@all +info +acl|log"


@pytest.mark.parametrize(
    ("line", "exporter_only"),
    [
        (EXPORTER, True),
        ("user exporter on #abc -@all +info", True),
        (EXPORTER + " +acl|setuser", False),
        (EXPORTER + " +acl", False),
        (EXPORTER + " +config|get", False),
        (EXPORTER + " +get", False),
        (EXPORTER + " +@admin", False),
        (EXPORTER + " ~*", False),
        (EXPORTER + " &*", False),
        ("user exporter on #abc -@all +acl|log", False),
        ("user exporter on #abc +@all -@dangerous +info", False),
        ("user exporter on #abc -@all +info -info", False),
        (EXPORTER + " +bgrewriteaof", True),
        ("user exporter on #abc resetkeys resetchannels -@all +bgrewriteaof +info", True),
        ("user exporter on #abc resetkeys resetchannels -@all +bgrewriteaof", False),
        ("user exporter on #abc -@all +bgrewriteaof +acl|log", False),
        ("user exporter on #abc -@all +info +bgrewriteaof -info", False),
        (EXPORTER + " +bgrewriteaof ~cache:*", False),
        (EXPORTER + " +bgrewriteaof &*", False),
        (EXPORTER + " +bgrewriteaof +bgsave", False),
        (EXPORTER + " +bgrewriteaof +get", False),
    ],
    ids=[
        "exact",
        "info-only",
        "plus-acl-setuser",
        "plus-whole-acl",
        "plus-config-get",
        "plus-get",
        "plus-admin",
        "all-keys",
        "all-channels",
        "acl-log-without-info",
        "categories",
        "info-taken-back",
        "plus-bgrewriteaof",
        "bgrewriteaof-beside-info",
        "bgrewriteaof-alone",
        "bgrewriteaof-without-info",
        "bgrewriteaof-info-taken-back",
        "bgrewriteaof-key-pattern",
        "bgrewriteaof-all-channels",
        "bgrewriteaof-plus-bgsave",
        "bgrewriteaof-plus-get",
    ],
)
def test_acl__exporter_identity_is_info_acl_log_and_bgrewriteaof_only(
    line: str, exporter_only: bool
) -> None:
    users = acl_users([tuple(line.split()[1:])])
    assert users["exporter"].exporter_only is exporter_only


def test_acl_least_privilege__accepts_the_exporter_identity_and_nothing_broader() -> None:
    def with_exporter(rules: str) -> Change:
        def change(props: dict[str, Any]) -> None:
            upload(props, "users.acl")["content"] += f"user exporter on #abc {rules}\n"

        return change

    minimal = "resetkeys resetchannels -@all +info +acl|log"
    assert not run_rule(
        "redis-acl-least-privilege",
        mutate(foreign.records(), "cache-loader", with_exporter(minimal)),
    )
    for broader in (minimal + " +acl|setuser", minimal + " +config|set", minimal + " +keys"):
        assert run_rule(
            "redis-acl-least-privilege",
            mutate(foreign.records(), "cache-loader", with_exporter(broader)),
        ), broader


def test_acl_least_privilege__accepts_bgrewriteaof_only_beside_info_and_no_key() -> None:
    """The exporter's AOF rewrite (docs/day2.md, "What a retirement leaves"); anywhere else
    BGREWRITEAOF is still an admin command the rule refuses."""

    def with_user(name: str, rules: str) -> Change:
        def change(props: dict[str, Any]) -> None:
            upload(props, "users.acl")["content"] += f"user {name} on #abc {rules}\n"

        return change

    def judged(name: str, rules: str) -> list[str]:
        records = mutate(foreign.records(), "cache-loader", with_user(name, rules))
        return run_rule("redis-acl-least-privilege", records)

    assert not judged("exporter", "resetkeys resetchannels -@all +info +acl|log +bgrewriteaof")
    assert not judged("exporter", "resetkeys resetchannels -@all +info +bgrewriteaof")
    for name, rules in (
        ("exporter", "resetkeys resetchannels -@all +bgrewriteaof"),
        ("exporter", "resetkeys resetchannels -@all +acl|log +bgrewriteaof"),
        ("exporter", "resetkeys ~cache:* resetchannels -@all +info +bgrewriteaof"),
        ("exporter", "resetkeys resetchannels &* -@all +info +bgrewriteaof"),
        ("cache", "resetkeys ~cache:* resetchannels -@all +get +set +bgrewriteaof"),
        ("reload", "resetkeys resetchannels -@all +config|set +acl|load +bgrewriteaof"),
    ):
        assert judged(name, rules), f"user {name} {rules} was accepted"
