"""`python -m infra.apply`: the parts that need no Docker engine (plan, input errors)."""

from __future__ import annotations

import pytest

from infra import apply


def test_cli__plan_says_it_is_not_pulumi_and_lists_what_up_would_create(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert apply.main(["plan", "--stack", "dev"]) == 0
    out = capsys.readouterr().out
    assert "local applier, not Pulumi" in out
    for name in ("secure-redis-dev-backend", "secure-redis-dev-redis", "secure-redis-dev-app"):
        assert name in out
    assert "secure-redis-dev-redis-init on none, 8 uploads (run to completion)" in out


def test_cli__plan_prints_no_secret(capsys: pytest.CaptureFixture[str]) -> None:
    assert apply.main(["plan", "--stack", "prod"]) == 0
    out = capsys.readouterr().out
    assert "PRIVATE KEY" not in out
    assert "BEGIN CERTIFICATE" not in out


def test_cli__unknown_stack_is_exit_2_with_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert apply.main(["plan", "--stack", "no-such-stack"]) == 2
    assert "no-such-stack" in capsys.readouterr().err


def test_cli__malformed_stack_name_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert apply.main(["down", "--stack", "../x"]) == 2
    assert "is not a stack name" in capsys.readouterr().err
