"""`POST /api/v1/embeddings/generate` (second seed): 202, then the callback on the caller's
stream from a real embedder process; auth and size limits."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import numpy as np
import pytest
import redis as redis_sync
from fastapi.testclient import TestClient

from kubeingest.contracts import EmbeddingResultData, decode_action, parse_data, result_vectors
from kubeingest.names import Names
from kubeingest.services.api.app import create_app
from kubeingest.settings import ApiSettings
from tests.conftest import Procs, wait_for
from tests.pipeline_helpers import worker_env

pytestmark = pytest.mark.integration

KEY = "s3cret-key"


@pytest.fixture
def api(redis_server: str, prefix: str) -> Iterator[TestClient]:
    settings = ApiSettings(redis_url=redis_server, stream_prefix=prefix, api_keys=f"acme:{KEY}",
                           max_chunks_per_request=10, max_text_bytes=1000, backend="hash")
    with TestClient(create_app(settings)) as client:
        yield client


def _body(**over: object) -> dict[str, object]:
    body: dict[str, object] = {
        "document_id": "doc-1", "collection_id": "kb", "tenant_id": "acme",
        "chunks": [{"chunk_id": f"c{i}", "text": f"chunk number {i}", "metadata": {}}
                   for i in range(3)],
        "task_id": "task-1", "callback_queue": "ingestion:callbacks:embedding",
    }
    body.update(over)
    return body


def test_accepted_then_callback_with_the_seeds_fields(
    api: TestClient, redis_server: str, prefix: str, procs: Procs
) -> None:
    procs.start("embedder", worker_env(redis_server, prefix, KUBEINGEST_BACKEND="hash"))
    queue = f"callbacks:{uuid.uuid4().hex[:6]}"
    resp = api.post("/api/v1/embeddings/generate", json=_body(callback_queue=queue),
                    headers={"Authorization": f"Bearer {KEY}"})
    assert resp.status_code == 202, resp.text
    assert resp.json()["task_id"] == "task-1" and resp.json()["status"] == "accepted"

    r = redis_sync.Redis.from_url(redis_server)
    entries = wait_for(lambda: r.xrange(queue), 60, "the callback")
    fields = entries[0][1]
    action = decode_action(fields)
    data = parse_data(action, EmbeddingResultData)
    assert action.correlation_id == resp.json()["correlation_id"]
    assert (data.task_id, data.document_id, data.collection_id, data.tenant_id, data.status) == (
        "task-1", "doc-1", "kb", "acme", "success")
    assert data.chunk_ids == ["c0", "c1", "c2"]
    vectors = result_vectors(fields, data)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    r.close()


def test_missing_or_wrong_key_is_401_and_other_tenant_403(api: TestClient) -> None:
    url = "/api/v1/embeddings/generate"
    assert api.post(url, json=_body()).status_code == 401
    assert api.post(url, json=_body(), headers={"Authorization": "Bearer nope"}).status_code == 401
    other = api.post(url, json=_body(tenant_id="globex"), headers={"X-API-Key": KEY})
    assert other.status_code == 403 and "globex" in other.json()["detail"]


def test_size_limits_and_malformed_requests(api: TestClient, redis_server: str, prefix: str) -> None:
    url, h = "/api/v1/embeddings/generate", {"Authorization": f"Bearer {KEY}"}
    many = [{"chunk_id": f"c{i}", "text": "x"} for i in range(11)]
    resp = api.post(url, json=_body(chunks=many), headers=h)
    assert resp.status_code == 413 and "at most 10" in resp.json()["detail"]
    resp = api.post(url, json=_body(chunks=[{"chunk_id": "a", "text": "y" * 1001}]), headers=h)
    assert resp.status_code == 413 and "chunks[0].text" in resp.json()["detail"]
    resp = api.post(url, json=_body(chunks=[]), headers=h)
    assert resp.status_code == 422
    resp = api.post(url, json=_body(callback_queue=Names(prefix).embedding_results), headers=h)
    assert resp.status_code == 422 and "callback_queue" in resp.json()["detail"]
    # Nothing reached the request stream.
    r = redis_sync.Redis.from_url(redis_server)
    assert r.xlen(Names(prefix).embed_requests) == 0
    r.close()


def test_readyz_reports_an_unreachable_redis() -> None:
    from tests.conftest import free_port

    settings = ApiSettings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        resp = client.get("/readyz")
        assert resp.status_code == 503 and "redis unreachable" in resp.json()["reason"]


def test_health_and_metrics(api: TestClient) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").status_code == 200
    api.post("/api/v1/embeddings/generate", json=_body())
    metrics = api.get("/metrics/").text
    assert 'kubeingest_http_requests_total{method="POST",route="/api/v1/embeddings/generate",status="401"}' in metrics
