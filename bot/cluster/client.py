"""ClusterClient: the one I/O seam to the Kubernetes API.

Built from kubeconfig (`KUBECONFIG`, `KUBE_CONTEXT`) or the in-cluster service account.
Uses the official client's API classes with `_preload_content=False` and decodes only the
needed fields with msgspec. Lists are paginated (`limit=500` + continue); a 410 Expired
restarts the list once, then fails with a clear message.
"""

from __future__ import annotations

import contextlib
import email.utils
import queue
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from difflib import get_close_matches
from typing import Any, TypeVar
from urllib.parse import quote

import msgspec
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from bot.cluster import wire
from bot.cluster.errors import translated
from bot.errors import ClusterError, ConfigError, NotFoundError
from bot.settings import Settings

PAGE_SIZE = 500
T = TypeVar("T", bound=msgspec.Struct)
Progress = Callable[[int], None]

_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}


def _decoder(kind: type[T]) -> msgspec.json.Decoder[T]:
    if kind not in _decoders:
        _decoders[kind] = msgspec.json.Decoder(kind)
    return _decoders[kind]


def connect(settings: Settings) -> ClusterClient:
    """An ApiClient from the settings' kubeconfig/context, or in-cluster config."""
    configuration = k8s.Configuration()
    try:
        if settings.kubeconfig is None and settings.in_cluster:
            k8s_config.load_incluster_config(client_configuration=configuration)
            api = k8s.ApiClient(configuration)
            name = settings.cluster_name or "in-cluster"
        else:
            api = k8s_config.new_client_from_config(
                config_file=settings.kubeconfig, context=settings.kube_context,
                persist_config=False)
            contexts, current = k8s_config.list_kube_config_contexts(settings.kubeconfig)
            chosen = settings.kube_context or (current or {}).get("name", "")
            name = settings.cluster_name or next(
                (c["context"].get("cluster", c["name"]) for c in contexts
                 if c["name"] == chosen), chosen or "cluster")
    except k8s_config.ConfigException as exc:
        where = settings.kubeconfig or "~/.kube/config"
        raise ConfigError(f"cannot load kubeconfig {where}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read kubeconfig {settings.kubeconfig}: {exc.strerror}") from None
    api.configuration.retries = 1
    return ClusterClient(api, name)


class ClusterClient:
    """Raw, fast reads of pods, owners, logs and events, with errors translated.

    Requests go through the official client's ApiClient (configuration, auth, TLS,
    urllib3 pool) via `param_serialize` + `call_api`, the same path its generated API
    classes take, minus their ~300 pydantic models (28 MB and ~1 s at start-up) that a
    raw-JSON reader never uses.
    """

    def __init__(self, api: k8s.ApiClient, name: str, page_size: int = PAGE_SIZE) -> None:
        self.api = api
        self.name = name
        self.page_size = page_size
        self.server = str(api.configuration.host)
        self.server_time: datetime | None = None

    def close(self) -> None:
        self.api.close()

    # ---- plumbing -------------------------------------------------------------------
    def _get(self, path: str, query: dict[str, Any] | None = None,
             accept: str = "application/json") -> bytes:
        """GET `path`; non-2xx raises the client's ApiException (translated by callers)."""
        params = [(k, v) for k, v in (query or {}).items() if v is not None]
        request = self.api.param_serialize("GET", path, query_params=params,
                                           header_params={"Accept": accept},
                                           auth_settings=["BearerToken"])
        response = self.api.call_api(*request)
        data: bytes = response.read()
        if not 200 <= response.status <= 299:
            raise ApiException.from_response(http_resp=response, body=None, data=None)
        date = response.getheader("Date")
        if date:
            with contextlib.suppress(TypeError, ValueError):
                self.server_time = email.utils.parsedate_to_datetime(date).astimezone(UTC)
        return data

    def _pages(self, what: str, path: str, kind: type[T], query: dict[str, Any],
               progress: Progress | None = None) -> Iterator[T]:
        """Decoded pages of one list pass; raises _Expired on a 410 after the first page.

        A fetcher thread requests page N+1 while page N is decoded and processed (socket
        reads release the GIL), so the patrol's CPU work overlaps the network.
        """
        decoder = _decoder(kind)
        pages: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=2)
        stop = threading.Event()

        def offer(item: bytes | BaseException | None) -> None:
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
                        data = self._get(path, {**query, "limit": self.page_size,
                                                "continue": token})
                    except ApiException as exc:
                        if exc.status == 410 and token is not None:
                            raise _Expired from None
                        raise
                    offer(data)
                    token = _decoder(wire.ListHead).decode(data).metadata.continue_
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
                if isinstance(item, _Expired):
                    raise item
                with translated(what, self.server):
                    if isinstance(item, BaseException):
                        raise item
                    page = decoder.decode(item)
                yield page
                seen += len(page.items)  # type: ignore[attr-defined]
                if progress is not None:
                    progress(seen)
        finally:
            stop.set()
            fetcher.join(timeout=5)

    def list_all(self, what: str, path: str, kind: type[T], query: dict[str, Any] | None = None,
                 progress: Progress | None = None) -> Iterator[T | None]:
        """Pages of a list. On 410 Expired mid-list, yields None (discard what you have)
        and starts over once; a second expiry is a ClusterError."""
        for attempt in (1, 2):
            try:
                yield from self._pages(what, path, kind, query or {}, progress)
                return
            except _Expired:
                if attempt == 2:
                    raise ClusterError(
                        f"{what}: the list expired twice while paging (410 Gone): the "
                        "cluster changes faster than it can be read; try again"
                    ) from None
                yield None

    # ---- reads ----------------------------------------------------------------------
    def server_now(self) -> datetime:
        """The API server's clock (its Date header on GET /version), else ours."""
        with translated("get /version", self.server):
            self._get("/version")
        return self.server_time or datetime.now(UTC)

    def check_namespace(self, namespace: str) -> None:
        """Raise NotFoundError (with suggestions) if the namespace does not exist."""
        try:
            with translated(f"get namespace {namespace}", self.server):
                self._get(f"/api/v1/namespaces/{quote(namespace, safe='')}")
        except NotFoundError:
            names = self.namespace_names()
            raise NotFoundError(
                f'namespace "{namespace}" not found in cluster {self.name}',
                suggestions=tuple(get_close_matches(namespace, names, n=3, cutoff=0.5)),
            ) from None

    def namespace_names(self) -> list[str]:
        names: list[str] = []
        for page in self.list_all("list namespaces", "/api/v1/namespaces", wire.OwnedList):
            if page is None:
                names.clear()
                continue
            names.extend(item.metadata.name for item in page.items)
        return names

    def pods(self, namespace: str | None = None, progress: Progress | None = None,
             label_selector: str | None = None) -> Iterator[wire.Pod | None]:
        """Every pod (of one namespace, or all). None means the list restarted after a 410:
        discard the pods received so far."""
        query = {"labelSelector": label_selector}
        if namespace is None:
            pages = self.list_all("list pods in all namespaces", "/api/v1/pods", wire.PodList,
                                  query, progress)
        else:
            pages = self.list_all(f"list pods in namespace {namespace}",
                                  f"/api/v1/namespaces/{quote(namespace, safe='')}/pods",
                                  wire.PodList, query, progress)
        for page in pages:
            if page is None:
                yield None
            else:
                yield from page.items

    def owners(self, namespace: str | None = None) -> dict[tuple[str, str, str], wire.ObjectMeta]:
        """ReplicaSets and Jobs keyed by (kind, namespace, name), for roll-up to their owners."""
        found: dict[tuple[str, str, str], wire.ObjectMeta] = {}
        scope = "" if namespace is None else f"/namespaces/{quote(namespace, safe='')}"
        where = "" if namespace is None else f" in {namespace}"
        for kind, group, plural in (("ReplicaSet", "/apis/apps/v1", "replicasets"),
                                    ("Job", "/apis/batch/v1", "jobs")):
            for page in self.list_all(f"list {plural}{where}", f"{group}{scope}/{plural}",
                                      wire.OwnedList):
                if page is None:
                    found = {k: v for k, v in found.items() if k[0] != kind}
                    continue
                for item in page.items:
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
        try:
            with translated(f"get {plural} {namespace}/{name}", self.server):
                data = self._get(f"{group}/namespaces/{quote(namespace, safe='')}/{plural}/"
                                 f"{quote(name, safe='')}")
                return _decoder(wire.OwnedObject).decode(data).metadata
        except NotFoundError:
            return None

    def previous_log(self, namespace: str, pod: str, container: str, *, tail_lines: int,
                     limit_bytes: int, previous: bool = True) -> str | None:
        """The previous (crashed) container's log tail; None when kubelet has none."""
        what = f"read {'previous ' if previous else ''}log of {namespace}/{pod} [{container}]"
        try:
            with translated(what, self.server):
                data = self._get(
                    f"/api/v1/namespaces/{quote(namespace, safe='')}/pods/"
                    f"{quote(pod, safe='')}/log",
                    {"container": container, "previous": "true" if previous else "false",
                     "tailLines": tail_lines, "limitBytes": limit_bytes}, accept="text/plain")
        except ClusterError as exc:
            if "previous terminated container" in str(exc) or " not found" in str(exc):
                return None
            raise
        return data.decode("utf-8", errors="replace")

    def events_for(self, namespace: str, name: str, uid: str | None = None) -> list[wire.Event]:
        """Events whose involvedObject is this pod (they expire after about an hour)."""
        selector = f"involvedObject.name={name},involvedObject.namespace={namespace}"
        if uid:
            selector += f",involvedObject.uid={uid}"
        events: list[wire.Event] = []
        for page in self.list_all(f"list events of {namespace}/{name}",
                                  f"/api/v1/namespaces/{quote(namespace, safe='')}/events",
                                  wire.EventList, {"fieldSelector": selector}):
            if page is None:
                events.clear()
            else:
                events.extend(page.items)
        return events


class _Expired(Exception):
    """Internal: a continue token expired (410) mid-list."""
