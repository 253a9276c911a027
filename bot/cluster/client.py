"""ClusterClient: the one I/O seam to the Kubernetes API.

Built from kubeconfig (`KUBECONFIG`, `KUBE_CONTEXT`) or the in-cluster service account.
Uses the official client's ApiClient with `_preload_content=False` and decodes only the
needed fields with msgspec. Lists are paginated (`limit=500` + continue).

Every request goes through `_get`: connect and read timeouts, a deadline when the client
is `bounded()`, and retries with exponential backoff and jitter (client-go's algorithm,
from `kubernetes.utils.retry`) for 429 (honouring Retry-After), 5xx, resets and bodies
cut mid-way; then one line naming what failed. A continue token that expires (410) mid-list
raises `ListExpired`; `relisted()` is the one place that starts such a read over.
"""

from __future__ import annotations

import email.utils
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from difflib import get_close_matches
from typing import Any, TypeVar
from urllib.parse import quote

import msgspec
import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.utils import Backoff, on_retry_after_error

from bot.cluster import wire
from bot.cluster.errors import describe, retriable, translate, translated
from bot.errors import (
    ClusterError,
    ClusterUnavailable,
    ConfigError,
    DeadlineExceeded,
    NotFoundError,
)
from bot.settings import Settings

PAGE_SIZE = 500
CHUNK = 1 << 20  # body read size: the deadline is checked between chunks
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


def connect(settings: Settings, context: str | None = None) -> ClusterClient:
    """An ApiClient from the settings' kubeconfig/context, or in-cluster config.
    `context` (one of KUBE_CONTEXTS) overrides KUBE_CONTEXT and names the cluster.

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
    configuration.retries = False  # every retry is decided once, in ClusterClient._get
    limits = Limits(connect_timeout=settings.limits.connect_timeout,
                    read_timeout=settings.limits.read_timeout,
                    retries=settings.limits.retries, backoff=settings.limits.retry_backoff)
    return ClusterClient(k8s.ApiClient(configuration), name, limits=limits)


@dataclass(frozen=True, slots=True)
class Limits:
    """Time bounds of every request: timeouts, and retries with backoff (seconds)."""

    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    retries: int = 4
    backoff: float = 0.5

    def schedule(self) -> Backoff:
        """client-go's backoff: doubling delays with up to 50 % jitter, bounded count."""
        return Backoff(steps=self.retries + 1, duration=self.backoff, factor=2.0, jitter=0.5)


@dataclass(frozen=True, slots=True)
class Deadline:
    """An overall time budget (monotonic clock) for a patrol or a query."""

    seconds: float
    setting: str
    at: float

    @classmethod
    def start(cls, seconds: float, setting: str) -> Deadline:
        return cls(seconds, setting, time.monotonic() + seconds)

    def remaining(self) -> float:
        return self.at - time.monotonic()


@dataclass(frozen=True, slots=True)
class Response:
    """A successful answer, with the server's clock (its Date header) at that moment."""

    data: bytes
    server_time: datetime | None


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


class _OutOfTime(Exception):
    """Internal: the deadline leaves no time for the next attempt or wait."""


def _server_time(response: Any) -> datetime | None:
    date = response.getheader("Date")
    if not date:
        return None
    try:
        return email.utils.parsedate_to_datetime(date).astimezone(UTC)
    except (TypeError, ValueError):
        return None


class ClusterClient:
    """Raw, fast reads of pods, owners, logs and events, with errors translated.

    Requests go through the official client's ApiClient (configuration, auth, TLS,
    urllib3 pool) via `param_serialize` + `call_api`, the same path its generated API
    classes take, minus their ~300 pydantic models (28 MB and ~1 s at start-up) that a
    raw-JSON reader never uses. Instances hold no mutable state once built: `bounded()`
    returns a view with a deadline that shares the connection pool.
    """

    def __init__(self, api: k8s.ApiClient, name: str, page_size: int = PAGE_SIZE,
                 limits: Limits | None = None, deadline: Deadline | None = None) -> None:
        self.api = api
        self.name = name
        self.page_size = page_size
        self.limits = limits or Limits()
        self.deadline = deadline
        self.server = str(api.configuration.host)

    def close(self) -> None:
        self.api.close()

    def bounded(self, seconds: float, setting: str) -> ClusterClient:
        """A view of this client whose requests all end within `seconds` from now
        (`setting` names the knob in the error, e.g. PATROL_DEADLINE)."""
        return ClusterClient(self.api, self.name, self.page_size, self.limits,
                             Deadline.start(seconds, setting))

    # ---- plumbing -------------------------------------------------------------------
    def _left(self) -> float:
        if self.deadline is None:
            return float("inf")
        left = self.deadline.remaining()
        if left <= 0.001:
            raise _OutOfTime
        return left

    def _sleep(self, seconds: float) -> None:
        if seconds >= self._left():
            raise _OutOfTime
        time.sleep(seconds)

    def _read_body(self, response: Any) -> bytes:
        raw: urllib3.BaseHTTPResponse = response.response
        chunks: list[bytes] = []
        while chunk := raw.read(CHUNK):
            chunks.append(chunk)
            self._left()
        raw.release_conn()
        return b"".join(chunks)

    def _get(self, what: str, path: str, query: dict[str, Any] | None = None,
             accept: str = "application/json") -> Response:
        """GET `path` within the timeouts, retries and deadline; a failure is raised as
        one line naming `what` (non-2xx statuses carry their `status`)."""
        params = [(k, v) for k, v in (query or {}).items() if v is not None]
        request = self.api.param_serialize("GET", path, query_params=params,
                                           header_params={"Accept": accept},
                                           auth_settings=["BearerToken"])
        limits = self.limits
        failures: list[BaseException] = []
        started = time.monotonic()

        def attempt() -> Response:
            read = min(limits.read_timeout, self._left())
            try:
                response = self.api.call_api(
                    *request, _request_timeout=(min(limits.connect_timeout, read), read))
                if not 200 <= response.status <= 299:
                    response.read()
                    raise ApiException.from_response(http_resp=response, body=None,
                                                     data=None)
                return Response(self._read_body(response), _server_time(response))
            except (ApiException, urllib3.exceptions.HTTPError) as exc:
                failures.append(exc)
                raise

        try:
            return on_retry_after_error(limits.schedule(), retriable, attempt,
                                        sleep_func=self._sleep)
        except _OutOfTime:
            deadline = self.deadline
            assert deadline is not None
            last = (f"; last attempt: {describe(failures[-1], self.server, limits.read_timeout)}"
                    if failures else "")
            raise DeadlineExceeded(
                f"{what}: gave up at the {deadline.seconds:g} s deadline ({deadline.setting})"
                f"{last}") from None
        except (ApiException, urllib3.exceptions.HTTPError) as exc:
            if len(failures) > 1 and retriable(exc):
                elapsed = time.monotonic() - started
                raise ClusterUnavailable(
                    f"{what}: {describe(exc, self.server, limits.read_timeout)} "
                    f"{len(failures)} times over {elapsed:.1f} s",
                    status=getattr(exc, "status", None)) from None
            raise translate(exc, what, path, self.server) from None

    def _pages(self, what: str, path: str, kind: type[T], query: dict[str, Any],
               progress: Progress | None = None) -> Iterator[tuple[T, datetime | None]]:
        """Decoded pages of one list pass; raises ListExpired on a 410 after the first page.

        A fetcher thread requests page N+1 while page N is decoded and processed (socket
        reads release the GIL), so the patrol's CPU work overlaps the network.
        """
        decoder = _decoder(kind)
        pages: queue.Queue[Response | BaseException | None] = queue.Queue(maxsize=2)
        stop = threading.Event()

        def offer(item: Response | BaseException | None) -> None:
            while not stop.is_set():
                try:
                    pages.put(item, timeout=0.1)
                    return
                except queue.Full:
                    continue

        def fetch() -> None:
            token: str | None = None
            try:
                while not stop.is_set():
                    try:
                        response = self._get(what, path, {**query, "limit": self.page_size,
                                                          "continue": token})
                    except ClusterError as exc:
                        if exc.status == 410 and token is not None:
                            raise ListExpired(what) from None
                        raise
                    offer(response)
                    token = _decoder(wire.ListHead).decode(response.data).metadata.continue_
                    if not token:
                        offer(None)
                        return
            except BaseException as exc:
                offer(exc)

        fetcher = threading.Thread(target=fetch, name="k8s-list-prefetch", daemon=True)
        fetcher.start()
        seen = 0
        try:
            while True:
                item = pages.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                with translated(what, self.server, path):
                    page = decoder.decode(item.data)
                yield page, item.server_time
                seen += len(page.items)  # type: ignore[attr-defined]
                if progress is not None:
                    progress(seen)
        finally:
            stop.set()
            fetcher.join(timeout=5)

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
                   query: dict[str, Any] | None = None) -> Iterator[T]:
        """Decoded pages of one list pass, for readers that need the list's metadata (its
        resourceVersion). Raises ListExpired mid-way: run the whole read under relisted()."""
        for page, _ in self._pages(what, path, kind, query or {}):
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
            self._get(f"get namespace {namespace}",
                      f"/api/v1/namespaces/{quote(namespace, safe='')}")
        except NotFoundError:
            names = self.namespace_names()
            raise NotFoundError(
                f'namespace "{namespace}" not found in cluster {self.name}',
                suggestions=tuple(get_close_matches(namespace, names, n=3, cutoff=0.5)),
            ) from None

    def namespace_names(self) -> list[str]:
        items = self._collect("list namespaces", "/api/v1/namespaces", wire.OwnedList)
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
        what = f"get {plural} {namespace}/{name}"
        try:
            response = self._get(what, f"{group}/namespaces/{quote(namespace, safe='')}/"
                                 f"{plural}/{quote(name, safe='')}")
        except NotFoundError:
            return None
        with translated(what, self.server):
            return _decoder(wire.OwnedObject).decode(response.data).metadata

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
