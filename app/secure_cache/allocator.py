"""Keep freed heap memory mapped: large values then cost AES-GCM, not page faults.

glibc returns the top of its heap to the kernel whenever more than 128 KiB there is free
(M_TRIM_THRESHOLD), and serves allocations above a moving threshold with mmap. A batch of
large values (set_many/get_many: 100 envelopes of 100 KiB alive at once, then freed) is
exactly that pattern, so every batch faulted its pages back in, and the kernel zeroed each
one: measured on the 2-core build machine (2026-11-30), sealing 100 values of 100 KiB and
keeping them took 24.5 minor faults and about 270 us per seal, against 0 faults and 70 us
with the thresholds below (scripts/bench.py reports the effect on whole operations). The
service sets them at start (`python -m secure_cache serve`); a process embedding the library
decides for itself (docs/client.md, "Benchmark").

What this costs: freed memory up to TRIM_THRESHOLD_BYTES stays mapped, so the resident size
stays near its peak instead of shrinking after a burst; the service's peak is bounded by its
request budget (http_budget.py) either way. Values up to MMAP_THRESHOLD_BYTES come from the
heap instead of their own mappings.

Only glibc has mallopt(3); elsewhere (musl, macOS) this does nothing and says so.
"""

from __future__ import annotations

import ctypes
from typing import Final

# mallopt(3) parameter numbers, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD: Final = -1
_M_MMAP_THRESHOLD: Final = -3

TRIM_THRESHOLD_BYTES: Final = 64 << 20
# Covers the service's largest body (HTTP_MAX_VALUE_BYTES, 1 MiB by default) with room;
# larger values keep mappings of their own, returned to the kernel when freed.
MMAP_THRESHOLD_BYTES: Final = 4 << 20


def keep_freed_memory(
    trim_bytes: int = TRIM_THRESHOLD_BYTES, mmap_bytes: int = MMAP_THRESHOLD_BYTES
) -> bool:
    """Raise glibc's trim and mmap thresholds for this process; False where there is no
    mallopt (not glibc) or glibc refused a value."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_TRIM_THRESHOLD, trim_bytes)) and bool(
        mallopt(_M_MMAP_THRESHOLD, mmap_bytes)
    )


__all__ = ["MMAP_THRESHOLD_BYTES", "TRIM_THRESHOLD_BYTES", "keep_freed_memory"]
