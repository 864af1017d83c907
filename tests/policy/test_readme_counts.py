"""The counts docs/policy.md (README's policy section until 2026-12-03) gives for the policy
pack and its corpus of other people's programs are the pack's and the corpus's own, so a policy
or a program added without a word there fails here instead of leaving a figure no one
measured."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pulumi_policy import EnforcementLevel

from policies.pack import policies
from tests.policy.test_policy_external import PROGRAMS, PYTHON

pytestmark = pytest.mark.policy

POLICY_DOC = (Path(__file__).resolve().parents[2] / "docs/policy.md").read_text(encoding="utf-8")


def _readme_number(pattern: str) -> tuple[int, ...]:
    found = re.findall(pattern, " ".join(POLICY_DOC.split()))
    assert len(found) == 1, f"docs/policy.md should state this once: {pattern}"
    return tuple(int(n) for n in (found[0] if isinstance(found[0], tuple) else (found[0],)))


def test_readme_policy_counts__are_the_packs() -> None:
    levels = [p.enforcement_level for p in policies()]
    pack = (
        len(levels),
        levels.count(EnforcementLevel.MANDATORY),
        levels.count(EnforcementLevel.ADVISORY),
    )
    stated = _readme_number(r"(\d+) policies \((\d+) mandatory, (\d+) advisory\)")
    assert stated == pack, "docs/policy.md's 'N policies (M mandatory, K advisory)' is out of date"


def test_readme_corpus_counts__are_the_corpus() -> None:
    assert _readme_number(r"has (\d+) transcribed public programs") == (len(PROGRAMS),)
    assert _readme_number(r"`tests/policy/external_programs/` (\d+) more") == (len(PYTHON),)
