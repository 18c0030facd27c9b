"""Process entry points of the embedder and the sink: wiring, signals, ops server.

SIGTERM sets a stop event: the consumer finishes the batch in hand (reply written, or points
upserted, then acked) and returns; Kubernetes' grace period must exceed one batch's time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from kubeingest import metrics
from kubeingest.embedding import create_embedder
from kubeingest.names import EMBEDDER_GROUP, SINK_GROUP, Names
from kubeingest.qdrant_store import QdrantStore, open_client
from kubeingest.services.embedder import EmbeddingService
from kubeingest.services.health import serve_ops
from kubeingest.services.sink import IngestionSink
from kubeingest.settings import CommonSettings, EmbedderSettings, SinkSettings
from kubeingest.streams import (
    REDIS_UNAVAILABLE,
    ConsumerConfig,
    StreamConsumer,
    refresh_lag_gauges,
)

logger = logging.getLogger(__name__)

LAG_REFRESH_S = 5.0


def redis_from(settings: CommonSettings) -> Redis:
    if settings.redis_url is None:
        raise SystemExit("KUBEINGEST_REDIS_URL is required for this command")
    return Redis.from_url(settings.redis_url.get_secret_value(), health_check_interval=30)


def consumer_config(settings: CommonSettings, stream: str, group: str) -> ConsumerConfig:
    return ConsumerConfig(
        stream=stream, group=group, consumer=settings.consumer_name,
        read_count=settings.read_count, block_ms=settings.block_ms,
        claim_idle_ms=settings.claim_idle_ms, max_deliveries=settings.max_deliveries,
        dead_letter_maxlen=settings.dead_letter_maxlen,
    )


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


async def refresh_lag(redis: Redis, streams: list[str], stop: asyncio.Event) -> None:
    while not stop.is_set():
        for s in streams:
            with contextlib.suppress(*REDIS_UNAVAILABLE):  # best effort; retried next tick
                await refresh_lag_gauges(redis, s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), LAG_REFRESH_S)


def redis_ready(redis: Redis) -> Callable[[], Awaitable[str | None]]:
    async def check() -> str | None:
        try:
            await redis.ping()
        except REDIS_UNAVAILABLE as e:
            return f"redis unreachable: {e}"
        return None

    return check


async def run_embedder(settings: EmbedderSettings) -> None:
    stop = asyncio.Event()
    install_stop_signals(stop)
    names = Names(settings.stream_prefix)
    redis = redis_from(settings)
    started = time.perf_counter()
    embedder = await asyncio.to_thread(create_embedder, settings)
    metrics.MODEL_LOAD_SECONDS.labels(backend=embedder.backend, model=embedder.model).set(
        time.perf_counter() - started
    )
    logger.info("embedder ready: backend=%s model=%s dim=%d (%.1fs to load)",
                embedder.backend, embedder.model, embedder.dim, time.perf_counter() - started)
    service = EmbeddingService(redis, embedder, names, max_text_bytes=settings.max_text_bytes)
    consumer = StreamConsumer(
        redis, consumer_config(settings, names.embed_requests, EMBEDDER_GROUP), service.handle,
        on_dead_letter=service.on_dead_letter,
    )
    await _run(consumer, redis, [names.embed_requests], settings.metrics_port, stop)


async def run_sink(settings: SinkSettings) -> None:
    stop = asyncio.Event()
    install_stop_signals(stop)
    names = Names(settings.stream_prefix)
    redis = redis_from(settings)
    api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
    store = QdrantStore(open_client(url=settings.qdrant_url, path=settings.qdrant_path,
                                    api_key=api_key, timeout_s=settings.qdrant_timeout_s),
                        server=bool(settings.qdrant_url))
    sink = IngestionSink(redis, names, store)
    consumer = StreamConsumer(
        redis, consumer_config(settings, names.embedding_results, SINK_GROUP), sink.handle,
        on_dead_letter=sink.on_dead_letter,
    )
    try:
        await _run(consumer, redis, [names.embedding_results, names.embed_requests],
                   settings.metrics_port, stop)
    finally:
        await store.close()


async def _run(
    consumer: StreamConsumer, redis: Redis, lag_streams: list[str], port: int,
    stop: asyncio.Event,
) -> None:
    tasks = [
        asyncio.create_task(serve_ops(port, redis_ready(redis), stop)),
        asyncio.create_task(refresh_lag(redis, lag_streams, stop)),
    ]
    try:
        await consumer.run(stop)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await redis.aclose()
        logger.info("stopped")
