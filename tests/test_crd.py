"""The IngestionJob CRD (crds/ingestionjob.yaml), the examples, and their agreement with the
pydantic spec (kubeingest/spec.py).

No API server here, so the CRD is checked the ways that are possible without one: as a
Kubernetes object (client models, the Kubernetes OpenAPI schema), against the rules the API
server applies to structural schemas, and as a validator (tests/crd_schema.py) that must accept
and reject exactly what the pydantic model accepts and rejects.
"""

from __future__ import annotations

import copy
import re
import types
import typing
from collections.abc import Iterator
from enum import Enum
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from jsonschema import Draft202012Validator
from kubernetes.client import ApiClient, V1CustomResourceDefinition, V1JSONSchemaProps
from pydantic import BaseModel

from kubeingest.spec import IngestionJobSpec, SpecError, parse_manifest, parse_spec
from tests import crd_schema
from tests.crd_schema import (
    EXAMPLES_DIR,
    apply_defaults,
    ingestion_jobs,
    load_crd,
    to_json_schema,
    validate_manifest,
    validate_update,
    version_schema,
)

Schema = dict[str, Any]


@pytest.fixture(scope="module")
def crd() -> Schema:
    return load_crd()


@pytest.fixture(scope="module")
def schema(crd: Schema) -> Schema:
    return version_schema(crd)


def iter_nodes(node: Schema, path: str = "") -> Iterator[tuple[str, Schema]]:
    """Every schema node with a readable path: `spec.sources[].inline`, `...metadata{}`."""
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from iter_nodes(sub, f"{path}.{name}" if path else name)
    if isinstance(node.get("items"), dict):
        yield from iter_nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from iter_nodes(node["additionalProperties"], f"{path}{{}}")


def node_at(schema: Schema, path: str) -> Schema:
    node = schema
    for part in re.findall(r"[^.\[\]]+|\[\]", path):
        node = node["items"] if part == "[]" else node["properties"][part]
    return node


def minimal_spec() -> dict[str, Any]:
    return {
        "sources": [{"inline": {"documents": [{"text": "hello"}]}}],
        "destination": {"collection": "docs"},
    }


def manifest(spec: dict[str, Any], name: str = "job") -> dict[str, Any]:
    return {"apiVersion": "kubeingest.io/v1alpha1", "kind": "IngestionJob",
            "metadata": {"name": name}, "spec": spec}


# --------------------------------------------------------------------------------------------
# The CRD as a Kubernetes object


def test_crd_parses_as_a_kubernetes_client_model(crd: Schema) -> None:
    with ApiClient() as api:
        model = api._ApiClient__deserialize(crd, "V1CustomResourceDefinition")
        # Nothing is lost on the way through the client's models (a misspelt key would be).
        assert api.sanitize_for_serialization(model) == crd
    assert isinstance(model, V1CustomResourceDefinition)
    assert model.api_version == "apiextensions.k8s.io/v1"
    assert model.metadata is not None
    assert model.metadata.name == "ingestionjobs.kubeingest.io"
    assert model.spec.group == "kubeingest.io"
    assert model.spec.scope == "Namespaced"
    names = model.spec.names
    assert (names.kind, names.list_kind, names.plural, names.singular) == (
        "IngestionJob", "IngestionJobList", "ingestionjobs", "ingestionjob")
    assert names.short_names == ["ij"]
    assert names.categories == ["kubeingest"]  # and so not "all"
    [version] = model.spec.versions
    assert (version.name, version.served, version.storage) == ("v1alpha1", True, True)
    assert version.subresources is not None
    assert version.subresources.status == {}
    assert version.subresources.scale is None
    assert version.schema is not None
    root = version.schema.open_apiv3_schema
    assert isinstance(root, V1JSONSchemaProps)
    spec = (root.properties or {})["spec"]
    assert (spec.properties or {})["chunking"].x_kubernetes_validations


def test_crd_is_valid_against_the_kubernetes_openapi_schema(crd: Schema) -> None:
    kubernetes_validate.validate(crd, kubernetes_validate.latest_version(), strict=True)


def test_printer_columns(crd: Schema, schema: Schema) -> None:
    [version] = crd["spec"]["versions"]
    columns = [(c["name"], c["type"], c["jsonPath"], c.get("priority", 0))
               for c in version["additionalPrinterColumns"]]
    assert columns == [
        ("Phase", "string", ".status.phase", 0),
        ("Progress", "string", ".status.progress", 0),
        ("Chunks", "integer", ".status.chunks.embedded", 0),
        ("Failed", "integer", ".status.chunks.failed", 0),
        ("Model", "string", ".spec.embedding.model", 1),
        ("Succeeded", "string", '.status.conditions[?(@.type=="Succeeded")].status', 1),
        ("Age", "date", ".metadata.creationTimestamp", 0),
    ]
    # Every column points at a declared field of its type (a mismatch shows an empty cell).
    for name, ctype, json_path, _ in columns:
        if json_path == ".metadata.creationTimestamp":
            continue
        node = schema
        for field, selector in re.findall(r'\.(\w+)(\[\?\(@\.type=="\w+"\)\])?', json_path):
            node = node["properties"][field]
            if selector:
                assert node["type"] == "array", name
                node = node["items"]
        assert node["type"] == ctype, f"column {name}: {json_path} is {node['type']}"
    succeeded = node_at(schema, "status.conditions[].status")
    assert "True" in succeeded["enum"]


# --------------------------------------------------------------------------------------------
# Structural schema: the rules the API server enforces when the CRD is created


def test_every_node_has_a_type(schema: Schema) -> None:
    untyped = [p or "<root>" for p, n in iter_nodes(schema)
               if "type" not in n and not n.get("x-kubernetes-int-or-string")
               and not n.get("x-kubernetes-preserve-unknown-fields")]
    assert untyped == []


def test_schema_is_structural(schema: Schema) -> None:
    problems = []
    for path, node in iter_nodes(schema):
        for junctor in ("allOf", "anyOf", "oneOf", "not"):
            if junctor in node:  # none needed; inside them no type/default is allowed anyway
                problems.append(f"{path}: {junctor}")
        if "properties" in node and "additionalProperties" in node:
            problems.append(f"{path}: both properties and additionalProperties")
        if "items" in node and not isinstance(node["items"], dict):
            problems.append(f"{path}: items must be one schema")
        if node.get("type") == "array" and "items" not in node:
            problems.append(f"{path}: array without items")
    # Root: only apiVersion, kind, metadata (no constraints: the API server owns it), spec, status.
    assert set(schema["properties"]) == {"apiVersion", "kind", "metadata", "spec", "status"}
    assert schema["properties"]["metadata"] == {"type": "object"}
    assert problems == []


def test_nothing_preserves_unknown_fields(schema: Schema) -> None:
    assert [p for p, n in iter_nodes(schema) if "x-kubernetes-preserve-unknown-fields" in n] == []
    assert [p for p, n in iter_nodes(schema) if n.get("x-kubernetes-embedded-resource")] == []


def test_status_is_declared_in_full(schema: Schema) -> None:
    status = schema["properties"]["status"]
    types_ = {name: node["type"] for name, node in status["properties"].items()}
    assert types_ == {
        "phase": "string", "message": "string", "observedGeneration": "integer",
        "jobId": "string", "documents": "object", "chunks": "object", "progress": "string",
        "chunksPerSecond": "number", "startTime": "string", "completionTime": "string",
        "failedDocuments": "array", "conditions": "array",
    }
    props = status["properties"]
    assert props["phase"]["enum"] == ["Pending", "Running", "Succeeded", "Failed", "Suspended"]
    assert set(props["documents"]["properties"]) == {"total", "failed"}
    assert set(props["chunks"]["properties"]) == {"total", "published", "embedded", "failed"}
    counts = [*props["documents"]["properties"].values(), *props["chunks"]["properties"].values()]
    assert all(c["type"] == "integer" and c["minimum"] == 0 for c in counts)
    assert props["startTime"]["format"] == props["completionTime"]["format"] == "date-time"
    assert props["failedDocuments"]["maxItems"] == 10
    assert set(props["failedDocuments"]["items"]["properties"]) == {"document", "reason"}


def test_conditions_are_metav1_conditions(schema: Schema) -> None:
    conditions = node_at(schema, "status.conditions")
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item = conditions["items"]
    assert item["required"] == ["type", "status", "lastTransitionTime", "reason", "message"]
    props = item["properties"]
    assert props["type"]["maxLength"] == 316
    assert props["status"]["enum"] == ["True", "False", "Unknown"]
    assert props["observedGeneration"] == {"type": "integer", "format": "int64", "minimum": 0}
    assert props["lastTransitionTime"] == {"type": "string", "format": "date-time"}
    assert (props["reason"]["minLength"], props["reason"]["maxLength"]) == (1, 1024)
    assert props["reason"]["pattern"] == "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
    assert props["message"]["maxLength"] == 32768


def test_conditions_the_operator_writes_are_admitted() -> None:
    from kubeingest import jobstatus as cond

    status = {
        "phase": cond.RUNNING, "message": "reading sources", "observedGeneration": 3,
        "jobId": "default.docs.0123abcd", "startTime": cond.now_iso(),
        "documents": {"total": 2, "failed": 1}, "progress": "50%", "chunksPerSecond": 12.5,
        "chunks": {"total": 10, "published": 10, "embedded": 5, "failed": 0},
        "failedDocuments": [{"document": "a.pdf", "reason": "unsupported file type '.pdf'"}],
        "conditions": cond.conditions_for(cond.RUNNING, "Started", "reading sources", None, 3),
    }
    obj = manifest(minimal_spec()) | {"status": status}
    assert validate_manifest(obj) == []
    bad = copy.deepcopy(obj)
    bad["status"]["conditions"][0]["status"] = "Maybe"
    assert validate_manifest(bad) != []


def test_list_map_keys_are_required_scalars(schema: Schema) -> None:
    for path, node in iter_nodes(schema):
        keys = node.get("x-kubernetes-list-map-keys")
        if keys is None:
            continue
        assert node.get("x-kubernetes-list-type") == "map", path
        item = node["items"]
        for key in keys:
            assert key in item.get("required", []) or "default" in item["properties"][key], path
            assert item["properties"][key]["type"] in ("string", "integer", "boolean"), path


def test_strings_and_lists_are_bounded(schema: Schema) -> None:
    """The API server estimates CEL cost from these bounds; unbounded ones can reject the CRD."""
    unbounded = []
    for path, node in iter_nodes(schema):
        if path in ("apiVersion", "kind"):
            continue  # the API server's own fields
        if node.get("type") == "string" and not (
            "maxLength" in node or "enum" in node or node.get("format") == "date-time"
        ):
            unbounded.append(f"{path}: string without maxLength/enum/format")
        if node.get("type") == "array" and "maxItems" not in node:
            unbounded.append(f"{path}: array without maxItems")
        if isinstance(node.get("additionalProperties"), dict) and "maxProperties" not in node:
            unbounded.append(f"{path}: map without maxProperties")
    assert unbounded == []


def test_defaults_are_valid_against_their_own_schema(schema: Schema) -> None:
    for path, node in iter_nodes(schema):
        if "default" not in node:
            continue
        errors = list(Draft202012Validator(to_json_schema(node)).iter_errors(node["default"]))
        assert errors == [], f"{path}: default {node['default']!r}: {errors[0].message}"


def test_optional_parents_of_defaults_default_to_empty_objects(schema: Schema) -> None:
    spec = schema["properties"]["spec"]
    for name in ("chunking", "embedding", "retry", "failurePolicy"):
        assert spec["properties"][name]["default"] == {}, name
        assert name not in spec["required"]


# --------------------------------------------------------------------------------------------
# CEL rules (x-kubernetes-validations)


def cel_rules(schema: Schema) -> dict[tuple[str, str], str]:
    return {(path, r["rule"]): r.get("message", "")
            for path, node in iter_nodes(schema)
            for r in node.get("x-kubernetes-validations", [])}


def test_cel_rules_sit_on_the_right_nodes_with_messages(schema: Schema) -> None:
    rules = cel_rules(schema)
    one_of = ("[has(self.inline), has(self.configMap), has(self.http), has(self.path)]"
              ".filter(x, x).size() == 1")
    assert set(rules) == {
        ("spec.chunking", "self.overlap < self.size"),
        ("spec.sources[]", one_of),
        ("spec.embedding", "self == oldSelf"),
        ("spec.destination.collection", "self == oldSelf"),
    }
    assert "overlap" in rules["spec.chunking", "self.overlap < self.size"]
    assert "exactly one" in rules["spec.sources[]", one_of]
    assert "immutable" in rules["spec.embedding", "self == oldSelf"]
    assert "immutable" in rules["spec.destination.collection", "self == oldSelf"]
    assert all(m.strip() for m in rules.values())


def test_cel_rules_reference_declared_fields(schema: Schema) -> None:
    for path, rule in cel_rules(schema):
        node = node_at(schema, path)
        for field in re.findall(r"\bself\.(\w+)", rule):
            assert field in node.get("properties", {}), f"{path}: {rule} uses undeclared {field}"


def test_transition_rules_are_on_correlatable_nodes(schema: Schema) -> None:
    """oldSelf only exists where the API server can pair old and new: not inside atomic lists."""
    for path, rule in cel_rules(schema):
        if "oldSelf" in rule:
            assert "[]" not in path, path


def test_every_cel_rule_has_a_python_equivalent(schema: Schema) -> None:
    for _, rule in cel_rules(schema):
        assert rule in crd_schema.CEL_EQUIVALENTS or rule in crd_schema.TRANSITION_RULES, rule


def test_embedding_and_collection_are_immutable() -> None:
    old = manifest(minimal_spec())
    model = copy.deepcopy(old)
    model["spec"]["embedding"] = {"model": "BAAI/bge-small-en-v1.5"}
    assert any("spec.embedding is immutable" in e for e in validate_update(old, model))
    collection = copy.deepcopy(old)
    collection["spec"]["destination"]["collection"] = "other"
    assert any("collection is immutable" in e for e in validate_update(old, collection))
    # Spelling out the defaults changes nothing after defaulting, so it is allowed; so are
    # edits elsewhere.
    explicit = copy.deepcopy(old)
    explicit["spec"]["embedding"] = {"model": "sentence-transformers/all-MiniLM-L6-v2",
                                     "backend": "sentence-transformers", "normalize": True}
    explicit["spec"]["chunking"] = {"size": 300}
    explicit["spec"]["suspend"] = True
    assert validate_update(old, explicit) == []


# --------------------------------------------------------------------------------------------
# Examples


EXAMPLE_FILES = crd_schema.example_files()
JOBS = [pytest.param(job, id=f"{p.name}:{job['metadata']['name']}")
        for p in EXAMPLE_FILES for job in ingestion_jobs(p)]


def test_there_is_an_example_per_source_kind() -> None:
    names = {p.name for p in EXAMPLE_FILES}
    assert {"quickstart.yaml", "inline.yaml", "configmap.yaml", "configmap-docs.yaml",
            "http.yaml", "path.yaml"} <= names
    for kind, file in (("inline", "inline.yaml"), ("configMap", "configmap.yaml"),
                       ("http", "http.yaml"), ("path", "path.yaml")):
        [job] = ingestion_jobs(EXAMPLES_DIR / file)
        assert any(kind in source for source in job["spec"]["sources"]), file
    assert len(JOBS) >= 5


@pytest.mark.parametrize("job", JOBS)
def test_example_is_admitted_by_the_crd(job: dict[str, Any]) -> None:
    assert validate_manifest(job) == []


@pytest.mark.parametrize("job", JOBS)
def test_example_parses_with_the_pydantic_model(job: dict[str, Any]) -> None:
    parsed = parse_manifest(job)
    # The object the API server stores (defaults applied) means the same job.
    assert parse_manifest(apply_defaults(job)) == parsed


def test_every_example_file_is_kubernetes_yaml() -> None:
    for path in EXAMPLE_FILES:
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
        assert docs, path
        for doc in docs:
            assert {"apiVersion", "kind", "metadata"} <= set(doc), path
            if doc["kind"] != "IngestionJob":  # built-in kinds: the Kubernetes schema
                kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_configmap_example_reads_the_configmap_example() -> None:
    [job] = ingestion_jobs(EXAMPLES_DIR / "configmap.yaml")
    [cm] = list(yaml.safe_load_all((EXAMPLES_DIR / "configmap-docs.yaml").read_text("utf-8")))
    assert cm["kind"] == "ConfigMap"
    [source] = job["spec"]["sources"]
    assert source["configMap"]["name"] == cm["metadata"]["name"]
    assert job["metadata"].get("namespace") == cm["metadata"].get("namespace")
    assert set(source["configMap"].get("keys", cm["data"])) <= set(cm["data"])


# --------------------------------------------------------------------------------------------
# The CRD and the pydantic model accept and reject the same specs


def _set(path: str, value: Any) -> Any:
    def change(spec: dict[str, Any]) -> None:
        *parents, last = re.findall(r"[^.\[\]]+", path)
        node: Any = spec
        for part in parents:
            node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
        if value is _DELETE:
            del node[last]
        else:
            node[int(last) if last.isdigit() else last] = value
    return change


_DELETE = object()
_INLINE = {"inline": {"documents": [{"text": "x"}]}}

INVALID = [
    ("overlap-equals-size", _set("chunking", {"size": 100, "overlap": 100}), "chunking"),
    ("overlap-above-size", _set("chunking", {"size": 64, "overlap": 65}), "chunking"),
    ("size-below-default-overlap", _set("chunking", {"size": 20}), "chunking"),
    ("size-too-small", _set("chunking", {"size": 8, "overlap": 0}), "size"),
    ("size-too-large", _set("chunking.size", 8193), "size"),
    ("unknown-strategy", _set("chunking.strategy", "sentences"), "strategy"),
    ("unknown-chunking-field", _set("chunking.sizee", 10), "chunking"),
    ("unknown-backend", _set("embedding.backend", "tensorflow"), "backend"),
    ("empty-model", _set("embedding.model", ""), "model"),
    ("batch-size-zero", _set("embedding.batchSize", 0), "batchSize"),
    ("missing-sources", _set("sources", _DELETE), "sources"),
    ("empty-sources", _set("sources", []), "sources"),
    ("two-members-in-a-source",
     _set("sources", [{**_INLINE, "path": {"path": "/data"}}]), "sources"),
    ("no-member-in-a-source", _set("sources", [{}]), "sources"),
    ("unknown-source-kind", _set("sources", [{"s3": {"bucket": "b"}}]), "sources"),
    ("inline-without-documents", _set("sources", [{"inline": {"documents": []}}]), "documents"),
    ("document-without-text", _set("sources", [{"inline": {"documents": [{"id": "a"}]}}]),
     "text"),
    ("document-id-too-long", _set("sources.0.inline.documents.0.id", "x" * 257), "id"),
    ("metadata-not-a-string", _set("sources.0.inline.documents.0.metadata", {"page": 3}),
     "metadata"),
    ("configmap-bad-name", _set("sources", [{"configMap": {"name": "Docs_1"}}]), "name"),
    ("http-not-http", _set("sources", [{"http": {"urls": ["ftp://example.com/a"]}}]), "urls"),
    ("http-timeout-zero",
     _set("sources", [{"http": {"urls": ["https://a.example"], "timeoutSeconds": 0}}]),
     "timeoutSeconds"),
    ("path-empty", _set("sources", [{"path": {"path": ""}}]), "path"),
    ("missing-destination", _set("destination", _DELETE), "destination"),
    ("bad-collection-name", _set("destination.collection", "my docs!"), "collection"),
    ("long-collection-name", _set("destination.collection", "c" * 256), "collection"),
    ("distance-wrong-case", _set("destination.distance", "cosine"), "distance"),
    ("bad-tenant", _set("tenantId", "team a"), "tenantId"),
    ("in-flight-zero", _set("maxInFlightBatches", 0), "maxInFlightBatches"),
    ("in-flight-too-many", _set("maxInFlightBatches", 1025), "maxInFlightBatches"),
    ("retry-zero", _set("retry.maxDeliveries", 0), "maxDeliveries"),
    ("ratio-above-one", _set("failurePolicy.maxFailedRatio", 1.5), "maxFailedRatio"),
    ("negative-failed-chunks", _set("failurePolicy.maxFailedChunks", -1), "maxFailedChunks"),
    ("negative-ttl", _set("ttlSecondsAfterFinished", -1), "ttlSecondsAfterFinished"),
    ("unknown-deletion-policy", _set("deletionPolicy", "Orphan"), "deletionPolicy"),
    ("suspend-not-bool", _set("suspend", "maybe"), "suspend"),
    ("unknown-spec-field", _set("paralellism", 4), "paralellism"),
]


@pytest.mark.parametrize(("change", "field"), [pytest.param(c, f, id=i) for i, c, f in INVALID])
def test_invalid_spec_is_rejected_by_both(change: Any, field: str) -> None:
    spec = minimal_spec()
    change(spec)
    errors = validate_manifest(manifest(spec))
    assert errors, "the CRD admitted it"
    assert any(field in e for e in errors), errors
    with pytest.raises(SpecError) as info:
        parse_spec(spec)
    assert field in str(info.value), str(info.value)
    with pytest.raises(SpecError):
        parse_manifest(manifest(spec))


VALID = [
    ("minimal", lambda s: None),
    ("overlap-just-below-size", _set("chunking", {"size": 64, "overlap": 63})),
    ("largest-chunks", _set("chunking", {"strategy": "characters", "size": 8192,
                                         "overlap": 4096})),
    ("smallest-chunks", _set("chunking", {"size": 16, "overlap": 0})),
    ("every-source-kind", _set("sources", [
        _INLINE,
        {"configMap": {"name": "docs", "keys": ["a.md"]}},
        {"http": {"urls": ["http://a.example/x.html"], "timeoutSeconds": 600, "maxBytes": 1}},
        {"path": {"path": "/data", "glob": "*.md", "maxBytes": 536870912}},
    ])),
    ("sources-without-options", _set("sources", [
        _INLINE,
        {"configMap": {"name": "docs"}},
        {"http": {"urls": ["https://a.example/x.html"]}},
        {"path": {"path": "/data"}},
    ])),
    ("document-metadata", _set("sources.0.inline.documents.0.metadata", {"lang": "en"})),
    ("hash-backend", _set("embedding", {"backend": "hash", "batchSize": 4096,
                                        "normalize": False})),
    ("qdrant-connection", _set("destination", {
        "collection": "Docs_v2-en", "distance": "Dot", "url": "http://qdrant:6333",
        "apiKeySecretRef": {"name": "qdrant", "key": "api-key"}})),
    ("tenant-with-dots", _set("tenantId", "acme.eu-1")),
    ("failure-policy", _set("failurePolicy", {"maxFailedChunks": 0, "maxFailedRatio": 1})),
    ("ttl-zero-delete", lambda s: s.update(ttlSecondsAfterFinished=0, deletionPolicy="Delete",
                                           suspend=True, maxInFlightBatches=1024)),
]


@pytest.mark.parametrize("change", [pytest.param(c, id=i) for i, c in VALID])
def test_valid_spec_is_accepted_by_both(change: Any) -> None:
    spec = minimal_spec()
    change(spec)
    assert validate_manifest(manifest(spec)) == []
    parsed = parse_spec(spec)
    assert parse_spec(apply_defaults(manifest(spec))["spec"]) == parsed


# --------------------------------------------------------------------------------------------
# Defaults and constraints mirror kubeingest/spec.py


def _models_in(annotation: Any) -> list[tuple[type[BaseModel], str]]:
    """Pydantic models inside an annotation, with the path suffix to reach them ("[]")."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(annotation, "")]
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is list:
        return [(m, "[]" + s) for m, s in _models_in(args[0])]
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        return [found for a in args for found in _models_in(a)]
    return []


def pydantic_defaults(model: type[BaseModel], prefix: str = "") -> dict[str, Any]:
    """Every default of the spec model, by CRD path; model-valued defaults read as {}."""
    out: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        path = f"{prefix}{field.alias or name}"
        if not field.is_required():
            default = field.get_default(call_default_factory=True)
            if isinstance(default, BaseModel):
                out[path] = {}
            elif isinstance(default, Enum):
                out[path] = default.value
            elif default is not None and default != {}:
                out[path] = default
        for sub, suffix in _models_in(field.annotation):
            out.update(pydantic_defaults(sub, f"{path}{suffix}."))
    return out


def crd_defaults(schema: Schema) -> dict[str, Any]:
    spec = schema["properties"]["spec"]
    return {path: node["default"] for path, node in iter_nodes(spec) if "default" in node}


def test_defaults_agree_with_the_pydantic_model(schema: Schema) -> None:
    ours, theirs = crd_defaults(schema), pydantic_defaults(IngestionJobSpec)
    assert {"chunking", "chunking.strategy", "chunking.size", "chunking.overlap", "embedding",
            "embedding.model", "embedding.backend", "embedding.batchSize",
            "embedding.normalize", "retry", "retry.maxDeliveries", "maxInFlightBatches",
            "deletionPolicy"} <= set(theirs)
    assert set(ours) == set(theirs)
    for path, value in theirs.items():
        assert _same(ours[path], value), f"{path}: CRD {ours[path]!r}, spec.py {value!r}"


def _drop_empty_maps(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_empty_maps(v) for k, v in value.items() if v != {}}
    if isinstance(value, list):
        return [_drop_empty_maps(v) for v in value]
    return value


def test_crd_defaulting_gives_the_pydantic_defaults() -> None:
    spec = minimal_spec()
    dict(VALID)["sources-without-options"](spec)  # every source kind: nested defaults too
    defaulted = apply_defaults(manifest(spec))["spec"]
    dumped = parse_spec(spec).model_dump(by_alias=True, mode="json", exclude_none=True)
    assert defaulted == _drop_empty_maps(dumped)


COMPARED = ("type", "enum", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
            "minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties",
            "pattern", "default", "required", "additionalProperties")

# Bounds the CRD has and spec.py expresses otherwise: the one-of of a source is a validator in
# spec.py; collection/tenantId lengths are bounded by their patterns there.
CRD_ONLY = {
    ("sources[]", "minProperties"), ("sources[]", "maxProperties"),
    ("destination.collection", "maxLength"), ("tenantId", "maxLength"),
}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, list) and isinstance(b, list) and all(isinstance(x, str) for x in a + b):
        return sorted(a) == sorted(b)  # required lists: order does not matter
    return bool(a == b)


def _resolve(node: Schema, defs: Schema) -> Schema:
    node = {k: v for k, v in node.items() if k not in ("title", "description")}
    while "$ref" in node:
        target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
        node = {**{k: v for k, v in target.items() if k not in ("title", "description")},
                **node}
    if "anyOf" in node:  # Optional[X]: the CRD just leaves the field out
        branches = [b for b in node.pop("anyOf") if b.get("type") != "null"]
        assert len(branches) == 1, node
        node = {**_resolve(branches[0], defs), **node}
    if node.get("default") is None:
        node.pop("default", None)
    return node


def _compare(pyd: Schema, crd: Schema, defs: Schema, path: str,
             problems: list[str], crd_only: set[tuple[str, str]]) -> None:
    pyd = _resolve(pyd, defs)
    for key in COMPARED:
        if key in pyd and isinstance(pyd[key], dict):
            continue  # nested schemas: compared below
        if key in pyd and not _same(pyd[key], crd.get(key)):
            problems.append(f"{path or 'spec'}: {key} is {crd.get(key)!r} in the CRD, "
                            f"{pyd[key]!r} in spec.py")
        elif key not in pyd and key in crd:
            if key == "default" and crd[key] == {} and crd.get("type") == "object":
                continue  # the `default: {}` parents; pydantic's default_factory
            crd_only.add((path, key))
    for name in set(pyd.get("properties", {})) | set(crd.get("properties", {})):
        sub = f"{path}.{name}" if path else name
        if name not in crd.get("properties", {}) or name not in pyd.get("properties", {}):
            problems.append(f"{sub}: only in {'spec.py' if name in pyd['properties'] else 'CRD'}")
            continue
        _compare(pyd["properties"][name], crd["properties"][name], defs, sub, problems, crd_only)
    if "items" in pyd:
        _compare(pyd["items"], crd["items"], defs, f"{path}[]", problems, crd_only)
    if isinstance(pyd.get("additionalProperties"), dict):
        _compare(pyd["additionalProperties"], crd["additionalProperties"], defs, f"{path}{{}}",
                 problems, crd_only)


def test_constraints_mirror_the_pydantic_model(schema: Schema) -> None:
    pyd = IngestionJobSpec.model_json_schema(by_alias=True, mode="validation")
    crd = to_json_schema(schema["properties"]["spec"])
    problems: list[str] = []
    crd_only: set[tuple[str, str]] = set()
    _compare(pyd, crd, pyd.get("$defs", {}), "", problems, crd_only)
    assert problems == []
    assert crd_only == CRD_ONLY, sorted(crd_only ^ CRD_ONLY)


def test_helper_reports_rule_without_python_equivalent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crd_schema, "CEL_EQUIVALENTS", {})
    errors = validate_manifest(manifest(minimal_spec()))
    assert any("no Python equivalent" in e for e in errors)


def test_helper_checks_api_server_metadata() -> None:
    job = manifest(minimal_spec(), name="Not_A_Name")
    assert any("metadata.name" in e for e in validate_manifest(job))
    assert any("kind" in e for e in validate_manifest(job | {"kind": "Job"}))
    assert any("apiVersion" in e for e in validate_manifest(job | {"apiVersion": "v1"}))

