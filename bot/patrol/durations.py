"""Human durations (`24h`, `7d`, `1h30m`) used by `--since`, scenarios and settings."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+)([wdhms])")
_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str | int | float) -> timedelta:
    """'24h', '7d', '1h30m', '45s' (or a number of seconds) → timedelta; ValueError if not."""
    if isinstance(text, int | float):
        return timedelta(seconds=float(text))
    compact = text.strip().replace(" ", "")
    parts = _PART.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"bad duration {text!r}: use e.g. 24h, 7d, 1h30m")
    return timedelta(seconds=sum(int(n) * _SECONDS[u] for n, u in parts))


def format_duration(delta: timedelta) -> str:
    """timedelta → '1d 2h', '3h 5m', '45s' (two most significant units)."""
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)}s"
    units = [("d", 86400), ("h", 3600), ("m", 60)]
    parts: list[str] = []
    for name, size in units:
        if seconds >= size:
            parts.append(f"{seconds // size}{name}")
            seconds %= size
        if len(parts) == 2:
            break
    return " ".join(parts)


def format_window(delta: timedelta) -> str:
    """A window's length as users give it to `--since`: '24h', '6h', '3d', '90m'."""
    seconds = int(delta.total_seconds())
    if seconds % 86400 == 0 and seconds >= 2 * 86400:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return format_duration(delta)


def human_duration(seconds: float) -> str:
    """kubectl's HumanDuration (AGE column): 45s, 5m, 3h, 46d, 2y…"""
    s = int(max(seconds, 0))
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rem = s % 60
        return f"{minutes}m{rem}s" if rem else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rem = minutes % 60
        return f"{hours}h{rem}m" if rem else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if days < 8:
        rem = hours % 24
        return f"{days}d{rem}h" if rem else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    return f"{days // 365}y"
