"""A small fault-injecting HTTP proxy for the reliability suite (loopback only, threads).

It sits between a client and an upstream HTTP server (bot/sim, the fake Slack) and,
for the requests a `Fault` matches, misbehaves the way real networks and API servers do:

- ``hang``: read the request, never answer (the connection stays open until `stop()`)
- ``delay``: wait `seconds`, then forward
- ``status``: answer `status` itself with a `kind: Status` body (+ `Retry-After`)
- ``cut``: forward, then send the headers and only half of the body, and close
- ``reset``: read the request, then reset the connection (RST)

Unmatched requests are forwarded unchanged (watches are streamed through), except that
`date_shift` moves every response's `Date` header (an API server whose clock is off).
A fault applies from the `nth` matching request on, `times` times (None: always); `hits`
counts how often it fired, so a test can prove the fault really happened.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import BinaryIO
from urllib.parse import urlsplit

import orjson

MAX_HEAD = 64 * 1024
REASONS = {403: "Forbidden", 410: "Expired", 429: "TooManyRequests", 500: "InternalError",
           502: "BadGateway", 503: "ServiceUnavailable", 504: "Timeout"}


@dataclass
class Fault:
    """One misbehaviour, for requests whose "METHOD target" matches `path` (a regex)."""

    action: str  # hang | delay | status | cut | reset
    path: str = ""
    nth: int = 1
    times: int | None = 1
    status: int = 500
    retry_after: str | None = None
    message: str = ""
    seconds: float = 0.0
    seen: int = field(default=0, init=False)
    hits: int = field(default=0, init=False)

    def claims(self, line: str) -> bool:
        """Count a request against this fault; True when the fault applies to it."""
        if not re.search(self.path, line):
            return False
        self.seen += 1
        if self.seen < self.nth or (self.times is not None and self.hits >= self.times):
            return False
        self.hits += 1
        return True


class _Reset(Exception):
    """Internal: end this connection with an RST."""


@dataclass
class _Request:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def line(self) -> str:
        return f"{self.method} {self.target}"


class FaultProxy:
    """Listens on 127.0.0.1:<free port> and forwards to `upstream` (an http:// URL)."""

    def __init__(self, upstream: str, *faults: Fault) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.faults: list[Fault] = list(faults)
        self.requests: list[tuple[float, str]] = []  # (monotonic arrival, "METHOD target")
        self.date_shift: timedelta | None = None  # moves the upstream's clock (Date header)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self._thread = threading.Thread(target=self._accept, name="fault-proxy", daemon=True)

    # ---- lifecycle --------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close everything, including hung connections; returns promptly."""
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._listener.close()
        with self._lock:
            for sock in list(self._sockets):
                _close(sock)
        self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def lines(self) -> list[str]:
        return [line for _, line in self.requests]

    # ---- serving ----------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._sockets.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True,
                             name="fault-proxy-conn").start()

    def _serve(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        reset = False
        try:
            while not self._stop.is_set():
                request = _read_request(reader)
                if request is None:
                    return
                with self._lock:
                    self.requests.append((time.monotonic(), request.line))
                    fault = next((f for f in self.faults if f.claims(request.line)), None)
                if not self._answer(conn, request, fault):
                    return
        except _Reset:
            reset = True
        except OSError:
            return
        finally:
            with self._lock:
                self._sockets.discard(conn)
            reader.close()
            if reset:
                conn.close()
            else:
                _close(conn)

    def _answer(self, conn: socket.socket, request: _Request, fault: Fault | None) -> bool:
        """Answer one request; False when the connection must end."""
        action = fault.action if fault is not None else "forward"
        if action == "hang":
            self._stop.wait()
            return False
        if action == "reset":  # linger 0 + close without shutdown sends an RST
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raise _Reset
        if action == "status":
            assert fault is not None
            body = orjson.dumps({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": fault.message or f"injected {fault.status}",
                "reason": REASONS.get(fault.status, "InternalError"), "code": fault.status})
            extra = [("Retry-After", fault.retry_after)] if fault.retry_after else []
            conn.sendall(_head(fault.status, REASONS.get(fault.status, "Error"),
                               [("Content-Type", "application/json"), *extra], len(body))
                         + body)
            return True
        if action == "delay":
            assert fault is not None
            if self._stop.wait(fault.seconds):
                return False
        if "watch=" in request.target:
            self._stream(conn, request)
            return False
        status, reason, headers, body = self._fetch(request)
        if action == "cut":
            conn.sendall(_head(status, reason, headers, len(body)) + body[: len(body) // 2])
            conn.shutdown(socket.SHUT_RDWR)
            return False
        conn.sendall(_head(status, reason, headers, len(body)) + body)
        return True

    def _upstream(self, request: _Request) -> tuple[http.client.HTTPConnection,
                                                    http.client.HTTPResponse]:
        upstream = http.client.HTTPConnection(*self.upstream, timeout=60)
        headers = {k: v for k, v in request.headers
                   if k.lower() not in ("connection", "keep-alive", "content-length")}
        try:
            upstream.request(request.method, request.target, body=request.body or None,
                             headers=headers)
            return upstream, upstream.getresponse()
        except BaseException:
            upstream.close()
            raise

    def _fetch(self, request: _Request) -> tuple[int, str, list[tuple[str, str]], bytes]:
        upstream, response = self._upstream(request)
        try:
            body = response.read()
        finally:
            response.close()
            upstream.close()
        headers = self._shifted([(k, v) for k, v in response.getheaders() if k.lower()
                                 not in ("content-length", "transfer-encoding", "connection")])
        return response.status, response.reason, headers, body

    def _shifted(self, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The Date header moved by `date_shift`: an API server whose clock is off."""
        shift = self.date_shift
        if shift is None:
            return headers
        return [(k, format_datetime(parsedate_to_datetime(v) + shift, usegmt=True)
                 if k.lower() == "date" else v) for k, v in headers]

    def _stream(self, conn: socket.socket, request: _Request) -> None:
        upstream, response = self._upstream(request)
        headers = self._shifted([(k, v) for k, v in response.getheaders() if k.lower()
                                 not in ("content-length", "transfer-encoding", "connection")])
        head = [f"HTTP/1.1 {response.status} {response.reason}",
                *(f"{k}: {v}" for k, v in headers),
                "Transfer-Encoding: chunked", "Connection: close"]
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        try:
            while not self._stop.is_set():
                chunk = response.read1(65536)
                if not chunk:
                    break
                conn.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            conn.sendall(b"0\r\n\r\n")
        finally:
            response.close()
            upstream.close()


def _read_request(stream: BinaryIO) -> _Request | None:
    line = stream.readline(MAX_HEAD)
    if not line:
        return None
    method, target, _ = line.decode("latin-1").split(" ", 2)
    headers: list[tuple[str, str]] = []
    while True:
        raw = stream.readline(MAX_HEAD)
        if raw in (b"\r\n", b"\n", b""):
            break
        name, _, value = raw.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    length = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
    body = stream.read(length) if length else b""
    return _Request(method, target, headers, body)


def _head(status: int, reason: str, headers: list[tuple[str, str]], length: int) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers),
             f"Content-Length: {length}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
