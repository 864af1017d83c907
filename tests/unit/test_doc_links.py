"""Every relative link and `#anchor` in README.md and docs/*.md resolves.

README keeps the path (deploy, verify, day 2) and a link per topic; the detail lives in docs/.
A section moved or renamed there leaves a link that GitHub shows as working and that lands
at the top of the page, or on nothing: this finds it. Anchors are GitHub's heading slugs
(lowercased, punctuation but `-` and `_` dropped, spaces to `-`, a repeated heading `-1`,
`-2`, ...). Links inside code (fenced blocks, indented blocks, backticks) are not links.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
HEADING = re.compile(r"^(#{1,6}) +(.+?) *#*$")
LINK = re.compile(r"(?<!!)\[(?:[^\]\\]|\\.)*\]\(([^)\s]+)(?: \"[^\"]*\")?\)")
FENCE = re.compile(r"^ {0,3}(```|~~~)")


def documents(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def _prose(text: str) -> list[tuple[int, str]]:
    """The lines outside fenced and indented code blocks, inline code blanked out."""
    lines, fenced, previous_blank = [], False, True
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        indented = line.startswith("    ") and previous_blank and not line.lstrip().startswith("-")
        previous_blank = line.strip() == "" or (indented and previous_blank)
        if fenced or indented:
            continue
        lines.append((number, re.sub(r"`+[^`]*`+", "``", line)))
    return lines


def slug(heading: str) -> str:
    text = re.sub(r"`([^`]*)`", r"\1", heading)  # code spans keep their text
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link keeps its text
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The slug of every heading outside fenced blocks, a repeated one numbered as GitHub does."""
    seen: dict[str, int] = {}
    found = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        match = HEADING.match(line)
        if fenced or not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(root: Path = ROOT) -> list[tuple[Path, int, str]]:
    """Every relative link of the documents: (document, line, target)."""
    found = []
    for doc in documents(root):
        for number, line in _prose(doc.read_text(encoding="utf-8")):
            for target in LINK.findall(line):
                if not re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                    found.append((doc, number, target))
    return found


def broken_links(root: Path = ROOT) -> list[str]:
    problems = []
    for doc, number, target in links(root):
        path_part, _, anchor = target.partition("#")
        dest = (doc.parent / path_part).resolve() if path_part else doc
        where = f"{doc.relative_to(root)}:{number}: ({target})"
        if not dest.exists():
            problems.append(f"{where}: no file {path_part}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{where}: no heading #{anchor} in {dest.name}")
    return problems


def test_every_link_and_anchor_in_readme_and_docs_resolves() -> None:
    assert len(links()) >= 30, "the link pattern no longer finds the documents' links"
    assert broken_links() == []


def test_the_checker_finds_a_missing_file_and_a_missing_anchor(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "day2.md").write_text(
        "# Day 2: renewing and rotating in place\n\n## After a leak\n\n## After a leak\n"
        "back to [the start](../README.md#quick-start)\n"
    )
    (tmp_path / "README.md").write_text(
        "# secure-redis\n\n## Quick start\n\n"
        "- [Day 2](docs/day2.md#day-2-renewing-and-rotating-in-place)\n"
        "- [the second leak](docs/day2.md#after-a-leak-1)\n"
        "- [moved](docs/applier.md)\n"
        "- [renamed](docs/day2.md#interrupted)\n"
        "- [here](#quick-start), [not here](#exit-codes)\n"
        "- `[in code](docs/nothing.md)`, [outside](https://example.org/x#y)\n"
        "\n```sh\n[in a block](docs/nothing.md)\n```\n"
    )
    assert broken_links(tmp_path) == [
        "README.md:7: (docs/applier.md): no file docs/applier.md",
        "README.md:8: (docs/day2.md#interrupted): no heading #interrupted in day2.md",
        "README.md:9: (#exit-codes): no heading #exit-codes in README.md",
    ]


@pytest.mark.parametrize(
    ("heading", "expected"),
    [
        ("The encrypted cache client (`app/`, import `secure_cache`)",
         "the-encrypted-cache-client-app-import-secure_cache"),
        ("Verification (tests/e2e)", "verification-testse2e"),
        ("What Docker 20.10 leaves open, and what the project closes",
         "what-docker-2010-leaves-open-and-what-the-project-closes"),
        ("Many callers (1 KiB SET+GET)", "many-callers-1-kib-setget"),
        ("The app's HTTP API under attack", "the-apps-http-api-under-attack"),
    ],
)  # fmt: skip
def test_slug__is_githubs(heading: str, expected: str) -> None:
    assert slug(heading) == expected
