"""Which channel may see which namespaces (CHANNEL_NAMESPACES). Checked on every command,
mention and button click: button values come from the client and can be forged."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Access:
    """`rules` maps channel id → namespace entries ("*" = all; `cluster/ns` and `cluster/*`
    when several clusters are served); None means everything is allowed."""

    rules: Mapping[str, tuple[str, ...]] | None

    @property
    def open(self) -> bool:
        return self.rules is None

    def allows(self, channel: str, namespace: str, cluster: str | None = None) -> bool:
        """Entries: `*`, `namespace` (in any cluster), `cluster/namespace`, `cluster/*`."""
        if self.rules is None:
            return True
        allowed = self.rules.get(channel, ())
        if "*" in allowed or namespace in allowed:
            return True
        return cluster is not None and (f"{cluster}/{namespace}" in allowed
                                        or f"{cluster}/*" in allowed)

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

