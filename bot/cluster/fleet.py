"""The clusters one bot serves (KUBE_CONTEXTS), and where a user's `[cluster/]namespace`
lives among them.

One Slack app can route slash commands to only one bot, so one bot serves every cluster:
`/restarts prod/payments` names the cluster; plain `payments` is accepted when exactly one
cluster has that namespace. A cluster that does not answer never hides the others, nor
holds the answer longer than QUERY_DEADLINE (namespace lists are bounded by it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from difflib import get_close_matches

from bot.cluster.client import ClusterClient, connect
from bot.errors import ClusterError, ConfigError, NotFoundError, UnknownClusterError, UsageError
from bot.runtime import Runtime
from bot.settings import Settings, namespaces_for


@dataclass(frozen=True, slots=True)
class Scope:
    """A namespace in one cluster, as a user named it (`cluster/namespace` or `namespace`)."""

    cluster: ClusterClient
    namespace: str

    @property
    def label(self) -> str:
        return f"{self.cluster.name}/{self.namespace}"


def split_scope(text: str) -> tuple[str | None, str]:
    """`prod/payments` → ("prod", "payments"); `payments` → (None, "payments").
    Namespaces cannot contain '/', so the split is unambiguous."""
    cluster, sep, namespace = text.partition("/")
    if not sep:
        return None, text
    if not cluster or not namespace or "/" in namespace:
        raise UsageError(f'"{text}" is not NAMESPACE or CLUSTER/NAMESPACE')
    return cluster, namespace


class Fleet:
    """Cluster clients by name, in KUBE_CONTEXTS order (the first is the primary one)."""

    def __init__(self, clients: Sequence[ClusterClient]) -> None:
        if not clients:
            raise ConfigError("no cluster to patrol")
        self._clients = {c.name: c for c in clients}
        if len(self._clients) != len(clients):
            names = [c.name for c in clients]
            twice = next(n for n in names if names.count(n) > 1)
            raise ConfigError(f"two contexts name the same cluster {twice!r}: give each "
                              "cluster its own context name in KUBE_CONTEXTS")

    def __iter__(self) -> Iterator[ClusterClient]:
        return iter(self._clients.values())

    def __len__(self) -> int:
        return len(self._clients)

    @property
    def primary(self) -> ClusterClient:
        return next(iter(self._clients.values()))

    @property
    def several(self) -> bool:
        return len(self._clients) > 1

    def names(self) -> list[str]:
        return list(self._clients)

    def get(self, name: str) -> ClusterClient:
        """The cluster called `name`; UnknownClusterError (a usage error, with the closest
        names) otherwise."""
        try:
            return self._clients[name]
        except KeyError:
            raise UnknownClusterError(
                f'no cluster "{name}" (this bot serves: {", ".join(self._clients)})',
                suggestions=tuple(get_close_matches(name, list(self._clients), n=3)),
            ) from None

    def locate(self, text: str) -> Scope:
        """Where `[cluster/]namespace` lives. A plain namespace must exist in exactly one
        cluster when several are served (else: say which to pick, or which could not be
        asked). Each cluster's namespaces are read within QUERY_DEADLINE."""
        cluster_name, namespace = split_scope(text)
        if cluster_name is not None:
            return Scope(self.get(cluster_name), namespace)
        if not self.several:
            return Scope(self.primary, namespace)
        found: list[ClusterClient] = []
        unreadable: list[str] = []
        nearby: list[str] = []
        for cluster in self:
            try:
                names = cluster.namespace_names()
            except ClusterError as exc:
                unreadable.append(f"{cluster.name} ({exc})")
                continue
            if namespace in names:
                found.append(cluster)
            else:
                nearby.extend(f"{cluster.name}/{n}" for n in
                              get_close_matches(namespace, names, n=2, cutoff=0.6))
        if len(found) == 1:
            return Scope(found[0], namespace)
        if found:
            choices = ", ".join(f"`{c.name}/{namespace}`" for c in found)
            raise UsageError(f'namespace "{namespace}" exists in several clusters: say '
                             f"which, e.g. {choices}")
        where = f"; could not ask {', '.join(unreadable)}" if unreadable else ""
        raise NotFoundError(f'namespace "{namespace}" not found in any cluster{where}',
                            suggestions=tuple(nearby[:3]))

    def close(self) -> None:
        for cluster in self:
            cluster.close()


def connect_fleet(settings: Settings, *, runtime: Runtime | None = None) -> Fleet:
    """One client per KUBE_CONTEXTS entry, or the single configured cluster. Connecting
    reads only the kubeconfig: a cluster that is down fails later, on its own requests.
    With a `runtime`, list pages are prefetched in its threads."""
    if not settings.cluster.contexts:
        fleet = Fleet([connect(settings, runtime=runtime)])
        namespaces_for(settings, fleet.primary.name)  # PATROL_NAMESPACES names this cluster
        return fleet
    clients: list[ClusterClient] = []
    try:
        for context in settings.cluster.contexts:
            clients.append(connect(settings, context, runtime=runtime))
    except ConfigError:
        for client in clients:
            client.close()
        raise
    return Fleet(clients)
