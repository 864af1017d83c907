"""Numbers from users in the digits 0-9 only. Python's int() and float() read every script's
decimal digits: `appHostPort` written in fullwidth digits deployed port 20000 while the file
showed other characters. Each place that decides a number a user gives refuses them: the stack
settings (infra/settings.py _in_range), the app's environment and CLI options
(secure_cache/int_settings.py whole_number), rotation_probe's --timeout and bench's options."""

from __future__ import annotations

import pytest

from infra.settings import SettingsError, load_settings
from secure_cache.int_settings import int_setting
from tests.support.entry_points import run_entry

FULLWIDTH_20000 = "\uff12\uff10\uff10\uff10\uff10"
ARABIC_INDIC_18302 = "\u0661\u0668\u0663\u0660\u0662"
FULLWIDTH_60 = "\uff16\uff10"


def _stack(**settings: str) -> dict[str, str]:
    return {
        "secure-redis:environment": "development",
        "secure-redis:appHostPort": "18302",
        "secure-redis:runtimeIdSlot": "41",
        **{f"secure-redis:{k}": v for k, v in settings.items()},
    }


@pytest.mark.parametrize("digits", [FULLWIDTH_20000, ARABIC_INDIC_18302, "18\uff13\uff10\uff12"])
def test_stack_settings__a_port_in_other_digits_is_refused(digits: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings("s41", _stack(appHostPort=digits))
    text = str(raised.value)
    assert "secure-redis:appHostPort" in text, text
    assert "digits 0-9" in text, text


def test_stack_settings__a_cpu_count_in_other_digits_is_refused() -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings("s41", _stack(redisCpus="\uff11.5"))
    assert "secure-redis:redisCpus" in str(raised.value)


def test_stack_settings__ascii_digits_still_read() -> None:
    settings = load_settings("s41", _stack(appHostPort="20000", redisCpus="1.5"))
    assert settings.app_host_port == 20000
    assert settings.redis_cpus == 1.5


@pytest.mark.parametrize("digits", [FULLWIDTH_20000, ARABIC_INDIC_18302])
def test_app_environment__an_int_setting_in_other_digits_is_a_problem(digits: str) -> None:
    problems: list[str] = []
    assert int_setting({"HTTP_PORT": digits}, "HTTP_PORT", 8080, 1, 65535, problems) == 8080
    assert len(problems) == 1
    assert problems[0].startswith("HTTP_PORT must be an integer from 1 to 65535")


def test_whole_number__ascii_only() -> None:
    from secure_cache.int_settings import whole_number  # noqa: PLC0415 - new with the fix

    assert whole_number("8080") == 8080
    with pytest.raises(ValueError, match="digits 0-9"):
        whole_number(FULLWIDTH_60)


@pytest.mark.parametrize(
    "argv",
    [
        ["set", "k", "v", "--ttl", FULLWIDTH_60],
        ["rotate", "--batch-size", FULLWIDTH_60],
        ["rotate", "--max-batches", ARABIC_INDIC_18302],
    ],
    ids=["ttl", "batch-size", "max-batches"],
)
def test_cache_cli__an_option_in_other_digits_is_bad_input(argv: list[str]) -> None:
    from secure_cache.__main__ import main  # noqa: PLC0415

    code, text = run_entry(lambda: main(argv))
    assert code == 2, text
    assert "digits 0-9" in text, text


def test_rotation_probe__a_timeout_in_other_digits_is_bad_input() -> None:
    from infra import rotation_probe  # noqa: PLC0415

    argv = ["wait", "--stack", "s41", "--before", "/nonexistent", "--timeout", FULLWIDTH_60]
    code, text = run_entry(lambda: rotation_probe.main(argv))
    assert code == 2, text
    assert "--timeout" in text, text


@pytest.mark.parametrize("option", ["--rounds", "--slices"])
def test_bench__an_option_in_other_digits_is_bad_input(option: str) -> None:
    from scripts import bench  # noqa: PLC0415

    code, text = run_entry(lambda: bench.main([option, "\uff17"]))
    assert code == 2, text
    assert option in text, text


NBSP_18302 = "\u00a018302"


@pytest.mark.parametrize("key", ["appHostPort", "redisCpus", "environment"])
def test_stack_settings__a_leading_no_break_space_is_not_stripped_but_refused(key: str) -> None:
    """inputs16b: str.strip() removed a leading U+00A0, so `appHostPort: "\u00a018302"`
    deployed port 18302 while the file showed another character before the digits."""
    value = {"appHostPort": NBSP_18302, "redisCpus": "\u00a01.5", "environment": "\u00a0staging"}
    with pytest.raises(SettingsError) as raised:
        load_settings("s41", _stack(**{key: value[key]}))
    text = str(raised.value)
    assert f"secure-redis:{key}" in text, text
    assert "\\xa0" in text, text  # shown escaped


def test_stack_settings__ascii_whitespace_around_a_number_is_still_read() -> None:
    settings = load_settings("s41", _stack(appHostPort=" 18303\t", redisCpus="1.5 "))
    assert (settings.app_host_port, settings.redis_cpus) == (18303, 1.5)


def test_app_environment__a_leading_no_break_space_is_a_problem() -> None:
    problems: list[str] = []
    assert int_setting({"HTTP_PORT": "\u00a08081"}, "HTTP_PORT", 8080, 1, 65535, problems) == 8080
    assert len(problems) == 1, problems
    assert int_setting({"HTTP_PORT": " 8081\n"}, "HTTP_PORT", 8080, 1, 65535, []) == 8081


def test_exporter__a_metrics_port_with_a_leading_no_break_space_is_refused() -> None:
    from secure_cache.errors import ConfigurationError  # noqa: PLC0415
    from secure_cache.redis_exporter import ExporterSettings  # noqa: PLC0415

    with pytest.raises(ConfigurationError) as raised:
        ExporterSettings.from_env({"METRICS_PORT": "\u00a09121"})
    assert "METRICS_PORT must be a port number" in str(raised.value)
    with pytest.raises(ConfigurationError) as raised:
        ExporterSettings.from_env({"METRICS_PORT": " 9121\n"})
    assert "METRICS_PORT" not in str(raised.value)
