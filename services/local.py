"""`kubeingest run JOB.yaml`: producer, embedder and sink in one process.

The same parts and the same streams as in a cluster, on embedded defaults: an in-process Redis
(fakeredis) and Qdrant local mode in `./.kubeingest/qdrant`. `--redis-url` / `--qdrant-url`
point it at real servers instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
import uuid
from dataclasses import dataclass
from typing import TextIO

import fakeredis
from redis.asyncio import Redis

from kubeingest.embedding import create_embedder
from kubeingest.names import DEFAULT_PREFIX, EMBEDDER_GROUP, SINK_GROUP, Names
from kubeingest.producer import Producer
from kubeingest.progress import Progress, ProgressStore, outcome
from kubeingest.qdrant_store import QdrantStore, open_client
from kubeingest.services.embedder import EmbeddingService
from kubeingest.services.sink import IngestionSink
from kubeingest.settings import EmbedderSettings
from kubeingest.spec import IngestionJobManifest
from kubeingest.streams import ConsumerConfig, StreamConsumer

logger = logging.getLogger(__name__)


@dataclass
class LocalRunOptions:
    redis_url: str | None = None
    qdrant_url: str | None = None
    qdrant_path: str = ".kubeingest/qdrant"
    qdrant_api_key: str | None = None
    stream_prefix: str = DEFAULT_PREFIX
    backend: str | None = None  # overrides spec.embedding.backend
    progress: bool = True


@dataclass
class LocalRunResult:
    phase: str
    progress: Progress
    seconds: float
    points: int

    @property
    def chunks_per_s(self) -> float:
        return self.progress.chunks_stored / self.seconds if self.seconds > 0 else 0.0


async def run_local(manifest: IngestionJobManifest, opts: LocalRunOptions) -> LocalRunResult:
    spec = manifest.spec
    job_id = f"{manifest.metadata.name}-{uuid.uuid4().hex[:8]}"
    names = Names(opts.stream_prefix)
    redis: Redis = (
        Redis.from_url(opts.redis_url) if opts.redis_url else fakeredis.FakeAsyncRedis()
    )
    emb_settings = EmbedderSettings(
        backend=opts.backend or spec.embedding.backend, model=spec.embedding.model,
        normalize=spec.embedding.normalize, encode_batch_size=spec.embedding.batch_size,
        metrics_port=0,
    )
    embedder = await asyncio.to_thread(create_embedder, emb_settings)
    store = QdrantStore(open_client(url=opts.qdrant_url, path=opts.qdrant_path,
                                    api_key=opts.qdrant_api_key), server=bool(opts.qdrant_url))
    stop = asyncio.Event()
    service = EmbeddingService(redis, embedder, names)
    sink = IngestionSink(redis, names, store)
    def config(stream: str, group: str, role: str) -> ConsumerConfig:
        # A few entries per read keep this process's single event loop responsive.
        return ConsumerConfig(stream, group, f"local-{role}-{job_id}", read_count=4,
                              claim_idle_ms=30_000, poll=not opts.redis_url,
                              max_deliveries=spec.retry.max_deliveries)

    consumers = [
        StreamConsumer(redis, config(names.embed_requests, EMBEDDER_GROUP, "embedder"),
                       service.handle, on_dead_letter=service.on_dead_letter),
        StreamConsumer(redis, config(names.embedding_results, SINK_GROUP, "sink"),
                       sink.handle, on_dead_letter=sink.on_dead_letter),
    ]
    producer = Producer(redis, names, job_id, spec, context_ttl_s=24 * 3600)
    tracker = ProgressStore(redis, names)
    started = time.monotonic()
    tasks = [asyncio.create_task(c.run(stop)) for c in consumers]
    bar = ProgressBar(sys.stderr, enabled=opts.progress)
    try:
        fanout = asyncio.create_task(producer.run())
        while True:
            p = await tracker.read(job_id)
            bar.update(p, time.monotonic() - started)
            if fanout.done():
                fanout.result()  # re-raise a producer crash
                if p.finished:
                    break
            for t in tasks:
                if t.done():
                    t.result()
            await asyncio.sleep(0.2)
        seconds = time.monotonic() - started
        bar.close(p, seconds)
        fp = spec.failure_policy
        phase = outcome(p, fp.max_failed_chunks, fp.max_failed_ratio) or "Failed"
        points = await store.count(spec.destination.collection, job_id)
        return LocalRunResult(phase, p, seconds, points)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        if not opts.redis_url:
            await redis.flushall()
        else:
            with contextlib.suppress(Exception):  # cleanup only; the result stands
                await tracker.delete(job_id)
        await redis.aclose()
        await store.close()


class ProgressBar:
    """One redrawn line on a terminal; a line every few seconds otherwise (CI logs)."""

    def __init__(self, out: TextIO, *, enabled: bool) -> None:
        self.out = out
        self.enabled = enabled
        self.tty = out.isatty()
        self._last_line = 0.0

    def update(self, p: Progress, elapsed: float) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not self.tty and now - self._last_line < 5:
            return
        self._last_line = now
        line = render(p, elapsed)
        if self.tty:
            self.out.write("\r\x1b[2K" + line)
        else:
            self.out.write(line + "\n")
        self.out.flush()

    def close(self, p: Progress, elapsed: float) -> None:
        if self.enabled:
            self.out.write(("\r\x1b[2K" if self.tty else "") + render(p, elapsed) + "\n")
            self.out.flush()


def render(p: Progress, elapsed: float) -> str:
    total = p.chunks_total if p.chunks_total is not None else p.chunks_published
    total_s = str(total) if p.fanout_complete else f"{total}+"
    rate = p.chunks_stored / elapsed if elapsed > 0 else 0.0
    width = 24
    filled = int(width * p.fraction)
    bar = "#" * filled + "-" * (width - filled)
    eta = ""
    if p.fanout_complete and rate > 0 and p.chunks_total:
        eta = f" ETA {max(p.chunks_total - p.settled, 0) / rate:.0f}s"
    failed = f" failed {p.chunks_failed}" if p.chunks_failed else ""
    docs_failed = f" ({p.documents_failed} failed)" if p.documents_failed else ""
    return (
        f"[{bar}] {p.fraction * 100:5.1f}% docs {p.documents_total}{docs_failed} "
        f"chunks {p.chunks_stored}/{total_s}{failed} {rate:.0f} chunks/s{eta}"
    )
