"""The `patrol --json` shape (docs/design.md, "Rendering"): keys may be added, never renamed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.diagnosis.engine import Diagnosis
from bot.patrol.digest import Digest
from bot.patrol.timestamps import json_time


def digest_to_json(
    digest: Digest, diagnoses: dict[tuple[str, str, str], Diagnosis] | None = None,
    unreadable: Sequence[Mapping[str, object]] = (),
) -> dict[str, Any]:
    """The digest as plain JSON-ready data. `unreadable`: what the patrol could not read
    (`{"what", "why", "detail", "count"}`), an added key."""
    diagnoses = diagnoses or {}
    workloads = []
    for w in digest.workloads:
        diag = diagnoses.get((w.namespace, w.kind, w.name))
        last = w.last_termination
        workloads.append({
            "namespace": w.namespace, "kind": w.kind, "name": w.name,
            "restarts": w.restarts, "total": w.total,
            "last_exit_code": last.exit_code if last else None,
            "last_reason": last.reason if last else None,
            "category": diag.category if diag else w.category,
            "meaning": w.meaning,
            "summary": diag.summary if diag else None,
            "fingerprint": diag.fingerprint if diag else None,
            "flags": list(w.flags),
            "unknown_pods": w.unknown_pods,
            "crashes": [{"label": t.label, "fingerprint": t.fingerprint, "count": t.count,
                         "new": t.new, "summary": t.summary,
                         "first_seen": json_time(t.first_seen),
                         "changed_at": json_time(t.changed_at), "image": t.image}
                        for t in w.crashes],
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
        })
    return {
        "cluster": digest.cluster,
        "window": {"from": json_time(digest.window_from), "to": json_time(digest.window_to)},
        "first_run": digest.first_run,
        "restarts_in_window": digest.restarts_in_window,
        "pods_scanned": digest.pods_scanned,
        "workloads_scanned": digest.workloads_scanned,
        "workloads": workloads,
        "recorded": digest.recorded,
        "dropped_captures": digest.dropped_captures,
        "vanished_restarts": digest.vanished_restarts,
        "vanished_pods": [{"namespace": v.namespace, "name": v.pod_name, "uid": v.pod_uid,
                           "workload": {"kind": v.workload.kind, "name": v.workload.name},
                           "restarts_at_baseline": v.restarts_at_baseline}
                          for v in digest.vanished],
        "unreadable": [dict(u) for u in unreadable],
    }
