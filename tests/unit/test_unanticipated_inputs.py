"""Inputs nobody planned for, at the project's user-facing readers: a stack file's YAML (its
keys, and numbers of thousands of digits), the cache client's secret-file variables and its
command line, and the policy checker's JSON files.

Each reader must give an error a user can act on: one that says what and where, on lines a
terminal shows as written (no raw escape sequence or newline from the input), never a
traceback or "an error it does not handle", never a secret. tests/unit/test_fuzz_entry_points.py
draws whole environments and argument lists; this file draws the shapes it did not reach
(YAML scalars in their every spelling, keys with control characters, over-long numbers) and
pins the cases found that way. Example counts are small and drawn the same way every run.
"""

from __future__ import annotations

import base64
import io
import json
import string
import urllib.request
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra import apply
from infra.settings import SettingsError, load_settings, load_stack_file
from policies import check
from secure_cache import __main__ as cli
from secure_cache.errors import ConfigurationError
from secure_cache.settings import ServiceSettings
from secure_cache.settings import load_settings as load_cache_settings
from tests.support.entry_points import run_entry
from tests.support.fuzzing import drawn

BOUNDED = drawn(30)
SECRET = "S3cretValue-do-not-echo-0123456789abcdef"  # checkov:skip=CKV_SECRET_6: a marker
# More decimal digits than int() and str() accept (sys.get_int_max_str_digits(), 4300).
HUGE_DECIMAL = "9" * 5000
HUGE_HEX = "0x" + "f" * 5000  # int() reads it (base 16 has no limit); str() of it fails


def _terminal_safe(message: str) -> None:
    """Every line prints as written (the input's control characters escaped) and fits a
    screen (the input's long strings cut)."""
    for line in message.splitlines():
        assert line.isprintable(), f"a raw control character: {line!r}"
        assert len(line) <= 1000, f"a line of {len(line)} characters"


# -- Pulumi.<stack>.yaml ---------------------------------------------------------------------

BASE = (
    "config:\n"
    "  secure-redis:environment: development\n"
    "  secure-redis:appHostPort: 18145\n"
    "  secure-redis:runtimeIdSlot: 85\n"
)
SETTINGS = ["environment", "appHostPort", "redisPort", "appCpus", "keyPrefix", "tlsMinVersion"]
# Scalars as YAML spells them: every one of these is read by YAML as an int, float, bool,
# null, date or string, and some as nothing Python can print.
yaml_scalars = st.one_of(
    st.integers().map(str),
    st.sampled_from(
        [
            *(HUGE_DECIMAL, HUGE_HEX, "0o" + "7" * 6000, "-" + HUGE_DECIMAL, "1" + "0" * 4000),
            *("0x46a1", "1_000", "5:02:25", ".nan", "-.inf", "1e400", "~", "null", "yes", "Off"),
            *("2024-01-01", "1.30", "''", "[]", "{}", "[a, b]", "{secure: AAAA}", "!!binary YQ=="),
        ]
    ),
    st.floats().map(repr),
    st.text(max_size=30).map(json.dumps),  # a double-quoted YAML string, escapes and all
)
yaml_keys = st.one_of(
    st.sampled_from(SETTINGS).map(lambda k: f"secure-redis:{k}"),
    st.sampled_from(SETTINGS),
    st.sampled_from(["docker:host", "pulumi:x", "1", "true", "~", "0x" + "f" * 900, "9" * 1000]),
    st.text(min_size=1, max_size=30).map(json.dumps),
)


@BOUNDED
@given(entries=st.lists(st.tuples(yaml_keys, yaml_scalars), max_size=5))
def test_stack_file__any_scalar_or_key_is_a_settings_error_a_terminal_shows_as_written(
    tmp_path_factory: pytest.TempPathFactory, entries: list[tuple[str, str]]
) -> None:
    root = tmp_path_factory.mktemp("stack")
    body = "".join(f"  {key}: {value}\n" for key, value in entries)
    (root / "Pulumi.s85.yaml").write_text(BASE + body)
    try:
        load_settings("s85", load_stack_file("s85", root))
    except SettingsError as exc:
        _terminal_safe(str(exc))


@pytest.mark.parametrize(
    "line",
    [
        f"  secure-redis:redisPort: {HUGE_DECIMAL}\n",
        f"  secure-redis:redisPort: {HUGE_HEX}\n",
        f"  docker:host: {HUGE_HEX}\n",
        f"  {HUGE_HEX[:900]}: 1\n  {HUGE_HEX[:900]}: 2\n",
    ],
    ids=["decimal-value", "hex-value", "hex-docker-host", "hex-key-twice"],
)
def test_stack_file__a_number_of_thousands_of_digits_is_exit_2_with_its_line(
    tmp_path: Path, line: str
) -> None:
    """It was exit 3, "an error the applier does not handle (a bug: report it)": int() refuses
    a decimal of more than 4300 digits with a ValueError, and str() such an int read from hex."""
    (tmp_path / "Pulumi.s85.yaml").write_text(BASE + line)
    code, text = run_entry(
        lambda: apply.main(["plan", "--stack", "s85", "--project-dir", str(tmp_path)])
    )
    assert code == 2, text
    assert "does not handle" not in text
    assert "Pulumi.s85.yaml" in text, text
    # A plain decimal is read as its text, as Pulumi hands it to the program, so the setting's
    # own check names it; the other forms are refused where they are written.
    assert "line 5" in text or "set twice" in text or "expected a whole number" in text, text
    _terminal_safe(text)


@pytest.mark.parametrize(
    "key", ['"secure-redis:a\\e[2Jb"', '"secure-redis:a\\nb"', '"x\\e]0;title\\a:y"']
)
def test_stack_file__a_key_with_control_characters_is_named_escaped(
    tmp_path: Path, key: str
) -> None:
    """An unknown key was printed raw: an escape sequence in it cleared the screen (or set
    the terminal's title), a newline split the error line."""
    (tmp_path / "Pulumi.s85.yaml").write_text(BASE + f"  {key}: 1\n")
    with pytest.raises(SettingsError) as raised:
        load_settings("s85", load_stack_file("s85", tmp_path))
    message = str(raised.value)
    _terminal_safe(message)
    assert "\\x1b" in message or "\\n" in message, message


def test_stack_file__a_key_set_twice_is_named_escaped(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.s85.yaml").write_text(BASE + '  "a\\e[2J": 1\n  "a\\e[2J": 2\n')
    with pytest.raises(SettingsError, match="set twice") as raised:
        load_stack_file("s85", tmp_path)
    _terminal_safe(str(raised.value))


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (f'["ssh://u:{SECRET}@h"]', "docker:host is a list; set it to one URL"),
        ("{secure: AAAABBBB}", "docker:host is a secret value (not shown); set it to one URL in"),
    ],
)
def test_stack_file__a_docker_host_that_is_no_single_url_says_so(
    tmp_path: Path, value: str, shown: str
) -> None:
    """A list was read as the URL "['ssh://...']": the message named "a ['ssh:// URL"."""
    (tmp_path / "Pulumi.s85.yaml").write_text(BASE + f"  docker:host: {value}\n")
    with pytest.raises(SettingsError) as raised:
        load_settings("s85", load_stack_file("s85", tmp_path))
    assert shown in str(raised.value)
    assert SECRET not in str(raised.value)


# -- python -m policies.check: its JSON files --------------------------------------------------

RECORD = {"type": "docker:index/container:Container", "name": "kv", "props": {"image": "r:7"}}
# Numbers too long for int() (the first three), and other odd ones, in JSON documents.
json_numbers = st.sampled_from(
    [HUGE_DECIMAL, "-" + HUGE_DECIMAL, "1" + "0" * 4400, "1e999999", "-0", "1E400", "0.0"]
)
too_long = st.sampled_from([HUGE_DECIMAL, "-" + HUGE_DECIMAL, "1" + "0" * 4400])
bad_records = st.one_of(
    json_numbers.map(lambda n: f"[{n}]"),
    json_numbers.map(lambda n: f'{{"all": {n}}}'),
    # In a record's props only too long ones: a usable record would start the pack too.
    too_long.map(lambda n: json.dumps([{**RECORD, "props": {"x": 0}}]).replace("0}", n + "}")),
)
# Only configs the reader refuses: a usable one would start the policy pack (a second each).
bad_configs = st.one_of(
    too_long.map(lambda n: f'{{"all": {n}}}'),
    st.tuples(too_long, st.text(string.ascii_letters, min_size=1, max_size=8)).map(
        lambda t: f'{{"{t[1]}": {{"enforcementLevel": {t[0]}}}}}'
    ),
)


@BOUNDED
@given(
    payload=st.one_of(bad_records.map(lambda p: (p, False)), bad_configs.map(lambda p: (p, True)))
)
def test_policies_check__any_number_in_a_file_is_exit_2_naming_the_file(
    tmp_path_factory: pytest.TempPathFactory, payload: tuple[str, bool]
) -> None:
    """A number of thousands of digits was "could not process this input (ValueError); check
    the file against `python -m infra.preview`", also in a policy config."""
    text, as_config = payload
    root = tmp_path_factory.mktemp("check")
    (root / "bad.json").write_text(text)
    (root / "records.json").write_text(json.dumps([RECORD]))
    argv = (
        ["--resources", str(root / "records.json"), "--config", str(root / "bad.json")]
        if as_config
        else ["--resources", str(root / "bad.json")]
    )
    code, out = run_entry(lambda: check.run([*argv, "--stack-name", "qa"], out=io.StringIO()))
    assert code == 2, out
    assert "could not process this input" not in out, out
    _terminal_safe(out)


@pytest.mark.parametrize("as_config", [False, True], ids=["resources", "config"])
def test_policies_check__a_number_of_thousands_of_digits_names_the_file(
    tmp_path: Path, as_config: bool
) -> None:
    (tmp_path / "bad.json").write_text(f'{{"all": {HUGE_DECIMAL}}}' if as_config else "[1]")
    (tmp_path / "records.json").write_text(f"[{HUGE_DECIMAL}]")
    if as_config:
        (tmp_path / "records.json").write_text(json.dumps([RECORD]))
    argv = (
        ["--resources", str(tmp_path / "records.json"), "--config", str(tmp_path / "bad.json")]
        if as_config
        else ["--resources", str(tmp_path / "records.json")]
    )
    code, text = run_entry(lambda: check.run([*argv, "--stack-name", "qa"], out=io.StringIO()))
    assert code == 2
    what = "policy config" if as_config else "resources file"
    assert f"error: {what} {tmp_path}" in text, text
    assert "holds a number of thousands of digits" in text, text


# -- the cache client: a secret's _FILE variable, and `set` ------------------------------------

# 32 bytes of base64 with a '/' in it, made up for the test.
DATA_KEY = "q8/tZ0sUeQ9xv2ZyV+1Xk3n6JcB4bWm7aLp0HrG5dYI="  # checkov:skip=CKV_SECRET_6: a test key
SECRET_FILE_VARS = (
    "REDIS_PASSWORD_FILE",
    "REDIS_ENCRYPTION_KEY_FILE",
    "REDIS_ENCRYPTION_PREVIOUS_KEYS_FILE",
)
# Secrets as infra/secretgen.py makes them (letters and digits; data keys in base64), and
# lists of keys as REDIS_ENCRYPTION_PREVIOUS_KEYS holds them.
secrets_set_as_paths = st.one_of(
    st.text(string.ascii_letters + string.digits, min_size=16, max_size=64),
    st.binary(min_size=32, max_size=32).map(lambda b: base64.b64encode(b).decode()),
    st.just(DATA_KEY),
    st.just(f"{DATA_KEY}, {DATA_KEY.replace('q', 'r')}"),
    st.just(DATA_KEY.replace("+", "-").replace("/", "_")),  # URL-safe, as settings.py reads too
)


@BOUNDED
@given(var=st.sampled_from(SECRET_FILE_VARS), value=secrets_set_as_paths)
def test_cache_settings__a_secret_set_where_its_file_path_belongs_is_not_echoed(
    var: str, value: str
) -> None:
    """`REDIS_PASSWORD_FILE=$(cat pw)`: "REDIS_PASSWORD_FILE=<the password> does not exist"."""
    env = {"ENVIRONMENT": "development", var: value}
    with pytest.raises(ConfigurationError) as raised:
        load_cache_settings(env)
    message = str(raised.value)
    assert value not in message
    assert all(part not in message for part in value.split(", "))
    assert f"{var} names no file it can read" in message, message


def test_cache_settings__a_missing_file_path_is_still_shown(tmp_path: Path) -> None:
    """The guard above hides only what may be a secret: a path is where the fault is."""
    path = str(tmp_path / "not-mounted" / "redis-password")
    with pytest.raises(ConfigurationError) as raised:
        load_cache_settings({"ENVIRONMENT": "development", "REDIS_PASSWORD_FILE": path})
    assert f"REDIS_PASSWORD_FILE={path} does not exist; mount the file" in str(raised.value)


@BOUNDED
@given(
    # Starting with a letter: argparse takes "-123" for a negative number, a VALUE.
    value=st.text(string.ascii_letters + string.digits, min_size=8, max_size=30).map("x".__add__),
    shape=st.sampled_from(["dash", "words", "after-ttl", "option-like"]),
)
def test_cache_cli__set_never_echoes_what_may_be_its_value(
    value: str, shape: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`set k -VALUE` and `set k my secret words` were "unrecognized arguments: <value>"; and
    the message did not say how to pass such a value."""
    monkeypatch.setenv("ENVIRONMENT", "development")
    argv = {
        "dash": ["set", "k", f"-{value}"],
        "words": ["set", "k", "first", value, value[::-1]],
        "after-ttl": ["set", "k", "v", "--ttl", "5", value],
        "option-like": ["set", "k", f"--{value}"],
    }[shape]
    code, text = run_entry(lambda: cli.main(argv))
    assert code == 2
    assert value not in text, text
    assert value[::-1] not in text, text
    assert "set KEY -- -VALUE" in text, text
    assert len(text.strip().splitlines()) == 1


def test_cache_cli__other_commands_still_name_the_argument_they_do_not_know(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "development")
    code, text = run_entry(lambda: cli.main(["get", "k", "--bogus"]))
    assert code == 2
    assert "unrecognized arguments: --bogus" in text


def test_exporter_settings__a_password_set_where_its_file_path_belongs_is_not_echoed() -> None:
    """The exporter reads its password file through the same reader (settings.py)."""
    from secure_cache.redis_exporter import ExporterSettings  # noqa: PLC0415 - redis client

    password = "Pw" * 16
    with pytest.raises(ConfigurationError) as raised:
        ExporterSettings.from_env({"REDIS_PASSWORD_FILE": password})
    assert password not in str(raised.value)
    assert "REDIS_PASSWORD_FILE names no file it can read" in str(raised.value)


# URLs in pieces, so that the odd ones (an unclosed '[', user:password@) come up often.
urls = st.one_of(
    st.tuples(
        st.sampled_from(["http://", "https://", "", "ftp://"]),
        st.sampled_from(["", f"u:{SECRET}@", "@"]),
        st.sampled_from(["127.0.0.1", "localhost", "[::1]", "[::1", "::1]", "[", "h", ""]),
        st.sampled_from(["", ":1", ":99999", ":x", ":"]),
        st.sampled_from(["", "/healthz", "/%", "?#"]),
    ).map("".join),
    st.text(max_size=20),
)


@BOUNDED
@given(url=urls)
def test_cache_cli__healthcheck_any_url_is_an_exit_code_never_a_traceback(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`healthcheck --url 'http://[::1'` was an UnboundLocalError traceback (urlsplit refused
    it before `parts` was bound), and a --url's user:password@ was echoed in "did not answer".
    tests/unit/test_fuzz_entry_points.py leaves healthcheck out (it would probe a port)."""

    def refused(*_args: object, **_kwargs: object) -> None:
        raise OSError("refused")  # nothing is probed: a drawn URL may name a real local port

    monkeypatch.setattr(urllib.request, "urlopen", refused)
    code, text = run_entry(lambda: cli.main(["healthcheck", "--url", url]))
    assert code in (1, 2), text
    assert SECRET not in text
    assert "Traceback" not in text


def test_cache_cli__healthcheck_credentials_for_the_local_service_are_refused_unechoed() -> None:
    code, text = run_entry(
        lambda: cli.main(["healthcheck", "--url", f"http://u:{SECRET}@127.0.0.1:1/healthz"])
    )
    assert code == 2
    assert "takes no credentials" in text
    assert SECRET not in text


def test_cache_cli__healthcheck_an_unclosed_bracket_is_exit_2() -> None:
    code, text = run_entry(lambda: cli.main(["healthcheck", "--url", "http://[::1"]))
    assert code == 2
    assert "only probes the local service" in text


@pytest.mark.parametrize(
    "host", ["bad host", "::::", "999.1.1.1", "\x1b[2J", "[::1]", "a" * 300, "h:8080"]
)
def test_service_settings__a_host_no_socket_can_bind_is_a_configuration_error(host: str) -> None:
    """It failed only at bind: exit 6, "cannot listen on <host>:<port> ...; stop what uses
    that port", which sent the user after the port (and printed an escape sequence raw)."""
    with pytest.raises(ConfigurationError) as raised:
        ServiceSettings.from_env({"HTTP_API_TOKEN": "T" * 40, "HTTP_HOST": host})
    message = str(raised.value)
    assert "HTTP_HOST must be an IP address to listen on" in message
    _terminal_safe(message)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "::1", "127.0.0.1", "localhost", "app.local"])
def test_service_settings__addresses_and_names_are_still_accepted(host: str) -> None:
    assert ServiceSettings.from_env({"HTTP_API_TOKEN": "T" * 40, "HTTP_HOST": host}).host == host
