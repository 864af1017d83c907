"""docs/benchmark.md names runs of the client's benchmark by time; a run it calls client.md's
must be the run client.md's table shows.

Found in the docs pass of 2026-12-03 (docs17): docs/benchmark.md called the idle run of
2026-11-30 21:08 UTC "client.md's idle run" three times, though client.md's table had since
become a run of 2026-12-03 07:34 UTC, so a reader looked for 0.88 in a table that holds 0.90.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# "client.md's idle run", "client.md's run (21:08)", "client.md's full run of ...": a run the
# text says is client.md's, with the time it gives (if any) in the parentheses.
CLIENT_RUN = re.compile(r"client\.md's (?:[a-z]+ ){0,2}run\b(?: \((\d\d:\d\d)\))?")
TABLE_RUN = re.compile(r"Run on (\d{4}-\d\d-\d\d) at (\d\d:\d\d) UTC")


def _table_run(client_md: str) -> tuple[str, str]:
    section = client_md.split("## Benchmark", 1)[1]
    found = TABLE_RUN.search(section)
    assert found, 'client.md\'s "Benchmark" no longer says "Run on DATE at HH:MM UTC"'
    return found.group(1), found.group(2)


def stale_runs(benchmark_md: str, client_md: str) -> list[str]:
    """Each place benchmark.md calls a run client.md's that is not client.md's table's run."""
    _, time = _table_run(client_md)
    stale = []
    for number, line in enumerate(benchmark_md.splitlines(), 1):
        for m in CLIENT_RUN.finditer(line):
            if m.group(1) != time:
                stale.append(f"docs/benchmark.md:{number}: {m.group(0)!r} (client.md: {time})")
    return stale


def test_benchmark_md_calls_only_the_table_s_run_client_md_s() -> None:
    client = (ROOT / "docs" / "client.md").read_text(encoding="utf-8")
    benchmark = (ROOT / "docs" / "benchmark.md").read_text(encoding="utf-8")
    assert stale_runs(benchmark, client) == []


def test_the_check_finds_a_run_client_md_no_longer_shows() -> None:
    client = "## Benchmark\n\nRun on 2026-12-03 at 07:34 UTC on the machine.\n"
    assert stale_runs("0.88 in client.md's idle run (21:08), and", client) == [
        'docs/benchmark.md:1: "client.md\'s idle run (21:08)" (client.md: 07:34)'
    ]
    assert stale_runs("x\nper pair in client.md's idle run, so", client) != []
    assert stale_runs("0.90 in client.md's run (07:34)", client) == []
    assert stale_runs("the ratios client.md's table shows", client) == []
