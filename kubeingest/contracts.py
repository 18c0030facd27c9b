"""Message contracts (pydantic v2): the envelope and the payloads of the seeds.

A stream entry holds two fields: `action`, the JSON envelope, and, for results, `vectors`, the
embeddings as raw little-endian float32 bytes (`count x dim`). Vectors never travel as JSON float
lists: they would be ~4x larger and slow to parse.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = frozenset({1})

ACTION_FIELD = b"action"
VECTORS_FIELD = b"vectors"

Float32Matrix = npt.NDArray[np.float32]
M = TypeVar("M", bound=BaseModel)


class ContractError(ValueError):
    """A message that can never be handled: bad JSON, unknown version, inconsistent shapes.

    Retrying cannot help, so consumers dead-letter it at once with this message as the reason.
    """


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class DomainAction(_Strict):
    """The envelope every stream message travels in (first seed)."""

    action_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    action_type: str
    correlation_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    trace_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    task_id: str
    tenant_id: str = "default"
    origin_service: str
    reply_to_stream: str | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    data: dict[str, Any]
    schema_version: int = SCHEMA_VERSION

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, v: int) -> int:
        if v not in SUPPORTED_SCHEMA_VERSIONS:
            raise ValueError(
                f"unsupported schema_version {v}; this build reads "
                f"{sorted(SUPPORTED_SCHEMA_VERSIONS)}"
            )
        return v


class EmbedBatchData(_Strict):
    """`data` of an `embedding.batch.process` action: texts to embed, by chunk id."""

    task_id: str
    chunk_ids: list[str]
    # Job-wide sequence numbers of the chunks: the sink's idempotent progress bitmap index.
    chunk_seqs: list[int]
    texts: list[str]
    model: str
    tenant_id: str = "default"
    collection_id: str
    document_id: str | None = None

    @model_validator(mode="after")
    def _aligned(self) -> EmbedBatchData:
        if not (len(self.chunk_ids) == len(self.texts) == len(self.chunk_seqs)):
            raise ValueError(
                f"chunk_ids ({len(self.chunk_ids)}), chunk_seqs ({len(self.chunk_seqs)}) and "
                f"texts ({len(self.texts)}) must have the same length"
            )
        return self


class EmbeddingResultData(_Strict):
    """`data` of an `ingestion.embedding_result` action (the vectors travel beside it)."""

    task_id: str
    chunk_ids: list[str]
    chunk_seqs: list[int]
    collection_id: str
    tenant_id: str = "default"
    document_id: str | None = None
    model: str
    status: Literal["success", "error"]
    dim: int = 0
    count: int = 0
    error_code: str | None = None
    error_message: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> EmbeddingResultData:
        if len(self.chunk_ids) != len(self.chunk_seqs):
            raise ValueError("chunk_ids and chunk_seqs must have the same length")
        if self.status == "success" and self.count != len(self.chunk_ids):
            raise ValueError(
                f"vector count {self.count} does not match chunk count {len(self.chunk_ids)}"
            )
        if self.status == "error" and not self.error_code:
            raise ValueError("an error result needs an error_code")
        return self


class JobPurgeData(_Strict):
    """`data` of an `ingestion.job.purge` action: delete a job's points from a collection."""

    task_id: str
    collection_id: str


class HttpChunk(_Strict):
    chunk_id: Annotated[str, Field(min_length=1, max_length=256)]
    text: str
    metadata: dict[str, Any] = Field(default_factory=dict)


class GenerateEmbeddingsRequest(_Strict):
    """Body of `POST /api/v1/embeddings/generate` (second seed)."""

    document_id: Annotated[str, Field(min_length=1, max_length=256)]
    collection_id: Annotated[str, Field(min_length=1, max_length=256)]
    tenant_id: Annotated[str, Field(min_length=1, max_length=128)] = "default"
    chunks: Annotated[list[HttpChunk], Field(min_length=1)]
    model: str | None = None
    task_id: Annotated[str, Field(min_length=1, max_length=256)]
    callback_queue: Annotated[str, Field(min_length=1, max_length=256)]


class GenerateEmbeddingsAccepted(_Strict):
    task_id: str
    correlation_id: str
    status: Literal["accepted"] = "accepted"
    chunks: int


# -- wire codec ----------------------------------------------------------------------------


def encode_vectors(matrix: Float32Matrix) -> bytes:
    return np.ascontiguousarray(matrix, dtype="<f4").tobytes()


def decode_vectors(raw: bytes, count: int, dim: int) -> Float32Matrix:
    expected = count * dim * 4
    if len(raw) != expected:
        raise ContractError(
            f"vectors field has {len(raw)} bytes, expected {expected} for {count}x{dim} float32"
        )
    return np.frombuffer(raw, dtype="<f4").reshape(count, dim)


def encode_action(action: DomainAction, vectors: Float32Matrix | None = None) -> dict[bytes, bytes]:
    fields = {ACTION_FIELD: action.model_dump_json().encode()}
    if vectors is not None:
        fields[VECTORS_FIELD] = encode_vectors(vectors)
    return fields


def decode_action(fields: dict[bytes, bytes]) -> DomainAction:
    raw = fields.get(ACTION_FIELD)
    if raw is None:
        raise ContractError("message has no 'action' field")
    try:
        return DomainAction.model_validate_json(raw)
    except ValidationError as e:
        raise ContractError(_first_error(e)) from e


def parse_data(action: DomainAction, model: type[M]) -> M:
    try:
        return model.model_validate(action.data)
    except ValidationError as e:
        raise ContractError(f"{action.action_type}: {_first_error(e)}") from e


def result_vectors(fields: dict[bytes, bytes], data: EmbeddingResultData) -> Float32Matrix:
    if data.status != "success":
        return np.empty((0, 0), dtype=np.float32)
    raw = fields.get(VECTORS_FIELD)
    if raw is None:
        raise ContractError("success result has no 'vectors' field")
    return decode_vectors(raw, data.count, data.dim)


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    loc = ".".join(str(x) for x in err["loc"]) or "message"
    return f"{loc}: {err['msg']}"
