"""Configuration from the environment: parsed, validated, every problem reported at once.

Environment contract (names: docs/design.md#stable-interfaces; every secret may be NAME_FILE,
the path of a file holding it, which is how containers receive it; setting both is an error):

    ENVIRONMENT                      development | staging | production (required). Sets the
                                     strength, never whether security is on: minimum TLS
                                     version (1.2 in development, 1.3 otherwise) and minimum
                                     password length (24 / 32 / 48).
    REDIS_URL                        rediss://<host>[:<port>][/<db>] (required). TLS only;
                                     no credentials and no query parameters in the URL.
    REDIS_USERNAME                   the ACL user (required; not `default`).
    REDIS_PASSWORD[_FILE]            that user's password (required).
    REDIS_TLS_CA_CERT                path of the PEM CA bundle that signed the server
                                     certificate (required in production; elsewhere the
                                     system trust store is used when unset).
    REDIS_TLS_CERT_FILE              path of the PEM client certificate (required).
    REDIS_TLS_KEY_FILE               path of its unencrypted PEM private key (required).
    REDIS_ENCRYPTION_KEY[_FILE]      primary data key: 32 random bytes, base64 (required).
    REDIS_ENCRYPTION_PREVIOUS_KEYS[_FILE]
                                     older data keys, base64, separated by commas or
                                     whitespace (optional; kept only during a rotation).

Optional tuning (not secret):

    REDIS_KEY_PREFIX                 namespace the ACL grants (default `cache:`).
    CACHE_FALLBACK_MAX_ENTRIES       bound of the in-memory fallback LRU (default 10000).
    CACHE_COMPRESS_MIN_BYTES         zlib-compress values of at least this many bytes before
                                     encryption (default: off; see crypto.Keyring).

    CACHE_FALLBACK_MAX_BYTES         bound of the fallback's values in bytes (default 32 MiB);
                                     the least recently used entries go first.

The HTTP service (service.py, http_api.py) also reads:

    HTTP_API_TOKEN[_FILE]            the bearer token every request but /healthz must carry
                                     (required; at least 32 characters; the stack generates
                                     it and stages it as a file). It is the one token handed
                                     out: clients read it from that file.
    HTTP_API_PREVIOUS_TOKENS[_FILE]  tokens still accepted beside it while it rotates,
                                     separated by whitespace (optional; empty outside a
                                     rotation). Both files are re-read while the service
                                     runs (api_tokens.py), so a rotation needs no restart.
    HTTP_ALLOWED_HOSTS               the names the `Host` header may carry, comma-separated
                                     (default localhost,127.0.0.1,[::1]); any other is refused,
                                     which defeats DNS rebinding.
    HTTP_HOST                        bind address (default 127.0.0.1; the image sets 0.0.0.0);
                                     any but 0.0.0.0 gets 127.0.0.1 beside it, where the
                                     health check probes (listen.listen_addresses).
    HTTP_PORT                        listen port (default 8080).
    HTTP_MAX_VALUE_BYTES             largest accepted PUT body (default 1048576).
    HTTP_MAX_INFLIGHT_BYTES          all request and response bodies held at once, across every
                                     connection (default 16 MiB); beyond it uploads get 503,
                                     and reads wait their turn (http_budget.py).
    HTTP_MAX_CONNECTIONS             open connections (default 400); beyond it a new one gets
                                     503 and is closed.
    HTTP_BODY_TIMEOUT_S              seconds a request body may stop arriving, and its head
                                     start on the whole body's deadline (default 15; that
                                     deadline adds the body's length at 64 KiB/s); a body
                                     past either gets 408 and nothing is stored.
    HTTP_STALL_TIMEOUT_S             seconds a response may wait on a client that reads none
                                     of it before the connection is closed (default 10).
    REDIS_ENCRYPTION_KEY_GENERATION_FILE
                                     a file holding the stack's data-key generation, shown
                                     by /metrics (optional; re-read at each scrape).

Nothing here connects to Redis; messages never contain a secret.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
import os
import re
import ssl
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal, cast
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from secure_cache.errors import ConfigurationError
from secure_cache.http_budget import COPIES_PER_VALUE
from secure_cache.int_settings import DEFAULT_HTTP_PORT, http_port
from secure_cache.int_settings import int_setting as _int_setting

Environment = Literal["development", "staging", "production"]

ENVIRONMENTS: Final[tuple[Environment, ...]] = ("development", "staging", "production")
MIN_PASSWORD_LENGTH: Final[Mapping[Environment, int]] = {
    "development": 24,
    "staging": 32,
    "production": 48,
}
DATA_KEY_BYTES: Final = 32
DEFAULT_PORT: Final = 6379
DEFAULT_KEY_PREFIX: Final = "cache:"
DEFAULT_FALLBACK_MAX_ENTRIES: Final = 10_000
DEFAULT_FALLBACK_MAX_BYTES: Final = 32 << 20
DEFAULT_HTTP_MAX_VALUE_BYTES: Final = 1 << 20
_FILE_SECRETS: Final = ("REDIS_PASSWORD", "REDIS_ENCRYPTION_KEY", "REDIS_ENCRYPTION_PREVIOUS_KEYS")
_API_TOKEN_SECRETS: Final = ("HTTP_API_TOKEN", "HTTP_API_PREVIOUS_TOKENS")
DEFAULT_HTTP_MAX_INFLIGHT_BYTES: Final = 16 << 20
DEFAULT_HTTP_MAX_CONNECTIONS: Final = 400
# The deadlines a slow client meets (http_api.py, service.py; docs/client.md, "The service and
# its image"). Settings so that the tests of those deadlines need not wait the full ones.
DEFAULT_HTTP_BODY_TIMEOUT_S: Final = 15
DEFAULT_HTTP_STALL_TIMEOUT_S: Final = 10
DEFAULT_HTTP_ALLOWED_HOSTS: Final = ("localhost", "127.0.0.1", "[::1]")
MIN_API_TOKEN_LENGTH: Final = 32
# Redis refuses an argument over 16 KiB from a client that has not authenticated yet
# (AUTH's user and password): 70000 characters were exit 5 with no reason, 100000 a
# ResponseError traceback. The stack's are far shorter (passwordLength is at most 512).
MAX_CREDENTIAL_CHARS: Final = 1024
_CREDENTIAL_WHY: Final = "are accepted (Redis refuses an unauthenticated argument over 16 KiB)"
_HOST_NAME_RE: Final = re.compile(
    r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)$"
)
_DOTTED_RE: Final = re.compile(r"^[0-9.]+$")
# A label of a name to resolve, once IDNA has made it ASCII; `_` for container names (redis_1).
_RESOLVABLE_LABEL_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,63}")
_PREFIX_RE: Final = re.compile(r"^[A-Za-z0-9_.-]+:$")
_KEY_SPLIT_RE: Final = re.compile(r"[\s,]+")
_GENERATE_KEY_HINT: Final = (
    "Generate one with: python3 -c "
    "'import base64,os; print(base64.b64encode(os.urandom(32)).decode())'"
)


@dataclass(frozen=True)
class Settings:
    """Validated client settings. Secrets are excluded from repr()."""

    environment: Environment
    host: str
    port: int
    db: int
    username: str
    password: str = field(repr=False)
    ca_file: str | None
    cert_file: str
    key_file: str
    data_key: bytes = field(repr=False)
    previous_keys: tuple[bytes, ...] = field(default=(), repr=False)
    key_prefix: str = DEFAULT_KEY_PREFIX
    fallback_max_entries: int = DEFAULT_FALLBACK_MAX_ENTRIES
    fallback_max_bytes: int = DEFAULT_FALLBACK_MAX_BYTES
    compress_min_bytes: int | None = None
    # The environment entries these settings were read from, so that the client can read
    # them again when a mounted file changes (material rotation); empty when built by hand.
    sources: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def watched_files(self) -> tuple[str, ...]:
        """Every file these settings were read from (certificates, keys, secret files)."""
        paths = [self.ca_file, self.cert_file, self.key_file] if self.sources else []
        paths += [self.sources.get(f"{name}_FILE") for name in _FILE_SECRETS]
        return tuple(dict.fromkeys(p for p in paths if p))

    def reread(self) -> Settings:
        """The same environment read again (its files may have changed); ConfigurationError."""
        return load_settings(self.sources)

    @property
    def min_tls_version(self) -> ssl.TLSVersion:
        """TLS 1.3 in staging and production; development also accepts TLS 1.2."""
        if self.environment == "development":
            return ssl.TLSVersion.TLSv1_2
        return ssl.TLSVersion.TLSv1_3

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the environment; raises ConfigurationError listing every problem."""
        return load_settings(os.environ if environ is None else environ)


@dataclass(frozen=True)
class ServiceSettings:
    """Where the HTTP service listens, whom it lets in and how much it holds at once."""

    api_token: str = field(repr=False)
    host: str = "127.0.0.1"
    port: int = DEFAULT_HTTP_PORT
    max_value_bytes: int = DEFAULT_HTTP_MAX_VALUE_BYTES
    max_inflight_bytes: int = DEFAULT_HTTP_MAX_INFLIGHT_BYTES
    max_connections: int = DEFAULT_HTTP_MAX_CONNECTIONS
    allowed_hosts: tuple[str, ...] = DEFAULT_HTTP_ALLOWED_HOSTS
    body_timeout_s: int = DEFAULT_HTTP_BODY_TIMEOUT_S
    stall_timeout_s: int = DEFAULT_HTTP_STALL_TIMEOUT_S
    data_key_generation_file: str | None = None
    """REDIS_ENCRYPTION_KEY_GENERATION_FILE: the deployment's data-key generation, exported
    by /metrics (re-read at each scrape, so an in-place rotation shows)."""
    previous_api_tokens: tuple[str, ...] = field(default=(), repr=False)
    """HTTP_API_PREVIOUS_TOKENS: still accepted while `api_token` rotates in."""
    # The environment these settings were read from, so that the token files can be read
    # again when they change (api_tokens.py); empty when built by hand.
    sources: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def api_tokens(self) -> tuple[str, ...]:
        """Every token the API accepts: the current one first."""
        return (self.api_token, *self.previous_api_tokens)

    @property
    def watched_files(self) -> tuple[str, ...]:
        """The token files these settings were read from (material.MaterialFiles watches them)."""
        paths = (self.sources.get(f"{name}_FILE") for name in _API_TOKEN_SECRETS)
        return tuple(p for p in paths if p)

    def reread(self) -> ServiceSettings:
        """The same environment read again (its token files may have changed)."""
        return ServiceSettings.from_env(self.sources)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServiceSettings:
        """Read and validate the service's variables; ConfigurationError lists every problem."""
        problems: list[str] = []
        env = utf8_text_only(os.environ if environ is None else environ, problems)
        port = http_port(env, problems)
        max_bytes = max_value_bytes(env, problems)
        inflight = _int_setting(
            env,
            "HTTP_MAX_INFLIGHT_BYTES",
            DEFAULT_HTTP_MAX_INFLIGHT_BYTES,
            1 << 16,
            4 << 30,
            problems,
        )
        if inflight < max_bytes * COPIES_PER_VALUE:
            problems.append(
                f"HTTP_MAX_INFLIGHT_BYTES ({inflight}) must be at least {COPIES_PER_VALUE} x "
                f"HTTP_MAX_VALUE_BYTES ({max_bytes * COPIES_PER_VALUE}): a value in flight is "
                "held about that many times, so the largest one could never be stored."
            )
        connections = _int_setting(
            env, "HTTP_MAX_CONNECTIONS", DEFAULT_HTTP_MAX_CONNECTIONS, 2, 100_000, problems
        )
        hosts = _allowed_hosts(env, problems)
        body_timeout = _int_setting(
            env, "HTTP_BODY_TIMEOUT_S", DEFAULT_HTTP_BODY_TIMEOUT_S, 1, 3600, problems
        )
        stall_timeout = _int_setting(
            env, "HTTP_STALL_TIMEOUT_S", DEFAULT_HTTP_STALL_TIMEOUT_S, 1, 3600, problems
        )
        token = _secret(env, "HTTP_API_TOKEN", problems, required=True)
        if token is not None and len(token) < MIN_API_TOKEN_LENGTH:
            problems.append(
                f"HTTP_API_TOKEN is {len(token)} characters; at least {MIN_API_TOKEN_LENGTH} are "
                "required. Use the token generated for this stack (api.token)."
            )
        previous = _previous_api_tokens(env, problems)
        host = _http_host(env, problems)
        if problems:
            raise ConfigurationError(problems)
        return cls(
            api_token=cast(str, token),
            host=host,
            port=port,
            max_value_bytes=max_bytes,
            max_inflight_bytes=inflight,
            max_connections=connections,
            allowed_hosts=hosts,
            body_timeout_s=body_timeout,
            stall_timeout_s=stall_timeout,
            data_key_generation_file=(
                env.get("REDIS_ENCRYPTION_KEY_GENERATION_FILE", "").strip() or None
            ),
            previous_api_tokens=tuple(t for t in previous if t != token),
            sources={name: value for name, value in env.items() if name in _SERVICE_SOURCES},
        )


def _previous_api_tokens(env: Mapping[str, str], problems: list[str]) -> tuple[str, ...]:
    """HTTP_API_PREVIOUS_TOKENS[_FILE]: whitespace-separated, each as long as a token must be."""
    text = _secret(env, "HTTP_API_PREVIOUS_TOKENS", problems, required=False) or ""
    tokens = tuple(dict.fromkeys(text.split()))
    short = [n for n, t in enumerate(tokens, 1) if len(t) < MIN_API_TOKEN_LENGTH]
    if short:
        # Positions only: a message never carries a token or a part of one.
        problems.append(
            f"HTTP_API_PREVIOUS_TOKENS: token(s) {', '.join(map(str, short))} are shorter than "
            f"{MIN_API_TOKEN_LENGTH} characters; it holds only this stack's earlier tokens."
        )
    return tokens


def _http_host(env: Mapping[str, str], problems: list[str]) -> str:
    """HTTP_HOST: an IP address or a host name to bind. Anything else failed only at bind, as
    exit 6 "cannot listen ...; stop what uses that port" (README, "Exit codes"), which sent the
    user after the port, and printed an escape sequence in the value raw."""
    raw = env.get("HTTP_HOST", "").strip()
    if not raw:
        return "127.0.0.1"
    try:
        ipaddress.ip_address(raw)
    except ValueError:
        # A name, but not one of digits and dots alone (999.1.1.1 is a mistyped address).
        if (
            _HOST_NAME_RE.match(raw)
            and not raw.startswith("[")
            and not _DOTTED_RE.match(raw)
            and resolvable_host(raw)  # `a..b` failed at bind with a UnicodeError
        ):
            return raw
        problems.append(
            f"HTTP_HOST must be an IP address to listen on (127.0.0.1, 0.0.0.0, ::1, ::) or a "
            f"host name; got {raw[:40]!r}."
        )
        return "127.0.0.1"
    return raw


def _allowed_hosts(env: Mapping[str, str], problems: list[str]) -> tuple[str, ...]:
    raw = env.get("HTTP_ALLOWED_HOSTS", "").strip()
    if not raw:
        return DEFAULT_HTTP_ALLOWED_HOSTS
    names = tuple(dict.fromkeys(n.strip().lower() for n in raw.split(",") if n.strip()))
    bad = [n for n in names if not _HOST_NAME_RE.match(n) or n == "*"]
    if bad or not names:
        problems.append(
            "HTTP_ALLOWED_HOSTS must list host names or addresses separated by commas (no "
            "ports, no wildcards), e.g. localhost,127.0.0.1."
        )
        return DEFAULT_HTTP_ALLOWED_HOSTS
    return names


def resolvable_host(host: str) -> bool:
    """Whether `host` (a URL's, brackets removed) is an IP address or a name the resolver can
    be asked for. getaddrinfo encodes a name with IDNA first, and an empty or over-long label
    (`a..b`, 64 characters) or a byte that is not UTF-8 raised UnicodeError there: a
    traceback from the first command, after the settings had passed."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return True
    try:
        name = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    labels = name[:-1].split(".") if name.endswith(".") else name.split(".")
    return len(name) <= 253 and all(_RESOLVABLE_LABEL_RE.fullmatch(label) for label in labels)


# The service's HTTP settings (ServiceSettings.from_env), named once for both lists below.
_HTTP_VARIABLES: Final = (
    "HTTP_HOST",
    "HTTP_PORT",
    "HTTP_ALLOWED_HOSTS",
    "HTTP_MAX_VALUE_BYTES",
    "HTTP_MAX_INFLIGHT_BYTES",
    "HTTP_MAX_CONNECTIONS",
    "HTTP_BODY_TIMEOUT_S",
    "HTTP_STALL_TIMEOUT_S",
)


# Variables whose text goes to Redis or to a socket as it is (a user name, a password, a host,
# a token) or is compared with text. os.environ holds bytes that are not UTF-8 as lone
# surrogates (PEP 383), which redis-py cannot encode: a REDIS_USERNAME in Latin-1 ended the
# first command in a UnicodeEncodeError traceback. Paths are not here: the file system opens
# a name in any encoding.
_TEXT_VARIABLES: Final = (
    "ENVIRONMENT",
    "REDIS_URL",
    "REDIS_USERNAME",
    "REDIS_KEY_PREFIX",
    *_FILE_SECRETS,
    "CACHE_FALLBACK_MAX_ENTRIES",
    "CACHE_FALLBACK_MAX_BYTES",
    "CACHE_COMPRESS_MIN_BYTES",
    *_HTTP_VARIABLES,
    *_API_TOKEN_SECRETS,
    "METRICS_HOST",
    "METRICS_PORT",
)


def max_value_bytes(env: Mapping[str, str], problems: list[str]) -> int:
    """HTTP_MAX_VALUE_BYTES: the largest value the service accepts, and so the largest any
    client of the deployment reads (transport.cache_options derives its reply limit from it).
    Read by ServiceSettings and by the clients' from_env (the CLI), the same way."""
    return _int_setting(
        env, "HTTP_MAX_VALUE_BYTES", DEFAULT_HTTP_MAX_VALUE_BYTES, 1, 512 << 20, problems
    )


def max_value_bytes_from_env(environ: Mapping[str, str] | None = None) -> int:
    """max_value_bytes of the process environment (or `environ`); ConfigurationError when it
    is not a valid setting."""
    problems: list[str] = []
    env = utf8_text_only(os.environ if environ is None else environ, problems)
    value = max_value_bytes(env, problems)
    if problems:
        raise ConfigurationError(problems)
    return value


def utf8_text_only(env: Mapping[str, str], problems: list[str]) -> Mapping[str, str]:
    """`env` without the text variables that hold bytes that are not UTF-8, each named in
    `problems` (never its value: it may be a secret)."""
    bad = []
    for name in _TEXT_VARIABLES:
        try:
            env.get(name, "").encode("utf-8")
        except UnicodeEncodeError:
            bad.append(name)
            problems.append(
                f"{name} is not UTF-8 text (it holds bytes of another encoding; not shown); "
                "set it again as UTF-8."
            )
    return {k: v for k, v in env.items() if k not in bad} if bad else env


def load_settings(env: Mapping[str, str]) -> Settings:
    """Validate every setting before anything connects; one error lists all problems."""
    problems: list[str] = []
    env = utf8_text_only(env, problems)
    environment = _environment(env, problems)
    host, port, db = _redis_url(env, problems)
    username = _username(env, problems)
    password = _secret(env, "REDIS_PASSWORD", problems, required=True)
    password = capped_credential(
        "REDIS_PASSWORD", password, "use the password generated for this stack.", problems
    )
    if password is not None and environment is not None:
        minimum = MIN_PASSWORD_LENGTH[environment]
        if len(password) < minimum:
            problems.append(
                f"REDIS_PASSWORD is {len(password)} characters; the {environment} environment "
                f"requires at least {minimum}. Use the password generated for this stack "
                f"(infra generates {minimum} for {environment})."
            )
    ca_file = _ca_file(env, environment, problems)
    cert_file, key_file = _client_identity(env, problems)
    data_key = _data_key(env, problems)
    previous = _previous_keys(env, data_key, problems)
    prefix = env.get("REDIS_KEY_PREFIX", DEFAULT_KEY_PREFIX).strip() or DEFAULT_KEY_PREFIX
    if not _PREFIX_RE.match(prefix):
        problems.append(
            f"REDIS_KEY_PREFIX {prefix!r} must be letters, digits, '_', '.' or '-' ending in "
            f"':' and match the ACL key pattern of REDIS_USERNAME (default {DEFAULT_KEY_PREFIX!r})."
        )
    fallback = _int_setting(
        env, "CACHE_FALLBACK_MAX_ENTRIES", DEFAULT_FALLBACK_MAX_ENTRIES, 1, 10_000_000, problems
    )
    compress = _int_setting(env, "CACHE_COMPRESS_MIN_BYTES", 0, 0, 1 << 30, problems) or None
    fallback_bytes = _int_setting(
        env, "CACHE_FALLBACK_MAX_BYTES", DEFAULT_FALLBACK_MAX_BYTES, 1 << 16, 1 << 40, problems
    )
    if problems:
        raise ConfigurationError(problems)
    # Every None above came with a problem, so the casts only narrow types.
    return Settings(
        environment=cast(Environment, environment),
        host=cast(str, host),
        port=cast(int, port),
        db=cast(int, db),
        username=cast(str, username),
        password=cast(str, password),
        ca_file=ca_file,
        cert_file=cast(str, cert_file),
        key_file=cast(str, key_file),
        data_key=cast(bytes, data_key),
        previous_keys=previous,
        key_prefix=prefix,
        fallback_max_entries=fallback,
        compress_min_bytes=compress,
        sources={name: value for name, value in env.items() if name in _SOURCES},
        fallback_max_bytes=fallback_bytes,
    )


_SOURCES: Final = frozenset(
    {
        "ENVIRONMENT",
        "REDIS_URL",
        "REDIS_USERNAME",
        "REDIS_TLS_CA_CERT",
        "REDIS_TLS_CERT_FILE",
        "REDIS_TLS_KEY_FILE",
        "REDIS_KEY_PREFIX",
        "CACHE_FALLBACK_MAX_ENTRIES",
        "CACHE_COMPRESS_MIN_BYTES",
        *_FILE_SECRETS,
        *(f"{name}_FILE" for name in _FILE_SECRETS),
    }
)

# What ServiceSettings.from_env reads, kept for reread(): every service variable.
_SERVICE_SOURCES: Final = frozenset(
    {
        *_HTTP_VARIABLES,
        "REDIS_ENCRYPTION_KEY_GENERATION_FILE",
        *_API_TOKEN_SECRETS,
        *(f"{name}_FILE" for name in _API_TOKEN_SECRETS),
    }
)


def _environment(env: Mapping[str, str], problems: list[str]) -> Environment | None:
    raw = env.get("ENVIRONMENT", "").strip()
    for name in ENVIRONMENTS:
        if raw == name:
            return name
    if raw.lower() in ENVIRONMENTS:
        # Exact, as in the stack settings (infra/settings.py): one spelling everywhere.
        problems.append(f"ENVIRONMENT must be lowercase; set it to {raw.lower()!r}.")
        return None
    got = "it is not set" if not raw else f"got {raw[:20]!r}"
    problems.append(
        f"ENVIRONMENT must be one of {', '.join(ENVIRONMENTS)}; {got}. It selects the minimum "
        "TLS version and password length."
    )
    return None


def _redis_url(
    env: Mapping[str, str], problems: list[str]
) -> tuple[str | None, int | None, int | None]:
    raw = env.get("REDIS_URL", "").strip()
    if not raw:
        problems.append("REDIS_URL is not set; set it to rediss://<host>:<port> (TLS only).")
        return None, None, None
    try:
        parts = urlsplit(raw)
        port = parts.port or DEFAULT_PORT
    except ValueError:
        problems.append(
            "REDIS_URL is not a valid URL (bad port or brackets); use rediss://<host>:<port>."
        )
        return None, None, None
    ok = True
    if parts.scheme != "rediss":
        # Only the scheme is echoed: the rest of a bad URL might hold a password.
        problems.append(
            f"REDIS_URL must use rediss:// (TLS); got {parts.scheme or 'no'} scheme. "
            "There is no plaintext mode: set REDIS_URL=rediss://<host>:<port>."
        )
        ok = False
    if parts.username or parts.password:
        problems.append(
            "REDIS_URL must not carry credentials (user:password@); a URL is visible in "
            "`docker inspect`. Set REDIS_USERNAME and REDIS_PASSWORD_FILE instead."
        )
        ok = False
    if parts.query or parts.fragment:
        problems.append(
            "REDIS_URL must not have query parameters or a fragment; TLS comes from the "
            "REDIS_TLS_* variables and cannot be weakened through the URL."
        )
        ok = False
    if not parts.hostname:
        problems.append("REDIS_URL has no host; use rediss://<host>:<port>.")
        ok = False
    elif not resolvable_host(parts.hostname):
        # Not echoed, as above.
        problems.append(
            "REDIS_URL host is not a host name or IP address (labels of 1-63 letters, digits, "
            "'-' or '_' between dots, at most 253 characters); use rediss://<host>:<port>."
        )
        ok = False
    db = 0
    path = parts.path.strip("/")
    if path:
        # ASCII digits only: str.isdigit() is true for '²' and other digits int() refuses.
        if path.isascii() and path.isdigit() and int(path) < 16:
            db = int(path)
        else:
            # Not echoed: a mistyped URL may carry a password in its path.
            problems.append("REDIS_URL path must be a database number 0-15 or empty.")
            ok = False
    if not ok:
        return None, None, None
    return parts.hostname, port, db


def capped_credential(var: str, value: str | None, how: str, problems: list[str]) -> str | None:
    """`value`, or None with the problem named by its length when it is over
    MAX_CREDENTIAL_CHARS (`how` says what to set instead). The cache's settings and the
    exporter's (redis_exporter.py) apply this one cap."""
    if value is None or len(value) <= MAX_CREDENTIAL_CHARS:
        return value
    cap = MAX_CREDENTIAL_CHARS
    problems.append(f"{var} is {len(value)} characters; at most {cap} {_CREDENTIAL_WHY}; {how}")
    return None


_SET_ACL_USER: Final = "set it to the application's ACL user (e.g. app)."


def _username(env: Mapping[str, str], problems: list[str]) -> str | None:
    username = env.get("REDIS_USERNAME", "").strip()
    if not username:
        problems.append(f"REDIS_USERNAME is not set; {_SET_ACL_USER}")
        return None
    if capped_credential("REDIS_USERNAME", username, _SET_ACL_USER, problems) is None:
        return None
    if username == "default":
        problems.append(
            "REDIS_USERNAME must name a dedicated least-privilege ACL user, not 'default' "
            "(the default user is disabled on a secure-redis server)."
        )
        return None
    return username


def _secret(
    env: Mapping[str, str], name: str, problems: list[str], *, required: bool
) -> str | None:
    """NAME or the content of the file NAME_FILE names; never both."""
    # An empty variable counts as unset (as `docker run -e NAME=` leaves it), so NAME= beside
    # NAME_FILE is not "both set".
    direct = env.get(name) or None
    file_var = f"{name}_FILE"
    path = env.get(file_var) or None
    if direct is not None and path is not None:
        problems.append(
            f"{name} and {file_var} are both set; keep only {file_var} (a file keeps the "
            "secret out of the process environment)."
        )
        return None
    if path is not None:
        text = read_text_file(file_var, path, problems, secret=True)
        if text is None:
            return None
        value = text.strip()
        if not value and required:
            problems.append(f"{file_var}={path} is empty; write the secret into that file.")
            return None
        return value or None
    if direct is not None and direct.strip():
        return direct.strip()
    if required:
        problems.append(f"{name} is not set; set {file_var} to the path of a file holding it.")
    return None


def read_text_file(var: str, path: str, problems: list[str], *, secret: bool = False) -> str | None:
    """The UTF-8 text of the file `var` names, or None with the problem appended (never its
    content); every file this package reads from its configuration goes through here.
    `secret`: the file holds a secret, so `path` may be the secret itself, set by mistake
    (`REDIS_PASSWORD_FILE=$(cat pw)`); a value that may be one is then not echoed."""
    data = _read_bytes(var, path, problems, hint=" (mode 0400, owned by it)", secret=secret)
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        problems.append(f"{var}={path} is not UTF-8 text; write the value as plain text.")
    return None


# Secrets, keys and certificate bundles are kilobytes; a bigger file is the wrong file, and
# reading it whole (a device such as /dev/zero never ends) would stop the process.
_MAX_FILE_BYTES: Final = 1024 * 1024


class _NotRegular(OSError):
    """A pipe, socket or device: opening a FIFO blocks until a writer comes, a device may never
    end."""


class _TooLarge(OSError):
    pass


def read_file(path: str) -> bytes:
    """A small regular file's bytes; OSError (_NotRegular, _TooLarge, ...) otherwise."""
    # O_NONBLOCK: opening a FIFO with no writer returns at once instead of blocking.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(path)
        if not stat.S_ISREG(mode):
            raise _NotRegular(path)
        data = handle.read(_MAX_FILE_BYTES + 1)
    if len(data) > _MAX_FILE_BYTES:
        raise _TooLarge(path)
    return data


def _read_bytes(
    var: str, path: str, problems: list[str], *, hint: str = "", secret: bool = False
) -> bytes | None:
    try:
        return read_file(path)
    except OSError as exc:
        if secret and _may_be_the_secret(path):
            problems.append(
                f"{var} names no file it can read (its value is not shown: it may be the "
                f"secret itself); write the secret into a file and set {var} to that file's "
                "path."
            )
        else:
            problems.append(_unreadable(var, path, exc, hint))
    return None


def _may_be_the_secret(value: str) -> bool:
    """Whether a secret's _FILE value may be the secret itself, set by mistake
    (`REDIS_PASSWORD_FILE=$(cat pw)`), which "<VAR>=<value> does not exist" printed in full:
    it holds no '/' (a password or token: infra/secretgen.py draws them from letters and
    digits), or it reads as data keys (base64, which may hold a '/')."""
    return "/" not in value or any(_decode_key(t) for t in _KEY_SPLIT_RE.split(value) if t)


def _unreadable(var: str, path: str, exc: OSError, hint: str) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"{var}={path} does not exist; mount the file or fix the path."
    if isinstance(exc, PermissionError):
        return (
            f"{var}={path} is not readable by uid {os.getuid()}; make the file readable by "
            f"the user the process runs as{hint}."
        )
    if isinstance(exc, IsADirectoryError):
        return f"{var}={path} is a directory; point it at the file itself."
    if isinstance(exc, _NotRegular):
        return (
            f"{var}={path} is not a regular file (a pipe, socket or device); point it at the "
            "file itself."
        )
    if isinstance(exc, _TooLarge):
        return f"{var}={path} is larger than 1 MiB; point it at the file that holds only the value."
    return f"{var}={path} could not be read ({type(exc).__name__})."


def _ca_file(
    env: Mapping[str, str], environment: Environment | None, problems: list[str]
) -> str | None:
    path = env.get("REDIS_TLS_CA_CERT", "").strip()
    if not path:
        if environment == "production":
            problems.append(
                "REDIS_TLS_CA_CERT is not set; production must pin the CA that signed the "
                "Redis server certificate. Set it to the path of that CA's PEM file."
            )
        return None
    data = _read_bytes("REDIS_TLS_CA_CERT", path, problems)
    if data is None:
        return None
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        certs = []
    if not certs:
        problems.append(
            f"REDIS_TLS_CA_CERT={path} holds no PEM certificate; point it at the CA "
            "certificate (-----BEGIN CERTIFICATE-----)."
        )
        return None
    return path


def _client_identity(env: Mapping[str, str], problems: list[str]) -> tuple[str | None, str | None]:
    cert_path = env.get("REDIS_TLS_CERT_FILE", "").strip()
    key_path = env.get("REDIS_TLS_KEY_FILE", "").strip()
    cert: x509.Certificate | None = None
    key_public: bytes | None = None
    if not cert_path:
        problems.append(
            "REDIS_TLS_CERT_FILE is not set; the server requires a client certificate. Set "
            "it to the path of the application's PEM certificate."
        )
    else:
        data = _read_bytes("REDIS_TLS_CERT_FILE", cert_path, problems)
        if data is not None:
            try:
                cert = x509.load_pem_x509_certificate(data)
            except ValueError:
                problems.append(
                    f"REDIS_TLS_CERT_FILE={cert_path} is not a PEM certificate; point it at "
                    "the client certificate (-----BEGIN CERTIFICATE-----)."
                )
    if cert is not None:
        now = dt.datetime.now(dt.UTC)
        if cert.not_valid_after_utc <= now:
            problems.append(
                f"REDIS_TLS_CERT_FILE={cert_path} expired on "
                f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC; issue a new client certificate."
            )
        elif cert.not_valid_before_utc > now:
            problems.append(
                f"REDIS_TLS_CERT_FILE={cert_path} is not valid before "
                f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC; check the clock or reissue it."
            )
    if not key_path:
        problems.append(
            "REDIS_TLS_KEY_FILE is not set; set it to the path of the client certificate's "
            "PEM private key."
        )
    else:
        key_public = _private_key_public_bytes(key_path, problems)
    if cert is not None and key_public is not None and _public_bytes(cert) != key_public:
        problems.append(
            f"REDIS_TLS_KEY_FILE={key_path} does not match REDIS_TLS_CERT_FILE={cert_path}; "
            "use the key the certificate was issued for."
        )
    if not cert_path or not key_path:
        return None, None
    return cert_path, key_path


def _public_bytes(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _private_key_public_bytes(path: str, problems: list[str]) -> bytes | None:
    data = _read_bytes("REDIS_TLS_KEY_FILE", path, problems)
    if data is None:
        return None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        problems.append(
            f"REDIS_TLS_KEY_FILE={path} is encrypted; provide the unencrypted PEM key in a "
            "file only the process user can read (mode 0400)."
        )
        return None
    except (ValueError, UnsupportedAlgorithm):
        problems.append(
            f"REDIS_TLS_KEY_FILE={path} is not a PEM private key; point it at the client "
            "certificate's key (-----BEGIN PRIVATE KEY-----)."
        )
        return None
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _decode_key(text: str) -> bytes | None:
    """Standard or URL-safe base64 of exactly 32 bytes; anything else is None."""
    try:
        token = text.strip().encode("ascii")
    except UnicodeEncodeError:
        return None
    try:
        raw = base64.b64decode(token.replace(b"-", b"+").replace(b"_", b"/"), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == DATA_KEY_BYTES else None


def _data_key(env: Mapping[str, str], problems: list[str]) -> bytes | None:
    text = _secret(env, "REDIS_ENCRYPTION_KEY", problems, required=True)
    if text is None:
        return None
    raw = _decode_key(text)
    if raw is None:
        problems.append(
            "REDIS_ENCRYPTION_KEY must be 32 random bytes encoded as base64 (44 characters); "
            f"the value given is not. {_GENERATE_KEY_HINT}"
        )
    return raw


def _previous_keys(
    env: Mapping[str, str], primary: bytes | None, problems: list[str]
) -> tuple[bytes, ...]:
    text = _secret(env, "REDIS_ENCRYPTION_PREVIOUS_KEYS", problems, required=False)
    if not text:
        return ()
    keys: list[bytes] = []
    for index, token in enumerate(t for t in _KEY_SPLIT_RE.split(text) if t):
        raw = _decode_key(token)
        if raw is None:
            problems.append(
                f"REDIS_ENCRYPTION_PREVIOUS_KEYS entry #{index + 1} is not 32 bytes of base64; "
                "list the old keys exactly as they were configured, separated by commas."
            )
        elif raw == primary:
            problems.append(
                f"REDIS_ENCRYPTION_PREVIOUS_KEYS entry #{index + 1} is the primary key; list "
                "only retired keys there."
            )
        elif raw in keys:
            problems.append(
                f"REDIS_ENCRYPTION_PREVIOUS_KEYS entry #{index + 1} repeats an earlier entry; "
                "list each retired key once."
            )
        else:
            keys.append(raw)
    return tuple(keys)


__all__ = [
    "DEFAULT_HTTP_PORT",
    "ENVIRONMENTS",
    "MIN_API_TOKEN_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "Environment",
    "ServiceSettings",
    "Settings",
    "capped_credential",
    "http_port",
    "load_settings",
    "max_value_bytes",
    "max_value_bytes_from_env",
    "read_file",
    "read_text_file",
    "resolvable_host",
    "utf8_text_only",
]
