"""Terminal output: the digest table (kubectl-like, aligned), diagnoses and `why` reports."""

from __future__ import annotations

from collections.abc import Sequence

from bot.diagnosis.engine import Diagnosis
from bot.patrol.digest import Digest
from bot.patrol.durations import format_window
from bot.patrol.model import Unreadable
from bot.patrol.story import Investigation
from bot.render.environment import render
from bot.render.rows import Diagnoses, digest_rows


def digest_text(digest: Digest, diagnoses: Diagnoses | None = None, *, top: int = 20,
                notes: Sequence[str] = (), unreadable: Sequence[Unreadable] = (),
                templates_dir: str | None = None) -> str:
    """The digest as an aligned table, readable at any size (top N + "and M more"), each
    row followed by its stories. `unreadable`: what the patrol could not read, said up
    front."""
    rows = digest_rows(digest, diagnoses, top)
    span = (format_window(digest.window_to - digest.window_from)
            if digest.window_from else "")
    return render(
        "digest.txt.j2", templates_dir,
        cluster=digest.cluster, pods_scanned=digest.pods_scanned,
        workloads_scanned=digest.workloads_scanned, first_run=digest.first_run,
        window_from=digest.window_from, window_to=digest.window_to,
        span=span, restarts_in_window=digest.restarts_in_window,
        shown_total=len(digest.workloads), rows=rows,
        more=len(digest.workloads) - len(rows), vanished=list(digest.vanished),
        notes=list(notes), unreadable=list(unreadable), recorded=digest.recorded,
        dropped=digest.dropped_captures, source=digest.source,
        unreachable=digest.unreachable, vanished_restarts=digest.vanished_restarts,
    )


def diagnosis_text(diagnosis: Diagnosis, templates_dir: str | None = None) -> str:
    """One diagnosis: summary, code, meaning, signature lines, hints."""
    return render("diagnosis.txt.j2", templates_dir, d=diagnosis)


def reports_text(investigation: Investigation, tail_lines: int,
                 templates_dir: str | None = None) -> str:
    """`why` output: per container its latest crash (diagnosis, events, log) and its
    crashes of the window, one line per story."""
    return render("why.txt.j2", templates_dir, reports=list(investigation.answers),
                  tail_lines=tail_lines, unreachable=investigation.unreachable,
                  window_from=investigation.window_from, window_to=investigation.window_to,
                  span=format_window(investigation.window_to - investigation.window_from),
                  diagnosis=lambda d: diagnosis_text(d, templates_dir).rstrip("\n"))
