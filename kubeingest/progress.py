"""A job's progress in Redis, counted idempotently.

Each chunk has a job-wide sequence number. The sink sets bit `seq` of the job's `done` bitmap
when the chunk is in Qdrant, or of its `failed` bitmap when it failed for good; the counts are
BITCOUNTs. A redelivered result sets the same bit again, so progress can never double count, and
200,000 chunks cost 25 KB of Redis, not a set of 200,000 ids.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from redis.asyncio import Redis

from kubeingest.names import Names

FAILED_DOCUMENTS_KEPT = 1000  # Redis keeps this many failed documents per job; all are counted


@dataclass(frozen=True)
class FailedDocument:
    document: str
    reason: str


@dataclass
class Progress:
    job_id: str
    documents_total: int = 0
    documents_failed: int = 0
    chunks_published: int = 0
    chunks_total: int | None = None  # known once fan-out has finished
    chunks_stored: int = 0
    chunks_failed: int = 0
    fanout_complete: bool = False
    started_at: float | None = None
    errors: dict[str, int] = field(default_factory=dict)
    failed_documents: list[FailedDocument] = field(default_factory=list)

    @property
    def settled(self) -> int:
        return self.chunks_stored + self.chunks_failed

    @property
    def in_flight(self) -> int:
        return max(self.chunks_published - self.settled, 0)

    @property
    def finished(self) -> bool:
        """Every planned chunk is stored or failed."""
        return (
            self.fanout_complete
            and self.chunks_total is not None
            and self.settled >= self.chunks_total
        )

    @property
    def fraction(self) -> float:
        total = self.chunks_total if self.chunks_total is not None else self.chunks_published
        if not total:
            return 1.0 if self.fanout_complete else 0.0
        return min(self.settled / total, 1.0)


class ProgressStore:
    def __init__(self, redis: Redis, names: Names) -> None:
        self.redis = redis
        self.names = names

    # -- producer side ---------------------------------------------------------------------
    async def start(self, job_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as p:
            p.hsetnx(self.names.job_state(job_id), "started_at", str(time.time()))
            p.sadd(self.names.job_index(), job_id)
            await p.execute()

    async def get_checkpoint(self, job_id: str) -> tuple[int, int]:
        """(chunks published, documents consumed) recorded by an earlier producer."""
        chunks, docs = await self.redis.hmget(
            self.names.job_state(job_id), ["published_chunks", "documents_total"]
        )
        return int(chunks or 0), int(docs or 0)

    async def record_published(self, job_id: str, chunks: int, documents: int) -> None:
        """Checkpoint after a batch is on the stream: totals so far, not increments, so a
        restarted producer that replays the same batches writes the same values."""
        await self.redis.hset(
            self.names.job_state(job_id),
            mapping={"published_chunks": chunks, "documents_total": documents},
        )

    async def record_failed_document(
        self, job_id: str, document: str, reason: str, *, count: bool = True
    ) -> None:
        async with self.redis.pipeline(transaction=True) as p:
            if count:
                p.hincrby(self.names.job_state(job_id), "documents_failed", 1)
            p.rpush(
                self.names.job_failed_documents(job_id),
                json.dumps({"document": document, "reason": reason}),
            )
            p.ltrim(self.names.job_failed_documents(job_id), 0, FAILED_DOCUMENTS_KEPT - 1)
            await p.execute()

    async def finish_fanout(self, job_id: str, total_chunks: int, documents: int) -> None:
        await self.redis.hset(
            self.names.job_state(job_id),
            mapping={
                "total_chunks": total_chunks,
                "published_chunks": total_chunks,
                "documents_total": documents,
                "fanout_complete": 1,
            },
        )

    # -- sink side ---------------------------------------------------------------------------
    async def record_stored(self, job_id: str, seqs: Sequence[int]) -> int:
        """Mark chunks stored; returns how many were not stored before."""
        if not seqs:
            return 0
        done, failed = self.names.job_done_bits(job_id), self.names.job_failed_bits(job_id)
        fields = _fields(seqs)
        # One BITFIELD per bitmap, one field per run of up to 63 consecutive chunks (a batch is
        # one run): it returns the old bits, so counting stays exact under redelivery.
        async with self.redis.pipeline(transaction=True) as p:
            p.execute_command("BITFIELD", done, *_set_ops(fields, 1))
            # A late success supersedes an earlier failure.
            p.execute_command("BITFIELD", failed, *_set_ops(fields, 0))
            old, _ = await p.execute()
        return sum(w - _ones(v) for (_, w), v in zip(fields, old, strict=True))

    async def record_failed(self, job_id: str, seqs: Sequence[int], code: str) -> int:
        """Mark chunks failed unless already stored; returns how many newly failed."""
        if not seqs:
            return 0
        done, failed = self.names.job_done_bits(job_id), self.names.job_failed_bits(job_id)
        fields = _fields(seqs)
        get_ops = [x for off, w in fields for x in ("GET", f"u{w}", off)]
        stored = await self.redis.execute_command("BITFIELD", done, *get_ops)  # type: ignore[no-untyped-call]
        todo = [s for s, bit in zip(sorted(set(seqs)), _bits(fields, stored), strict=True)
                if not bit]
        if not todo:
            return 0
        todo_fields = _fields(todo)
        old = await self.redis.execute_command(  # type: ignore[no-untyped-call]
            "BITFIELD", failed, *_set_ops(todo_fields, 1)
        )
        new = sum(w - _ones(v) for (_, w), v in zip(todo_fields, old, strict=True))
        if new:
            await self.redis.hincrby(self.names.job_errors(job_id), code, new)
        return new

    # -- readers -----------------------------------------------------------------------------
    async def live(self, jobs: set[str]) -> set[str]:
        """The jobs whose state still exists (not deleted), in one round trip."""
        ordered = sorted(jobs)
        if not ordered:
            return set()
        async with self.redis.pipeline(transaction=False) as p:
            for j in ordered:
                p.exists(self.names.job_state(j))
            found = await p.execute()
        return {j for j, n in zip(ordered, found, strict=True) if n}

    async def read(self, job_id: str, *, failed_documents: int = 10) -> Progress:
        n = self.names
        async with self.redis.pipeline(transaction=False) as p:
            p.hgetall(n.job_state(job_id))
            p.bitcount(n.job_done_bits(job_id))
            p.bitcount(n.job_failed_bits(job_id))
            p.hgetall(n.job_errors(job_id))
            p.lrange(n.job_failed_documents(job_id), 0, max(failed_documents - 1, 0))
            state, stored, failed, errors, docs = await p.execute()
        s = {_str(k): _str(v) for k, v in state.items()}
        return Progress(
            job_id=job_id,
            documents_total=int(s.get("documents_total", 0)),
            documents_failed=int(s.get("documents_failed", 0)),
            chunks_published=int(s.get("published_chunks", 0)),
            chunks_total=int(s["total_chunks"]) if "total_chunks" in s else None,
            chunks_stored=int(stored),
            chunks_failed=int(failed),
            fanout_complete=s.get("fanout_complete") == "1",
            started_at=float(s["started_at"]) if "started_at" in s else None,
            errors={_str(k): int(v) for k, v in errors.items()},
            failed_documents=[FailedDocument(**json.loads(d)) for d in docs][:failed_documents],
        )

    async def delete(self, job_id: str) -> int:
        """Remove every key of the job, pending chunk context included."""
        keys: list[bytes | str] = list(self.names.job_keys(job_id))
        async for key in self.redis.scan_iter(
            match=self.names.batch_context_pattern(job_id), count=1000
        ):
            keys.append(key)
        deleted = 0
        for i in range(0, len(keys), 1000):
            deleted += int(await self.redis.delete(*keys[i : i + 1000]))
        await self.redis.srem(self.names.job_index(), job_id)
        return deleted


# BITFIELD's widest unsigned field: 63 chunks per field.
MAX_FIELD_BITS = 63


def _fields(seqs: Sequence[int]) -> list[tuple[int, int]]:
    """(bit offset, width) fields covering the distinct seqs, consecutive ones merged."""
    out: list[tuple[int, int]] = []
    for s in sorted(set(seqs)):
        if out and out[-1][0] + out[-1][1] == s and out[-1][1] < MAX_FIELD_BITS:
            out[-1] = (out[-1][0], out[-1][1] + 1)
        else:
            out.append((s, 1))
    return out


def _set_ops(fields: list[tuple[int, int]], value: int) -> list[object]:
    return [x for off, w in fields for x in ("SET", f"u{w}", off, (1 << w) - 1 if value else 0)]


def _ones(v: int) -> int:
    return int(v).bit_count()


def _bits(fields: list[tuple[int, int]], values: Sequence[int]) -> list[int]:
    """Per-seq bits, in seq order, from the fields' values (a field's first bit is its MSB)."""
    return [(int(v) >> (w - 1 - j)) & 1 for (_, w), v in zip(fields, values, strict=True)
            for j in range(w)]


def _str(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


def outcome(p: Progress, max_failed_chunks: int | None, max_failed_ratio: float) -> str | None:
    """"Succeeded" / "Failed" once the job is finished, else None.

    Failed documents are reported, not fatal, unless nothing at all could be read.
    """
    if not p.finished:
        return None
    total = p.chunks_total or 0
    if total == 0:
        return "Failed" if p.documents_failed else "Succeeded"
    failed = p.chunks_failed
    if failed == 0:
        return "Succeeded"
    if max_failed_chunks is not None and failed <= max_failed_chunks:
        return "Succeeded"
    return "Succeeded" if failed / total <= max_failed_ratio else "Failed"
