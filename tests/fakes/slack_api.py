"""A fake Slack Web API over real HTTP, for integration and e2e tests.

Implements what restart-patrol calls (auth.test, chat.postMessage, chat.postEphemeral,
chat.update, chat.getPermalink, views.publish, users.conversations (from `members`),
files.getUploadURLExternal + the upload URL + files.completeUploadExternal, files.info,
apps.connections.open, conversations.history with message metadata), a response_url sink,
429s on demand (`rate_limit[method]` = how many, each announcing `Retry-After:
retry_after` seconds), and faults on demand: `fail_next[method]` answers the
next calls with "500" (not processed), "accept_then_500" (processed, then answered 500)
"drop" (processed, then the connection is closed without an answer) or "hang" (no
answer until `release_hangs` is set or the fake stops, then 500, not processed); `outage` answers
every Web API call 503 until cleared. Records every call, and checks Block Kit limits on
every message: a violation is recorded and answered with `invalid_blocks`, as Slack would.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN = "xoxb-test-token"


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    result: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)


def block_kit_problems(args: dict[str, Any]) -> list[str]:
    """Slack's documented limits for a message's blocks and text."""
    problems: list[str] = []
    blocks = args.get("blocks")
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    if not blocks:
        return problems if args.get("text") else ["message has neither text nor blocks"]
    if not args.get("text"):
        problems.append("blocks without a text fallback")
    if len(blocks) > 50:
        problems.append(f"{len(blocks)} blocks > 50")
    for block in blocks:
        kind = block.get("type")
        if kind == "section" and len(block.get("text", {}).get("text", "")) > 3000:
            problems.append("section text > 3000")
        if kind == "header" and len(block.get("text", {}).get("text", "")) > 150:
            problems.append("header > 150")
        value = (block.get("accessory") or {}).get("value", "")
        if len(value) > 2000:
            problems.append("button value > 2000")
    return problems


class FakeSlack:
    """Start with `.start()`; `base_url` is what SLACK_API_URL should be."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.responses: list[dict[str, Any]] = []  # posted to response_url
        self.uploads: dict[str, bytes] = {}
        self.violations: list[str] = []
        self.rate_limit: dict[str, int] = {}  # method -> how many 429s to answer first
        self.retry_after = 1  # the Retry-After (seconds) those 429s announce
        self.not_in_channel: set[str] = set()
        self.members: dict[str, set[str]] = {}  # user -> channels (users.conversations)
        self.fail_next: dict[str, list[str]] = {}  # method -> faults for its next calls
        self.outage = False  # every Web API call answers 503
        self.stopped = threading.Event()
        self.release_hangs = threading.Event()  # set: hung calls answer (500) now
        self.socket_url = ""
        self._ts = 1_700_000_000.0
        self._lock = threading.Lock()
        self.changed = threading.Condition()
        handler = type("Handler", (_Handler,), {"fake": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/api/"

    def response_url(self, key: str = "r") -> str:
        return f"{self.url}/response/{key}"

    def start(self) -> FakeSlack:
        # a short poll interval makes stop() take milliseconds instead of up to 0.5 s
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.release_hangs.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def next_ts(self) -> str:
        with self._lock:
            self._ts += 1
            return f"{self._ts:.6f}"

    def record(self, call: Call | None = None, response: dict[str, Any] | None = None) -> None:
        with self.changed:
            if call is not None:
                self.calls.append(call)
            if response is not None:
                self.responses.append(response)
            self.changed.notify_all()

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 30) -> Any:
        """Block until predicate() is truthy (returns it), or fail with what was recorded."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                result = predicate()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [(c.method, c.args.get("channel")) for c in self.calls]
                    raise AssertionError(f"timed out; calls: {seen}; "
                                         f"responses: {self.responses}")
                self.changed.wait(remaining)

    def messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Messages posted (successfully), each with the "ts" Slack answered."""
        return [c.args | {"ts": c.result["ts"]} for c in self.calls
                if c.method == "chat.postMessage" and c.result.get("ok")
                and (channel is None or c.args.get("channel") == channel)]

    def updates(self, channel: str | None = None, ts: str | None = None
                ) -> list[dict[str, Any]]:
        """Messages updated in place (chat.update, successfully), oldest first."""
        return [c.args for c in self.calls if c.method == "chat.update" and c.result.get("ok")
                and (channel is None or c.args.get("channel") == channel)
                and (ts is None or c.args.get("ts") == ts)]

    def current(self, channel: str, ts: str) -> dict[str, Any]:
        """A message as it reads now: as posted, or as last updated."""
        (posted,) = [m for m in self.messages(channel) if m["ts"] == ts]
        updated = self.updates(channel, ts)
        return (posted | updated[-1]) if updated else posted

    def published(self, user: str | None = None) -> list[dict[str, Any]]:
        """Home tabs published (views.publish), oldest first: each call's arguments."""
        return [c.args for c in self.calls if c.method == "views.publish" and c.result.get("ok")
                and (user is None or c.args.get("user_id") == user)]

    def replies(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        return [m for m in self.messages(channel) if m.get("thread_ts") == thread_ts]

    def take_fault(self, method: str) -> str | None:
        with self._lock:
            queued = self.fail_next.get(method)
            return queued.pop(0) if queued else None

    def history(self, channel: str, oldest: float = 0.0) -> list[dict[str, Any]]:
        """conversations.history: top-level messages of a channel, newest first."""
        return [m for m in reversed(self.messages(channel))
                if float(m["ts"]) > oldest and m.get("thread_ts") in (None, m["ts"])]

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def text_of(self, message: dict[str, Any]) -> str:
        blocks = message.get("blocks") or []
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        parts = [message.get("text", "")]
        for b in blocks:
            parts.append((b.get("text") or {}).get("text", ""))
            for e in b.get("elements", []):
                text = e.get("text", "")  # a button's text is a plain_text object
                parts.append(text.get("text", "") if isinstance(text, dict) else text)
        return "\n".join(parts)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeSlack
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms stalls

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
              ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _args(self, raw: bytes) -> dict[str, Any]:
        kind = self.headers.get("Content-Type", "")
        query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
        if kind.startswith("application/json") and raw:
            return {**query, **json.loads(raw)}
        if kind.startswith("application/x-www-form-urlencoded"):
            return {**query, **{k: v[-1] for k, v in parse_qs(raw.decode()).items()}}
        return query

    def do_GET(self) -> None:
        self.do_POST()

    def do_POST(self) -> None:
        fake = self.fake
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = urlsplit(self.path).path
        if path.startswith("/response/"):
            fake.record(response=json.loads(raw or b"{}"))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
            return
        if path.startswith("/upload/"):
            fake.uploads[path.rsplit("/", 1)[1]] = raw
            body = f"OK - {len(raw)}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        method = path.removeprefix("/api/")
        args = self._args(raw)
        token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        if method != "apps.connections.open" and token != TOKEN and args.get("token") != TOKEN:
            return self._json(200, {"ok": False, "error": "invalid_auth"})
        if fake.rate_limit.get(method, 0) > 0:
            fake.rate_limit[method] -= 1
            fake.record(Call(method + " (429)", args))
            return self._json(429, {"ok": False, "error": "ratelimited"},
                              {"Retry-After": str(fake.retry_after)})
        if fake.outage:
            fake.record(Call(method + " (503)", args))
            return self._text(503, "Service Unavailable")
        fault = fake.take_fault(method)
        if fault == "hang":
            fake.record(Call(method + " (hang)", args))
            fake.release_hangs.wait(60)
            fault = "500"
        if fault == "500":
            fake.record(Call(method + " (500)", args))
            return self._text(500, "Internal Server Error")
        answer = self._answer(method, args)
        fake.record(Call(method, args, answer))
        if fault == "accept_then_500":
            return self._text(500, "Internal Server Error")
        if fault == "drop":
            self.close_connection = True
            return
        self._json(200, answer)

    def _text(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        fake = self.fake
        if method == "auth.test":
            return {"ok": True, "url": "https://fake.slack.com/", "team": "Fake",
                    "user": "restart-patrol", "team_id": "T0001", "user_id": "UBOT",
                    "bot_id": "BBOT"}
        if method in ("chat.postMessage", "chat.postEphemeral"):
            problems = block_kit_problems(args)
            if problems:
                fake.violations += problems
                return {"ok": False, "error": "invalid_blocks", "errors": problems}
            channel = args.get("channel", "")
            if method == "chat.postMessage" and channel in fake.not_in_channel:
                return {"ok": False, "error": "not_in_channel"}
            ts = fake.next_ts()
            if method == "chat.postEphemeral":
                return {"ok": True, "message_ts": ts}
            return {"ok": True, "channel": channel, "ts": ts,
                    "message": {"ts": ts, "text": args.get("text", "")}}
        if method == "chat.update":
            problems = block_kit_problems(args)
            if problems:
                fake.violations += problems
                return {"ok": False, "error": "invalid_blocks", "errors": problems}
            channel, ts = args.get("channel", ""), args.get("ts", "")
            if not any(m["ts"] == ts for m in fake.messages(channel)):
                return {"ok": False, "error": "message_not_found"}
            return {"ok": True, "channel": channel, "ts": ts, "text": args.get("text", "")}
        if method == "chat.getPermalink":
            channel, ts = args.get("channel", ""), args.get("message_ts", "")
            if not any(m["ts"] == ts for m in fake.messages(channel)):
                return {"ok": False, "error": "message_not_found"}
            return {"ok": True, "channel": channel,
                    "permalink": f"https://fake.slack.com/archives/{channel}/p"
                                 f"{ts.replace('.', '')}"}
        if method == "views.publish":
            view = args.get("view")
            view = json.loads(view) if isinstance(view, str) else view
            blocks = (view or {}).get("blocks") or []
            if not args.get("user_id") or (view or {}).get("type") != "home":
                return {"ok": False, "error": "invalid_arguments"}
            if len(blocks) > 100:
                fake.violations.append(f"home tab: {len(blocks)} blocks > 100")
                return {"ok": False, "error": "invalid_blocks"}
            args["view"] = view
            return {"ok": True, "view": {"id": "V1", "type": "home"}}
        if method == "users.conversations":
            user = args.get("user", "")
            channels = [{"id": c} for c in sorted(fake.members.get(user, ()))]
            return {"ok": True, "channels": channels, "response_metadata": {"next_cursor": ""}}
        if method == "conversations.history":
            metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
            messages = []
            for m in fake.history(args.get("channel", ""), float(args.get("oldest") or 0)):
                item = {"type": "message", "ts": m["ts"], "text": m.get("text", ""),
                        "bot_id": "BBOT"}
                marker = m.get("metadata")
                if metadata and marker:
                    item["metadata"] = json.loads(marker) if isinstance(marker, str) else marker
                messages.append(item)
            limit = int(args.get("limit") or 100)
            start = int(args.get("cursor") or 0)
            page = messages[start:start + limit]
            more = start + limit < len(messages)
            return {"ok": True, "messages": page, "has_more": more,
                    "response_metadata": {"next_cursor": str(start + limit) if more else ""}}
        if method == "files.getUploadURLExternal":
            file_id = f"F{len(fake.uploads) + len(fake.calls):06d}"
            return {"ok": True, "upload_url": f"{fake.url}/upload/{file_id}",
                    "file_id": file_id}
        if method == "files.completeUploadExternal":
            files = args.get("files")
            files = json.loads(files) if isinstance(files, str) else files
            return {"ok": True, "files": [{"id": f["id"], "title": f.get("title", "")}
                                          for f in files or []]}
        if method == "files.info":
            return {"ok": True, "file": {"id": args.get("file", ""), "name": "log"}}
        if method == "apps.connections.open":
            return {"ok": True, "url": fake.socket_url}
        return {"ok": False, "error": "unknown_method"}
