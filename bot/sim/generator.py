"""Generated clusters: large ones for benchmarks (10k, 100k pods), loaded pre-serialised,
and a crash-looping namespace for Slack's limits.

`generate_world`: Deployments of `pods_per_deployment` replicas spread over `namespaces`
namespaces; a fraction of containers has restarts and a last termination. No events or
logs: the benchmark measures listing, roll-up, deltas and the store write.
`crashloop_scenario`: a scenario (run by `Simulation`, so with logs, events and
CrashLoopBackOff) whose names, logs and messages stretch every Block Kit limit.
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


# ---- a crash-looping namespace, for Slack's Block Kit limits ---------------------------

_HTML_ERROR = ('<html><head><title>502 Bad Gateway</title></head><body bgcolor="white">'
               '<center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center>'
               '<p>upstream=&quot;ledger&quot; &amp; retry=&lt;none&gt;</p></body></html>')

CRASHLOOP_LOGS: dict[str, str] = {
    # A Go panic whose message carries <, > and & (each grows when escaped for Slack).
    "go-template-panic": "\n".join([
        *(f"2026/11/27 09:00:{i:02d} WARN upstream answered {_HTML_ERROR}" for i in range(12)),
        "panic: template: invoice:1:10: executing \"invoice\" at <.Customer.Name>: nil "
        "pointer evaluating *model.Customer.Name & <.Lines> " + "&lt;" * 600,
        "",
        "goroutine 1 [running]:",
        "main.render(0xc000010000)",
        "\t/src/cmd/invoice/main.go:88 +0x1d4",
    ]),
    # One enormous JSON line, then a runtime fatal error.
    "go-fatal-long-line": "\n".join([
        '{"level":"debug","msg":"state dump","state":"' + "ab&<>" * 4000 + '"}',
        "fatal error: concurrent map writes",
        "",
        "goroutine 77 [running]:",
        "internal/runtime/maps.fatal({0x1a2b3c, 0x15})",
        "\t/usr/local/go/src/runtime/panic.go:1058 +0x18",
    ]),
    # A long chained Python traceback with a very long final message.
    "py-deep-chain": "\n".join([
        "Traceback (most recent call last):",
        *(f'  File "/app/worker/stage_{i}.py", line {10 + i}, in run_stage_{i}\n'
          f"    return run_stage_{i + 1}(payload[\"<item>\"] & mask)" for i in range(60)),
        "ConnectionRefusedError: [Errno 111] Connection refused",
        "",
        "The above exception was the direct cause of the following exception:",
        "",
        "Traceback (most recent call last):",
        '  File "/app/worker/main.py", line 12, in <module>',
        "    main()",
        "RuntimeError: pipeline <ingest> failed: " + "stage <x> & <y> refused; " * 200,
    ]),
    # A JVM exception whose messages are full of generics.
    "jvm-generics": "\n".join([
        "Exception in thread \"main\" java.lang.IllegalStateException: cannot bind "
        + "Map<String, List<Optional<Invoice>>> & " * 80,
        *(f"\tat com.example.billing.Stage{i}.apply(Stage{i}.java:{i + 20})" for i in range(80)),
        "Caused by: java.lang.ClassCastException: class java.util.ArrayList<E> cannot be cast "
        "to class java.util.Map<K,V>",
        "\tat com.example.billing.Loader.load(Loader.java:44)",
    ]),
    # Short in characters, long once escaped: < > & become &lt; &gt; &amp; in Slack.
    "html-dump": "\n".join([
        *(f"<tr><td>&#{i};</td><td>&lt;&amp;&gt;</td><td><b>&</b></td></tr>" for i in range(40)),
        "Error: render failed <table> & exiting",
    ]),
}

_CRASHLOOP_KINDS: tuple[tuple[int, str, str], ...] = (
    (2, "Error", "go-template-panic"),
    (2, "Error", "go-fatal-long-line"),
    (1, "Error", "py-deep-chain"),
    (1, "Error", "jvm-generics"),
    (1, "Error", "html-dump"),
)


def crashloop_scenario(pods: int = 5000, *, namespace: str = "crashloop",
                       workloads: int = 60, pods_per_workload: int = 10, containers: int = 3,
                       cluster: str = "arn:aws:eks:ap-southeast-2:123456789012:cluster/"
                                      "qld2-production-blue-green-canary-" + "x" * 66
                       ) -> dict[str, Any]:
    """A scenario (for `build_world`) with one namespace of `pods` crash-looping pods.

    `workloads` Deployments with long names run `pods_per_workload` pods of `containers`
    containers each, which crashed minutes ago (so events are fresh) with logs that stretch
    Slack's limits: long lines, `<>&` that grow when escaped, deep traceback chains, 4 KiB
    termination messages. One more Deployment, `fleet`, holds the remaining pods (one
    container each, last crash over an hour ago, so the world stays small and quick to
    build; a StatefulSet's ordinal names never collide). Every container is in
    CrashLoopBackOff.
    """
    message = ("termination message: " + "x<&>" * 1100)[:4096]  # the kubelet's 4 KiB cap

    def containers_of(w: int, count: int, recent: bool) -> list[dict[str, Any]]:
        out = []
        for c in range(count):
            exit_code, reason, log = _CRASHLOOP_KINDS[(w + c) % len(_CRASHLOOP_KINDS)]
            crash = {"every": "10m" if recent else "3h",
                     "first_after": f"{1 + (w + c) % 9}m" if recent else "2h",
                     "exit_code": exit_code, "reason": reason, "log": log,
                     "message": message, "backoff": True}
            out.append({"name": f"c{c}-{log}", "image": f"registry.local/{log}:1.{w}",
                        "memory": "256Mi", "liveness": "http:8080",
                        "restarts": 40 + (w * 7 + c) % 300, "crash": crash})
        return out

    long_name = "payments-settlement-reconciliation-worker-for-the-asia-pacific-region"
    small = max(0, min(workloads, pods // max(pods_per_workload, 1) - 1))
    specs: list[dict[str, Any]] = [
        {"kind": "Deployment", "name": f"{long_name}-{w:03d}-" + "x" * (150 - len(long_name)),
         "replicas": pods_per_workload, "age": f"{w % 30 + 1}d",
         "containers": containers_of(w, containers, recent=True)}
        for w in range(small)]
    rest = pods - small * pods_per_workload
    if rest > 0:
        specs.insert(0, {"kind": "StatefulSet", "name": "fleet", "replicas": rest, "age": "9d",
                         "containers": containers_of(small, 1, recent=False)})
    return {"cluster": cluster, "nodes": [f"node-{i:02d}" for i in range(20)],
            "logs": dict(CRASHLOOP_LOGS), "namespaces": {namespace: {"workloads": specs}}}
