"""Team routing (DIGEST_CHANNELS): which channels hear about a namespace.

A team channel claims namespaces with the CHANNEL_NAMESPACES grammar: `namespace` (in any
cluster), `cluster/namespace`, `cluster/*`, or `*` (everything); a namespace part may be a
shell-style pattern (`prod/ledger-*`). Whatever no team claims goes to the catch-all
channel (PATROL_CHANNEL). Pure: no I/O, no settings; the caller builds `Routes`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase


@dataclass(frozen=True, slots=True)
class Routes:
    """`teams` maps a team channel id to its patterns, in configuration order;
    `catch_all` is the channel for whatever no team claims (None: nobody hears it)."""

    teams: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    catch_all: str | None = None

    @property
    def channels(self) -> tuple[str, ...]:
        """Every channel that gets a digest: the teams, then the catch-all (once)."""
        ordered = list(self.teams)
        if self.catch_all is not None and self.catch_all not in self.teams:
            ordered.append(self.catch_all)
        return tuple(ordered)


def pattern_matches(pattern: str, cluster: str, namespace: str) -> bool:
    """One entry: `*`, `ns`, `ns-*` (any cluster), `cluster/ns`, `cluster/*`."""
    if "/" in pattern:
        want_cluster, _, want_ns = pattern.partition("/")
        return want_cluster == cluster and fnmatchcase(namespace, want_ns)
    return fnmatchcase(namespace, pattern)


def team_claims(patterns: Iterable[str], cluster: str, namespace: str) -> bool:
    return any(pattern_matches(p, cluster, namespace) for p in patterns)


def teams_for(routes: Routes, cluster: str, namespace: str) -> tuple[str, ...]:
    """The team channels claiming (cluster, namespace), in configuration order."""
    return tuple(channel for channel, patterns in routes.teams.items()
                 if team_claims(patterns, cluster, namespace))


def channels_for(routes: Routes, cluster: str, namespace: str) -> tuple[str, ...]:
    """The channels that hear about (cluster, namespace): every team channel claiming it,
    else the catch-all alone (empty when there is none)."""
    teams = teams_for(routes, cluster, namespace)
    if teams:
        return teams
    return (routes.catch_all,) if routes.catch_all is not None else ()


def routed_to(routes: Routes, channel: str, cluster: str, namespace: str) -> bool:
    """Whether `channel`'s digest carries (cluster, namespace)."""
    return channel in channels_for(routes, cluster, namespace)


@dataclass(frozen=True, slots=True)
class ChannelScope:
    """What one channel's digest of one cluster carries: the namespaces routed to it
    (`routed_to`). A digest series of a team channel, or of the catch-all when teams are
    configured, filters its rows with this; without DIGEST_CHANNELS there is none."""

    routes: Routes
    channel: str
    cluster: str

    def carries(self, namespace: str) -> bool:
        return routed_to(self.routes, self.channel, self.cluster, namespace)

    def may_carry(self) -> bool:
        """Whether any namespace of this cluster could be routed to the channel: the
        catch-all always; a team only if one of its patterns can match this cluster."""
        if self.channel == self.routes.catch_all:
            return True
        return any("/" not in p or p.partition("/")[0] == self.cluster
                   for p in self.routes.teams.get(self.channel, ()))

    def describe(self) -> str:
        """The channel's share in words, for the digest's title: its patterns, or "what
        no team claims" for the catch-all."""
        patterns = self.routes.teams.get(self.channel)
        if patterns:
            return ", ".join(patterns)
        return "namespaces no team claims"
