"""The long-running commands fix glibc's mmap threshold (bot.allocator): a big block
freed must not raise it, so the next big-but-smaller block is mapped on its own (and given
back when freed) instead of coming from the heap."""

from __future__ import annotations

import ctypes

import pytest

from bot.allocator import tune_allocator


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def _mapped_blocks() -> int:
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = _Mallinfo2
    return int(libc.mallinfo2().hblks)


def test_a_freed_big_block_does_not_move_the_mmap_threshold() -> None:
    try:
        ctypes.CDLL(None).gnu_get_libc_version  # noqa: B018
    except AttributeError:
        pytest.skip("not glibc")
    assert tune_allocator()
    big = bytearray(8 << 20)  # mapped, then freed: glibc would raise its threshold to 8 MB
    del big
    before = _mapped_blocks()
    block = bytearray(1 << 20)  # 1 MB: mapped on its own only with the threshold fixed
    assert _mapped_blocks() == before + 1
    del block
    assert _mapped_blocks() == before
