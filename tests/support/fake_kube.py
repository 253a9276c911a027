"""An in-memory Kubernetes API for fast tests: the product's `ClusterClient` (a `KubeApi`)
over a wire that hands each request to the simulator's `SimApi` in-process — no socket,
no HTTP, no thread.

Everything above the wire is the product's code (paging, 410 restarts, decoding, error
translation, watch framing, lease concurrency), and below it the simulator answers as it
does over HTTP, so the fake behaves like the HTTP path by construction;
tests/unit/test_fake_kube.py checks that on what the application layers rely on. What it
cannot show: timeouts, retries of broken connections, TLS — the sim-over-HTTP and the
fault-proxy tiers cover those.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

import orjson

from bot.cluster.client import ClusterClient
from bot.cluster.transport import Call, Exchange, Limits, Transport
from bot.runtime import Runtime
from bot.sim.api import SimApi, SimRequest, SimResponse
from bot.sim.world import World

FAKE_SERVER = "memory://sim"


class _Exchange:
    def __init__(self, api: SimApi, request: SimRequest, response: SimResponse) -> None:
        self._api = api
        self._request = request
        self._response = response
        self.status = response.status
        self.reason = ""
        self._date = api.date()

    def header(self, name: str) -> str | None:
        return self._date if name.lower() == "date" else None

    def chunks(self) -> Iterator[bytes]:
        if self._response.stream is None:
            if self._response.body:
                yield self._response.body
            return
        for chunk in self._response.stream:
            if self._request.cancelled.is_set():
                return
            yield chunk

    def release(self) -> None:
        self._api.cancel_watch(self._request)

    def abort(self) -> None:
        self._api.cancel_watch(self._request)


class MemoryWire:
    """A `Wire` whose exchanges are `SimApi.handle` calls."""

    def __init__(self, api: SimApi) -> None:
        self.api = api
        self.server = FAKE_SERVER

    def exchange(self, call: Call, timeout: tuple[float, float]) -> Exchange:
        query = {k: str(v) for k, v in (call.query or {}).items() if v is not None}
        target = call.path + (f"?{urlencode(query)}" if query else "")
        headers = {"Accept": call.accept}
        if self.api.token:
            headers["Authorization"] = f"Bearer {self.api.token}"
        body = orjson.dumps(call.body) if call.body is not None else b""
        request = SimRequest(call.method, target, headers, body)
        return _Exchange(self.api, request, self.api.handle(request))

    def close(self) -> None:
        pass


def fake_cluster(world: World | SimApi, name: str | None = None, *,
                 runtime: Runtime | None = None, page_size: int = 500,
                 limits: Limits | None = None) -> ClusterClient:
    """A `KubeApi` over the simulated `world` (or a given `SimApi`, e.g. a faulty one)."""
    api = world if isinstance(world, SimApi) else SimApi(world)
    return ClusterClient(Transport(MemoryWire(api), limits or Limits(retries=0)),
                         name or api.world.cluster_name, page_size, runtime=runtime)
