"""`python -m infra.stack_config set` writes a value that reads back as itself.

Found on a deployed stack (day-2 pass): `set --stack S keyPrefix app2:` (the default prefix
docs/stack-settings.md gives is `cache:`) wrote `secure-redis:keyPrefix: app2:`, which is not YAML,
so every later plan, up, rotate.sh and status of the stack stopped at "is not valid YAML".
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from infra.settings import WHOLE_NUMBER_SETTINGS, load_settings, load_stack_file
from infra.stack_config import get_setting, set_setting, set_value

BASE = "config:\n  secure-redis:environment: development\n  secure-redis:runtimeIdSlot: 40\n"


@pytest.mark.parametrize(
    "value", ["app2:", "cache:", "yes", "True", "#x", "[a]", "a'b", "0x10", " spaced", "null"]
)
def test_a_value_yaml_would_read_otherwise_is_quoted_and_reads_back(value: str) -> None:
    written = yaml.safe_load(set_value(BASE, "keyPrefix", value))
    assert written["config"]["secure-redis:keyPrefix"] == value


@pytest.mark.parametrize(("key", "value"), [("redisMaxmemoryMb", "160"), ("redisCpus", "0.8")])
def test_numbers_stay_plain_as_before(key: str, value: str) -> None:
    assert f"  secure-redis:{key}: {value}\n" in set_value(BASE, key, value)


def test_set_then_get__a_prefix_with_a_colon_round_trips_through_the_stack_file(
    tmp_path: Path,
) -> None:
    (tmp_path / "Pulumi.s1.yaml").write_text(BASE)
    set_setting("s1", "keyPrefix", "app2:", root=tmp_path)
    assert load_stack_file("s1", tmp_path)["secure-redis:keyPrefix"] == "app2:"
    assert get_setting("s1", "keyPrefix", root=tmp_path) == "app2:"


@pytest.mark.parametrize("written", ["'010'", '"010"', "' 10 '"])
def test_get__prints_a_whole_number_as_the_program_reads_it(tmp_path: Path, written: str) -> None:
    """inputs16b: get printed `010`, the file's text, which scripts/rotate.sh then refused to
    raise; the program reads it with int() as 10."""
    (tmp_path / "Pulumi.s1.yaml").write_text(f"{BASE}  secure-redis:dataKeyGeneration: {written}\n")
    assert load_settings("s1", load_stack_file("s1", tmp_path)).data_key_generation == 10
    assert get_setting("s1", "dataKeyGeneration", root=tmp_path) == "10"


def test_get__every_whole_number_setting_is_the_programs_number(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.s1.yaml").write_text(BASE)
    for key in WHOLE_NUMBER_SETTINGS:
        assert get_setting("s1", key, root=tmp_path).isdigit(), key
    assert get_setting("s1", "runtimeIdSlot", root=tmp_path) == "40"
