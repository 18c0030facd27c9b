"""One consumer-group worker loop for every consumer (embedder, sink).

At-least-once delivery with a clean ledger:
- groups are created idempotently (only BUSYGROUP is tolerated);
- entries are acked *after* the handler's effect, then deleted, so a stream holds only work
  not yet done and Redis memory stays bounded by the producers' backpressure;
- entries left pending by a dead consumer are reclaimed with XAUTOCLAIM once idle, keeping the
  cursor between calls so a long pending list is walked, not rescanned;
- an entry delivered more than `max_deliveries` times, or one that can never be handled, moves to
  `<stream>:dead` with its reason, acked and deleted in the same transaction;
- `run()` returns after the batch in hand when `stop` is set (SIGTERM), never mid-effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from kubeingest import metrics
from kubeingest.names import Names

logger = logging.getLogger(__name__)

# Redis is unreachable or slow: worth waiting out. redis-py's errors do not derive from the
# builtin ConnectionError/TimeoutError, so both families are listed.
REDIS_UNAVAILABLE: tuple[type[BaseException], ...] = (
    RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError, OSError,
)


class Outcome(Enum):
    ACK = "acked"
    RETRY = "failed"  # left pending; redelivered after claim_idle_ms


@dataclass
class Delivery:
    entry_id: bytes
    fields: dict[bytes, bytes]
    deliveries: int = 1


@dataclass(frozen=True)
class DeadLetter:
    """Returned by a handler for an entry that can never succeed (malformed, wrong version)."""

    reason: str


Result = Outcome | DeadLetter
Handler = Callable[[list[Delivery]], Awaitable[dict[bytes, Result]]]
DeadLetterHook = Callable[[Delivery, str], Awaitable[None]]


@dataclass(frozen=True)
class ConsumerConfig:
    stream: str
    group: str
    consumer: str
    read_count: int = 8
    block_ms: int = 1000
    claim_idle_ms: int = 60_000
    max_deliveries: int = 5
    dead_letter_maxlen: int = 100_000
    # Poll instead of a blocking XREADGROUP. For the in-process fakeredis of `kubeingest
    # run`, where a blocked reader is re-evaluated on every write to the database.
    poll: bool = False


async def ensure_group(redis: Redis, stream: str, group: str) -> None:
    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as e:
        if "BUSYGROUP" not in str(e):  # the group exists already: that is the idempotent case
            raise


class StreamConsumer:
    def __init__(
        self,
        redis: Redis,
        config: ConsumerConfig,
        handler: Handler,
        *,
        on_dead_letter: DeadLetterHook | None = None,
    ) -> None:
        self.redis = redis
        self.cfg = config
        self.handler = handler
        self.on_dead_letter = on_dead_letter
        self._claim_cursor = b"0-0"
        self._next_claim = 0.0
        self._last_error: dict[bytes, str] = {}
        self._labels = {"stream": config.stream, "group": config.group}
        self._idle_s = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        await ensure_group(self.redis, self.cfg.stream, self.cfg.group)
        logger.info(
            "consuming %s as %s/%s", self.cfg.stream, self.cfg.group, self.cfg.consumer
        )
        while not stop.is_set():
            try:
                handled = await self.step()
                if self.cfg.poll:
                    self._idle_s = 0.0 if handled else min(self._idle_s * 2 or 0.002, 0.05)
                    if self._idle_s:
                        await asyncio.sleep(self._idle_s)
            except REDIS_UNAVAILABLE as e:
                # Redis unreachable: back off and retry; pending entries stay safe in Redis.
                logger.warning("redis error on %s: %s; retrying in 1s", self.cfg.stream, e)
                await _sleep_or_stop(stop, 1.0)

    async def step(self) -> int:
        """Reclaim if due, read once, handle, settle. Returns entries handled."""
        batch = await self._reclaim() if time.monotonic() >= self._next_claim else []
        if not batch:
            batch = await self._read()
        if not batch:
            return 0
        fresh: list[Delivery] = []
        for d in batch:
            if d.deliveries > self.cfg.max_deliveries:
                last = self._last_error.pop(d.entry_id, "no error recorded by this consumer")
                await self.dead_letter(
                    d, f"max_deliveries exceeded ({d.deliveries - 1} deliveries); last: {last}"
                )
            else:
                fresh.append(d)
        if fresh:
            await self._handle(fresh)
        return len(batch)

    async def _read(self) -> list[Delivery]:
        try:
            resp: list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]
            resp = await self.redis.xreadgroup(  # type: ignore[assignment]
                self.cfg.group, self.cfg.consumer, {self.cfg.stream: ">"},
                count=self.cfg.read_count, block=None if self.cfg.poll else self.cfg.block_ms,
            )
        except ResponseError as e:
            if "NOGROUP" not in str(e):
                raise
            # The stream was deleted under us (job cleanup, FLUSH): recreate and carry on.
            await ensure_group(self.redis, self.cfg.stream, self.cfg.group)
            return []
        out: list[Delivery] = []
        for _stream, entries in resp or []:
            for entry_id, fields in entries:
                out.append(Delivery(_b(entry_id), fields, 1))
        return out

    async def _reclaim(self) -> list[Delivery]:
        """XAUTOCLAIM idle entries, with their delivery counts."""
        try:
            cursor, claimed, *_ = await self.redis.xautoclaim(
                self.cfg.stream, self.cfg.group, self.cfg.consumer,
                min_idle_time=self.cfg.claim_idle_ms, start_id=self._claim_cursor,
                count=self.cfg.read_count,
            )
        except ResponseError as e:
            if "NOGROUP" not in str(e):
                raise
            await ensure_group(self.redis, self.cfg.stream, self.cfg.group)
            return []
        self._claim_cursor = cursor
        if cursor in (b"0-0", "0-0"):
            # Walked the whole pending list: look again after another idle period.
            self._next_claim = time.monotonic() + self.cfg.claim_idle_ms / 2000
        claimed = [(eid, f) for eid, f in claimed if f is not None]  # deleted meanwhile
        if not claimed:
            return []
        counts = await self._delivery_counts([eid for eid, _ in claimed])
        metrics.STREAM_RECLAIMED.labels(**self._labels).inc(len(claimed))
        logger.info("reclaimed %d idle entries on %s", len(claimed), self.cfg.stream)
        return [Delivery(eid, fields, counts.get(eid, 2)) for eid, fields in claimed]

    async def _delivery_counts(self, ids: list[bytes]) -> dict[bytes, int]:
        rows = await self.redis.xpending_range(
            self.cfg.stream, self.cfg.group, min=min(ids), max=max(ids), count=len(ids) * 4,
            consumername=self.cfg.consumer,
        )
        return {_b(r["message_id"]): int(r["times_delivered"]) for r in rows}  # type: ignore[arg-type]

    async def _handle(self, batch: list[Delivery]) -> None:
        try:
            results = await self.handler(batch)
        except Exception as e:
            # A handler bug or an outage of the effect's target (Qdrant down): nothing was
            # acked, so every entry is redelivered later and dead-lettered if it keeps failing.
            logger.exception("handler failed on %d entries of %s", len(batch), self.cfg.stream)
            for d in batch:
                self._last_error[d.entry_id] = f"{type(e).__name__}: {e}"[:500]
            metrics.STREAM_MESSAGES.labels(**self._labels, outcome="failed").inc(len(batch))
            return
        acked: list[bytes] = []
        for d in batch:
            result = results.get(d.entry_id, Outcome.RETRY)
            if isinstance(result, DeadLetter):
                await self.dead_letter(d, result.reason)
            elif result is Outcome.ACK:
                acked.append(d.entry_id)
            else:
                self._last_error.setdefault(d.entry_id, "handler asked for a retry")
                metrics.STREAM_MESSAGES.labels(**self._labels, outcome="failed").inc()
        if acked:
            await self.ack(acked)

    async def ack(self, ids: list[bytes]) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.cfg.stream, self.cfg.group, *ids)
            pipe.xdel(self.cfg.stream, *ids)
            await pipe.execute()
        for i in ids:
            self._last_error.pop(i, None)
        metrics.STREAM_MESSAGES.labels(**self._labels, outcome="acked").inc(len(ids))

    async def dead_letter(self, d: Delivery, reason: str) -> None:
        logger.warning("dead-letter %s on %s: %s", _s(d.entry_id), self.cfg.stream, reason)
        if self.on_dead_letter is not None:
            try:
                await self.on_dead_letter(d, reason)
            except Exception:
                # Accounting is best effort; the dead letter itself must still be written.
                logger.exception("dead-letter hook failed for %s", _s(d.entry_id))
        dead = Names.dead(self.cfg.stream)
        fields = dict(d.fields)
        fields.update({
            b"dead_reason": reason.encode()[:2000],
            b"dead_source_stream": self.cfg.stream.encode(),
            b"dead_source_id": d.entry_id,
            b"dead_deliveries": str(d.deliveries).encode(),
            b"dead_at": str(time.time()).encode(),
        })
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(dead, fields, maxlen=self.cfg.dead_letter_maxlen, approximate=True)  # type: ignore[arg-type]
            pipe.xack(self.cfg.stream, self.cfg.group, d.entry_id)
            pipe.xdel(self.cfg.stream, d.entry_id)
            await pipe.execute()
        self._last_error.pop(d.entry_id, None)
        metrics.DEAD_LETTERS.labels(stream=self.cfg.stream, reason=_reason_class(reason)).inc()
        metrics.STREAM_MESSAGES.labels(**self._labels, outcome="dead_lettered").inc()


async def refresh_lag_gauges(redis: Redis, stream: str) -> None:
    """Set the lag/pending gauges of every group of `stream` from XINFO GROUPS."""
    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError:  # no such stream yet: nothing to report
        return
    for g in groups:
        name = _s(g["name"])
        lag = g.get("lag")
        metrics.STREAM_LAG.labels(stream=stream, group=name).set(float(lag or 0))
        metrics.STREAM_PENDING.labels(stream=stream, group=name).set(float(g.get("pending", 0)))


def _reason_class(reason: str) -> str:
    head = reason.split(":", 1)[0].split("(", 1)[0].strip().lower().replace(" ", "_")
    return head if head in {"malformed", "max_deliveries_exceeded", "unsupported"} else "other"


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def _b(v: bytes | str) -> bytes:
    return v if isinstance(v, bytes) else v.encode()


def _s(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v
