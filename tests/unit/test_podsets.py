"""Packed pod sets round-trip exactly: canonical UUIDs as bytes, anything else as text."""

from __future__ import annotations

import uuid

import pytest

from bot.store.podsets import PodSetBuilder, unpack


def round_trip(uids: list[str]) -> list[tuple[str, str, tuple[str, str], tuple[str, ...]]]:
    builder = PodSetBuilder()
    for i, uid in enumerate(uids):
        builder.add(uid, f"web-{i}", ("Deployment", "web" if i % 2 else "api"),
                    ("app",) if i % 3 else ("init", "app"))
    packed = unpack(builder.pack())
    return [(uid, name, packed.workloads[w], packed.container_sets[c])
            for uid, name, w, c in zip(packed.uids, packed.names, packed.pod_workload,
                                       packed.pod_containers, strict=True)]


@pytest.mark.parametrize("odd", [None, "UPPER000-0000-4000-8000-000000000000",
                                 "0000000 -0000-4000-8000-000000000000", "uid-1", "",
                                 "00000000000040008000000000000000"])
def test_pod_sets_round_trip_exactly(odd: str | None) -> None:
    uids = [str(uuid.UUID(int=i * 7919 + 1)) for i in range(50)]
    if odd is not None:
        uids[17] = odd
    back = round_trip(uids)
    assert [b[0] for b in back] == uids
    assert back[4] == (uids[4], "web-4", ("Deployment", "api"), ("app",))
    assert back[3] == (uids[3], "web-3", ("Deployment", "web"), ("init", "app"))


def test_canonical_uuids_pack_into_sixteen_bytes() -> None:
    builder = PodSetBuilder()
    for i in range(1000):
        builder.add(str(uuid.uuid4()), f"p-{i}", ("Deployment", "web"), ("app",))
    assert len(builder.pack()) < 1000 * 24


def test_a_damaged_pod_set_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unreadable pod set"):
        unpack(b"not zlib")
