"""The C allocator's settings for the long-running commands (`serve`, `record`).

Left to its defaults, glibc's malloc serves a threaded Python process that reads MB-sized
API pages all day badly (measured, 100k realistic pods, `bench_patrol_realistic --serve`:
after an hour of a crash loop ~40 MB of its heap was free yet kept, ~30 MB of which a
`malloc_trim` would have given back):

- **M_MMAP_THRESHOLD.** A block above the threshold (128 KiB) is mapped on its own and
  returned to the system when freed — but glibc raises the threshold to the size of each
  such block freed (up to 32 MiB). After the first list page (4.5 MB of JSON at 500
  realistic pods) every page body, every watch buffer and log tail came from the heap,
  where anything long-lived allocated after it keeps the hole. Setting the threshold fixes
  it at its default: big transient blocks go back to the system at once.
- **M_ARENA_MAX.** Each thread that meets contention gets an arena of its own (up to 8 per
  core), and memory freed in one arena serves only the threads on it: the recorder's
  stages, the capture workers and the page prefetch each kept their own high-water mark.
  Two arenas hold the same work.

Elsewhere (musl, macOS) nothing is done. An operator's own `MALLOC_ARENA_MAX` or
`MALLOC_MMAP_THRESHOLD_` is overridden only for these two values.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger("restart_patrol")

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameters (malloc.h)
M_ARENA_MAX = -8
MMAP_THRESHOLD = 128 * 1024  # glibc's default, kept fixed (no dynamic raise)
ARENA_MAX = 2


def tune_allocator() -> bool:
    """Fix glibc's mmap threshold and cap its arenas (see the module docstring); False
    when the C library is not glibc (nothing changed)."""
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - glibc only
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) & bool(
        mallopt(M_ARENA_MAX, ARENA_MAX))
    if not done:
        log.warning("glibc's mallopt refused the allocator settings; memory may grow more")
    return done
