"""Translate kubernetes/urllib3/msgspec failures into `bot.errors` with a human message.

Each message says which API call failed, on which object, and what to check (RBAC,
context, network), in one line.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import msgspec
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException
from kubernetes.config import ConfigException

from bot.cluster.wire import StatusBody
from bot.errors import ClusterError, ConfigError, NotFoundError


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


@contextmanager
def translated(what: str, server: str) -> Iterator[None]:
    """Run an API call; re-raise its failure as a ClusterError that names `what`."""
    try:
        yield
    except ApiException as exc:
        message = status_message(exc)
        if exc.status == 404:
            raise NotFoundError(f"{what}: {message}") from None
        if exc.status == 401:
            raise ClusterError(
                f"{what}: the API server at {server} rejected our credentials (401): check "
                "the user of your KUBECONFIG/KUBE_CONTEXT, or the service-account token"
            ) from None
        if exc.status == 403:
            raise ClusterError(
                f"{what}: forbidden (403): {message} — grant restart-patrol get/list/watch on "
                "pods, pods/log, events, replicasets and jobs (see deploy/rbac.yaml)"
            ) from None
        raise ClusterError(f"{what}: the API server answered {exc.status}: {message}") from None
    except urllib3.exceptions.HTTPError as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ClusterError(
            f"{what}: cannot reach the Kubernetes API at {server} ({_short(reason)}); "
            "check KUBECONFIG/KUBE_CONTEXT, the VPN and that the cluster is up"
        ) from None
    except msgspec.ValidationError as exc:
        raise ClusterError(f"{what}: unexpected response from {server}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ClusterError(f"{what}: {server} did not answer with JSON: {exc}") from None
    except ConfigException as exc:
        raise ConfigError(f"kubeconfig: {exc}") from None


def _short(reason: object) -> str:
    text = str(reason)
    if "Connection refused" in text:
        return "connection refused"
    if "timed out" in text.lower():
        return "timed out"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "unknown host"
    return text.split(": ", 1)[-1][:160]
