"""Stack settings: profiles, overrides, and every bad value stopping the program early."""

from __future__ import annotations

import json
import runpy
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.runtime import config as runtime_config

import infra.stack
from infra.components import app_image
from infra.mock_engine import RecordingMonitor
from infra.pki import KeyAlgorithm
from infra.profiles import Environment
from infra.redis_conf import min_memory_limit_mb
from infra.settings import (
    REPO_ROOT,
    SettingsError,
    StackSettings,
    load_settings,
    load_stack_file,
    settings_from_pulumi,
)
from tests.support.app_context import app_context


def _config(environment: str = "development", **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"secure-redis:environment": environment}
    config.update({f"secure-redis:{k}": v for k, v in overrides.items()})
    return config


def _problems(stack: str, config: dict[str, Any]) -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings(stack, config)
    return str(caught.value)


@pytest.mark.parametrize(("stack", "environment"), [("dev", "development"), ("prod", "production")])
def test_stack_files__load_their_profile(stack: str, environment: str) -> None:
    settings = load_settings(stack, load_stack_file(stack))
    assert settings.environment == Environment(environment)


def test_settings__engine_strings_are_parsed() -> None:
    settings = load_settings("dev", _config(passwordLength="30", redisCpus="0.5"))
    assert (settings.password_length, settings.redis_cpus) == (30, 0.5)


def test_settings__are_frozen() -> None:
    settings = load_settings("dev", _config())
    with pytest.raises(AttributeError):
        settings.password_length = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("environment", "protocols"),
    [
        ("development", ("TLSv1.2", "TLSv1.3")),
        ("staging", ("TLSv1.3",)),
        ("production", ("TLSv1.3",)),
    ],
)
def test_profile__sets_tls_protocols(environment: str, protocols: tuple[str, ...]) -> None:
    assert load_settings("s", _config(environment)).tls_protocols == protocols


@pytest.mark.parametrize(
    ("environment", "length"), [("development", 24), ("staging", 32), ("production", 48)]
)
def test_profile__password_length_is_the_floor(environment: str, length: int) -> None:
    assert load_settings("s", _config(environment)).password_length == length


def test_unknown_environment__names_key_and_choices() -> None:
    message = _problems("dev", _config("qa"))
    assert "secure-redis:environment" in message
    assert "development, staging, production" in message


def test_missing_environment__names_key_and_fix() -> None:
    message = _problems("dev", {})
    assert "secure-redis:environment is missing" in message
    assert "pulumi config set secure-redis:environment" in message
    assert "python -m infra.stack_config set --stack dev environment development" in message


@pytest.mark.parametrize("version", ["1.0", "1.1", "TLSv1.1"])
def test_tls_below_1_2__is_rejected(version: str) -> None:
    message = _problems("dev", _config(tlsMinVersion=version))
    assert "secure-redis:tlsMinVersion" in message
    assert "set it to 1.2 or 1.3" in message


def test_production__rejects_tls_1_2() -> None:
    message = _problems("prod", _config("production", tlsMinVersion="1.2"))
    assert "secure-redis:tlsMinVersion" in message
    assert "set it to 1.3" in message


@pytest.mark.parametrize(
    ("environment", "floor"), [("development", 24), ("staging", 32), ("production", 48)]
)
def test_password_below_floor__is_rejected(environment: str, floor: int) -> None:
    message = _problems("s", _config(environment, passwordLength=floor - 1))
    assert f"secure-redis:passwordLength is {floor - 1}" in message
    assert f"set it to {floor} or more" in message


@pytest.mark.parametrize(
    ("environment", "limit"), [("development", 90), ("staging", 90), ("production", 30)]
)
def test_certificate_validity_above_limit__is_rejected(environment: str, limit: int) -> None:
    # A stack file cannot lengthen its leaf certificates past what the policy pack accepts.
    message = _problems("s", _config(environment, certValidityDays=limit + 1))
    assert f"secure-redis:certValidityDays is {limit + 1}, above the {environment} limit" in message
    assert f"set it to {limit} or less" in message


@pytest.mark.parametrize(
    ("environment", "limit"), [("development", 90), ("staging", 90), ("production", 30)]
)
def test_certificate_validity_at_limit__is_accepted(environment: str, limit: int) -> None:
    settings = load_settings("s", _config(environment, certValidityDays=limit))
    assert settings.cert_validity_days == limit


@pytest.mark.parametrize("maxmemory", [300, 256, 192, 105])
def test_memory_limit_without_room_for_the_aof_rewrite__is_rejected(maxmemory: int) -> None:
    """The limit that OOM-killed Redis under the rotation load run (256 for 192) is refused:
    the rewrite's fork may need the dataset twice, plus 93 MiB for the server itself, one
    oversized reply, a full ACL LOG and every connection (infra/redis_conf.py
    min_memory_limit_mb)."""
    message = _problems("dev", _config(redisMemoryMb=256, redisMaxmemoryMb=maxmemory))
    assert (
        f"secure-redis:redisMemoryMb (256) is too small for secure-redis:redisMaxmemoryMb "
        f"({maxmemory})"
    ) in message
    assert f"raise redisMemoryMb to at least {2 * maxmemory + 93}" in message


def test_memory_limit_of_twice_maxmemory_plus_93__is_accepted() -> None:
    load_settings("dev", _config(redisMemoryMb=301, redisMaxmemoryMb=104))
    with pytest.raises(SettingsError, match="at least 301"):
        load_settings("dev", _config(redisMemoryMb=300, redisMaxmemoryMb=104))


def test_unknown_key__is_reported_as_typo() -> None:
    message = _problems("dev", _config(passwordLenght=30))
    assert "secure-redis:passwordLenght is not a setting; remove it" in message


def test_non_numeric_value__names_key() -> None:
    message = _problems("dev", _config(redisMemoryMb="lots"))
    assert "secure-redis:redisMemoryMb is 'lots'" in message


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [*[("passwordLength", v, "a whole number from 16 to 512")
       for v in (".inf", "24.5", "[24]", None, "1e400", "ten")],
     *[("redisCpus", v, "a number from 0.05 to 64.0") for v in ("lots", "[1]", "true", None)]],
)  # fmt: skip
def test_not_a_number__names_key_range_and_fix_not_python_text(
    key: str, value: Any, expected: str
) -> None:
    message = _problems("dev", _config(**{key: value}))
    assert f"secure-redis:{key} is" in message
    assert f"expected {expected}" in message
    assert f"pulumi config set secure-redis:{key}" in message
    # The command for a user without the Pulumi CLI (the local applier's): it was missing.
    assert f"python -m infra.stack_config set --stack dev {key} <value>" in message
    assert "invalid literal" not in message
    assert "could not convert" not in message


def test_renewal_window_not_below_validity__is_rejected() -> None:
    message = _problems("dev", _config(certValidityDays=30, certRenewBeforeDays=30))
    assert "secure-redis:certRenewBeforeDays (30) must be below" in message


def test_api_token_retire_generation__defaults_to_0_and_reads_like_its_siblings() -> None:
    """A stack file from before the setting (none written) reads as 0: a rotation pending
    there stays pending through the upgrade's up (infra/providers/secrets.py)."""
    assert load_settings("dev", _config()).api_token_retire_generation == 0
    settings = load_settings(
        "dev", _config(apiTokenRotationGeneration="3", apiTokenRetireGeneration="2")
    )
    assert settings.api_token_retire_generation == 2


@pytest.mark.parametrize(
    ("value", "expected"),
    [("ten", "expected a whole number from 0 to 1000000"), ("-1", "must be between 0 and 1000000"),
     ("1.5", "expected a whole number from 0 to 1000000")],
)  # fmt: skip
def test_api_token_retire_generation__a_bad_value_names_key_range_and_fix(
    value: str, expected: str
) -> None:
    message = _problems("dev", _config(apiTokenRetireGeneration=value))
    assert f"secure-redis:apiTokenRetireGeneration is {value!r}" in message
    assert expected in message
    assert "python -m infra.stack_config set --stack dev apiTokenRetireGeneration" in message
    assert "Traceback" not in message


def test_api_token_retire_generation_above_the_rotation__is_rejected() -> None:
    """Above it, the next rotation's old token would be retired by whatever up came next."""
    message = _problems("dev", _config(apiTokenRotationGeneration=1, apiTokenRetireGeneration=2))
    assert (
        "secure-redis:apiTokenRetireGeneration (2) is above "
        "secure-redis:apiTokenRotationGeneration (1)"
    ) in message
    assert "set it to 1 or less (scripts/rotate.sh dev api-token-retire" in message
    equal = _config(apiTokenRotationGeneration=2, apiTokenRetireGeneration=2)
    assert load_settings("dev", equal).api_token_retire_generation == 2


def test_bad_key_prefix__is_rejected() -> None:
    message = _problems("dev", _config(keyPrefix="cache*"))
    assert "secure-redis:keyPrefix" in message


def test_bad_stack_name__is_rejected() -> None:
    message = _problems("Prod_1", _config())
    assert "stack name 'Prod_1'" in message


def test_docker_host_tcp_without_tls__is_rejected() -> None:
    config = {**_config(), "docker:host": "tcp://10.0.0.5:2375"}
    message = _problems("dev", config)
    assert "docker:host uses tcp:// without TLS" in message


def test_docker_host_over_ssh__is_accepted() -> None:
    settings = load_settings("dev", {**_config(), "docker:host": "ssh://deploy@host"})
    assert settings.docker_host == "ssh://deploy@host"


def test_all_problems__are_reported_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings("dev", _config(tlsMinVersion="1.1", passwordLength=20))
    assert len(caught.value.problems) == 2, caught.value.problems


def test_missing_stack_file__lists_known_stacks(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.dev.yaml").write_text("config: {}\n")
    with pytest.raises(SettingsError, match=r"use one of: dev"):
        load_stack_file("qa", tmp_path)


def test_stack_file_values__override_the_profile(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.qa.yaml").write_text(
        "config:\n  secure-redis:environment: staging\n  secure-redis:keyAlgorithm: rsa-3072\n"
    )
    settings = load_settings("qa", load_stack_file("qa", tmp_path))
    assert settings.key_algorithm is KeyAlgorithm.RSA_3072


def test_committed_stack_files__hold_no_secure_values() -> None:
    for path in REPO_ROOT.glob("Pulumi.*.yaml"):
        try:
            text = path.read_text(errors="replace")
        except FileNotFoundError:
            continue  # a test's throwaway stack file (test_infra_stack_files.py), gone again
        assert "secure:" not in text, f"{path.name} must not carry secrets"


def test_bad_config__stops_the_program_before_any_resource() -> None:
    """The real entry point under the mock engine: a weak value raises, nothing registers."""
    monitor = RecordingMonitor()
    monitor.install(project="secure-redis", stack="dev")
    pulumi.runtime.set_all_config(
        {"secure-redis:environment": "production", "secure-redis:passwordLength": "47"}
    )
    raised: list[BaseException] = []

    def program() -> None:
        try:
            runpy.run_path(str(REPO_ROOT / "infra" / "__main__.py"), run_name="__main__")
        except SettingsError as exc:
            raised.append(exc)

    try:
        pulumi.runtime.test(program)()  # type: ignore[no-untyped-call]
    finally:
        pulumi.runtime.set_all_config({})
    assert raised, "the program must refuse passwordLength 47 in production"
    assert "secure-redis:passwordLength" in str(raised[0])
    assert monitor.registrations == [], "no resource may be declared before validation"


def test_valid_config__runs_the_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counter-check for the test above: the same entry point declares resources when valid
    (with a fresh wheelhouse, which it asks for first: tests/unit/test_stack_build_inputs.py;
    this checkout's own may be missing or older than app/)."""
    monkeypatch.setattr(app_image, "IMAGE_CONTEXT", app_context(tmp_path))
    # The stack's lock is looked for in a directory of the test's own: this checkout's stack
    # dev may be under an up (scripts/test.sh deploys it beside this step), which the program
    # refuses to run beside (tests/unit/test_program_stack_lock.py).
    unlocked = infra.stack.require_stack_unlocked
    monkeypatch.setattr(infra.stack, "require_stack_unlocked", lambda s: unlocked(s, tmp_path))
    monitor = RecordingMonitor()
    monitor.install(project="secure-redis", stack="dev")
    pulumi.runtime.set_all_config(
        {"secure-redis:environment": "development", "secure-redis:appHostPort": "18080"}
    )

    def program() -> None:
        runpy.run_path(str(REPO_ROOT / "infra" / "__main__.py"), run_name="__main__")

    try:
        pulumi.runtime.test(program)()  # type: ignore[no-untyped-call]
    finally:
        pulumi.runtime.set_all_config({})
    assert any(r.props.get("name") == "secure-redis-dev-redis" for r in monitor.registrations)


def test_settings_type__is_a_frozen_dataclass() -> None:
    assert StackSettings.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_unknown_key_algorithm__lists_the_choices() -> None:
    message = _problems("dev", _config(keyAlgorithm="rsa-1024"))
    assert "secure-redis:keyAlgorithm is 'rsa-1024': unknown key algorithm" in message
    assert "ecdsa-p256" in message


# checkov:skip=CKV_SECRET_6: a made-up stand-in for a value set with --secret, no credential
SECRET_TEXT = "n0t-a-port-but-a-pasted-password"


@pytest.mark.parametrize(
    ("value", "secret_keys"),
    [
        pytest.param(SECRET_TEXT, {"secure-redis:appHostPort"}, id="set-with-secret-flag"),
        pytest.param({"secure": "v1:" + SECRET_TEXT}, set(), id="secure-ciphertext-in-file"),
    ],
)
def test_bad_secret_value__is_not_shown_and_the_fix_says_without_secret(
    value: Any, secret_keys: set[str]
) -> None:
    """The engine hands a program a `--secret` setting's plaintext; a bad one must not reach
    the error (and a `secure:` ciphertext says the same: it was set with --secret)."""
    with pytest.raises(SettingsError) as caught:
        load_settings("dev", _config(appHostPort=value), secret_keys=secret_keys)
    message = str(caught.value)
    assert SECRET_TEXT not in message
    assert "secure-redis:appHostPort is a secret value (not shown)" in message
    assert "set it without --secret" in message


def test_settings_from_pulumi__knows_which_keys_the_engine_marks_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As `pulumi up` runs the program: PULUMI_CONFIG holds plaintext, PULUMI_CONFIG_SECRET_KEYS
    names the secret ones."""
    # Only the environment speaks: no config another test set in this process.
    config: ContextVar[dict[str, Any]] = ContextVar("config")
    secret_keys: ContextVar[set[str]] = ContextVar("secret_keys")
    config.set({})
    secret_keys.set(set())
    monkeypatch.setattr(runtime_config, "CONFIG", config)
    monkeypatch.setattr(runtime_config, "_SECRET_KEYS", secret_keys)
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(_config(appHostPort=SECRET_TEXT)))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(["secure-redis:appHostPort"]))
    monkeypatch.setattr(pulumi, "get_stack", lambda: "dev")
    with pytest.raises(SettingsError) as caught:
        settings_from_pulumi()
    assert SECRET_TEXT not in str(caught.value)
    assert "a secret value (not shown)" in str(caught.value)


def test_settings_nested_under_the_project_name__say_how_pulumi_wants_them() -> None:
    """`secure-redis:` followed by indented keys is one key, secure-redis:secure-redis, to
    Pulumi; the fix is a line per setting."""
    config = {**_config(), "secure-redis:secure-redis": {"passwordLength": 30}}
    message = _problems("dev", config)
    assert (
        "secure-redis:secure-redis is not a setting: write each setting on its own line as "
        "`secure-redis:<name>: <value>` (e.g. `secure-redis:passwordLength: 48`), not indented "
        "under `secure-redis:`"
    ) in message
    assert "known:" not in message


@pytest.mark.parametrize(
    ("environment", "key", "value"),
    [
        # The key prefix's own check (the ACL renderer's rule) quoted the value it refused.
        pytest.param("development", "keyPrefix", "n0t-a-prefix-but-a-pasted-password", id="prefix"),
        # Rules over several keys quoted the values they compared.
        pytest.param("production", "passwordLength", "25", id="below-the-floor"),
        pytest.param("production", "certValidityDays", "123", id="above-the-limit"),
        pytest.param("development", "certRenewBeforeDays", "311", id="cross-key"),
    ],
)
def test_bad_secret_value__is_not_shown_by_any_check(
    environment: str, key: str, value: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(
            "dev", _config(environment, **{key: value}), secret_keys={f"secure-redis:{key}"}
        )
    message = str(caught.value)
    assert f"secure-redis:{key}" in message
    assert value not in message


def test_secret_maxmemory__is_not_given_away_by_the_memory_minimum() -> None:
    """The minimum redisMemoryMb is twice redisMaxmemoryMb plus a constant: printed as a
    number, it told a maxmemory set with --secret."""
    with pytest.raises(SettingsError) as caught:
        load_settings(
            "dev",
            _config("development", redisMaxmemoryMb="300"),
            secret_keys={"secure-redis:redisMaxmemoryMb"},
        )
    message = str(caught.value)
    assert "secure-redis:redisMemoryMb" in message
    assert "300" not in message
    assert str(min_memory_limit_mb(300)) not in message
    assert f"twice redisMaxmemoryMb plus {min_memory_limit_mb(0)}" in message
