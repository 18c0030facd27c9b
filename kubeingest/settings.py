"""Settings of each process kind, from environment variables (`KUBEINGEST_*`) and Secrets.

One class per process kind, loaded through a cached `get_*_settings()`; nothing reads the
environment at import time. Secrets (Redis URL with password, Qdrant and API keys) come only
from the environment, which the chart fills from Kubernetes Secrets.
"""

from __future__ import annotations

import os
import socket
from functools import cache
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kubeingest.names import DEFAULT_PREFIX
from kubeingest.spec import DEFAULT_MODEL, Backend


def default_consumer_name() -> str:
    """Pod name (HOSTNAME in Kubernetes) + pid: stable across a container's restarts of a
    process, distinct between replicas, so XPENDING shows who holds what."""
    return f"{os.environ.get('HOSTNAME') or socket.gethostname()}-{os.getpid()}"


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KUBEINGEST_", extra="ignore")

    redis_url: SecretStr | None = Field(
        None, description="redis:// URL (may hold the password); unset = in-process fakeredis, "
        "for `kubeingest run` only."
    )
    stream_prefix: str = Field(DEFAULT_PREFIX, description="Prefix of every key and stream.")
    log_format: Literal["text", "json"] = Field(
        "text", description="text: one scannable line per outcome; json: one JSON object per "
        "line with trace_id/correlation_id/job when known (for clusters)."
    )
    log_level: str = Field("INFO", description="Python logging level.")
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = Field(
        9100, description="Port of /metrics, /healthz, /readyz; 0 disables the server."
    )
    consumer_name: str = Field(
        default_factory=default_consumer_name,
        description="Consumer name in the groups; default pod name (HOSTNAME) + pid.",
    )

    # -- streams -------------------------------------------------------------------------
    read_count: Annotated[int, Field(ge=1, le=1000)] = Field(
        8, description="Entries per XREADGROUP; each entry is a whole batch of chunks."
    )
    block_ms: Annotated[int, Field(ge=1, le=60_000)] = Field(
        1000, description="XREADGROUP block time; bounds how fast SIGTERM is noticed."
    )
    claim_idle_ms: Annotated[int, Field(ge=100)] = Field(
        60_000, description="A pending entry idle this long belongs to a dead consumer and is "
        "reclaimed (XAUTOCLAIM). Longer than the slowest batch, or work is duplicated."
    )
    max_deliveries: Annotated[int, Field(ge=1, le=100)] = Field(
        5, description="After this many deliveries an entry goes to the dead-letter stream."
    )
    dead_letter_maxlen: Annotated[int, Field(ge=100)] = Field(
        100_000, description="Approximate cap of each :dead stream (oldest dropped first)."
    )
    context_ttl_s: Annotated[int, Field(ge=60)] = Field(
        24 * 3600, description="TTL of stored chunk context; a result arriving later counts "
        "as failed with reason context_expired. Generous: a job may queue for hours."
    )


class EmbedderSettings(CommonSettings):
    backend: Backend = Field(
        Backend.SENTENCE_TRANSFORMERS,
        description="sentence-transformers | vllm | openai | hash (hash: tests/ceilings only).",
    )
    model: str = Field(
        DEFAULT_MODEL, description="Model served; requests for another model get an error "
        "reply (model_mismatch). The default ships inside the image."
    )
    device: str | None = Field(None, description="torch device; unset = cuda if present.")
    normalize: bool = Field(True, description="L2-normalize vectors (cosine distance).")
    encode_batch_size: Annotated[int, Field(ge=1, le=4096)] = Field(
        64, description="Texts per forward pass of sentence-transformers."
    )
    hash_dim: Annotated[int, Field(ge=2, le=8192)] = Field(
        384, description="Vector size of the hash backend (MiniLM's, so collections match)."
    )
    max_text_bytes: Annotated[int, Field(ge=1)] = Field(
        64 * 1024, description="Longer texts are cut before tokenizing (the model would "
        "truncate them anyway; this bounds tokenizer time)."
    )
    # openai-compatible servers (vLLM serve, TEI, ...)
    openai_base_url: str = Field(
        "http://127.0.0.1:8000", description="OpenAI-compatible server (vLLM serve, TEI)."
    )
    openai_api_key: SecretStr | None = Field(None, description="Bearer token for that server.")
    openai_timeout_s: Annotated[float, Field(gt=0)] = Field(60.0, description="Per request.")
    openai_max_retries: Annotated[int, Field(ge=0, le=20)] = Field(
        4, description="Retries of timeouts, 429 and 5xx, with exponential backoff."
    )
    openai_max_batch: Annotated[int, Field(ge=1)] = Field(
        256, description="Texts per /v1/embeddings request."
    )
    # in-process vLLM
    vllm_dtype: str = Field("auto", description="vLLM dtype (auto, float16, bfloat16, float32).")
    vllm_max_model_len: int | None = Field(
        None, description="Token limit; unset = the model's. Longer texts are cut before vLLM."
    )
    vllm_gpu_memory_utilization: Annotated[float, Field(gt=0, le=1)] = Field(
        0.85, description="Share of GPU memory vLLM may take (of RAM on the CPU build)."
    )
    vllm_tensor_parallel_size: Annotated[int, Field(ge=1)] = Field(
        1, description="GPUs per engine."
    )
    vllm_enforce_eager: bool = Field(
        False, description="Skip CUDA graph capture (faster start, slower steady state)."
    )

    @field_validator("model")
    @classmethod
    def _model_named(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("model must not be empty")
        return v


class SinkSettings(CommonSettings):
    qdrant_url: str | None = Field(
        None, description="Qdrant server URL; unset = local mode in qdrant_path."
    )
    qdrant_api_key: SecretStr | None = Field(None, description="Qdrant API key (a Secret).")
    qdrant_path: str = Field(".kubeingest/qdrant", description="Local-mode storage folder.")
    qdrant_timeout_s: Annotated[int, Field(ge=1)] = Field(30, description="Per Qdrant call.")
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = Field(
        9101, description="Port of /metrics, /healthz, /readyz; 0 disables the server."
    )


class ApiSettings(EmbedderSettings):
    api_keys: SecretStr | None = Field(
        None, description="Comma-separated `key` or `tenant:key` entries; when set, requests "
        "that change state need `Authorization: Bearer <key>` (or X-API-Key)."
    )
    max_chunks_per_request: Annotated[int, Field(ge=1)] = Field(
        1024, description="More chunks in one request get 413."
    )
    max_request_bytes: Annotated[int, Field(ge=1024)] = Field(
        16 * 1024 * 1024, description="Larger bodies get 413 before they are read."
    )
    max_upload_files: Annotated[int, Field(ge=1, le=10_000)] = Field(
        100, description="Documents in one multipart ingestion upload; more get 413."
    )
    max_upload_file_bytes: Annotated[int, Field(ge=1, le=1_048_576)] = Field(
        1_048_576, description="Bytes of one uploaded document (an inline document's limit); "
        "larger files get 413."
    )
    events_interval_s: Annotated[float, Field(ge=0.05, le=60)] = Field(
        0.25, description="Ingestion progress events are sent at most this often (only when "
        "something changed)."
    )
    ingest_mode: Literal["local", "cluster"] = Field(
        "local", description="How /api/v1/ingestions runs a job: local = the API runs the "
        "fan-out itself against its Redis (embedder and sink workers do the rest); cluster = "
        "the API creates an IngestionJob custom resource and the operator runs it."
    )
    kube_api_url: str | None = Field(
        None, description="cluster mode: talk to this API server URL without auth (tests, "
        "kubectl proxy); unset = in-cluster config, else ~/.kube/config."
    )
    kube_namespace: str = Field(
        "default", description="cluster mode: the namespace IngestionJobs are created in."
    )
    host: str = Field("0.0.0.0", description="Listen address.")  # noqa: S104  # pod IP
    port: Annotated[int, Field(ge=1, le=65535)] = Field(8080, description="HTTP port.")


@cache
def get_embedder_settings() -> EmbedderSettings:
    return EmbedderSettings()


@cache
def get_sink_settings() -> SinkSettings:
    return SinkSettings()


@cache
def get_api_settings() -> ApiSettings:
    return ApiSettings()


class OperatorSettings(CommonSettings):
    qdrant_url: str | None = Field(
        None, description="Qdrant server the operator checks collections on; unset = skip the "
        "check (the sink still refuses a dimension mismatch, chunk by chunk)."
    )
    qdrant_api_key: SecretStr | None = Field(None, description="Qdrant API key (a Secret).")
    kube_api_url: str | None = Field(
        None, description="Talk to this API server URL without auth (tests, kubectl proxy); "
        "unset = in-cluster config, else ~/.kube/config."
    )
    status_interval_s: Annotated[float, Field(gt=0, le=300)] = Field(
        2.0, description="How often job status is flushed from progress (only when changed)."
    )
    purge_timeout_s: Annotated[float, Field(gt=0)] = Field(
        120.0, description="How long delete waits for a sink to purge points (policy Delete)."
    )
    liveness_port: Annotated[int, Field(ge=0, le=65535)] = Field(
        8081, description="kopf's liveness endpoint (/healthz); 0 disables it."
    )
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = Field(
        9100, description="Port of /metrics; 0 disables it."
    )
    failed_documents_in_status: Annotated[int, Field(ge=0, le=10)] = Field(
        10, description="Failed documents listed in status (all are counted)."
    )


@cache
def get_operator_settings() -> OperatorSettings:
    return OperatorSettings()
