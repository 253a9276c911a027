"""The simulated cluster's object store: resources, resourceVersions, watch history.

Objects are kept as the JSON dicts the API returns. Each list item is serialised once
(orjson) and cached, so a 100k-pod list costs the server a byte join, and benchmarks
measure the client, not the simulator. Thread-safe: one lock, one condition for watches.
"""

from __future__ import annotations

import bisect
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped


@dataclass(frozen=True, slots=True)
class ResourceType:
    """A served resource: its path pieces and the kind/list kind it returns."""

    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ("get", "list", "watch")

    @property
    def api_version(self) -> str:
        return self.version if not self.group else f"{self.group}/{self.version}"


RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "namespaces", "Namespace", namespaced=False, short_names=("ns",)),
    ResourceType("", "v1", "nodes", "Node", namespaced=False, short_names=("no",)),
    ResourceType("", "v1", "pods", "Pod", short_names=("po",)),
    ResourceType("", "v1", "events", "Event", short_names=("ev",)),
    ResourceType("apps", "v1", "deployments", "Deployment", short_names=("deploy",)),
    ResourceType("apps", "v1", "replicasets", "ReplicaSet", short_names=("rs",)),
    ResourceType("apps", "v1", "statefulsets", "StatefulSet", short_names=("sts",)),
    ResourceType("apps", "v1", "daemonsets", "DaemonSet", short_names=("ds",)),
    ResourceType("batch", "v1", "jobs", "Job"),
    ResourceType("batch", "v1", "cronjobs", "CronJob", short_names=("cj",)),
    ResourceType(
        "coordination.k8s.io", "v1", "leases", "Lease",
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
    ),
)
RESOURCE_BY_PATH: dict[tuple[str, str, str], ResourceType] = {
    (r.group, r.version, r.plural): r for r in RESOURCES
}

WATCH_HISTORY = 10_000  # events kept for watch resumption; older resourceVersions get 410


class Gone(Exception):
    """A watch resumed (or fell behind) past the events still kept."""

    def __init__(self, rv: int, floor: int) -> None:
        super().__init__(f"too old resource version: {rv} ({floor})")


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with second precision, as the API server writes timestamps."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class WatchEvent:
    """One change, as a watch stream reports it."""

    rv: int
    type: str
    resource: str
    namespace: str
    data: bytes  # serialised object, without kind/apiVersion


@dataclass(slots=True)
class _Table:
    """Objects of one resource, with a sorted key index and a serialisation cache."""

    objects: dict[Key, Obj] = field(default_factory=dict)
    cache: dict[Key, bytes] = field(default_factory=dict)
    keys: list[Key] = field(default_factory=list)
    sorted_ok: bool = True


class Conflict(Exception):
    """An update carried a stale resourceVersion, or a create hit an existing name."""


class World:
    """All objects of the simulated cluster plus its clock."""

    def __init__(self, now: datetime | None = None, cluster_name: str = "sim") -> None:
        self.cluster_name = cluster_name
        self.now = (now or datetime.now(UTC)).replace(microsecond=0)
        self._tables: dict[str, _Table] = {r.plural: _Table() for r in RESOURCES}
        self._rv = 1000
        self.compacted_rv = 0  # continue tokens older than this get 410 Expired
        self._history: deque[WatchEvent] = deque(maxlen=WATCH_HISTORY)
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.logs: dict[tuple[str, str, str, bool], list[tuple[datetime, str]]] = {}
        self.on_advance: list[Callable[[datetime, datetime], None]] = []
        self.watch_epoch = 0  # bumped by drop_watches(): open watch streams end

    # ---- versions -------------------------------------------------------------------
    @property
    def resource_version(self) -> int:
        return self._rv

    def oldest_watchable_rv(self) -> int:
        """Watches may resume from this resourceVersion on; older ones get 410 Gone."""
        with self.lock:
            return self._history[0].rv - 1 if len(self._history) == WATCH_HISTORY else 0

    def compact(self) -> None:
        """Expire every continue token issued so far (as etcd compaction does)."""
        with self.lock:
            self._rv += 1
            self.compacted_rv = self._rv

    def drop_watches(self) -> None:
        """End every open watch stream (as an API server restart or a dropped connection
        does); clients reconnect from their last resourceVersion."""
        with self.lock:
            self.watch_epoch += 1
            self.changed.notify_all()

    # ---- writes ---------------------------------------------------------------------
    def put(self, resource: str, obj: Obj, *, expect_rv: str | None = None) -> Obj:
        """Create or replace an object; bumps resourceVersion and records a watch event."""
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        with self.lock:
            table = self._tables[resource]
            existing = table.objects.get(key)
            if expect_rv is not None:
                if existing is None:
                    raise Conflict(f'{resource} "{key[1]}" not found')
                if existing["metadata"]["resourceVersion"] != expect_rv:
                    raise Conflict(
                        f'Operation cannot be fulfilled on {resource} "{key[1]}": the object '
                        "has been modified; please apply your changes to the latest version "
                        "and try again"
                    )
            self._rv += 1
            meta["resourceVersion"] = str(self._rv)
            if existing is None:
                meta.setdefault("creationTimestamp", format_time(self.now))
                if table.sorted_ok:
                    bisect.insort(table.keys, key)
            table.objects[key] = obj
            data = orjson.dumps(obj)
            table.cache[key] = data
            self._history.append(
                WatchEvent(self._rv, "MODIFIED" if existing else "ADDED", resource, key[0], data)
            )
            self.changed.notify_all()
            return obj

    def load(self, resource: str, objs: list[Obj]) -> None:
        """Bulk-insert objects without watch events (for generated clusters)."""
        with self.lock:
            table = self._tables[resource]
            for obj in objs:
                meta = obj["metadata"]
                self._rv += 1
                meta["resourceVersion"] = str(self._rv)
                meta.setdefault("creationTimestamp", format_time(self.now))
                key = (meta.get("namespace", ""), meta["name"])
                table.objects[key] = obj
                table.cache[key] = orjson.dumps(obj)
            table.sorted_ok = False

    def delete(self, resource: str, namespace: str, name: str) -> Obj | None:
        """Remove an object; records a DELETED watch event."""
        with self.lock:
            table = self._tables[resource]
            obj = table.objects.pop((namespace, name), None)
            if obj is None:
                return None
            table.cache.pop((namespace, name), None)
            if table.sorted_ok:
                i = bisect.bisect_left(table.keys, (namespace, name))
                if i < len(table.keys) and table.keys[i] == (namespace, name):
                    table.keys.pop(i)
            self._rv += 1
            obj["metadata"]["resourceVersion"] = str(self._rv)
            self._history.append(
                WatchEvent(self._rv, "DELETED", resource, namespace, orjson.dumps(obj))
            )
            self.changed.notify_all()
            return obj

    # ---- reads ----------------------------------------------------------------------
    def get(self, resource: str, namespace: str, name: str) -> Obj | None:
        with self.lock:
            return self._tables[resource].objects.get((namespace, name))

    def sorted_keys(self, resource: str) -> list[Key]:
        with self.lock:
            table = self._tables[resource]
            if not table.sorted_ok:
                table.keys = sorted(table.objects)
                table.sorted_ok = True
            return table.keys

    def items(
        self,
        resource: str,
        namespace: str | None = None,
        start: Key | None = None,
    ) -> Iterator[tuple[Key, Obj, bytes]]:
        """Objects in key order from `start` on, within `namespace` if given."""
        with self.lock:
            keys = self.sorted_keys(resource)
            table = self._tables[resource]
            lo = 0
            if namespace is not None:
                lo = bisect.bisect_left(keys, (namespace, ""))
            if start is not None:
                lo = max(lo, bisect.bisect_left(keys, start))
            snapshot = keys[lo:] if namespace is None else keys[lo:bisect.bisect_left(
                keys, (namespace + "\x00", ""))]
        for key in snapshot:
            obj = table.objects.get(key)
            data = table.cache.get(key)
            if obj is not None and data is not None:
                yield key, obj, data

    def count(self, resource: str, namespace: str | None = None) -> int:
        with self.lock:
            if namespace is None:
                return len(self._tables[resource].objects)
            keys = self.sorted_keys(resource)
            lo = bisect.bisect_left(keys, (namespace, ""))
            hi = bisect.bisect_left(keys, (namespace + "\x00", ""))
            return hi - lo

    def events_since(self, rv: int) -> list[WatchEvent]:
        """Every event after `rv`; `Gone` when some of them are no longer kept (a watcher
        that fell more than WATCH_HISTORY events behind must relist, as a real API
        server's watch cache ends such a watch with 410 — never a silent gap)."""
        with self.lock:
            if rv < self.oldest_watchable_rv():
                raise Gone(rv, self.oldest_watchable_rv())
            return [e for e in self._history if e.rv > rv]

    # ---- clock ----------------------------------------------------------------------
    def advance(self, delta: timedelta) -> None:
        """Move the simulated clock; scenario hooks make crashes happen in between."""
        with self.lock:
            before = self.now
            self.now = before + delta
            for hook in self.on_advance:
                hook(before, self.now)

    # ---- logs -----------------------------------------------------------------------
    def set_log(
        self, namespace: str, pod: str, container: str, lines: list[tuple[datetime, str]],
        *, previous: bool,
    ) -> None:
        with self.lock:
            self.logs[(namespace, pod, container, previous)] = lines

    def log_of(
        self, namespace: str, pod: str, container: str, *, previous: bool
    ) -> list[tuple[datetime, str]] | None:
        with self.lock:
            return self.logs.get((namespace, pod, container, previous))
