"""A third set of inputs nobody planned for (test_unanticipated_inputs.py and
test_unanticipated_inputs_more.py have the first two): `docker exec` without `-i`, a long or
escape-laden user name in the authentication line, the exporter's paths and credential
lengths, and what the hand-made fuzzing of the CLIs found.

Each must be an error a user can act on (what, where, the fix), never a traceback, never a
secret, and never a value the user did not mean stored.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from secure_cache import __main__ as cli
from secure_cache import diagnose, errors
from secure_cache.errors import ConfigurationError
from secure_cache.redis_exporter import ExporterSettings

SECRET = "S3cretValue-do-not-echo-0123456789abcdef"  # checkov:skip=CKV_SECRET_6: a marker


def _run(entry: Callable[[], int | None]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = entry()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
    return int(code or 0), out.getvalue() + err.getvalue()


class _Recording:
    """A cache that records what `set` was asked to store."""

    backend = "redis"
    events = SimpleNamespace(count=lambda _name: 0)

    def __init__(self) -> None:
        self.stored: list[tuple[str, bytes, int | None]] = []

    def set(self, key: str, value: bytes, ttl: int | None) -> None:
        self.stored.append((key, value, ttl))


class _Stdin:
    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)


# -- 1. `docker exec` without -i: an empty stdin ----------------------------------------------


def test_cache_cli__set_with_an_empty_stdin_stores_nothing_and_names_docker_exec_i(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`docker exec secure-redis-S-app secure-cache set KEY < file` (no -i) gives the command
    an empty stdin: it stored an empty value and exited 0, so the value the user meant was
    silently not there."""
    cache = _Recording()
    monkeypatch.setattr(sys, "stdin", _Stdin(b""))
    args = cli._parser("secure-cache").parse_args(["set", "k"])
    code, text = _run(lambda: cli._set(cache, args))  # type: ignore[arg-type]
    assert code == 2, text
    assert cache.stored == []
    assert len(text.strip().splitlines()) == 1, text
    assert "stdin is empty" in text, text
    assert "docker exec -i" in text, text
    assert "set KEY ''" in text, text


def test_cache_cli__an_empty_value_given_explicitly_is_still_stored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The explicit form of an empty value is an empty VALUE argument (`set KEY ''`); stdin
    is not read then."""
    cache = _Recording()
    monkeypatch.setattr(sys, "stdin", _Stdin(b"not read"))
    args = cli._parser("secure-cache").parse_args(["set", "k", ""])
    code, text = _run(lambda: cli._set(cache, args))  # type: ignore[arg-type]
    assert (code, cache.stored) == (0, [("k", b"", None)]), text


def test_cache_cli__a_value_on_stdin_is_stored_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = _Recording()
    monkeypatch.setattr(sys, "stdin", _Stdin(b"\0value\n"))
    args = cli._parser("secure-cache").parse_args(["set", "k", "--ttl", "5"])
    code, text = _run(lambda: cli._set(cache, args))  # type: ignore[arg-type]
    assert (code, cache.stored) == (0, [("k", b"\0value\n", 5)]), text


# -- 2. the user name in the authentication line ---------------------------------------------


class _WrongPass:
    """A TLS socket whose Redis answers AUTH with WRONGPASS."""

    def sendall(self, _data: bytes) -> None:
        pass

    def recv(self, _size: int) -> bytes:
        return b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"


@pytest.mark.parametrize(
    "username",
    ["u" * 1000, "app\x1b[2J\x1b]0;owned\x07" + "v" * 300],
    ids=["1000-characters", "escape-sequences"],
)
def test_diagnose__a_refused_user_is_shown_as_a_bounded_escaped_prefix(username: str) -> None:
    """The authentication line quoted REDIS_USERNAME whole: up to its 1024-character cap on
    one line, and (through repr) escapes only as Python writes them. It now shows a prefix
    of at most 64 characters, escaped, and the name's length."""
    settings = SimpleNamespace(username=username, password=SECRET)
    line = diagnose._authenticate(_WrongPass(), settings, "redis:6380")  # type: ignore[arg-type]
    assert line.startswith("authentication: redis at redis:6380 refused user '"), line
    assert f"... ({len(username)} characters)'" in line, line
    assert "u" * 65 not in line, line
    assert "v" * 65 not in line, line
    assert line.isprintable(), line
    assert SECRET not in line


def test_diagnose__a_short_user_name_is_shown_as_it_is() -> None:
    settings = SimpleNamespace(username="app", password=SECRET)
    line = diagnose._authenticate(_WrongPass(), settings, "redis:6380")  # type: ignore[arg-type]
    assert "refused user 'app' with the configured password" in line, line


def test_shown__escapes_and_bounds() -> None:
    assert errors.shown("app") == "app"
    assert errors.shown("a\x1b[2Jb\n") == "a\\x1b[2Jb\\n"
    assert errors.shown("x" * 100, 10) == "x" * 10 + "... (100 characters)"


# -- 3. the exporter's paths and credentials ---------------------------------------------------


def _exporter_env(tmp_path: Path) -> dict[str, str]:
    env = {"REDIS_URL": "rediss://redis:6380", "REDIS_PASSWORD": SECRET}
    for var in ("REDIS_TLS_CA_CERT", "REDIS_TLS_CERT_FILE", "REDIS_TLS_KEY_FILE"):
        path = tmp_path / var.lower()
        path.write_text("pem")
        env[var] = str(path)
    return env


def _exporter_problems(env: dict[str, str]) -> tuple[str, ...]:
    with pytest.raises(ConfigurationError) as raised:
        ExporterSettings.from_env(env)
    return raised.value.problems


def test_exporter__a_path_with_escape_sequences_is_shown_escaped(tmp_path: Path) -> None:
    """The path is shown through ConfigurationError's escaping (secure_cache/errors.py): the
    terminal never gets the escape sequence."""
    env = {**_exporter_env(tmp_path), "REDIS_TLS_CA_CERT": "/certs/\x1b[2J\x1b]0;x\x07ca.crt"}
    (problem,) = _exporter_problems(env)
    assert "\x1b" not in problem, problem
    assert "\x07" not in problem, problem
    assert "REDIS_TLS_CA_CERT=/certs/\\x1b[2J" in problem, problem


@pytest.mark.parametrize("var", ["REDIS_TLS_CA_CERT", "RELOAD_CERT_FILE"])
def test_exporter__a_path_longer_than_the_system_takes_is_a_problem_not_a_traceback(
    tmp_path: Path, var: str
) -> None:
    """A 6000-character path was an OSError traceback (ENAMETOOLONG from Path.is_file) at
    start; its problem now shows a bounded prefix of it."""
    env = {**_exporter_env(tmp_path), var: "/a" * 3000}
    (problem,) = _exporter_problems(env)
    assert problem.startswith(f"{var}=/a/a/a"), problem
    assert "(6000 characters) is not a readable file" in problem, problem
    assert len(problem) < 600, problem


@pytest.mark.parametrize("kind", ["fifo", "directory", "dev-zero"])
def test_exporter__a_path_that_is_no_regular_file_is_a_problem(tmp_path: Path, kind: str) -> None:
    env = _exporter_env(tmp_path)
    target = tmp_path / "not-a-file"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "directory":
        target.mkdir()
    else:
        target.symlink_to("/dev/zero")
    env["REDIS_TLS_KEY_FILE"] = str(target)
    (problem,) = _exporter_problems(env)
    assert problem == f"REDIS_TLS_KEY_FILE={target} is not a readable file", problem


@pytest.mark.parametrize("name", ["REDIS_USERNAME", "REDIS_PASSWORD"])
def test_exporter__a_user_or_password_over_the_cache_cap_is_named_by_length(
    tmp_path: Path, name: str
) -> None:
    """The cache refuses a REDIS_USERNAME/REDIS_PASSWORD over 1024 characters (Redis refuses
    an unauthenticated argument over 16 KiB: exit 5 with no reason, or a ResponseError); the
    exporter took any length, and so failed every scrape with redis_up 0."""
    value = "u" * 70_000 if name == "REDIS_USERNAME" else SECRET * 2000
    (problem,) = _exporter_problems({**_exporter_env(tmp_path), name: value})
    assert f"{name} is {len(value)} characters; at most 1024" in problem, problem
    assert SECRET not in problem
    assert "u" * 100 not in problem


def test_exporter__a_password_file_over_the_cap_is_named_by_length(tmp_path: Path) -> None:
    env = _exporter_env(tmp_path)
    del env["REDIS_PASSWORD"]
    (tmp_path / "pw").write_text(SECRET * 100)
    env["REDIS_PASSWORD_FILE"] = str(tmp_path / "pw")
    (problem,) = _exporter_problems(env)
    assert f"REDIS_PASSWORD is {len(SECRET) * 100} characters; at most 1024" in problem
    assert SECRET not in problem


def test_exporter__credentials_at_the_cap_are_accepted(tmp_path: Path) -> None:
    env = {**_exporter_env(tmp_path), "REDIS_USERNAME": "u" * 1024, "REDIS_PASSWORD": "p" * 1024}
    settings = ExporterSettings.from_env(env)
    assert (len(settings.username), len(settings.password)) == (1024, 1024)
