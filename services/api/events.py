"""`/api/v1/ingestions/{id}/events`: live progress over a WebSocket, or Server-Sent Events.

Each event is a JSON object: `type` (`state` first, then `progress`, then one `final`; or
`deleted` if the ingestion is cancelled meanwhile), `id`, and the status block (phase, counts,
progress, chunksPerSecond, etaSeconds, failedDocuments, errors, ...). The first message is the
current state, so a client that reconnects resumes from where the job is. Events come from the
same Redis progress the status comes from, at most one per `events_interval_s`, and only when
something changed. After `final` the server closes the stream.

Browsers cannot set headers on a WebSocket or an EventSource, so these two routes also take the
API key as `?api_key=`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Request, WebSocket
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.websockets import WebSocketDisconnect

from kubeingest.jobstatus import TERMINAL
from kubeingest.services.api.deps import presented_key, resolve_caller
from kubeingest.services.api.ingestions import visible
from kubeingest.services.api.jobs import Jobs

router = APIRouter(prefix="/api/v1/ingestions", tags=["ingestions"])


def _changes(status_block: dict[str, Any]) -> tuple[Any, ...]:
    """What makes a new event: phase and counts, not the clock-driven rate and ETA."""
    return (status_block.get("phase"), json.dumps(status_block.get("documents")),
            json.dumps(status_block.get("chunks")), status_block.get("fanoutComplete"),
            len(status_block.get("failedDocuments") or []),
            json.dumps(status_block.get("errors")))


async def events(jobs: Jobs, job_id: str, interval_s: float
                 ) -> AsyncIterator[dict[str, Any]]:
    last: tuple[Any, ...] | None = None
    while True:
        rec = await jobs.load(job_id)
        if rec is None:
            yield {"type": "deleted", "id": job_id}
            return
        block = await jobs.status(rec)
        key = _changes(block)
        if last is None:
            yield {"type": "state", "id": job_id, **block}
        elif key != last and block.get("phase") not in TERMINAL:
            yield {"type": "progress", "id": job_id, **block}
        if block.get("phase") in TERMINAL:
            yield {"type": "final", "id": job_id, **block}
            return
        last = key
        await asyncio.sleep(interval_s)


@router.websocket("/{job_id}/events")
async def events_ws(
    websocket: WebSocket, job_id: str,
    api_key: Annotated[str | None, Query()] = None,
) -> None:
    jobs: Jobs = websocket.app.state.jobs
    key = presented_key(websocket.headers.get("authorization"),
                        websocket.headers.get("x-api-key"), api_key)
    try:
        caller = resolve_caller(websocket.app.state.api_keys, key)
        await visible(jobs, caller, job_id)
    except HTTPException as e:
        await _deny(websocket, e)
        return
    await websocket.accept()
    # A reader notices the client going away while the writer sleeps between events.
    reader = asyncio.create_task(_drain(websocket))
    try:
        async for event in events(jobs, job_id, websocket.app.state.settings.events_interval_s):
            if reader.done():
                return
            await websocket.send_json(event)
        await websocket.close(code=1000)
    except (WebSocketDisconnect, RuntimeError):
        return  # the client left
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader


async def _drain(websocket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await websocket.receive_text()


async def _deny(websocket: WebSocket, e: HTTPException) -> None:
    """An HTTP answer to the handshake (401/404) where the server can send one; else a
    close code 4000 + status (4401, 4404) before accepting."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(
            JSONResponse({"detail": e.detail}, status_code=e.status_code,
                         headers=dict(e.headers or {}))
        )
    else:
        await websocket.close(code=4000 + e.status_code, reason=str(e.detail)[:120])


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}},
                     "description": "`event: <type>` / `data: <json>` per event"},
               401: {"description": "missing or invalid API key"},
               404: {"description": "no such ingestion"}},
)
async def events_sse(
    request: Request, job_id: str,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
    api_key: Annotated[str | None, Query()] = None,
) -> StreamingResponse:
    """Server-Sent Events: the same events as the WebSocket (`Accept: text/event-stream`)."""
    jobs: Jobs = request.app.state.jobs
    caller = resolve_caller(request.app.state.api_keys,
                            presented_key(authorization, x_api_key, api_key))
    await visible(jobs, caller, job_id)
    interval = request.app.state.settings.events_interval_s

    async def body() -> AsyncIterator[str]:
        async for event in events(jobs, job_id, interval):
            yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
