"""Fan-out memory over a large job: does the producer's RSS stay flat as the job grows?

Runs the producer (the code the operator's per-job daemon runs) in this process against a real
redis-server, with `kubeingest embedder` (hash backend) and `kubeingest sink` (Qdrant local mode
in memory) as separate processes, on a generated corpus of N chunks. Samples this process's RSS
and Redis' used_memory every 0.5 s and reports the peak and the slope of RSS over chunks
published after warm-up.

    python -m benchmarks.fanout_memory --chunks 200000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from redis.asyncio import Redis

from kubeingest.names import Names
from kubeingest.producer import Producer
from kubeingest.progress import ProgressStore
from kubeingest.spec import parse_spec
from kubeingest.streams import REDIS_UNAVAILABLE

CHUNK_CHARS = 120
CHUNKS_PER_FILE = 100


def rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def write_corpus(root: Path, chunks: int) -> None:
    words = ("kubeingest", "streams", "chunks", "through", "redis", "into", "qdrant", "with",
             "bounded", "memory")
    for f in range(chunks // CHUNKS_PER_FILE):
        lines = []
        for c in range(CHUNKS_PER_FILE):
            seed = f * CHUNKS_PER_FILE + c
            text = " ".join(words[(seed + i) % len(words)] for i in range(14))
            lines.append(f"{seed:08d} {text}"[: CHUNK_CHARS - 1].ljust(CHUNK_CHARS - 1))
        (root / f"doc{f:05d}.txt").write_text(" ".join(lines))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run(chunks: int, out: Path) -> dict[str, object]:
    tmp = Path(tempfile.mkdtemp(prefix="kubeingest-bench-"))
    corpus = tmp / "corpus"
    corpus.mkdir()
    write_corpus(corpus, chunks)
    port = free_port()
    redis_proc = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(port), "--save", "",
         "--appendonly", "no"], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    env = {**os.environ, "KUBEINGEST_REDIS_URL": url, "KUBEINGEST_BACKEND": "hash",
           "KUBEINGEST_QDRANT_PATH": ":memory:", "KUBEINGEST_METRICS_PORT": "0",
           "KUBEINGEST_LOG_LEVEL": "WARNING"}
    workers = [subprocess.Popen([sys.executable, "-m", "kubeingest.cli", cmd], env=env)
               for cmd in ("embedder", "sink")]
    redis = Redis.from_url(url)
    spec = parse_spec({
        "sources": [{"path": {"path": str(corpus), "glob": "*.txt"}}],
        "chunking": {"strategy": "characters", "size": CHUNK_CHARS, "overlap": 0},
        "embedding": {"backend": "hash", "batchSize": 256},
        "destination": {"collection": "bench"},
        "maxInFlightBatches": 16,
    })
    names = Names()
    store = ProgressStore(redis, names)
    samples: list[tuple[float, int, int, float, float, float]] = []
    started = time.monotonic()

    async def sample() -> None:
        while True:
            try:
                await redis.ping()
            except REDIS_UNAVAILABLE:
                await asyncio.sleep(0.1)
                continue
            p = await store.read("bench", failed_documents=0)
            info = await redis.info("memory")
            samples.append((time.monotonic() - started, p.chunks_published, p.chunks_stored,
                            rss_mb(), info["used_memory"] / 2**20,
                            max(rss_mb(w.pid) for w in workers)))
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample())
    try:
        for _ in range(100):
            try:
                await redis.ping()
                break
            except REDIS_UNAVAILABLE:
                await asyncio.sleep(0.1)
        await Producer(redis, names, "bench", spec, context_ttl_s=3600).run()
        while not (final := await store.read("bench", failed_documents=0)).finished:
            await asyncio.sleep(0.2)
        elapsed = time.monotonic() - started
    finally:
        sampler.cancel()
        await redis.aclose()
        for w in workers:
            w.terminate()
            w.wait(30)
        redis_proc.terminate()
        shutil.rmtree(tmp, ignore_errors=True)
    # Slope of producer RSS over chunks published, after the first 10% (imports, warm-up).
    warm = [s for s in samples if s[1] >= chunks * 0.1] or samples[-1:]
    xs, ys = [s[1] for s in warm], [s[3] for s in warm]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs) or 1.0
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var
    result = {
        "chunks": final.chunks_total, "chunks_stored": final.chunks_stored,
        "seconds": round(elapsed, 1),
        "chunks_per_s": round(final.chunks_stored / elapsed),
        "producer_peak_rss_mb": round(max(s[3] for s in samples), 1),
        "producer_rss_at_10pct_mb": round(warm[0][3], 1),
        "producer_rss_end_mb": round(samples[-1][3], 1),
        "producer_rss_slope_mb_per_100k_chunks": round(slope * 100_000, 2),
        "redis_peak_used_memory_mb": round(max(s[4] for s in samples), 1),
        "worker_peak_rss_mb": round(max(s[5] for s in samples), 1),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "fanout_memory.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=200_000)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    result = asyncio.run(run(args.chunks, args.out))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
