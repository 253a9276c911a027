"""The pod watch's backoff (issue 14.5) against a tiny API server of this test's own:
a watch answered "200, empty body" is a failure (the backoff grows, bounded requests, a
warning with its cause past a few seconds), and a stream that was useful — it delivered
events, or lived long enough — resets the backoff even when it ends by a reset."""

from __future__ import annotations

import itertools
import logging
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from bot.cluster.client import connect
from bot.cluster.podwatch import BACKOFF_FIRST, LOUD_WAIT, PodWatch, WatchedPod
from bot.runtime import Runtime
from bot.settings import load_settings
from tests.reliability.conftest import Held

WAIT = 30.0


class TinyApi(ThreadingHTTPServer):
    """Lists answer an empty PodList; watches answer as `mode` says. Watch arrivals are
    kept (monotonic)."""

    daemon_threads = True

    def __init__(self, mode: str, hold: float = 0.0) -> None:
        self.mode = mode
        self.hold = hold
        self.watches: list[float] = []
        self.rv = 100
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: TinyApi

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        api = self.server
        if "watch=true" not in self.path:
            body = orjson.dumps({"kind": "PodList", "metadata": {"resourceVersion": "100"},
                                 "items": []})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        api.watches.append(time.monotonic())
        if api.mode == "empty":  # "200, empty body": a clean end at once
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if api.mode == "event-then-reset":
            api.rv += 1
            frame = orjson.dumps({"type": "MODIFIED", "object": {"metadata": {
                "name": "p", "namespace": "ns", "uid": "u",
                "resourceVersion": str(api.rv)}}}) + b"\n"
            self.wfile.write(f"{len(frame):x}\r\n".encode() + frame + b"\r\n")
            self.wfile.flush()
        time.sleep(api.hold)  # "quiet-then-reset": a stream that lives, without events
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   struct.pack("ii", 1, 0))
        self.connection.close()  # RST: the stream breaks mid-way
        self.close_connection = True


class Handler:
    def __init__(self) -> None:
        self.changes = 0

    def listed(self, scope: str | None, pods: Iterator[WatchedPod]) -> None:
        for _ in pods:
            pass

    def changed(self, event: str, pod: WatchedPod) -> None:
        self.changes += 1

    def progressed(self, scope: str | None, resource_version: int) -> None:
        pass


def _kubeconfig(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "tiny.kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: tiny\n  cluster:\n    server: {url}\n"
        "contexts:\n- name: tiny\n  context:\n    cluster: tiny\n    user: tiny\n"
        "current-context: tiny\nusers:\n- name: tiny\n  user: {}\n")
    return path


@contextmanager
def _watching(tmp_path: Path, api: TinyApi, **options: float) -> Iterator[PodWatch]:
    server = threading.Thread(target=api.serve_forever, args=(0.05,), daemon=True)
    server.start()
    runtime = Runtime(stop_seconds=5)
    cluster = connect(load_settings({"KUBECONFIG": str(_kubeconfig(tmp_path, api.url)),
                                     "KUBE_RETRIES": "0"}), runtime=runtime)
    watch = PodWatch(cluster, None, Handler(), watch_seconds=30, **options)  # type: ignore[arg-type]
    runtime.thread("watch", watch.run)
    try:
        yield watch
    finally:
        watch.stop()
        runtime.stop()
        cluster.close()
        api.shutdown()
        api.server_close()


def _until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _waits(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records
            if r.name == "restart_patrol.watch" and "retrying in" in r.getMessage()]


def test_an_empty_watch_answer_backs_off_and_says_why(tmp_path: Path, held: Held,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "restart_patrol.watch")
    api = TinyApi("empty")
    with _watching(tmp_path, api):
        _until(lambda: any(level == logging.WARNING for level, _ in _waits(caplog)),
               "a warning about a long wait")
    arrivals = api.watches
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    # each gap at least the doubled backoff (sleeps never end early): 0.5, 1, 2 s
    assert len(arrivals) >= 4 and all(gap >= BACKOFF_FIRST * 2 ** i
                                      for i, gap in enumerate(gaps[:3])), gaps
    loud = [message for level, message in _waits(caplog) if level == logging.WARNING]
    assert "the watch ended at once without an event; retrying in 4.0 s" in loud[0]
    assert all(float(m.rsplit("retrying in ", 1)[1].split()[0]) >= LOUD_WAIT for m in loud)
    held("a watch answered \"200, empty body\" again and again",
         f"backoff 0.5 → 1 → 2 → 4 s ({len(arrivals)} watch requests, not thousands); "
         "a warning names the cause")


@pytest.mark.parametrize(("mode", "options", "why"), [
    ("event-then-reset", {}, "it delivered an event"),
    ("quiet-then-reset", {"healthy_stream": 0.2}, "it lived long enough"),
])
def test_a_useful_stream_that_breaks_resets_the_backoff(
        tmp_path: Path, held: Held, caplog: pytest.LogCaptureFixture, mode: str,
        options: dict[str, float], why: str) -> None:
    caplog.set_level(logging.INFO, "restart_patrol.watch")
    api = TinyApi(mode, hold=0.4 if mode == "quiet-then-reset" else 0.0)
    with _watching(tmp_path, api, **options):
        _until(lambda: len(_waits(caplog)) >= 4, "four broken streams")
    delays = [float(m.rsplit("retrying in ", 1)[1].split()[0]) for _, m in _waits(caplog)]
    assert delays[:4] == [BACKOFF_FIRST] * 4, delays  # before: 0.5, 1, 2, 4
    held(f"watch streams reset mid-way again and again ({why})",
         "each reconnect after 0.5 s: the backoff resets after a useful stream")
