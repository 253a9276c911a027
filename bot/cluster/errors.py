"""Translate kubernetes/urllib3/msgspec failures into `bot.errors` with a human message.

This is the one place a library failure becomes transient (`ClusterUnavailable`: no
answer, timeouts, 429/5xx, resets) or permanent (`ClusterError` and its 401/403/404
kinds, TLS and decode failures).

Each message says which API call failed, on which object, and what to check (RBAC,
context, network), in one line. The client's request path decides what is retried
(`retriable`); this module only words the outcome.
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from contextlib import contextmanager

import msgspec
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException
from kubernetes.config import ConfigException

from bot.cluster.wire import StatusBody
from bot.errors import (
    ClusterError,
    ClusterUnavailable,
    ConfigError,
    ForbiddenError,
    NotFoundError,
    PatrolError,
)

RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})


def status_message(exc: ApiException) -> str:
    """The `message` of a `kind: Status` body, else the HTTP reason."""
    body = exc.body
    if body:
        try:
            status = msgspec.json.decode(body, type=StatusBody)
            if status.message:
                return status.message
        except (msgspec.DecodeError, TypeError):
            pass
    return f"HTTP {exc.status} {exc.reason or ''}".strip()


def retriable(exc: BaseException) -> bool:
    """Worth another attempt: a throttled or failing server (429, 5xx), a connection reset
    or closed mid-body, or no answer within the read timeout. Not: refused connections,
    unknown hosts, TLS or auth failures, other 4xx (retrying cannot change them)."""
    if isinstance(exc, ApiException):
        return exc.status in RETRIED_STATUSES
    return isinstance(exc, urllib3.exceptions.ProtocolError | urllib3.exceptions.ReadTimeoutError)


def resource_of(path: str) -> str:
    """The resource a request path reads, as RBAC names it ("pods", "pods/log")."""
    seg = [s for s in path.split("/") if s]
    rest = seg[2:] if seg[:1] == ["api"] else seg[3:]
    if len(rest) >= 3 and rest[0] == "namespaces":
        rest = rest[2:]
    if not rest:
        return "/".join(seg) or "/"
    return f"{rest[0]}/{rest[2]}" if len(rest) >= 3 else rest[0]


def describe(exc: BaseException, server: str, read_timeout: float) -> str:
    """What went wrong with one attempt, as a clause ("the API server answered 503")."""
    if isinstance(exc, ApiException):
        message = status_message(exc)
        detail = "" if message.startswith("HTTP ") else f" ({_clip(message)})"
        return f"the API server answered {exc.status}{detail}"
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        return (f"the API server at {server} sent nothing for {read_timeout:g} s "
                "(KUBE_READ_TIMEOUT)")
    if isinstance(exc, urllib3.exceptions.ProtocolError):
        cause = exc.args[1] if len(exc.args) > 1 else exc
        if isinstance(cause, http.client.IncompleteRead) or "IncompleteRead" in str(exc):
            return "the response was cut off mid-body"
        if isinstance(cause, ConnectionResetError) or "reset" in str(exc).lower():
            return "the connection was reset"
        return f"the connection broke ({_clip(str(cause), 80)})"
    return _clip(str(exc))


def translate(exc: BaseException, what: str, path: str, server: str) -> PatrolError:
    """The one-line error for a failed (non-retried) request to `path`."""
    if isinstance(exc, ApiException) and not exc.status:  # the client's own TLS failures
        return ClusterError(
            f"{what}: cannot talk to the Kubernetes API at {server} "
            f"({_clip(' '.join((exc.reason or '').split(chr(10))))}); check the server URL "
            "and the cluster's CA (certificate-authority) in your kubeconfig")
    if isinstance(exc, ApiException):
        message = status_message(exc)
        if exc.status == 404:
            return NotFoundError(f"{what}: {message}")
        if exc.status == 401:
            return ClusterError(
                f"{what}: the API server at {server} rejected our credentials (401): check "
                "the user of your KUBECONFIG/KUBE_CONTEXT, or the service-account token",
                status=401)
        if exc.status == 403:
            named = re.search(r'cannot \w+ resource "([^"]+)"', message)
            return ForbiddenError(
                f"{what}: forbidden (403): {message} — grant restart-patrol get/list/watch on "
                "pods, pods/log, events, replicasets and jobs (see deploy/base/rbac.yaml)",
                resource=named.group(1) if named else resource_of(path))
        kind = ClusterUnavailable if exc.status in RETRIED_STATUSES else ClusterError
        return kind(f"{what}: the API server answered {exc.status}: {message}",
                    status=exc.status)
    if isinstance(exc, urllib3.exceptions.HTTPError):
        if retriable(exc):
            return ClusterUnavailable(f"{what}: {describe(exc, server, 0)}")
        reason = getattr(exc, "reason", None) or exc
        return ClusterUnavailable(
            f"{what}: cannot reach the Kubernetes API at {server} ({_short(reason)}); "
            "check KUBECONFIG/KUBE_CONTEXT, the VPN and that the cluster is up")
    if isinstance(exc, msgspec.ValidationError):
        return ClusterError(f"{what}: unexpected response from {server}: {exc}")
    if isinstance(exc, msgspec.DecodeError):
        return ClusterError(f"{what}: {server} did not answer with JSON: {exc}")
    if isinstance(exc, ConfigException):
        return ConfigError(f"kubeconfig: {_clip(str(exc))}")
    if isinstance(exc, PatrolError):
        return exc
    raise exc


@contextmanager
def translated(what: str, server: str, path: str = "") -> Iterator[None]:
    """Run an API call or decode its answer; re-raise a failure as a one-line error."""
    try:
        yield
    except (ApiException, urllib3.exceptions.HTTPError, msgspec.ValidationError,
            msgspec.DecodeError, ConfigException) as exc:
        raise translate(exc, what, path, server) from None


def _clip(text: str, limit: int = 160) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _short(reason: object) -> str:
    text = str(reason)
    if "Connection refused" in text:
        return "connection refused"
    if "timed out" in text.lower():
        return "timed out"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "unknown host"
    return text.split(": ", 1)[-1][:160]
