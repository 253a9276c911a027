"""ClusterClient: the one I/O seam to the Kubernetes API.

Built from kubeconfig (`KUBECONFIG`, `KUBE_CONTEXT`) or the in-cluster service account.
Uses the official client's API classes with `_preload_content=False` and decodes only the
needed fields with msgspec. Lists are paginated (`limit=500` + continue); a 410 Expired
restarts the list once, then fails with a clear message.
"""

from __future__ import annotations

import contextlib
import email.utils
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from difflib import get_close_matches
from typing import Any, TypeVar

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
    """Raw, fast reads of pods, owners, logs and events, with errors translated."""

    def __init__(self, api: k8s.ApiClient, name: str, page_size: int = PAGE_SIZE) -> None:
        self.api = api
        self.name = name
        self.page_size = page_size
        self.core = k8s.CoreV1Api(api)
        self.apps = k8s.AppsV1Api(api)
        self.batch = k8s.BatchV1Api(api)
        self.server = str(api.configuration.host)
        self.server_time: datetime | None = None

    def close(self) -> None:
        self.api.close()

    # ---- plumbing -------------------------------------------------------------------
    def _note_time(self, response: Any) -> None:
        date = response.headers.get("Date") if response.headers else None
        if date:
            with contextlib.suppress(TypeError, ValueError):
                self.server_time = email.utils.parsedate_to_datetime(date).astimezone(UTC)

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> bytes:
        with translated(what, self.server):
            response = fn(*args, _preload_content=False, **kwargs)
            self._note_time(response)
            data: bytes = response.data
            return data

    def _pages(self, what: str, fn: Callable[..., Any], kind: type[T], *args: Any,
               progress: Progress | None = None, **kwargs: Any) -> Iterator[T]:
        """Decoded pages of one list pass; raises _Expired on a 410 after the first page."""
        decoder = _decoder(kind)
        token: str | None = None
        seen = 0
        while True:
            with translated(what, self.server):
                try:
                    response = fn(*args, limit=self.page_size, _continue=token,
                                  _preload_content=False, **kwargs)
                except ApiException as exc:
                    if exc.status == 410 and token is not None:
                        raise _Expired from None
                    raise
                self._note_time(response)
                page = decoder.decode(response.data)
            yield page
            seen += len(page.items)  # type: ignore[attr-defined]
            if progress is not None:
                progress(seen)
            token = page.metadata.continue_  # type: ignore[attr-defined]
            if not token:
                return

    def list_all(self, what: str, fn: Callable[..., Any], kind: type[T], *args: Any,
                 progress: Progress | None = None, **kwargs: Any) -> Iterator[T | None]:
        """Pages of a list. On 410 Expired mid-list, yields None (discard what you have)
        and starts over once; a second expiry is a ClusterError."""
        for attempt in (1, 2):
            try:
                yield from self._pages(what, fn, kind, *args, progress=progress, **kwargs)
                return
            except _Expired:
                if attempt == 2:
                    raise ClusterError(
                        f"{what}: the list expired twice while paging (410 Gone): the "
                        "cluster changes faster than it can be read; try again"
                    ) from None
                yield None

    # ---- reads ----------------------------------------------------------------------
    def check_namespace(self, namespace: str) -> None:
        """Raise NotFoundError (with suggestions) if the namespace does not exist."""
        try:
            self._call(f"get namespace {namespace}", self.core.read_namespace, namespace)
        except NotFoundError:
            names = self.namespace_names()
            raise NotFoundError(
                f'namespace "{namespace}" not found in cluster {self.name}',
                suggestions=tuple(get_close_matches(namespace, names, n=3, cutoff=0.5)),
            ) from None

    def namespace_names(self) -> list[str]:
        names: list[str] = []
        for page in self.list_all("list namespaces", self.core.list_namespace, wire.OwnedList):
            if page is None:
                names.clear()
                continue
            names.extend(item.metadata.name for item in page.items)
        return names

    def pods(self, namespace: str | None = None, progress: Progress | None = None,
             label_selector: str | None = None) -> Iterator[wire.Pod | None]:
        """Every pod (of one namespace, or all). None means the list restarted after a 410:
        discard the pods received so far."""
        extra = {"label_selector": label_selector} if label_selector else {}
        if namespace is None:
            pages = self.list_all("list pods in all namespaces",
                                  self.core.list_pod_for_all_namespaces, wire.PodList,
                                  progress=progress, **extra)
        else:
            pages = self.list_all(f"list pods in namespace {namespace}",
                                  self.core.list_namespaced_pod, wire.PodList, namespace,
                                  progress=progress, **extra)
        for page in pages:
            if page is None:
                yield None
            else:
                yield from page.items

    def owners(self, namespace: str | None = None) -> dict[tuple[str, str, str], wire.ObjectMeta]:
        """ReplicaSets and Jobs keyed by (kind, namespace, name), for roll-up to their owners."""
        found: dict[tuple[str, str, str], wire.ObjectMeta] = {}
        calls: list[tuple[str, str, Callable[..., Any], tuple[Any, ...]]] = []
        if namespace is None:
            calls = [("ReplicaSet", "list replicasets",
                      self.apps.list_replica_set_for_all_namespaces, ()),
                     ("Job", "list jobs", self.batch.list_job_for_all_namespaces, ())]
        else:
            calls = [("ReplicaSet", f"list replicasets in {namespace}",
                      self.apps.list_namespaced_replica_set, (namespace,)),
                     ("Job", f"list jobs in {namespace}", self.batch.list_namespaced_job,
                      (namespace,))]
        for kind, what, fn, args in calls:
            for page in self.list_all(what, fn, wire.OwnedList, *args):
                if page is None:
                    found = {k: v for k, v in found.items() if k[0] != kind}
                    continue
                for item in page.items:
                    found[(kind, item.metadata.namespace, item.metadata.name)] = item.metadata
        return found

    def pod(self, namespace: str, name: str) -> wire.Pod:
        data = self._call(f'get pod "{name}" in namespace {namespace}',
                          self.core.read_namespaced_pod, name, namespace)
        with translated(f"get pod {name}", self.server):
            return _decoder(wire.Pod).decode(data)

    def previous_log(self, namespace: str, pod: str, container: str, *, tail_lines: int,
                     limit_bytes: int, previous: bool = True) -> str | None:
        """The previous (crashed) container's log tail; None when kubelet has none."""
        try:
            data = self._call(
                f"read {'previous ' if previous else ''}log of {namespace}/{pod} [{container}]",
                self.core.read_namespaced_pod_log, pod, namespace, container=container,
                previous=previous, tail_lines=tail_lines, limit_bytes=limit_bytes)
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
                                  self.core.list_namespaced_event, wire.EventList, namespace,
                                  field_selector=selector):
            if page is None:
                events.clear()
            else:
                events.extend(page.items)
        return events


class _Expired(Exception):
    """Internal: a continue token expired (410) mid-list."""
