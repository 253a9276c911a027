"""Which channel may see which namespaces (CHANNEL_NAMESPACES). Checked on every command,
mention and button click: button values come from the client and can be forged."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Access:
    """`rules` maps channel id → namespaces ("*" = all); None means everything is allowed."""

    rules: Mapping[str, tuple[str, ...]] | None

    @property
    def open(self) -> bool:
        return self.rules is None

    def allows(self, channel: str, namespace: str) -> bool:
        if self.rules is None:
            return True
        allowed = self.rules.get(channel, ())
        return "*" in allowed or namespace in allowed

    def allowed(self, channel: str) -> tuple[str, ...] | None:
        """The namespaces a channel may see; None = all."""
        if self.rules is None:
            return None
        allowed = self.rules.get(channel, ())
        return None if "*" in allowed else allowed

    def describe(self, channel: str) -> str:
        allowed = self.allowed(channel)
        if allowed is None:
            return "all namespaces"
        return ", ".join(f"`{ns}`" for ns in allowed) or "none (ask an admin to add this " \
            "channel to CHANNEL_NAMESPACES)"

