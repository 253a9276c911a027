"""The simulated API server over real HTTP (threaded stdlib server, HTTP/1.1 keep-alive).

What it answers is `bot.sim.api.SimApi`; this module only speaks HTTP: request lines and
headers in, status, headers and bodies out, watches as chunked transfer encoding, the
`Date` header from the simulated clock. The official client and `kubectl` both work
against it. As a runtime `Service` (`start`/`stop(deadline)`), or on its own
(`serve_forever`, for `restart-patrol sim`).
"""

from __future__ import annotations

import contextlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from bot.runtime import Runtime
from bot.sim.api import SimApi, SimRequest, SimResponse
from bot.sim.world import World


class SimServer:
    """A simulated API server bound to 127.0.0.1:port, answering with `api` (default: a
    plain `SimApi` over `world`)."""

    name = "sim"

    def __init__(self, world: World, host: str = "127.0.0.1", port: int = 0,
                 token: str | None = None, *, api: SimApi | None = None,
                 runtime: Runtime | None = None) -> None:
        self.world = world
        self.api = api or SimApi(world, token=token)
        self.runtime = runtime
        handler = type("BoundHandler", (_Handler,), {"api": self.api})
        server = type("SimHTTPServer", (ThreadingHTTPServer,), {"request_queue_size": 128})
        self.httpd = server((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        """Serve from a thread: the runtime's when there is one (then `stop` comes with
        the runtime's), else a daemon of its own (tests)."""
        # poll_interval bounds how long stop() waits (the default 0.5 s, in every test)
        if self.runtime is not None:
            self._thread = self.runtime.thread("sim", lambda: self.httpd.serve_forever(0.05))
        else:
            self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                            name="rp-sim", daemon=True)
            self._thread.start()
        return self

    def stop(self, deadline: float | None = None) -> None:
        """Stop serving: open watch streams end, the socket closes."""
        self.api.stopping.set()
        with self.world.changed:
            self.world.changed.notify_all()
        if self._thread is not None:
            self.httpd.shutdown()
        self.httpd.server_close()

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def kubeconfig(self, context: str | None = None) -> str:
        """A kubeconfig (YAML) pointing at this server; the context is the cluster's name."""
        context = context or self.world.cluster_name
        user = f"    token: {self.api.token}\n" if self.api.token else "    {}\n"
        return (
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: {context}\n  cluster:\n    server: {self.url}\n"
            f"contexts:\n- name: {context}\n  context:\n    cluster: {context}\n"
            f"    user: {context}\n    namespace: default\n"
            f"current-context: {context}\n"
            f"users:\n- name: {context}\n  user:\n{user}"
        )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    api: SimApi
    server_version = "restart-patrol-sim"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms stalls

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request lines are kept in `api.requests` instead."""

    def date_time_string(self, timestamp: float | None = None) -> str:
        return self.api.date()

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = SimRequest(method, self.path, dict(self.headers.items()), body)
        response = self.api.handle(request)
        try:
            if response.stream is None:
                self._send(response)
            else:
                self._stream(request, response)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _send(self, response: SimResponse) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Audit-Id", "sim")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _stream(self, request: SimRequest, response: SimResponse) -> None:
        assert response.stream is not None
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for chunk in response.stream:
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        finally:
            self.api.cancel_watch(request)
            with contextlib.suppress(Exception):
                response.stream.close()  # type: ignore[attr-defined]
        self.close_connection = True
