"""Every `README, "Section"` or `docs/NAME.md, "Section"` a comment cites is a section that
file has, and every `docs/NAME.md` a comment or document names exists.

Comments cite README by a section's name (STYLE: every citation resolves to a file in the
repository). Found in the docs pass (stack u10): monitoring/alerts.yml cited
`README, "Data-key rotation"`, a section README never had. On 2026-12-03 README's detailed
sections moved to topic documents in docs/ (day2.md, applier.md, monitoring.md, ...): a
citation of README for one of those sections now names a section README no longer has, and
fails here, as does a bare `README, Day 2` (MOVED).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CITING = ("infra", "app", "policies", "tests", "scripts", "monitoring", ".ci", "docs")
SUFFIXES = {".py", ".sh", ".yml", ".yaml", ".toml", ".md", ""}
CITATION = re.compile(r'(README(?:\.md)?|docs/[a-z0-9-]+\.md),? \(?"([^"\n]+)"')
DOC_PATH = re.compile(r"\bdocs/[a-z0-9-]+\.md")
EXAMPLES = {Path(__file__).name, "test_doc_links.py"}
# A section is a heading or a paragraph's bold lead (`**Another stack.** ...`).
SECTION = re.compile(r"^(?:#{1,4} (.+)|- \*\*([^*]+)\*\*|\*\*([^*]+)\*\*)", re.MULTILINE)
# Sections that left README on 2026-12-03, and where they are now: cited bare (no quotes),
# `README, Day 2` resolves nowhere the test above could check.
MOVED = {
    "Day 2": "docs/day2.md",
    "Monitoring": "docs/monitoring.md",
    "Benchmark": "docs/client.md",
    "Stack settings": "docs/stack-settings.md",
    "Another stack": "docs/stack-settings.md",
    "Verification": "docs/verification.md",
    "The local applier": "docs/applier.md",
    "Policy as code": "docs/policy.md",
    "Large stacks": "docs/policy.md",
    "The service and its image": "docs/client.md",
    "Rolling back the app": "docs/day2.md",
    "Bootstrap": "docs/bootstrap.md",
    "TLS material and secrets": "docs/tls-and-secrets.md",
}
BARE = re.compile(
    r"README(?:\.md)?(?:'s)?,? \(?(" + "|".join(re.escape(name) for name in MOVED) + r")\b"
)


def _sections(cited: str) -> list[str]:
    path = ROOT / ("README.md" if cited.startswith("README") else cited)
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    return [next(g for g in m.groups() if g).strip() for m in SECTION.finditer(text)]


def _texts() -> list[tuple[str, str]]:
    """(path, text with line breaks and comment markers folded to single spaces)."""
    found = []
    for top in CITING:
        for path in sorted((ROOT / top).rglob("*")):
            if not path.is_file() or path.suffix not in SUFFIXES or "__pycache__" in path.parts:
                continue
            if path.name in EXAMPLES:  # their examples are not citations
                continue
            if path.suffix == "" and top != ".ci":
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            found.append((str(path.relative_to(ROOT)), " ".join(text.replace("#", " ").split())))
    return found


def _citations() -> list[tuple[str, str, str]]:
    return [
        (where, cited, name) for where, text in _texts() for cited, name in CITATION.findall(text)
    ]


def test_comments_cite_readme_sections() -> None:
    cited = {cited for _, cited, _ in _citations()}
    assert len(_citations()) >= 10, "the citation pattern no longer finds citations"
    assert "README" in cited, "positive control: citations of README found"
    assert "docs/day2.md" in cited, "positive control: citations of a topic document found"


@pytest.mark.parametrize(("where", "cited", "name"), _citations(), ids=lambda v: str(v)[:60])
def test_a_cited_section_exists(where: str, cited: str, name: str) -> None:
    sections = _sections(cited)
    assert sections, f"{where} cites {cited}, which is no file"
    assert any(s.startswith(name) for s in sections), (
        f'{where} cites {cited}, "{name}", which is no section of it'
        + (f" (moved to {MOVED[name]})" if name in MOVED else "")
    )


def test_no_bare_citation_of_a_section_readme_no_longer_has() -> None:
    stale = [
        f"{where}: README {m.group(1)} is in {MOVED[m.group(1)]}"
        for where, text in _texts()
        for m in BARE.finditer(text)
    ]
    assert stale == []


def test_every_named_document_exists() -> None:
    missing = sorted(
        {
            f"{where}: {name}"
            for where, text in _texts()
            for name in DOC_PATH.findall(text)
            if not (ROOT / name).is_file()
        }
    )
    assert missing == []
