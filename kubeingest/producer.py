"""Fan-out: documents -> chunks -> stored context + batches on the request stream.

Memory stays flat however large the corpus: documents stream through one at a time, and the
producer never runs more than `maxInFlightBatches` batches ahead of the sink (it waits on the
job's own progress counts). Restart-safe: sources are read in a deterministic order, chunks are
numbered the same way each time, and batches up to the recorded checkpoint are skipped.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum

from redis.asyncio import Redis

from kubeingest import metrics
from kubeingest.chunking import Chunk, chunk_id, make_splitter
from kubeingest.contracts import DomainAction, EmbedBatchData, encode_action
from kubeingest.names import ACTION_EMBED_BATCH, INGESTION_SERVICE, Names
from kubeingest.progress import ProgressStore
from kubeingest.sources import ConfigMapReader, Document, DocumentFailure, iter_documents
from kubeingest.spec import IngestionJobSpec

logger = logging.getLogger(__name__)

POLL_MIN_S, POLL_MAX_S = 0.02, 0.5


class FanoutResult(Enum):
    COMPLETE = "complete"
    STOPPED = "stopped"  # suspended or deleted: the checkpoint says where to resume


def batch_context_json(batch: list[Chunk], distance: str) -> str:
    """What the sink needs besides the vectors, for every chunk of one request; stored under
    `ctx:{job}:{correlation_id}` with a TTL and dropped once the sink has settled the batch."""
    return json.dumps({
        "distance": distance,
        "chunks": [{"id": c.chunk_id, "seq": c.seq, "document_id": c.document_id,
                    "index": c.index, "text": c.text, "source": c.source,
                    "metadata": c.metadata} for c in batch],
    }, separators=(",", ":"))


@dataclass
class _Item:
    doc: Document | DocumentFailure
    chunks: list[str]


class Producer:
    def __init__(
        self,
        redis: Redis,
        names: Names,
        job_id: str,
        spec: IngestionJobSpec,
        *,
        context_ttl_s: int,
        configmap_reader: ConfigMapReader | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.redis = redis
        self.names = names
        self.job_id = job_id
        self.spec = spec
        self.ttl_s = context_ttl_s
        self.configmap_reader = configmap_reader
        self.should_stop = should_stop
        self.progress = ProgressStore(redis, names)
        self._inflight_reported = 0

    async def run(self) -> FanoutResult:
        await self.progress.start(self.job_id)
        if (await self.progress.read(self.job_id, failed_documents=0)).fanout_complete:
            return FanoutResult.COMPLETE  # a restart after the last batch: nothing to redo
        checkpoint_chunks, checkpoint_docs = await self.progress.get_checkpoint(self.job_id)
        if checkpoint_chunks:
            logger.info("job %s: resuming after %d published chunks", self.job_id,
                        checkpoint_chunks)
        batch_size = self.spec.embedding.batch_size
        items = self._items()
        seq = docs = 0
        batch: list[Chunk] = []
        try:
            while True:
                item = await asyncio.to_thread(next, items, None)
                if item is None:
                    break
                docs += 1
                if isinstance(item.doc, DocumentFailure):
                    await self._document_failed(item.doc, count=docs > checkpoint_docs)
                    continue
                if not item.chunks:
                    await self.progress.record_failed_document(
                        self.job_id, item.doc.id, "no text to chunk", count=docs > checkpoint_docs
                    )
                    continue
                if docs > checkpoint_docs:
                    metrics.DOCUMENTS_READ.inc()
                for index, text in enumerate(item.chunks):
                    if seq >= checkpoint_chunks:
                        batch.append(self._chunk(seq, item.doc, index, text))
                    seq += 1
                    if len(batch) >= batch_size:
                        if not await self._publish(batch, published=seq, documents=docs):
                            return FanoutResult.STOPPED
                        batch = []
            if batch and not await self._publish(batch, published=seq, documents=docs):
                return FanoutResult.STOPPED
            await self.progress.finish_fanout(self.job_id, seq, docs)
            logger.info("job %s: fan-out complete: %d chunks from %d documents",
                        self.job_id, seq, docs)
            return FanoutResult.COMPLETE
        finally:
            self._report_inflight(0)

    def _items(self) -> Iterator[_Item]:
        """Runs in a worker thread: reading and chunking are blocking work."""
        splitter = make_splitter(self.spec.chunking, self.spec.embedding.model)
        for doc in iter_documents(self.spec.sources, configmap_reader=self.configmap_reader):
            if isinstance(doc, DocumentFailure):
                yield _Item(doc, [])
            else:
                yield _Item(doc, list(splitter.split(doc.text)))

    def _chunk(self, seq: int, doc: Document, index: int, text: str) -> Chunk:
        cid = chunk_id(self.spec.destination.collection, doc.id, index, text)
        return Chunk(seq, cid, doc.id, index, text, doc.source, dict(doc.metadata))

    async def _document_failed(self, failure: DocumentFailure, *, count: bool) -> None:
        logger.warning("job %s: document %s failed: %s", self.job_id, failure.id, failure.reason)
        if count:
            metrics.DOCUMENTS_FAILED.inc()
        await self.progress.record_failed_document(
            self.job_id, failure.id, failure.reason, count=count
        )

    async def _publish(self, batch: list[Chunk], *, published: int, documents: int) -> bool:
        """Publish one batch once there is room; False (nothing sent) if stopped meanwhile."""
        await self._wait_for_room(len(batch))
        if self.should_stop():
            return False
        spec = self.spec
        data = EmbedBatchData(
            task_id=self.job_id,
            chunk_ids=[c.chunk_id for c in batch],
            chunk_seqs=[c.seq for c in batch],
            texts=[c.text for c in batch],
            model=spec.embedding.model,
            tenant_id=spec.tenant_id,
            collection_id=spec.destination.collection,
        )
        action = DomainAction(
            action_type=ACTION_EMBED_BATCH,
            task_id=self.job_id,
            tenant_id=spec.tenant_id,
            origin_service=INGESTION_SERVICE,
            reply_to_stream=self.names.embedding_results,
            data=data.model_dump(),
        )
        # Context first, then the request: a result can never arrive before its context.
        async with self.redis.pipeline(transaction=False) as p:
            p.set(self.names.batch_context(self.job_id, action.correlation_id),
                  batch_context_json(batch, spec.destination.distance.value), ex=self.ttl_s)
            p.xadd(self.names.embed_requests, encode_action(action))  # type: ignore[arg-type]
            p.hset(self.names.job_state(self.job_id),
                   mapping={"published_chunks": published, "documents_total": documents})
            await p.execute()
        metrics.CHUNKS_PUBLISHED.inc(len(batch))
        return True

    async def _wait_for_room(self, size: int) -> None:
        """Backpressure: never more than maxInFlightBatches batches ahead of the sink."""
        limit = self.spec.max_in_flight_batches * self.spec.embedding.batch_size
        delay = POLL_MIN_S
        while True:
            p = await self.progress.read(self.job_id, failed_documents=0)
            self._report_inflight(p.in_flight)
            if p.in_flight + size <= limit or self.should_stop():
                return
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, POLL_MAX_S)

    def _report_inflight(self, chunks: int) -> None:
        batches = -(-chunks // self.spec.embedding.batch_size)
        metrics.INFLIGHT_BATCHES.inc(batches - self._inflight_reported)
        self._inflight_reported = batches
