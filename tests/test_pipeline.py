"""The core pipeline through a real redis-server, with the embedder and the sink running as
separate `kubeingest` processes, and Qdrant local mode."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import numpy as np
import pytest

from kubeingest.chunking import chunk_id
from kubeingest.producer import FanoutResult
from tests.conftest import Procs
from tests.pipeline_helpers import (
    all_points,
    cosine,
    finished,
    path_spec,
    produce,
    read_progress,
    until,
    worker_env,
)

pytestmark = pytest.mark.integration


async def test_job_stores_one_point_per_chunk_with_the_models_vectors(
    redis_server: str, prefix: str, procs: Procs, tmp_path: Path, py_docs: Path, minilm: object
) -> None:
    qdrant = tmp_path / "qdrant"
    env = worker_env(redis_server, prefix, KUBEINGEST_QDRANT_PATH=str(qdrant))
    procs.start("embedder", env)
    sink = procs.start("sink", env)
    spec = path_spec(py_docs, "tutorial", glob="[a-c]*.rst.txt")
    job = f"job-{uuid.uuid4().hex[:6]}"

    assert await produce(redis_server, prefix, job, spec) is FanoutResult.COMPLETE
    p = await until(
        lambda: finished(redis_server, prefix, job), 300, "every chunk to be stored"
    )
    assert p.chunks_total is not None and p.chunks_total >= 200
    assert p.chunks_stored == p.chunks_total and p.chunks_failed == 0
    assert p.documents_total == 4 and p.documents_failed == 0
    assert p.fraction == 1.0

    sink.send_signal(signal.SIGTERM)  # local mode locks its folder: let the sink release it
    assert sink.wait(30) == 0
    points = all_points(qdrant, "tutorial")
    assert len(points) == p.chunks_total
    texts = [pt.payload["text"] for pt in points]
    expected = minilm.encode(texts, batch_size=32, normalize_embeddings=True)  # type: ignore[attr-defined]
    worst = min(cosine(pt.vector, e) for pt, e in zip(points, expected, strict=True))
    assert worst > 0.999
    for pt in points:
        pl = pt.payload
        assert set(pl) >= {"text", "document_id", "chunk_index", "source", "tenant_id",
                           "job_id", "model"}
        assert pl["job_id"] == job and pl["source"].startswith(str(py_docs))
        assert str(pt.id) == chunk_id("tutorial", pl["document_id"], pl["chunk_index"],
                                      pl["text"])
    # Chunks of one document are numbered 0..n-1 without gaps.
    by_doc: dict[str, list[int]] = {}
    for pt in points:
        by_doc.setdefault(pt.payload["document_id"], []).append(pt.payload["chunk_index"])
    for idx in by_doc.values():
        assert sorted(idx) == list(range(len(idx)))


async def test_killed_embedder_is_replaced_and_the_job_completes_exactly(
    redis_server: str, prefix: str, procs: Procs, tmp_path: Path, py_docs: Path
) -> None:
    qdrant = tmp_path / "qdrant"
    # A short idle time so the replacement reclaims the dead consumer's batches quickly.
    env = worker_env(redis_server, prefix, KUBEINGEST_QDRANT_PATH=str(qdrant),
                     KUBEINGEST_CLAIM_IDLE_MS="1500")
    first = procs.start("embedder", env, name="embedder-1")
    sink = procs.start("sink", env)
    spec = path_spec(py_docs, "killtest", glob="[a-c]*.rst.txt", max_inflight=6)
    job = f"job-{uuid.uuid4().hex[:6]}"

    import asyncio

    fanout = asyncio.create_task(produce(redis_server, prefix, job, spec))
    await until(lambda: _stored_at_least(redis_server, prefix, job, 40), 180,
                "the job to be under way")
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    before = await read_progress(redis_server, prefix, job)
    assert not before.finished
    procs.start("embedder", env, name="embedder-2")

    assert await fanout is FanoutResult.COMPLETE
    p = await until(lambda: finished(redis_server, prefix, job), 300, "the job to finish")
    assert p.chunks_stored == p.chunks_total and p.chunks_failed == 0
    sink.send_signal(signal.SIGTERM)
    assert sink.wait(30) == 0
    points = all_points(qdrant, "killtest")
    assert len(points) == p.chunks_total
    assert len({str(pt.id) for pt in points}) == len(points)
    assert all(np.isfinite(pt.vector).all() for pt in points)



async def _stored_at_least(url: str, prefix: str, job: str, n: int) -> bool:
    return (await read_progress(url, prefix, job)).chunks_stored >= n
