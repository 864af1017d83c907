"""The material initialiser's script (infra/components/material.py INIT_SCRIPT), run as it is
by `sh` on a scratch directory standing in for the volume: a reader looking at the files
between any two of its steps finds every name, with either the old or the new content.

Every file command the script runs (cp, ln, mkdir, mv, rm, chmod) goes through a stand-in on
PATH that runs the real command and then reads every material name through the volume, the
way a consumer opens it (`<volume>/<name>`, through `..data`). So the check runs between each
two steps, deterministically, instead of hoping a reader loop hits a window of a millisecond.
Before the script staged its copy (main before leftovers16), running it again with the same
revision (a drift repair, an upgrade of the initialiser) removed the live `..<revision>`
directory first and the names dangled until the copy was done.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from infra.components.material import INIT_SCRIPT

COMMANDS = ("cp", "ln", "mkdir", "mv", "rm", "chmod")
# After each step: every name must open and hold one of the contents it may have (a line of
# its file under $ALLOWED); with SAME_SET=1 all names must hold the same set's (the same line).
# Otherwise one line to $LOG: the step and what the reader found. Content is test data.
CHECK = r"""#!/bin/sh
"$REAL_DIR/{command}" "$@"
rc=$?
echo {command} >>"$STEPS"
sets=""
for name in $NAMES; do
    if ! "$REAL_CAT" "$VOLUME/$name" >"$SCRATCH/read" 2>/dev/null; then
        echo "after {command} $*: $name missing" >>"$LOG"
    elif ! line="$("$REAL_GREP" -nxF -f "$SCRATCH/read" "$ALLOWED/$name")"; then
        echo "after {command} $*: $name has content from no set" >>"$LOG"
    else
        sets="$sets ${line%%:*}"
    fi
done
if [ "$SAME_SET" = 1 ]; then
    first="${sets# }"; first="${first%% *}"
    for set in $sets; do
        [ "$set" = "$first" ] && continue
        echo "after {command} $*: names from two sets:$sets" >>"$LOG"
        break
    done
fi
exit $rc
"""


def _real(command: str) -> str:
    found = shutil.which(command)
    assert found is not None, f"{command} not on PATH"
    return found


def _stand_ins(tmp_path: Path) -> Path:
    """A directory of stand-ins, one per file command, each checking the volume after it ran."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    real = bin_dir / "real"
    real.mkdir()
    for command in COMMANDS:
        (real / command).symlink_to(_real(command))
        stand_in = bin_dir / command
        stand_in.write_text(CHECK.replace("{command}", command))
        stand_in.chmod(0o755)
    return bin_dir


def _run(
    tmp_path: Path,
    volume: Path,
    files: dict[str, str],
    revision: str,
    *,
    check: bool,
    same_set: bool = False,
) -> list[str]:
    """Stage `files` and run the script on `volume`; the lines the stand-ins logged."""
    staging = tmp_path / f"staging-{revision}"
    staging.mkdir(exist_ok=True)
    for name, content in files.items():
        (staging / name).write_text(content)
        (staging / name).chmod(0o400 if name.endswith(".key") else 0o444)
    log, steps = tmp_path / "log", tmp_path / "steps"
    log.write_text("")
    steps.write_text("")
    bin_dir = _stand_ins(tmp_path) if not (tmp_path / "bin").exists() else tmp_path / "bin"
    path = os.environ.get("PATH", "/usr/bin:/bin")
    env = {
        "PATH": f"{bin_dir}:{path}" if check else path,
        "REAL_DIR": str(bin_dir / "real"),
        "REAL_CAT": _real("cat"),
        "REAL_GREP": _real("grep"),
        "VOLUME": str(volume),
        "NAMES": " ".join(sorted(files)),
        "ALLOWED": str(tmp_path / "allowed"),
        "SCRATCH": str(tmp_path),
        "LOG": str(log),
        "STEPS": str(steps),
        "SAME_SET": "1" if same_set else "0",
    }
    done = subprocess.run(
        ["sh", "-euc", INIT_SCRIPT, "material-init", str(staging), str(volume), revision],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    if check:  # the stand-ins did run: the check is not vacuous
        assert {"cp", "mv", "rm"} <= set(steps.read_text().split())
    return log.read_text().splitlines()


def _allow(tmp_path: Path, *sets: dict[str, str]) -> None:
    """Each name may read as its content in any of `sets` (one line each: grep -x)."""
    allowed = tmp_path / "allowed"
    allowed.mkdir(exist_ok=True)
    for name in sets[0]:
        (allowed / name).write_text("".join(f"{s[name]}\n" for s in sets))


def _contents(volume: Path, files: dict[str, str]) -> dict[str, str]:
    return {name: (volume / name).read_text() for name in files}


OLD = {"ca.crt": "CA one", "app.key": "KEY one", "redis.password": "PASSWORD one"}
NEW = {"ca.crt": "CA two", "app.key": "KEY two", "redis.password": "PASSWORD two"}


def test_init_script__the_same_revision_again_never_leaves_a_name_without_its_file(
    tmp_path: Path,
) -> None:
    """A drift repair: a file in the live revision was changed by hand, and the initialiser
    runs again with the same revision. Between every two of its steps each name opens, with
    the changed content or the declared one; afterwards the declared content is back."""
    volume = tmp_path / "volume"
    volume.mkdir()
    assert _run(tmp_path, volume, OLD, "rev1", check=False) == []
    tampered = volume / "..rev1" / "redis.password"
    tampered.chmod(0o644)
    tampered.write_text("PASSWORD tampered")
    _allow(tmp_path, OLD, {**OLD, "redis.password": "PASSWORD tampered"})

    found = _run(tmp_path, volume, OLD, "rev1", check=True)

    assert found == [], "a reader between two steps of the rerun:\n" + "\n".join(found)
    assert _contents(volume, OLD) == OLD
    assert os.readlink(volume / "..data") == "..rev1"
    assert sorted(p.name for p in volume.iterdir()) == sorted(["..data", "..rev1", *OLD])
    assert (volume / "..rev1" / "redis.password").stat().st_mode & 0o777 == 0o444
    assert (volume / "..rev1").stat().st_mode & 0o777 == 0o700
    assert (volume / "..rev1" / "app.key").stat().st_nlink == 1  # the staged copy is gone


def test_init_script__a_new_revision_switches_every_name_at_once(tmp_path: Path) -> None:
    """A rotation: between every two steps all names read from one set, old or new (never a
    certificate beside another key); the old revision's directory goes afterwards."""
    volume = tmp_path / "volume"
    volume.mkdir()
    assert _run(tmp_path, volume, OLD, "rev1", check=False) == []
    _allow(tmp_path, OLD, NEW)

    found = _run(tmp_path, volume, NEW, "rev2", check=True, same_set=True)

    assert found == [], "a reader between two steps of the rotation:\n" + "\n".join(found)
    assert _contents(volume, NEW) == NEW
    assert sorted(p.name for p in volume.iterdir()) == sorted(["..data", "..rev2", *NEW])
