"""The one shape of a Kubernetes event as diagnosis, reports and recorded crashes see it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EventNote:
    """A Kubernetes event about the pod (they expire after about an hour)."""

    type: str
    reason: str
    message: str
    count: int = 1
