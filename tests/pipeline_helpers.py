"""Helpers for tests that drive a job through real Redis and worker processes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
from qdrant_client import QdrantClient
from redis.asyncio import Redis

from kubeingest.names import Names
from kubeingest.producer import FanoutResult, Producer
from kubeingest.progress import Progress, ProgressStore
from kubeingest.spec import IngestionJobSpec, parse_spec


def path_spec(path: Path, collection: str, *, glob: str = "*.rst.txt", size: int = 128,
              overlap: int = 16, batch: int = 16, max_inflight: int = 4,
              backend: str = "sentence-transformers") -> IngestionJobSpec:
    return parse_spec({
        "sources": [{"path": {"path": str(path), "glob": glob}}],
        "chunking": {"strategy": "tokens", "size": size, "overlap": overlap},
        "embedding": {"backend": backend, "batchSize": batch},
        "destination": {"collection": collection},
        "maxInFlightBatches": max_inflight,
    })


async def produce(redis_url: str, prefix: str, job_id: str, spec: IngestionJobSpec) -> FanoutResult:
    redis = Redis.from_url(redis_url)
    try:
        return await Producer(redis, Names(prefix), job_id, spec, context_ttl_s=3600).run()
    finally:
        await redis.aclose()


async def read_progress(redis_url: str, prefix: str, job_id: str) -> Progress:
    redis = Redis.from_url(redis_url)
    try:
        return await ProgressStore(redis, Names(prefix)).read(job_id)
    finally:
        await redis.aclose()


async def finished(redis_url: str, prefix: str, job_id: str) -> Progress | None:
    """The job's progress once every chunk is settled, else None (for `until`)."""
    p = await read_progress(redis_url, prefix, job_id)
    return p if p.finished else None


async def until(cond: Callable[[], Awaitable[Any]], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.2)


def worker_env(redis_url: str, prefix: str, **extra: str) -> dict[str, str]:
    return {"KUBEINGEST_REDIS_URL": redis_url, "KUBEINGEST_STREAM_PREFIX": prefix,
            "KUBEINGEST_LOG_LEVEL": "INFO", **extra}


def all_points(qdrant_path: Path, collection: str) -> list[Any]:
    client = QdrantClient(path=str(qdrant_path))
    try:
        points, offset = [], None
        while True:
            page, offset = client.scroll(collection, limit=256, offset=offset,
                                         with_vectors=True, with_payload=True)
            points.extend(page)
            if offset is None:
                return points
    finally:
        client.close()


def cosine(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
