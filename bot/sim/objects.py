"""Builders for the JSON objects the simulated API serves, shaped like a real cluster's."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any

from bot.sim.world import Obj, format_time


def stable_uid(*parts: str) -> str:
    """A UUID derived from names, so scenarios are reproducible run to run."""
    return str(uuid.UUID(bytes=hashlib.sha256("/".join(parts).encode()).digest()[:16], version=4))


def suffix(*parts: str, length: int = 5) -> str:
    """A pod-name style suffix (consonants and digits, like the ReplicaSet controller)."""
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return "".join(alphabet[b % len(alphabet)] for b in digest[:length])


def template_hash(*parts: str) -> str:
    """A pod-template-hash style string (10 chars)."""
    return suffix(*parts, length=10)


def owner_ref(kind: str, api_version: str, name: str, uid: str) -> Obj:
    return {
        "apiVersion": api_version, "kind": kind, "name": name, "uid": uid,
        "controller": True, "blockOwnerDeletion": True,
    }


def metadata(
    name: str, namespace: str | None, uid: str, created: datetime,
    labels: dict[str, str] | None = None, owners: list[Obj] | None = None,
    generate_name: str | None = None, annotations: dict[str, str] | None = None,
) -> Obj:
    meta: Obj = {"name": name, "uid": uid, "creationTimestamp": format_time(created)}
    if namespace is not None:
        meta["namespace"] = namespace
    if generate_name:
        meta["generateName"] = generate_name
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    if owners:
        meta["ownerReferences"] = owners
    return meta


def namespace_object(name: str, created: datetime) -> Obj:
    return {
        "metadata": metadata(name, None, stable_uid("ns", name), created,
                             labels={"kubernetes.io/metadata.name": name}),
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def node_object(name: str, created: datetime, arch: str = "amd64") -> Obj:
    return {
        "metadata": metadata(name, None, stable_uid("node", name), created, labels={
            "kubernetes.io/hostname": name, "kubernetes.io/arch": arch,
            "kubernetes.io/os": "linux"}),
        "spec": {"podCIDR": "10.244.0.0/24"},
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "kubelet is posting ready status",
                            "lastHeartbeatTime": format_time(created),
                            "lastTransitionTime": format_time(created)}],
            "addresses": [{"type": "Hostname", "address": name}],
            "nodeInfo": {"architecture": arch, "containerRuntimeVersion": "containerd://1.7.22",
                         "kubeletVersion": "v1.31.0", "operatingSystem": "linux",
                         "osImage": "Ubuntu 22.04.4 LTS", "kernelVersion": "5.15.0-119-generic"},
            "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
            "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
        },
    }


def probe_spec(kind: str, port: int) -> Obj:
    """A probe of `kind` (http or tcp) on `port`, with the defaults the API fills in."""
    handler: Obj = (
        {"httpGet": {"path": "/healthz", "port": port, "scheme": "HTTP"}}
        if kind == "http" else {"tcpSocket": {"port": port}}
    )
    return {**handler, "initialDelaySeconds": 5, "periodSeconds": 10, "timeoutSeconds": 1,
            "successThreshold": 1, "failureThreshold": 3}


def container_spec(
    name: str, image: str, *, liveness: Obj | None = None, readiness: Obj | None = None,
    memory_limit: str | None = None, restart_policy: str | None = None,
) -> Obj:
    spec: Obj = {
        "name": name, "image": image, "imagePullPolicy": "IfNotPresent",
        "resources": {}, "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }
    if memory_limit:
        spec["resources"] = {"limits": {"memory": memory_limit},
                             "requests": {"memory": memory_limit}}
    if liveness:
        spec["livenessProbe"] = liveness
    if readiness:
        spec["readinessProbe"] = readiness
    if restart_policy:
        spec["restartPolicy"] = restart_policy
    return spec


def container_id(*parts: str) -> str:
    return "containerd://" + hashlib.sha256("/".join(parts).encode()).hexdigest()


def event_object(
    namespace: str, involved: Obj, reason: str, message: str, when: datetime,
    *, type_: str = "Warning", count: int = 1, first: datetime | None = None,
    component: str = "kubelet", host: str | None = None, seq: int = 0,
) -> Obj:
    name = f"{involved['name']}.{hashlib.sha1(f'{reason}{message}{seq}'.encode()).hexdigest()[:16]}"
    return {
        "metadata": {"name": name, "namespace": namespace,
                     "uid": stable_uid("event", namespace, name),
                     "creationTimestamp": format_time(first or when)},
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "source": {"component": component, **({"host": host} if host else {})},
        "firstTimestamp": format_time(first or when),
        "lastTimestamp": format_time(when),
        "count": count,
        "type": type_,
        "eventTime": None,
        "reportingComponent": component,
        "reportingInstance": host or "",
    }


def status_object(code: int, reason: str, message: str, details: Obj | None = None,
                  meta: Obj | None = None) -> Obj:
    """A `kind: Status` failure body, exactly as the API server returns errors."""
    body: dict[str, Any] = {
        "kind": "Status", "apiVersion": "v1", "metadata": meta or {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
    }
    if details:
        body["details"] = details
    return body
