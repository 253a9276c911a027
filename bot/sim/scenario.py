"""Scenarios: YAML that declares namespaces, workloads and containers that crash on a
schedule, and the simulation that advances them with the world's clock.

A crash bumps restartCount, fills `lastState.terminated` (exit code, reason, times), keeps
the crashed run's log as the *previous* log (kubelet keeps only one), and emits the events
a kubelet would (BackOff, Unhealthy/Killing for probe kills, OOMKilling on the node,
Failed for start errors); events older than an hour expire. Workloads can replace their
pods (new uid, restartCount 0) or roll out a new ReplicaSet on a schedule.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from bot.patrol.durations import parse_duration as _parse_duration
from bot.sim import objects as o
from bot.sim.world import Obj, World, format_time

EVENT_TTL = timedelta(hours=1)
SIM_STEP = timedelta(minutes=10)


class ScenarioError(ValueError):
    """The scenario file is malformed; the message names the field."""


def parse_duration(text: str | int | float) -> timedelta:
    """Scenario durations ('46d', '8h', '1h30m'); a ScenarioError names the bad value."""
    try:
        return _parse_duration(text)
    except ValueError as exc:
        raise ScenarioError(str(exc)) from None


@dataclass(slots=True)
class CrashPlan:
    """How a container crashes: every `every`, with this exit code/reason/log."""

    every: timedelta
    exit_code: int
    reason: str = "Error"
    kind: str = "crash"  # crash | liveness | oom | start-error
    log: list[str] = field(default_factory=list)
    message: str | None = None
    backoff: bool = False
    first_after: timedelta | None = None  # delay of the first crash after the sim start


@dataclass(slots=True)
class ContainerSim:
    """One container's simulated state."""

    name: str
    image: str
    kind: str  # container | init | sidecar | ephemeral
    spec: Obj
    plan: CrashPlan | None
    restarts: int
    running_since: datetime
    healthy_log: list[str]
    last_terminated: Obj | None = None
    last_crash_at: datetime | None = None
    next_crash: datetime | None = None
    previous_log: list[tuple[datetime, str]] | None = None


@dataclass(slots=True)
class PodSim:
    """One pod: identity, owner, node and containers."""

    namespace: str
    name: str
    uid: str
    created: datetime
    node: str
    labels: dict[str, str]
    owner: Obj | None
    containers: list[ContainerSim]
    restart_policy: str = "Always"
    ip: str = "10.244.0.10"


@dataclass(slots=True)
class WorkloadSim:
    """A workload whose pods the scenario manages (for replacement and rollouts)."""

    namespace: str
    kind: str
    name: str
    uid: str
    spec: dict[str, Any]
    revision: int = 1
    pods: list[PodSim] = field(default_factory=list)
    replace_every: timedelta | None = None
    rollout_at: datetime | None = None
    next_replace: datetime | None = None


def _phase(every: timedelta, *parts: str) -> timedelta:
    digest = int(hashlib.sha256("/".join(parts).encode()).hexdigest()[:8], 16)
    return timedelta(seconds=digest % max(int(every.total_seconds()), 1))


class Simulation:
    """Populates a World from a scenario and advances crashes with its clock."""

    def __init__(self, world: World, scenario: dict[str, Any]) -> None:
        self.world = world
        self.scenario = scenario
        self.logs: dict[str, list[str]] = {
            k: str(v).rstrip("\n").split("\n") for k, v in (scenario.get("logs") or {}).items()
        }
        self.nodes: list[str] = list(scenario.get("nodes") or ["node-1"])
        self.workloads: list[WorkloadSim] = []
        self.bare_pods: list[PodSim] = []
        self._ip = 10
        self.clock = world.now  # the simulated instant being processed
        self._populate()
        world.on_advance.append(self.advance)

    # ---- building -------------------------------------------------------------------
    def _populate(self) -> None:
        now = self.world.now
        for node in self.nodes:
            self.world.put("nodes", o.node_object(node, now - timedelta(days=400)))
        for ns_name, ns in (self.scenario.get("namespaces") or {}).items():
            self.world.put("namespaces", o.namespace_object(ns_name, now - timedelta(days=500)))
            for spec in (ns or {}).get("workloads") or []:
                self._add_workload(ns_name, spec)
            filler = (ns or {}).get("healthy")
            if filler:
                for i in range(int(filler.get("deployments", 0))):
                    self._add_workload(ns_name, {
                        "kind": "Deployment", "name": f"{filler.get('prefix', 'svc')}-{i + 1:02d}",
                        "replicas": int(filler.get("replicas", 2)), "age": filler.get("age", "30d"),
                        "containers": [{"name": "app", "image": filler.get(
                            "image", "registry.local/svc:1.0"), "liveness": "http:8080",
                            "readiness": "http:8080", "memory": "256Mi"}],
                    })

    def _plan(self, spec: dict[str, Any] | None) -> CrashPlan | None:
        if not spec:
            return None
        log_ref = spec.get("log", [])
        if isinstance(log_ref, str):
            if log_ref not in self.logs:
                raise ScenarioError(f"crash log {log_ref!r} is not defined under logs:")
            lines = self.logs[log_ref]
        else:
            lines = [str(x) for x in log_ref]
        return CrashPlan(
            every=parse_duration(spec.get("every", "1d")),
            exit_code=int(spec.get("exit_code", 1)),
            reason=str(spec.get("reason", "Error")),
            kind=str(spec.get("kind", "crash")),
            log=lines,
            message=spec.get("message"),
            backoff=bool(spec.get("backoff", False)),
            first_after=parse_duration(spec["first_after"]) if "first_after" in spec else None,
        )

    def _container(self, spec: dict[str, Any], kind: str, replica: int, created: datetime,
                   pod_key: str) -> ContainerSim:
        name = str(spec["name"])
        restarts_spec = spec.get("restarts", 0)
        restarts = int(restarts_spec[replica % len(restarts_spec)]
                       if isinstance(restarts_spec, list) else restarts_spec)
        liveness = readiness = None
        if spec.get("liveness"):
            kind_, port = str(spec["liveness"]).split(":")
            liveness = o.probe_spec(kind_, int(port))
        if spec.get("readiness"):
            kind_, port = str(spec["readiness"]).split(":")
            readiness = o.probe_spec(kind_, int(port))
        cspec = o.container_spec(
            name, str(spec["image"]), liveness=liveness, readiness=readiness,
            memory_limit=spec.get("memory"),
            restart_policy="Always" if kind == "sidecar" else None,
        )
        plan = self._plan(spec.get("crash"))
        now = self.clock
        healthy = self.logs.get(str(spec.get("healthy_log", "")), [
            f"starting {name}", "listening on :8080", "ready"])
        sim = ContainerSim(name=name, image=str(spec["image"]), kind=kind, spec=cspec, plan=plan,
                           restarts=restarts, running_since=created + timedelta(seconds=5),
                           healthy_log=healthy)
        if plan is not None:
            first = now + (plan.first_after if plan.first_after is not None
                           else _phase(plan.every, pod_key, name))
            sim.next_crash = first
            if restarts > 0:
                last = first - plan.every
                if last < created:
                    last = now - timedelta(minutes=3)
                self._record_crash(sim, last, pod_uid=None)
                sim.restarts = restarts
        return sim

    def _next_ip(self) -> str:
        self._ip += 1
        return f"10.244.{self._ip // 250}.{self._ip % 250 + 2}"

    def _add_workload(self, ns: str, spec: dict[str, Any]) -> None:
        kind = str(spec.get("kind", "Deployment"))
        name = str(spec["name"])
        age = parse_duration(spec.get("age", "10d"))
        created = self.world.now - age
        uid = o.stable_uid(ns, kind, name)
        wl = WorkloadSim(ns, kind, name, uid, spec,
                         replace_every=parse_duration(spec["replace_every"])
                         if "replace_every" in spec else None,
                         rollout_at=self.world.now + parse_duration(spec["rollout_after"])
                         if "rollout_after" in spec else None)
        if wl.replace_every:
            wl.next_replace = self.world.now + wl.replace_every
        labels = {"app": name}
        if kind == "Pod":
            pod = self._make_pod(ns, name, None, labels, spec, 0, created, "Always")
            self.bare_pods.append(pod)
            self._publish_pod(pod)
            return
        self.workloads.append(wl)
        self._publish_workload(wl, created)
        self._create_pods(wl, created, initial=True)

    def _pod_template(self, spec: dict[str, Any]) -> Obj:
        return {"spec": {"containers": [{"name": c["name"], "image": c["image"]}
                                        for c in spec.get("containers", [])]}}

    def _publish_workload(self, wl: WorkloadSim, created: datetime) -> None:
        spec, ns = wl.spec, wl.namespace
        replicas = int(spec.get("replicas", len(spec.get("pods", [])) or 1))
        meta = o.metadata(wl.name, ns, wl.uid, created, labels={"app": wl.name})
        template = self._pod_template(spec)
        selector = {"matchLabels": {"app": wl.name}}
        if wl.kind == "Deployment":
            meta["annotations"] = {"deployment.kubernetes.io/revision": str(wl.revision)}
            self.world.put("deployments", {"metadata": meta, "spec": {
                "replicas": replicas, "selector": selector, "template": template},
                "status": {"replicas": replicas, "readyReplicas": replicas,
                           "availableReplicas": replicas, "updatedReplicas": replicas,
                           "observedGeneration": wl.revision}})
        elif wl.kind == "StatefulSet":
            self.world.put("statefulsets", {"metadata": meta, "spec": {
                "replicas": replicas, "selector": selector, "serviceName": wl.name,
                "template": template}, "status": {"replicas": replicas,
                                                  "readyReplicas": replicas}})
        elif wl.kind == "DaemonSet":
            n = len(self.nodes)
            self.world.put("daemonsets", {"metadata": meta, "spec": {
                "selector": selector, "template": template}, "status": {
                "desiredNumberScheduled": n, "currentNumberScheduled": n, "numberReady": n}})
        elif wl.kind == "CronJob":
            self.world.put("cronjobs", {"metadata": meta, "spec": {
                "schedule": str(spec.get("schedule", "*/30 * * * *")),
                "jobTemplate": {"spec": {"template": template}}}, "status": {}})
        elif wl.kind == "Job":
            self.world.put("jobs", {"metadata": meta, "spec": {"template": template},
                                    "status": {"active": 1}})
        else:
            raise ScenarioError(f"unknown workload kind {wl.kind!r} in {ns}/{wl.name}")

    def _create_pods(self, wl: WorkloadSim, created: datetime, *, initial: bool) -> None:
        spec, ns = wl.spec, wl.namespace
        names: list[str] = [str(x) for x in spec.get("pods", [])]
        replicas = int(spec.get("replicas", len(names) or 1))
        owner: Obj
        labels = {"app": wl.name}
        generation = f"{wl.revision}/{format_time(self.clock)}"
        if wl.kind == "Deployment":
            rs_hash = str(spec.get("hash")) if wl.revision == 1 and spec.get("hash") else (
                o.template_hash(ns, wl.name, str(wl.revision)))
            rs_name = f"{wl.name}-{rs_hash}"
            rs_uid = o.stable_uid(ns, "rs", rs_name)
            if self.world.get("replicasets", ns, rs_name) is None:
                self.world.put("replicasets", {
                    "metadata": o.metadata(
                        rs_name, ns, rs_uid, created if initial else self.clock,
                        labels={**labels, "pod-template-hash": rs_hash},
                        owners=[o.owner_ref("Deployment", "apps/v1", wl.name, wl.uid)],
                        annotations={"deployment.kubernetes.io/revision": str(wl.revision)}),
                    "spec": {"replicas": replicas, "selector": {"matchLabels": {
                        **labels, "pod-template-hash": rs_hash}},
                        "template": self._pod_template(spec)},
                    "status": {"replicas": replicas, "readyReplicas": replicas}})
            owner = o.owner_ref("ReplicaSet", "apps/v1", rs_name, rs_uid)
            labels = {**labels, "pod-template-hash": rs_hash}
            base = rs_name + "-"
            pod_names = [base + (names[i] if initial and i < len(names)
                                 else o.suffix(base, str(i), generation)) for i in range(replicas)]
        elif wl.kind == "StatefulSet":
            owner = o.owner_ref("StatefulSet", "apps/v1", wl.name, wl.uid)
            pod_names = [f"{wl.name}-{i}" for i in range(replicas)]
        elif wl.kind == "DaemonSet":
            owner = o.owner_ref("DaemonSet", "apps/v1", wl.name, wl.uid)
            pod_names = [f"{wl.name}-{o.suffix(wl.name, node, generation)}" for node in self.nodes]
            replicas = len(self.nodes)
        elif wl.kind in ("CronJob", "Job"):
            if wl.kind == "CronJob":
                job_name = f"{wl.name}-{int(self.clock.timestamp()) // 60}"
                job_uid = o.stable_uid(ns, "job", job_name)
                self.world.put("jobs", {"metadata": o.metadata(
                    job_name, ns, job_uid, created if initial else self.clock,
                    labels={"job-name": job_name},
                    owners=[o.owner_ref("CronJob", "batch/v1", wl.name, wl.uid)]),
                    "spec": {"template": self._pod_template(spec), "backoffLimit": 6},
                    "status": {"active": 1}})
            else:
                job_name, job_uid = wl.name, wl.uid
            owner = o.owner_ref("Job", "batch/v1", job_name, job_uid)
            labels = {"job-name": job_name}
            pod_names = [f"{job_name}-{o.suffix(job_name, str(i), generation)}"
                         for i in range(replicas)]
        else:
            raise ScenarioError(f"unknown workload kind {wl.kind!r}")
        policy = "OnFailure" if wl.kind in ("Job", "CronJob") else "Always"
        pods_created = created if initial else self.clock
        for replica, pod_name in enumerate(pod_names):
            node = self.nodes[replica % len(self.nodes)] if wl.kind == "DaemonSet" else None
            pod = self._make_pod(ns, pod_name, owner, labels, spec, replica, pods_created,
                                 policy, node=node, fresh=not initial)
            wl.pods.append(pod)
            self._publish_pod(pod)

    def _make_pod(self, ns: str, name: str, owner: Obj | None, labels: dict[str, str],
                  spec: dict[str, Any], replica: int, created: datetime, policy: str,
                  *, node: str | None = None, fresh: bool = False) -> PodSim:
        uid = o.stable_uid(ns, "pod", name, format_time(created))
        containers: list[ContainerSim] = []
        for kind, key in (("init", "init_containers"), ("container", "containers"),
                          ("ephemeral", "ephemeral_containers")):
            for declared in spec.get(key, []):
                ckind = "sidecar" if kind == "init" and declared.get("sidecar") else kind
                cspec = {**declared, "restarts": 0} if fresh else declared
                containers.append(self._container(cspec, ckind, replica, created, name))
        digest = int(hashlib.sha256(name.encode()).hexdigest()[:6], 16)
        pod = PodSim(ns, name, uid, created, node or self.nodes[digest % len(self.nodes)],
                     labels, owner, containers, policy, ip=self._next_ip())
        for c in containers:
            if c.last_terminated is not None:
                c.last_terminated["containerID"] = o.container_id(uid, c.name, "previous")
            if c.last_crash_at is not None and c.last_crash_at > self.clock - EVENT_TTL:
                self._emit_events(pod, c, c.last_crash_at)
        return pod

    # ---- publishing -----------------------------------------------------------------
    def _status_of(self, pod: PodSim, c: ContainerSim) -> Obj:
        state: Obj
        crashlooping = c.plan is not None and c.plan.backoff and c.last_terminated is not None
        if c.kind == "init":
            state = {"terminated": {"exitCode": 0, "reason": "Completed",
                                    "startedAt": format_time(c.running_since),
                                    "finishedAt": format_time(c.running_since + timedelta(
                                        seconds=2)),
                                    "containerID": o.container_id(pod.uid, c.name, "done")}}
        elif crashlooping:
            state = {"waiting": {"reason": "CrashLoopBackOff", "message": (
                f"back-off 5m0s restarting failed container={c.name} pod={pod.name}_"
                f"{pod.namespace}({pod.uid})")}}
        else:
            state = {"running": {"startedAt": format_time(c.running_since)}}
        status: Obj = {
            "name": c.name, "state": state,
            "lastState": {"terminated": c.last_terminated} if c.last_terminated else {},
            "ready": "running" in state and c.kind != "init",
            "restartCount": c.restarts, "image": c.image,
            "imageID": f"{c.image.split(':')[0]}@sha256:"
                       + hashlib.sha256(c.image.encode()).hexdigest(),
            "containerID": o.container_id(pod.uid, c.name, str(c.restarts)),
            "started": "running" in state,
        }
        return status

    def pod_object(self, pod: PodSim) -> Obj:
        """The pod as the API returns it, built from the simulated state."""
        spec: Obj = {
            "containers": [c.spec for c in pod.containers if c.kind == "container"],
            "restartPolicy": pod.restart_policy, "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst", "serviceAccountName": "default",
            "nodeName": pod.node, "schedulerName": "default-scheduler",
            "securityContext": {}, "priority": 0,
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                 "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                 "effect": "NoExecute", "tolerationSeconds": 300}],
        }
        inits = [c for c in pod.containers if c.kind in ("init", "sidecar")]
        if inits:
            spec["initContainers"] = [c.spec for c in inits]
        ephemerals = [c for c in pod.containers if c.kind == "ephemeral"]
        if ephemerals:
            spec["ephemeralContainers"] = [
                {k: v for k, v in c.spec.items() if k != "resources"} for c in ephemerals]
        apps = [c for c in pod.containers if c.kind in ("container", "sidecar")]
        statuses = [self._status_of(pod, c) for c in pod.containers if c.kind == "container"]
        ready = all(s["ready"] for s in statuses)
        created = format_time(pod.created)
        status: Obj = {
            "phase": "Running",
            "conditions": [
                {"type": "PodReadyToStartContainers", "status": "True",
                 "lastTransitionTime": created},
                {"type": "Initialized", "status": "True", "lastTransitionTime": created},
                {"type": "Ready", "status": "True" if ready else "False",
                 "lastTransitionTime": format_time(max(c.running_since for c in apps))
                 if apps else created,
                 **({} if ready else {"reason": "ContainersNotReady", "message":
                    "containers with unready status: [" + " ".join(
                        s["name"] for s in statuses if not s["ready"]) + "]"})},
                {"type": "ContainersReady", "status": "True" if ready else "False",
                 "lastTransitionTime": created},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": created},
            ],
            "hostIP": "192.168.10." + str(self.nodes.index(pod.node) + 11),
            "podIP": pod.ip, "podIPs": [{"ip": pod.ip}],
            "startTime": created, "qosClass": "BestEffort",
            "containerStatuses": statuses,
        }
        if inits:
            status["initContainerStatuses"] = [self._status_of(pod, c) for c in inits]
        if ephemerals:
            status["ephemeralContainerStatuses"] = [self._status_of(pod, c) for c in ephemerals]
        return {
            "metadata": o.metadata(pod.name, pod.namespace, pod.uid, pod.created,
                                   labels=pod.labels, owners=[pod.owner] if pod.owner else None,
                                   generate_name=pod.name.rsplit("-", 1)[0] + "-"
                                   if pod.owner else None),
            "spec": spec,
            "status": status,
        }

    def _publish_pod(self, pod: PodSim) -> None:
        self.world.put("pods", self.pod_object(pod))
        for c in pod.containers:
            start = c.running_since
            lines = [(start + timedelta(seconds=i), line) for i, line in enumerate(c.healthy_log)]
            self.world.set_log(pod.namespace, pod.name, c.name, lines, previous=False)
            if c.previous_log is not None:
                self.world.set_log(pod.namespace, pod.name, c.name, c.previous_log,
                                   previous=True)

    # ---- crashing -------------------------------------------------------------------
    def _record_crash(self, c: ContainerSim, when: datetime, pod_uid: str | None) -> None:
        plan = c.plan
        assert plan is not None
        started = max(c.running_since, when - plan.every) if c.running_since < when else (
            when - timedelta(minutes=5))
        terminated: Obj = {"exitCode": plan.exit_code, "reason": plan.reason,
                           "startedAt": format_time(started), "finishedAt": format_time(when)}
        if plan.kind == "start-error":
            terminated["startedAt"] = "1970-01-01T00:00:00Z"
        if plan.message:
            terminated["message"] = plan.message
        c.last_terminated = terminated
        c.last_crash_at = when
        c.restarts += 1
        c.running_since = when + timedelta(seconds=10)
        if plan.kind == "start-error":
            log: list[tuple[datetime, str]] = []
        else:
            log = [(started + timedelta(seconds=i), line) for i, line in enumerate(c.healthy_log)]
            log += [(when, line) for line in plan.log]
        c.previous_log = log
        if pod_uid is not None:
            terminated["containerID"] = o.container_id(pod_uid, c.name, str(c.restarts - 1))

    def _emit_events(self, pod: PodSim, c: ContainerSim, when: datetime) -> None:
        plan = c.plan
        assert plan is not None
        involved = {"kind": "Pod", "namespace": pod.namespace, "name": pod.name,
                    "uid": pod.uid, "apiVersion": "v1",
                    "fieldPath": f"spec.containers{{{c.name}}}"}
        events: list[tuple[str, str, str]] = []
        if plan.kind == "liveness":
            port = (c.spec.get("livenessProbe") or {}).get("httpGet", {}).get("port", 8080)
            events.append(("Warning", "Unhealthy", (
                f'Liveness probe failed: Get "http://{pod.ip}:{port}/healthz": context deadline '
                "exceeded (Client.Timeout exceeded while awaiting headers)")))
            events.append(("Normal", "Killing",
                           f"Container {c.name} failed liveness probe, will be restarted"))
        if plan.kind == "start-error":
            events.append(("Warning", "Failed", "Error: " + (plan.message or "StartError")))
        if plan.kind == "oom":
            node_involved = {"kind": "Node", "name": pod.node, "uid": o.stable_uid(
                "node", pod.node), "apiVersion": "v1"}
            limit = c.spec["resources"].get("limits", {}).get("memory", "")
            self._event("default", node_involved, "Warning", "OOMKilling", (
                f"Memory cgroup out of memory: Killed process {4000 + c.restarts % 900} "
                f"({c.name}) total-vm:2871232kB, anon-rss:{limit} file-rss:0kB, shmem-rss:0kB"),
                when, pod.node, component="kernel-monitor")
        events.append(("Normal", "Pulled",
                       f'Container image "{c.image}" already present on machine'))
        events.append(("Normal", "Created", f"Created container {c.name}"))
        events.append(("Normal", "Started", f"Started container {c.name}"))
        if plan.backoff:
            events.append(("Warning", "BackOff", (
                f"Back-off restarting failed container {c.name} in pod "
                f"{pod.name}_{pod.namespace}({pod.uid})")))
        for type_, reason, message in events:
            self._event(pod.namespace, involved, type_, reason, message, when, pod.node)

    def _event(self, ns: str, involved: Obj, type_: str, reason: str, message: str,
               when: datetime, host: str, component: str = "kubelet") -> None:
        key = f"{involved['name']}{reason}{message}"
        name = f"{involved['name']}.{hashlib.sha1(key.encode()).hexdigest()[:16]}"
        existing = self.world.get("events", ns, name)
        if existing is not None and existing["lastTimestamp"] >= format_time(
                when - EVENT_TTL):
            existing["count"] += 1
            existing["lastTimestamp"] = format_time(when)
            self.world.put("events", existing)
            return
        ev = o.event_object(ns, involved, reason, message, when, type_=type_, host=host,
                            component=component)
        ev["metadata"]["name"] = name
        self.world.put("events", ev)

    def _crash_container(self, pod: PodSim, c: ContainerSim, until: datetime,
                         end: datetime) -> bool:
        changed = False
        assert c.plan is not None
        while c.next_crash is not None and c.next_crash <= until:
            when = c.next_crash
            self._record_crash(c, when, pod_uid=pod.uid)
            if when > end - EVENT_TTL:
                self._emit_events(pod, c, when)
            c.next_crash = when + c.plan.every
            changed = True
        return changed

    def advance(self, before: datetime, now: datetime) -> None:
        """World hook: step through (before, now] so replacements, rollouts and crashes
        happen in time order (a pod replaced at 10h crashes on its own schedule after)."""
        t = before
        while t < now:
            t = min(now, t + SIM_STEP)
            self._step(t, now)
        self.clock = now
        self._expire_events(now)

    def _step(self, t: datetime, end: datetime) -> None:
        for wl in self.workloads:
            if wl.rollout_at is not None and wl.rollout_at <= t:
                self.clock, wl.rollout_at = wl.rollout_at, None
                wl.revision += 1
                self._replace_pods(wl)
            elif wl.next_replace is not None and wl.next_replace <= t:
                self.clock = wl.next_replace
                wl.next_replace += wl.replace_every or timedelta(days=1)
                self._replace_pods(wl)
        self.clock = t
        for pod in [*self.bare_pods, *(p for wl in self.workloads for p in wl.pods)]:
            crashed = [self._crash_container(pod, c, t, end) for c in pod.containers if c.plan]
            if any(crashed):
                self._publish_pod(pod)

    def _replace_pods(self, wl: WorkloadSim) -> None:
        for pod in wl.pods:
            self.world.delete("pods", pod.namespace, pod.name)
        wl.pods = []
        if wl.kind == "Deployment":
            self._publish_workload(wl, self.clock - parse_duration(wl.spec.get("age", "10d")))
        self._create_pods(wl, self.clock, initial=False)

    def _expire_events(self, now: datetime) -> None:
        cutoff = format_time(now - EVENT_TTL)
        for (ns, name), ev, _ in list(self.world.items("events")):
            if ev["lastTimestamp"] < cutoff:
                self.world.delete("events", ns, name)


def load_scenario(path: str | Path | None = None) -> dict[str, Any]:
    """Read a scenario YAML file; None loads the built-in default (qld2-production …)."""
    if path is None:
        text = resources.files("bot.sim").joinpath("scenarios/default.yaml").read_text()
    else:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ScenarioError(f"cannot read scenario {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"scenario {path or 'default'} is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or "namespaces" not in data:
        raise ScenarioError(f"scenario {path or 'default'} has no 'namespaces:' mapping")
    return data


def build_world(scenario: dict[str, Any] | None = None, now: datetime | None = None) -> tuple[
        World, Simulation]:
    """A World populated from `scenario` (default: the built-in one)."""
    scenario = scenario if scenario is not None else load_scenario()
    world = World(now=now or datetime.now(UTC), cluster_name=str(scenario.get("cluster", "sim")))
    return world, Simulation(world, scenario)
