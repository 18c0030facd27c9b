"""The IngestionJob spec as a pydantic model: one validator for `kubeingest run`, the operator
and the HTTP API, so a manifest means the same thing everywhere.

Field names are the CRD's camelCase; Python code reads the snake_case attributes. The CRD's
openAPIV3Schema (crds/ingestionjob.yaml) mirrors these rules for API servers that enforce it;
the operator still validates here because not every API server does.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

API_VERSION = "kubeingest.io/v1alpha1"
KIND = "IngestionJob"

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# metadata.name of a custom resource: a DNS subdomain (dots allowed).
OBJECT_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
COLLECTION_PATTERN = r"^[A-Za-z0-9_-]{1,255}$"


class SpecError(ValueError):
    """An invalid manifest or spec; `str()` is one line naming the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class _Spec(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class InlineDocument(_Spec):
    id: Annotated[str | None, Field(max_length=256)] = None
    text: Annotated[str, Field(max_length=1_048_576)]
    metadata: Annotated[
        dict[str, Annotated[str, Field(max_length=4096)]], Field(max_length=64)
    ] = Field(default_factory=dict)


class InlineSource(_Spec):
    documents: Annotated[list[InlineDocument], Field(min_length=1, max_length=10_000)]


class ConfigMapSource(_Spec):
    name: Annotated[str, Field(pattern=NAME_PATTERN, max_length=253)]
    keys: Annotated[
        list[Annotated[str, Field(max_length=253)]] | None, Field(max_length=1000)
    ] = None


class HttpSource(_Spec):
    urls: Annotated[
        list[Annotated[str, Field(pattern=r"^https?://", max_length=2048)]],
        Field(min_length=1, max_length=1000),
    ]
    max_bytes: Annotated[int, Field(ge=1, le=512 * 1024 * 1024)] = 20 * 1024 * 1024
    timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 30.0


class PathSource(_Spec):
    path: Annotated[str, Field(min_length=1, max_length=4096)]
    glob: Annotated[str, Field(max_length=1024)] = "**/*"
    max_bytes: Annotated[int, Field(ge=1, le=512 * 1024 * 1024)] = 20 * 1024 * 1024


class Source(_Spec):
    """Exactly one of the members is set."""

    inline: InlineSource | None = None
    config_map: ConfigMapSource | None = None
    http: HttpSource | None = None
    path: PathSource | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Source:
        set_ = [n for n in ("inline", "config_map", "http", "path") if getattr(self, n)]
        if len(set_) != 1:
            raise ValueError("each source sets exactly one of inline, configMap, http, path")
        return self


class ChunkingStrategy(StrEnum):
    TOKENS = "tokens"
    CHARACTERS = "characters"


class Chunking(_Spec):
    strategy: ChunkingStrategy = ChunkingStrategy.TOKENS
    size: Annotated[int, Field(ge=16, le=8192)] = 256
    overlap: Annotated[int, Field(ge=0, le=4096)] = 32

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Chunking:
        if self.overlap >= self.size:
            raise ValueError(f"overlap ({self.overlap}) must be smaller than size ({self.size})")
        return self


class Backend(StrEnum):
    SENTENCE_TRANSFORMERS = "sentence-transformers"
    VLLM = "vllm"
    OPENAI = "openai"
    HASH = "hash"


DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


class Embedding(_Spec):
    model: Annotated[str, Field(min_length=1, max_length=512)] = DEFAULT_MODEL
    backend: Backend = Backend.SENTENCE_TRANSFORMERS
    batch_size: Annotated[int, Field(ge=1, le=4096)] = 64
    normalize: bool = True


class Distance(StrEnum):
    COSINE = "Cosine"
    DOT = "Dot"
    EUCLID = "Euclid"


class SecretKeyRef(_Spec):
    name: Annotated[str, Field(pattern=NAME_PATTERN, max_length=253)]
    key: Annotated[str, Field(max_length=253)]


class Destination(_Spec):
    collection: Annotated[str, Field(pattern=COLLECTION_PATTERN)]
    distance: Distance = Distance.COSINE
    url: Annotated[str | None, Field(max_length=2048)] = None
    api_key_secret_ref: SecretKeyRef | None = None


class Retry(_Spec):
    max_deliveries: Annotated[int, Field(ge=1, le=100)] = 5


class FailurePolicy(_Spec):
    max_failed_chunks: Annotated[int | None, Field(ge=0)] = None
    max_failed_ratio: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0


class DeletionPolicy(StrEnum):
    RETAIN = "Retain"
    DELETE = "Delete"


class IngestionJobSpec(_Spec):
    sources: Annotated[list[Source], Field(min_length=1, max_length=100)]
    chunking: Chunking = Field(default_factory=Chunking)
    embedding: Embedding = Field(default_factory=Embedding)
    destination: Destination
    tenant_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,128}$")] = "default"
    max_in_flight_batches: Annotated[int, Field(ge=1, le=1024, strict=True)] = 16
    retry: Retry = Field(default_factory=Retry)
    failure_policy: FailurePolicy = Field(default_factory=FailurePolicy)
    suspend: Annotated[bool, Field(strict=True)] = False  # "yes" is not a boolean to the API
    ttl_seconds_after_finished: Annotated[int | None, Field(ge=0)] = None
    deletion_policy: DeletionPolicy = DeletionPolicy.RETAIN


class Metadata(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: Annotated[str, Field(pattern=OBJECT_NAME_PATTERN, max_length=253)]
    namespace: str = "default"


class IngestionJobManifest(BaseModel):
    model_config = ConfigDict(extra="allow")
    api_version: Annotated[str, Field(alias="apiVersion")]
    kind: str
    metadata: Metadata
    spec: IngestionJobSpec


def parse_spec(raw: Any, *, prefix: str = "spec") -> IngestionJobSpec:
    """Validate a spec dict; raise SpecError naming the first bad field."""
    try:
        return IngestionJobSpec.model_validate(raw)
    except ValidationError as e:
        raise _spec_error(e, prefix) from e


def load_manifest(path: Path) -> IngestionJobManifest:
    """Read an IngestionJob YAML file (the same one `kubectl apply` takes)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise SpecError(str(path), f"cannot read: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise SpecError(str(path), f"not valid YAML: {e}".replace("\n", " ")) from e
    return parse_manifest(raw)


def parse_manifest(raw: Any) -> IngestionJobManifest:
    if not isinstance(raw, dict):
        raise SpecError("manifest", "expected a mapping with apiVersion, kind, metadata, spec")
    if raw.get("apiVersion") != API_VERSION:
        raise SpecError("apiVersion", f"expected {API_VERSION!r}, got {raw.get('apiVersion')!r}")
    if raw.get("kind") != KIND:
        raise SpecError("kind", f"expected {KIND!r}, got {raw.get('kind')!r}")
    try:
        return IngestionJobManifest.model_validate(raw)
    except ValidationError as e:
        raise _spec_error(e, "") from e


def _spec_error(e: ValidationError, prefix: str) -> SpecError:
    err = e.errors()[0]
    parts = [prefix] if prefix else []
    for loc in err["loc"]:
        if isinstance(loc, int):
            parts[-1:] = [f"{parts[-1]}[{loc}]"] if parts else [f"[{loc}]"]
        else:
            parts.append(to_camel(str(loc)) if "_" in str(loc) else str(loc))
    msg = err["msg"].removeprefix("Value error, ")
    return SpecError(".".join(parts) or prefix or "spec", msg)
