"""More inputs nobody planned for (tests/unit/test_unanticipated_inputs.py has the first set):
an option given twice with two values, a Redis host no resolver can encode, variables holding
bytes that are not UTF-8, an over-long METRICS_PORT, and a whole-number setting written as a
fraction or a one-letter YAML 1.1 boolean in a stack file.

Each must be an error a user can act on (what, where, the fix; exit 2), never a traceback and
never a secret; or, where every reader agrees, be accepted.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra import apply, stack_config
from infra import cli as infra_cli
from infra.applier.state import StackState, StateError, StateStore
from infra.settings import SettingsError, load_stack_file
from infra.settings import load_settings as load_stack_settings
from secure_cache import __main__ as cli
from secure_cache.cli_parser import OneLineParser as AppParser
from secure_cache.errors import ConfigurationError
from secure_cache.settings import ServiceSettings
from secure_cache.settings import load_settings as load_cache_settings
from tests.support.entry_points import run_entry
from tests.support.fuzzing import drawn

BOUNDED = drawn(30)
SECRET = "S3cretValue-do-not-echo-0123456789abcdef"  # checkov:skip=CKV_SECRET_6: a marker


# -- an option given twice ---------------------------------------------------------------------


def test_infra_cli__a_stack_given_twice_with_two_names_is_refused(tmp_path: Path) -> None:
    """`apply down --stack s96 --stack dev` went on with the last one, dev: a history line
    with a --stack appended removed another stack than the one written first."""
    code, text = run_entry(lambda: apply.main(["plan", "--stack", "s96", "--stack", "s97"]))
    assert code == 2, text
    assert "--stack is given twice with different values; give it once" in text, text


def test_infra_cli__the_same_value_twice_is_still_one_option(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.s96.yaml").write_text(
        "config:\n  secure-redis:environment: development\n  secure-redis:appHostPort: 18200\n"
        "  secure-redis:runtimeIdSlot: 96\n"
    )
    argv = ["get", "--stack", "s96", "--stack=s96", "--project-dir", str(tmp_path), "appHostPort"]
    code, text = run_entry(lambda: stack_config.main(argv))
    assert (code, text.strip()) == (0, "18200")


def test_infra_cli__is_the_apps_parser_with_its_own_error_line() -> None:
    """One definition of the one-line parser and its option-given-twice rule: infra's is the
    app's (app/secure_cache/cli_parser.py) with an error line that points at --help. Before
    leftovers16 the two files held the same `_StoreOnce` and `OneLineParser` twice."""
    assert issubclass(infra_cli.OneLineParser, AppParser)
    assert not hasattr(infra_cli, "_StoreOnce")
    parser = infra_cli.OneLineParser(prog="infra.x")
    parser.add_argument("--stack")

    def twice() -> None:
        parser.parse_args(["--stack", "a", "--stack", "b"])

    code, text = run_entry(twice)
    assert (code, text) == (
        2,
        "infra.x: error: --stack is given twice with different values; give it once "
        "(see infra.x --help)\n",
    )
    assert parser.parse_args(["--stack", "a", "--stack", "a"]).stack == "a"


def test_cache_cli__an_option_given_twice_is_refused_without_its_values() -> None:
    """`set k v --ttl 5 --ttl 6` stored the value with the last ttl. The message shows neither
    value: the cache's options may carry a URL (healthcheck --url) with a password in it."""
    code, text = run_entry(lambda: cli.main(["set", "k", "v", "--ttl", "5", "--ttl", "6"]))
    assert code == 2, text
    assert "--ttl is given twice with different values; give it once" in text
    code, text = run_entry(
        lambda: cli.main(["healthcheck", "--url", f"http://u:{SECRET}@h/", "--url", "http://x"])
    )
    assert code == 2, text
    assert SECRET not in text


# -- REDIS_URL's host ----------------------------------------------------------------------------

CACHE_ENV = {"ENVIRONMENT": "development", "REDIS_USERNAME": "app"}


@pytest.mark.parametrize(
    "host",
    ["a..b", "a" * 64, ("a" * 60 + ".") * 5 + "a", ".a", "a b", "a%b"],
    ids=["empty-label", "label-64", "name-300", "leading-dot", "space", "percent"],
)
def test_cache_settings__a_redis_host_no_resolver_takes_is_a_configuration_error(
    host: str,
) -> None:
    """`get` with REDIS_URL=rediss://a..b:6380 ended in a UnicodeError traceback from
    getaddrinfo's IDNA encoding (exit 1, which means "miss")."""
    with pytest.raises(ConfigurationError) as raised:
        load_cache_settings({**CACHE_ENV, "REDIS_URL": f"rediss://{host}:6380"})
    assert "REDIS_URL host is not a host name or IP address" in str(raised.value)


@pytest.mark.parametrize(
    "host", ["redis", "secure-redis-dev-redis", "redis_1", "bücher.example", "127.0.0.1", "[::1]"]
)
def test_cache_settings__names_and_addresses_are_still_accepted(host: str) -> None:
    with pytest.raises(ConfigurationError) as raised:  # the other variables are missing
        load_cache_settings({**CACHE_ENV, "REDIS_URL": f"rediss://{host}:6380"})
    assert "REDIS_URL" not in str(raised.value)


def test_cache_cli__a_bad_redis_host_is_exit_2_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(os.environ):
        if name.startswith(("REDIS_", "HTTP_", "CACHE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ENVIRONMENT", "development")
    monkeypatch.setenv("REDIS_URL", "rediss://a..b:6380")
    code, text = run_entry(lambda: cli.main(["get", "k"]))
    assert code == 2, text
    assert "REDIS_URL host" in text


# -- variables holding bytes that are not UTF-8 ------------------------------------------------

# os.environ holds such bytes as lone surrogates (PEP 383); redis-py cannot encode them.
NOT_UTF8 = "ap\udcffp"


@pytest.mark.parametrize("name", ["REDIS_USERNAME", "REDIS_PASSWORD", "REDIS_URL"])
def test_cache_settings__a_value_that_is_not_utf8_is_named_not_shown(name: str) -> None:
    """`get` with such a REDIS_USERNAME or REDIS_PASSWORD ended in a UnicodeEncodeError
    traceback from hiredis.pack_command (exit 1)."""
    value = {"REDIS_USERNAME": NOT_UTF8, "REDIS_PASSWORD": SECRET + "\udcff"}.get(
        name, "rediss://h\udcff:6380"
    )
    with pytest.raises(ConfigurationError) as raised:
        load_cache_settings({**CACHE_ENV, "REDIS_URL": "rediss://redis:6380", name: value})
    message = str(raised.value)
    assert f"{name} is not UTF-8 text" in message, message
    assert SECRET not in message
    assert "\udcff" not in message


def test_service_settings__a_token_that_is_not_utf8_is_named_not_shown() -> None:
    with pytest.raises(ConfigurationError) as raised:
        ServiceSettings.from_env({"HTTP_API_TOKEN": SECRET + "\udcff"})
    assert "HTTP_API_TOKEN is not UTF-8 text" in str(raised.value)
    assert SECRET not in str(raised.value)


def test_cache_settings__a_path_that_is_not_utf8_is_still_a_path(tmp_path: Path) -> None:
    """A file name in another encoding is a file the system opens: not refused as text."""
    with pytest.raises(ConfigurationError) as raised:
        load_cache_settings({**CACHE_ENV, "REDIS_TLS_CA_CERT": str(tmp_path) + "/\udcff"})
    assert "REDIS_TLS_CA_CERT is not UTF-8" not in str(raised.value)
    assert "does not exist" in str(raised.value)


# -- the exporter ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("METRICS_PORT", "0" * 5000 + "1", "METRICS_PORT must be a port number"),
        ("REDIS_URL", "rediss://a..b:6380", "REDIS_URL host is not a host name or IP address"),
        ("REDIS_URL", "rediss://h\udcff:6380", "REDIS_URL is not UTF-8 text"),
        ("REDIS_USERNAME", NOT_UTF8, "REDIS_USERNAME is not UTF-8 text"),
    ],
    ids=["port-5000-digits", "empty-label", "non-utf8-host", "non-utf8-user"],
)
def test_exporter_settings__a_value_it_cannot_use_is_a_configuration_error(
    name: str, value: str, expected: str
) -> None:
    """METRICS_PORT of 5000 digits was a ValueError traceback (int() refuses more than 4300
    digits); a host no resolver takes started the exporter, which then failed every scrape."""
    from secure_cache.redis_exporter import ExporterSettings  # noqa: PLC0415 - redis client

    env = {"REDIS_URL": "rediss://redis:6380", "REDIS_PASSWORD": "p" * 30, name: value}
    with pytest.raises(ConfigurationError) as raised:
        ExporterSettings.from_env(env)
    assert expected in str(raised.value), str(raised.value)


# -- Pulumi.<stack>.yaml: whole numbers as fractions; y and n ---------------------------------

BASE = (
    "config:\n"
    "  secure-redis:environment: development\n"
    "  secure-redis:appHostPort: 18200\n"
    "  secure-redis:runtimeIdSlot: 96\n"
)


@pytest.mark.parametrize(
    ("line", "write"),
    [
        ("  secure-redis:dataKeyGeneration: 2.0\n", "write 2"),
        ("  runtimeIdSlot2: 1\n", None),
        ("  appMemoryMb: 300.000\n", "write 300"),
        ("  secure-redis:certRenewalGeneration: -0.0\n", "write 0"),
    ],
    ids=["namespaced", "unknown-key", "bare-key", "minus-zero"],
)
def test_stack_file__a_whole_number_setting_written_as_a_fraction_names_its_line(
    tmp_path: Path, line: str, write: str | None
) -> None:
    """Decided: refused, where it is written. Pulumi versions that hand the program the text
    give it "2.0", which the setting refuses; versions that keep YAML's types hand it "2". One
    reading per text: write the whole number."""
    (tmp_path / "Pulumi.s96.yaml").write_text(BASE + line)
    with pytest.raises(SettingsError) as raised:
        load_stack_settings("s96", load_stack_file("s96", tmp_path), source="Pulumi.s96.yaml")
    message = str(raised.value)
    if write is None:  # not a setting: named as unknown, as before
        assert "runtimeIdSlot2" in message
        return
    assert "Pulumi.s96.yaml, line 5" in message, message
    assert "a whole number written as a fraction" in message, message
    assert write in message, message


@pytest.mark.parametrize("value", ["1.0", "2.0", "0.5"])
def test_stack_file__a_fraction_for_a_number_setting_is_accepted(
    tmp_path: Path, value: str
) -> None:
    """redisCpus and appCpus take fractions: 1.0 is one CPU to every reader."""
    (tmp_path / "Pulumi.s96.yaml").write_text(BASE + f"  secure-redis:redisCpus: {value}\n")
    assert load_stack_file("s96", tmp_path)["secure-redis:redisCpus"] == value


@pytest.mark.parametrize("value", ["y", "n", "Y", "N"])
def test_stack_file__y_and_n_stay_refused_with_the_quote_that_fixes_them(
    tmp_path: Path, value: str
) -> None:
    """Settled: PyYAML and a Pulumi that hands over the text read `y` as text, but Go's YAML v2
    (the one Pulumi's config encoding imports) resolves y/Y/n/N as booleans when a value keeps
    its YAML type, so a Pulumi version that keeps types hands over "true"/"false"."""
    (tmp_path / "Pulumi.s96.yaml").write_text(BASE + f"  secure-redis:keyPrefix: {value}\n")
    with pytest.raises(SettingsError) as raised:
        load_stack_file("s96", tmp_path)
    message = str(raised.value)
    assert "line 5" in message
    assert "the boolean" in message
    assert f'quote it: secure-redis:keyPrefix: "{value}"' in message


@BOUNDED
@given(whole=st.integers(min_value=0, max_value=10**6), zeros=st.integers(1, 4))
def test_stack_file__any_whole_number_fraction_for_an_int_setting_is_refused_with_the_fix(
    tmp_path_factory: pytest.TempPathFactory, whole: int, zeros: int
) -> None:
    root = tmp_path_factory.mktemp("f")
    (root / "Pulumi.s96.yaml").write_text(
        BASE + f"  secure-redis:certRenewalGeneration: {whole}.{'0' * zeros}\n"
    )
    with pytest.raises(SettingsError) as raised:
        load_stack_file("s96", root)
    assert f"write {whole}" in str(raised.value)


# -- the applier's state file and key file ------------------------------------------------------


def _stored_state(tmp_path: Path) -> Path:
    """A saved (empty) state of stack s96 under tmp_path, sealed with the key file."""
    store = StateStore(tmp_path, "s96", environ={})
    store.save(StackState("s96"))
    return store.directory


@pytest.mark.parametrize("shape", ["directory", "dev-zero", "loop"])
def test_state_key_file__not_a_regular_file_is_named_with_the_fix(
    tmp_path: Path, shape: str
) -> None:
    """A key file that was a directory or a symlink to /dev/zero was "readable by others
    (mode 0755/0666); chmod 600 it" (chmod 600 /dev/zero is no fix); a symlink loop was exit 3,
    "an error the applier does not handle (a bug: report it)"."""
    directory = _stored_state(tmp_path)
    key = directory / "state.key"
    key.unlink()
    if shape == "directory":
        key.mkdir(mode=0o700)
    elif shape == "dev-zero":
        key.symlink_to("/dev/zero")
    else:
        key.symlink_to(directory / "loop")
        (directory / "loop").symlink_to(key)
    with pytest.raises(StateError) as raised:
        StateStore(tmp_path, "s96", environ={}).load()
    message = str(raised.value)
    assert "chmod" not in message, message
    assert f"key file {key}" in message, message
    assert "restore" in message, message


@pytest.mark.parametrize("shape", ["dev-zero", "directory", "loop", "fifo"])
def test_state_file__not_a_regular_file_is_named_not_read(tmp_path: Path, shape: str) -> None:
    """A state file that was a symlink to /dev/zero was read until memory ran out (`plan`
    hung); a symlink loop was exit 3, "a bug"."""
    directory = _stored_state(tmp_path)
    state = directory / "s96.state"
    state.unlink()
    if shape == "directory":
        state.mkdir(mode=0o700)
    elif shape == "dev-zero":
        state.symlink_to("/dev/zero")
    elif shape == "fifo":
        os.mkfifo(state, 0o600)  # opening one with no writer must not block
    else:
        state.symlink_to(directory / "loop")
        (directory / "loop").symlink_to(state)
    for action in ("load", "rekey"):
        store = StateStore(tmp_path, "s96", environ={})
        with pytest.raises(StateError) as raised:
            store.load() if action == "load" else store.rekey("n" * 20)
        message = str(raised.value)
        assert f"state file {state}" in message, message
        assert "restore" in message or "cannot be read" in message, message


def test_applier_plan__a_state_key_loop_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.s96.yaml").write_text(BASE)
    directory = _stored_state(tmp_path)
    key = directory / "state.key"
    key.unlink()
    key.symlink_to(directory / "loop")
    (directory / "loop").symlink_to(key)
    code, text = run_entry(
        lambda: apply.main(["plan", "--stack", "s96", "--project-dir", str(tmp_path)])
    )
    assert code == 2, text
    assert "does not handle" not in text


# -- the HTTP API's ?ttl= ----------------------------------------------------------------------


def test_http_api__a_ttl_of_thousands_of_digits_is_400_not_500() -> None:
    """`PUT /cache/k?ttl=999...` (5000 digits) answered 500 "internal error" and logged
    event=http_failure error=ValueError: int() refuses more than 4300 digits. Leading zeros
    still count for nothing, as `ttl=0060` always has."""
    from secure_cache import http_api  # noqa: PLC0415 - the server's modules

    with pytest.raises(http_api.Reply) as raised:
        http_api._ttl(b"ttl=" + b"9" * 5000)
    assert raised.value.status == 400
    assert http_api._ttl(b"ttl=" + b"0" * 5000 + b"60") == 60


# -- lengths Redis refuses before AUTH, and an endless stdin -----------------------------------


@pytest.mark.parametrize("name", ["REDIS_USERNAME", "REDIS_PASSWORD"])
def test_cache_settings__a_user_or_password_redis_refuses_unread_is_named(name: str) -> None:
    """Redis refuses an argument over 16 KiB from a client that has not authenticated: a
    70000-character REDIS_USERNAME was exit 5 "redis refused the command (see the event line
    above)" with an event line that said nothing more, and 100000 characters a
    ResponseError traceback ("Protocol error: unauthenticated bulk length")."""
    value = "u" * 70_000 if name == "REDIS_USERNAME" else SECRET * 2000
    with pytest.raises(ConfigurationError) as raised:
        load_cache_settings({**CACHE_ENV, "REDIS_URL": "rediss://redis:6380", name: value})
    message = str(raised.value)
    assert f"{name} is {len(value)} characters; at most 1024" in message, message
    assert SECRET not in message
    assert "u" * 100 not in message


def test_cache_cli__set_from_an_endless_stdin_stops_at_the_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`secure-cache set k < /dev/zero` read until memory ran out (killed by a 20 s timeout
    by hand). stdin is now read up to the largest value Redis stores (proto-max-bulk-len's
    default, 512 MiB; 64 bytes here) and refused beyond, with nothing stored."""

    class Never:
        backend = "redis"

        def set(self, *_args: object) -> None:
            raise AssertionError("nothing is stored")

    class Stdin:
        buffer = io.BytesIO(b"\0" * 65)

    monkeypatch.setattr(cli, "MAX_STDIN_VALUE_BYTES", 64)
    monkeypatch.setattr(sys, "stdin", Stdin())
    args = cli._parser("secure-cache").parse_args(["set", "k"])
    code, text = run_entry(lambda: cli._set(Never(), args))  # type: ignore[arg-type]
    assert code == 2, text
    assert "stdin holds more than 64 bytes" in text, text


# -- scripts with no docker on PATH ----------------------------------------------------------------


@pytest.mark.parametrize(("script", "code"), [("status.sh", 3), ("teardown.sh", 1)])
def test_scripts__no_docker_on_path_is_said_so_not_engine_down(
    tmp_path: Path, script: str, code: int
) -> None:
    """With PATH lacking the docker command, the scripts said "the Docker engine is not
    reachable (docker info failed); start it with scripts/bootstrap.sh" (the engine may be
    running; the fix is PATH)."""
    import shutil  # noqa: PLC0415
    import subprocess  # noqa: PLC0415

    repo = Path(__file__).resolve().parents[2]
    shutil.copytree(repo / "scripts", tmp_path / "scripts")
    (tmp_path / "Pulumi.s96.yaml").write_text(BASE)
    venv_python = tmp_path / ".venv" / "bin" / "python"
    venv_python.parent.mkdir(parents=True)
    venv_python.write_text("#!/bin/sh\nexit 0\n")
    venv_python.chmod(0o755)
    tools = tmp_path / "bin"  # what the scripts use before they look for docker, and no docker
    tools.mkdir()
    for tool in ("bash", "env", "dirname", "awk", "find", "sed", "sort", "paste", "id", "cat"):
        found = shutil.which(tool)
        assert found, tool
        (tools / tool).symlink_to(found)
    done = subprocess.run(
        [str(tools / "bash"), str(tmp_path / "scripts" / script), "s96"],
        capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": str(tools), "LANG": "C"},
    )  # fmt: skip
    assert done.returncode == code, done.stderr
    assert "the docker command is not on PATH" in done.stderr, done.stderr
    assert "not reachable" not in done.stderr, done.stderr


# -- stack_config set on a full or read-only file system ---------------------------------------


@pytest.mark.parametrize("fails", ["temporary", "replace"])
def test_stack_config_set__a_write_the_file_system_refuses_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fails: str
) -> None:
    """On a full tmpfs (ENOSPC) or a directory it may not write (EACCES, as nobody), `set`
    ended in an OSError traceback (exit 1). The file is left as it was, no temporary behind."""
    import errno  # noqa: PLC0415

    (tmp_path / "Pulumi.s96.yaml").write_text(BASE)

    def no_space(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    name = "tempfile.NamedTemporaryFile" if fails == "temporary" else "os.replace"
    monkeypatch.setattr(name, no_space)
    argv = ["set", "--stack", "s96", "--project-dir", str(tmp_path), "appMemoryMb", "300"]
    code, text = run_entry(lambda: stack_config.main(argv))
    assert code == 2, text
    assert "Pulumi.s96.yaml could not be written (No space left on device)" in text, text
    assert "nothing was changed" in text
    assert (tmp_path / "Pulumi.s96.yaml").read_text() == BASE
    assert [p.name for p in tmp_path.iterdir()] == ["Pulumi.s96.yaml"]


# -- rotation_probe --before ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{}", "is not a snapshot"),
        ("[]", "is not a snapshot"),
        ("not json", "is not a snapshot"),
        (None, "cannot be read (Is a directory)"),
        ("/dev/zero", "is not a regular file"),
    ],
    ids=["empty-object", "list", "not-json", "directory", "dev-zero"],
)
def test_rotation_probe__a_before_file_that_is_no_snapshot_is_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | None, expected: str
) -> None:
    """`guard`/`unfinished` with --before holding `{}` or `[]` were KeyError/TypeError
    tracebacks (exit 1); `report --before /dev/zero` read until memory ran out (killed by a
    60 s timeout by hand); a directory was "[Errno 21] Is a directory" with no fix."""
    from infra import rotation_probe  # noqa: PLC0415

    (tmp_path / "Pulumi.s96.yaml").write_text(BASE)
    monkeypatch.setattr(rotation_probe, "load_stack_file", lambda s: load_stack_file(s, tmp_path))
    before = tmp_path / "before.json"
    if content is None:
        before.mkdir()
    elif content == "/dev/zero":
        before.symlink_to("/dev/zero")
    else:
        before.write_text(content)
    for action in ("guard", "unfinished"):
        argv = [action, "--stack", "s96", "--before", str(before)]
        code, text = run_entry(lambda: rotation_probe.main(argv))  # noqa: B023 - run at once
        assert code == 2, text
        assert f"--before {before} {expected}" in text, text
        assert "rotation_probe snapshot" in text, text


# -- --project-dir ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", "/etc/hostname"], ids=["empty", "a-file"])
@pytest.mark.parametrize("command", ["apply", "stack_config"])
def test_project_dir__empty_or_a_file_is_refused(value: str, command: str) -> None:
    """`--project-dir ""` (an unset variable) was the current directory, where the default is
    this checkout: `down --stack S --project-dir "$DIR"` acted on whatever checkout the shell
    stood in. A file was "Pulumi.S.yaml does not exist in /etc/hostname"."""
    if command == "apply":
        argv = ["plan", "--stack", "s96", f"--project-dir={value}"]
        code, text = run_entry(lambda: apply.main(argv))
    else:
        argv = ["get", "--stack", "s96", f"--project-dir={value}", "appHostPort"]
        code, text = run_entry(lambda: stack_config.main(argv))
    assert code == 2, text
    assert "argument --project-dir:" in text, text
    assert ("is empty" if not value else "is not a directory") in text, text
