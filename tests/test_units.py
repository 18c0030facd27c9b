"""Unit tests: contracts, ids, chunking, the spec's errors, progress arithmetic, and the
streams layer's ledger (on fakeredis: our own boundary, no server needed)."""

from __future__ import annotations

import asyncio
import json

import fakeredis
import numpy as np
import pytest

from kubeingest.chunking import CharacterSplitter, TokenSplitter, chunk_id, load_tokenizer
from kubeingest.contracts import (
    ContractError,
    DomainAction,
    EmbeddingResultData,
    decode_action,
    decode_vectors,
    encode_action,
    encode_vectors,
    parse_data,
)
from kubeingest.names import Names
from kubeingest.progress import Progress, ProgressStore, outcome
from kubeingest.spec import SpecError, parse_spec
from kubeingest.streams import ConsumerConfig, DeadLetter, Delivery, Outcome, StreamConsumer
from kubeingest.textextract import ExtractionError, extract_text

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def test_vectors_round_trip_as_little_endian_float32() -> None:
    m = np.random.default_rng(0).standard_normal((5, 7)).astype(np.float32)
    raw = encode_vectors(m)
    assert len(raw) == 5 * 7 * 4 and raw[:4] == m[0, 0].astype("<f4").tobytes()
    assert np.array_equal(decode_vectors(raw, 5, 7), m)
    with pytest.raises(ContractError, match="expected 140"):
        decode_vectors(raw[:-1], 5, 7)


def test_unknown_schema_version_is_rejected_clearly() -> None:
    action = DomainAction(action_type="x", task_id="t", origin_service="s", data={})
    doc = json.loads(action.model_dump_json())
    doc["schema_version"] = 7
    with pytest.raises(ContractError, match=r"schema_version: .*unsupported schema_version 7"):
        decode_action({b"action": json.dumps(doc).encode()})


def test_result_vector_count_must_match_chunks() -> None:
    action = DomainAction(action_type="x", task_id="t", origin_service="s", data={
        "task_id": "t", "chunk_ids": ["a"], "chunk_seqs": [0], "collection_id": "c",
        "model": "m", "status": "success", "dim": 2, "count": 2})
    with pytest.raises(ContractError, match="vector count 2 does not match chunk count 1"):
        parse_data(action, EmbeddingResultData)
    assert decode_action(encode_action(action)).action_id == action.action_id


def test_chunk_ids_are_deterministic_and_content_addressed() -> None:
    a = chunk_id("col", "doc", 0, "text")
    assert a == chunk_id("col", "doc", 0, "text")
    assert len({a, chunk_id("col2", "doc", 0, "text"), chunk_id("col", "doc", 1, "text"),
                chunk_id("col", "doc", 0, "text!")}) == 4


def test_token_chunks_fit_the_model_and_overlap() -> None:
    text = " ".join(f"word{i} is here." for i in range(600))
    chunks = list(TokenSplitter(MODEL, 64, 8).split(text))
    tok = load_tokenizer(MODEL)
    lengths = [len(tok.encode(c, add_special_tokens=False).ids) for c in chunks]
    assert max(lengths) <= 64 and len(chunks) > 10
    # consecutive chunks share their boundary tokens
    assert chunks[1].split()[0] in chunks[0]
    assert chunks[0].startswith("word0") and chunks[-1].endswith("word599 is here.")


def test_character_chunks_cover_the_text() -> None:
    text = "alpha beta gamma delta " * 50
    chunks = list(CharacterSplitter(100, 20).split(text))
    assert all(len(c) <= 100 for c in chunks)
    assert chunks[0].startswith("alpha") and text.strip().endswith(chunks[-1][-10:])


@pytest.mark.parametrize(("raw", "field"), [
    ({"sources": [], "destination": {"collection": "c"}}, "spec.sources"),
    ({"sources": [{"inline": {"documents": [{"text": "x"}]}, "path": {"path": "/x"}}],
      "destination": {"collection": "c"}}, "spec.sources[0]"),
    ({"sources": [{"inline": {"documents": [{"text": "x"}]}}],
      "destination": {"collection": "bad name!"}}, "spec.destination.collection"),
    ({"sources": [{"inline": {"documents": [{"text": "x"}]}}], "destination": {"collection": "c"},
      "maxInFlightBatches": 0}, "spec.maxInFlightBatches"),
])
def test_spec_errors_name_the_field(raw: dict[str, object], field: str) -> None:
    with pytest.raises(SpecError) as e:
        parse_spec(raw)
    assert e.value.field == field, str(e.value)


def test_html_and_gzip_bombs() -> None:
    html = b"<html><head><style>x{}</style></head><body><h1>Title</h1><script>x()</script>" \
           b"<p>Body text.</p></body></html>"
    assert extract_text("a.html", html, max_bytes=10_000) == "Title\nBody text."
    import gzip

    bomb = gzip.compress(b"a" * 1_000_000)
    with pytest.raises(ExtractionError, match="larger than 1000 bytes once decompressed"):
        extract_text("big.txt.gz", bomb, max_bytes=1000)


def test_outcome_follows_the_failure_policy() -> None:
    done = Progress("j", chunks_total=100, chunks_stored=95, chunks_failed=5,
                    fanout_complete=True)
    assert outcome(done, None, 0.0) == "Failed"
    assert outcome(done, 5, 0.0) == "Succeeded"
    assert outcome(done, None, 0.05) == "Succeeded"
    assert outcome(Progress("j", chunks_total=100, chunks_stored=50, fanout_complete=True),
                   None, 0) is None
    assert outcome(Progress("j", chunks_total=0, documents_failed=2, fanout_complete=True),
                   None, 0) == "Failed"


async def test_progress_never_double_counts() -> None:
    store = ProgressStore(fakeredis.FakeAsyncRedis(), Names("u"))
    assert await store.record_stored("j", [0, 1, 2]) == 3
    assert await store.record_stored("j", [1, 2, 3]) == 1
    assert await store.record_failed("j", [3, 4], "boom") == 1  # 3 is stored already
    assert await store.record_failed("j", [4], "boom") == 0
    p = await store.read("j")
    assert (p.chunks_stored, p.chunks_failed, p.errors) == (4, 1, {"boom": 1})
    assert await store.record_stored("j", [4]) == 1  # a late success supersedes the failure
    p = await store.read("j")
    assert (p.chunks_stored, p.chunks_failed) == (5, 0)


@pytest.mark.integration
async def test_progress_counts_runs_exactly_against_real_redis(redis_server: str) -> None:
    """Bits are written 63 at a time (one field per run of consecutive chunks): random
    overlapping batches, gaps and duplicates must count exactly as a set of chunks would."""
    import random

    from redis.asyncio import Redis

    redis = Redis.from_url(redis_server)
    store = ProgressStore(redis, Names(f"runs{random.randrange(10**9)}"))
    rng = random.Random(7)
    stored: set[int] = set()
    failed: set[int] = set()
    try:
        for _ in range(300):
            start = rng.randrange(0, 2000)
            gaps = rng.choice([0.0, 0.02, 0.3])  # whole batches, long runs, scattered seqs
            seqs = [s for s in range(start, start + rng.randrange(1, 300)) if rng.random() >= gaps]
            if not seqs:
                continue
            seqs += rng.sample(seqs, min(3, len(seqs)))  # duplicates within one call
            if rng.random() < 0.7:
                assert await store.record_stored("j", seqs) == len(set(seqs) - stored)
                stored |= set(seqs)
                failed -= set(seqs)
            else:
                new = set(seqs) - stored - failed
                assert await store.record_failed("j", seqs, "x") == len(new)
                failed |= new
        p = await store.read("j")
        assert (p.chunks_stored, p.chunks_failed) == (len(stored), len(failed))
    finally:
        await redis.aclose()


async def test_stream_consumer_dead_letters_after_max_deliveries() -> None:
    redis = fakeredis.FakeAsyncRedis()
    calls: list[int] = []

    async def flaky(batch: list[Delivery]) -> dict[bytes, Outcome | DeadLetter]:
        calls.append(batch[0].deliveries)
        raise RuntimeError("qdrant down")

    cfg = ConsumerConfig("s", "g", "c1", read_count=1, block_ms=10, claim_idle_ms=1,
                         max_deliveries=3)
    consumer = StreamConsumer(redis, cfg, flaky)
    await redis.xgroup_create("s", "g", id="0", mkstream=True)
    await redis.xadd("s", {"action": "x"})
    for _ in range(10):
        consumer._next_claim = 0  # reclaim at once: the entry is idle after 1 ms
        await asyncio.sleep(0.005)
        await consumer.step()
        if await redis.xlen("s:dead"):
            break
    assert calls == [1, 2, 3]
    dead = await redis.xrange("s:dead")
    assert len(dead) == 1
    reason = dead[0][1][b"dead_reason"].decode()
    assert reason.startswith("max_deliveries exceeded (3 deliveries)") and "qdrant down" in reason
    assert await redis.xlen("s") == 0
    assert (await redis.xpending("s", "g"))["pending"] == 0


async def test_group_creation_is_idempotent_and_acked_entries_are_trimmed() -> None:
    redis = fakeredis.FakeAsyncRedis()

    async def ok(batch: list[Delivery]) -> dict[bytes, Outcome | DeadLetter]:
        return {d.entry_id: Outcome.ACK for d in batch}

    cfg = ConsumerConfig("s", "g", "c", block_ms=10)
    consumer = StreamConsumer(redis, cfg, ok)
    from kubeingest.streams import ensure_group

    await ensure_group(redis, "s", "g")
    await ensure_group(redis, "s", "g")
    for i in range(5):
        await redis.xadd("s", {"n": str(i)})
    assert await consumer.step() == 5
    assert await redis.xlen("s") == 0


def test_operator_folder_never_shadows_the_standard_library() -> None:
    """`python -m ...` from the checkout puts the repository root first on sys.path."""
    import subprocess
    import sys

    from tests.conftest import REPO

    code = "import sys; sys.path.insert(0, sys.argv[1]); import operator; print(operator.eq)"
    out = subprocess.run([sys.executable, "-S", "-c", code, str(REPO)], capture_output=True,
                         text=True, check=False)
    assert out.returncode == 0, out.stderr


class _RecordingEmbedder:
    """Our own boundary: the hash backend, recording each call, refusing one poisoned text."""

    backend, model, dim = "hash", "sentence-transformers/all-MiniLM-L6-v2", 384

    def __init__(self) -> None:
        from kubeingest.embedding.hashing import HashEmbedder

        self.calls: list[list[str]] = []
        self._hash = HashEmbedder(self.model)

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        if "poison" in texts:
            raise ValueError("the engine rejects this input")
        return self._hash.embed(texts)


def _request(i: int, texts: list[str], reply_to: str) -> Delivery:
    from kubeingest.contracts import DomainAction, EmbedBatchData, encode_action

    data = EmbedBatchData(task_id="job", chunk_ids=[f"c{i}-{k}" for k in range(len(texts))],
                          chunk_seqs=[i * 100 + k for k in range(len(texts))], texts=texts,
                          model=_RecordingEmbedder.model, tenant_id="t", collection_id="c")
    action = DomainAction(action_type="embedding.batch.process", task_id="job", tenant_id="t",
                          origin_service="test", reply_to_stream=reply_to,
                          correlation_id=f"corr-{i}", data=data.model_dump())
    return Delivery(f"{i}-0".encode(), encode_action(action))


async def test_requests_read_together_are_embedded_in_one_call_and_replied_apart(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from kubeingest.contracts import EmbeddingResultData, parse_data, result_vectors
    from kubeingest.embedding.hashing import HashEmbedder
    from kubeingest.services.embedder import EmbeddingService

    redis = fakeredis.FakeAsyncRedis()
    embedder = _RecordingEmbedder()
    service = EmbeddingService(redis, embedder, Names("u"))  # type: ignore[arg-type]
    batches = [["alpha", "beta"], ["gamma"], ["delta", "epsilon", "zeta"]]
    with caplog.at_level("INFO", logger="kubeingest.services.embedder"):
        results = await service.handle([_request(i, t, "replies") for i, t in enumerate(batches)])
    # Still one log line per request, carrying its ids (followable across the parts).
    logged = [r for r in caplog.records if r.getMessage().startswith("embedded ")]
    assert sorted(getattr(r, "correlation_id", None) for r in logged) == [
        "corr-0", "corr-1", "corr-2"]

    assert set(results.values()) == {Outcome.ACK}
    assert embedder.calls == [[t for b in batches for t in b]]  # one backend call
    replies = await redis.xrange("replies")
    assert len(replies) == 3
    expected = HashEmbedder(embedder.model)
    for i, (_, fields) in enumerate(replies):  # each request gets its own vectors back
        action = decode_action(fields)
        data = parse_data(action, EmbeddingResultData)
        assert action.correlation_id == f"corr-{i}"
        assert data.chunk_ids == [f"c{i}-{k}" for k in range(len(batches[i]))]
        np.testing.assert_allclose(result_vectors(fields, data), expected.embed(batches[i]))


async def test_a_bad_request_read_with_others_fails_alone() -> None:
    from kubeingest.contracts import EmbeddingResultData, parse_data
    from kubeingest.services.embedder import EmbeddingService

    redis = fakeredis.FakeAsyncRedis()
    embedder = _RecordingEmbedder()
    service = EmbeddingService(redis, embedder, Names("u"))  # type: ignore[arg-type]
    batches = [["alpha"], ["poison", "beta"], ["gamma"]]
    await service.handle([_request(i, t, "replies") for i, t in enumerate(batches)])

    statuses = {}
    for _, fields in await redis.xrange("replies"):
        action = decode_action(fields)
        data = parse_data(action, EmbeddingResultData)
        statuses[action.correlation_id] = (data.status, data.error_code)
    assert statuses == {"corr-0": ("success", None), "corr-1": ("error", "embedding_failed"),
                        "corr-2": ("success", None)}


async def test_requests_of_a_deleted_job_are_not_embedded() -> None:
    from kubeingest.services.embedder import EmbeddingService

    redis = fakeredis.FakeAsyncRedis()
    names = Names("u")
    embedder = _RecordingEmbedder()
    service = EmbeddingService(redis, embedder, names)  # type: ignore[arg-type]
    job_request = _request(0, ["alpha"], names.embedding_results)
    http_request = _request(1, ["beta"], "callers-stream")  # not a job: always embedded

    # The job has no state (deleted): its request is acked, not embedded, not replied to.
    results = await service.handle([job_request, http_request])
    assert set(results.values()) == {Outcome.ACK}
    assert embedder.calls == [["beta"]]
    assert await redis.xlen(names.embedding_results) == 0

    await redis.hset(names.job_state("job"), "started_at", "1")  # a live job is embedded
    await service.handle([job_request])
    assert embedder.calls[-1] == ["alpha"]
    assert await redis.xlen(names.embedding_results) == 1
