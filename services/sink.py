"""The ingestion worker: embedding results in, points in Qdrant, progress recorded.

For each result it joins the vectors with the chunk context the producer stored, upserts the
points (one batched call per collection for everything read at once), deletes the context,
records each chunk as done exactly once, and only then acks. A redelivered result finds its
chunks already marked done and changes nothing; a result whose context is gone and whose chunks
are not done counts as failed with reason `context_expired`.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field

from qdrant_client import models
from redis.asyncio import Redis

from kubeingest import metrics
from kubeingest.contracts import (
    ContractError,
    DomainAction,
    EmbeddingResultData,
    Float32Matrix,
    JobPurgeData,
    decode_action,
    parse_data,
    result_vectors,
)
from kubeingest.names import ACTION_JOB_PURGE, Names
from kubeingest.progress import ProgressStore
from kubeingest.qdrant_store import JOB_FIELD, DimensionMismatch, QdrantStore
from kubeingest.streams import DeadLetter, Delivery, Outcome, Result

logger = logging.getLogger(__name__)


@dataclass
class _Parsed:
    delivery: Delivery
    action: DomainAction
    data: EmbeddingResultData
    vectors: Float32Matrix
    contexts: list[dict[str, object] | None] = field(default_factory=list)
    distance: str = "Cosine"


class IngestionSink:
    def __init__(self, redis: Redis, names: Names, store: QdrantStore) -> None:
        self.redis = redis
        self.names = names
        self.store = store
        self.progress = ProgressStore(redis, names)

    async def handle(self, batch: list[Delivery]) -> dict[bytes, Result]:
        results: dict[bytes, Result] = {}
        parsed: list[_Parsed] = []
        purges: list[tuple[Delivery, DomainAction]] = []
        for d in batch:
            try:
                action = decode_action(d.fields)
                if action.action_type == ACTION_JOB_PURGE:
                    purges.append((d, action))
                    continue
                data = parse_data(action, EmbeddingResultData)
                vectors = result_vectors(d.fields, data)
            except ContractError as e:
                results[d.entry_id] = DeadLetter(f"malformed: {e}")
                continue
            parsed.append(_Parsed(d, action, data, vectors))
        if parsed:
            # Results of a deleted job must not recreate its state.
            live = await self.progress.live({p.data.task_id for p in parsed})
            for p in [p for p in parsed if p.data.task_id not in live]:
                # The job was deleted: its late results are dropped, not stored.
                results[p.delivery.entry_id] = Outcome.ACK
            parsed = [p for p in parsed if p.data.task_id in live]
        if parsed:
            await self._load_contexts(parsed)
            await self._store(parsed)
            for p in parsed:
                results[p.delivery.entry_id] = Outcome.ACK
        # Purges last: results read in the same batch must not land points after them.
        for d, action in purges:
            try:
                await self._purge(action)
            except ContractError as e:
                results[d.entry_id] = DeadLetter(f"malformed: {e}")
                continue
            results[d.entry_id] = Outcome.ACK
        return results

    async def _purge(self, action: DomainAction) -> None:
        data = parse_data(action, JobPurgeData)
        await self.store.delete_job(data.collection_id, data.task_id)
        await self.redis.set(self.names.job_purged(data.task_id), 1, ex=3600)
        logger.info("purged the points of job %s from %s", data.task_id, data.collection_id)

    async def _load_contexts(self, parsed: list[_Parsed]) -> None:
        """One GET per result: the producer stored its batch's context under the request's
        correlation_id, which the embedder's reply carries."""
        raw = await self.redis.mget([self._context_key(p) for p in parsed])
        for p, value in zip(parsed, raw, strict=True):
            by_id: dict[str, dict[str, object]] = {}
            if value is not None:
                ctx = json.loads(value)
                p.distance = str(ctx.get("distance", "Cosine"))
                by_id = {c["id"]: c for c in ctx["chunks"]}
            p.contexts = [by_id.get(cid) for cid in p.data.chunk_ids]

    def _context_key(self, p: _Parsed) -> str:
        return self.names.batch_context(p.data.task_id, p.action.correlation_id)

    async def _store(self, parsed: list[_Parsed]) -> None:
        by_collection: dict[str, list[models.PointStruct]] = defaultdict(list)
        dims: dict[str, tuple[int, str]] = {}
        stored: list[tuple[str, list[int], list[str]]] = []  # job, seqs, chunk ids
        failed: list[tuple[str, list[int], str]] = []  # job, seqs, error code
        for p in parsed:
            d = p.data
            if d.status == "error":
                failed.append((d.task_id, d.chunk_seqs, d.error_code or "error"))
                continue
            missing_seqs: list[int] = []
            ok_seqs, ok_ids = [], []
            rows = p.vectors.tolist()  # one conversion per result, not one per point
            for cid, seq, ctx, vector in zip(d.chunk_ids, d.chunk_seqs, p.contexts, rows,
                                             strict=True):
                if ctx is None:
                    missing_seqs.append(seq)
                    continue
                by_collection[d.collection_id].append(_point(cid, vector, ctx, d))
                dims.setdefault(d.collection_id, (d.dim, p.distance))
                ok_seqs.append(seq)
                ok_ids.append(cid)
            if ok_seqs:
                stored.append((d.task_id, ok_seqs, ok_ids))
            if missing_seqs:
                # Already-done chunks (a redelivery after the effect) are skipped by
                # record_failed; the rest really lost their context.
                failed.append((d.task_id, missing_seqs, "context_expired"))

        for collection, points in by_collection.items():
            dim, distance = dims[collection]
            try:
                await self.store.ensure_collection(collection, dim, distance)
            except DimensionMismatch as e:
                logger.error("%s", e)
                for job, seqs, _ in [s for s in stored if _in(s, points)]:
                    failed.append((job, seqs, "dimension_mismatch"))
                stored = [s for s in stored if not _in(s, points)]
                continue
            started = time.perf_counter()
            await self.store.upsert(collection, points)
            metrics.SINK_UPSERT_SECONDS.observe(time.perf_counter() - started)
            metrics.SINK_POINTS.inc(len(points))

        for job, seqs, _ in stored:
            new = await self.progress.record_stored(job, seqs)
            metrics.SINK_CHUNKS_STORED.inc(new)
        for job, seqs, code in failed:
            new = await self.progress.record_failed(job, seqs, code)
            if new:
                metrics.SINK_CHUNKS_FAILED.labels(reason=code).inc(new)
                logger.warning("job %s: %d chunks failed: %s", job, new, code)
        # Every chunk of these results is now stored or counted failed: their context goes.
        # (Only now: a crash before this line redelivers the results, which find it again.)
        await self.redis.delete(*[self._context_key(p) for p in parsed])
        for p in parsed:
            logger.info("handled %s result of %d chunks for %s", p.data.status,
                        len(p.data.chunk_ids), p.data.task_id,
                        extra={"job": p.data.task_id, "trace_id": p.action.trace_id,
                               "correlation_id": p.action.correlation_id})

    async def on_dead_letter(self, d: Delivery, reason: str) -> None:
        """A result given up on: its chunks will never be stored, so count them failed."""
        job, seqs = _job_and_seqs(d.fields)
        if job is not None:
            await self.progress.record_failed(job, seqs, "dead_lettered")


def _job_and_seqs(fields: dict[bytes, bytes]) -> tuple[str | None, list[int]]:
    """Best-effort read of a message too broken to validate (e.g. a vector count mismatch):
    enough to account its chunks as failed instead of leaving the job waiting forever."""
    try:
        data = json.loads(fields.get(b"action", b"{}")).get("data", {})
        job, seqs = data.get("task_id"), data.get("chunk_seqs")
    except (ValueError, AttributeError):  # not JSON, or not an object: nothing to account
        return None, []
    if not isinstance(job, str) or not isinstance(seqs, list):
        return None, []
    return job, [s for s in seqs if isinstance(s, int) and 0 <= s < 2**32]


def _in(entry: tuple[str, list[int], list[str]], points: list[models.PointStruct]) -> bool:
    ids = {str(p.id) for p in points}
    return bool(entry[2]) and entry[2][0] in ids


def _point(
    cid: str, vector: list[float], ctx: dict[str, object], d: EmbeddingResultData
) -> models.PointStruct:
    # Built without validation: every field is ours and typed, and validating 384+ floats
    # per point was a tenth of the sink's time (benchmarks/README.md, profile).
    return models.PointStruct.model_construct(
        id=cid,
        vector=vector,
        payload={
            "text": ctx["text"],
            "document_id": ctx["document_id"],
            "chunk_index": ctx["index"],
            "source": ctx["source"],
            "metadata": ctx.get("metadata", {}),
            "tenant_id": d.tenant_id,
            "model": d.model,
            JOB_FIELD: d.task_id,
        },
    )
