"""The pipeline's own ceiling: the `hash` backend (no model), real Redis, Qdrant in memory,
1, 2, 4... embedder and sink processes, and what each part holds in memory meanwhile."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from benchmarks.corpus import write_ceiling_corpus
from benchmarks.processes import JobRun, pipeline

ROLES = ("producer", "embedder", "sink", "redis")


async def ceiling(corpus: Path, chunks: int, processes: list[int], *, batch: int,
                  chunk_chars: int, profile_dir: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kubeingest-ceiling-") as tmp:
        docs = Path(tmp) / "docs"
        expected = write_ceiling_corpus(corpus, docs, chunks, chunk_chars)
        spec: dict[str, object] = {
            "sources": [{"path": {"path": str(docs), "glob": "*.txt"}}],
            "chunking": {"strategy": "characters", "size": chunk_chars, "overlap": 0},
            "embedding": {"backend": "hash", "batchSize": batch},
            "destination": {"collection": "ceiling"},
        }
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


def _summary(n: int, run: JobRun) -> dict[str, Any]:
    memory = {}
    for role in ROLES:
        at_10pct, end = run.rss_after_warmup_mb(role)
        memory[role] = {"peak_rss_mb": round(run.peak_rss_mb(role), 1),
                        "rss_at_10pct_mb": round(at_10pct, 1), "rss_end_mb": round(end, 1)}
    return {
        "processes": n, "chunks": run.chunks, "seconds": round(run.seconds, 2),
        "chunks_per_s": round(run.chunks_per_s), "cpu_s": run.cpu_s, "memory": memory,
        "redis_peak_used_mb": round(max(s.redis_used_mb for s in run.samples), 1),
        "in_flight_peak_chunks": max(s.published - s.stored for s in run.samples),
    }
