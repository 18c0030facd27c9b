"""The embedding service: `embedding.batch.process` in, `ingestion.embedding_result` out.

For each request it embeds the texts and replies on the request's `reply_to_stream` with the
same `correlation_id`; the entry is acked only after the reply is written. A batch that cannot
be embedded becomes an error reply with an `error_code`, never a dead worker; a message that
cannot even be parsed goes to the dead-letter stream.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from redis.asyncio import Redis

from kubeingest import metrics
from kubeingest.contracts import (
    ContractError,
    DomainAction,
    EmbedBatchData,
    EmbeddingResultData,
    Float32Matrix,
    decode_action,
    encode_action,
    parse_data,
)
from kubeingest.embedding import Embedder, EmbeddingError
from kubeingest.names import (
    ACTION_EMBED_BATCH,
    ACTION_EMBEDDING_RESULT,
    EMBEDDING_SERVICE,
    Names,
)
from kubeingest.progress import ProgressStore
from kubeingest.streams import DeadLetter, Delivery, Outcome, Result

logger = logging.getLogger(__name__)

MAX_TEXTS_PER_CALL = 4096  # texts handed to the backend at once, across requests


@dataclass(frozen=True)
class _Request:
    delivery: Delivery
    action: DomainAction
    data: EmbedBatchData
    texts: list[str]


class EmbeddingService:
    def __init__(self, redis: Redis, embedder: Embedder, names: Names, *,
                 max_text_bytes: int = 65536) -> None:
        self.redis = redis
        self.embedder = embedder
        self.names = names
        self.progress = ProgressStore(redis, names)
        self.max_text_bytes = max_text_bytes
        self._labels = {"backend": embedder.backend, "model": embedder.model}

    async def handle(self, batch: list[Delivery]) -> dict[bytes, Result]:
        results: dict[bytes, Result] = {}
        ready: list[_Request] = []
        for d in batch:
            checked = await self._check(d)
            if isinstance(checked, _Request):
                ready.append(checked)
            else:
                results[d.entry_id] = checked
        ready = await self._skip_deleted_jobs(ready, results)
        # Requests read together are embedded together, up to MAX_TEXTS_PER_CALL texts: the
        # backend sorts them by length before cutting its own batches, so less padding is
        # computed (14% of the model's time on CPU with MiniLM, benchmarks/README.md).
        group: list[_Request] = []
        texts = 0
        for r in ready:
            if group and texts + len(r.texts) > MAX_TEXTS_PER_CALL:
                results.update(await self._embed_group(group))
                group, texts = [], 0
            group.append(r)
            texts += len(r.texts)
        if group:
            results.update(await self._embed_group(group))
        return results

    def _is_job(self, r: _Request) -> bool:
        """A pipeline job's request (its reply goes to the sink), not an HTTP caller's."""
        return r.action.reply_to_stream == self.names.embedding_results

    async def _skip_deleted_jobs(
        self, ready: list[_Request], results: dict[bytes, Result]
    ) -> list[_Request]:
        """Requests of a job deleted since they were published are acked unembedded: the sink
        would drop their results anyway, and a deleted 200,000-chunk job should not keep a GPU
        busy. Only the pipeline's own requests are jobs; the HTTP endpoint's callers' are not."""
        jobs = {r.data.task_id for r in ready if self._is_job(r)}
        gone = jobs - await self.progress.live(jobs)
        if not gone:
            return ready
        keep = []
        for r in ready:
            if self._is_job(r) and r.data.task_id in gone:
                results[r.delivery.entry_id] = Outcome.ACK
                metrics.EMBED_BATCHES.labels(**self._labels, status="skipped").inc()
            else:
                keep.append(r)
        logger.info("skipped %d requests of deleted jobs %s", len(ready) - len(keep),
                    ", ".join(sorted(gone)))
        return keep

    async def _check(self, d: Delivery) -> _Request | Result:
        try:
            action = decode_action(d.fields)
            if action.action_type != ACTION_EMBED_BATCH:
                raise ContractError(f"unexpected action_type {action.action_type!r}")
            data = parse_data(action, EmbedBatchData)
            if not action.reply_to_stream:
                raise ContractError("reply_to_stream is missing")
        except ContractError as e:
            return DeadLetter(f"malformed: {e}")
        if data.model != self.embedder.model:
            await self._reply_error(action, data, "model_mismatch",
                                    f"this embedder serves {self.embedder.model!r}, "
                                    f"not {data.model!r}")
            return Outcome.ACK
        return _Request(d, action, data, [self._cap(t) for t in data.texts])

    async def _embed_group(self, group: list[_Request]) -> dict[bytes, Result]:
        if len(group) == 1:
            return {group[0].delivery.entry_id: await self._embed_one(group[0])}
        texts = [t for r in group for t in r.texts]
        started = time.perf_counter()
        try:
            vectors = await asyncio.to_thread(self.embedder.embed, texts)
            if vectors.shape[0] != len(texts):
                raise EmbeddingError("embedding_failed", "backend returned the wrong vector count")
        except Exception:
            # One bad request must not fail the others read with it: embed them one by one,
            # each with its own error handling (a retryable error is retried per request).
            logger.warning("embedding %d requests together failed; embedding them one by one",
                           len(group), exc_info=True)
            return {r.delivery.entry_id: await self._embed_one(r) for r in group}
        elapsed = time.perf_counter() - started
        self._observe(elapsed, len(texts))
        results: dict[bytes, Result] = {}
        offset = 0
        for r in group:
            await self._succeed(r, vectors[offset : offset + len(r.texts)], elapsed, len(group))
            offset += len(r.texts)
            results[r.delivery.entry_id] = Outcome.ACK
        return results

    async def _embed_one(self, r: _Request) -> Result:
        action, data, texts = r.action, r.data, r.texts
        started = time.perf_counter()
        try:
            vectors = await asyncio.to_thread(self.embedder.embed, texts)
        except EmbeddingError as e:
            if e.retryable:
                logger.warning("batch %s: %s (will retry)", action.correlation_id, e)
                return Outcome.RETRY
            await self._reply_error(action, data, e.code, str(e))
            return Outcome.ACK
        except Exception as e:
            # Whatever the engine raised (a bad input, CUDA OOM), this batch fails and the
            # worker lives on; the sink counts the chunks as failed under the job's policy.
            logger.exception("batch %s failed in the backend", action.correlation_id)
            await self._reply_error(action, data, "embedding_failed", f"{type(e).__name__}: {e}")
            return Outcome.ACK
        elapsed = time.perf_counter() - started
        await self._succeed(r, vectors, elapsed, 1)
        self._observe(elapsed, len(texts))
        return Outcome.ACK

    async def _succeed(self, r: _Request, vectors: Float32Matrix, elapsed: float,
                       requests_in_call: int) -> None:
        """Reply with this request's vectors; one log line per request, with its ids, so a
        request stays traceable across the parts however many shared the backend call."""
        await self._reply(r.action, r.data, vectors)
        metrics.EMBED_BATCHES.labels(**self._labels, status="success").inc()
        shared = f" (one call for {requests_in_call} requests)" if requests_in_call > 1 else ""
        logger.info("embedded %d texts for %s in %.3fs%s", len(r.texts), r.data.task_id,
                    elapsed, shared, extra=_log_context(r.action))

    def _observe(self, seconds: float, texts: int) -> None:
        metrics.EMBED_SECONDS.labels(**self._labels).observe(seconds)
        metrics.EMBED_BATCH_SIZE.labels(**self._labels).observe(texts)
        metrics.EMBED_TEXTS.labels(**self._labels).inc(texts)

    def _cap(self, text: str) -> str:
        raw = text.encode()
        if len(raw) <= self.max_text_bytes:
            return text
        return raw[: self.max_text_bytes].decode("utf-8", errors="ignore")

    async def _reply(self, action: DomainAction, data: EmbedBatchData, v: Float32Matrix) -> None:
        if v.shape[0] != len(data.chunk_ids):
            raise EmbeddingError("embedding_failed", "backend returned the wrong vector count")
        result = _result_data(data, status="success", dim=int(v.shape[1]), count=int(v.shape[0]))
        await self._send(action, result, v)

    async def _reply_error(
        self, action: DomainAction, data: EmbedBatchData, code: str, message: str
    ) -> None:
        logger.warning("batch %s of %s: %s: %s", action.correlation_id, data.task_id, code,
                       message, extra=_log_context(action))
        metrics.EMBED_ERRORS.labels(**self._labels, error_code=code).inc()
        metrics.EMBED_BATCHES.labels(**self._labels, status="error").inc()
        result = _result_data(data, status="error", error_code=code, error_message=message[:1000])
        await self._send(action, result, None)

    async def _send(
        self, action: DomainAction, result: EmbeddingResultData, v: Float32Matrix | None
    ) -> None:
        reply = DomainAction(
            action_type=ACTION_EMBEDDING_RESULT,
            correlation_id=action.correlation_id,
            trace_id=action.trace_id,
            task_id=action.task_id,
            tenant_id=action.tenant_id,
            origin_service=EMBEDDING_SERVICE,
            data=result.model_dump(),
        )
        assert action.reply_to_stream is not None
        await self.redis.xadd(action.reply_to_stream, encode_action(reply, v))  # type: ignore[arg-type]

    async def on_dead_letter(self, d: Delivery, reason: str) -> None:
        """A request given up on: tell the sink, so the job counts its chunks as failed."""
        try:
            action = decode_action(d.fields)
            data = parse_data(action, EmbedBatchData)
        except ContractError:
            return  # nothing to account: we cannot even tell which job it belonged to
        if action.reply_to_stream:
            await self._reply_error(action, data, "dead_lettered", reason)


def _log_context(action: DomainAction) -> dict[str, str]:
    """Carried into JSON log lines: follow one request across the parts."""
    return {"trace_id": action.trace_id, "correlation_id": action.correlation_id,
            "job": action.task_id}


def _result_data(data: EmbedBatchData, **kw: object) -> EmbeddingResultData:
    return EmbeddingResultData.model_validate({
        "task_id": data.task_id,
        "chunk_ids": data.chunk_ids,
        "chunk_seqs": data.chunk_seqs,
        "collection_id": data.collection_id,
        "tenant_id": data.tenant_id,
        "document_id": data.document_id,
        "model": data.model,
        **kw,
    })
