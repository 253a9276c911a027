"""Packed pod sets: every pod of one namespace in a snapshot, as one compressed value.

A lean snapshot keeps rows only for containers that restarted; the pod set proves that
the other pods (and their containers) existed with zero restarts, and names what vanished
pods were. Layout (format 1): zlib over msgpack of a `_PackedPods` map. Workloads and
container-name lists repeat across pods, so each is stored once and pods refer to them by
index; pod uids that are canonical UUIDs (all Kubernetes-issued ones) pack into 16 bytes.
About 30 bytes per pod in all; a 100k-pod snapshot's pod sets take ~3 MB.
"""

from __future__ import annotations

import zlib
from sys import intern
from typing import NamedTuple

import msgspec

FORMAT = 1
_UUID_BYTES = 16


class _PackedPods(msgspec.Struct, frozen=True, omit_defaults=True):
    format: int
    workloads: list[tuple[str, str]]  # (kind, name)
    container_sets: list[list[str]]
    names: list[str]
    pod_workload: list[int]
    pod_containers: list[int]
    uid_bytes: bytes = b""  # 16 bytes per pod when every uid is a canonical UUID…
    uid_text: list[str] = []  # …else the uids as text


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_PackedPods)


def _uuid_bytes(uids: list[str]) -> bytes | None:
    """The uids as 16-byte values, or None unless every one is a canonical (lower-case,
    hyphenated) UUID, so that `_uuid_text` gives back exactly the same strings. Whole-list
    string operations: a per-uid uuid.UUID() cost more than the rest of the write."""
    n = len(uids)
    joined = "".join(uids)
    dashes = "-" * n
    if len(joined) != 36 * n or any(joined[i::36] != dashes for i in (8, 13, 18, 23)):
        return None
    digits = joined.replace("-", "")
    if len(digits) != 32 * n or digits != digits.lower():
        return None
    try:
        packed = bytes.fromhex(digits)
    except ValueError:
        return None
    return packed if len(packed) == _UUID_BYTES * n else None  # fromhex skips spaces


_TEXT_DIGITS = [j for j in range(36) if j not in (8, 13, 18, 23)]  # hex digits' places


def _uuid_text(packed: bytes) -> list[str]:
    """16-byte values back to canonical UUID text, by strided slice assignment (C loops):
    formatting 100k uids one by one cost more than the rest of a baseline load."""
    n = len(packed) // _UUID_BYTES
    digits = packed.hex().encode("ascii")
    text = bytearray(b"-" * (36 * n))
    for i, j in enumerate(_TEXT_DIGITS):
        text[j::36] = digits[i::32]
    joined = text.decode("ascii")
    return [joined[i:i + 36] for i in range(0, 36 * n, 36)]


class PodSetBuilder:
    """Collects the pods of one namespace, then packs them."""

    def __init__(self) -> None:
        self._workloads: dict[tuple[str, str], int] = {}
        self._container_sets: dict[tuple[str, ...], int] = {}
        self.uids: list[str] = []
        self._names: list[str] = []
        self._pod_workload: list[int] = []
        self._pod_containers: list[int] = []

    def __len__(self) -> int:
        return len(self.uids)

    def add(self, uid: str, name: str, workload: tuple[str, str],
            containers: tuple[str, ...]) -> None:
        """One pod: its workload (kind, name) and the names of all its containers."""
        w = self._workloads.get(workload)
        if w is None:
            w = self._workloads[workload] = len(self._workloads)
        c = self._container_sets.get(containers)
        if c is None:
            c = self._container_sets[containers] = len(self._container_sets)
        self.uids.append(uid)
        self._names.append(name)
        self._pod_workload.append(w)
        self._pod_containers.append(c)

    def pack(self) -> bytes:
        """The compressed value stored in `pod_sets.data`."""
        binary = _uuid_bytes(self.uids)
        packed = _PackedPods(
            format=FORMAT, workloads=list(self._workloads),
            container_sets=[list(c) for c in self._container_sets], names=self._names,
            pod_workload=self._pod_workload, pod_containers=self._pod_containers,
            uid_bytes=binary or b"", uid_text=[] if binary is not None else self.uids)
        return zlib.compress(_encoder.encode(packed), 6)


class PodSet(NamedTuple):
    """An unpacked pod set, column by column: pod i is uids[i], names[i], workload
    workloads[pod_workload[i]], containers container_sets[pod_containers[i]]."""

    workloads: list[tuple[str, str]]
    container_sets: list[tuple[str, ...]]
    uids: list[str]
    names: list[str]
    pod_workload: list[int]
    pod_containers: list[int]


def unpack(data: bytes) -> PodSet:
    """Decode a packed pod set (ValueError if it is not one this version can read)."""
    try:
        packed = _decoder.decode(zlib.decompress(data))
    except (zlib.error, msgspec.DecodeError) as exc:
        raise ValueError(f"unreadable pod set: {exc}") from None
    if packed.format != FORMAT:
        raise ValueError(f"unknown pod set format {packed.format}")
    return PodSet(
        workloads=[(intern(k), intern(n)) for k, n in packed.workloads],
        container_sets=[tuple(intern(c) for c in names) for names in packed.container_sets],
        uids=packed.uid_text or _uuid_text(packed.uid_bytes), names=packed.names,
        pod_workload=packed.pod_workload, pod_containers=packed.pod_containers)


def workloads_of(data: bytes) -> list[tuple[str, str]]:
    """The (kind, name) of every workload with pods in a packed set."""
    return [(k, n) for k, n in _decoder.decode(zlib.decompress(data)).workloads]
