"""Large generated clusters for benchmarks (10k, 100k pods), loaded pre-serialised.

Deployments of `pods_per_deployment` replicas spread over `namespaces` namespaces; a
fraction of containers has restarts and a last termination. No events or logs: the
benchmark measures listing, roll-up, deltas and the store write.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.sim import objects as o
from bot.sim.world import World, format_time


def generate_world(pods: int, *, namespaces: int = 100, pods_per_deployment: int = 10,
                   crash_every: int = 20, now: datetime | None = None) -> World:
    """A World with `pods` pods; every `crash_every`-th pod has restarts (exit 2)."""
    world = World(now=now or datetime.now(UTC), cluster_name=f"generated-{pods}")
    created = world.now - timedelta(days=30)
    stamp = format_time(created)
    nodes = [f"node-{i:03d}" for i in range(max(1, pods // 100))]
    world.load("nodes", [o.node_object(n, created) for n in nodes])
    world.load("namespaces", [o.namespace_object(f"team-{i:03d}", created)
                              for i in range(namespaces)])
    deployments: list[dict[str, Any]] = []
    replicasets: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    deployments_total = max(1, pods // pods_per_deployment)
    for d in range(deployments_total):
        ns = f"team-{d % namespaces:03d}"
        name = f"svc-{d:06d}"
        dep_uid = o.stable_uid(ns, "deploy", name)
        rs_hash = o.template_hash(ns, name)
        rs_name = f"{name}-{rs_hash}"
        rs_uid = o.stable_uid(ns, "rs", rs_name)
        deployments.append({"metadata": o.metadata(name, ns, dep_uid, created,
                                                    labels={"app": name}),
                            "spec": {"replicas": pods_per_deployment}, "status": {}})
        replicasets.append({"metadata": o.metadata(
            rs_name, ns, rs_uid, created, labels={"app": name, "pod-template-hash": rs_hash},
            owners=[o.owner_ref("Deployment", "apps/v1", name, dep_uid)]),
            "spec": {"replicas": pods_per_deployment}, "status": {}})
        owner = o.owner_ref("ReplicaSet", "apps/v1", rs_name, rs_uid)
        for r in range(pods_per_deployment):
            n = d * pods_per_deployment + r
            if n >= pods:
                break
            pod_name = f"{rs_name}-{o.suffix(rs_name, str(r))}"
            restarts = (n % 7) + 1 if n % crash_every == 0 else 0
            status: dict[str, Any] = {
                "name": "app", "ready": True, "restartCount": restarts, "started": True,
                "image": f"registry.local/{name}:1.0.{n % 9}",
                "imageID": f"registry.local/{name}@sha256:{'ab' * 32}",
                "containerID": o.container_id(pod_name),
                "state": {"running": {"startedAt": stamp}},
                "lastState": {"terminated": {"exitCode": 2, "reason": "Error",
                                             "startedAt": stamp, "finishedAt": stamp}}
                if restarts else {},
            }
            items.append({
                "metadata": o.metadata(pod_name, ns, o.stable_uid(ns, pod_name), created,
                                       labels={"app": name, "pod-template-hash": rs_hash},
                                       owners=[owner], generate_name=rs_name + "-"),
                "spec": {"containers": [o.container_spec(
                    "app", status["image"], liveness=o.probe_spec("http", 8080),
                    readiness=o.probe_spec("http", 8080), memory_limit="256Mi")],
                    "restartPolicy": "Always", "nodeName": nodes[n % len(nodes)],
                    "serviceAccountName": "default", "terminationGracePeriodSeconds": 30},
                "status": {"phase": "Running", "podIP": f"10.{n // 65536 % 256}.{n // 256 % 256}"
                           f".{n % 256}", "hostIP": "192.168.0.1", "startTime": stamp,
                           "qosClass": "Burstable", "conditions": [
                               {"type": "Ready", "status": "True",
                                "lastTransitionTime": stamp}],
                           "containerStatuses": [status]},
            })
    world.load("deployments", deployments)
    world.load("replicasets", replicasets)
    world.load("pods", items)
    return world


def bump_restarts(world: World, every: int = 10) -> int:
    """Add one restart to every `every`-th pod (for a second, delta-producing patrol)."""
    bumped: list[dict[str, Any]] = []
    for i, (_, pod, _) in enumerate(list(world.items("pods"))):
        if i % every == 0:
            status = pod["status"]["containerStatuses"][0]
            status["restartCount"] += 1
            bumped.append(pod)
    world.load("pods", bumped)
    return len(bumped)
