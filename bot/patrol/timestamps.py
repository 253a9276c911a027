"""Timestamps in machine-readable form: Kubernetes API times (RFC 3339) → aware UTC
datetimes (one parser for the cluster layer and the simulator), and datetimes → the
RFC 3339 strings of our JSON outputs (one formatter for `patrol --json` and `why --json`).
Human-readable times are the templates' `stamp` filter."""

from __future__ import annotations

from datetime import datetime


def parse_api_time(text: str | None) -> datetime | None:
    """RFC 3339 as the API server writes it → aware datetime. Absent, unparseable and the
    zero times some runtimes write (0001-01-01, the Unix epoch) are None: "not known"."""
    if not text or text.startswith("0001-") or text.startswith("1970-01-01T00:00:00"):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def json_time(moment: datetime | None) -> str | None:
    """RFC 3339 with a `Z` for UTC (None stays None), as the JSON contracts print times."""
    return moment.isoformat().replace("+00:00", "Z") if moment else None
