"""The kopf handlers of IngestionJob: thin, typed, and nothing else lives here.

operator/ has no __init__.py on purpose: as a namespace package it can never shadow the
standard library's `operator` module when the repository root is on sys.path (`python -m`
from the checkout), while `kubeingest.operator` still imports through the symlink.

Lifecycle of a job:
- create/resume: validate the spec (the operator validates too: not every API server enforces
  the CRD schema), check the collection, give the job its id, phase Pending;
- a daemon per active job fans documents out (stopped by kopf on suspend, delete, or finish);
- a timer per active job flushes status from Redis progress at a bounded rate, only when
  counts changed, and decides Succeeded/Failed; finished jobs match neither filter, so they
  hold no daemon or timer;
- a daemon per finished job with ttlSecondsAfterFinished deletes it when due;
- delete (behind the finalizer): stop, purge points if deletionPolicy is Delete, remove every
  Redis key of the job.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

import kopf

from kubeingest import jobstatus as cond
from kubeingest import metrics
from kubeingest.contracts import DomainAction, JobPurgeData, encode_action
from kubeingest.models import embedding_dim
from kubeingest.names import ACTION_JOB_PURGE, EMBEDDER_GROUP, INGESTION_SERVICE, SINK_GROUP
from kubeingest.operator.kube import GROUP, PLURAL, VERSION
from kubeingest.operator.metrics import JOBS_BY_PHASE, observe_handler
from kubeingest.operator.runtime import Runtime
from kubeingest.producer import FanoutResult, Producer
from kubeingest.qdrant_store import DimensionMismatch
from kubeingest.settings import get_operator_settings
from kubeingest.spec import DeletionPolicy, SpecError, parse_spec
from kubeingest.streams import ensure_group

Logger = logging.Logger | logging.LoggerAdapter[Any]
FINALIZER = "kubeingest.io/finalizer"
STATUS_INTERVAL_S = get_operator_settings().status_interval_s  # kopf needs it at import


def _rt(memo: kopf.Memo) -> Runtime:
    rt: Runtime = memo["runtime"]
    return rt


def job_id_for(namespace: str, name: str, uid: str) -> str:
    return f"{namespace}.{name}.{uid[:8]}"


def _active(spec: kopf.Spec, status: kopf.Status, **_: Any) -> bool:
    return bool(status.get("jobId")) and status.get("phase") not in cond.TERMINAL


def _fanning_out(spec: kopf.Spec, status: kopf.Status, **_: Any) -> bool:
    return _active(spec, status) and not spec.get("suspend", False)


def _awaiting_ttl(spec: kopf.Spec, status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") in cond.TERMINAL and spec.get("ttlSecondsAfterFinished") is not None


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="kubeingest.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="kubeingest.io", key="last-handled-configuration"
    )
    settings.peering.standalone = True  # one active replica (Deployment strategy Recreate)
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 60
    rt = Runtime.create(get_operator_settings())
    memo["runtime"] = rt
    # Create both consumer groups now: KEDA's lag trigger needs them before any worker exists
    # (scale from zero), and a group created later at `$` would skip what is already queued.
    await ensure_group(rt.redis, rt.names.embed_requests, EMBEDDER_GROUP)
    await ensure_group(rt.redis, rt.names.embedding_results, SINK_GROUP)


@kopf.on.cleanup()
async def shutdown(memo: kopf.Memo, **_: Any) -> None:
    rt = memo.get("runtime")
    if rt is not None:
        await rt.close()


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@observe_handler("start")
async def start(
    *, spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta, body: kopf.Body, patch: kopf.Patch,
    name: str, namespace: str | None, uid: str, memo: kopf.Memo, **_: Any,
) -> None:
    if status.get("phase") in cond.TERMINAL or status.get("jobId"):
        return  # finished, or already started (a resume after an operator restart)
    generation = meta.get("generation")
    try:
        job_spec = parse_spec(dict(spec))
    except SpecError as e:
        _fail(patch, body, status, generation, "InvalidSpec", str(e))
        return
    rt = _rt(memo)
    if rt.qdrant is not None:
        dim = embedding_dim(job_spec.embedding.model)
        if dim is not None:
            try:
                await rt.qdrant.ensure_collection(
                    job_spec.destination.collection, dim, job_spec.destination.distance.value
                )
            except DimensionMismatch as e:
                _fail(patch, body, status, generation, "DimensionMismatch", str(e))
                return
    phase = cond.SUSPENDED if job_spec.suspend else cond.PENDING
    reason, message = ("Suspended", "suspended before start") if job_spec.suspend else (
        "Started", "reading sources")
    patch.status.update({
        "jobId": job_id_for(namespace or "", name, uid),
        "phase": phase,
        "message": message,
        "startTime": cond.now_iso(),
        "observedGeneration": generation,
        "conditions": cond.conditions_for(phase, reason, message, status.get("conditions"),
                                          generation),
    })
    _track(rt, uid, phase)
    kopf.info(body, reason=reason, message=f"IngestionJob {name}: {message}")


def _fail(
    patch: kopf.Patch, body: kopf.Body, status: kopf.Status, generation: int | None,
    reason: str, message: str,
) -> None:
    patch.status.update({
        "phase": cond.FAILED, "message": message, "completionTime": cond.now_iso(),
        "observedGeneration": generation,
        "conditions": cond.conditions_for(cond.FAILED, reason, message,
                                          status.get("conditions"), generation),
    })
    kopf.warn(body, reason=reason, message=message)


@kopf.daemon(GROUP, VERSION, PLURAL, when=_fanning_out, backoff=5, cancellation_timeout=30)
async def fan_out(
    *, spec: kopf.Spec, status: kopf.Status, namespace: str | None, name: str,
    stopped: kopf.DaemonStopped, memo: kopf.Memo, logger: Logger, **_: Any,
) -> None:
    rt = _rt(memo)
    producer = Producer(
        rt.redis, rt.names, status["jobId"], parse_spec(dict(spec)),
        context_ttl_s=rt.settings.context_ttl_s,
        configmap_reader=rt.kube.configmap_reader(namespace or "default"),
        should_stop=lambda: bool(stopped),
    )
    # The delete handler waits on this: a fan-out still publishing would write the job's keys
    # again after the cleanup. `memo` is per object, shared by its daemons and handlers.
    running = memo["fan_out_running"] = asyncio.Event()
    running.set()
    try:
        result = await producer.run()
    finally:
        running.clear()
    logger.info("fan-out of %s/%s: %s", namespace, name, result.value)
    if result is FanoutResult.STOPPED:
        return  # suspended or deleted: the checkpoint in Redis says where to resume


@kopf.timer(GROUP, VERSION, PLURAL, interval=STATUS_INTERVAL_S, when=_active)
@observe_handler("status")
async def sync_status(
    *, spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta, body: kopf.Body, patch: kopf.Patch,
    uid: str, memo: kopf.Memo, **_: Any,
) -> None:
    rt = _rt(memo)
    generation = meta.get("generation")
    p = await rt.progress.read(status["jobId"],
                               failed_documents=rt.settings.failed_documents_in_status)
    started = _parse_time(status.get("startTime"))
    new = cond.progress_status(p, failed_documents=rt.settings.failed_documents_in_status,
                               elapsed_s=time.time() - started if started else None)
    job_spec = parse_spec(dict(spec))
    fp = job_spec.failure_policy
    from kubeingest.progress import outcome

    result = outcome(p, fp.max_failed_chunks, fp.max_failed_ratio)
    old_phase = status.get("phase")
    if result is not None:
        phase = result
        reason, message = cond.outcome_message(phase, p)
        new["completionTime"] = cond.now_iso()
    elif job_spec.suspend:
        phase, reason, message = cond.SUSPENDED, "Suspended", "fan-out suspended"
    else:
        phase, reason = cond.RUNNING, "Running"
        message = f"{p.chunks_stored}/{new['chunks']['total']} chunks stored"
    new.update({"phase": phase, "message": message, "observedGeneration": generation})
    if phase != old_phase or _changed(status, new):
        new["conditions"] = cond.conditions_for(phase, reason, message,
                                                status.get("conditions"), generation)
        patch.status.update(new)
        metrics.OPERATOR_STATUS_PATCHES.inc()
    if phase != old_phase:
        _track(rt, uid, phase)
        _event(body, old_phase, phase, reason, message)


def _event(body: kopf.Body, old: str | None, new: str, reason: str, message: str) -> None:
    if new == cond.FAILED:
        kopf.warn(body, reason=reason, message=message)
    elif new == cond.SUSPENDED:
        kopf.info(body, reason="Suspended", message=message)
    elif old == cond.SUSPENDED and new == cond.RUNNING:
        kopf.info(body, reason="Resumed", message=message)
    elif new == cond.SUCCEEDED:
        kopf.info(body, reason="Succeeded", message=message)
    elif new == cond.RUNNING:
        kopf.info(body, reason="Running", message=message)


def _changed(status: kopf.Status, new: dict[str, Any]) -> bool:
    keys = ("documents", "chunks", "progress", "failedDocuments", "message", "observedGeneration")
    return any(status.get(k) != new.get(k) for k in keys)


@kopf.daemon(GROUP, VERSION, PLURAL, when=_awaiting_ttl, backoff=30)
async def expire(
    *, spec: kopf.Spec, status: kopf.Status, namespace: str | None, name: str,
    stopped: kopf.DaemonStopped, memo: kopf.Memo, logger: Logger, **_: Any,
) -> None:
    finished = _parse_time(status.get("completionTime")) or time.time()
    due = finished + int(spec["ttlSecondsAfterFinished"])
    await stopped.wait(max(due - time.time(), 0))
    if stopped:
        return
    logger.info("ttlSecondsAfterFinished reached: deleting %s/%s", namespace, name)
    await asyncio.to_thread(_rt(memo).kube.delete_job, namespace or "default", name)


@kopf.on.delete(GROUP, VERSION, PLURAL, backoff=2)
@observe_handler("delete")
async def delete(
    *, spec: kopf.Spec, status: kopf.Status, uid: str, body: kopf.Body,
    started: datetime, memo: kopf.Memo, logger: Logger, **_: Any,
) -> None:
    rt = _rt(memo)
    rt.phases.pop(uid, None)
    JOBS_BY_PHASE.refresh(rt.phases)
    job_id = status.get("jobId")
    if not job_id:
        return  # never started: nothing in Redis or Qdrant
    running = memo.get("fan_out_running")
    if running is not None and running.is_set():  # kopf has asked it to stop; it ends soon
        raise kopf.TemporaryError("waiting for the fan-out to stop", delay=0.5)
    # The job's state goes first: from then on the sinks drop its late results instead of
    # storing them, so no point can land after the purge below.
    deleted = await rt.progress.delete(job_id)
    if spec.get("deletionPolicy", "Retain") == DeletionPolicy.DELETE.value:
        await _purge_points(rt, spec, job_id, memo, started, body)
    # A sink may be finishing a batch of this job right now: sweep again after it settles.
    await asyncio.sleep(2)
    deleted += await rt.progress.delete(job_id)
    await rt.redis.delete(rt.names.job_purged(job_id))
    logger.info("deleted %d Redis keys of job %s", deleted, job_id)


async def _purge_points(
    rt: Runtime, spec: kopf.Spec, job_id: str, memo: kopf.Memo, started: datetime,
    body: kopf.Body,
) -> None:
    """Ask a sink (the only writer to Qdrant) to delete the job's points, and wait for it."""
    if await rt.redis.exists(rt.names.job_purged(job_id)):
        return
    if not memo.get("purge_requested"):  # once per operator process: a repeat is harmless
        memo["purge_requested"] = True
        collection = spec["destination"]["collection"]
        action = DomainAction(
            action_type=ACTION_JOB_PURGE, task_id=job_id, origin_service=INGESTION_SERVICE,
            data=JobPurgeData(task_id=job_id, collection_id=collection).model_dump(),
        )
        await rt.redis.xadd(rt.names.embedding_results, encode_action(action))  # type: ignore[arg-type]
    waited = (datetime.now(UTC) - started.replace(tzinfo=started.tzinfo or UTC)).total_seconds()
    if waited < rt.settings.purge_timeout_s:
        raise kopf.TemporaryError("waiting for an ingestion worker to delete the points", delay=1)
    kopf.warn(body, reason="PurgeTimeout",
              message=f"points of {job_id} not confirmed deleted after {waited:.0f}s; "
                      "the purge request stays queued for the ingestion workers")


def _track(rt: Runtime, uid: str, phase: str) -> None:
    rt.phases[uid] = phase
    JOBS_BY_PHASE.refresh(rt.phases)


def _parse_time(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
