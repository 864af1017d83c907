"""Facts the documents state about the running stack, checked against the code that makes
them true. Found following the documents on stack s54 (docs pass of 2026-12-03, docs17)."""

from __future__ import annotations

import re
from pathlib import Path

from infra.naming import Role
from infra.runtime_ids import ID_BASE, ID_CEILING, runtime_id

ROOT = Path(__file__).resolve().parents[2]


def test_no_document_says_a_container_runs_as_uid_999() -> None:
    # docs/day2.md said the reload jobs run as "uid 999"; every container runs as an id of its
    # stack's block (infra/runtime_ids.py), the reload jobs as Redis's (75401 on s54), and 999
    # was `systemd-journal`'s gid on the host (docs/deploy.md).
    assert ID_BASE <= runtime_id("s54", Role.REDIS, 54) < ID_CEILING
    assert runtime_id("s54", Role.REDIS, 54) == 75401
    said = [
        f"{path.relative_to(ROOT)}: {m.group(0)!r}"
        for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
        for m in re.finditer(r"\buid 999\b[^.;]*", path.read_text(encoding="utf-8"))
    ]
    assert said == []
