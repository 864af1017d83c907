"""rotate.sh stopped partway, as an operator's Ctrl-C, a CI timeout or a dropped session stops
it: the steps a test then runs again."""

from __future__ import annotations

import os
import signal
import subprocess

from tests.e2e import appclient
from tests.e2e.commands import rotate_script
from tests.e2e.stacks import Stack

# The line rotate.sh prints once the new data key's up is done (scripts/rotate.sh
# rotate_data_key), before the rotation pass.
FIRST_UP_DONE = "kept for reading) done"


def data_key_stopped_after_first_up(stack: Stack) -> None:
    """`scripts/rotate.sh S data-key` stopped (SIGTERM to its process group, as a Ctrl-C in a
    terminal) once the new key's up is done: the new key is primary, the old one kept, the
    rotation pass not run. Run again, rotate.sh finishes that rotation (docs/day2.md,
    "Interrupted")."""
    first = subprocess.Popen(  # its own process group, as a terminal's job
        rotate_script(stack, "data-key"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert first.stdout is not None
    seen = []
    for line in first.stdout:
        seen.append(line)
        if FIRST_UP_DONE in line:
            os.killpg(first.pid, signal.SIGTERM)
            break
    first.wait(timeout=60)
    assert any(FIRST_UP_DONE in line for line in seen), "".join(seen)[-2000:]
    assert appclient.status(stack)["encryption"]["previous_key_ids"], "stopped mid-rotation"
