"""Metrics as a user scrapes them: a real Prometheus scraping the embedder and the sink while a
job runs; the numbers must agree with the job's progress and with Qdrant."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from kubeingest.producer import FanoutResult
from kubeingest.spec import parse_spec
from tests.conftest import Procs, free_port, wait_for
from tests.pipeline_helpers import all_points, finished, produce, until, worker_env

pytestmark = pytest.mark.integration


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[list[str]], str]]:
    """A starter: given scrape targets, runs a real Prometheus and returns its URL."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed (apt-get install prometheus; see .ci/run)")
    started: list[subprocess.Popen[bytes]] = []

    def start(targets: list[str]) -> str:
        url = f"http://127.0.0.1:{free_port()}"
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n  - job_name: kubeingest\n    static_configs:\n"
            f"      - targets: [{', '.join(repr(t) for t in targets)}]\n"
        )
        started.append(subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address={url.removeprefix('http://')}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))
        wait_for(lambda: _ready(f"{url}/-/ready"), 30, "prometheus to be ready")
        return url

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(20)


def query(url: str, expr: str) -> float | None:
    data = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=5).json()
    result = data["data"]["result"]
    return float(result[0]["value"][1]) if result else None


async def test_prometheus_sees_what_qdrant_and_the_job_see(
    redis_server: str, prefix: str, procs: Procs, tmp_path: Path,
    prometheus: Callable[[list[str]], str],
) -> None:
    emb_port, sink_port = free_port(), free_port()
    qdrant = tmp_path / "qdrant"
    env = worker_env(redis_server, prefix, KUBEINGEST_BACKEND="hash",
                     KUBEINGEST_QDRANT_PATH=str(qdrant))
    embedder = procs.start("embedder", {**env, "KUBEINGEST_METRICS_PORT": str(emb_port),
                                        "KUBEINGEST_LOG_FORMAT": "json"})
    sink = procs.start("sink", {**env, "KUBEINGEST_METRICS_PORT": str(sink_port)})
    for port in (emb_port, sink_port):
        wait_for(lambda p=port: _ready(f"http://127.0.0.1:{p}/readyz"), 60, "worker readiness")
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json() == {"status": "ok"}
    prom_url = prometheus([f"127.0.0.1:{emb_port}", f"127.0.0.1:{sink_port}"])

    spec = parse_spec({
        "sources": [{"inline": {"documents": [{"text": f"metric document {i}. " * 40}
                                              for i in range(60)]}}],
        "chunking": {"strategy": "characters", "size": 200, "overlap": 20},
        "embedding": {"backend": "hash", "batchSize": 16},
        "destination": {"collection": "metrics"},
    })
    job = f"job-{uuid.uuid4().hex[:6]}"
    assert await produce(redis_server, prefix, job, spec) is FanoutResult.COMPLETE
    p = await until(lambda: finished(redis_server, prefix, job), 60, "the job")
    total = p.chunks_total
    assert total and p.chunks_stored == total

    stored = wait_for(lambda: query(prom_url, "sum(kubeingest_sink_chunks_stored_total)") == total
                      and total, 30, "Prometheus to scrape the stored-chunks counter")
    # Targets are scraped independently: each series gets its own deadline.
    for expr in ("sum(kubeingest_embedder_texts_total)",
                 "sum(kubeingest_sink_points_upserted_total)"):
        wait_for(lambda e=expr: query(prom_url, e) == total, 30, f"{expr} == {total}")
    lag = 'max(kubeingest_stream_lag_messages{group="embedders"})'
    wait_for(lambda: query(prom_url, lag) == 0.0, 30, "the lag gauge back at zero")
    pending = 'max(kubeingest_stream_pending_messages{group="ingestion-workers"})'
    wait_for(lambda: query(prom_url, pending) == 0.0, 30, "no pending results")

    # Every exposition passes promtool's lint.
    for port in (emb_port, sink_port):
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        lint = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                              capture_output=True, check=False)
        assert lint.returncode == 0, lint.stdout + lint.stderr

    sink.send_signal(signal.SIGTERM)
    assert sink.wait(30) == 0
    assert len(all_points(qdrant, "metrics")) == stored

    # JSON logs carry the ids that let one follow a request across the parts.
    lines = [json.loads(x) for x in embedder.log_path.read_text().splitlines()]  # type: ignore[attr-defined]
    embedded = [x for x in lines if x["msg"].startswith("embedded ")]
    assert embedded and all(x["job"] == job and x["trace_id"] and x["correlation_id"]
                            for x in embedded)

