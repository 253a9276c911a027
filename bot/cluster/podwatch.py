"""List+watch of pods through the raw API path (msgspec), for the flight recorder.

One `PodWatch` covers one scope (a namespace, or all namespaces): it lists the pods
(paginated, consistent at the list's resourceVersion), then watches from that version
with bookmarks, following each event's resourceVersion. Both go through the cluster's one
request function (`KubeApi.list_pages`, `KubeApi.watch_pods`), so the watch is bounded by
KUBE_CONNECT_TIMEOUT and a read timeout like every other call. A stream that ends (the
server's `timeoutSeconds`, a dropped connection) resumes from the last version seen; a
410 Gone (version compacted away) lists again. The handler sees every list in full and
every change, in order; it compares restart counts itself, so a re-list neither loses
nor repeats a restart.

Backoff (0.5 s doubling to 30 s): a failure is an error, and also a stream that ends
without having been useful — no event and shorter than `HEALTHY_STREAM` (a "200, empty
body" answer would otherwise be a clean end and a busy loop). A useful stream (events
delivered, or long-lived) resets the backoff, even when it ends by breaking, so a few
connection resets cost half a second each, not a growing wait. Waits above `LOUD_WAIT`
are logged as warnings with their cause, once per wait.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote

import msgspec

from bot.cluster import wire
from bot.cluster.errors import translated
from bot.errors import ClusterError, PatrolError

if TYPE_CHECKING:
    from bot.cluster.api import KubeApi
    from bot.cluster.transport import Stream

log = logging.getLogger("restart_patrol.watch")

WATCH_SECONDS = 300  # server-side timeout of one watch request; then it resumes
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
HEALTHY_STREAM = 30.0  # seconds: a watch that lived this long was useful, events or not
LOUD_WAIT = 4.0  # seconds: longer waits are logged as warnings
# Pods a list page: smaller than a patrol's (500). The recorder lists in a process that
# stays up, beside its capture workers; a page of 500 realistic pods is 4.5 MB of JSON,
# three of them in flight at once (read, queued, in use) and each read twice its size
# while its chunks are joined. More requests (1,000 for 100k pods), a lower high-water mark.
PAGE_SIZE = 100


class PodLabels(msgspec.Struct, frozen=True, gc=False):
    pod_template_hash: str | None = msgspec.field(default=None, name="pod-template-hash")


class PodMeta(msgspec.Struct, frozen=True, gc=False):
    name: str = ""
    namespace: str = ""
    uid: str = ""
    resourceVersion: str = ""
    creationTimestamp: str | None = None
    ownerReferences: tuple[wire.OwnerReference, ...] = ()
    labels: PodLabels = PodLabels()


class WatchedPod(msgspec.Struct, frozen=True, gc=False):
    """The fields of a pod the recorder reads; the rest is skipped while decoding."""

    metadata: PodMeta = PodMeta()
    spec: wire.PodSpec = wire.PodSpec()
    status: wire.PodStatus = wire.PodStatus()


class WatchedPodList(msgspec.Struct, frozen=True, gc=False):
    metadata: wire.ListMeta = wire.ListMeta()
    items: tuple[WatchedPod, ...] = ()  # tuples: untracked by the GC (bot.cluster.wire)


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
    """List+watch of one scope's pods until `stop()`; run `run()` in its own (runtime)
    thread."""

    def __init__(self, cluster: KubeApi, namespace: str | None, handler: PodHandler,
                 *, watch_seconds: int = WATCH_SECONDS,
                 healthy_stream: float = HEALTHY_STREAM) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.handler = handler
        self.watch_seconds = watch_seconds
        self.healthy_stream = healthy_stream
        self.stopping = threading.Event()
        self.lists = 0  # completed lists (the first one included)
        self.relists_after_gone = 0
        self.reconnects = 0
        self._stream: Stream | None = None
        self._events = 0  # changes delivered by the current stream
        self._lock = threading.Lock()
        scope = "" if namespace is None else f"/namespaces/{quote(namespace, safe='')}"
        self.path = f"/api/v1{scope}/pods"
        self.what = "pods in all namespaces" if namespace is None else f"pods in {namespace}"

    def stop(self) -> None:
        """Stop, unblocking a read in progress (the stream is shut down)."""
        self.stopping.set()
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.shutdown()

    def run(self) -> None:
        """List, then watch; resume, re-list or back off until stopped."""
        version: str | None = None
        delay = BACKOFF_FIRST
        while not self.stopping.is_set():
            opened = time.monotonic()
            self._events = 0
            cause: str
            try:
                if version is None:
                    version = self._list()
                    opened = time.monotonic()
                version = self._watch(version)
                if self._useful(opened):
                    delay = BACKOFF_FIRST
                    continue
                cause = "the watch ended at once without an event"
            except Gone:
                log.info("watch of %s: resourceVersion expired (410); listing again", self.what)
                self.relists_after_gone += 1
                version = None
                if self._useful(opened):
                    continue
                cause = "the watch's resourceVersion expired (410) at once"
            except ClusterError as exc:
                if self.stopping.is_set():
                    return
                self.reconnects += 1
                if self._useful(opened):  # a long or busy stream broke: resume at once-ish
                    delay = BACKOFF_FIRST
                cause = f"watch failed: {exc}"
            except PatrolError as exc:
                # The handler could not keep what it saw (its database, say): list again
                # after a pause, so the comparison of counts finds those restarts again.
                version = None
                cause = f"recording failed: {exc}; listing again"
            self._back_off(delay, cause)
            delay = min(delay * 2, BACKOFF_MAX)

    def _useful(self, opened: float) -> bool:
        return self._events > 0 or time.monotonic() - opened >= self.healthy_stream

    def _back_off(self, delay: float, cause: str) -> None:
        if self.stopping.is_set():
            return
        level = logging.WARNING if delay >= LOUD_WAIT else logging.INFO
        log.log(level, "watch of %s: %s; retrying in %.1f s", self.what, cause, delay)
        self.stopping.wait(delay)

    # ---- list -----------------------------------------------------------------------
    def _list(self) -> str:
        version = ""

        def pods() -> Iterator[WatchedPod]:
            nonlocal version
            for page in self.cluster.list_pages(f"list {self.what}", self.path,
                                                WatchedPodList, page_size=PAGE_SIZE):
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
    def _watch(self, version: str) -> str:
        """One watch request; returns the last version seen when the stream ends."""
        try:
            stream = self.cluster.watch_pods(self.namespace, version, self.watch_seconds)
        except ClusterError as exc:
            if exc.status == 410:
                raise Gone from None
            raise
        with self._lock:
            self._stream = stream
        try:
            if self.stopping.is_set():
                stream.shutdown()
            buffer = b""
            with translated(f"watch {self.what}", self.cluster.server):
                for chunk in stream.chunks():
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if line.strip():
                            version = self._frame(line, version)
                if buffer.strip() and not self.stopping.is_set():
                    version = self._frame(buffer, version)
        finally:
            with self._lock:
                self._stream = None
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
            self._events += 1
            self.handler.changed(frame.type, pod)
            version = pod.metadata.resourceVersion or version
        if version.isdigit():
            self.handler.progressed(self.namespace, int(version))
        return version
