"""The simulated Kubernetes API, apart from HTTP: requests in, responses out.

`SimApi.handle(SimRequest) -> SimResponse` serves discovery, lists with `limit`/`continue`
(410 Expired with a fresh token after compaction), label/field selectors, single GETs,
Table output for kubectl, `pods/log` as text/plain, watches as newline-delimited JSON
chunks (ERROR 410 when a resourceVersion is too old; BOOKMARKs when asked), leases
(create/replace with optimistic concurrency) and `kind: Status` errors.
`/sim/advance?seconds=N` moves the simulated clock, `/sim/compact` expires old
resourceVersions and continue tokens, `/sim/drop-watches` ends open watch streams.

`bot.sim.server.SimServer` puts it behind a real HTTP server; tests also call it
in-process (tests/support/fake_kube.py), and subclass it to inject refusals or delays
(tests/support/sim_faults.py) by overriding `serve` — the product has no knobs for tests.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import email.utils
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from bot.sim.objects import status_object
from bot.sim.selectors import SelectorError, field_selector, label_selector, parse_bool
from bot.sim.tables import to_table
from bot.sim.world import (
    RESOURCE_BY_PATH,
    RESOURCES,
    Conflict,
    Gone,
    Key,
    Obj,
    ResourceType,
    World,
    format_time,
)

REQUEST_LOG = 1000  # request lines kept (the latest), for debugging and fidelity checks

SERVER_VERSION = {
    "major": "1", "minor": "31", "gitVersion": "v1.31.0-sim", "gitCommit": "restart-patrol-sim",
    "gitTreeState": "clean", "buildDate": "2024-08-13T07:28:49Z", "goVersion": "go1.22.5",
    "compiler": "gc", "platform": "linux/amd64",
}


class ApiError(Exception):
    """Raised inside handlers; becomes a `kind: Status` body with `code`."""

    def __init__(self, code: int, reason: str, message: str, details: Obj | None = None,
                 meta: Obj | None = None) -> None:
        super().__init__(message)
        self.body = status_object(code, reason, message, details, meta)
        self.code = code


def encode_continue(rv: int, start: Key) -> str:
    raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": list(start)})
    return base64.urlsafe_b64encode(raw).decode()


def decode_continue(token: str) -> tuple[int, Key]:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token.encode()))
        return int(data["rv"]), (str(data["start"][0]), str(data["start"][1]))
    except (binascii.Error, ValueError, KeyError, IndexError, TypeError,
            orjson.JSONDecodeError):
        raise ApiError(400, "BadRequest", f"continue key is not valid: {token[:40]}") from None


def _discovery_resources(group: str, version: str) -> Obj:
    res: list[Obj] = []
    for r in RESOURCES:
        if r.group != group or r.version != version:
            continue
        res.append({"name": r.plural, "singularName": r.kind.lower(), "namespaced": r.namespaced,
                    "kind": r.kind, "verbs": list(r.verbs), "shortNames": list(r.short_names),
                    **({"categories": ["all"]} if r.plural in (
                        "pods", "deployments", "replicasets", "statefulsets", "daemonsets",
                        "jobs", "cronjobs") else {})})
        if r.plural == "pods":
            res.append({"name": "pods/log", "singularName": "", "namespaced": True,
                        "kind": "Pod", "verbs": ["get"]})
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": version if not group else f"{group}/{version}", "resources": res}


def _groups() -> Obj:
    names = sorted({r.group for r in RESOURCES if r.group})
    groups = []
    for name in names:
        gv = {"groupVersion": f"{name}/v1", "version": "v1"}
        groups.append({"name": name, "versions": [gv], "preferredVersion": gv})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}




@dataclass(frozen=True, slots=True)
class SimRequest:
    """One API request. `cancelled` ends a watch stream from another thread."""

    method: str
    target: str  # path and query, as on the request line
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    cancelled: threading.Event = field(default_factory=threading.Event)

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


@dataclass(slots=True)
class SimResponse:
    """An answer: a body, or (a watch) a stream of chunks that ends with the watch."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    stream: Iterator[bytes] | None = None


@dataclass(frozen=True, slots=True)
class Route:
    """Where a request goes: its path segments and query, and for API resources the
    resource type, namespace, name and subresource (`pods/log`)."""

    method: str
    segments: tuple[str, ...]
    query: Mapping[str, str]
    rtype: ResourceType | None = None
    namespace: str | None = None
    name: str | None = None
    sub: str | None = None

    @property
    def resource(self) -> str | None:
        """The resource as RBAC names it ("pods", "pods/log"), or None."""
        if self.rtype is None:
            return None
        return f"{self.rtype.plural}/{self.sub}" if self.sub else self.rtype.plural


def parse_route(method: str, target: str) -> Route:
    parts = urlsplit(target)
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    seg = tuple(s for s in parts.path.split("/") if s)
    if seg[:2] == ("api", "v1"):
        group, version, rest = "", "v1", seg[2:]
    elif len(seg) >= 4 and seg[0] == "apis":
        group, version, rest = seg[1], seg[2], seg[3:]
    else:
        return Route(method, seg, query)
    namespace: str | None = None
    if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) != 2:
        namespace, rest = rest[1], rest[2:]
    if not rest:
        return Route(method, seg, query)
    rtype = RESOURCE_BY_PATH.get((group, version, rest[0]))
    return Route(method, seg, query, rtype, namespace, rest[1] if len(rest) > 1 else None,
                 rest[2] if len(rest) > 2 else None)


class SimApi:
    """The simulated API server's behaviour over one World (thread-safe)."""

    def __init__(self, world: World, *, token: str | None = None,
                 cache_pages: bool = False) -> None:
        self.world = world
        self.token = token
        # Serve each list page from bytes rendered once (as an API server's watch cache
        # does), so a benchmark's floor is the client's cost, not the simulator's.
        self.cache_pages = cache_pages
        self._pages: dict[str, bytes] = {}
        self._pages_rv = -1
        self.requests: deque[str] = deque(maxlen=REQUEST_LOG)
        self.stopping = threading.Event()  # ends every watch stream (server shutdown)

    def date(self) -> str:
        """The Date header: the *simulated* clock, as a real server's carries its own."""
        return email.utils.format_datetime(self.world.now, usegmt=True)

    def handle(self, request: SimRequest) -> SimResponse:
        """Answer one request (errors as `kind: Status` bodies)."""
        self.requests.append(f"{request.method} {request.target}")
        route = parse_route(request.method, request.target)
        try:
            if self.token and route.segments[:1] != ("sim",) and request.header(
                    "Authorization") != f"Bearer {self.token}":
                raise ApiError(401, "Unauthorized", "Unauthorized")
            return self.serve(request, route)
        except ApiError as err:
            return SimResponse(err.code, orjson.dumps(err.body))
        except SelectorError as err:
            return SimResponse(400, orjson.dumps(ApiError(400, "BadRequest", str(err)).body))

    def serve(self, request: SimRequest, route: Route) -> SimResponse:
        """Route a request (tests override this to refuse or delay some)."""
        seg, query, method = route.segments, route.query, route.method
        if seg == ("version",):
            return _json(200, SERVER_VERSION)
        if seg in (("healthz",), ("readyz",), ("livez",)):
            return SimResponse(200, b"ok", "text/plain")
        if seg[:1] == ("sim",):
            return self._control(method, seg[1:], query)
        if seg == ("api",):
            host = request.header("Host") or "127.0.0.1"
            return _json(200, {"kind": "APIVersions", "versions": ["v1"],
                               "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                               "serverAddress": host}]})
        if seg == ("apis",):
            return _json(200, _groups())
        if seg == ("api", "v1"):
            return _json(200, _discovery_resources("", "v1"))
        if len(seg) == 3 and seg[0] == "apis" and any(
                r.group == seg[1] and r.version == seg[2] for r in RESOURCES):
            return _json(200, _discovery_resources(seg[1], seg[2]))
        rtype, namespace, name, sub = route.rtype, route.namespace, route.name, route.sub
        if rtype is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if method == "GET" and name is None:
            if parse_bool("watch", query.get("watch")):
                return self._watch(request, rtype, namespace, query)
            return self._list(request, rtype, namespace, query)
        if method == "GET" and name is not None and sub is None:
            return self._get(request, rtype, namespace or "", name)
        if method == "GET" and sub == "log" and rtype.plural == "pods":
            return self._log(namespace or "", name or "", query)
        if rtype.plural == "leases" and method in ("POST", "PUT", "DELETE"):
            return self._write_lease(method, namespace or "", name, request.body)
        raise ApiError(405, "MethodNotAllowed",
                       "the server does not allow this method on the requested resource")

    def list_order(self, items: Iterable[tuple[Key, Obj, bytes]], resource: str,
                   namespace: str | None, start: Key | None
                   ) -> tuple[Iterable[tuple[Key, Obj, bytes]], bool]:
        """The order a list serves its items in: key order from `start` (etcd's). Returns
        the items and whether that order is key order (for `remainingItemCount`)."""
        return items, True

    # ---- control --------------------------------------------------------------------
    def _control(self, method: str, seg: tuple[str, ...], query: Mapping[str, str]
                 ) -> SimResponse:
        world = self.world
        if seg == ("advance",) and method == "POST":
            try:
                seconds = float(query.get("seconds", "0"))
            except ValueError:
                raise ApiError(400, "BadRequest", "seconds must be a number") from None
            world.advance(timedelta(seconds=seconds))
        elif seg == ("compact",) and method == "POST":
            world.compact()
        elif seg == ("drop-watches",) and method == "POST":
            world.drop_watches()
        elif seg != ("now",):
            raise ApiError(404, "NotFound", "unknown simulator control endpoint")
        return _json(200, {"now": format_time(world.now),
                           "resourceVersion": str(world.resource_version)})

    # ---- reads ----------------------------------------------------------------------
    def _get(self, request: SimRequest, rtype: ResourceType, namespace: str,
             name: str) -> SimResponse:
        obj = self.world.get(rtype.plural, namespace if rtype.namespaced else "", name)
        if obj is None:
            qualified = f"{rtype.plural}.{rtype.group}" if rtype.group else rtype.plural
            details = {"name": name, "kind": rtype.plural}
            if rtype.group:
                details["group"] = rtype.group
            raise ApiError(404, "NotFound", f'{qualified} "{name}" not found', details=details)
        if _wants_table(request):
            meta = {"resourceVersion": obj["metadata"]["resourceVersion"]}
            return _json(200, to_table(rtype.plural, [obj], self.world.now, meta))
        return _json(200, {"kind": rtype.kind, "apiVersion": rtype.api_version, **obj})

    def _list(self, request: SimRequest, rtype: ResourceType, namespace: str | None,
              query: Mapping[str, str]) -> SimResponse:
        if not self.cache_pages or _wants_table(request):
            return SimResponse(200, self._render_list(request, rtype, namespace, query))
        key = f"{rtype.plural} {namespace} {sorted(query.items())}"
        with self.world.lock:
            if self._pages_rv != self.world.resource_version:
                self._pages, self._pages_rv = {}, self.world.resource_version
            body = self._pages.get(key)
        if body is None:
            body = self._render_list(request, rtype, namespace, query)
            with self.world.lock:
                self._pages[key] = body
        return SimResponse(200, body)

    def _render_list(self, request: SimRequest, rtype: ResourceType, namespace: str | None,
                     query: Mapping[str, str]) -> bytes:
        world = self.world
        labels = label_selector(query.get("labelSelector"))
        fields = field_selector(rtype.plural, query.get("fieldSelector"))
        filtered = bool(query.get("labelSelector") or query.get("fieldSelector"))
        try:
            limit = int(query.get("limit") or 0)
        except ValueError:
            raise ApiError(400, "BadRequest", "limit must be an integer") from None
        start: Key | None = None
        rv = world.resource_version
        token = query.get("continue")
        if token:
            token_rv, start = decode_continue(token)
            if token_rv < world.compacted_rv:
                fresh = encode_continue(world.resource_version, start)
                raise ApiError(410, "Expired", (
                    "The provided continue parameter is too old to display a consistent list "
                    "result. You can start a new list without the continue parameter, or use "
                    "the continue token in this response to retrieve the remainder of the "
                    "results. Continuing with the provided token results in an inconsistent "
                    "list - objects that were created, modified, or deleted between the time "
                    "the first chunk was returned and now may show up in the list."),
                    meta={"continue": fresh})
            rv = token_rv
        chosen: list[tuple[Key, Obj, bytes]] = []
        next_key: Key | None = None
        scope = namespace if rtype.namespaced else None
        items, key_order = self.list_order(world.items(rtype.plural, scope, start),
                                           rtype.plural, scope, start)
        for key, obj, data in items:
            if filtered and not (labels(obj) and fields(obj)):
                continue
            if limit and len(chosen) == limit:
                next_key = key
                break
            chosen.append((key, obj, data))
        meta: Obj = {"resourceVersion": str(rv)}
        if next_key is not None:
            meta["continue"] = encode_continue(rv, next_key)
            if not filtered and key_order:
                remaining = world.count(rtype.plural, scope) - (
                    self._position(rtype.plural, scope, next_key))
                meta["remainingItemCount"] = remaining
        if _wants_table(request):
            return orjson.dumps(to_table(rtype.plural, [o for _, o, _ in chosen], world.now,
                                         meta))
        head = orjson.dumps({"kind": rtype.kind + "List", "apiVersion": rtype.api_version,
                             "metadata": meta})
        return head[:-1] + b',"items":[' + b",".join(d for _, _, d in chosen) + b"]}"

    def _position(self, resource: str, namespace: str | None, key: Key) -> int:
        keys = self.world.sorted_keys(resource)
        lo = bisect.bisect_left(keys, (namespace, "")) if namespace is not None else 0
        return bisect.bisect_left(keys, key) - lo

    def _log(self, namespace: str, name: str, query: Mapping[str, str]) -> SimResponse:
        world = self.world
        pod = world.get("pods", namespace, name)
        if pod is None:
            raise ApiError(404, "NotFound", f'pods "{name}" not found',
                           details={"name": name, "kind": "pods"})
        spec = pod["spec"]
        app = [c["name"] for c in spec.get("containers", [])]
        init = [c["name"] for c in spec.get("initContainers", [])]
        eph = [c["name"] for c in spec.get("ephemeralContainers", [])]
        container = query.get("container")
        if not container:
            if len(app) != 1:
                extra = f" or one of the init containers: [{' '.join(init)}]" if init else ""
                raise ApiError(400, "BadRequest", (
                    f"a container name must be specified for pod {name}, choose one of: "
                    f"[{' '.join(app)}]{extra}"))
            container = app[0]
        if container not in app + init + eph:
            raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {name}")
        previous = parse_bool("previous", query.get("previous"))
        timestamps = parse_bool("timestamps", query.get("timestamps"))
        lines = world.log_of(namespace, name, container, previous=previous)
        if previous:
            statuses = (pod["status"].get("containerStatuses", [])
                        + pod["status"].get("initContainerStatuses", [])
                        + pod["status"].get("ephemeralContainerStatuses", []))
            restarted = any(s["name"] == container and s.get("restartCount", 0) > 0
                            and s.get("lastState", {}).get("terminated") for s in statuses)
            if not restarted or lines is None:
                raise ApiError(400, "BadRequest", (
                    f'previous terminated container "{container}" in pod "{name}" not found'))
        rendered = [
            (when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z " if timestamps else "") + text
            for when, text in (lines or [])
        ]
        try:
            tail = int(query["tailLines"]) if query.get("tailLines") else None
            limit_bytes = int(query["limitBytes"]) if query.get("limitBytes") else None
        except ValueError:
            raise ApiError(400, "BadRequest", "tailLines and limitBytes must be integers") from None
        if tail is not None and tail >= 0:
            rendered = rendered[-tail:] if tail else []
        body = "".join(line + "\n" for line in rendered).encode()
        if limit_bytes is not None and limit_bytes > 0:
            body = body[:limit_bytes]
        return SimResponse(200, body, "text/plain")

    # ---- watch ----------------------------------------------------------------------
    def _watch(self, request: SimRequest, rtype: ResourceType, namespace: str | None,
               query: Mapping[str, str]) -> SimResponse:
        labels = label_selector(query.get("labelSelector"))
        fields = field_selector(rtype.plural, query.get("fieldSelector"))
        try:
            timeout = min(float(query.get("timeoutSeconds") or 300), 1800)
        except ValueError:
            raise ApiError(400, "BadRequest", "timeoutSeconds must be a number") from None
        raw_rv = query.get("resourceVersion") or ""
        if raw_rv not in ("", "0") and not raw_rv.isdigit():
            raise ApiError(400, "BadRequest", f"invalid resourceVersion {raw_rv!r}")
        bookmarks = parse_bool("allowWatchBookmarks", query.get("allowWatchBookmarks"))
        scope = namespace if rtype.namespaced else None
        return SimResponse(200, stream=self._watch_events(
            request, rtype, scope, raw_rv, labels, fields, timeout, bookmarks))

    def _watch_events(self, request: SimRequest, rtype: ResourceType, namespace: str | None,
                      raw_rv: str, labels: Any, fields: Any, timeout: float,
                      bookmarks: bool = False) -> Iterator[bytes]:
        """Watch frames. With bookmarks, a BOOKMARK carries the resourceVersion past
        changes the client did not ask for (a real server sends one about a minute; this
        one sends it at once, so clients and tests can tell they have caught up)."""
        world = self.world
        epoch = world.watch_epoch
        prefix = b'{"kind":"' + rtype.kind.encode() + b'","apiVersion":"' + \
            rtype.api_version.encode() + b'",'

        def frame(kind: str, data: bytes) -> bytes:
            return b'{"type":"' + kind.encode() + b'","object":' + prefix + data[1:] + b"}\n"

        def ended() -> bool:
            return (self.stopping.is_set() or request.cancelled.is_set()
                    or world.watch_epoch != epoch)

        if raw_rv in ("", "0"):
            with world.lock:
                since = world.resource_version
                current = list(world.items(rtype.plural, namespace))
            for _, obj, data in current:
                if labels(obj) and fields(obj):
                    yield frame("ADDED", data)
        else:
            since = int(raw_rv)
            floor = max(world.compacted_rv, world.oldest_watchable_rv())
            if since < floor:
                status = status_object(410, "Expired",
                                       f"too old resource version: {since} ({floor})")
                yield b'{"type":"ERROR","object":' + orjson.dumps(status) + b"}\n"
                return
        deadline = time.monotonic() + timeout
        sent = since
        while not ended() and time.monotonic() < deadline:
            with world.changed:
                if ended():
                    return  # dropped: changes from here on are not sent on this stream
                try:
                    pending = world.events_since(since)
                    if not pending:
                        world.changed.wait(
                            timeout=min(1.0, max(deadline - time.monotonic(), 0)))
                        if ended():
                            return
                        pending = world.events_since(since)
                except Gone as gone:  # fell behind what is kept: the client must relist
                    pending = None
                    expired = status_object(410, "Expired", str(gone))
            if pending is None:
                yield b'{"type":"ERROR","object":' + orjson.dumps(expired) + b"}\n"
                return
            for ev in pending:
                since = ev.rv
                if ev.resource != rtype.plural or (namespace is not None
                                                   and ev.namespace != namespace):
                    continue
                obj = orjson.loads(ev.data)
                if labels(obj) and fields(obj):
                    sent = ev.rv
                    yield frame(ev.type, ev.data)
            if bookmarks and since > sent:
                sent = since
                yield frame("BOOKMARK", orjson.dumps(
                    {"metadata": {"resourceVersion": str(since)}}))

    def cancel_watch(self, request: SimRequest) -> None:
        """End `request`'s watch stream now (its reader went away)."""
        request.cancelled.set()
        with self.world.changed:
            self.world.changed.notify_all()

    # ---- writes (leases) ------------------------------------------------------------
    def _write_lease(self, method: str, namespace: str, name: str | None,
                     raw: bytes) -> SimResponse:
        world = self.world
        if method == "DELETE" and name:
            if world.delete("leases", namespace, name) is None:
                raise ApiError(404, "NotFound", f'leases.coordination.k8s.io "{name}" not found')
            return _json(200, status_object(200, "", "") | {"status": "Success"})
        body = _read_object(raw)
        meta = body.setdefault("metadata", {})
        meta["namespace"] = namespace
        body.pop("kind", None)
        body.pop("apiVersion", None)
        lease_name = meta.get("name") or name
        if not lease_name:
            raise ApiError(422, "Invalid", "Lease is invalid: metadata.name: Required value")
        meta["name"] = lease_name
        try:
            if method == "POST":
                if world.get("leases", namespace, lease_name) is not None:
                    raise ApiError(409, "AlreadyExists",
                                   f'leases.coordination.k8s.io "{lease_name}" already exists')
                meta["uid"] = meta.get("uid") or f"lease-{lease_name}-{world.resource_version}"
                obj = world.put("leases", body)
                code = 201
            else:
                obj = world.put("leases", body, expect_rv=str(meta.get("resourceVersion", "")))
                code = 200
        except Conflict as exc:
            raise ApiError(409, "Conflict", str(exc)) from None
        return _json(code, {"kind": "Lease", "apiVersion": "coordination.k8s.io/v1", **obj})


def _json(code: int, obj: Obj) -> SimResponse:
    return SimResponse(code, orjson.dumps(obj))


def _wants_table(request: SimRequest) -> bool:
    return "as=Table" in (request.header("Accept") or "")


def _read_object(raw: bytes) -> Obj:
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise ApiError(400, "BadRequest", "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "BadRequest", "the request body is not an object")
    return body
