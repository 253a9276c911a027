"""ClusterClient: the one seam to the Kubernetes API (it implements `bot.cluster.api.KubeApi`).

Built from kubeconfig (`KUBECONFIG`, `KUBE_CONTEXT`) or the in-cluster service account.
Every request — list pages, gets, log text, the pod watch, lease reads and writes — goes
through one `Transport` (`bot.cluster.transport`): connect and read timeouts, a deadline
when the client is `bounded()`, retries with client-go's backoff, errors translated into
one line naming the call. Answers are raw JSON decoded with msgspec (only the needed
fields). Lists are paginated (`limit=500` + continue); a continue token that expires (410)
mid-list raises `ListExpired`, and `relisted()` is the one place that starts such a read
over.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from difflib import get_close_matches
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import msgspec
import orjson
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from bot.cluster import wire
from bot.cluster.errors import translated
from bot.cluster.transport import (
    Call,
    Deadline,
    HttpWire,
    Limits,
    Response,
    Stream,
    Transport,
)
from bot.errors import ClusterError, ClusterUnavailable, ConfigError, NotFoundError
from bot.runtime import Runtime, RuntimeStopped
from bot.settings import Settings

PAGE_SIZE = 500
QUERY_DEADLINE = 60.0  # seconds; the default of QUERY_DEADLINE
T = TypeVar("T", bound=msgspec.Struct)
R = TypeVar("R")
Progress = Callable[[int], None]

_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}


def _decoder(kind: type[T]) -> msgspec.json.Decoder[T]:
    if kind not in _decoders:
        _decoders[kind] = msgspec.json.Decoder(kind)
    return _decoders[kind]


def _kubeconfig_problem(exc: BaseException) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"not valid YAML (line {mark.line + 1}, column {mark.column + 1}: {exc.problem})"
    if isinstance(exc, yaml.YAMLError):
        return "not valid YAML"
    if isinstance(exc, UnicodeDecodeError):
        return "not a text file (UTF-8)"
    return "not a kubeconfig (expected a mapping with clusters, contexts and users)"


def connect(settings: Settings, context: str | None = None, *,
            runtime: Runtime | None = None) -> ClusterClient:
    """A client from the settings' kubeconfig/context, or in-cluster config.
    `context` (one of KUBE_CONTEXTS) overrides KUBE_CONTEXT and names the cluster; with a
    `runtime`, list pages are prefetched in its threads.

    Any unreadable kubeconfig (missing, broken YAML, binary, a YAML scalar, wrong shapes)
    is a ConfigError of one line; the loader's own exceptions never escape."""
    configuration = k8s.Configuration()
    where = settings.cluster.kubeconfig or "~/.kube/config"
    paths = [p for p in (settings.cluster.kubeconfig or "").split(os.pathsep) if p]
    if paths and not any(os.path.exists(p) for p in paths):
        raise ConfigError(f"cannot read kubeconfig {where}: no such file")
    try:
        if settings.cluster.kubeconfig is None and settings.cluster.in_cluster:
            k8s_config.load_incluster_config(client_configuration=configuration)
            name = settings.cluster.name or "in-cluster"
        else:
            k8s_config.load_kube_config(
                config_file=settings.cluster.kubeconfig,
                context=context or settings.cluster.context,
                client_configuration=configuration, persist_config=False)
            contexts, current = k8s_config.list_kube_config_contexts(settings.cluster.kubeconfig)
            chosen = settings.cluster.context or (current or {}).get("name", "")
            name = context or settings.cluster.name or next(
                (c["context"].get("cluster", c["name"]) for c in contexts
                 if c["name"] == chosen), chosen or "cluster")
    except k8s_config.ConfigException as exc:
        raise ConfigError(f"cannot load kubeconfig {where}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read kubeconfig {where}: {exc.strerror}") from None
    except (yaml.YAMLError, UnicodeDecodeError, TypeError, AttributeError, KeyError,
            ValueError) as exc:
        raise ConfigError(f"cannot load kubeconfig {where}: {_kubeconfig_problem(exc)}"
                          ) from None
    configuration.retries = False  # urllib3's pool is built now: every retry is Transport's
    transport = Transport(HttpWire(k8s.ApiClient(configuration)), limits_of(settings),
                          name=name)
    return ClusterClient(transport, name, runtime=runtime,
                         query_deadline=settings.limits.query_deadline)


def limits_of(settings: Settings) -> Limits:
    """The request bounds from KUBE_CONNECT_TIMEOUT, KUBE_READ_TIMEOUT, KUBE_RETRIES and
    KUBE_RETRY_BACKOFF."""
    return Limits(connect_timeout=settings.limits.connect_timeout,
                  read_timeout=settings.limits.read_timeout,
                  retries=settings.limits.retries, backoff=settings.limits.retry_backoff)


class ListExpired(ClusterUnavailable):
    """A continue token expired (410 Gone) mid-list: what was read is inconsistent and the
    read must start over; `ClusterClient.relisted` does that, once."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what}: the list expired while paging (410 Gone); try again",
                         status=410)
        self.what = what


class Listing:
    """The pods of one list pass, streamed page by page. `server_time` is the API
    server's clock when the latest page was sent (set as pages arrive)."""

    def __init__(self, pages: Iterator[tuple[wire.PodList, datetime | None]]) -> None:
        self._pages = pages
        self.server_time: datetime | None = None

    def __iter__(self) -> Iterator[wire.Pod]:
        for page, server_time in self._pages:
            self.server_time = server_time or self.server_time
            yield from page.items


class ClusterClient:
    """Raw, fast reads of pods, owners, logs and events, the pod watch and the lease,
    with errors translated — every request through one `Transport`.

    Instances hold no mutable state once built: `bounded()` returns a view with a deadline
    that shares the transport (and its connection pool). With a `runtime`, list pages are
    prefetched in a runtime thread; without one they are read in the caller's thread.
    """

    def __init__(self, transport: Transport, name: str, page_size: int = PAGE_SIZE,
                 deadline: Deadline | None = None, *, runtime: Runtime | None = None,
                 query_deadline: float = QUERY_DEADLINE) -> None:
        self.transport = transport
        self.name = name
        self.page_size = page_size
        self.deadline = deadline
        self.runtime = runtime
        self.query_deadline = query_deadline
        self.server = transport.server

    @property
    def limits(self) -> Limits:
        return self.transport.limits

    @property
    def api(self) -> k8s.ApiClient:
        """The official client's ApiClient under the transport (HTTP only)."""
        wire = self.transport.wire
        if not isinstance(wire, HttpWire):
            raise TypeError(f"cluster {self.name} is not served over HTTP")
        return wire.api

    def close(self) -> None:
        self.transport.close()

    def bounded(self, seconds: float, setting: str) -> ClusterClient:
        """A view of this client whose requests all end within `seconds` from now
        (`setting` names the knob in the error, e.g. PATROL_DEADLINE)."""
        return ClusterClient(self.transport, self.name, self.page_size,
                             Deadline.start(seconds, setting), runtime=self.runtime,
                             query_deadline=self.query_deadline)

    def _query(self) -> ClusterClient:
        """This client if it has a deadline, else a view bounded by QUERY_DEADLINE (for
        the short reads behind a user's question: namespaces, one object)."""
        return self if self.deadline is not None else self.bounded(self.query_deadline,
                                                                   "QUERY_DEADLINE")

    # ---- plumbing -------------------------------------------------------------------
    def _get(self, what: str, path: str, query: dict[str, Any] | None = None,
             accept: str = "application/json") -> Response:
        """GET `path` through the transport, within this client's deadline."""
        return self.transport.send(Call(what, path, query=query, accept=accept),
                                   self.deadline)

    def _decoded(self, what: str, path: str, kind: type[T], query: dict[str, Any],
                 page_size: int | None = None) -> Iterator[tuple[T, datetime | None]]:
        """The pages of one list pass, each decoded once (its continue token read from the
        decoded page, not from a second parse) and its body dropped before it is handed
        on; ListExpired on a 410 after the first."""
        decoder = _decoder(kind)
        token: str | None = None
        while True:
            try:
                response = self._get(what, path, {**query,
                                                  "limit": page_size or self.page_size,
                                                  "continue": token})
            except ClusterError as exc:
                if exc.status == 410 and token is not None:
                    raise ListExpired(what) from None
                raise
            with translated(what, self.server, path):
                page = decoder.decode(response.data)
            server_time = response.server_time
            del response  # a page's body is MBs: not kept while the page is used
            yield page, server_time
            meta: wire.ListMeta = page.metadata  # type: ignore[attr-defined]
            token = meta.continue_
            if not token:
                return

    def _prefetched(self, responses: Iterator[R]) -> Iterator[R]:
        """`responses` fetched one page ahead in a runtime thread, so the caller's CPU work
        on page N overlaps the network wait for page N+1 (socket reads release the GIL).
        Without a runtime (or once it stops), pages are read in the caller's thread. One
        page waits at most: with the one being read and the one being used, three pages
        are in memory at once."""
        if self.runtime is None:
            yield from responses
            return
        pages: queue.Queue[R | BaseException | None] = queue.Queue(maxsize=1)
        stop = threading.Event()
        runtime = self.runtime

        def offer(item: R | BaseException | None) -> bool:
            while not stop.is_set():  # the reader ended (a stopping runtime does not wait)
                try:
                    pages.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def fetch() -> None:
            try:
                for response in responses:
                    if not offer(response):
                        return
                offer(None)
            except BaseException as exc:
                offer(exc)

        try:
            fetcher = runtime.thread("list-prefetch", fetch)
        except RuntimeStopped:
            yield from responses
            return
        try:
            while True:
                item = pages.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            fetcher.join(timeout=5)

    def _pages(self, what: str, path: str, kind: type[T], query: dict[str, Any],
               progress: Progress | None = None, page_size: int | None = None
               ) -> Iterator[tuple[T, datetime | None]]:
        """Decoded pages of one list pass; raises ListExpired on a 410 after the first."""
        seen = 0
        for page, server_time in self._prefetched(self._decoded(what, path, kind, query,
                                                                page_size)):
            yield page, server_time
            seen += len(page.items)  # type: ignore[attr-defined]
            if progress is not None:
                progress(seen)

    def relisted(self, read: Callable[[], R]) -> R:
        """Run `read` (which lists from scratch); if a list in it expired mid-way (410),
        run it once more; a second expiry is a ClusterError. The one place a list restarts."""
        try:
            return read()
        except ListExpired:
            pass
        try:
            return read()
        except ListExpired as exc:
            raise ClusterUnavailable(
                f"{exc.what}: the list expired twice while paging (410 Gone): the "
                "cluster changes faster than it can be read; try again", status=410
            ) from None

    def list_pages(self, what: str, path: str, kind: type[T],
                   query: dict[str, Any] | None = None, *,
                   page_size: int | None = None) -> Iterator[T]:
        """Decoded pages of one list pass, for readers that need the list's metadata (its
        resourceVersion); `page_size` items a page instead of PAGE_SIZE. Raises
        ListExpired mid-way: run the whole read under relisted()."""
        for page, _ in self._pages(what, path, kind, query or {}, page_size=page_size):
            yield page

    def _collect(self, what: str, path: str, kind: type[T],
                 query: dict[str, Any] | None = None) -> list[Any]:
        def read() -> list[Any]:
            items: list[Any] = []
            for page, _ in self._pages(what, path, kind, query or {}):
                items.extend(page.items)  # type: ignore[attr-defined]
            return items
        return self.relisted(read)

    # ---- reads ----------------------------------------------------------------------
    def server_now(self) -> datetime:
        """The API server's clock (its Date header on GET /version), else ours."""
        return self._get("get /version", "/version").server_time or datetime.now(UTC)

    def check_namespace(self, namespace: str) -> None:
        """Raise NotFoundError (with suggestions) if the namespace does not exist."""
        try:
            self._query()._get(f"get namespace {namespace}",
                               f"/api/v1/namespaces/{quote(namespace, safe='')}")
        except NotFoundError:
            names = self.namespace_names()
            raise NotFoundError(
                f'namespace "{namespace}" not found in cluster {self.name}',
                suggestions=tuple(get_close_matches(namespace, names, n=3, cutoff=0.5)),
            ) from None

    def namespace_names(self) -> list[str]:
        """The cluster's namespaces, within QUERY_DEADLINE when this client has no
        deadline of its own (they answer a user: where a namespace lives, the summary)."""
        items = self._query()._collect("list namespaces", "/api/v1/namespaces",
                                       wire.OwnedList)
        return [item.metadata.name for item in items]

    def pods(self, namespace: str | None = None, progress: Progress | None = None,
             label_selector: str | None = None) -> Listing:
        """Every pod (of one namespace, or all), streamed. Iterating raises ListExpired when
        the list expires mid-way: run the whole read under `relisted()`."""
        query = {"labelSelector": label_selector}
        if namespace is None:
            what, path = "list pods in all namespaces", "/api/v1/pods"
        else:
            what = f"list pods in namespace {namespace}"
            path = f"/api/v1/namespaces/{quote(namespace, safe='')}/pods"
        return Listing(self._pages(what, path, wire.PodList, query, progress))

    def pod(self, namespace: str, name: str) -> wire.Pod | None:
        """One pod, read by name (None when it is gone): a digest counted from the flight
        recorder reads the few pods that changed instead of listing them all."""
        return self._get_one(f"get pod {namespace}/{name}",
                             f"/api/v1/namespaces/{quote(namespace, safe='')}/"
                             f"pods/{quote(name, safe='')}", wire.Pod)

    def _get_one(self, what: str, path: str, kind: type[T]) -> T | None:
        """One object decoded as `kind`; None when it is gone (404)."""
        try:
            response = self._get(what, path)
        except NotFoundError:
            return None
        with translated(what, self.server):
            return _decoder(kind).decode(response.data)

    def owners(self, namespace: str | None = None) -> dict[tuple[str, str, str], wire.ObjectMeta]:
        """ReplicaSets and Jobs keyed by (kind, namespace, name), for roll-up to their owners."""
        found: dict[tuple[str, str, str], wire.ObjectMeta] = {}
        scope = "" if namespace is None else f"/namespaces/{quote(namespace, safe='')}"
        where = "" if namespace is None else f" in {namespace}"
        for kind, group, plural in (("ReplicaSet", "/apis/apps/v1", "replicasets"),
                                    ("Job", "/apis/batch/v1", "jobs")):
            for item in self._collect(f"list {plural}{where}", f"{group}{scope}/{plural}",
                                      wire.OwnedList):
                found[(kind, item.metadata.namespace, item.metadata.name)] = item.metadata
        return found

    def owner(self, kind: str, namespace: str, name: str) -> wire.ObjectMeta | None:
        """A ReplicaSet's or Job's metadata (its own owners, its creation time); None when
        it is gone or of another kind."""
        where = {"ReplicaSet": ("/apis/apps/v1", "replicasets"),
                 "Job": ("/apis/batch/v1", "jobs")}.get(kind)
        if where is None:
            return None
        group, plural = where
        found = self._get_one(f"get {plural} {namespace}/{name}",
                              f"{group}/namespaces/{quote(namespace, safe='')}/"
                              f"{plural}/{quote(name, safe='')}", wire.OwnedObject)
        return found.metadata if found is not None else None

    def previous_log(self, namespace: str, pod: str, container: str, *, tail_lines: int,
                     limit_bytes: int, previous: bool = True) -> str | None:
        """The previous (crashed) container's log tail; None when the kubelet keeps none.

        The API answers 400 BadRequest for a container without a previous instance and 404
        when the pod is gone: both are "no log", decided by status. A 403 raises
        ForbiddenError (resource "pods/log"); other failures raise ClusterError."""
        what = f"read {'previous ' if previous else ''}log of {namespace}/{pod} [{container}]"
        try:
            response = self._get(
                what, f"/api/v1/namespaces/{quote(namespace, safe='')}/pods/"
                f"{quote(pod, safe='')}/log",
                {"container": container, "previous": "true" if previous else "false",
                 "tailLines": tail_lines, "limitBytes": limit_bytes}, accept="text/plain")
        except ClusterError as exc:
            if exc.status in (400, 404):
                return None
            raise
        return response.data.decode("utf-8", errors="replace")

    def events_for(self, namespace: str, name: str, uid: str | None = None) -> list[wire.Event]:
        """Events whose involvedObject is this pod (they expire after about an hour)."""
        selector = f"involvedObject.name={name},involvedObject.namespace={namespace}"
        if uid:
            selector += f",involvedObject.uid={uid}"
        events: list[wire.Event] = self._collect(
            f"list events of {namespace}/{name}",
            f"/api/v1/namespaces/{quote(namespace, safe='')}/events", wire.EventList,
            {"fieldSelector": selector})
        return events

    # ---- the pod watch ----------------------------------------------------------------
    def watch_pods(self, namespace: str | None, resource_version: str, seconds: int
                   ) -> Stream:
        """A watch of pods (one namespace, or all) from `resource_version`, with
        bookmarks, that the server ends after `seconds`: newline-delimited JSON frames.
        One attempt (the watcher backs off by itself); reads time out after `seconds`
        plus a margin of silence. A 410 (version too old) is a ClusterError(status=410)."""
        scope = "" if namespace is None else f"/namespaces/{quote(namespace, safe='')}"
        what = "watch pods in all namespaces" if namespace is None else (
            f"watch pods in {namespace}")
        call = Call(what, f"/api/v1{scope}/pods",
                    query={"watch": "true", "resourceVersion": resource_version,
                           "allowWatchBookmarks": "true", "timeoutSeconds": str(seconds)},
                    read_timeout=seconds + WATCH_MARGIN, retried=False)
        return self.transport.open(call, self.deadline)

    # ---- leases (leader election) -----------------------------------------------------
    def read_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Lease object, or None when there is none. One attempt, within this
        client's deadline (the elector bounds each renewal)."""
        what = f"read lease {namespace}/{name}"
        try:
            response = self.transport.send(Call(what, _lease_path(namespace, name),
                                                retried=False), self.deadline)
        except NotFoundError:
            return None
        return _json_object(response.data, what, self.server)

    def write_lease(self, lease: dict[str, Any], *, create: bool) -> dict[str, Any]:
        """Create the Lease, or replace it with the resourceVersion it carries (optimistic
        concurrency: a ClusterError with status 409 when another replica wrote first)."""
        meta = lease["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        path = _lease_path(namespace, name)
        call = Call(f"{'create' if create else 'update'} lease {namespace}/{name}",
                    path.rsplit("/", 1)[0] if create else path,
                    method="POST" if create else "PUT", body=lease, retried=False)
        response = self.transport.send(call, self.deadline)
        return _json_object(response.data, call.what, self.server)


WATCH_MARGIN = 30  # seconds of silence past a watch's server-side timeout


def _lease_path(namespace: str, name: str) -> str:
    return (f"/apis/coordination.k8s.io/v1/namespaces/{quote(namespace, safe='')}/leases/"
            f"{quote(name, safe='')}")


def _json_object(data: bytes, what: str, server: str) -> dict[str, Any]:
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise ClusterError(f"{what}: {server} did not answer with JSON") from None
    if not isinstance(parsed, dict):
        raise ClusterError(f"{what}: unexpected response from {server}")
    return parsed


if TYPE_CHECKING:
    from bot.cluster.api import KubeApi

    def _implements(client: ClusterClient) -> KubeApi:
        """mypy proves here that ClusterClient is a KubeApi."""
        return client
