"""The simulated API server over real HTTP (threaded stdlib server, HTTP/1.1 keep-alive).

Serves discovery, lists with `limit`/`continue` (410 Expired with a fresh token after
compaction), label/field selectors, single GETs, Table output for kubectl, `pods/log` as
text/plain, watches as newline-delimited JSON (ERROR 410 when a resourceVersion is too
old), leases (create/replace with optimistic concurrency) and `kind: Status` errors.
`/sim/advance?seconds=N` moves the simulated clock, `/sim/compact` expires old
resourceVersions and continue tokens, `/sim/drop-watches` ends open watch streams
(simulator only). Watches send BOOKMARKs when asked (`allowWatchBookmarks`).
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
    Key,
    Obj,
    ResourceType,
    World,
    format_time,
)

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


def _round_robin(items: Iterable[tuple[Key, Obj, bytes]],
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


class SimServer:
    """A running simulated API server bound to 127.0.0.1:port."""

    def __init__(self, world: World, host: str = "127.0.0.1", port: int = 0,
                 token: str | None = None) -> None:
        self.world = world
        self.token = token
        self.forbidden_namespaces: set[str] = set()
        self.log_gate: threading.Event | None = None  # when set by a test, logs wait for it
        # Serve all-namespace lists round-robin across namespaces (as a server merging
        # several sources may), to test clients that assume namespace order.
        self.interleave_namespaces = False
        # RBAC-style refusals by resource, e.g. {"pods/log"}: every namespace gets a 403
        self.forbidden_resources: set[str] = set()
        # Serve each list page from bytes rendered once (as an API server's watch cache
        # does), so a benchmark's floor is the client's cost, not the simulator's.
        self.cache_pages = False
        self._pages: dict[str, bytes] = {}
        self._pages_rv = -1
        self.requests: list[str] = []  # request lines, for fidelity tests
        self.statuses: Counter[int] = Counter()  # status codes served, e.g. to prove a 410
        handler = type("BoundHandler", (_Handler,), {"sim": self})
        server = type("SimHTTPServer", (ThreadingHTTPServer,), {"request_queue_size": 128})
        self.httpd = server((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SimServer:
        # poll_interval bounds how long stop() waits (the default 0.5 s, in every test)
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                        name="bot-sim", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self.world.changed:
            self.world.changed.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def kubeconfig(self, context: str | None = None) -> str:
        """A kubeconfig (YAML) pointing at this server; the context is the cluster's name."""
        context = context or self.world.cluster_name
        user = f"    token: {self.token}\n" if self.token else "    {}\n"
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
    sim: SimServer
    server_version = "restart-patrol-sim"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms stalls

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request lines are kept in `sim.requests` instead."""

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The Date header carries the *simulated* clock, as a real server's carries its own."""
        return email.utils.format_datetime(self.sim.world.now, usegmt=True)

    # ---- plumbing -------------------------------------------------------------------
    def _send(self, code: int, body: bytes, content_type: str = "application/json") -> None:
        self.sim.statuses[code] += 1
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Audit-Id", "sim")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, code: int, obj: Obj) -> None:
        self._send(code, orjson.dumps(obj))

    def _error(self, err: ApiError) -> None:
        self._send_json(err.code, err.body)

    def _read_body(self) -> Obj:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ApiError(400, "BadRequest", "the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the request body is not an object")
        return body

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        self.sim.requests.append(f"{method} {self.path}")
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        segments = [s for s in parts.path.split("/") if s]
        try:
            if self.sim.token and segments[:1] != ["sim"] and self.headers.get(
                    "Authorization") != f"Bearer {self.sim.token}":
                raise ApiError(401, "Unauthorized", "Unauthorized")
            self._route(method, segments, query)
        except ApiError as err:
            self._error(err)
        except SelectorError as err:
            self._error(ApiError(400, "BadRequest", str(err)))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _route(self, method: str, seg: list[str], query: dict[str, str]) -> None:
        if seg == ["version"]:
            return self._send_json(200, SERVER_VERSION)
        if seg in (["healthz"], ["readyz"], ["livez"]):
            return self._send(200, b"ok", "text/plain")
        if seg[:1] == ["sim"]:
            return self._control(method, seg[1:], query)
        if seg == ["api"]:
            return self._send_json(200, {"kind": "APIVersions", "versions": ["v1"],
                                         "serverAddressByClientCIDRs": [{
                                             "clientCIDR": "0.0.0.0/0",
                                             "serverAddress": f"127.0.0.1:{self.sim.port}"}]})
        if seg == ["apis"]:
            return self._send_json(200, _groups())
        if seg == ["api", "v1"]:
            return self._send_json(200, _discovery_resources("", "v1"))
        if len(seg) == 3 and seg[0] == "apis" and any(
                r.group == seg[1] and r.version == seg[2] for r in RESOURCES):
            return self._send_json(200, _discovery_resources(seg[1], seg[2]))
        if seg[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", seg[2:]
        elif len(seg) >= 3 and seg[0] == "apis":
            group, version, rest = seg[1], seg[2], seg[3:]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        namespace: str | None = None
        if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) != 2:
            namespace, rest = rest[1], rest[2:]
        elif rest[:1] == ["namespaces"] and len(rest) == 2:
            pass  # GET /api/v1/namespaces/{name}: the namespace object itself
        if not rest:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        rtype = RESOURCE_BY_PATH.get((group, version, rest[0]))
        if rtype is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        resource = f"{rtype.plural}/{sub}" if sub else rtype.plural
        if resource in self.sim.forbidden_resources:
            verb = "list" if name is None else "get"
            raise ApiError(403, "Forbidden", (
                f'{rtype.plural} "{name}" is forbidden: ' if name else
                f"{rtype.plural} is forbidden: ") + (
                f'User "system:serviceaccount:restart-patrol:restart-patrol" cannot {verb} '
                f'resource "{resource}" in API group "{rtype.group}" in the namespace '
                f'"{namespace}"'), details={"name": name or "", "kind": rtype.plural})
        if namespace is not None and self.sim.forbidden_namespaces & {namespace}:
            raise ApiError(403, "Forbidden", (
                f'{rtype.plural} is forbidden: User "system:serviceaccount:restart-patrol:'
                f'restart-patrol" cannot {"list" if name is None else "get"} resource '
                f'"{rtype.plural}" in API group "{rtype.group}" in the namespace "{namespace}"'),
                details={"kind": rtype.plural})
        if method == "GET" and name is None:
            if parse_bool("watch", query.get("watch")):
                return self._watch(rtype, namespace, query)
            return self._list(rtype, namespace, query)
        if method == "GET" and name is not None and sub is None:
            return self._get(rtype, namespace or "", name)
        if method == "GET" and sub == "log" and rtype.plural == "pods":
            return self._log(namespace or "", name or "", query)
        if rtype.plural == "leases" and method in ("POST", "PUT", "DELETE"):
            return self._write_lease(method, namespace or "", name)
        raise ApiError(405, "MethodNotAllowed",
                       "the server does not allow this method on the requested resource")

    # ---- control --------------------------------------------------------------------
    def _control(self, method: str, seg: list[str], query: dict[str, str]) -> None:
        world = self.sim.world
        if seg == ["advance"] and method == "POST":
            try:
                seconds = float(query.get("seconds", "0"))
            except ValueError:
                raise ApiError(400, "BadRequest", "seconds must be a number") from None
            world.advance(timedelta(seconds=seconds))
        elif seg == ["compact"] and method == "POST":
            world.compact()
        elif seg == ["drop-watches"] and method == "POST":
            world.drop_watches()
        elif seg != ["now"]:
            raise ApiError(404, "NotFound", "unknown simulator control endpoint")
        self._send_json(200, {"now": format_time(world.now),
                              "resourceVersion": str(world.resource_version)})

    # ---- reads ----------------------------------------------------------------------
    def _wants_table(self) -> bool:
        return "as=Table" in (self.headers.get("Accept") or "")

    def _get(self, rtype: ResourceType, namespace: str, name: str) -> None:
        obj = self.sim.world.get(rtype.plural, namespace if rtype.namespaced else "", name)
        if obj is None:
            qualified = f"{rtype.plural}.{rtype.group}" if rtype.group else rtype.plural
            details = {"name": name, "kind": rtype.plural}
            if rtype.group:
                details["group"] = rtype.group
            raise ApiError(404, "NotFound", f'{qualified} "{name}" not found', details=details)
        if self._wants_table():
            meta = {"resourceVersion": obj["metadata"]["resourceVersion"]}
            return self._send_json(200, to_table(rtype.plural, [obj], self.sim.world.now, meta))
        self._send_json(200, {"kind": rtype.kind, "apiVersion": rtype.api_version, **obj})

    def _list(self, rtype: ResourceType, namespace: str | None, query: dict[str, str]) -> None:
        sim = self.sim
        if not sim.cache_pages or self._wants_table():
            self._render_list(rtype, namespace, query)
            return
        key = f"{rtype.plural} {namespace} {sorted(query.items())}"
        with sim.world.lock:
            if sim._pages_rv != sim.world.resource_version:
                sim._pages, sim._pages_rv = {}, sim.world.resource_version
            body = sim._pages.get(key)
        if body is None:
            body = self._render_list(rtype, namespace, query, send=False)
            with sim.world.lock:
                sim._pages[key] = body
        self._send(200, body)

    def _render_list(self, rtype: ResourceType, namespace: str | None, query: dict[str, str],
                     send: bool = True) -> bytes:
        world = self.sim.world
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
        items: Iterable[tuple[Key, Obj, bytes]] = world.items(rtype.plural, scope, start)
        interleaved = self.sim.interleave_namespaces and scope is None
        if interleaved:
            items = _round_robin(world.items(rtype.plural), start)
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
            if not filtered and not interleaved:
                remaining = world.count(rtype.plural, scope) - (
                    self._position(rtype.plural, scope, next_key))
                meta["remainingItemCount"] = remaining
        if self._wants_table():
            table = orjson.dumps(to_table(rtype.plural, [o for _, o, _ in chosen], world.now,
                                          meta))
            self._send(200, table)
            return table
        head = orjson.dumps({"kind": rtype.kind + "List", "apiVersion": rtype.api_version,
                             "metadata": meta})
        body = head[:-1] + b',"items":[' + b",".join(d for _, _, d in chosen) + b"]}"
        if send:
            self._send(200, body)
        return body

    def _position(self, resource: str, namespace: str | None, key: Key) -> int:
        import bisect

        keys = self.sim.world.sorted_keys(resource)
        lo = bisect.bisect_left(keys, (namespace, "")) if namespace is not None else 0
        return bisect.bisect_left(keys, key) - lo

    def _log(self, namespace: str, name: str, query: dict[str, str]) -> None:
        world = self.sim.world
        gate = self.sim.log_gate
        if gate is not None:
            gate.wait(30)
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
        self._send(200, body, "text/plain")

    # ---- watch ----------------------------------------------------------------------
    def _watch(self, rtype: ResourceType, namespace: str | None, query: dict[str, str]) -> None:
        labels = label_selector(query.get("labelSelector"))
        fields = field_selector(rtype.plural, query.get("fieldSelector"))
        try:
            timeout = min(float(query.get("timeoutSeconds") or 300), 1800)
        except ValueError:
            raise ApiError(400, "BadRequest", "timeoutSeconds must be a number") from None
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        scope = namespace if rtype.namespaced else None
        raw_rv = query.get("resourceVersion") or ""
        bookmarks = parse_bool("allowWatchBookmarks", query.get("allowWatchBookmarks"))
        try:
            for chunk in self._watch_events(rtype, scope, raw_rv, labels, fields, timeout,
                                            bookmarks):
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    def _watch_events(self, rtype: ResourceType, namespace: str | None, raw_rv: str,
                      labels: Any, fields: Any, timeout: float,
                      bookmarks: bool = False) -> Iterator[bytes]:
        """Watch frames. With bookmarks, a BOOKMARK carries the resourceVersion past
        changes the client did not ask for (a real server sends one about a minute; this
        one sends it at once, so clients and tests can tell they have caught up)."""
        world = self.sim.world
        epoch = world.watch_epoch
        prefix = b'{"kind":"' + rtype.kind.encode() + b'","apiVersion":"' + \
            rtype.api_version.encode() + b'",'

        def frame(kind: str, data: bytes) -> bytes:
            return b'{"type":"' + kind.encode() + b'","object":' + prefix + data[1:] + b"}\n"

        if raw_rv in ("", "0"):
            with world.lock:
                since = world.resource_version
                current = list(world.items(rtype.plural, namespace))
            for _, obj, data in current:
                if labels(obj) and fields(obj):
                    yield frame("ADDED", data)
        else:
            try:
                since = int(raw_rv)
            except ValueError:
                raise ApiError(400, "BadRequest", f"invalid resourceVersion {raw_rv!r}") from None
            floor = max(world.compacted_rv, world.oldest_watchable_rv())
            if since < floor:
                status = status_object(410, "Expired",
                                       f"too old resource version: {since} ({floor})")
                yield b'{"type":"ERROR","object":' + orjson.dumps(status) + b"}\n"
                return
        deadline = time.monotonic() + timeout
        sent = since
        while not self.sim._stopping.is_set() and time.monotonic() < deadline:
            with world.changed:
                if world.watch_epoch != epoch:
                    return  # dropped: changes from here on are not sent on this stream
                pending = world.events_since(since)
                if not pending:
                    world.changed.wait(timeout=min(1.0, max(deadline - time.monotonic(), 0)))
                    if world.watch_epoch != epoch:
                        return
                    pending = world.events_since(since)
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

    # ---- writes (leases) ------------------------------------------------------------
    def _write_lease(self, method: str, namespace: str, name: str | None) -> None:
        world = self.sim.world
        if method == "DELETE" and name:
            if world.delete("leases", namespace, name) is None:
                raise ApiError(404, "NotFound", f'leases.coordination.k8s.io "{name}" not found')
            return self._send_json(200, status_object(200, "", "") | {"status": "Success"})
        body = self._read_body()
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
        self._send_json(code, {"kind": "Lease", "apiVersion": "coordination.k8s.io/v1", **obj})
