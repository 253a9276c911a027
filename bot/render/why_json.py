"""The `why --json` shape and a recorded crash's JSON (docs/design.md, "Rendering"): keys
may be added, never renamed.

`why --json` is a list, one object per container: the `diagnose --json` keys at the top
level (the headline's: the latest crash, from the record when it has it), then the
answer's own keys; `history` holds its recorded crashes, newest first.
"""

from __future__ import annotations

from typing import Any

from bot.patrol.history import CrashRecord, events_json
from bot.patrol.story import Investigation
from bot.patrol.timestamps import json_time
from bot.render.digest_json import story_json, unreachable_json


def crash_json(crash: CrashRecord) -> dict[str, Any]:
    """One recorded crash (the contract's keys first, then additions)."""
    return {
        "finished_at": json_time(crash.finished_at), "exit_code": crash.exit_code,
        "reason": crash.reason, "category": crash.category,
        "fingerprint": crash.fingerprint, "signature": list(crash.signature),
        "log_captured": crash.log_captured,
        "events": events_json(crash.events),
        "id": crash.id, "pod": crash.pod_name, "pod_uid": crash.pod_uid,
        "container": crash.container, "restart_count": crash.restart_count,
        "restarts": crash.restarts, "signal": crash.signal, "summary": crash.summary,
        "capture": crash.capture, "new": crash.is_new, "image": crash.image,
        "node": crash.node, "started_at": json_time(crash.started_at),
    }


def why_json(investigation: Investigation) -> list[dict[str, Any]]:
    """`why --json`: one object per container. `unreachable` is repeated in each: the
    cluster did not answer and all of it comes from the record."""
    down = unreachable_json(investigation.unreachable)
    return [{
        **(a.diagnosis.to_json() if a.diagnosis else {}),
        "namespace": a.namespace, "pod": a.pod, "pod_uid": a.pod_uid,
        "workload": {"kind": a.workload_kind, "name": a.workload_name},
        "container": a.container, "container_kind": a.container_kind.value,
        "restarts": a.restarts, "waiting_reason": a.waiting_reason,
        "diagnosis": a.diagnosis.to_json() if a.diagnosis else None,
        "log_tail": a.log_tail, "redactions": a.redactions,
        "events": events_json(a.events),
        "note": a.note,
        "history": [crash_json(c) for c in a.history],
        "recorded_only": a.recorded_only,
        "unreadable": [u.to_json() for u in a.unreadable],
        "cluster": a.cluster,
        "headline": {"source": "record" if a.headline is not None else "live",
                     "crash_id": a.headline.id if a.headline is not None else None,
                     "finished_at": json_time(a.headline.finished_at
                                              if a.headline is not None else
                                              a.live.last_termination.finished_at
                                              if a.live and a.live.last_termination
                                              else None)},
        "recorded_events": events_json(a.recorded_events),
        "stories": [story_json(s) for s in a.stories],
        "unreachable": down,
    } for a in investigation.answers]
