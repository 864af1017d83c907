"""What README and the setup summary tell users to run keeps the API token off command lines.

A process's command line is readable by every account on the host (`ps`,
/proc/<pid>/cmdline). The quick start had `curl -H "Authorization: Bearer $TOKEN"`, and on a
deployed stack an unprivileged account (`nobody`) read the whole token from that curl's
command line while it ran (attack pass of 2026-12-02, docs/client.md, "The service and its image").
The token now reaches curl on its standard input (`-H @-`), from printf, a shell builtin.

The quick start's own lines run here in bash, with `docker` and `curl` on PATH replaced by
scripts that record what they are given: the command lines every process got, and what came
on curl's standard input.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "Tk7" + "q" * 45  # 48 characters, as the stack's (infra/components/secrets.py)

# `docker exec ... cat .../api.token` prints the token; anything else is not expected here.
DOCKER = f"""#!/bin/sh
printf '%s\\0' docker "$@" >> "$RECORD/argv"
printf '\\n' >> "$RECORD/argv"
[ "$1 $4" = "exec /etc/secure-cache/api.token" ] && echo '{TOKEN}'
"""
# Records its command line, and its standard input when told to read a header from it.
CURL = """#!/bin/sh
printf '%s\\0' curl "$@" >> "$RECORD/argv"
printf '\\n' >> "$RECORD/argv"
for arg in "$@"; do [ "$arg" = @- ] && cat >> "$RECORD/stdin"; done
exit 0
"""


def _quick_start_token_lines() -> list[str]:
    """The quick start's first sh block, from the line that reads the token to the last curl."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    lines = block.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("TOKEN="))
    last = max(i for i, line in enumerate(lines) if "curl " in line)
    return lines[first : last + 1]


def _run(lines: list[str], tmp_path: Path) -> tuple[list[list[str]], str]:
    shims = tmp_path / "bin"
    record = tmp_path / "record"
    shims.mkdir()
    record.mkdir()
    for name, body in (("docker", DOCKER), ("curl", CURL)):
        (shims / name).write_text(body)
        (shims / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{shims}:{os.environ['PATH']}", "RECORD": str(record)}
    script = "set -euo pipefail\n" + "\n".join(lines) + "\n"
    subprocess.run(
        ["bash", "-c", script], env=env, check=True, timeout=60, stdin=subprocess.DEVNULL
    )
    # One line per process: each argument followed by a NUL.
    argvs = [chunk.split("\0") for chunk in (record / "argv").read_text().split("\0\n") if chunk]
    stdin = (record / "stdin").read_text() if (record / "stdin").exists() else ""
    return [argv for argv in argvs if argv], stdin


def test_the_quick_start_never_puts_the_token_on_a_command_line(tmp_path: Path) -> None:
    lines = _quick_start_token_lines()
    argvs, stdin = _run(lines, tmp_path)
    curls = [argv for argv in argvs if argv[0] == "curl"]
    assert len(curls) >= 2, f"the quick start's curl lines did not run: {lines}"
    on_a_command_line = [argv[0] for argv in argvs if any(TOKEN in arg for arg in argv)]
    assert not on_a_command_line, f"the token is on the command line of {on_a_command_line}"
    # Positive control: every curl still sends the token, as a header read from its stdin.
    assert stdin.count(f"Authorization: Bearer {TOKEN}\n") == len(curls)


# Anything that puts a bearer token into a header argument: `-H "Authorization: Bearer $T"`,
# `--header 'Authorization: Bearer ...'`, with the token as a variable or a substitution.
TOKEN_ON_ARGV = re.compile(r"""(-H|--header)\s+["']?Authorization: Bearer \\?\$""")


def test_no_instruction_puts_the_token_into_a_header_argument() -> None:
    """The quick start's table, the service section (docs/client.md) and the setup summary's
    hint too. docs/attack-surface.md quotes the old header argument as its finding."""
    docs = [p for p in sorted((ROOT / "docs").glob("*.md")) if p.name != "attack-surface.md"]
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in [ROOT / "README.md", *docs, *sorted((ROOT / "scripts").glob("*.sh"))]
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if TOKEN_ON_ARGV.search(line) or "Bearer \\$(docker exec" in line
    ]
    assert not found, f"the token would be on a command line: {found}"
