"""SecureCache.from_env refuses each bad configuration with its message, before connecting."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.profiles import PASSWORD_FLOOR
from secure_cache import ConfigurationError, SecureCache
from tests.support.cache_env import cache_environ, write_secret
from tests.support.tls_redis import TlsMaterial, TlsRedisServer


def _other_identity(tmp_path: Path) -> TlsMaterial:
    return TlsMaterial.generate(tmp_path / "other")


# (id, how the deployed environment is broken, fragment of the message)
CASES = [
    ("plaintext-url", {"REDIS_URL": "redis://127.0.0.1:6379"}, "REDIS_URL must use rediss://"),
    # One below the floor the program generates for each environment (infra/profiles.py).
    *(
        (
            f"short-password-{environment}",
            {"ENVIRONMENT": environment.value, "password": "p" * (floor - 1)},
            f"{environment} environment requires at least {floor}",
        )
        for environment, floor in PASSWORD_FLOOR.items()
    ),
    ("key-not-base64", {"data-key": "not-a-key"}, "REDIS_ENCRYPTION_KEY must be 32 random bytes"),
    ("key-wrong-length", {"data-key": "a2V5"}, "REDIS_ENCRYPTION_KEY must be 32 random bytes"),
    ("cert-unreadable", {"REDIS_TLS_CERT_FILE": "/nonexistent/app.crt"}, "does not exist"),
    ("key-unreadable", {"REDIS_TLS_KEY_FILE": "/nonexistent/app.key"}, "does not exist"),
    ("cert-key-mismatch", {"foreign-key": ""}, "does not match REDIS_TLS_CERT_FILE"),
    (
        "production-without-ca",
        {"ENVIRONMENT": "production", "password": "p" * 48, "REDIS_TLS_CA_CERT": None},
        "production must pin the CA",
    ),
]


@pytest.mark.parametrize(("broken", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_configuration__stops_startup_with_its_message(
    tls_redis: TlsRedisServer, tmp_path: Path, broken: dict[str, str | None], fragment: str
) -> None:
    overrides = dict(broken)
    secrets = tmp_path / "secrets"
    if "password" in overrides:
        path = write_secret(secrets / "pw", "password", str(overrides.pop("password")))
        overrides["REDIS_PASSWORD_FILE"] = str(path)
    if "data-key" in overrides:
        path = write_secret(secrets / "dk", "data-key", str(overrides.pop("data-key")))
        overrides["REDIS_ENCRYPTION_KEY_FILE"] = str(path)
    if "foreign-key" in overrides:
        overrides.pop("foreign-key")
        overrides["REDIS_TLS_KEY_FILE"] = str(_other_identity(tmp_path).app.key_file)
    env = cache_environ(tls_redis, secrets)
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    with pytest.raises(ConfigurationError) as caught:
        SecureCache.from_env(env)
    assert len(caught.value.problems) == 1, caught.value.problems
    assert fragment in caught.value.problems[0]
    assert tls_redis.material.app_password not in str(caught.value)
