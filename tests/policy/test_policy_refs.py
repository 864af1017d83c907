"""Every id the repository cites resolves to `docs/security-catalog.md`, and nothing cites a
document outside the repository.

The catalogue's "rules" column must name exactly the rules whose `refs` cite that row, so the
table cannot drift from the pack; its "e2e check" column must name files that exist.
"""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

from policies.rules import RULES, Rule

pytestmark = pytest.mark.policy

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "docs" / "security-catalog.md"
DESIGN = ROOT / "docs" / "design.md"
# Ids as the code cites them: catalogue ids, runtime probes, standards.
CITED_ID = re.compile(
    r"\b(?:(?:NET|RUNTIME|RES|IMAGE|TLS|REDIS|SECRET|STACK|CHECK)-\d{2}"
    r"|P-\d{2}|cis-docker-\d+(?:\.\d+)+|CKV2?_[A-Z0-9]+_\d+)\b"
)
# "CIS Docker 5.13" in a message cites the standard's check, i.e. the row cis-docker-5.13.
CIS_IN_PROSE = re.compile(r"CIS Docker (\d+\.\d+)((?:, \d+\.\d+)*)")
# Documents that live outside the repository (the project's planning notes).
FOREIGN_DOCUMENT = re.compile(
    r"SECURITY_CATALOG|TEAM\.md|\bDESIGN\.md|\bcontract \d|\.\./shared|notes/[A-Z]"
)
DESIGN_ANCHOR = re.compile(r"docs/design\.md#([a-z0-9-]+)")
ROW = re.compile(r"^\| (\S+) \|(.*)\|\s*$")


@cache
def catalogue_rows() -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for line in CATALOGUE.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match and match.group(1) not in ("id", "---"):
            rows[match.group(1)] = [c.strip() for c in match.group(2).split("|")]
    return rows


def repository_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    suffixes = {".py", ".sh", ".md", ".yaml", ".yml", ".toml", ".json", ".txt", ""}
    return [
        ROOT / name
        for name in listed
        if (ROOT / name).is_file()
        and Path(name).suffix in suffixes
        and not name.startswith("tests/policy/external/")  # quoted third-party programs
    ]


def cited_ids(text: str) -> set[str]:
    found = set(CITED_ID.findall(text))
    for match in CIS_IN_PROSE.finditer(text):
        numbers = [match.group(1), *re.findall(r"\d+\.\d+", match.group(2))]
        found |= {f"cis-docker-{n}" for n in numbers}
    return found


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_every_ref_of_a_rule__resolves_to_a_catalogue_row_naming_the_rule(rule: Rule) -> None:
    rows = catalogue_rows()
    for ref in rule.refs:
        assert ref in rows, f"{rule.name} cites {ref}, which docs/security-catalog.md lacks"
        assert f"`{rule.name}`" in "|".join(rows[ref]), (
            f"docs/security-catalog.md row {ref} must name the rule {rule.name}"
        )


def test_catalogue_names_no_rule_that_does_not_cite_the_row() -> None:
    citing: dict[str, set[str]] = {}
    for rule in RULES:
        for ref in rule.refs:
            citing.setdefault(ref, set()).add(rule.name)
    names = {r.name for r in RULES}
    for row_id, cells in catalogue_rows().items():
        rules_cell = cells[3] if len(cells) == 5 else cells[-1]  # "rules" column
        named = set(re.findall(r"`([a-z0-9-]+)`", rules_cell))
        unknown = named - names
        assert not unknown, f"docs/security-catalog.md row {row_id} names no rule: {unknown}"
        stale = named - citing.get(row_id, set())
        assert not stale, f"docs/security-catalog.md row {row_id} names {stale}; they cite it not"


def test_catalogue_e2e_checks_exist() -> None:
    for row_id, cells in catalogue_rows().items():
        for path in re.findall(r"`(tests/[^`]+)`", "|".join(cells)):
            assert (ROOT / path).is_file(), f"row {row_id} names {path}, which does not exist"


def test_every_id_cited_anywhere__resolves() -> None:
    rows = catalogue_rows()
    unresolved = {
        f"{path.relative_to(ROOT)}: {cid}"
        for path in repository_files()
        if path != CATALOGUE  # its "standard" column cites the standards themselves
        for cid in cited_ids(path.read_text(encoding="utf-8", errors="replace"))
        if cid not in rows
    }
    assert not unresolved, "ids with no row in docs/security-catalog.md:\n" + "\n".join(
        sorted(unresolved)
    )


def test_nothing_cites_a_document_outside_the_repository() -> None:
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("# ").lower()).replace(" ", "-")
        for line in DESIGN.read_text(encoding="utf-8").splitlines()
        if line.startswith("## ")
    }
    problems = []
    for path in repository_files():
        if path == Path(__file__):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            if FOREIGN_DOCUMENT.search(line):
                problems.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
            problems += [
                f"{path.relative_to(ROOT)}:{number}: no section #{a} in docs/design.md"
                for a in DESIGN_ANCHOR.findall(line)
                if a not in anchors
            ]
    assert not problems, "\n".join(problems)


def test_the_id_scanner_finds_what_it_must() -> None:
    """Positive control: the scan is not vacuous."""
    unknown = "RES-" + "99"  # spelt apart so this file cites no unknown id itself
    text = f'refs=("TLS-01", "cis-docker-5.13") # P-12, CIS Docker 5.2, 5.3; CKV_DOCKER_7 {unknown}'
    assert cited_ids(text) == {
        "TLS-01", "cis-docker-5.13", "P-12", "cis-docker-5.2", "cis-docker-5.3", "CKV_DOCKER_7",
        unknown,
    }  # fmt: skip
    assert unknown not in catalogue_rows()
