"""The simulated API server with the knobs tests turn: RBAC-style refusals, a gate that
holds `pods/log` answers, namespaces served interleaved, and a count of the statuses
served. Test-only: the product's `bot.sim` has none of these; this subclasses its
`SimApi.serve`/`list_order` seams and wraps `SimServer`.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable

from bot.sim.api import ApiError, Route, SimApi, SimRequest, SimResponse
from bot.sim.server import SimServer
from bot.sim.world import Key, Obj, World

GATE_WAIT = 120.0  # seconds a gated log answer waits at most (a test's timeout)


class FaultySimApi(SimApi):
    """`SimApi` plus refusals, a log gate, interleaving and status counts (all off)."""

    def __init__(self, world: World, *, token: str | None = None) -> None:
        super().__init__(world, token=token)
        # RBAC-style refusals by resource, e.g. {"pods/log"}: every namespace gets a 403
        self.forbidden_resources: set[str] = set()
        self.forbidden_namespaces: set[str] = set()
        self.log_gate: threading.Event | None = None  # when set, logs wait for it
        self.log_waiting = 0  # log answers waiting at the gate now
        # Serve all-namespace lists round-robin across namespaces (as a server merging
        # several sources may), for clients that assume namespace order.
        self.interleave_namespaces = False
        self.statuses: Counter[int] = Counter()  # statuses served, e.g. to prove a 410
        self._lock = threading.Lock()

    def handle(self, request: SimRequest) -> SimResponse:
        response = super().handle(request)
        with self._lock:
            self.statuses[response.status] += 1
        return response

    def serve(self, request: SimRequest, route: Route) -> SimResponse:
        rtype, resource = route.rtype, route.resource
        if rtype is not None and resource is not None:
            verb = "list" if route.name is None else "get"
            if resource in self.forbidden_resources:
                name = route.name
                raise ApiError(403, "Forbidden", (
                    f'{rtype.plural} "{name}" is forbidden: ' if name else
                    f"{rtype.plural} is forbidden: ") + (
                    f'User "system:serviceaccount:restart-patrol:restart-patrol" cannot {verb} '
                    f'resource "{resource}" in API group "{rtype.group}" in the namespace '
                    f'"{route.namespace}"'), details={"name": name or "", "kind": rtype.plural})
            if route.namespace is not None and route.namespace in self.forbidden_namespaces:
                raise ApiError(403, "Forbidden", (
                    f'{rtype.plural} is forbidden: User "system:serviceaccount:restart-patrol:'
                    f'restart-patrol" cannot {verb} resource "{rtype.plural}" in API group '
                    f'"{rtype.group}" in the namespace "{route.namespace}"'),
                    details={"kind": rtype.plural})
            gate = self.log_gate
            if resource == "pods/log" and gate is not None:
                with self._lock:
                    self.log_waiting += 1
                try:
                    gate.wait(GATE_WAIT)
                finally:
                    with self._lock:
                        self.log_waiting -= 1
        return super().serve(request, route)

    def list_order(self, items: Iterable[tuple[Key, Obj, bytes]], resource: str,
                   namespace: str | None, start: Key | None
                   ) -> tuple[Iterable[tuple[Key, Obj, bytes]], bool]:
        if not self.interleave_namespaces or namespace is not None:
            return super().list_order(items, resource, namespace, start)
        return round_robin(self.world.items(resource), start), False


def round_robin(items: Iterable[tuple[Key, Obj, bytes]],
                start: Key | None) -> list[tuple[Key, Obj, bytes]]:
    """Items ordered first of each namespace, then second of each, …; from `start` on."""
    rank: dict[str, int] = {}
    ordered: list[tuple[tuple[int, str, str], tuple[Key, Obj, bytes]]] = []
    for item in items:
        ns = item[0][0]
        rank[ns] = rank.get(ns, -1) + 1
        ordered.append(((rank[ns], ns, item[0][1]), item))
    ordered.sort(key=lambda pair: pair[0])
    keys = [item[0] for _, item in ordered]
    first = keys.index(start) if start is not None and start in keys else 0
    return [item for _, item in ordered[first:]]


class FaultySimServer(SimServer):
    """A `SimServer` answering with a `FaultySimApi`; its knobs are reachable on the
    server as tests have always used them (`sim.server.forbidden_resources.add(…)`)."""

    api: FaultySimApi

    def __init__(self, world: World, token: str | None = None, port: int = 0) -> None:
        super().__init__(world, port=port, api=FaultySimApi(world, token=token))

    @property
    def forbidden_resources(self) -> set[str]:
        return self.api.forbidden_resources

    @property
    def forbidden_namespaces(self) -> set[str]:
        return self.api.forbidden_namespaces

    @property
    def statuses(self) -> Counter[int]:
        return self.api.statuses

    @property
    def requests(self) -> list[str]:
        return list(self.api.requests)

    @property
    def log_gate(self) -> threading.Event | None:
        return self.api.log_gate

    @log_gate.setter
    def log_gate(self, gate: threading.Event | None) -> None:
        self.api.log_gate = gate

    @property
    def interleave_namespaces(self) -> bool:
        return self.api.interleave_namespaces

    @interleave_namespaces.setter
    def interleave_namespaces(self, on: bool) -> None:
        self.api.interleave_namespaces = on
