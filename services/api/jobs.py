"""Ingestion jobs behind the HTTP API: job records, their status block, and how a job runs.

How a job runs is decided here and nowhere else. There is one mode so far, *local*: the API
process runs the job's fan-out (the `Producer`, exactly as the operator does) against the API's
own Redis, and the embedding and sink workers (`kubeingest embedder` / `kubeingest sink`,
processes or pods) do the embedding and the Qdrant writes from the streams. The API is the
job's control plane, not its data plane: no model and no Qdrant client live in the API process,
and a job submitted over HTTP is processed by the same workers, with the same progress
accounting, as one applied with kubectl.

Cluster mode (`ingest_mode=cluster`): the API creates an IngestionJob custom resource in
`kube_namespace` and the operator does the work; the CR is the record, its status the status
block, its name the ingestion's id, its `spec.tenantId` the owner. `create_jobs` picks one.

A job record is a Redis hash (id, tenant, collection, name, spec, phase, times) plus two sorted
sets indexing records by creation time, one per tenant and one for all. The status block
(kubeingest.jobstatus, the same as the operator's) is computed from the record and the job's
live `Progress`; once the job is finished the final
status is frozen into the record and the job's progress keys are deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from redis.asyncio import Redis

from kubeingest.contracts import DomainAction, JobPurgeData, encode_action
from kubeingest.jobstatus import (
    FAILED,
    PENDING,
    RUNNING,
    conditions_for,
    outcome_message,
    progress_status,
)
from kubeingest.kubeclient import GROUP, PLURAL, VERSION, api_client
from kubeingest.names import ACTION_JOB_PURGE, INGESTION_SERVICE, Names
from kubeingest.producer import FanoutResult, Producer
from kubeingest.progress import Progress, ProgressStore, outcome
from kubeingest.settings import ApiSettings
from kubeingest.spec import (
    API_VERSION,
    KIND,
    DeletionPolicy,
    IngestionJobSpec,
    SpecError,
    parse_spec,
)

logger = logging.getLogger(__name__)

FAILED_DOCUMENTS_IN_STATUS = 10
POLL_S = 0.25
LEASE_S = 30
LEASE_CHECK_S = 1.0  # how soon a fan-out notices a cancel made on another API replica
PURGE_WAIT_S = 30
# Compare-and-act on a lease: only its owner renews or releases it.
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then " \
         "return redis.call('expire', KEYS[1], ARGV[2]) else return 0 end"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then " \
           "return redis.call('del', KEYS[1]) else return 0 end"


@dataclass
class JobRecord:
    id: str
    name: str
    tenant: str
    collection: str
    spec: dict[str, Any]
    phase: str = PENDING
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    completed_at: float | None = None
    reason: str = ""
    message: str = ""
    final_status: dict[str, Any] | None = None
    conditions: list[dict[str, Any]] = field(default_factory=list)
    observed: dict[str, Any] | None = None  # cluster mode: the CR's status as read

    def set_phase(self, phase: str, reason: str, message: str) -> None:
        """Phase, reason and message, with conditions kept as the operator keeps them."""
        self.phase, self.reason, self.message = phase, reason, message
        self.conditions = conditions_for(phase, reason, message, self.conditions, None)

    def to_hash(self) -> dict[str, str]:
        h = {"id": self.id, "name": self.name, "tenant": self.tenant,
             "collection": self.collection, "spec": json.dumps(self.spec), "phase": self.phase,
             "created_at": repr(self.created_at), "reason": self.reason, "message": self.message,
             "conditions": json.dumps(self.conditions)}
        if self.started_at is not None:
            h["started_at"] = repr(self.started_at)
        if self.completed_at is not None:
            h["completed_at"] = repr(self.completed_at)
        if self.final_status is not None:
            h["final_status"] = json.dumps(self.final_status)
        return h

    @classmethod
    def from_hash(cls, raw: dict[bytes | str, bytes | str]) -> JobRecord:
        h = {_str(k): _str(v) for k, v in raw.items()}
        return cls(
            id=h["id"], name=h["name"], tenant=h["tenant"], collection=h["collection"],
            spec=json.loads(h["spec"]), phase=h["phase"], created_at=float(h["created_at"]),
            started_at=float(h["started_at"]) if "started_at" in h else None,
            completed_at=float(h["completed_at"]) if "completed_at" in h else None,
            reason=h.get("reason", ""), message=h.get("message", ""),
            final_status=json.loads(h["final_status"]) if "final_status" in h else None,
            conditions=json.loads(h.get("conditions", "[]")),
        )

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "tenantId": self.tenant,
                "collection": self.collection, "createdAt": iso(self.created_at)}


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return (datetime.fromtimestamp(ts, UTC).replace(microsecond=0).isoformat()
            .replace("+00:00", "Z"))


def status_block(rec: JobRecord, p: Progress, *, now: float | None = None) -> dict[str, Any]:
    """The IngestionJob CR's status block (kubeingest.jobstatus, as the operator writes it),
    plus the live-only fields events carry: fanoutComplete, elapsedSeconds, etaSeconds, errors.
    """
    if rec.final_status is not None:
        return rec.final_status
    end = rec.completed_at or (now if now is not None else time.time())
    elapsed = max(end - rec.started_at, 0.0) if rec.started_at else 0.0
    counts = progress_status(p, failed_documents=FAILED_DOCUMENTS_IN_STATUS, elapsed_s=elapsed)
    eta: float | None = None
    if p.fanout_complete and p.chunks_total is not None and counts["chunksPerSecond"] > 0:
        eta = round(max(p.chunks_total - p.settled, 0) / counts["chunksPerSecond"], 1)
    return {
        "phase": rec.phase,
        "message": rec.message,
        **counts,
        "startTime": iso(rec.started_at),
        "completionTime": iso(rec.completed_at),
        "conditions": rec.conditions,
        "fanoutComplete": p.fanout_complete,
        "elapsedSeconds": round(elapsed, 2),
        "etaSeconds": eta,
        "errors": dict(sorted(p.errors.items())),
    }


class IngestionJobs:
    """The job registry of one API process: records in Redis, running fan-outs in memory."""

    def __init__(self, redis: Redis, settings: ApiSettings) -> None:
        self.redis = redis
        self.settings = settings
        self.names = Names(settings.stream_prefix)
        self.progress = ProgressStore(redis, self.names)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stopping: set[str] = set()
        self.owner = uuid.uuid4().hex

    # -- records ------------------------------------------------------------------------
    async def submit(self, *, tenant: str, name: str | None, spec: IngestionJobSpec,
                     raw_spec: dict[str, Any]) -> JobRecord:
        job_id = f"ij-{uuid.uuid4().hex[:16]}"
        rec = JobRecord(id=job_id, name=name or job_id, tenant=tenant,
                        collection=spec.destination.collection, spec=raw_spec)
        rec.set_phase(PENDING, "Created", "accepted; waiting to start")
        async with self.redis.pipeline(transaction=True) as p:
            p.hset(self.names.ingestion_record(job_id), mapping=rec.to_hash())  # type: ignore[arg-type]
            p.zadd(self.names.ingestion_tenant_index(tenant), {job_id: rec.created_at})
            p.zadd(self.names.ingestion_index(), {job_id: rec.created_at})
            p.set(self.names.ingestion_lease(job_id), self.owner, ex=LEASE_S)
            await p.execute()
        self._start(rec, spec)
        return rec

    async def resume(self) -> int:
        """API start: take over unfinished ingestions no live API process holds (one that
        stopped or crashed); the fan-out continues from its checkpoint. Returns how many."""
        resumed = 0
        for raw_id in await self.redis.zrange(self.names.ingestion_index(), 0, -1):
            if not isinstance(raw_id, (bytes, str)):
                continue
            rec = await self.load(_str(raw_id))
            if rec is None or rec.final_status is not None or rec.phase not in (PENDING, RUNNING):
                continue
            if not await self.redis.set(self.names.ingestion_lease(rec.id), self.owner, ex=LEASE_S,
                                        nx=True):
                continue  # another API process runs it
            try:
                spec = parse_spec(rec.spec)
            except SpecError:  # stored valid; a newer validator may disagree
                logger.exception("ingestion %s: stored spec no longer valid", rec.id)
                await self._release(rec.id)
                continue
            logger.info("ingestion %s: resuming its fan-out", rec.id)
            self._start(rec, spec)
            resumed += 1
        return resumed

    async def load(self, job_id: str) -> JobRecord | None:
        raw = await self.redis.hgetall(self.names.ingestion_record(job_id))
        return JobRecord.from_hash(raw) if raw else None

    async def status(self, rec: JobRecord) -> dict[str, Any]:
        if rec.final_status is not None:
            return rec.final_status
        p = await self.progress.read(rec.id, failed_documents=FAILED_DOCUMENTS_IN_STATUS)
        if p.started_at is None and rec.phase == RUNNING:
            # The job may have finished between the two reads (its progress keys are deleted
            # once the final counts are in the record): the record is the truth then.
            fresh = await self.load(rec.id)
            if fresh is not None and fresh.final_status is not None:
                return fresh.final_status
        return status_block(rec, p)

    async def page(self, tenant: str | None, limit: int, offset: int
                   ) -> tuple[list[JobRecord], int | None]:
        """Newest first; returns (records, next offset or None)."""
        index = (self.names.ingestion_index() if tenant is None
                 else self.names.ingestion_tenant_index(tenant))
        found = await self.redis.zrevrange(index, offset, offset + limit)
        ids = [v for v in found if isinstance(v, (bytes, str))]
        more = len(ids) > limit
        ids = ids[:limit]
        records: list[JobRecord] = []
        gone: list[bytes | str] = []
        for job_id in ids:
            rec = await self.load(_str(job_id))
            if rec is None:
                gone.append(job_id)  # expired (ttlSecondsAfterFinished)
            else:
                records.append(rec)
        if gone:
            await self.redis.zrem(index, *gone)
        return records, (offset + limit if more else None)

    async def cancel(self, rec: JobRecord) -> None:
        """Stop the fan-out, then delete the job's state and record; with deletionPolicy
        Delete also the job's points (a sink deletes them; waited for up to PURGE_WAIT_S)."""
        self._stopping.add(rec.id)
        task = self._tasks.get(rec.id)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        # The job's state goes first: from then on sinks drop its late results.
        await self.progress.delete(rec.id)
        if rec.spec.get("deletionPolicy") == DeletionPolicy.DELETE.value:
            await self._purge(rec)
        async with self.redis.pipeline(transaction=True) as p:
            p.delete(self.names.ingestion_record(rec.id))
            p.delete(self.names.ingestion_lease(rec.id))  # an owner elsewhere notices and stops
            p.zrem(self.names.ingestion_tenant_index(rec.tenant), rec.id)
            p.zrem(self.names.ingestion_index(), rec.id)
            await p.execute()
        self._stopping.discard(rec.id)

    async def _purge(self, rec: JobRecord) -> None:
        """Ask a sink (the only writer to Qdrant) to delete the job's points, as the operator
        does for a deleted IngestionJob, and wait a while for its confirmation."""
        done = self.names.job_purged(rec.id)
        action = DomainAction(
            action_type=ACTION_JOB_PURGE, task_id=rec.id, tenant_id=rec.tenant,
            origin_service=INGESTION_SERVICE,
            data=JobPurgeData(task_id=rec.id, collection_id=rec.collection).model_dump(),
        )
        await self.redis.xadd(self.names.embedding_results, encode_action(action))  # type: ignore[arg-type]
        deadline = time.monotonic() + PURGE_WAIT_S
        while time.monotonic() < deadline:
            if await self.redis.exists(done):
                await self.redis.delete(done)
                return
            await asyncio.sleep(POLL_S)
        logger.warning("ingestion %s: points not confirmed deleted after %ss; the purge "
                       "request stays queued for the sinks", rec.id, PURGE_WAIT_S)

    async def close(self) -> None:
        """API shutdown: stop the fan-outs and give up their leases, so the next API process
        to start resumes them at once (their records stay Running)."""
        ids = list(self._tasks)
        tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for job_id in ids:
            with contextlib.suppress(Exception):
                await self._release(job_id)

    async def _release(self, job_id: str) -> None:
        await self.redis.eval(_RELEASE, 1, self.names.ingestion_lease(job_id), self.owner)

    async def _keep_lease(self, job_id: str) -> None:
        """Renew the lease; if it is gone (cancelled elsewhere) stop this fan-out."""
        while True:
            await asyncio.sleep(LEASE_CHECK_S)
            renewed = await self.redis.eval(
                _RENEW, 1, self.names.ingestion_lease(job_id), self.owner, LEASE_S)
            if not renewed:
                logger.warning("ingestion %s: lease lost; stopping its fan-out", job_id)
                self._stopping.add(job_id)
                return

    # -- running ------------------------------------------------------------------------
    def _start(self, rec: JobRecord, spec: IngestionJobSpec) -> None:
        task = asyncio.create_task(self._run(rec, spec), name=f"ingestion-{rec.id}")
        self._tasks[rec.id] = task
        task.add_done_callback(lambda _: self._tasks.pop(rec.id, None))

    async def _update(self, rec: JobRecord, ttl_s: int | None = None) -> None:
        if rec.id in self._stopping:
            return
        if _str(await self.redis.get(self.names.ingestion_lease(rec.id)) or b"") != self.owner:
            self._stopping.add(rec.id)  # cancelled (or taken over) elsewhere: write nothing
            return
        async with self.redis.pipeline(transaction=True) as p:
            p.hset(self.names.ingestion_record(rec.id), mapping=rec.to_hash())  # type: ignore[arg-type]
            if ttl_s is not None:
                p.expire(self.names.ingestion_record(rec.id), ttl_s)
            await p.execute()

    async def _run(self, rec: JobRecord, spec: IngestionJobSpec) -> None:
        keeper = asyncio.create_task(self._keep_lease(rec.id))
        try:
            await self._run_leased(rec, spec)
        finally:
            keeper.cancel()
        if keeper.done() and not keeper.cancelled() and not await self.load(rec.id):
            # Cancelled on another replica while this one was still publishing: sweep the
            # state its last batches wrote.
            await self.progress.delete(rec.id)
            self._stopping.discard(rec.id)

    async def _run_leased(self, rec: JobRecord, spec: IngestionJobSpec) -> None:
        resumed = rec.started_at is not None
        rec.started_at = rec.started_at or time.time()
        rec.set_phase(RUNNING, "Resumed" if resumed else "Started", "fanning out chunks")
        await self._update(rec)
        try:
            producer = Producer(self.redis, self.names, rec.id, spec,
                                context_ttl_s=self.settings.context_ttl_s,
                                should_stop=lambda: rec.id in self._stopping)
            if await producer.run() is FanoutResult.STOPPED:
                return
            rec.set_phase(RUNNING, "FanoutComplete", "fan-out complete; waiting for the workers")
            await self._update(rec)
            while True:
                p = await self.progress.read(rec.id, failed_documents=FAILED_DOCUMENTS_IN_STATUS)
                fp = spec.failure_policy
                phase = outcome(p, fp.max_failed_chunks, fp.max_failed_ratio)
                if phase is not None:
                    break
                if rec.id in self._stopping:
                    return
                await asyncio.sleep(POLL_S)
            reason, message = outcome_message(phase, p)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a crashed fan-out is the job's failure, not the API's
            logger.exception("ingestion %s: fan-out failed", rec.id)
            phase, reason, message = FAILED, "FanoutError", f"{type(e).__name__}: {e}"[:1000]
            p = await self.progress.read(rec.id, failed_documents=FAILED_DOCUMENTS_IN_STATUS)
        rec.completed_at = time.time()
        rec.set_phase(phase, reason, message)
        rec.final_status = status_block(rec, p)
        await self._update(rec, spec.ttl_seconds_after_finished)
        if rec.id not in self._stopping:
            await self.progress.delete(rec.id)  # the record holds the final counts
            await self._release(rec.id)


class Jobs(Protocol):
    """What the routers need of a job backend (local or cluster)."""

    async def submit(self, *, tenant: str, name: str | None, spec: IngestionJobSpec,
                     raw_spec: dict[str, Any]) -> JobRecord: ...

    async def load(self, job_id: str) -> JobRecord | None: ...

    async def status(self, rec: JobRecord) -> dict[str, Any]: ...

    async def page(self, tenant: str | None, limit: int, offset: int
                   ) -> tuple[list[JobRecord], int | None]: ...

    async def cancel(self, rec: JobRecord) -> None: ...

    async def resume(self) -> int: ...

    async def close(self) -> None: ...


def create_jobs(redis: Redis, settings: ApiSettings) -> Jobs:
    """The one place that decides how ingestions run, from settings."""
    if settings.ingest_mode == "cluster":
        return ClusterJobs(settings)
    return IngestionJobs(redis, settings)


class JobExists(Exception):
    """An ingestion of that name exists already (cluster mode: a CR of that name)."""


class ClusterJobs:
    """IngestionJob custom resources through the Kubernetes API; the operator runs them.

    The sync kubernetes client runs in worker threads. Needs create/get/list/delete on
    ingestionjobs in the namespace (charts/kubeingest/templates/api-rbac.yaml).
    """

    def __init__(self, settings: ApiSettings) -> None:
        from kubernetes import client

        self.namespace = settings.kube_namespace
        self._api = api_client(settings.kube_api_url)
        self.custom: Any = client.CustomObjectsApi(self._api)

    async def submit(self, *, tenant: str, name: str | None, spec: IngestionJobSpec,
                     raw_spec: dict[str, Any]) -> JobRecord:
        from kubernetes.client.exceptions import ApiException

        body: dict[str, Any] = {"apiVersion": API_VERSION, "kind": KIND,
                "metadata": {"name": name or f"ingestion-{uuid.uuid4().hex[:10]}",
                             "namespace": self.namespace},
                "spec": {**raw_spec, "tenantId": tenant}}
        try:
            obj = await asyncio.to_thread(self.custom.create_namespaced_custom_object,
                                          GROUP, VERSION, self.namespace, PLURAL, body)
        except ApiException as e:
            if e.status == 409:
                raise JobExists(body["metadata"]["name"]) from e
            raise
        return _record_from_cr(obj if isinstance(obj, dict) and obj.get("metadata") else body)

    async def load(self, job_id: str) -> JobRecord | None:
        from kubernetes.client.exceptions import ApiException

        try:
            obj = await asyncio.to_thread(self.custom.get_namespaced_custom_object,
                                          GROUP, VERSION, self.namespace, PLURAL, job_id)
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        return _record_from_cr(obj)

    async def status(self, rec: JobRecord) -> dict[str, Any]:
        return {"phase": PENDING, **(rec.observed or {})}

    async def page(self, tenant: str | None, limit: int, offset: int
                   ) -> tuple[list[JobRecord], int | None]:
        found = await asyncio.to_thread(self.custom.list_namespaced_custom_object,
                                        GROUP, VERSION, self.namespace, PLURAL)
        records = [_record_from_cr(o) for o in found.get("items", [])]
        records = [r for r in records if tenant is None or r.tenant == tenant]
        records.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        window = records[offset:offset + limit]
        return window, (offset + limit if len(records) > offset + limit else None)

    async def cancel(self, rec: JobRecord) -> None:
        """Delete the CR; the operator stops the fan-out and cleans up (deletionPolicy)."""
        from kubernetes.client.exceptions import ApiException

        try:
            await asyncio.to_thread(self.custom.delete_namespaced_custom_object,
                                    GROUP, VERSION, self.namespace, PLURAL, rec.id)
        except ApiException as e:
            if e.status != 404:
                raise

    async def resume(self) -> int:
        return 0  # the operator runs the jobs

    async def close(self) -> None:
        await asyncio.to_thread(self._api.close)


def _record_from_cr(obj: dict[str, Any]) -> JobRecord:
    meta, spec = obj.get("metadata", {}), obj.get("spec", {})
    status = obj.get("status") or {}
    created = meta.get("creationTimestamp")
    created_at = (datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
                  if created else time.time())
    return JobRecord(
        id=meta["name"], name=meta["name"], tenant=spec.get("tenantId") or "default",
        collection=(spec.get("destination") or {}).get("collection", ""), spec=spec,
        phase=status.get("phase", PENDING), created_at=created_at,
        message=status.get("message", ""), observed=status,
    )


def build_spec(raw: Any) -> IngestionJobSpec:
    """parse_spec plus the API's own rule: no `path` sources (the API's file system is not
    the caller's to read). Raises SpecError naming the field."""
    spec = parse_spec(raw)
    for i, source in enumerate(spec.sources):
        if source.path is not None:
            raise SpecError(f"spec.sources[{i}].path",
                            "path sources are not accepted over the API; upload the documents")
    return spec


def document_ids(names: Sequence[str]) -> list[str]:
    """Unique document ids from upload file names (`a.txt`, `a.txt#2`, ...)."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}#{seen[n]}")
    return out


def _str(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v
