"""The pipeline's own ceiling: the `hash` backend (no model), real Redis, Qdrant in memory,
1, 2, 4... embedder and sink processes, and what each part holds in memory meanwhile.

`peer_ceiling` runs LlamaIndex's IngestionPipeline on the very texts the kubeingest job
publishes, with the same hash function as its embedding: what each pipeline costs when the
model is nearly free (the GPU case, where the model stops hiding the pipeline).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.corpus import write_ceiling_corpus
from benchmarks.processes import JobRun, pipeline

ROLES = ("producer", "embedder", "sink", "redis")


def _spec(docs: Path, batch: int, chunk_chars: int) -> dict[str, object]:
    return {
        "sources": [{"path": {"path": str(docs), "glob": "*.txt"}}],
        "chunking": {"strategy": "characters", "size": chunk_chars, "overlap": 0},
        "embedding": {"backend": "hash", "batchSize": batch},
        "destination": {"collection": "ceiling"},
    }


async def ceiling(corpus: Path, chunks: int, processes: list[int], *, batch: int,
                  chunk_chars: int, profile_dir: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kubeingest-ceiling-") as tmp:
        docs = Path(tmp) / "docs"
        expected = write_ceiling_corpus(corpus, docs, chunks, chunk_chars)
        spec = _spec(docs, batch, chunk_chars)
        runs = []
        for n in processes:
            prof = profile_dir / f"ceiling-{n}" if profile_dir and n == processes[0] else None
            async with pipeline(embedders=n, sinks=n, env={"KUBEINGEST_BACKEND": "hash"},
                                profile_dir=prof) as p:
                run = await p.run_job(f"ceiling-{n}", spec)
            if run.chunks != expected or run.failed:
                raise SystemExit(f"ceiling with {n} processes stored {run.chunks} of "
                                 f"{expected} chunks ({run.failed} failed)")
            runs.append(_summary(n, run))
    base = runs[0]["chunks_per_s"]
    for r in runs:
        r["speedup"] = round(r["chunks_per_s"] / base, 2)
    return {"chunks": expected, "batch": batch, "chunk_chars": chunk_chars, "runs": runs}


def peer_ceiling(corpus: Path, chunks: int, *, batch: int, chunk_chars: int) -> dict[str, Any]:
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.schema import TextNode
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient

    from benchmarks.corpus import job_texts
    from benchmarks.llamaindex_hash import HashEmbedding

    with tempfile.TemporaryDirectory(prefix="kubeingest-ceiling-") as tmp:
        docs = Path(tmp) / "docs"
        write_ceiling_corpus(corpus, docs, chunks, chunk_chars)
        texts = job_texts(_spec(docs, batch, chunk_chars))
    client = QdrantClient(location=":memory:")
    store = QdrantVectorStore(client=client, collection_name="ceiling", batch_size=batch)
    nodes = [TextNode(text=t) for t in texts]
    ingest = IngestionPipeline(transformations=[HashEmbedding(embed_batch_size=batch)],
                               vector_store=store)
    started = time.perf_counter()
    ingest.run(nodes=nodes, disable_cache=True)
    seconds = time.perf_counter() - started
    stored = client.count("ceiling").count
    if stored != len(texts):
        raise SystemExit(f"LlamaIndex stored {stored} of {len(texts)} chunks")
    return {"contestant": "LlamaIndex IngestionPipeline, hash embedding", "chunks": stored,
            "seconds": round(seconds, 2), "chunks_per_s": round(stored / seconds)}


def _summary(n: int, run: JobRun) -> dict[str, Any]:
    memory = {}
    for role in ROLES:
        at_10pct, end = run.rss_after_warmup_mb(role)
        memory[role] = {"peak_rss_mb": round(run.peak_rss_mb(role), 1),
                        "rss_at_10pct_mb": round(at_10pct, 1), "rss_end_mb": round(end, 1),
                        "mb_per_100k_chunks": round(run.rss_slope_mb(role) * 100_000, 2)}
    return {
        "processes": n, "chunks": run.chunks, "seconds": round(run.seconds, 2),
        "chunks_per_s": round(run.chunks_per_s), "cpu_s": run.cpu_s, **run.timed_s,
        "memory": memory,
        "redis_peak_used_mb": round(max(s.redis_used_mb for s in run.samples), 1),
        "in_flight_peak_chunks": max(s.published - s.stored for s in run.samples),
    }
