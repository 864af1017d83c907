"""The long topic documents open with a task index, and each task's section starts with its
command.

docs/day2.md (807 lines) and docs/client.md (400) were moved out of README whole; a reader who
came for one task (renew the certificates, finish an interrupted `up`, read a key from the
command line) had to read measurements of other days to find the command. Since the docs pass
of 2026-12-03 (docs17) each starts with "## Find a task": a table whose rows link to sections
of the same document, each of which begins with a fenced block of the commands; what explains
and measures them follows below the block, or under the document's reference sections.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TASK_DOCUMENTS = ("docs/day2.md", "docs/client.md")
ROW_LINK = re.compile(r"^\|.*\]\(#([^)]+)\) \|$", re.MULTILINE)


def _slug(heading: str) -> str:
    # GitHub's heading anchors, as tests/unit/test_doc_links.py computes them.
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _sections(text: str) -> dict[str, str]:
    """Anchor -> the section's text up to the next heading below the title."""
    parts = re.split(r"(?m)^#{2,4} (.+)\n", text)
    return {_slug(title): body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


def task_problems(text: str) -> list[str]:
    sections = _sections(text)
    if "find-a-task" not in sections:
        return ["no '## Find a task' section"]
    if list(sections).index("find-a-task") != 0:
        return ["'## Find a task' is not the document's first section"]
    anchors = ROW_LINK.findall(sections["find-a-task"])
    problems = [] if anchors else ["the task index links to no section"]
    for anchor in anchors:
        body = sections.get(anchor)
        if body is None:
            problems.append(f"#{anchor}: no such section")
        elif not re.match(r"\s*```(sh|python)\n", body):
            problems.append(f"#{anchor}: does not start with a block of its commands")
    return problems


@pytest.mark.parametrize("document", TASK_DOCUMENTS)
def test_a_task_index_first_and_each_task_starts_with_its_command(document: str) -> None:
    assert task_problems((ROOT / document).read_text(encoding="utf-8")) == []


def test_the_check_finds_what_is_missing() -> None:
    ok = "# T\n\n## Find a task\n\n| a | b | [A](#a) |\n\n## A\n\n```sh\nrun\n```\n"
    assert task_problems(ok) == []
    assert task_problems("# T\n\n## A\n\ntext\n") == ["no '## Find a task' section"]
    assert task_problems(ok.replace("```sh\nrun\n```\n", "prose first\n")) == [
        "#a: does not start with a block of its commands"
    ]
    assert task_problems(ok.replace("(#a)", "(#b)")) == ["#b: no such section"]
