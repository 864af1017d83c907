"""`python -m infra.stack_config` names what to type when a setting's name is wrong.

Found following README as a new operator (docs pass, stack u10): `get --stack u10 nosuchKey`
said only "is not a setting", while `set` with the same typo listed the settings there are.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.stack_config import main

BASE = "config:\n  secure-redis:environment: development\n  secure-redis:runtimeIdSlot: 40\n"


@pytest.mark.parametrize("action", [["get", "tlsminversion"], ["set", "tlsminversion", "1.3"]])
def test_a_misspelt_setting__is_one_line_that_lists_the_settings(
    action: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "Pulumi.s1.yaml").write_text(BASE)
    code = main([*action, "--stack", "s1", "--project-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1, err
    assert "secure-redis:tlsminversion is not a setting" in err
    assert "known: " in err, err
    assert "tlsMinVersion" in err, err
    assert (tmp_path / "Pulumi.s1.yaml").read_text() == BASE
