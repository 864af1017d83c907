"""Every `README, "Section"` a comment cites is a section README.md has.

Comments cite README by a section's name (STYLE: every citation resolves to a file in the
repository). Found in the docs pass (stack u10): monitoring/alerts.yml cited
`README, "Data-key rotation"`, a section README never had.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CITING = ("infra", "app", "policies", "tests", "scripts", "monitoring", ".ci")
SUFFIXES = {".py", ".sh", ".yml", ".yaml", ".toml", ""}
CITATION = re.compile(r'README(?:\.md)?,? \(?"([^"\n]+)"')
# A section is a heading or a paragraph's bold lead (`**Another stack.** ...`).
SECTION = re.compile(r"^(?:#{1,4} (.+)|- \*\*([^*]+)\*\*|\*\*([^*]+)\*\*)", re.MULTILINE)


def _sections() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [next(g for g in m.groups() if g).strip() for m in SECTION.finditer(text)]


def _citations() -> list[tuple[str, str]]:
    found = []
    for top in CITING:
        for path in sorted((ROOT / top).rglob("*")):
            if not path.is_file() or path.suffix not in SUFFIXES or "__pycache__" in path.parts:
                continue
            if path == Path(__file__).resolve():  # its own examples are not citations
                continue
            if path.suffix == "" and top != ".ci":
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            for name in CITATION.findall(" ".join(text.replace("#", " ").split())):
                found.append((str(path.relative_to(ROOT)), name))
    return found


def test_comments_cite_readme_sections() -> None:
    assert len(_citations()) >= 10, "the citation pattern no longer finds README citations"


@pytest.mark.parametrize(("where", "name"), _citations(), ids=lambda v: str(v)[:60])
def test_a_cited_readme_section_exists(where: str, name: str) -> None:
    sections = _sections()
    assert any(s.startswith(name) for s in sections), (
        f'{where} cites README, "{name}", which is no section of README.md'
    )
