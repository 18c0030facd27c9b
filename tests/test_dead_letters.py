"""Malformed messages land in the dead-letter stream with a reason; the workers keep going."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import redis as redis_sync

from kubeingest.contracts import DomainAction, encode_action
from kubeingest.names import ACTION_EMBED_BATCH, ACTION_EMBEDDING_RESULT, Names
from kubeingest.producer import FanoutResult
from kubeingest.spec import parse_spec
from tests.conftest import Procs, wait_for
from tests.pipeline_helpers import finished, produce, read_progress, until, worker_env

pytestmark = pytest.mark.integration


def _dead(r: redis_sync.Redis, stream: str) -> list[dict[bytes, bytes]]:
    return [f for _id, f in r.xrange(Names.dead(stream))]


async def test_malformed_messages_are_dead_lettered_and_work_goes_on(
    redis_server: str, prefix: str, procs: Procs, tmp_path: Path
) -> None:
    names = Names(prefix)
    env = worker_env(redis_server, prefix, KUBEINGEST_BACKEND="hash",
                     KUBEINGEST_QDRANT_PATH=str(tmp_path / "qdrant"))
    procs.start("embedder", env)
    procs.start("sink", env)
    r = redis_sync.Redis.from_url(redis_server)
    wait_for(lambda: r.exists(names.embedding_results), 60, "the sink's consumer group")
    wait_for(lambda: r.exists(names.embed_requests), 60, "the embedder's consumer group")

    # 1. not JSON; 2. a schema version from the future
    r.xadd(names.embed_requests, {"action": b"{not json"})
    future = json.loads(_request_action().model_dump_json())
    future["schema_version"] = 99
    r.xadd(names.embed_requests, {"action": json.dumps(future)})
    # 3. a result claiming 3 vectors for 2 chunks, for a job we then check is accounted
    lost_job = f"lost-{uuid.uuid4().hex[:6]}"
    bad = DomainAction(
        action_type=ACTION_EMBEDDING_RESULT, task_id=lost_job, origin_service="test",
        data={"task_id": lost_job, "chunk_ids": ["a", "b"], "chunk_seqs": [0, 1],
              "collection_id": "c", "model": "m", "status": "success", "dim": 4, "count": 3},
    )
    r.xadd(names.embedding_results, encode_action(bad) | {b"vectors": b"\0" * 48})

    req_dead = wait_for(lambda: len(_dead(r, names.embed_requests)) == 2
                        and _dead(r, names.embed_requests), 30, "two dead requests")
    reasons = sorted(f[b"dead_reason"].decode() for f in req_dead)
    assert any("malformed" in x and "schema_version" in x for x in reasons), reasons
    assert any("malformed" in x and "JSON" in x for x in reasons), reasons
    res_dead = wait_for(lambda: _dead(r, names.embedding_results), 30, "a dead result")
    reason = res_dead[0][b"dead_reason"].decode()
    assert "vector count 3 does not match chunk count 2" in reason
    assert res_dead[0][b"dead_source_stream"].decode() == names.embedding_results
    # The broken result's chunks are counted as failed, not left to hang the job.
    lost = await read_progress(redis_server, prefix, lost_job)
    assert lost.chunks_failed == 2 and lost.errors == {"dead_lettered": 2}
    # Nothing stays pending: the bad entries were acked with their dead letters.
    assert r.xpending(names.embed_requests, "embedders")["pending"] == 0
    assert r.xpending(names.embedding_results, "ingestion-workers")["pending"] == 0

    # And the workers are alive: a real job still completes.
    spec = parse_spec({
        "sources": [{"inline": {"documents": [{"text": f"document number {i} " * 20}
                                              for i in range(30)]}}],
        "chunking": {"strategy": "characters", "size": 100, "overlap": 10},
        "embedding": {"backend": "hash", "batchSize": 8},
        "destination": {"collection": "after-poison"},
    })
    job = f"ok-{uuid.uuid4().hex[:6]}"
    assert await produce(redis_server, prefix, job, spec) is FanoutResult.COMPLETE
    p = await until(lambda: finished(redis_server, prefix, job), 60, "the good job")
    assert p.chunks_failed == 0 and p.chunks_stored == p.chunks_total > 30
    r.close()


def _request_action() -> DomainAction:
    return DomainAction(
        action_type=ACTION_EMBED_BATCH, task_id="t", origin_service="test",
        reply_to_stream="somewhere",
        data={"task_id": "t", "chunk_ids": ["a"], "chunk_seqs": [0], "texts": ["x"],
              "model": "m", "collection_id": "c"},
    )

