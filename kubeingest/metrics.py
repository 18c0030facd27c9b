"""Prometheus metrics of every part, declared once (docs/metrics.md lists them).

Labels are bounded: stream, group, backend, model, error code, phase. Never a chunk, document or
job id: those would grow without bound. Every process serves the default registry.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

NS = "kubeingest"

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)

# -- streams layer ----------------------------------------------------------------------------
STREAM_MESSAGES = Counter(
    f"{NS}_stream_messages_total", "Stream entries handled, by outcome (acked, dead_lettered, "
    "failed = left pending for redelivery).", ["stream", "group", "outcome"],
)
STREAM_RECLAIMED = Counter(
    f"{NS}_stream_reclaimed_total", "Pending entries reclaimed from idle consumers (XAUTOCLAIM).",
    ["stream", "group"],
)
DEAD_LETTERS = Counter(
    f"{NS}_dead_letters_total", "Entries moved to a :dead stream, by reason class.",
    ["stream", "reason"],
)
STREAM_LAG = Gauge(
    f"{NS}_stream_lag_messages", "Entries not yet delivered to the consumer group (XINFO lag).",
    ["stream", "group"],
)
STREAM_PENDING = Gauge(
    f"{NS}_stream_pending_messages", "Entries delivered but not acknowledged (XPENDING).",
    ["stream", "group"],
)

# -- embedder ---------------------------------------------------------------------------------
EMBED_BATCHES = Counter(
    f"{NS}_embedder_batches_total",
    "Requests handled, by status: success, error, skipped (its job was deleted).",
    ["backend", "model", "status"],
)
EMBED_TEXTS = Counter(
    f"{NS}_embedder_texts_total", "Texts embedded successfully.", ["backend", "model"],
)
EMBED_ERRORS = Counter(
    f"{NS}_embedder_errors_total", "Batches answered with an error reply, by error_code.",
    ["backend", "model", "error_code"],
)
EMBED_SECONDS = Histogram(
    f"{NS}_embedder_embed_seconds",
    "Time in the backend per call (requests read together are embedded in one call).",
    ["backend", "model"],
    buckets=LATENCY_BUCKETS,
)
EMBED_BATCH_SIZE = Histogram(
    f"{NS}_embedder_batch_size_texts", "Texts per backend call.", ["backend", "model"],
    buckets=SIZE_BUCKETS,
)
MODEL_LOAD_SECONDS = Gauge(
    f"{NS}_embedder_model_load_seconds", "Time the backend took to load.", ["backend", "model"],
)

# -- sink -------------------------------------------------------------------------------------
SINK_POINTS = Counter(f"{NS}_sink_points_upserted_total", "Points upserted into Qdrant.")
SINK_CHUNKS_STORED = Counter(
    f"{NS}_sink_chunks_stored_total", "Chunks newly recorded as stored (exactly once per chunk "
    "and job; redeliveries are not counted).",
)
SINK_CHUNKS_FAILED = Counter(
    f"{NS}_sink_chunks_failed_total", "Chunks newly recorded as failed, by reason.", ["reason"],
)
SINK_UPSERT_SECONDS = Histogram(
    f"{NS}_sink_upsert_seconds", "Qdrant upsert latency per call.", buckets=LATENCY_BUCKETS,
)

# -- producer / operator ----------------------------------------------------------------------
CHUNKS_PUBLISHED = Counter(f"{NS}_chunks_published_total", "Chunks published for embedding.")
DOCUMENTS_READ = Counter(f"{NS}_documents_read_total", "Documents read from sources.")
DOCUMENTS_FAILED = Counter(
    f"{NS}_documents_failed_total", "Documents that could not be read or chunked.",
)
INFLIGHT_BATCHES = Gauge(
    f"{NS}_fanout_inflight_batches", "Batches published and not yet stored or failed "
    "(summed over live jobs).",
)
OPERATOR_STATUS_PATCHES = Counter(
    f"{NS}_operator_status_patches_total", "Status patches the operator asked for (only when "
    "counts or phase changed).",
)
