"""The IngestionJob CRD as a validator, for tests that have no API server.

`validate_manifest(obj)` answers what `kubectl apply` against a real API server would, as
closely as Python can without one:

1. the object-meta checks the API server makes itself (apiVersion, kind, metadata.name);
2. the CRD's openAPIV3Schema, converted to JSON Schema 2020-12 (types, enums, bounds, patterns,
   required; unknown fields are errors, as under kubectl's default strict field validation);
3. the CRD's defaults, applied the way the API server applies them (a nested default only
   where its parent exists, `default: {}` parents first);
4. the CRD's CEL rules (`x-kubernetes-validations`) on the defaulted object, through the Python
   equivalents in `CEL_EQUIVALENTS`; a rule added to the CRD without an equivalent there is an
   error, so the two cannot drift apart silently. Transition rules (`self == oldSelf`) run in
   `validate_update(old, new)`.

The operator end-to-end tests reuse this to check that what they create would be admitted.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

REPO = Path(__file__).resolve().parent.parent
CRD_PATH = REPO / "crds" / "ingestionjob.yaml"
EXAMPLES_DIR = REPO / "examples"

GROUP = "kubeingest.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "IngestionJob"

# What the API server requires of a custom resource's name (DNS-1123 subdomain).
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

# OpenAPI formats JSON Schema does not know; the API server checks int32/int64 ranges, which
# nothing in an IngestionJob comes near.
_NUMERIC_FORMATS = frozenset({"int32", "int64", "float", "double"})

Schema = dict[str, Any]
Rule = Callable[[Any], bool]

# Python equivalents of the CRD's non-transition CEL rules, keyed by the exact rule text.
# `self` is the (defaulted) node the rule sits on.
CEL_EQUIVALENTS: dict[str, Rule] = {
    "self.overlap < self.size": lambda s: s["overlap"] < s["size"],
    (
        "[has(self.inline), has(self.configMap), has(self.http), has(self.path)]"
        ".filter(x, x).size() == 1"
    ): lambda s: sum(k in s for k in ("inline", "configMap", "http", "path")) == 1,
}

# Transition rules (they see the stored object as `oldSelf`) that validate_update understands.
TRANSITION_RULES = frozenset({"self == oldSelf"})


@functools.cache
def _load_crd_cached() -> Schema:
    data: Schema = yaml.safe_load(CRD_PATH.read_text(encoding="utf-8"))
    return data


def load_crd() -> Schema:
    """The CRD as a dict (a fresh copy each call, so callers may change it)."""
    return copy.deepcopy(_load_crd_cached())


def version_schema(crd: Schema | None = None, version: str = VERSION) -> Schema:
    """The openAPIV3Schema of one version of the CRD."""
    crd = crd if crd is not None else load_crd()
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            schema: Schema = v["schema"]["openAPIV3Schema"]
            return schema
    raise KeyError(f"CRD has no version {version!r}")


def to_json_schema(node: Schema) -> Schema:
    """Convert a CRD (OpenAPI v3.0 structural) schema to JSON Schema 2020-12.

    Drops x-kubernetes-* keys, turns OpenAPI's boolean exclusiveMinimum/Maximum into JSON
    Schema's numeric ones, maps nullable and int-or-string, and closes every object that
    declares properties (unless it preserves unknown fields): the API server prunes unknown
    fields, and `kubectl apply` (strict field validation) rejects them.
    """
    out: Schema = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key in ("nullable", "exclusiveMinimum",
                                                       "exclusiveMaximum"):
            continue
        if key == "format" and value in _NUMERIC_FORMATS:
            continue
        if key == "properties":
            out[key] = {name: to_json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = to_json_schema(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [to_json_schema(sub) for sub in value]
        else:
            out[key] = copy.deepcopy(value)
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if node.get(exclusive) is True:
            out[exclusive] = out.pop(bound)
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if (
        "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@functools.cache
def _validator() -> Draft202012Validator:
    schema = to_json_schema(version_schema())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def apply_defaults(obj: Any, schema: Schema | None = None) -> Any:
    """A copy of `obj` with the schema's defaults filled in, as the API server does."""
    schema = schema if schema is not None else version_schema()
    return _default(copy.deepcopy(obj), schema)


def _default(value: Any, schema: Schema) -> Any:
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name, sub in props.items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
        for name, item in value.items():
            if name in props:
                value[name] = _default(item, props[name])
            elif isinstance(schema.get("additionalProperties"), dict):
                value[name] = _default(item, schema["additionalProperties"])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_default(item, schema["items"]) for item in value]
    return value


def _walk(schema: Schema, value: Any, path: str) -> Iterator[tuple[Schema, Any, str]]:
    """Every (schema node, value, path) pair of a value that matches the schema's shape."""
    yield schema, value, path
    if isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for name, item in value.items():
            if name in props:
                yield from _walk(props[name], item, f"{path}.{name}" if path else name)
            elif isinstance(extra, dict):
                yield from _walk(extra, item, f"{path}.{name}" if path else name)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            yield from _walk(schema["items"], item, f"{path}[{i}]")


def _is_transition(rule: str) -> bool:
    return re.search(r"\boldSelf\b", rule) is not None


def _path_of(error: Any) -> str:
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


def _message(error: Any) -> str:
    """jsonschema's message, unless it quotes a whole (large) instance."""
    if len(error.message) <= 200:
        return str(error.message)
    return f"violates {error.validator}: {error.validator_value!r}"[:200]


def _meta_errors(obj: Any) -> list[str]:
    if not isinstance(obj, dict):
        return ["<root>: expected a mapping"]
    errors = []
    if obj.get("apiVersion") != API_VERSION:
        errors.append(f"apiVersion: expected {API_VERSION!r}, got {obj.get('apiVersion')!r}")
    if obj.get("kind") != KIND:
        errors.append(f"kind: expected {KIND!r}, got {obj.get('kind')!r}")
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        errors.append("metadata: required")
    else:
        name = meta.get("name")
        if not name and not meta.get("generateName"):
            errors.append("metadata.name: required")
        elif name and (not isinstance(name, str) or len(name) > 253
                       or not _DNS_SUBDOMAIN.match(name)):
            errors.append(f"metadata.name: {name!r} is not a DNS-1123 subdomain")
    return errors


def validate_manifest(obj: Any) -> list[str]:
    """Errors the API server would report for `obj` (an IngestionJob dict); [] if admitted."""
    errors = _meta_errors(obj)
    if not isinstance(obj, dict):
        return errors
    schema_errors = sorted(_validator().iter_errors(obj), key=lambda e: list(e.absolute_path))
    errors += [f"{_path_of(e)}: {_message(e)}" for e in schema_errors]
    if schema_errors:
        return errors  # CEL only sees well-typed objects
    schema = version_schema()
    for node, value, path in _walk(schema, apply_defaults(obj, schema), ""):
        for rule in node.get("x-kubernetes-validations", []):
            text = rule["rule"]
            if _is_transition(text):
                continue
            check = CEL_EQUIVALENTS.get(text)
            if check is None:
                errors.append(f"{path or '<root>'}: no Python equivalent for CEL rule {text!r}"
                              " (add one to tests/crd_schema.py CEL_EQUIVALENTS)")
            elif not check(value):
                errors.append(f"{path or '<root>'}: {rule.get('message') or text}")
    return errors


def validate_update(old: Any, new: Any) -> list[str]:
    """Errors for updating `old` to `new`: validate_manifest(new) plus the transition rules.

    Like the API server, a transition rule only runs where the node exists in both objects,
    and both sides are compared after defaulting. Only paths outside lists are correlated
    (the CRD keeps its transition rules there).
    """
    errors = validate_manifest(new)
    if errors:
        return errors
    schema = version_schema()
    old_d, new_d = apply_defaults(old, schema), apply_defaults(new, schema)
    for node, value, path in _walk(schema, new_d, ""):
        for rule in node.get("x-kubernetes-validations", []):
            text = rule["rule"]
            if not _is_transition(text):
                continue
            if text not in TRANSITION_RULES:
                errors.append(f"{path}: no Python equivalent for transition rule {text!r}")
                continue
            found, old_value = _lookup(old_d, path)
            if found and old_value != value:
                errors.append(f"{path}: {rule.get('message') or text}")
    return errors


def _lookup(obj: Any, path: str) -> tuple[bool, Any]:
    if "[" in path:
        return False, None  # list items are not correlated here
    value = obj
    for part in path.split(".") if path else []:
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def ingestion_jobs(path: Path) -> list[dict[str, Any]]:
    """Every IngestionJob document in a (multi-document) YAML file."""
    docs = yaml.safe_load_all(path.read_text(encoding="utf-8"))
    return [d for d in docs if isinstance(d, dict) and d.get("kind") == KIND]


def example_files() -> list[Path]:
    return sorted(p for p in EXAMPLES_DIR.iterdir() if p.suffix in (".yaml", ".yml"))
