"""`python -m infra.stack_config set` judges a setting against what the stack runs with.

Found on walkthroughs (2026-12-05 and 06): a generation set below the deployed one was written,
and every later plan and up then failed (dataKeyGeneration) or started a rotation unasked (the
others; `rotate.sh S certs` on a lowered certRenewalGeneration renewed nothing and failed); a
new keyPrefix made every cached entry unreachable, with no word. The state this checkout's
applier keeps says what the stack runs with, so the refusal comes before the file changes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.applier.deployed import RAISED_ONLY_SETTINGS, recorded_key_prefix
from infra.applier.state import PASSPHRASE_ENV
from infra.stack_config import get_setting, main
from tests.support.deployed_state import as_if_up, project_copy

GENERATIONS = sorted(RAISED_ONLY_SETTINGS)
# What the fixture deploys: 2, but the API token's retire at 1, below its rotation, so that the
# rotation can be lowered to 1 without the settings' own refusal (a retire above its rotation).
DEPLOYED = {key: 1 if key == "apiTokenRetireGeneration" else 2 for key in GENERATIONS}


def _set(project: Path, key: str, value: str) -> int:
    return main(["set", "--stack", "dev", "--project-dir", str(project), key, value])


@pytest.fixture
def deployed_at_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """dev deployed with the generations at DEPLOYED (and the default key prefix)."""
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    project = project_copy(tmp_path)
    # The rotation before its retire: a retire above the rotation is refused.
    for key in sorted(DEPLOYED, key=lambda k: k == "apiTokenRetireGeneration"):
        assert _set(project, key, str(DEPLOYED[key])) == 0
    as_if_up(project)
    return project


def test_every_raised_only_setting_is_read_from_a_deployed_state(deployed_at_2: Path) -> None:
    """Pins the table (infra/applier/deployed.py) to the rendered program."""
    assert GENERATIONS == [
        "apiTokenRetireGeneration",
        "apiTokenRotationGeneration",
        "caRolloverGeneration",
        "certRenewalGeneration",
        "dataKeyGeneration",
        "passwordRotationGeneration",
    ]
    from infra.applier.deployed import deployed_generation  # noqa: PLC0415
    from infra.applier.state import StateStore  # noqa: PLC0415

    state = StateStore(deployed_at_2, "dev").load()
    assert state is not None
    assert {key: deployed_generation(state, key) for key in GENERATIONS} == DEPLOYED
    assert recorded_key_prefix(state, "dev") == get_setting("dev", "keyPrefix", deployed_at_2)


@pytest.mark.parametrize("key", GENERATIONS)
def test_set__below_the_deployed_value__refused_in_one_line_and_the_file_kept(
    deployed_at_2: Path, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    stack_file = deployed_at_2 / "Pulumi.dev.yaml"
    before = stack_file.read_bytes()
    capsys.readouterr()
    deployed = DEPLOYED[key]
    assert _set(deployed_at_2, key, str(deployed - 1)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"{key} {deployed - 1} is below the {key} stack dev runs with ({deployed})" in err
    assert "nothing was changed" in err
    assert stack_file.read_bytes() == before


@pytest.mark.parametrize("key", GENERATIONS)
def test_set__the_deployed_value__is_written(deployed_at_2: Path, key: str) -> None:
    """rotate.sh puts a raise back to the deployed value when its up never ran."""
    assert _set(deployed_at_2, key, str(DEPLOYED[key])) == 0


def test_set__a_raise__is_written(deployed_at_2: Path) -> None:
    assert _set(deployed_at_2, "dataKeyGeneration", "3") == 0
    assert get_setting("dev", "dataKeyGeneration", deployed_at_2) == "3"


def test_set__another_key_prefix_on_a_deployed_stack__refused_naming_the_way(
    deployed_at_2: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert _set(deployed_at_2, "keyPrefix", "cache2:") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "every cached entry unreachable" in err
    assert "scripts/teardown.sh dev" in err
    assert _set(deployed_at_2, "keyPrefix", get_setting("dev", "keyPrefix", deployed_at_2)) == 0


def test_set__a_state_it_cannot_open__leaves_the_refusal_to_the_up(
    deployed_at_2: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sealed with the key file, the state does not open with a passphrase given: set does
    not fail for it (plan and up then say what is wrong)."""
    monkeypatch.setenv(PASSPHRASE_ENV, "a passphrase the state was not sealed with")
    assert _set(deployed_at_2, "dataKeyGeneration", "1") == 0
