"""A thin client of the ingestion API, for `kubeingest submit`: POST the manifest, then follow
the job's events over a WebSocket."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
from websockets.sync.client import connect

from kubeingest.progress import FailedDocument, Progress
from kubeingest.spec import API_VERSION, KIND, IngestionJobManifest

INGESTIONS = "/api/v1/ingestions"


class ApiError(Exception):
    """The API refused the request; `status` is the HTTP status, `str()` its message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def submit(api: str, manifest: IngestionJobManifest, api_key: str | None = None,
           *, timeout_s: float = 60.0) -> dict[str, Any]:
    """POST the manifest; returns the 202 body (id, name, tenantId, collection, ...)."""
    body = {
        "apiVersion": API_VERSION, "kind": KIND,
        "metadata": {"name": manifest.metadata.name},
        "spec": manifest.spec.model_dump(mode="json", by_alias=True, exclude_unset=True),
    }
    resp = httpx.post(api.rstrip("/") + INGESTIONS, json=body, headers=_headers(api_key),
                      timeout=timeout_s)
    if resp.status_code != 202:
        raise ApiError(resp.status_code, _detail(resp))
    accepted: dict[str, Any] = resp.json()
    return accepted


def events(api: str, job_id: str, api_key: str | None = None) -> Iterator[dict[str, Any]]:
    """The job's events until the server closes the stream (after `final` or `deleted`)."""
    url = api.rstrip("/").replace("http", "ws", 1) + f"{INGESTIONS}/{job_id}/events"
    with connect(url, additional_headers=_headers(api_key), open_timeout=30) as ws:
        for message in ws:
            event: dict[str, Any] = json.loads(message)
            yield event


def progress_from_event(event: dict[str, Any]) -> Progress:
    """The event's counts as the `Progress` the local progress bar draws."""
    docs, chunks = event.get("documents") or {}, event.get("chunks") or {}
    fanout = bool(event.get("fanoutComplete"))
    return Progress(
        job_id=str(event.get("id", "")),
        documents_total=int(docs.get("total", 0)),
        documents_failed=int(docs.get("failed", 0)),
        chunks_published=int(chunks.get("published", 0)),
        chunks_total=int(chunks.get("total", 0)) if fanout else None,
        chunks_stored=int(chunks.get("embedded", 0)),
        chunks_failed=int(chunks.get("failed", 0)),
        fanout_complete=fanout,
        errors={str(k): int(v) for k, v in (event.get("errors") or {}).items()},
        failed_documents=[FailedDocument(d["document"], d["reason"])
                          for d in event.get("failedDocuments") or []],
    )


def _detail(resp: httpx.Response) -> str:
    try:
        detail = resp.json().get("detail")
    except ValueError:
        return resp.text[:500]
    return detail if isinstance(detail, str) else json.dumps(detail)[:500]
