"""`python -m infra.stack_config set` writes a value that reads back as itself.

Found on a deployed stack (day-2 pass): `set --stack S keyPrefix app2:` (the default prefix
docs/stack-settings.md gives is `cache:`) wrote `secure-redis:keyPrefix: app2:`, which is not YAML,
so every later plan, up, rotate.sh and status of the stack stopped at "is not valid YAML".
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from infra.settings import load_stack_file
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
