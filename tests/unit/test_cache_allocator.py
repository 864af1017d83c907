"""allocator.keep_freed_memory: a second batch of large values reuses the first one's pages.

Each case runs in a fresh interpreter, because the thresholds are process-wide and cannot be
put back. The measure is the page faults of the second batch (getrusage), not time.
"""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="mallopt thresholds are glibc's"
)

VALUES = 100
VALUE_BYTES = 100 * 1024
PAGES_PER_BATCH = VALUES * VALUE_BYTES // 4096

# A batch as get_many/set_many hold one: 100 values of 100 KiB alive at once, then freed.
_BATCH = f"""
import resource, sys
from secure_cache.allocator import keep_freed_memory
if sys.argv[1] == "tuned" and not keep_freed_memory():
    sys.exit("mallopt refused")
def batch():
    return [bytes([i % 251]) * {VALUE_BYTES} for i in range({VALUES})]
values = batch()
del values
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
values = batch()
del values
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _second_batch_faults(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _BATCH, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout)


def test_default_glibc_faults_a_freed_batch_back_in() -> None:
    # The cost allocator.py removes: glibc gave the first batch's pages back to the kernel.
    assert _second_batch_faults("default") > PAGES_PER_BATCH // 2


def test_kept_memory_serves_the_next_batch_without_faults() -> None:
    assert _second_batch_faults("tuned") < PAGES_PER_BATCH // 20
