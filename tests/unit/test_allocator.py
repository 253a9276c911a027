"""The long-running commands fix glibc's mmap threshold (bot.allocator): a big block
freed must not raise it, so the next big-but-smaller block is mapped on its own (and given
back when freed) instead of growing the heap. Measured in a fresh interpreter (a test
process's heap has free chunks of every size, which malloc serves before mapping)."""

from __future__ import annotations

import ctypes
import subprocess
import sys

import pytest

PROBE = """
import ctypes, sys
from bot.allocator import tune_allocator

class Mallinfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks",
                "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Mallinfo2
if sys.argv[1] == "tuned":
    assert tune_allocator()
big = bytearray(8 << 20)  # mapped, then freed: glibc alone raises its threshold to 8 MB
del big
before = libc.mallinfo2().hblks
block = bytearray(4 << 20)
print(libc.mallinfo2().hblks - before)
"""


def mapped_on_its_own(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True,
                         text=True, check=True)
    return int(out.stdout)


def test_a_freed_big_block_does_not_move_the_mmap_threshold() -> None:
    try:
        ctypes.CDLL(None).gnu_get_libc_version  # noqa: B018
    except AttributeError:
        pytest.skip("not glibc")
    assert mapped_on_its_own("untuned") == 0  # glibc's own rule: from the heap
    assert mapped_on_its_own("tuned") == 1
