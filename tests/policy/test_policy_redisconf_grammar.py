"""The pack reads redis.conf text and redis-server's argv as Redis 7.0 does (src/config.c
loadServerConfigFromString, src/sds.c sdssplitargs, src/server.c main), and its rules judge
what Redis then runs.

Every expectation here was read back from Debian's redis-server 7.0.15 by the differential test
(tests/integration/test_redis_config_differential.py), which starts it on the same text.
"""

from __future__ import annotations

from typing import Any

import pytest

from policies.records import Record, parse_records
from policies.rules._model import CONTAINER
from policies.rules._redisconf import parse_args, parse_conf, split_args
from tests.policy.support import run_rule

pytestmark = pytest.mark.policy

TLS = (
    "port 0\ntls-port 6380\ntls-cert-file /t/s.crt\ntls-key-file /t/s.key\n"
    "tls-ca-cert-file /t/ca.crt\n"
)


def server(conf: str, *argv: str, extra: dict[str, str] | None = None) -> list[Record]:
    uploads = [{"file": "/etc/redis/redis.conf", "content": conf}]
    uploads += [{"file": f"/etc/redis/{name}", "content": text}
                for name, text in (extra or {}).items()]  # fmt: skip
    props: dict[str, Any] = {
        "image": "redis:7.0",
        "entrypoints": ["redis-server", "/etc/redis/redis.conf", *argv],
        "uploads": uploads,
    }
    return parse_records(
        [{"type": CONTAINER, "name": "redis", "props": props}],
        source="test", stack="qa", project="shop",
    )  # fmt: skip


# -- sdssplitargs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "tokens"),
    [
        ('requirepass "\\x41\\x42"', ["requirepass", "AB"]),
        ('requirepass "a\\nb\\tc\\"d\\\\e\\qf"', ["requirepass", 'a\nb\tc"d\\eqf']),
        ("requirepass 'it\\'s'", ["requirepass", "it's"]),
        ("requirepass 'a\\nb'", ["requirepass", "a\\nb"]),  # no escape but \' in single quotes
        ("requirepass a\\b", ["requirepass", "a\\b"]),  # outside quotes a backslash is text
        ("requirepass a\\ b", ["requirepass", "a\\", "b"]),
        ('requirepass ""', ["requirepass", ""]),
        ("requirepass ''", ["requirepass", ""]),
        ('requirepass x"y z"', ["requirepass", "xy z"]),  # a quote may open inside a token
        ("requirepass #s3cret", ["requirepass", "#s3cret"]),
        ("requirepass a\x0cb", ["requirepass", "a\x0cb"]),  # only space, tab, CR, LF end one
        ('requirepass "s3cret"x', None),  # a closing quote must end its token
        ("requirepass 's3cret", None),
        ('requirepass "\\x4"', ["requirepass", "x4"]),  # \x needs two hex digits
    ],
)
def test_a_config_line_splits_as_redis_splits_it(line: str, tokens: list[str] | None) -> None:
    assert split_args(line) == tokens


def test_only_a_line_feed_ends_a_line__a_comment_runs_to_it() -> None:
    assert parse_conf("# settings\rrequirepass s3cret\rport 0\r") == ()
    assert parse_conf("# settings\x0crequirepass s3cret\n") == ()
    assert parse_conf("# settings\x85requirepass s3cret\u2028port 0\n") == ()
    assert parse_conf("requirepass s3cret\r\nport 0\r\n") == (
        ("requirepass", ("s3cret",)), ("port", ("0",)),
    )  # fmt: skip


def test_a_nul_byte_ends_what_redis_reads_of_its_line() -> None:
    assert parse_conf("requirepass s3\x00cret\nport 0\n") == (
        ("requirepass", ("s3",)), ("port", ("0",)),
    )  # fmt: skip


def test_directive_names_fold_to_lower_case_ascii_only() -> None:
    assert parse_conf("REQUIREPASS x\nProtected-Mode no\n") == (
        ("requirepass", ("x",)), ("protected-mode", ("no",)),
    )  # fmt: skip


# -- argv -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "directives"),
    [
        # One word is raw config text: a newline in it starts another line.
        (
            ['--requirepass s3cret\nrequirepass ""'],
            [("requirepass", ("s3cret",)), ("requirepass", ("",))],
        ),
        (["--port\t0"], [("port", ("0",))]),
        (["--save 60 1"], [("save", ("60", "1"))]),
        # An option given alone takes the next word, even one that looks like an option.
        (["--requirepass", "--port"], [("requirepass", ("--port",))]),
        # ...but --save and --sentinel then take none (redis-server 7.0.1 and later).
        (["--save", "--port", "0"], [("save", ("",)), ("port", ("0",))]),
        (["--port", "0", "--save"], [("port", ("0",)), ("save", ("",))]),
        # Every other word is one value, quoted: spaces, quotes and newlines stay in it.
        (["--requirepass", 'a "b"\nc'], [("requirepass", ('a "b"\nc',))]),
        (["--user", "alice", "on", ">pw"], [("user", ("alice", "on", ">pw"))]),
        (["--port=0"], [("port=0", ())]),
    ],
)
def test_argv_reads_as_redis_server_joins_it(
    argv: list[str], directives: list[tuple[str, tuple[str, ...]]]
) -> None:
    assert parse_args(["/etc/redis/redis.conf", *argv]) == ("/etc/redis/redis.conf", directives)


# -- what the rules then judge --------------------------------------------------------------------


def test_a_comment_ended_by_cr_alone__hides_port_0_from_redis_and_the_pack() -> None:
    records = server("# TLS only\rport 0\rtls-port 6380\r")
    assert run_rule("redis-tls-only", records) == [
        "Redis container redis must set port 0 (with tls-port) so it accepts TLS connections "
        "only; it listens for plaintext connections."
    ]


def test_a_file_included_again__undoes_the_password_set_between() -> None:
    conf = (
        "include /etc/redis/common.conf\nrequirepass s3cret-s3cret-s3cret-s3cret\n"
        "include /etc/redis/common.conf\n"
    )
    records = server(TLS + conf, extra={"common.conf": 'requirepass ""\n'})
    assert run_rule("redis-auth-required", records) == [
        "Redis container redis must require authentication (an aclfile with users that have "
        "passwords); anyone who connects is let in."
    ]


def test_a_newline_inside_one_argv_word__ends_the_option_there() -> None:
    records = server(TLS, '--requirepass s3cret-s3cret-s3cret\nrequirepass ""')
    assert run_rule("redis-auth-required", records) == [
        "Redis container redis must require authentication (an aclfile with users that have "
        "passwords); anyone who connects is let in."
    ]


@pytest.mark.parametrize(
    "conf",
    [
        "requirepass s3cret-s3cret-s3cret\nuser default on nopass ~* +@all\n",
        "user default on nopass ~* +@all\nrequirepass s3cret-s3cret-s3cret\n",
    ],
)
def test_a_user_default_line_makes_redis_ignore_requirepass__the_reason_says_so(
    conf: str,
) -> None:
    assert run_rule("redis-default-user-disabled", server(TLS + conf)) == [
        "Redis container redis must disable the default user ('user default off' in its ACL); "
        "unauthenticated connections act as it."
    ]


def test_requirepass_alone__is_the_default_users_password() -> None:
    assert run_rule("redis-default-user-disabled", server(TLS + "requirepass s3cret\n")) == [
        "Redis container redis must disable the default user ('user default off' in its ACL); "
        "every client that knows its password (requirepass) acts as it, with all of its "
        "rights: give each client its own ACL user."
    ]


def test_a_password_cut_by_a_nul_byte__is_judged_at_the_length_redis_takes() -> None:
    records = server(TLS + "requirepass ab\x00" + "c" * 60 + "\n")
    messages = run_rule("secret-password-length", records)
    assert len(messages) == 1, messages
    assert "requirepass" in messages[0]
