"""A real pipeline as OS processes: redis-server, N `kubeingest embedder`, N `kubeingest sink`.

The producer (the code the operator's per-job daemon runs) is driven by the benchmark process
itself, so "first publish" and "last point stored" are read on one clock. A sampler records
each part's RSS and CPU seconds and Redis' memory while a job runs.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from redis.asyncio import Redis

from benchmarks.machine import cpu_seconds, free_port, rss_mb
from kubeingest.names import Names
from kubeingest.producer import Producer
from kubeingest.progress import ProgressStore
from kubeingest.spec import parse_spec
from kubeingest.streams import REDIS_UNAVAILABLE

# Seconds the workers themselves measured (their Prometheus histograms): the model's time runs
# in a worker thread, which cProfile (main thread only) does not see.
TIMED = {"kubeingest_embedder_embed_seconds_sum": "model_s",
         "kubeingest_sink_upsert_seconds_sum": "qdrant_upsert_s"}
READY_TIMEOUT_S = 600.0  # a cold model load on a busy 2-core machine
SAMPLE_EVERY_S = 0.5


@dataclass
class Part:
    role: str  # producer | embedder | sink | redis
    pid: int
    proc: subprocess.Popen[bytes] | None = None
    metrics_port: int = 0


@dataclass
class Sample:
    t: float
    published: int
    stored: int
    rss_mb: dict[str, float]  # role -> summed over that role's processes
    redis_used_mb: float


@dataclass
class JobRun:
    chunks: int
    failed: int
    seconds: float
    samples: list[Sample]
    cpu_s: dict[str, float]  # role -> CPU seconds spent during the job
    timed_s: dict[str, float]  # model_s / qdrant_upsert_s, summed over the workers

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.seconds if self.seconds else 0.0

    def peak_rss_mb(self, role: str) -> float:
        return max((s.rss_mb.get(role, 0.0) for s in self.samples), default=0.0)

    def _warm(self) -> list[Sample]:
        """Samples once 10% of the job is stored: imports and first allocations are done."""
        return [s for s in self.samples if s.stored >= self.chunks * 0.1] or self.samples[-1:]

    def rss_after_warmup_mb(self, role: str) -> tuple[float, float]:
        """RSS once 10% of the job is stored, and at the end: flat memory means equal."""
        warm = self._warm()
        return warm[0].rss_mb.get(role, 0.0), warm[-1].rss_mb.get(role, 0.0)

    def rss_slope_mb(self, role: str) -> float:
        """Least-squares growth of RSS per chunk stored, after warm-up: ~0 when flat."""
        warm = self._warm()
        xs = [float(s.stored) for s in warm]
        ys = [s.rss_mb.get(role, 0.0) for s in warm]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        var = sum((x - mx) ** 2 for x in xs)
        if not var:
            return 0.0
        return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var


@dataclass
class Pipeline:
    redis: Redis
    parts: list[Part]
    names: Names = field(default_factory=Names)

    async def run_job(self, job: str, spec: dict[str, object], *,
                      max_in_flight: int = 16) -> JobRun:
        parsed = parse_spec({**spec, "maxInFlightBatches": max_in_flight})
        store = ProgressStore(self.redis, self.names)
        samples: list[Sample] = []
        started = time.monotonic()
        cpu_before, timed_before = self._cpu(), await self._timed()

        async def sample() -> None:
            while True:
                p = await store.read(job, failed_documents=0)
                rss: dict[str, float] = {}
                for part in self.parts:
                    rss[part.role] = rss.get(part.role, 0.0) + rss_mb(part.pid)
                info = await self.redis.info("memory")
                samples.append(Sample(time.monotonic() - started, p.chunks_published,
                                      p.chunks_stored, rss, info["used_memory"] / 2**20))
                await asyncio.sleep(SAMPLE_EVERY_S)

        sampler = asyncio.create_task(sample())
        try:
            await Producer(self.redis, self.names, job, parsed, context_ttl_s=3600).run()
            while not (final := await store.read(job, failed_documents=0)).finished:
                await asyncio.sleep(0.05)
            seconds = time.monotonic() - started
        finally:
            sampler.cancel()
            with suppress(asyncio.CancelledError):
                await sampler
        cpu_after, timed_after = self._cpu(), await self._timed()
        cpu = {role: round(cpu_after[role] - cpu_before.get(role, 0.0), 2) for role in cpu_after}
        timed = {k: round(v - timed_before.get(k, 0.0), 2) for k, v in timed_after.items()}
        return JobRun(final.chunks_stored, final.chunks_failed, seconds, samples, cpu, timed)

    async def _timed(self) -> dict[str, float]:
        out = dict.fromkeys(TIMED.values(), 0.0)
        for part in self.parts:
            if part.metrics_port:
                text = await asyncio.to_thread(_get, part.metrics_port, "/metrics")
                for line in text.splitlines():
                    name = line.split("{", 1)[0].split(" ", 1)[0]
                    if name in TIMED:
                        out[TIMED[name]] += float(line.rsplit(" ", 1)[1])
        return out

    def _cpu(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for part in self.parts:
            out[part.role] = out.get(part.role, 0.0) + cpu_seconds(part.pid)
        return out


@asynccontextmanager
async def pipeline(
    *, embedders: int, sinks: int, env: dict[str, str], profile_dir: Path | None = None,
) -> AsyncIterator[Pipeline]:
    """Start the parts, wait until every worker answers /readyz, stop them all at the end."""
    port = free_port()
    redis_bin = shutil.which("redis-server")
    if redis_bin is None:
        raise SystemExit("redis-server not found (apt-get install redis-server)")
    redis_proc = subprocess.Popen(
        [redis_bin, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    parts = [Part("producer", os.getpid()), Part("redis", redis_proc.pid, redis_proc)]
    base = {**os.environ, "KUBEINGEST_REDIS_URL": url, "KUBEINGEST_QDRANT_PATH": ":memory:",
            "KUBEINGEST_LOG_LEVEL": "WARNING", "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false", **env}
    for role, count in (("embedder", embedders), ("sink", sinks)):
        for i in range(count):
            mport = free_port()
            cmd = [sys.executable, "-m", "kubeingest.cli", role]
            if profile_dir is not None:
                profile_dir.mkdir(parents=True, exist_ok=True)
                cmd[1:1] = ["-m", "cProfile", "-o", str(profile_dir / f"{role}-{i}.prof")]
            proc = subprocess.Popen(cmd, env={**base, "KUBEINGEST_METRICS_PORT": str(mport),
                                              "KUBEINGEST_CONSUMER_NAME": f"bench-{role}-{i}"})
            parts.append(Part(role, proc.pid, proc, mport))
    redis = Redis.from_url(url)
    try:
        await _wait_ready(redis, parts)
        yield Pipeline(redis, parts)
    finally:
        await redis.aclose()
        for part in parts:
            if part.proc is not None and part.role != "redis":
                part.proc.terminate()
        for part in parts:
            if part.proc is not None and part.role != "redis":
                try:
                    part.proc.wait(60)  # cProfile writes its file on a clean exit
                except subprocess.TimeoutExpired:
                    part.proc.kill()
        redis_proc.terminate()
        redis_proc.wait(30)


async def _wait_ready(redis: Redis, parts: list[Part]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            await redis.ping()
            break
        except REDIS_UNAVAILABLE:
            if time.monotonic() > deadline:
                raise SystemExit("redis-server did not start") from None
            await asyncio.sleep(0.1)
    for part in parts:
        if part.proc is None or part.role == "redis":
            continue
        while not await asyncio.to_thread(_ready, part.metrics_port):
            if part.proc.poll() is not None:
                raise SystemExit(f"{part.role} exited with {part.proc.returncode} at start")
            if time.monotonic() > deadline:
                raise SystemExit(f"{part.role} not ready after {READY_TIMEOUT_S:.0f}s")
            await asyncio.sleep(0.2)


def _ready(port: int) -> bool:
    try:
        _get(port, "/readyz")
    except OSError:  # refused while starting, or 503 (urllib's HTTPError is an OSError)
        return False
    return True


def _get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return str(r.read().decode())

