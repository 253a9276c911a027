"""Terminal output: the digest table (kubectl-like, aligned), diagnoses and `why` reports."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.diagnosis.engine import Diagnosis
from bot.patrol.digest import Digest
from bot.patrol.durations import format_duration, human_duration
from bot.render.environment import render

Diagnoses = dict[tuple[str, str, str], Diagnosis]


def _stamp(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "—"


def digest_text(digest: Digest, diagnoses: Diagnoses | None = None, *, top: int = 20,
                notes: Sequence[str] = (), templates_dir: str | None = None) -> str:
    """The digest as an aligned table, readable at any size (top N + "and M more")."""
    diagnoses = diagnoses or {}
    shown = digest.workloads if top <= 0 else digest.workloads[:top]
    rows = []
    for w in shown:
        last = w.last_termination
        diag = diagnoses.get((w.namespace, w.kind, w.name))
        rows.append({
            "namespace": w.namespace, "name": w.name, "kind": w.kind,
            "delta": "—" if w.restarts is None else f"+{w.restarts}",
            "total": str(w.total),
            "exit": "—" if last is None else f"{last.exit_code} {last.reason or ''}".strip(),
            "flags": ", ".join(w.flags) or "—",
            "age": human_duration((digest.window_to - w.oldest_pod).total_seconds())
            if w.oldest_pod else "—",
            "summary": diag.summary if diag else (w.meaning or ""),
            "unknown_pods": w.unknown_pods,
        })
    headers = {"namespace": "NAMESPACE", "name": "WORKLOAD", "kind": "KIND",
               "delta": "RESTARTS", "total": "TOTAL", "exit": "EXIT", "age": "AGE"}
    widths = {k: max([len(h), *(len(str(r[k])) for r in rows)]) for k, h in headers.items()}
    span = (format_duration(digest.window_to - digest.window_from)
            if digest.window_from else "")
    return render(
        "digest.txt.j2", templates_dir,
        cluster=digest.cluster, pods_scanned=digest.pods_scanned,
        workloads_scanned=digest.workloads_scanned, first_run=digest.first_run,
        window_from=_stamp(digest.window_from), window_to=_stamp(digest.window_to),
        span=span, restarts_in_window=digest.restarts_in_window,
        shown_total=len(digest.workloads), rows=rows, w=widths,
        more=len(digest.workloads) - len(shown), vanished=list(digest.vanished),
        notes=list(notes),
    )


def diagnosis_text(diagnosis: Diagnosis, templates_dir: str | None = None) -> str:
    """One diagnosis: summary, code, meaning, signature lines, hints."""
    return render("diagnosis.txt.j2", templates_dir, d=diagnosis)


def reports_text(reports: Sequence[object], tail_lines: int,
                 templates_dir: str | None = None) -> str:
    """`why` output: per container the diagnosis, events and the previous log tail."""
    return render("why.txt.j2", templates_dir, reports=list(reports), tail_lines=tail_lines,
                  diagnosis=lambda d: diagnosis_text(d, templates_dir).rstrip("\n"))
