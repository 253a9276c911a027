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


# ---- pods shaped like a real cluster's ---------------------------------------------

REALISTIC_LOGS: dict[str, tuple[int, str, list[str]]] = {
    # exit code, reason, the previous container's last lines
    "go-panic": (2, "Error", [
        *(f'{{"level":"info","ts":"2026-12-01T08:59:{i:02d}Z","msg":"batch flushed",'
          f'"items":{i * 7}}}' for i in range(40)),
        "panic: runtime error: invalid memory address or nil pointer dereference",
        "[signal SIGSEGV: segmentation violation code=0x1 addr=0x18 pc=0x8a1f2c]",
        "",
        "goroutine 1127 [running]:",
        "shop/internal/orders.(*Batcher).flush(0xc0003a2000, {0xc00081e000, 0x80, 0x80})",
        "\t/src/internal/orders/batcher.go:142 +0x8c",
        "created by shop/internal/orders.NewBatcher in goroutine 1",
        "\t/src/internal/orders/batcher.go:61 +0x1d4",
    ]),
    "python-refused": (1, "Error", [
        *(f"2026-12-01 08:59:{i:02d},120 INFO worker: polled 0 jobs" for i in range(40)),
        "Traceback (most recent call last):",
        '  File "/app/worker/main.py", line 88, in <module>',
        "    main()",
        '  File "/app/worker/db.py", line 31, in connect',
        "    return psycopg.connect(DSN)",
        "psycopg.OperationalError: connection failed: Connection refused",
    ]),
    "jvm-oom": (137, "OOMKilled", [
        *(f"2026-12-01T08:59:{i:02d}.001Z INFO  [main] c.e.ledger.Sync - synced {i} rows"
          for i in range(40)),
        "Exception in thread \"main\" java.lang.OutOfMemoryError: Java heap space",
        "\tat java.base/java.util.Arrays.copyOf(Arrays.java:3537)",
        "\tat com.example.ledger.Sync.load(Sync.java:77)",
    ]),
    "sidecar-probe": (137, "Error", [
        *(f"[2026-12-01 08:59:{i:02d}.500][1][info][upstream] cds: add 12 cluster(s)"
          for i in range(40)),
        "[2026-12-01 09:00:00.000][1][warning][main] caught SIGTERM",
    ]),
}


def _managed_fields(stamp: str, containers: tuple[str, ...]) -> list[dict[str, Any]]:
    """managedFields as the API server writes them: the controller's spec, the kubelet's
    status (large nested fieldsV1 maps that a client never reads)."""
    def container_fields() -> dict[str, Any]:
        return {".": {}, "f:env": {".": {}, **{f'k:{{"name":"{n}"}}': {
            ".": {}, "f:name": {}, "f:value": {}} for n in ("LOG_LEVEL", "PORT",
                                                            "REGION", "OTEL_ENDPOINT")}},
            "f:image": {}, "f:imagePullPolicy": {},
            "f:livenessProbe": {".": {}, "f:failureThreshold": {}, "f:httpGet": {
                ".": {}, "f:path": {}, "f:port": {}, "f:scheme": {}},
                "f:periodSeconds": {}, "f:successThreshold": {}, "f:timeoutSeconds": {}},
            "f:name": {}, "f:ports": {".": {}, 'k:{"containerPort":8080,"protocol":"TCP"}': {
                ".": {}, "f:containerPort": {}, "f:name": {}, "f:protocol": {}}},
            "f:readinessProbe": {".": {}, "f:failureThreshold": {}, "f:httpGet": {
                ".": {}, "f:path": {}, "f:port": {}, "f:scheme": {}},
                "f:periodSeconds": {}, "f:successThreshold": {}, "f:timeoutSeconds": {}},
            "f:resources": {".": {}, "f:limits": {".": {}, "f:cpu": {}, "f:memory": {}},
                            "f:requests": {".": {}, "f:cpu": {}, "f:memory": {}}},
            "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}}
    spec: dict[str, Any] = {"f:metadata": {"f:generateName": {}, "f:labels": {
        ".": {}, "f:app": {}, "f:app.kubernetes.io/name": {}, "f:pod-template-hash": {},
        "f:version": {}}, "f:ownerReferences": {".": {}, 'k:{"uid":"…"}': {}}},
        "f:spec": {"f:containers": {f'k:{{"name":"{c}"}}': container_fields()
                                    for c in containers},
                   "f:dnsPolicy": {}, "f:enableServiceLinks": {}, "f:restartPolicy": {},
                   "f:schedulerName": {}, "f:securityContext": {},
                   "f:terminationGracePeriodSeconds": {}}}
    status: dict[str, Any] = {"f:status": {"f:conditions": {
        f'k:{{"type":"{t}"}}': {".": {}, "f:lastProbeTime": {}, "f:lastTransitionTime": {},
                                "f:status": {}, "f:type": {}}
        for t in ("ContainersReady", "Initialized", "PodReadyToStartContainers", "Ready")},
        "f:containerStatuses": {}, "f:hostIP": {}, "f:hostIPs": {}, "f:phase": {},
        "f:podIP": {}, "f:podIPs": {".": {}, 'k:{"ip":"…"}': {".": {}, "f:ip": {}}},
        "f:startTime": {}}}
    return [{"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
             "time": stamp, "fieldsType": "FieldsV1", "fieldsV1": spec},
            {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": stamp,
             "fieldsType": "FieldsV1", "fieldsV1": status, "subresource": "status"}]


def _realistic_container(name: str, image: str, port: int, memory: str, cpu: str,
                         env: dict[str, str]) -> dict[str, Any]:
    spec = o.container_spec(name, image, liveness=o.probe_spec("http", port),
                            readiness=o.probe_spec("http", port), memory_limit=memory)
    spec["resources"] = {"limits": {"cpu": cpu, "memory": memory},
                         "requests": {"cpu": cpu, "memory": memory}}
    spec["env"] = [{"name": k, "value": v} for k, v in env.items()]
    spec["ports"] = [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    spec["volumeMounts"] = [{"name": "kube-api-access", "readOnly": True,
                             "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]
    return spec


def generate_realistic_world(pods: int, *, restarting: float = 0.2, namespaces: int = 100,
                             pods_per_deployment: int = 10, now: datetime | None = None
                             ) -> World:
    """A World of `pods` pods shaped like a real cluster's: two containers (app + an
    Envoy sidecar) with liveness/readiness probes, CPU and memory requests and limits, four
    env vars, ports and a service-account volume; labels, annotations, `managedFields` and
    a ReplicaSet owner (whose Deployment exists); five pod conditions, IPs, image ids.
    A fraction `restarting` of the pods (spread evenly) has restarts with a last
    termination (exit 2, 1, 137 OOMKilled, or the sidecar's 137), a previous log and a
    BackOff event. Lists serve them in key order (as etcd does).

    Per Deployment the spec, managedFields and labels are one shared object (orjson
    writes each pod in full), which keeps a 100k-pod simulator within a few GB."""
    world = World(now=now or datetime.now(UTC), cluster_name=f"realistic-{pods}")
    created = world.now - timedelta(days=30)
    stamp = format_time(created)
    crashed_at = format_time(world.now - timedelta(minutes=20))
    started_at = format_time(world.now - timedelta(minutes=19))
    nodes = [f"ip-10-0-{i // 256}-{i % 256}.ec2.internal" for i in range(max(1, pods // 50))]
    world.load("nodes", [o.node_object(n, created) for n in nodes])
    world.load("namespaces", [o.namespace_object(f"team-{i:03d}", created)
                              for i in range(namespaces)])
    kinds = list(REALISTIC_LOGS)
    log_lines = {k: [(world.now - timedelta(minutes=20, seconds=len(lines) - i), line)
                     for i, line in enumerate(lines)]
                 for k, (_, _, lines) in REALISTIC_LOGS.items()}
    every = round(1 / restarting) if restarting > 0 else 0
    deployments: list[dict[str, Any]] = []
    replicasets: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for d in range(max(1, -(-pods // pods_per_deployment))):
        ns = f"team-{d % namespaces:03d}"
        name = f"svc-{d:06d}"
        dep_uid = o.stable_uid(ns, "deploy", name)
        rs_hash = o.template_hash(ns, name)
        rs_name = f"{name}-{rs_hash}"
        rs_uid = o.stable_uid(ns, "rs", rs_name)
        labels = {"app": name, "app.kubernetes.io/name": name, "version": f"1.4.{d % 9}",
                  "pod-template-hash": rs_hash}
        deployments.append({"metadata": o.metadata(name, ns, dep_uid, created,
                                                    labels={"app": name}),
                            "spec": {"replicas": pods_per_deployment}, "status": {}})
        replicasets.append({"metadata": o.metadata(
            rs_name, ns, rs_uid, created, labels=labels,
            owners=[o.owner_ref("Deployment", "apps/v1", name, dep_uid)]),
            "spec": {"replicas": pods_per_deployment}, "status": {}})
        owners = [o.owner_ref("ReplicaSet", "apps/v1", rs_name, rs_uid)]
        image = f"123456789012.dkr.ecr.ap-southeast-2.amazonaws.com/{name}:1.4.{d % 9}"
        sidecar_image = "docker.io/envoyproxy/envoy:v1.31.2"
        env = {"LOG_LEVEL": "info", "PORT": "8080", "REGION": "ap-southeast-2",
               "OTEL_ENDPOINT": "http://otel-collector.observability:4317"}
        containers = [_realistic_container("app", image, 8080, "512Mi", "250m", env),
                      _realistic_container("envoy", sidecar_image, 9901, "128Mi", "100m",
                                           {"ENVOY_UID": "0", "ENVOY_LOG_LEVEL": "warn",
                                            "ADMIN_PORT": "9901", "CLUSTER": ns})]
        spec = {"containers": containers, "restartPolicy": "Always",
                "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
                "serviceAccountName": "default", "serviceAccount": "default",
                "securityContext": {}, "schedulerName": "default-scheduler",
                "tolerations": [{"key": f"node.kubernetes.io/{t}", "operator": "Exists",
                                 "effect": "NoExecute", "tolerationSeconds": 300}
                                for t in ("not-ready", "unreachable")],
                "priority": 0, "enableServiceLinks": True,
                "preemptionPolicy": "PreemptLowerPriority",
                "volumes": [{"name": "kube-api-access", "projected": {
                    "defaultMode": 420, "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607,
                                                 "path": "token"}},
                        {"configMap": {"name": "kube-root-ca.crt",
                                       "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
                            "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}}]}
        managed = _managed_fields(stamp, ("app", "envoy"))
        annotations = {"kubectl.kubernetes.io/restartedAt": stamp,
                       "prometheus.io/scrape": "true", "prometheus.io/port": "9901"}
        for r in range(pods_per_deployment):
            n = d * pods_per_deployment + r
            if n >= pods:
                break
            pod_name = f"{rs_name}-{o.suffix(rs_name, str(r))}"
            uid = o.stable_uid(ns, pod_name)
            meta = o.metadata(pod_name, ns, uid, created, labels=labels, owners=owners,
                              generate_name=rs_name + "-", annotations=annotations)
            meta["labels"] = labels  # shared, not copied
            meta["annotations"] = annotations
            meta["managedFields"] = managed
            crash = kinds[(n // max(every, 1)) % len(kinds)] if every and n % every == 0 \
                else None
            statuses = []
            for c, cimage in (("app", image), ("envoy", sidecar_image)):
                crashed = crash is not None and (c == "envoy") == (crash == "sidecar-probe")
                exit_code, reason, _ = REALISTIC_LOGS[crash] if crash else (0, "", [])
                statuses.append({
                    "name": c, "ready": True, "started": True,
                    "restartCount": (n % 13) + 1 if crashed else 0,
                    "image": cimage, "imageID": f"{cimage.split(':')[0]}@sha256:{'ab' * 32}",
                    "containerID": o.container_id(pod_name, c),
                    "state": {"running": {"startedAt": started_at if crashed else stamp}},
                    "lastState": {"terminated": {
                        "exitCode": exit_code, "reason": reason, "startedAt": stamp,
                        "finishedAt": crashed_at,
                        "containerID": o.container_id(pod_name, c, "previous")}}
                    if crashed else {},
                    "volumeMounts": [{"name": "kube-api-access", "readOnly": True,
                                      "recursiveReadOnly": "Disabled", "mountPath":
                                      "/var/run/secrets/kubernetes.io/serviceaccount"}]})
                if crashed and crash is not None:
                    world.set_log(ns, pod_name, c, log_lines[crash], previous=True)
                    events.append(o.event_object(
                        ns, {"kind": "Pod", "namespace": ns, "name": pod_name, "uid": uid,
                             "apiVersion": "v1", "fieldPath": f"spec.containers{{{c}}}"},
                        "BackOff", f"Back-off restarting failed container {c} in pod "
                        f"{pod_name}_{ns}({uid})", world.now - timedelta(minutes=19),
                        count=(n % 13) + 1, host=nodes[n % len(nodes)]))
            ip = f"10.{100 + n // 65536 % 100}.{n // 256 % 256}.{n % 256}"
            host = f"10.0.{n % len(nodes) // 256}.{n % len(nodes) % 256}"
            conditions = [{"type": t, "status": "True", "lastProbeTime": None,
                           "lastTransitionTime": stamp}
                          for t in ("PodReadyToStartContainers", "Initialized", "Ready",
                                    "ContainersReady", "PodScheduled")]
            items.append({"metadata": meta, "spec": {**spec, "nodeName": nodes[n % len(nodes)]},
                          "status": {"phase": "Running", "conditions": conditions,
                                     "hostIP": host, "hostIPs": [{"ip": host}],
                                     "podIP": ip, "podIPs": [{"ip": ip}], "startTime": stamp,
                                     "qosClass": "Guaranteed",
                                     "containerStatuses": statuses}})
    world.load("deployments", deployments)
    world.load("replicasets", replicasets)
    world.load("pods", items)
    world.load("events", events)
    return world


def bump_realistic(world: World, every: int = 10) -> int:
    """Add one restart to the app container of every `every`-th pod (a second,
    delta-producing patrol); the status is copied, never shared with other pods."""
    bumped: list[dict[str, Any]] = []
    for i, (_, pod, _) in enumerate(list(world.items("pods"))):
        if i % every == 0:
            statuses = [dict(s) for s in pod["status"]["containerStatuses"]]
            statuses[0]["restartCount"] += 1
            pod["status"] = {**pod["status"], "containerStatuses": statuses}
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
