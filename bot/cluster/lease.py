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

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bot.cluster.api import KubeApi
from bot.errors import ClusterError
from bot.runtime import Runtime

log = logging.getLogger("restart_patrol.lease")


def _micro_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseElector:
    """Campaigns for the Lease `namespace/lease_name` in `cluster` as `identity`, in a
    runtime thread (a runtime `Service`: `start()`, `stop(deadline)`). Calls `on_started`
    when this replica becomes leader and `on_stopped` when it stops being leader (lost, or
    `stop()`); both must return promptly. Every request goes through the cluster's one
    request function, each bounded by `request_timeout` (a renewal must not outlive its
    deadline). Without a `runtime` it runs one of its own (tests)."""

    def __init__(self, cluster: KubeApi, namespace: str, name: str, identity: str,
                 duration: int, on_started: Callable[[], None],
                 on_stopped: Callable[[], None], *, runtime: Runtime | None = None) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.lease_name = name
        self.name = f"lease-{cluster.name}"
        self.identity = identity
        self.duration = duration
        self.renew_deadline = duration * 2 / 3
        self.retry_period = max(duration * 2 / 15, 0.2)
        self.request_timeout = max(min(self.renew_deadline / 2, 5.0), 0.5)
        self.on_started = on_started
        self.on_stopped = on_stopped
        self.runtime = runtime
        self._own_runtime: Runtime | None = None
        self._stop = threading.Event()
        self._leading = threading.Event()
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self._thread: threading.Thread | None = None
        self._last_problem: str | None = None

    @property
    def leading(self) -> bool:
        return self._leading.is_set()

    def start(self) -> None:
        runtime = self.runtime
        if runtime is None:
            runtime = self._own_runtime = Runtime(self.name)
        self._thread = runtime.thread(self.name, self._run)

    def stop(self, deadline: float | None = None) -> None:
        """Stop campaigning; if leading, stop the jobs, then release the lease (all by
        `deadline`, a time.monotonic() value; default: a few request timeouts)."""
        if deadline is None:
            deadline = time.monotonic() + 3 * self.request_timeout
        self._stop.set()
        if self._thread is not None:
            self._thread.join(max(0.0, min(deadline - time.monotonic(),
                                           self.request_timeout + 1)))
        was_leading = self.leading
        self._step_down("shutting down")
        if was_leading:
            self._release(deadline)
        if self._own_runtime is not None:
            self._own_runtime.stop_by(deadline)

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
                    log.info("%s acquired lease %s/%s in cluster %s: leading", self.identity,
                             self.namespace, self.lease_name, self.cluster.name)
                    self._call(self.on_started)
            elif self.leading and (now - last_renew >= self.renew_deadline
                                   or self._held_by_other()):
                self._step_down("lease lost")
            self._stop.wait(self.retry_period)

    def _step_down(self, why: str) -> None:
        if self.leading:
            self._leading.clear()
            log.warning("%s stops leading in cluster %s: %s", self.identity,
                        self.cluster.name, why)
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

    def _api(self, seconds: float | None = None) -> KubeApi:
        return self.cluster.bounded(seconds or self.request_timeout, "LEASE_DURATION")

    def _problem(self, problem: str | None) -> None:
        """Log a failure to reach the lease once per distinct cause (not every period)."""
        if problem is not None and problem != self._last_problem:
            log.warning("lease %s/%s in cluster %s: %s", self.namespace, self.lease_name,
                        self.cluster.name, problem)
        self._last_problem = problem

    # ---- one attempt ----------------------------------------------------------------
    def _try_acquire_or_renew(self) -> bool:
        """client-go's tryAcquireOrRenew: True when this replica holds the lease now."""
        try:
            lease = self._api().read_lease(self.namespace, self.lease_name)
            now = datetime.now(UTC)
            if lease is None:
                self._api().write_lease(self._lease(None, now), create=True)
                self._problem(None)
                return True
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
                self._problem(None)
                return False  # another replica's lease is still valid
            self._api().write_lease(self._lease(lease, now), create=False)
            self._problem(None)
            return True
        except ClusterError as exc:
            if exc.status == 409:  # another replica wrote first: it won this round
                return False
            self._problem(str(exc))
            return False

    def _lease(self, current: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
        """The Lease object this replica writes to hold (or take) it."""
        spec = (current or {}).get("spec") or {}
        ours = spec.get("holderIdentity") == self.identity
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if ours or not current
                                                                 else 1)
        metadata: dict[str, Any] = {"name": self.lease_name, "namespace": self.namespace}
        if current is not None:
            metadata["resourceVersion"] = current["metadata"]["resourceVersion"]
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata,
                "spec": {"holderIdentity": self.identity,
                         "leaseDurationSeconds": self.duration,
                         "acquireTime": spec.get("acquireTime") if ours else _micro_time(now),
                         "renewTime": _micro_time(now), "leaseTransitions": transitions}}

    def _release(self, deadline: float) -> None:
        """Empty the holder (client-go's ReleaseOnCancel) so a successor need not wait."""
        left = deadline - time.monotonic()
        if left <= 0.05:
            log.warning("lease %s/%s not released: no time left", self.namespace,
                        self.lease_name)
            return
        seconds = min(left / 2, self.request_timeout)
        try:
            lease = self._api(seconds).read_lease(self.namespace, self.lease_name)
            if lease is None:
                return
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") != self.identity:
                return
            now = _micro_time(datetime.now(UTC))
            released = {**lease, "spec": {**spec, "holderIdentity": None,
                                          "leaseDurationSeconds": 1,
                                          "acquireTime": now, "renewTime": now}}
            self._api(seconds).write_lease(released, create=False)
            log.info("lease %s/%s in cluster %s released", self.namespace, self.lease_name,
                     self.cluster.name)
        except ClusterError as exc:
            log.warning("could not release lease %s/%s: %s", self.namespace,
                        self.lease_name, exc)
