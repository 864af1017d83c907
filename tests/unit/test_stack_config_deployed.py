"""`python -m infra.stack_config set` refuses a dataKeyGeneration below the deployed one.

Found on a walkthrough (2026-12-05): `set --stack S dataKeyGeneration 1` on a stack deployed at
2 was written, and every later plan and up then failed on the keyring's refusal. The state this
checkout's applier keeps says what the stack runs with, so the refusal comes before the file
changes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.applier.state import PASSPHRASE_ENV
from infra.stack_config import get_setting, main
from tests.support.deployed_state import as_if_up, project_copy


@pytest.fixture
def deployed_at_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    project = project_copy(tmp_path)
    assert (
        main(["set", "--stack", "dev", "--project-dir", str(project), "dataKeyGeneration", "2"])
        == 0
    )
    as_if_up(project)
    return project


def test_set__below_the_deployed_generation__refused_in_one_line_and_the_file_kept(
    deployed_at_2: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack_file = deployed_at_2 / "Pulumi.dev.yaml"
    before = stack_file.read_bytes()
    args = ["set", "--stack", "dev", "--project-dir", str(deployed_at_2), "dataKeyGeneration"]
    capsys.readouterr()
    assert main([*args, "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "dataKeyGeneration 1 is below the data-key generation stack dev runs with (2)" in err
    assert "nothing was changed" in err
    assert "scripts/rotate.sh dev data-key" in err
    assert stack_file.read_bytes() == before


def test_set__the_deployed_generation_or_above__is_written(deployed_at_2: Path) -> None:
    args = ["set", "--stack", "dev", "--project-dir", str(deployed_at_2), "dataKeyGeneration"]
    assert main([*args, "2"]) == 0  # rotate.sh puts a raise back to the deployed value
    assert main([*args, "3"]) == 0
    assert get_setting("dev", "dataKeyGeneration", deployed_at_2) == "3"


def test_set__a_state_it_cannot_open__leaves_the_refusal_to_the_up(
    deployed_at_2: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sealed with the key file, the state does not open with a passphrase given: set does
    not fail for it (plan and up then say what is wrong, and refuse the lower value)."""
    monkeypatch.setenv(PASSPHRASE_ENV, "a passphrase the state was not sealed with")
    args = ["set", "--stack", "dev", "--project-dir", str(deployed_at_2), "dataKeyGeneration"]
    assert main([*args, "1"]) == 0
