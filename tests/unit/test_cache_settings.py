"""settings.load_settings: every configuration error is reported, clearly, all at once."""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from infra import pki
from infra.profiles import PASSWORD_FLOOR
from infra.settings import REPO_ROOT
from secure_cache.errors import ConfigurationError
from secure_cache.settings import ServiceSettings, Settings, load_settings
from tests.support.cache_env import overridden

DATA_KEY = base64.b64encode(b"k" * 32).decode()
OLD_KEY = base64.b64encode(b"o" * 32).decode()


@dataclass(frozen=True)
class Files:
    ca: Path
    cert: Path
    key: Path
    other_key: Path
    expired_cert: Path
    expired_key: Path
    encrypted_key: Path
    garbage: Path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    root = tmp_path_factory.mktemp("tls")
    ca = pki.create_ca("unit CA", validity_days=2)
    app = pki.issue_client_certificate(ca, "app", validity_days=2)
    other = pki.issue_client_certificate(ca, "other", validity_days=2)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    old_ca = pki.create_ca("old CA", validity_days=5, now=past)
    expired = pki.issue_client_certificate(old_ca, "app", validity_days=2, now=past)
    key = serialization.load_pem_private_key(app.key_pem, password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )

    def write(name: str, data: bytes) -> Path:
        path = root / name
        path.write_bytes(data)
        return path

    return Files(
        ca=write("ca.crt", ca.cert_pem),
        cert=write("app.crt", app.cert_pem),
        key=write("app.key", app.key_pem),
        other_key=write("other.key", other.key_pem),
        expired_cert=write("expired.crt", expired.cert_pem),
        expired_key=write("expired.key", expired.key_pem),
        encrypted_key=write("encrypted.key", encrypted),
        garbage=write("garbage.txt", b"this is not PEM\n"),
    )


def _env(files: Files, **overrides: str | None) -> dict[str, str]:
    env = {
        "ENVIRONMENT": "development",
        "REDIS_URL": "rediss://redis:6380",
        "REDIS_USERNAME": "app",
        "REDIS_PASSWORD": "p" * 24,
        "REDIS_TLS_CA_CERT": str(files.ca),
        "REDIS_TLS_CERT_FILE": str(files.cert),
        "REDIS_TLS_KEY_FILE": str(files.key),
        "REDIS_ENCRYPTION_KEY": DATA_KEY,
    }
    return overridden(env, overrides)


def _problems(env: dict[str, str]) -> tuple[str, ...]:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(env)
    return caught.value.problems


def test_valid_environment__loads(files: Files) -> None:
    settings = load_settings(_env(files))
    assert (settings.host, settings.port, settings.db) == ("redis", 6380, 0)
    assert settings.username == "app"
    assert settings.data_key == b"k" * 32
    assert settings.previous_keys == ()
    assert settings.key_prefix == "cache:"
    assert settings.min_tls_version == ssl.TLSVersion.TLSv1_2


@pytest.mark.parametrize(
    ("environment", "minimum"),
    [
        ("development", ssl.TLSVersion.TLSv1_2),
        ("staging", ssl.TLSVersion.TLSv1_3),
        ("production", ssl.TLSVersion.TLSv1_3),
    ],
)
def test_min_tls_version__by_environment(
    files: Files, environment: str, minimum: ssl.TLSVersion
) -> None:
    env = _env(files, ENVIRONMENT=environment, REDIS_PASSWORD="p" * 48)
    assert load_settings(env).min_tls_version == minimum


def test_secrets_from_files__are_read_and_stripped(files: Files, tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("q" * 24 + "\n")
    (tmp_path / "key").write_text(DATA_KEY + "\n")
    (tmp_path / "old").write_text(f"{OLD_KEY},\n")
    env = _env(
        files,
        REDIS_PASSWORD=None,
        REDIS_PASSWORD_FILE=str(tmp_path / "pw"),
        REDIS_ENCRYPTION_KEY=None,
        REDIS_ENCRYPTION_KEY_FILE=str(tmp_path / "key"),
        REDIS_ENCRYPTION_PREVIOUS_KEYS_FILE=str(tmp_path / "old"),
    )
    settings = load_settings(env)
    assert settings.password == "q" * 24
    assert settings.previous_keys == (b"o" * 32,)


def test_watched_files__name_every_file_the_settings_came_from(
    files: Files, tmp_path: Path
) -> None:
    (tmp_path / "pw").write_text("q" * 24)
    env = _env(files, REDIS_PASSWORD=None, REDIS_PASSWORD_FILE=str(tmp_path / "pw"))
    watched = load_settings(env).watched_files
    assert watched == (str(files.ca), str(files.cert), str(files.key), str(tmp_path / "pw"))


def test_reread__sees_a_rewritten_secret_file(files: Files, tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("q" * 24)
    settings = load_settings(
        _env(files, REDIS_PASSWORD=None, REDIS_PASSWORD_FILE=str(tmp_path / "pw"))
    )
    (tmp_path / "pw").write_text("r" * 24)
    assert settings.reread().password == "r" * 24
    assert settings.password == "q" * 24


def test_url_safe_base64_key__is_accepted(files: Files) -> None:
    raw = bytes(range(200, 232))
    env = _env(files, REDIS_ENCRYPTION_KEY=base64.urlsafe_b64encode(raw).decode())
    assert load_settings(env).data_key == raw


# (id, overrides, expected fragment of the one problem reported)
Case = tuple[str, dict[str, str | None], str]


def _password_below_the_floor(environment: str, floor: int) -> Case:
    return (
        f"password-short-{environment}",
        {"ENVIRONMENT": environment, "REDIS_PASSWORD": "p" * (floor - 1)},
        f"REDIS_PASSWORD is {floor - 1} characters; the {environment} environment requires "
        f"at least {floor}",
    )


CASES: list[Case] = [
    (
        "env-missing",
        {"ENVIRONMENT": None},
        "ENVIRONMENT must be one of development, staging, production; it is not set",
    ),
    (
        "env-unknown",
        {"ENVIRONMENT": "prod"},
        "ENVIRONMENT must be one of development, staging, production; got 'prod'",
    ),
    ("url-missing", {"REDIS_URL": None}, "REDIS_URL is not set; set it to rediss://"),
    (
        "url-plaintext",
        {"REDIS_URL": "redis://redis:6379"},
        "REDIS_URL must use rediss:// (TLS); got redis scheme",
    ),
    (
        "url-credentials",
        # checkov:skip=CKV_SECRET_4: a fake credential the settings must reject
        {"REDIS_URL": "rediss://app:hunter2@redis:6380"},
        "REDIS_URL must not carry credentials",
    ),
    (
        "url-query",
        {"REDIS_URL": "rediss://redis:6380?ssl_cert_reqs=none"},
        "REDIS_URL must not have query parameters",
    ),
    ("url-no-host", {"REDIS_URL": "rediss://:6380"}, "REDIS_URL has no host"),
    ("url-bad-port", {"REDIS_URL": "rediss://redis:notaport"}, "REDIS_URL is not a valid URL"),
    (
        "url-bad-db",
        {"REDIS_URL": "rediss://redis:6380/cache"},
        "REDIS_URL path must be a database number",
    ),
    (
        # A digit to str.isdigit() that int() refuses: was a ValueError traceback (fuzzed).
        "url-unicode-digit-db",
        {"REDIS_URL": "rediss://redis:6380/\u00b2"},
        "REDIS_URL path must be a database number",
    ),
    ("user-missing", {"REDIS_USERNAME": None}, "REDIS_USERNAME is not set"),
    ("user-default", {"REDIS_USERNAME": "default"}, "not 'default'"),
    (
        "password-missing",
        {"REDIS_PASSWORD": None},
        "REDIS_PASSWORD is not set; set REDIS_PASSWORD_FILE",
    ),
    # One below the floor the program generates for each environment (infra/profiles.py).
    *(
        _password_below_the_floor(environment, floor)
        for environment, floor in PASSWORD_FLOOR.items()
    ),
    (
        "password-both",
        {"REDIS_PASSWORD_FILE": "/run/secrets/pw"},
        "REDIS_PASSWORD and REDIS_PASSWORD_FILE are both set",
    ),
    (
        "password-file-missing",
        {"REDIS_PASSWORD": None, "REDIS_PASSWORD_FILE": "/nonexistent/pw"},
        "REDIS_PASSWORD_FILE=/nonexistent/pw does not exist",
    ),
    (
        "password-file-is-dir",
        {"REDIS_PASSWORD": None, "REDIS_PASSWORD_FILE": "/"},
        "REDIS_PASSWORD_FILE=/ is a directory",
    ),
    ("key-missing", {"REDIS_ENCRYPTION_KEY": None}, "REDIS_ENCRYPTION_KEY is not set"),
    (
        "key-not-base64",
        {"REDIS_ENCRYPTION_KEY": "not base64 at all!"},
        "REDIS_ENCRYPTION_KEY must be 32 random bytes encoded as base64",
    ),
    (
        "key-16-bytes",
        {"REDIS_ENCRYPTION_KEY": base64.b64encode(b"x" * 16).decode()},
        "REDIS_ENCRYPTION_KEY must be 32 random bytes",
    ),
    (
        "key-fernet-like-64",
        {"REDIS_ENCRYPTION_KEY": base64.b64encode(b"x" * 64).decode()},
        "REDIS_ENCRYPTION_KEY must be 32 random bytes",
    ),
    (
        "previous-bad",
        {"REDIS_ENCRYPTION_PREVIOUS_KEYS": f"{OLD_KEY},bad"},
        "REDIS_ENCRYPTION_PREVIOUS_KEYS entry #2 is not 32 bytes of base64",
    ),
    (
        "previous-is-primary",
        {"REDIS_ENCRYPTION_PREVIOUS_KEYS": DATA_KEY},
        "entry #1 is the primary key",
    ),
    (
        "previous-repeated",
        {"REDIS_ENCRYPTION_PREVIOUS_KEYS": f"{OLD_KEY} {OLD_KEY}"},
        "entry #2 repeats an earlier entry",
    ),
    (
        "ca-missing-prod",
        {"ENVIRONMENT": "production", "REDIS_PASSWORD": "p" * 48, "REDIS_TLS_CA_CERT": None},
        "REDIS_TLS_CA_CERT is not set; production must pin the CA",
    ),
    (
        "ca-unreadable",
        {"REDIS_TLS_CA_CERT": "/nonexistent/ca.crt"},
        "REDIS_TLS_CA_CERT=/nonexistent/ca.crt does not exist",
    ),
    ("cert-missing", {"REDIS_TLS_CERT_FILE": None}, "REDIS_TLS_CERT_FILE is not set"),
    ("key-file-missing", {"REDIS_TLS_KEY_FILE": None}, "REDIS_TLS_KEY_FILE is not set"),
    ("prefix-bad", {"REDIS_KEY_PREFIX": "cache"}, "REDIS_KEY_PREFIX 'cache' must be letters"),
    (
        "fallback-bad",
        {"CACHE_FALLBACK_MAX_ENTRIES": "0"},
        "CACHE_FALLBACK_MAX_ENTRIES must be an integer from 1",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_configuration_error__names_the_fault_and_fix(
    files: Files, overrides: dict[str, str | None], fragment: str
) -> None:
    problems = _problems(_env(files, **overrides))
    assert len(problems) == 1, problems
    assert fragment in problems[0]


def test_ca_may_be_omitted_outside_production(files: Files) -> None:
    assert load_settings(_env(files, REDIS_TLS_CA_CERT=None)).ca_file is None


@pytest.mark.parametrize(
    ("variable", "path_of", "fragment"),
    [
        ("REDIS_TLS_CA_CERT", "garbage", "holds no PEM certificate"),
        ("REDIS_TLS_CERT_FILE", "garbage", "is not a PEM certificate"),
        ("REDIS_TLS_KEY_FILE", "garbage", "is not a PEM private key"),
        ("REDIS_TLS_KEY_FILE", "encrypted_key", "is encrypted"),
        ("REDIS_TLS_KEY_FILE", "other_key", "does not match REDIS_TLS_CERT_FILE"),
    ],
    ids=["ca-not-pem", "cert-not-pem", "key-not-pem", "key-encrypted", "key-mismatch"],
)
def test_tls_file_problem__is_reported(
    files: Files, variable: str, path_of: str, fragment: str
) -> None:
    problems = _problems(_env(files, **{variable: str(getattr(files, path_of))}))
    assert len(problems) == 1, problems
    assert variable in problems[0]
    assert fragment in problems[0]


def test_expired_client_certificate__is_reported(files: Files) -> None:
    env = _env(
        files,
        REDIS_TLS_CERT_FILE=str(files.expired_cert),
        REDIS_TLS_KEY_FILE=str(files.expired_key),
    )
    problems = _problems(env)
    assert len(problems) == 1, problems
    assert "REDIS_TLS_CERT_FILE" in problems[0]
    assert "expired on" in problems[0]
    assert "issue a new client certificate" in problems[0]


def test_unreadable_secret_file__says_which_uid_must_read_it(files: Files, tmp_path: Path) -> None:
    if os.getuid() == 0:
        pytest.skip("root reads files whatever their mode")
    path = tmp_path / "pw"
    path.write_text("p" * 24)
    path.chmod(0)
    problems = _problems(_env(files, REDIS_PASSWORD=None, REDIS_PASSWORD_FILE=str(path)))
    assert f"not readable by uid {os.getuid()}" in problems[0]


def test_secret_file_not_utf8__says_so_and_how_to_fix(files: Files, tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_bytes(b"\xff\xfe" + b"p" * 24)
    problems = _problems(_env(files, REDIS_PASSWORD=None, REDIS_PASSWORD_FILE=str(path)))
    assert problems == (
        f"REDIS_PASSWORD_FILE={path} is not UTF-8 text; write the value as plain text.",
    )


def test_every_problem__is_listed_in_one_error(files: Files) -> None:
    env = _env(
        files,
        ENVIRONMENT="production",
        # checkov:skip=CKV_SECRET_4: a fake credential the settings must reject
        REDIS_URL="redis://user:pw@redis:6379",
        REDIS_PASSWORD="short",
        REDIS_ENCRYPTION_KEY="bad",
        REDIS_TLS_CA_CERT=None,
        REDIS_TLS_KEY_FILE=str(files.other_key),
    )
    with pytest.raises(ConfigurationError) as caught:
        load_settings(env)
    problems = caught.value.problems
    message = str(caught.value)
    assert len(problems) == 6, problems
    assert message.startswith("secure_cache configuration is invalid (6 problems):")
    for fragment in (
        "must use rediss://",
        "must not carry credentials",
        "requires at least 48",
        "REDIS_ENCRYPTION_KEY must be 32",
        "REDIS_TLS_CA_CERT is not set",
        "does not match",
    ):
        assert fragment in message


def test_error_messages__never_contain_secret_values(files: Files) -> None:
    password = "s3cr3t-but-too-short"
    bad_key = "SGVsbG8gc2VjcmV0IGtleQ=="  # base64, wrong length
    env = _env(
        files,
        REDIS_URL=f"redis://app:{password}@redis:6379",
        REDIS_PASSWORD=password,
        REDIS_ENCRYPTION_KEY=bad_key,
        REDIS_ENCRYPTION_PREVIOUS_KEYS=f"{bad_key},{DATA_KEY}",
    )
    with pytest.raises(ConfigurationError) as caught:
        load_settings(env)
    message = str(caught.value)
    assert password not in message
    assert bad_key not in message
    assert DATA_KEY not in message


def test_settings_repr__hides_secrets(files: Files) -> None:
    text = repr(load_settings(_env(files)))
    assert "p" * 24 not in text
    assert "data_key" not in text


def test_settings_from_env__reads_the_process_environment(
    files: Files, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in _env(files).items():
        monkeypatch.setenv(name, value)
    assert Settings.from_env().username == "app"


TOKEN = "t" * 32  # checkov:skip=CKV_SECRET_6: a test token, not a credential


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"HTTP_API_TOKEN": TOKEN}, ServiceSettings(TOKEN, "127.0.0.1", 8080, 1 << 20)),
        (
            {
                "HTTP_API_TOKEN": TOKEN,
                "HTTP_HOST": "0.0.0.0",
                "HTTP_PORT": "9000",
                "HTTP_MAX_VALUE_BYTES": "10",
                "HTTP_ALLOWED_HOSTS": "LocalHost, secure-redis-dev-app",
            },
            ServiceSettings(
                TOKEN,
                "0.0.0.0",
                9000,
                10,
                allowed_hosts=("localhost", "secure-redis-dev-app"),
            ),
        ),
    ],
    ids=["defaults", "overrides"],
)
def test_service_settings(env: dict[str, str], expected: ServiceSettings) -> None:
    assert ServiceSettings.from_env(env) == expected


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "HTTP_API_TOKEN is not set"),
        ({"HTTP_API_TOKEN": "short"}, "HTTP_API_TOKEN is 5 characters; at least 32"),
        (
            {"HTTP_API_TOKEN": TOKEN, "HTTP_ALLOWED_HOSTS": "*"},
            "HTTP_ALLOWED_HOSTS must list host names",
        ),
        (
            {"HTTP_API_TOKEN": TOKEN, "HTTP_ALLOWED_HOSTS": "evil.com:80"},
            "HTTP_ALLOWED_HOSTS must list host names",
        ),
        (
            {"HTTP_API_TOKEN": TOKEN, "HTTP_MAX_INFLIGHT_BYTES": str(1 << 20)},
            "HTTP_MAX_INFLIGHT_BYTES (1048576) must be at least 3 x HTTP_MAX_VALUE_BYTES",
        ),
        ({"HTTP_API_TOKEN": TOKEN, "HTTP_MAX_CONNECTIONS": "1"}, "HTTP_MAX_CONNECTIONS must be"),
    ],
    ids=["no-token", "short-token", "wildcard-host", "host-with-port", "budget", "connections"],
)
def test_service_settings__problems_are_reported(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        ServiceSettings.from_env(env)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("HTTP_BODY_TIMEOUT_S", "0"), ("HTTP_STALL_TIMEOUT_S", "soon")],
)
def test_service_settings__a_deadline_that_is_no_whole_positive_second_is_reported(
    variable: str, value: str
) -> None:
    with pytest.raises(ConfigurationError, match=f"{variable} must be an integer from 1 to 3600"):
        ServiceSettings.from_env({"HTTP_API_TOKEN": TOKEN, variable: value})


def test_service_settings__slow_client_deadlines_default_to_what_readme_says() -> None:
    """The integration tests run the service with these deadlines shortened
    (tests/integration/test_cache_service.py); what a deployed service meets is the defaults,
    15 s for a body that stops arriving and 10 s for a response nobody reads."""
    defaults = ServiceSettings.from_env({"HTTP_API_TOKEN": TOKEN})
    assert (defaults.body_timeout_s, defaults.stall_timeout_s) == (15, 10)
    shortened = ServiceSettings.from_env(
        {"HTTP_API_TOKEN": TOKEN, "HTTP_BODY_TIMEOUT_S": "3", "HTTP_STALL_TIMEOUT_S": "2"}
    )
    assert (shortened.body_timeout_s, shortened.stall_timeout_s) == (3, 2)
    readme = (REPO_ROOT / "docs" / "client.md").read_text()  # the service's settings
    for variable, default in (("HTTP_BODY_TIMEOUT_S", 15), ("HTTP_STALL_TIMEOUT_S", 10)):
        row = next(ln for ln in readme.splitlines() if ln.startswith(f"| `{variable}` |"))
        assert row.endswith(f"(default {default}) |"), row
    assert "or stalls 15 s mid-body stores nothing" in readme
    assert "15 s plus its length at 64 KiB/s" in readme
    assert "a response its client reads none of for 10 s is abandoned" in " ".join(readme.split())


def test_service_settings__token_never_in_repr_or_errors() -> None:
    secret = "s3cr3t-" * 2  # too short: the error names its length, never its text
    with pytest.raises(ConfigurationError) as info:
        ServiceSettings.from_env({"HTTP_API_TOKEN": secret})
    assert secret not in str(info.value)
    assert TOKEN not in repr(ServiceSettings.from_env({"HTTP_API_TOKEN": TOKEN}))


def test_environment__case_must_match_as_in_the_stack_settings(files: Files) -> None:
    with pytest.raises(
        ConfigurationError, match="ENVIRONMENT must be lowercase; set it to 'production'"
    ):
        load_settings(_env(files, ENVIRONMENT="Production"))


def test_empty_password_variable_beside_its_file__is_not_both_set(
    files: Files, tmp_path: Path
) -> None:
    (tmp_path / "password").write_text("q" * 24)
    env = _env(files, REDIS_PASSWORD="", REDIS_PASSWORD_FILE=str(tmp_path / "password"))
    assert load_settings(env).password == "q" * 24


def test_redis_url_path__is_not_echoed(files: Files) -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings(_env(files, REDIS_URL="rediss://redis:6380/hunter2-secret"))
    assert "hunter2" not in str(info.value)
    assert "REDIS_URL path must be a database number 0-15 or empty" in str(info.value)


def test_service_settings__bad_port_is_reported() -> None:
    with pytest.raises(ConfigurationError, match="HTTP_PORT must be an integer from 1 to 65535"):
        ServiceSettings.from_env({"HTTP_PORT": "http"})


def _problems_within(env: dict[str, str], fifo: Path | None = None) -> tuple[str, ...]:
    """_problems, failing instead of hanging when loading blocks (a FIFO with no writer)."""
    found: list[tuple[str, ...]] = []
    worker = threading.Thread(target=lambda: found.append(_problems(env)), daemon=True)
    worker.start()
    worker.join(timeout=10)
    if worker.is_alive() and fifo is not None:
        with fifo.open("wb"):  # give the blocked reader its end of file, then fail
            pass
        worker.join(timeout=10)
        pytest.fail("loading the settings blocked on a FIFO")
    return found[0]


@pytest.mark.parametrize("kind", ["fifo", "device", "larger-than-1-mib"])
def test_secret_file_that_is_not_a_small_regular_file__is_one_line_not_a_hang(
    files: Files, tmp_path: Path, kind: str
) -> None:
    """A *_FILE pointing at a pipe blocked start-up forever, at /dev/zero it read until memory
    ran out; secrets, keys and certificates are small regular files."""
    path = tmp_path / "pw"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path = Path(os.devnull)
    else:
        path.write_bytes(b"p" * (1024 * 1024 + 1))
    env = _env(files, REDIS_PASSWORD=None, REDIS_PASSWORD_FILE=str(path))
    problems = _problems_within(env, path if kind == "fifo" else None)
    expected = {
        "fifo": "is not a regular file (a pipe, socket or device); point it at the file itself.",
        "device": "is not a regular file (a pipe, socket or device); point it at the file itself.",
        "larger-than-1-mib": "is larger than 1 MiB; point it at the file that holds only the "
        "value.",
    }[kind]
    assert problems == (f"REDIS_PASSWORD_FILE={path} {expected}",)


def test_certificate_file_that_is_a_device__is_one_line(files: Files) -> None:
    problems = _problems_within(_env(files, REDIS_TLS_CA_CERT=os.devnull))
    assert problems == (
        f"REDIS_TLS_CA_CERT={os.devnull} is not a regular file (a pipe, socket or device); "
        "point it at the file itself.",
    )


@pytest.mark.parametrize(
    "path", ["/certs/\x1b[2Jca.crt", "/certs/a\nb.crt"], ids=["escape", "newline"]
)
def test_path_with_control_characters__is_shown_escaped_on_one_line(
    files: Files, path: str
) -> None:
    """A value's escape sequence would clear the terminal (or split a log line) if echoed."""
    escaped = repr(path)[1:-1]  # \x1b, \n as text
    problems = _problems_within(_env(files, REDIS_TLS_CA_CERT=path))
    assert problems == (
        f"REDIS_TLS_CA_CERT={escaped} does not exist; mount the file or fix the path.",
    )
