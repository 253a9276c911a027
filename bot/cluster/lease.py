"""Leader election on a coordination.k8s.io/v1 Lease (client-go's algorithm).

Why not `kubernetes.leaderelection`: it cannot be stopped (its loops sleep forever), never
releases the lease (a SIGTERM'd leader would make the successor wait a whole lease
duration), and runs `onstopped_leading` only once per process. This follows the same
rules on the same API:

- Every replica reads the Lease each retry period. A holder's lease is valid until
  `leaseDurationSeconds` after the moment *this replica observed* its last change (local
  monotonic time: no trust in other hosts' clocks). An expired or empty lease is taken with
  an update carrying the read resourceVersion: optimistic concurrency lets one taker win.
- The leader renews every retry period; if it cannot renew within the renew deadline
  (2/3 of the duration), or sees another holder, it stops leading at once — before any
  other replica may take over.
- `stop()` releases the lease (empty holder), so a successor takes over immediately.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from bot.cluster.client import ClusterClient

log = logging.getLogger("restart_patrol.lease")


def _micro_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseElector:
    """Campaigns for the Lease `namespace/name` as `identity` in a daemon thread; calls
    `on_started` when this replica becomes leader and `on_stopped` when it stops being
    leader (lost, or `stop()`). Both callbacks must return promptly."""

    def __init__(self, cluster: ClusterClient, namespace: str, name: str, identity: str,
                 duration: int, on_started: Callable[[], None],
                 on_stopped: Callable[[], None]) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.duration = duration
        self.renew_deadline = duration * 2 / 3
        self.retry_period = max(duration * 2 / 15, 0.2)
        self.request_timeout = max(min(self.renew_deadline / 2, 5.0), 0.5)
        self.on_started = on_started
        self.on_stopped = on_stopped
        self._stop = threading.Event()
        self._leading = threading.Event()
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self._thread: threading.Thread | None = None

    @property
    def path(self) -> str:
        return (f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases/"
                f"{self.name}")

    @property
    def leading(self) -> bool:
        return self._leading.is_set()

    def start(self) -> LeaseElector:
        self._thread = threading.Thread(target=self._run, daemon=True, name="lease")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop campaigning; if leading, stop the jobs, then release the lease."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.request_timeout + 1)
        was_leading = self.leading
        self._step_down("shutting down")
        if was_leading:
            self._release()

    # ---- the loop -------------------------------------------------------------------
    def _run(self) -> None:
        last_renew = 0.0
        while not self._stop.is_set():
            ok = self._try_acquire_or_renew()
            now = time.monotonic()
            if ok:
                last_renew = now
                if not self.leading and not self._stop.is_set():
                    self._leading.set()
                    log.info("%s acquired lease %s/%s: leading", self.identity,
                             self.namespace, self.name)
                    self._call(self.on_started)
            elif self.leading and (now - last_renew >= self.renew_deadline
                                   or self._held_by_other()):
                self._step_down("lease lost")
            self._stop.wait(self.retry_period)

    def _step_down(self, why: str) -> None:
        if self.leading:
            self._leading.clear()
            log.warning("%s stops leading: %s", self.identity, why)
            self._call(self.on_stopped)

    @staticmethod
    def _call(callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception:
            log.exception("leadership callback failed")

    def _held_by_other(self) -> bool:
        return self._observed is not None and self._observed[0] not in (None, "",
                                                                         self.identity)

    # ---- one attempt ----------------------------------------------------------------
    def _try_acquire_or_renew(self) -> bool:
        """client-go's tryAcquireOrRenew: True when this replica holds the lease now."""
        try:
            status, lease = self._request("GET", self.path)
            now = datetime.now(UTC)
            if status == 404:
                status, _ = self._request("POST", self.path.rsplit("/", 1)[0],
                                          self._lease(None, now))
                return status == 201
            if status != 200 or lease is None:
                log.warning("reading lease %s/%s: HTTP %s", self.namespace, self.name, status)
                return False
            spec = lease.get("spec") or {}
            holder = spec.get("holderIdentity") or None
            record = (holder, spec.get("renewTime"), spec.get("acquireTime"),
                      spec.get("leaseDurationSeconds"), spec.get("leaseTransitions"))
            if record != self._observed:
                self._observed = record
                self._observed_at = time.monotonic()
            duration = float(spec.get("leaseDurationSeconds") or self.duration)
            if (holder not in (None, self.identity)
                    and self._observed_at + duration > time.monotonic()):
                return False  # another replica's lease is still valid
            status, _ = self._request("PUT", self.path, self._lease(lease, now))
            return status == 200
        except (ApiException, HTTPError, OSError, ValueError) as exc:
            log.warning("lease %s/%s unreachable: %s", self.namespace, self.name, exc)
            return False

    def _lease(self, current: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
        """The Lease object this replica writes to hold (or take) it."""
        spec = (current or {}).get("spec") or {}
        ours = spec.get("holderIdentity") == self.identity
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if ours or not current
                                                                 else 1)
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if current is not None:
            metadata["resourceVersion"] = current["metadata"]["resourceVersion"]
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata,
                "spec": {"holderIdentity": self.identity,
                         "leaseDurationSeconds": self.duration,
                         "acquireTime": spec.get("acquireTime") if ours else _micro_time(now),
                         "renewTime": _micro_time(now), "leaseTransitions": transitions}}

    def _release(self) -> None:
        """Empty the holder (client-go's ReleaseOnCancel) so a successor need not wait."""
        try:
            status, lease = self._request("GET", self.path)
            if status != 200 or lease is None:
                return
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") != self.identity:
                return
            now = _micro_time(datetime.now(UTC))
            released = {**lease, "spec": {**spec, "holderIdentity": None,
                                          "leaseDurationSeconds": 1,
                                          "acquireTime": now, "renewTime": now}}
            status, _ = self._request("PUT", self.path, released)
            log.info("lease %s/%s released (HTTP %s)", self.namespace, self.name, status)
        except (ApiException, HTTPError, OSError, ValueError) as exc:
            log.warning("could not release lease %s/%s: %s", self.namespace, self.name, exc)

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None
                 ) -> tuple[int, dict[str, Any] | None]:
        """One API call with a short timeout (a renewal must not outlive its deadline)."""
        api = self.cluster.api
        request = api.param_serialize(
            method, path, body=body,
            header_params={"Accept": "application/json", "Content-Type": "application/json"},
            auth_settings=["BearerToken"])
        response = api.call_api(*request, _request_timeout=self.request_timeout)
        data = response.read()
        parsed = None
        if data:
            with contextlib.suppress(orjson.JSONDecodeError):
                parsed = orjson.loads(data)
        return int(response.status), parsed if isinstance(parsed, dict) else None
