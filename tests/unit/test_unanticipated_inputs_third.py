"""A third set of inputs nobody planned for (test_unanticipated_inputs.py and
test_unanticipated_inputs_more.py have the first two): `docker exec` without `-i`, a long or
escape-laden user name in the authentication line, the exporter's paths and credential
lengths, and what the hand-made fuzzing of the CLIs found.

Each must be an error a user can act on (what, where, the fix), never a traceback, never a
secret, and never a value the user did not mean stored.
"""

from __future__ import annotations

import functools
import io
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from secure_cache import __main__ as cli
from secure_cache import diagnose, errors
from secure_cache.errors import ConfigurationError
from secure_cache.redis_exporter import ExporterSettings
from tests.support.entry_points import run_entry

SECRET = "S3cretValue-do-not-echo-0123456789abcdef"  # checkov:skip=CKV_SECRET_6: a marker


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
    code, text = run_entry(lambda: cli._set(cache, args))  # type: ignore[arg-type]
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
    code, text = run_entry(lambda: cli._set(cache, args))  # type: ignore[arg-type]
    assert (code, cache.stored) == (0, [("k", b"", None)]), text


def test_cache_cli__a_value_on_stdin_is_stored_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = _Recording()
    monkeypatch.setattr(sys, "stdin", _Stdin(b"\0value\n"))
    args = cli._parser("secure-cache").parse_args(["set", "k", "--ttl", "5"])
    code, text = run_entry(lambda: cli._set(cache, args))  # type: ignore[arg-type]
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


# -- found by hand-made fuzzing of the infra and policies commands ----------------------------


STACK_FILE = (
    "config:\n"
    "  secure-redis:environment: development\n"
    "  secure-redis:appHostPort: 18301\n"
    "  secure-redis:runtimeIdSlot: 41\n"
)


def _project(tmp_path: Path, text: str | bytes = STACK_FILE) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    target = project / "Pulumi.s41.yaml"
    if isinstance(text, bytes):
        target.write_bytes(text)
    else:
        target.write_text(text)
    return project


@pytest.mark.parametrize("action", ["get", "set"])
def test_stack_config__a_key_with_an_escape_sequence_is_shown_escaped_and_bounded(
    tmp_path: Path, action: str
) -> None:
    """`stack_config set --stack S $'k\\e[2J' v` printed "secure-redis:k<ESC>[2J is not a
    setting": the escape sequence reached the terminal raw (the stack file's own unknown keys
    were escaped already: infra/settings.py), and a 5000-character key was repeated whole."""
    from infra import stack_config  # noqa: PLC0415 - the infra side of this file

    project = _project(tmp_path)
    for key in ("k\x1b[2J\x07", "k" * 5000):
        argv = [action, "--stack", "s41", "--project-dir", str(project), key]
        if action == "set":
            argv.append("v")
        code, text = run_entry(functools.partial(stack_config.main, argv))
        assert code == 2, text
        assert "is not a setting" in text, text
        assert "\x1b" not in text, text
        assert "\x07" not in text, text
        assert "k" * 100 not in text, text


def test_stack_files__a_nul_in_a_stack_file_is_named_not_a_traceback(tmp_path: Path) -> None:
    """A NUL byte in Pulumi.S.yaml was a yaml.reader.ReaderError traceback from
    `stack_config get`, and `infra.apply plan` called it "an error the applier does not
    handle (a bug: report it)"."""
    from infra import apply, stack_config  # noqa: PLC0415

    project = _project(tmp_path, STACK_FILE.replace("development", "development\0"))
    code, text = run_entry(
        lambda: stack_config.main(
            ["get", "--stack", "s41", "--project-dir", str(project), "environment"]
        )
    )
    assert code == 2, text
    assert "Traceback" not in text
    assert "Pulumi.s41.yaml holds a character YAML does not allow (U+0000) at line 2" in text, text
    code, text = run_entry(
        lambda: apply.main(["plan", "--stack", "s41", "--project-dir", str(project)])
    )
    assert code == 2, text
    assert "U+0000" in text, text
    assert "a bug" not in text, text


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_apply__a_stack_file_that_is_no_regular_file_is_not_said_to_be_missing(
    tmp_path: Path, kind: str
) -> None:
    """`infra.apply plan` said "Pulumi.S.yaml does not exist in DIR (stacks there: S)" of a
    stack file that was a FIFO or a directory: the list beside it names the very stack. The
    stack_config and settings loader already said "is not a regular file"."""
    from infra import apply  # noqa: PLC0415

    project = tmp_path / "project"
    project.mkdir()
    if kind == "fifo":
        os.mkfifo(project / "Pulumi.s41.yaml")
    else:
        (project / "Pulumi.s41.yaml").mkdir()
    code, text = run_entry(
        lambda: apply.main(["plan", "--stack", "s41", "--project-dir", str(project)])
    )
    assert code == 2, text
    assert "does not exist" not in text, text
    assert f"Pulumi.s41.yaml in {project} is not a regular file" in text, text


def test_stack_names__a_long_one_is_shown_bounded(tmp_path: Path) -> None:
    """A 5000-character --stack was repeated whole in "... is not a stack name" by every
    infra command; the scripts' own check (scripts/lib.sh) is in the shell."""
    from infra import apply, stack_config  # noqa: PLC0415

    project = _project(tmp_path)
    stack = "a" * 5000
    for entry in (
        lambda: apply.main(["plan", "--stack", stack, "--project-dir", str(project)]),
        lambda: stack_config.main(
            ["get", "--stack", stack, "--project-dir", str(project), "environment"]
        ),
    ):
        code, text = run_entry(entry)
        assert code == 2, text
        assert "is not a stack name" in text, text
        assert "a" * 100 not in text, text


def test_stack_names__a_long_one_is_shown_bounded_by_the_policy_and_firewall_commands() -> None:
    """The same 5000 characters, repeated whole (twice) by policies.strictness and
    policies.check --stack, and by infra.firewall (its chain-name rule)."""
    from infra import firewall  # noqa: PLC0415
    from policies import check, strictness  # noqa: PLC0415

    stack = "a" * 5000
    for entry in (
        lambda: strictness.main(["--stack", stack]),
        lambda: check.run(["--stack", stack]),
        lambda: firewall.main(["show", "--stack", stack]),
    ):
        code, text = run_entry(entry)
        assert code == 2, text
        assert "a" * 100 not in text, text


def test_one_line_parser__a_report_with_control_characters_is_escaped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """policies.check with a policy config naming `"x\\u001b[2J"` printed "policy config names
    no policy of this pack: x<ESC>[2J", the escape sequence raw to the terminal."""
    from infra.cli import OneLineParser  # noqa: PLC0415

    OneLineParser(prog="python -m policies.check").report("names x\x1b[2J and \0 and a\nb")
    err = capsys.readouterr().err
    assert err == "python -m policies.check: error: names x\\x1b[2J and \\x00 and a\\nb\n", err


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:1/a b", "http://127.0.0.1:1/\x1b[2J", "http://127.0.0.1:1/\u00e9"],
    ids=["space", "escape", "non-ascii"],
)
def test_cache_cli__healthcheck_url_with_a_character_a_url_cannot_hold_is_bad_input(
    url: str,
) -> None:
    """`healthcheck --url 'http://127.0.0.1:8080/a b'` (or a control character) was an
    http.client.InvalidURL traceback, and a non-ASCII path "did not answer 200 (ordinal not
    in range(128))": exit 1, as if the service were unhealthy."""
    code, text = run_entry(lambda: cli.main(["healthcheck", "--url", url]))
    assert code == 2, text
    assert len(text.strip().splitlines()) == 1, text
    assert "Traceback" not in text
    assert "\x1b" not in text, text
    assert "http://127.0.0.1:<port>/healthz" in text, text


@pytest.mark.parametrize("value", ["NaN", "+Inf", "-Inf", "1e300", "-1e18"])
def test_status__a_value_no_date_or_count_can_hold_is_unknown_not_a_traceback(value: str) -> None:
    """scripts/status.sh prints what the stack's own containers report (the app's /metrics,
    scraped inside it, and the exporter's): an expiry of NaN, 1e300 or -1e18 ended
    stack_status.py in a ValueError/OverflowError/OSError traceback from
    datetime.fromtimestamp, a generation or ACL LOG count of NaN or Inf in one from int()."""
    from scripts.stack_status import parse, render  # noqa: PLC0415

    text = "\n".join(
        [
            f'secure_cache_certificate_expiry_timestamp_seconds{{certificate="ca"}} {value}',
            f"secure_cache_data_key_generation {value}",
            f"secure_cache_data_key_previous_keys {value}",
            f"secure_cache_api_previous_tokens {value}",
            f"# consumer healthcheck {value}",
            f"# trusted redis {value},{value}",
            "# redis redis_up 1",
            f'# redis redis_acl_log_entries{{reason="auth"}} {value}',
            f"# redis redis_acl_log_newest_age_seconds {value}",
            f'# redis redis_errors_total{{error="NOPERM"}} {value}',
        ]
    )
    lines = render("s41", parse(text, stack="s41"), 1_700_000_000.0)
    table = "\n".join(lines)
    assert "CA (earliest in the bundle)" in table
    ca = next(line for line in lines if line.startswith("CA (earliest"))
    assert "unknown" in ca, ca


@pytest.mark.parametrize("timeout", ["nan", "inf", "-1", "0", "1e400"])
def test_rotation_probe__a_timeout_that_is_no_positive_number_is_bad_input(timeout: str) -> None:
    """`rotation_probe wait --timeout nan` (or -1, 0) exited 1, "not settled", with not a
    line said (its loop never ran); `--timeout inf` waited for ever on a stack that is not
    deployed."""
    from infra import rotation_probe  # noqa: PLC0415

    argv = ["wait", "--stack", "s41", "--before", "/nonexistent", "--timeout", timeout]
    code, text = run_entry(lambda: rotation_probe.main(argv))
    assert code == 2, text
    assert "--timeout" in text, text
    assert "seconds" in text, text


@pytest.mark.parametrize("host", ["a..b", "h" * 5000, "h\x1b[2J", "[::1]"])
def test_exporter__a_metrics_host_no_resolver_takes_is_a_configuration_error(
    tmp_path: Path, host: str
) -> None:
    """METRICS_HOST=a..b (or a 5000-character name) was a UnicodeError traceback from the
    IDNA codec when `serve` bound it, and one with an escape sequence was printed raw in
    "cannot listen on METRICS_HOST=..."; REDIS_URL's host was checked so since
    test_unanticipated_inputs_more.py, HTTP_HOST too, METRICS_HOST not."""
    (problem,) = _exporter_problems({**_exporter_env(tmp_path), "METRICS_HOST": host})
    assert problem.startswith("METRICS_HOST is not a host name or IP address"), problem
    assert "h" * 100 not in problem, problem


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "redis-exporter-metrics", "localhost"])
def test_exporter__a_metrics_host_that_is_an_address_or_a_name_is_taken(
    tmp_path: Path, host: str
) -> None:
    settings = ExporterSettings.from_env({**_exporter_env(tmp_path), "METRICS_HOST": host})
    assert settings.metrics_host == host


@pytest.mark.parametrize("value", ["5\n", "5\r", "5\t", "\x1b[2J5"])
def test_stack_config__a_value_with_a_line_break_or_control_character_is_refused(
    tmp_path: Path, value: str
) -> None:
    """`stack_config set --stack S dataKeyGeneration $'5\\n'` passed (int() strips it), was
    written as a quoted scalar over two lines, and the next `set` of the key replaced only
    the first of them: the stack file was then "not valid YAML" for every command."""
    from infra import stack_config  # noqa: PLC0415

    project = _project(tmp_path)
    argv = ["set", "--stack", "s41", "--project-dir", str(project), "dataKeyGeneration"]
    code, text = run_entry(functools.partial(stack_config.main, [*argv, value]))
    assert code == 2, text
    assert "control character" in text, text
    assert "\x1b" not in text, text
    assert (project / "Pulumi.s41.yaml").read_text() == STACK_FILE
    code, text = run_entry(functools.partial(stack_config.main, [*argv, "6"]))
    assert code == 0, text
    assert "secure-redis:dataKeyGeneration: 6\n" in (project / "Pulumi.s41.yaml").read_text()


@pytest.mark.parametrize(
    "name", ["p\x1b[2Jq", "p\udcffq", "p\nq"], ids=["escape", "not-utf8", "newline"]
)
def test_project_dir__one_with_a_control_character_or_not_utf8_is_refused(
    tmp_path: Path, name: str
) -> None:
    """`--project-dir $'/x\\e[2J'` was echoed raw in every line that names it ("does not exist
    in /x<ESC>[2J"); a directory name that is not UTF-8 ended `apply down` in "failed with
    UnicodeEncodeError ... (a bug: report it)" where stdout is strict UTF-8 (a locale such as
    en_US.UTF-8; C.UTF-8 escapes it)."""
    import argparse  # noqa: PLC0415

    from infra.cli import project_dir  # noqa: PLC0415

    with pytest.raises(argparse.ArgumentTypeError) as raised:
        project_dir(str(tmp_path / name))
    message = str(raised.value)
    assert message.isprintable(), message
    assert "control character or bytes that are not UTF-8" in message, message
    assert project_dir(str(tmp_path / "plain dir é")) == tmp_path / "plain dir é"


def test_policies_check__a_resource_name_with_an_escape_sequence_is_shown_escaped() -> None:
    """`policies.check --resources FILE` printed a record's name (any text a JSON string holds:
    `"x\\u001b[2J\\u0007"`) raw in its table, so a resources file could drive the terminal;
    `--json` escapes it already."""
    from policies import check  # noqa: PLC0415
    from policies.analyzer import Finding  # noqa: PLC0415

    name = "x\x1b[2J\x07"
    finding = Finding(
        policy="container-capabilities-dropped",
        level="mandatory",
        urn=f"urn:pulumi:s41::p::docker:index/container:Container::{name}",
        resource=name,
        message=f"Container {name} must drop all Linux capabilities",
    )
    out = io.StringIO()
    check._print_table([finding], [], "policy pack on /tmp/r\x1b[2J.json", out)
    text = out.getvalue()
    assert "\x1b" not in text, text
    assert "\x07" not in text, text
    assert "Container x\\x1b[2J\\x07 must drop" in text, text


@pytest.mark.parametrize("timeout", ["abc", "0", "-5", "1e3", "60s"])
def test_base_image__a_pull_timeout_that_is_no_number_of_seconds_is_refused(
    tmp_path: Path, timeout: str
) -> None:
    """PULL_TIMEOUT=abc made `timeout` fail at once, silently (its error went to /dev/null
    with docker pull's), and the script said "pull failed; building ... offline with
    mmdebstrap": no pull had run. It is refused before the engine is asked."""
    import shutil  # noqa: PLC0415
    import subprocess  # noqa: PLC0415

    repo = Path(__file__).resolve().parents[2]
    shutil.copytree(repo / "scripts", tmp_path / "scripts")
    tools = tmp_path / "bin"
    tools.mkdir()
    fake = tools / "docker"  # an engine that is not there: nothing real is asked
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tools}:{os.environ['PATH']}", "PULL_TIMEOUT": timeout}
    done = subprocess.run(
        [str(tmp_path / "scripts" / "bootstrap-base-image.sh")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
        start_new_session=True,
    )
    assert done.returncode == 1, done.stderr
    assert "PULL_TIMEOUT" in done.stderr, done.stderr
    assert "whole number of seconds" in done.stderr, done.stderr


def test_state__a_passphrase_that_is_not_utf8_seals_and_opens(tmp_path: Path) -> None:
    """SECURE_REDIS_STATE_PASSPHRASE holding bytes that are not UTF-8 (typed in a Latin-1
    terminal; os.environ holds them as surrogates) ended the first `up` in "failed with
    UnicodeEncodeError, an error the applier does not handle (a bug)": scrypt was given
    passphrase.encode(). The passphrase is its bytes, as the environment holds them."""
    from infra.applier.state import PASSPHRASE_ENV, StateStore  # noqa: PLC0415
    from tests.unit.test_applier_state import sample  # noqa: PLC0415

    passphrase = "mot de passe \udce9t\udce9 long enough"  # b"... \xe9t\xe9 ..."
    StateStore(tmp_path, "dev", environ={PASSPHRASE_ENV: passphrase}).save(sample())
    again = StateStore(tmp_path, "dev", environ={PASSPHRASE_ENV: passphrase})
    assert again.load() == sample()


def test_cache_cli__healthcheck_failure_quotes_the_url_and_reason_bounded_and_escaped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """inputs16: "did not answer 200" echoed --url whole (5000 characters here) and the
    reason as the library gave it."""
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    url = "http://127.0.0.1:1/" + "a" * 5000

    def refused(*_args: object, **_kwargs: object) -> None:
        raise urllib.error.URLError("refused \x1b[2J " + "r" * 5000)  # nothing is probed

    monkeypatch.setattr(urllib.request, "urlopen", refused)
    code, text = run_entry(lambda: cli.main(["healthcheck", "--url", url]))
    assert code == 1, text
    assert len(text.strip().splitlines()) == 1, text
    assert "\x1b" not in text, text
    assert "refused \\x1b[2J" in text, text
    assert f"... ({len(url)} characters) did not answer 200" in text, text
    assert len(text) < 400, len(text)
