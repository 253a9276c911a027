"""The digest as rows: one model that the terminal table (digest.txt.j2) and the Slack
digest (digest.blocks.j2) both render, so the two never disagree about a number.

Rows carry values, not wording: the templates say "—", "lifetime" or "no exit recorded".
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bot.diagnosis.engine import Diagnosis
from bot.patrol.digest import Digest
from bot.patrol.durations import human_duration
from bot.patrol.story import CrashStory

Diagnoses = Mapping[tuple[str, str, str], Diagnosis]


@dataclass(frozen=True, slots=True)
class DigestRow:
    """One workload of the digest, ready to render.

    `restarts` is the delta in the window (None on a first run: only `total` is known;
    `total` is None when the cluster was not read); `age` is kubectl's AGE of the oldest
    restarting pod. `stories` are its recorded crashes of the window, newest first, each
    rendered with its own tally and headline; without them (recorder off) `exit_code`,
    `reason` and `summary` are its last termination, diagnosed live. `spark`, `streak`
    and `button` are Slack's additions (history from the store, the Why? button's value);
    the streak ("same crash ×N" in a row of digests) is shown only without stories, whose
    new/since marks say it from the record."""

    namespace: str
    kind: str
    name: str
    restarts: int | None
    total: int | None
    exit_code: int | None
    reason: str | None
    summary: str
    flags: tuple[str, ...]
    age: str | None
    unknown_pods: int
    fingerprint: str | None
    spark: str = ""
    streak: int = 0
    button: str | None = None
    stories: tuple[CrashStory, ...] = ()
    vanished_restarts: int = 0
    controls: str | None = None  # a posted digest's row: its Silence/Acknowledge block id

    @property
    def several_containers(self) -> bool:
        """Its stories come from more than one container (then each names its own)."""
        return len({s.container for s in self.stories}) > 1


def row_block_id(namespace: str, kind: str, name: str) -> str:
    """The block id of a digest row's controls: a short digest of the workload (a block
    id holds 255 characters; a namespace and a name may need 317). A click is resolved
    against the rows the posted digest recorded, never trusted on its own."""
    key = f"{namespace}/{kind}/{name}".encode()
    return "row:" + hashlib.sha256(key).hexdigest()[:20]


def digest_rows(digest: Digest, diagnoses: Diagnoses | None = None,
                top: int = 0) -> list[DigestRow]:
    """The digest's workloads (the first `top`; 0 = all) as rows, in the digest's order."""
    diagnoses = diagnoses or {}
    shown = digest.workloads if top <= 0 else digest.workloads[:top]
    rows = []
    for w in shown:
        diag = diagnoses.get((w.namespace, w.kind, w.name))
        last = w.last_termination
        story = w.headline
        exit_code, reason = (story.latest.exit_code, story.latest.reason) if story else (
            (last.exit_code, last.reason) if last else (None, None))
        summary = story.summary if story else (diag.summary if diag else (w.meaning or ""))
        fingerprint = story.fingerprint if story else (diag.fingerprint if diag else None)
        rows.append(DigestRow(
            namespace=w.namespace, kind=w.kind, name=w.name, restarts=w.restarts,
            total=w.total, exit_code=exit_code, reason=reason, summary=summary,
            flags=w.flags, age=human_duration((digest.window_to - w.oldest_pod)
                                              .total_seconds()) if w.oldest_pod else None,
            unknown_pods=w.unknown_pods, fingerprint=fingerprint, stories=w.stories,
            vanished_restarts=w.vanished_restarts))
    return rows


@dataclass(frozen=True, slots=True)
class NamespaceTotal:
    """Restarts of one namespace (deltas, or lifetime totals on a first run)."""

    namespace: str
    restarts: int
    workloads: int
    worst: str  # the workload with the most


def namespace_totals(digest: Digest) -> list[NamespaceTotal]:
    """Per namespace, most restarts first (the `/restarts` summary)."""
    return totals_of((w.namespace, w.name, (w.total or 0) if w.restarts is None
                      else w.restarts) for w in digest.workloads)


def totals_of(workloads: Iterable[tuple[str, str, int]]) -> list[NamespaceTotal]:
    """(namespace, workload, restarts) → per namespace, most restarts first."""
    by_ns: dict[str, list[tuple[int, str]]] = {}
    for namespace, name, amount in workloads:
        by_ns.setdefault(namespace, []).append((amount, name))
    totals = [NamespaceTotal(ns, sum(a for a, _ in rows), len(rows), max(rows)[1])
              for ns, rows in by_ns.items()]
    return sorted(totals, key=lambda t: (-t.restarts, t.namespace))
