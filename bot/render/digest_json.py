"""The `patrol --json` shape (docs/design.md, "Rendering"): keys may be added, never
renamed. A workload's `category`, `summary`, `fingerprint`, `last_exit_code` and
`last_reason` are its headline's: its latest recorded crash when the record has one
(`"headline": "record"`), else its last termination diagnosed live."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from bot.diagnosis.engine import Diagnosis
from bot.patrol.digest import Digest, WorkloadSummary
from bot.patrol.story import ClusterDown, CrashStory
from bot.patrol.timestamps import json_time


def story_json(story: CrashStory) -> dict[str, Any]:
    """One story (a workload's crash in the window): `patrol --json`'s `crashes` entries
    (their first keys, as before stories) and `why --json`'s `stories`."""
    latest = story.latest
    return {
        "label": story.label, "fingerprint": story.fingerprint, "count": story.restarts,
        "new": story.new, "summary": story.summary, "first_seen": json_time(story.first_at),
        "changed_at": json_time(story.changed_at), "image": latest.image,
        "container": story.container, "category": latest.category,
        "exit_code": latest.exit_code, "reason": latest.reason,
        "last_seen": json_time(story.last_at), "crashes": story.crashes, "pods": story.pods,
        "known_at_install": story.known_at_install,
        "seen_since": json_time(story.seen_since), "latest_crash_id": latest.id,
    }


def unreachable_json(down: ClusterDown | None) -> dict[str, Any] | None:
    """A cluster that did not answer (the answer came from the record), or None."""
    if down is None:
        return None
    return {"cluster": down.cluster, "reason": down.reason,
            "last_seen": json_time(down.last_seen)}


def workload_json(w: WorkloadSummary, diag: Diagnosis | None) -> dict[str, Any]:
    """One row of `workloads`."""
    last = w.last_termination
    story = w.headline  # the latest recorded crash, when the record has one
    exit_code, reason = ((story.latest.exit_code, story.latest.reason) if story else
                         (last.exit_code, last.reason) if last else (None, None))
    return {
        "namespace": w.namespace, "kind": w.kind, "name": w.name,
        "restarts": w.restarts, "total": w.total,
        "last_exit_code": exit_code,
        "last_reason": reason,
        "category": story.latest.category if story else (
            diag.category if diag else w.category),
        "meaning": w.meaning,
        "summary": story.summary if story else (diag.summary if diag else None),
        "fingerprint": story.fingerprint if story else (
            diag.fingerprint if diag else None),
        "headline": "record" if story else ("live" if diag else None),
        "flags": list(w.flags),
        "unknown_pods": w.unknown_pods,
        "crashes": [story_json(s) for s in w.stories],
        "vanished_restarts": w.vanished_restarts,
        "pods": [{
            "name": p.name, "uid": p.uid,
            "containers": [{
                "name": c.name, "kind": c.kind.value, "restarts": c.restarts,
                "total": c.total, "basis": c.basis.value,
                "last_exit_code": c.last_termination.exit_code if c.last_termination
                else None,
                "last_reason": c.last_termination.reason if c.last_termination else None,
                "category": c.category,
                "finished_at": json_time(c.last_termination.finished_at
                                         if c.last_termination else None),
                "waiting_reason": c.waiting_reason,
            } for c in p.containers],
        } for p in w.pods],
    }


def digest_to_json(
    digest: Digest, diagnoses: dict[tuple[str, str, str], Diagnosis] | None = None,
    unreadable: Sequence[Mapping[str, object]] = (), *, lazy: bool = False,
) -> dict[str, Any]:
    """The digest as plain JSON-ready data. `unreadable`: what the patrol could not read
    (`{"what", "why", "detail", "count"}`), an added key. `lazy`: `workloads` is an
    iterator of rows built as they are written (a 100k-pod digest's rows held at once
    cost tens of MB; the CLI streams them)."""
    found = diagnoses or {}
    rows = (workload_json(w, found.get((w.namespace, w.kind, w.name)))
            for w in digest.workloads)
    workloads: Iterator[dict[str, Any]] | list[dict[str, Any]] = rows if lazy else list(rows)
    return {
        "cluster": digest.cluster,
        "window": {"from": json_time(digest.window_from), "to": json_time(digest.window_to)},
        "first_run": digest.first_run,
        "restarts_in_window": digest.restarts_in_window,
        "pods_scanned": digest.pods_scanned,
        "workloads_scanned": digest.workloads_scanned,
        "workloads": workloads,
        "recorded": digest.recorded,
        "source": digest.source,
        "unreachable": unreachable_json(digest.unreachable),
        "dropped_captures": digest.dropped_captures,
        "vanished_restarts": digest.vanished_restarts,
        "vanished_pods": [{"namespace": v.namespace, "name": v.pod_name, "uid": v.pod_uid,
                           "workload": {"kind": v.workload.kind, "name": v.workload.name},
                           "restarts_at_baseline": v.restarts_at_baseline}
                          for v in digest.vanished],
        "unreadable": [dict(u) for u in unreadable],
    }
