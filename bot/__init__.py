"""restart-patrol: tells on-call SREs why Kubernetes pods keep restarting."""

from __future__ import annotations

__version__ = "0.1.0"
