"""List+watch of pods through the raw API path (msgspec), for the flight recorder.

One `PodWatch` covers one scope (a namespace, or all namespaces): it lists the pods
(paginated, consistent at the list's resourceVersion), then watches from that version
with bookmarks, following each event's resourceVersion. A stream that ends (the server's
`timeoutSeconds`, a dropped connection) resumes from the last version seen; a 410 Gone
(version compacted away) lists again. Failures back off 0.5 s → 30 s. The handler sees
every list in full and every change, in order; it compares restart counts itself, so a
re-list neither loses nor repeats a restart.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Protocol
from urllib.parse import quote

import msgspec
import urllib3
from kubernetes.client.exceptions import ApiException

from bot.cluster import wire
from bot.cluster.client import ClusterClient
from bot.cluster.errors import translated
from bot.errors import ClusterError, ClusterUnavailable, PatrolError

log = logging.getLogger("restart_patrol.watch")

WATCH_SECONDS = 300  # server-side timeout of one watch request; then it resumes
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0


class PodLabels(msgspec.Struct, frozen=True, gc=False):
    pod_template_hash: str | None = msgspec.field(default=None, name="pod-template-hash")


class PodMeta(msgspec.Struct, frozen=True, gc=False):
    name: str = ""
    namespace: str = ""
    uid: str = ""
    resourceVersion: str = ""
    creationTimestamp: str | None = None
    ownerReferences: list[wire.OwnerReference] = []
    labels: PodLabels = PodLabels()


class WatchedPod(msgspec.Struct, frozen=True, gc=False):
    """The fields of a pod the recorder reads; the rest is skipped while decoding."""

    metadata: PodMeta = PodMeta()
    spec: wire.PodSpec = wire.PodSpec()
    status: wire.PodStatus = wire.PodStatus()


class WatchedPodList(msgspec.Struct, frozen=True, gc=False):
    metadata: wire.ListMeta = wire.ListMeta()
    items: list[WatchedPod] = []


class _Frame(msgspec.Struct, frozen=True, gc=False):
    type: str
    object: msgspec.Raw = msgspec.Raw(b"{}")


class _VersionOnly(msgspec.Struct, frozen=True, gc=False):
    metadata: wire.ListMeta = wire.ListMeta()


_frames = msgspec.json.Decoder(_Frame)
_pods = msgspec.json.Decoder(WatchedPod)
_versions = msgspec.json.Decoder(_VersionOnly)
_statuses = msgspec.json.Decoder(wire.StatusBody)


class PodHandler(Protocol):
    """What a PodWatch reports to."""

    def listed(self, scope: str | None, pods: Iterator[WatchedPod]) -> None:
        """A complete list of the scope (streamed); pods absent from it are gone."""

    def changed(self, event: str, pod: WatchedPod) -> None:
        """ADDED, MODIFIED or DELETED, in resourceVersion order."""

    def progressed(self, scope: str | None, resource_version: int) -> None:
        """Everything up to this version has been delivered."""


class Gone(Exception):
    """410: the resourceVersion is too old to resume from; list again."""


class PodWatch:
    """List+watch of one scope's pods until `stop()`; run it in its own thread."""

    def __init__(self, cluster: ClusterClient, namespace: str | None, handler: PodHandler,
                 *, watch_seconds: int = WATCH_SECONDS) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.handler = handler
        self.watch_seconds = watch_seconds
        self.stopping = threading.Event()
        self.lists = 0  # completed lists (the first one included)
        self.relists_after_gone = 0
        self.reconnects = 0
        self._response: urllib3.BaseHTTPResponse | None = None
        self._lock = threading.Lock()
        scope = "" if namespace is None else f"/namespaces/{quote(namespace, safe='')}"
        self.path = f"/api/v1{scope}/pods"
        self.what = "pods in all namespaces" if namespace is None else f"pods in {namespace}"

    def stop(self) -> None:
        """Stop, unblocking a read in progress (the socket is shut down)."""
        self.stopping.set()
        with self._lock:
            response = self._response
        if response is not None:
            with contextlib.suppress(OSError):
                response.shutdown()

    def run(self) -> None:
        """List, then watch; resume, re-list or back off until stopped."""
        version: str | None = None
        delay = BACKOFF_FIRST
        while not self.stopping.is_set():
            try:
                if version is None:
                    version = self._list()
                version = self._watch(version)
                delay = BACKOFF_FIRST
            except Gone:
                log.info("watch of %s: resourceVersion expired (410); listing again", self.what)
                self.relists_after_gone += 1
                version = None
            except ClusterError as exc:
                if self.stopping.is_set():
                    return
                self.reconnects += 1
                log.warning("watch of %s failed: %s; retrying in %.1fs", self.what, exc, delay)
                self.stopping.wait(delay)
                delay = min(delay * 2, BACKOFF_MAX)
            except PatrolError as exc:
                # The handler could not keep what it saw (its database, say): list again
                # after a pause, so the comparison of counts finds those restarts again.
                log.error("recording %s failed: %s; listing again in %.1fs", self.what, exc,
                          delay)
                version = None
                self.stopping.wait(delay)
                delay = min(delay * 2, BACKOFF_MAX)

    # ---- list -----------------------------------------------------------------------
    def _list(self) -> str:
        version = ""

        def pods() -> Iterator[WatchedPod]:
            nonlocal version
            for page in self.cluster.list_pages(f"list {self.what}", self.path,
                                                WatchedPodList):
                if self.stopping.is_set():
                    return
                version = page.metadata.resourceVersion
                yield from page.items

        # A list that expires mid-way (410) is listed again: the handler is idempotent.
        self.cluster.relisted(lambda: self.handler.listed(self.namespace, pods()))
        if self.stopping.is_set():
            raise ClusterError("stopped")
        self.lists += 1
        if version.isdigit():
            self.handler.progressed(self.namespace, int(version))
        return version

    # ---- watch ----------------------------------------------------------------------
    def _open(self, version: str) -> urllib3.BaseHTTPResponse:
        api = self.cluster.api
        query = [("watch", "true"), ("resourceVersion", version),
                 ("allowWatchBookmarks", "true"), ("timeoutSeconds", str(self.watch_seconds))]
        request = api.param_serialize("GET", self.path, query_params=query,
                                      header_params={"Accept": "application/json"},
                                      auth_settings=["BearerToken"])
        timeout = (self.cluster.limits.connect_timeout, self.watch_seconds + 30)
        response = api.call_api(*request, _request_timeout=timeout)
        raw: urllib3.BaseHTTPResponse = response.response
        if raw.status == 410:
            raw.release_conn()
            raise Gone
        if not 200 <= raw.status <= 299:
            data = raw.read()
            raise ApiException(status=raw.status, reason=raw.reason, body=data.decode(
                "utf-8", errors="replace"))
        return raw

    def _watch(self, version: str) -> str:
        """One watch request; returns the last version seen when the stream ends."""
        with translated(f"watch {self.what}", self.cluster.server):
            raw = self._open(version)
            with self._lock:
                self._response = raw
            complete = False
            try:
                if self.stopping.is_set():
                    return version
                buffer = b""
                for chunk in raw.stream(None):
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if line.strip():
                            version = self._frame(line, version)
                if buffer.strip():
                    version = self._frame(buffer, version)
                complete = True
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                if self.stopping.is_set():
                    return version
                raise ClusterUnavailable(f"watch {self.what}: the stream broke ({exc})") from None
            finally:
                with self._lock:
                    self._response = None
                if complete:
                    raw.release_conn()  # read to its end: the connection is reusable
                else:
                    raw.close()  # mid-stream: never hand this connection to another call
        return version

    def _frame(self, line: bytes, version: str) -> str:
        frame = _frames.decode(line)
        if frame.type == "ERROR":
            status = _statuses.decode(frame.object)
            if status.code == 410:
                raise Gone
            message = status.message or f"code {status.code}"
            raise ClusterError(f"watch {self.what}: the API server reported {message}")
        if frame.type == "BOOKMARK":
            version = _versions.decode(frame.object).metadata.resourceVersion or version
        else:
            pod = _pods.decode(frame.object)
            self.handler.changed(frame.type, pod)
            version = pod.metadata.resourceVersion or version
        if version.isdigit():
            self.handler.progressed(self.namespace, int(version))
        return version
