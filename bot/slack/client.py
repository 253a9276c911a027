"""The Slack Web API clients, built from Settings, and the one mapping of Slack failures
to `bot.errors`.

Two kinds of client (`build_web_client`): a replay-safe one for answers (rate limits honour
Retry-After; 5xx and connection errors are retried with backoff) and a no-blind-replay one
for digest posts (only the rate-limit retry: a 5xx or a dropped connection may follow an
accepted post). Every retry handler of both is deadline-aware (`DeadlineRetryHandler`, on
slack_sdk's own extension point): inside `bounded_by(until, cancelled)` a thread's calls
send nothing after `until` or once `cancelled` is set — a retry whose wait (Retry-After,
backoff) would end later is not made, and each request's socket timeout ends at `until`.
So slack_sdk's own sleeping retries cannot post after a digest slot's deadline
(docs/design.md, "The digest, exactly once").
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web import SlackResponse

from bot.errors import SlackError, SlackUnavailable
from bot.settings import Settings

TIMEOUT = 30.0  # seconds a request may wait for Slack (less inside `bounded_by`)
_TRANSIENT = {"internal_error", "fatal_error", "service_unavailable", "request_timeout",
              "ratelimited", "rate_limited"}


@dataclass(frozen=True, slots=True)
class _Bound:
    until: float  # time.monotonic()
    cancelled: threading.Event | None

    def remaining(self) -> float:
        if self.cancelled is not None and self.cancelled.is_set():
            return 0.0
        return max(self.until - time.monotonic(), 0.0)


_BOUND: ContextVar[_Bound | None] = ContextVar("restart_patrol_slack_bound", default=None)


@contextmanager
def bounded_by(until: float, cancelled: threading.Event | None = None) -> Iterator[None]:
    """Within the block, this thread's Slack calls send nothing after `until` (a
    `time.monotonic()` value) or once `cancelled` is set (see the module docstring)."""
    token = _BOUND.set(_Bound(until, cancelled))
    try:
        yield
    finally:
        _BOUND.reset(token)


def _remaining() -> float | None:
    bound = _BOUND.get()
    return None if bound is None else bound.remaining()


class DeadlineRetryHandler(RetryHandler):
    """One of slack_sdk's retry handlers, made deadline-aware: it retries what `inner`
    would retry, after the same wait (Retry-After for a 429, else `inner`'s backoff), but
    only when that wait ends before the current `bounded_by` deadline; the wait itself ends
    early when the bound is cancelled, and then no retry is made. Outside `bounded_by` it
    behaves like `inner` (the wait is not cut short)."""

    def __init__(self, inner: RetryHandler) -> None:
        super().__init__(inner.max_retry_count, inner.interval_calculator)
        self.inner = inner

    def _wait(self, state: RetryState, response: HttpResponse | None) -> float:
        if response is not None and response.status_code == 429:
            for name, values in response.headers.items():
                if name.lower() == "retry-after" and values:
                    try:
                        return float(values[0])
                    except ValueError:
                        break
            return 1.0
        return float(self.interval_calculator.calculate_sleep_duration(state.current_attempt))

    def _can_retry(self, *, state: RetryState, request: HttpRequest,
                   response: HttpResponse | None = None,
                   error: Exception | None = None) -> bool:
        if not self.inner.can_retry(state=state, request=request, response=response,
                                    error=error):
            return False
        remaining = _remaining()
        return remaining is None or self._wait(state, response) < remaining

    def prepare_for_next_attempt(self, *, state: RetryState, request: HttpRequest,
                                 response: HttpResponse | None = None,
                                 error: Exception | None = None) -> None:
        wait = self._wait(state, response)
        bound = _BOUND.get()
        if bound is None:
            time.sleep(wait)
        else:
            if bound.cancelled is not None:
                bound.cancelled.wait(min(wait, bound.remaining()))
            else:
                time.sleep(min(wait, bound.remaining()))
            if bound.remaining() <= 0:
                return  # no next attempt: the client returns the answer it has, or raises
        state.next_attempt_requested = True
        state.increment_current_attempt()


class BoundedWebClient(WebClient):
    """A WebClient that, inside `bounded_by`, starts no call once the deadline passed or
    the bound was cancelled (`TimeoutError`, which `slack_failure` maps), and whose socket
    timeout never outlasts the deadline (slack_sdk reads `timeout` for every request)."""

    def api_call(self, *args: Any, **kwargs: Any) -> SlackResponse:
        if _remaining() == 0.0:
            raise TimeoutError("its deadline passed before the call")
        return super().api_call(*args, **kwargs)

    @property  # type: ignore[override]
    def timeout(self) -> float:
        remaining = _remaining()
        if remaining is None:
            return self._timeout
        return max(min(self._timeout, remaining), 0.001)

    @timeout.setter
    def timeout(self, value: float) -> None:
        self._timeout = float(value)


def build_web_client(settings: Settings, *, replay_safe: bool = True) -> WebClient:
    """WebClient(base_url=SLACK_API_URL) with deadline-aware retries. `replay_safe=True`
    (answers): rate limits, 5xx and connection errors are retried. `replay_safe=False`
    (digest posts): only rate limits (a 429 was not accepted); a 5xx or a dropped
    connection may follow an accepted post, and replaying it would post twice — the digest
    reconciles those through the channel history instead."""
    base_url = settings.slack.api_url if settings.slack.api_url.endswith("/") else (
        settings.slack.api_url + "/")
    handlers: list[RetryHandler] = [RateLimitErrorRetryHandler(max_retry_count=3)]
    if replay_safe:
        handlers += [ServerErrorRetryHandler(max_retry_count=2),
                     ConnectionErrorRetryHandler(max_retry_count=2)]
    return BoundedWebClient(token=settings.slack.bot_token, base_url=base_url,
                            timeout=TIMEOUT,  # type: ignore[arg-type]
                            retry_handlers=[DeadlineRetryHandler(h) for h in handlers])


def slack_failure(what: str, exc: Exception) -> SlackError:
    """The one mapping of a failed Web API call that tried to do `what` to `bot.errors`:
    `SlackUnavailable` (transient; a post may have been accepted) for a 5xx, a 429 after
    the retries, an error code that says Slack is unwell, a timeout or a dropped
    connection; `SlackError` (permanent) when Slack refused (invalid_auth,
    not_in_channel, …)."""
    if isinstance(exc, SlackApiError):
        status = getattr(exc.response, "status_code", 200)
        data = exc.response.data
        error = data.get("error") if isinstance(data, dict) else None
        reason = error or f"HTTP {status}"
        if status >= 500 or status == 429 or error in _TRANSIENT or error is None:
            return SlackUnavailable(f"Slack did not confirm {what} ({reason})")
        return SlackError(f"Slack refused {what} ({reason})")
    if isinstance(exc, OSError | http.client.HTTPException):
        return SlackUnavailable(f"Slack did not answer {what} ({exc or type(exc).__name__})")
    raise TypeError(f"not a Slack failure: {exc!r}")


SLACK_FAILURES = (SlackApiError, OSError, http.client.HTTPException)
"""What a Web API call raises when it fails; `slack_failure` maps each of them."""
