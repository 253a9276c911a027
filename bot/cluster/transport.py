"""The one request function to a Kubernetes API server.

Every call restart-patrol makes — list and get pages, log text, the watch stream, lease
reads and writes — goes through `Transport.send` (an answer read in full) or
`Transport.open` (a body read as it arrives: a watch), which share one attempt loop:

- connect and read timeouts (`KUBE_CONNECT_TIMEOUT`, `KUBE_READ_TIMEOUT` or the call's own
  read timeout, e.g. a watch's server-side timeout plus a margin), never beyond the
  deadline;
- an overall deadline when the caller has one (`Deadline`: PATROL_DEADLINE, QUERY_DEADLINE,
  a lease renewal), checked before each attempt, each wait and between body chunks;
- retries for 429 (honouring Retry-After), 5xx, resets and bodies cut mid-way, with
  client-go's backoff (`kubernetes.utils.on_retry_after_error`); a call whose caller loops
  by itself (watch, lease) makes one attempt;
- error translation into `bot.errors` (`bot.cluster.errors`): one line naming the call.

Below it, a `Wire` makes one HTTP exchange: `HttpWire` through the official client's
ApiClient (kubeconfig auth, TLS, urllib3's pool); tests put an in-memory wire over the
simulator here (`tests/support/fake_kube.py`), so everything above runs unchanged.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.utils import Backoff, on_retry_after_error

from bot.cluster.errors import describe, retriable, translate
from bot.errors import ClusterUnavailable, DeadlineExceeded

CHUNK = 1 << 20  # body read size: the deadline is checked between chunks
ERROR_BODY = 64 * 1024  # of a non-2xx answer, enough for its `kind: Status`
ONE_ATTEMPT = Backoff(steps=1, duration=0.0, factor=1.0, jitter=0.0)
# Each retry is noted here before its wait ("list pods in all namespaces: no answer for
# 30 s (KUBE_READ_TIMEOUT), retry 2 of 4"): `serve` logs it, the CLI says it on stderr.
retry_notes = logging.getLogger("restart_patrol.cluster.retries")


@dataclass(frozen=True, slots=True)
class Limits:
    """Time bounds of every request: timeouts, and retries with backoff (seconds)."""

    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    retries: int = 4
    backoff: float = 0.5

    def schedule(self) -> Backoff:
        """client-go's backoff: doubling delays with up to 50 % jitter, bounded count."""
        return Backoff(steps=self.retries + 1, duration=self.backoff, factor=2.0, jitter=0.5)


@dataclass(frozen=True, slots=True)
class Deadline:
    """An overall time budget (monotonic clock) for a patrol, a query or a renewal."""

    seconds: float
    setting: str
    at: float

    @classmethod
    def start(cls, seconds: float, setting: str) -> Deadline:
        return cls(seconds, setting, time.monotonic() + seconds)

    def remaining(self) -> float:
        return self.at - time.monotonic()


@dataclass(frozen=True, slots=True)
class Call:
    """One API call: what it is for (named in errors), where, and how it may be retried."""

    what: str
    path: str
    method: str = "GET"
    query: Mapping[str, object] | None = None
    body: Mapping[str, Any] | None = None  # JSON
    accept: str = "application/json"
    read_timeout: float | None = None  # the longest silence; None: KUBE_READ_TIMEOUT
    retried: bool = True  # False: one attempt; the caller loops by itself (watch, lease)


@dataclass(frozen=True, slots=True)
class Response:
    """A successful answer, with the server's clock (its Date header) at that moment."""

    status: int
    data: bytes
    server_time: datetime | None


class Exchange(Protocol):
    """One HTTP exchange in flight: status and headers received, body not yet read."""

    status: int
    reason: str

    def header(self, name: str) -> str | None: ...

    def chunks(self) -> Iterator[bytes]:
        """The body as it arrives; library errors (urllib3, OSError) when it breaks."""
        ...

    def release(self) -> None:
        """Read to its end: the connection may serve another call."""

    def abort(self) -> None:
        """Drop the connection; unblocks a read in progress in another thread."""


class Wire(Protocol):
    """Makes one exchange with one API server (no retries, no translation)."""

    server: str

    def exchange(self, call: Call, timeout: tuple[float, float]) -> Exchange: ...

    def close(self) -> None: ...


class _Urllib3Exchange:
    def __init__(self, raw: urllib3.BaseHTTPResponse) -> None:
        self.raw = raw
        self.status = int(raw.status)
        self.reason = str(raw.reason or "")

    def header(self, name: str) -> str | None:
        value = self.raw.headers.get(name)
        return None if value is None else str(value)

    def chunks(self) -> Iterator[bytes]:
        yield from self.raw.stream(CHUNK)

    def release(self) -> None:
        self.raw.release_conn()

    def abort(self) -> None:
        # shutdown() unblocks a read in another thread; urllib3 refuses it once the
        # connection went back to the pool or was never handed over (nothing to unblock)
        with contextlib.suppress(OSError, RuntimeError, ValueError):
            self.raw.shutdown()
        with contextlib.suppress(OSError, ValueError):  # a read in another thread may race
            self.raw.close()


class HttpWire:
    """Exchanges through the official client's ApiClient via `param_serialize` +
    `call_api` (the path its generated API classes take, minus ~300 pydantic models
    a raw-JSON reader never uses: 28 MB and ~1 s at start-up)."""

    def __init__(self, api: k8s.ApiClient) -> None:
        """`api` must be built from a configuration with `retries = False` (urllib3's pool
        takes it at construction): every retry is decided once, in `Transport`."""
        self.api = api
        self.server = str(api.configuration.host)

    def exchange(self, call: Call, timeout: tuple[float, float]) -> Exchange:
        params = [(k, v) for k, v in (call.query or {}).items() if v is not None]
        headers = {"Accept": call.accept}
        if call.body is not None:
            headers["Content-Type"] = "application/json"
        request = self.api.param_serialize(call.method, call.path, query_params=params,
                                           header_params=headers, body=call.body,
                                           auth_settings=["BearerToken"])
        response = self.api.call_api(*request, _request_timeout=timeout)
        return _Urllib3Exchange(response.response)

    def close(self) -> None:
        self.api.close()


class _OutOfTime(Exception):
    """Internal: the deadline leaves no time for the next attempt or wait."""


def _server_time(exchange: Exchange) -> datetime | None:
    date = exchange.header("Date")
    if not date:
        return None
    try:
        return email.utils.parsedate_to_datetime(date).astimezone(UTC)
    except (TypeError, ValueError):
        return None


class Stream:
    """An answer whose body is read as it arrives (a watch). `shutdown()` from another
    thread ends a read in progress; the stream then ends quietly."""

    def __init__(self, exchange: Exchange, call: Call, server: str, read_timeout: float) -> None:
        self._exchange = exchange
        self._call = call
        self._server = server
        self._read_timeout = read_timeout
        self._shut = threading.Event()
        self.server_time = _server_time(exchange)

    def chunks(self) -> Iterator[bytes]:
        """Body chunks until the server ends the answer. A stream that breaks raises
        ClusterUnavailable (unless it was shut down: then it just ends)."""
        complete = False
        try:
            yield from self._exchange.chunks()
            complete = True
        except Exception as exc:
            if self._shut.is_set():
                return  # shut down from another thread: whatever the read raised, it ends
            if not isinstance(exc, urllib3.exceptions.HTTPError | OSError):
                raise
            raise ClusterUnavailable(
                f"{self._call.what}: the stream broke "
                f"({describe(exc, self._server, self._read_timeout)})") from None
        finally:
            if complete and not self._shut.is_set():
                self._exchange.release()
            else:
                self._exchange.abort()  # never hand a half-read connection to another call

    def shutdown(self) -> None:
        self._shut.set()
        self._exchange.abort()


class Transport:
    """The one request function to one API server (see the module docstring)."""

    def __init__(self, wire: Wire, limits: Limits | None = None, *,
                 name: str | None = None) -> None:
        """`name`: the cluster's, said in retry notes."""
        self.wire = wire
        self.limits = limits or Limits()
        self.server = wire.server
        self.name = name

    def close(self) -> None:
        self.wire.close()

    def send(self, call: Call, deadline: Deadline | None = None) -> Response:
        """The answer to `call`, read in full; a failure is raised as one line naming
        `call.what` (non-2xx statuses carry their `status`)."""
        response = self._perform(call, deadline, whole=True)
        assert isinstance(response, Response)
        return response

    def open(self, call: Call, deadline: Deadline | None = None) -> Stream:
        """`call`'s answer with its body still to read (a watch): status checked and
        errors translated like `send`; the deadline bounds the opening only."""
        stream = self._perform(call, deadline, whole=False)
        assert isinstance(stream, Stream)
        return stream

    # ---- the one attempt loop ---------------------------------------------------------
    def _perform(self, call: Call, deadline: Deadline | None, *, whole: bool
                 ) -> Response | Stream:
        limits = self.limits
        read_limit = call.read_timeout or limits.read_timeout
        failures: list[BaseException] = []
        started = time.monotonic()

        def left() -> float:
            if deadline is None:
                return float("inf")
            remaining = deadline.remaining()
            if remaining <= 0.001:
                raise _OutOfTime
            return remaining

        def wait(seconds: float) -> None:
            if seconds >= left():
                raise _OutOfTime
            if failures:
                self._note_retry(call, failures[-1], len(failures), read_limit, seconds)
            time.sleep(seconds)

        def attempt() -> Response | Stream:
            read = min(read_limit, left())
            try:
                exchange = self.wire.exchange(call, (min(limits.connect_timeout, read), read))
                if not 200 <= exchange.status <= 299:
                    raise _refusal(exchange)
                if not whole:
                    return Stream(exchange, call, self.server, read_limit)
                return Response(exchange.status, _read_all(exchange, left),
                                _server_time(exchange))
            except (ApiException, urllib3.exceptions.HTTPError) as exc:
                failures.append(exc)
                raise

        schedule = limits.schedule() if call.retried else ONE_ATTEMPT
        try:
            return on_retry_after_error(schedule, retriable, attempt, sleep_func=wait)
        except _OutOfTime:
            assert deadline is not None
            last = (f"; last attempt: {describe(failures[-1], self.server, read_limit)}"
                    if failures else "")
            raise DeadlineExceeded(
                f"{call.what}: gave up at the {deadline.seconds:g} s deadline "
                f"({deadline.setting}){last}") from None
        except (ApiException, urllib3.exceptions.HTTPError) as exc:
            if len(failures) > 1 and retriable(exc):
                elapsed = time.monotonic() - started
                raise ClusterUnavailable(
                    f"{call.what}: {describe(exc, self.server, read_limit)} "
                    f"{len(failures)} times over {elapsed:.1f} s",
                    status=getattr(exc, "status", None)) from None
            raise translate(exc, call.what, call.path, self.server) from None


    def _note_retry(self, call: Call, failure: BaseException, retry: int, read_limit: float,
                    seconds: float) -> None:
        """Say (on `retry_notes`) that `call` failed and is tried again after `seconds`."""
        if not retry_notes.isEnabledFor(logging.WARNING):
            return
        what = (f"no answer for {read_limit:g} s (KUBE_READ_TIMEOUT)"
                if isinstance(failure, urllib3.exceptions.ReadTimeoutError)
                else describe(failure, self.server, read_limit))
        where = f"cluster {self.name}: " if self.name else ""
        retry_notes.warning("%s%s: %s, retry %d of %d in %.1f s", where, call.what, what,
                            retry, self.limits.retries, seconds)


def _read_all(exchange: Exchange, left: Callable[[], float]) -> bytes:
    """The whole body, checking the deadline (`left()` raises) between chunks."""
    parts: list[bytes] = []
    try:
        for chunk in exchange.chunks():
            parts.append(chunk)
            left()
    except BaseException:
        exchange.abort()
        raise
    exchange.release()
    return b"".join(parts)


def _refusal(exchange: Exchange) -> ApiException:
    """A non-2xx answer as the ApiException the retry and translation rules read (its
    `kind: Status` body and its Retry-After header)."""
    body = b""
    complete = False
    try:
        for chunk in exchange.chunks():
            body += chunk
            if len(body) >= ERROR_BODY:
                break
        else:
            complete = True
    except (urllib3.exceptions.HTTPError, OSError):
        pass
    if complete:
        exchange.release()
    else:
        exchange.abort()
    error = ApiException(status=exchange.status, reason=exchange.reason,
                         body=body.decode("utf-8", errors="replace"))
    retry_after = exchange.header("Retry-After")
    error.headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return error
