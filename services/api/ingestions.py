"""`/api/v1/ingestions`: submit an IngestionJob over HTTP, read its status, list, cancel.

A submission is either JSON (an IngestionJob manifest, or `{"metadata": {"name"}, "spec"}`)
or a multipart upload of documents (`files`, with `collection` and optional `tenant`,
`name` and `options`: a JSON object of further spec fields). Both become one IngestionJob
spec, validated by the same `parse_spec` as `kubectl apply` and `kubeingest run`; nothing is
stored before it is valid. The tenant comes from the API key; a spec naming another tenant
gets 403. Ingestions of other tenants do not exist for a key (404), listed or not.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException

from kubeingest.services.api.deps import Caller, CallerDep, SettingsDep
from kubeingest.services.api.jobs import (
    JobExists,
    JobRecord,
    Jobs,
    build_spec,
    document_ids,
)
from kubeingest.settings import ApiSettings
from kubeingest.spec import API_VERSION, KIND, OBJECT_NAME_PATTERN, IngestionJobSpec, SpecError
from kubeingest.textextract import ExtractionError, extract_text

router = APIRouter(prefix="/api/v1/ingestions", tags=["ingestions"])

MAX_FORM_FIELD_BYTES = 256 * 1024


def get_jobs(request: Request) -> Jobs:
    jobs: Jobs = request.app.state.jobs
    return jobs


JobsDep = Annotated[Jobs, Depends(get_jobs)]


class IngestionAccepted(BaseModel):
    id: str = Field(description="The ingestion's id (also the job id in Qdrant payloads).")
    name: str
    tenantId: str  # the CR's camelCase
    collection: str
    phase: str
    statusUrl: str
    eventsUrl: str


class Ingestion(BaseModel):
    id: str
    name: str
    tenantId: str
    collection: str
    createdAt: str | None
    status: dict[str, Any] = Field(
        description="The IngestionJob status block: phase, reason, message, documents "
        "{total, failed}, chunks {total, published, embedded, failed}, progress, "
        "chunksPerSecond, failedDocuments, startTime, completionTime, conditions; plus "
        "fanoutComplete, elapsedSeconds, etaSeconds, errors (failed chunks by error code)."
    )


class IngestionList(BaseModel):
    items: list[Ingestion]
    nextCursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema with its `$defs` substituted in place (the spec has no cycles),
    so it can sit inside an operation's requestBody."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(v) for v in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            target = defs[node["$ref"].rsplit("/", 1)[-1]]
            return walk({**target, **{k: v for k, v in node.items() if k != "$ref"}})
        return {k: walk(v) for k, v in node.items()}

    result: dict[str, Any] = walk(schema)
    return result


_SPEC_BODY = {**_inlined(IngestionJobSpec.model_json_schema(by_alias=True)),
              "description": "IngestionJob spec (the CRD's camelCase)"}
REQUEST_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": {
            "type": "object", "required": ["spec"],
            "properties": {
                "apiVersion": {"type": "string", "enum": [API_VERSION]},
                "kind": {"type": "string", "enum": [KIND]},
                "metadata": {"type": "object",
                             "properties": {"name": {"type": "string",
                                                     "pattern": OBJECT_NAME_PATTERN}}},
                "spec": _SPEC_BODY,
            },
        }},
        "multipart/form-data": {"schema": {
            "type": "object", "required": ["collection", "files"],
            "properties": {
                "collection": {"type": "string"},
                "tenant": {"type": "string"},
                "name": {"type": "string"},
                "options": {"type": "string",
                            "description": "JSON object of further spec fields (chunking, "
                            "embedding, failurePolicy, ...)"},
                "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
            },
        }},
    },
}
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or invalid API key"},
    403: {"description": "the key is not valid for the spec's tenant"},
    413: {"description": "body, file or file count over the limits"},
    409: {"description": "cluster mode: an IngestionJob of that name exists"},
    415: {"description": "neither JSON nor multipart/form-data"},
    422: {"description": "invalid spec or document; the message names the field"},
}


def _unprocessable(message: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, message)


def _too_large(message: str) -> HTTPException:
    return HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, message)


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=IngestionAccepted,
             responses=ERRORS, openapi_extra={"requestBody": REQUEST_BODY})
async def create_ingestion(
    request: Request, caller: CallerDep, settings: SettingsDep, jobs: JobsDep
) -> IngestionAccepted:
    """Validate and start an ingestion; 202 with its id. Progress: GET the status, or the
    events stream (WebSocket or SSE)."""
    ctype = request.headers.get("content-type", "").lower()
    if ctype.startswith("multipart/form-data"):
        name, raw = await _from_upload(request, settings)
    elif ctype.startswith("application/json"):
        name, raw = await _from_json(request)
    else:
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                            "send application/json (a spec) or multipart/form-data (files)")
    tenant = raw.get("tenantId")
    if tenant is None:
        tenant = caller.tenant or "default"
        raw["tenantId"] = tenant
    if not isinstance(tenant, str):
        raise _unprocessable("spec.tenantId: must be a string")
    if not caller.may_act_for(tenant):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"key not valid for tenant {tenant!r}")
    try:
        spec = build_spec(raw)
    except SpecError as e:
        raise _unprocessable(str(e)) from e
    try:
        rec = await jobs.submit(tenant=spec.tenant_id, name=name, spec=spec, raw_spec=raw)
    except JobExists as e:
        raise HTTPException(status.HTTP_409_CONFLICT, f"an ingestion named {e} exists") from e
    base = f"/api/v1/ingestions/{rec.id}"
    return IngestionAccepted(id=rec.id, name=rec.name, tenantId=rec.tenant,
                             collection=rec.collection, phase=rec.phase, statusUrl=base,
                             eventsUrl=f"{base}/events")


async def _from_json(request: Request) -> tuple[str | None, dict[str, Any]]:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError) as e:
        raise _unprocessable(f"body: not valid JSON: {e}") from e
    if not isinstance(body, dict) or not isinstance(body.get("spec"), dict):
        raise _unprocessable("spec: required, an object (the IngestionJob spec)")
    if "apiVersion" in body and body["apiVersion"] != API_VERSION:
        raise _unprocessable(f"apiVersion: expected {API_VERSION!r}")
    if "kind" in body and body["kind"] != KIND:
        raise _unprocessable(f"kind: expected {KIND!r}")
    meta = body.get("metadata") or {}
    name = meta.get("name") if isinstance(meta, dict) else None
    _check_name(name, "metadata.name")
    return name, dict(body["spec"])


def _check_name(name: object, field: str) -> None:
    import re

    if name is not None and (not isinstance(name, str) or len(name) > 253
                             or not re.match(OBJECT_NAME_PATTERN, name)):
        raise _unprocessable(f"{field}: must be a DNS subdomain name (a-z, 0-9, '-', '.')")


async def _from_upload(request: Request, settings: ApiSettings
                       ) -> tuple[str | None, dict[str, Any]]:
    try:
        async with request.form(max_files=settings.max_upload_files, max_fields=16,
                                max_part_size=MAX_FORM_FIELD_BYTES) as form:
            uploads = form.getlist("files")
            files = [u for u in uploads if isinstance(u, UploadFile)]
            if not files or len(files) != len(uploads):
                raise _unprocessable("files: upload one or more documents as files")
            documents = []
            ids = document_ids([f.filename or f"document-{i}" for i, f in enumerate(files)])
            for i, (doc_id, upload) in enumerate(zip(ids, files, strict=True)):
                raw = await upload.read(settings.max_upload_file_bytes + 1)
                if len(raw) > settings.max_upload_file_bytes:
                    raise _too_large(f"files[{i}] ({doc_id}): larger than "
                                     f"{settings.max_upload_file_bytes} bytes")
                try:
                    text = extract_text(doc_id, raw, max_bytes=settings.max_upload_file_bytes,
                                        content_type=upload.content_type or "")
                except ExtractionError as e:
                    raise _unprocessable(f"files[{i}] ({doc_id}): {e}") from e
                documents.append({"id": doc_id, "text": text,
                                  "metadata": {"filename": upload.filename or doc_id}})
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
    except (MultiPartException, StarletteHTTPException) as e:
        # Starlette reports the parser's limits as a 400 with the parser's message.
        msg = e.detail if isinstance(e, StarletteHTTPException) else str(e)
        if isinstance(e, HTTPException) or (
                isinstance(e, StarletteHTTPException) and e.status_code != 400):
            raise
        if "Too many files" in msg:
            raise _too_large(f"files: at most {settings.max_upload_files} per upload") from e
        if "exceeded maximum size" in msg:
            raise _too_large(f"form field larger than {MAX_FORM_FIELD_BYTES} bytes") from e
        raise _unprocessable(f"multipart body: {msg}") from e
    collection = fields.get("collection")
    if not collection:
        raise _unprocessable("collection: required form field")
    options: dict[str, Any] = {}
    if fields.get("options"):
        try:
            options = json.loads(fields["options"])
        except ValueError as e:
            raise _unprocessable(f"options: not valid JSON: {e}") from e
        if not isinstance(options, dict):
            raise _unprocessable("options: must be a JSON object of spec fields")
        if "sources" in options:
            raise _unprocessable("options.sources: the uploaded files are the sources")
    destination = options.get("destination") or {}
    if not isinstance(destination, dict):
        raise _unprocessable("options.destination: must be an object")
    raw_spec = {**options, "sources": [{"inline": {"documents": documents}}],
                "destination": {**destination, "collection": collection}}
    if fields.get("tenant"):
        raw_spec["tenantId"] = fields["tenant"]
    name = fields.get("name") or None
    _check_name(name, "name")
    return name, raw_spec


async def visible(jobs: Jobs, caller: Caller, job_id: str) -> JobRecord:
    """The record, if this caller may see it; another tenant's ingestion is a 404 too."""
    rec = await jobs.load(job_id)
    if rec is None or not caller.may_act_for(rec.tenant):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no ingestion {job_id!r}")
    return rec


async def _ingestion(jobs: Jobs, rec: JobRecord) -> Ingestion:
    s = rec.summary()
    return Ingestion(**s, status=await jobs.status(rec))


@router.get("/{job_id}", response_model=Ingestion,
            responses={401: ERRORS[401], 404: {"description": "no such ingestion"}})
async def get_ingestion(job_id: str, caller: CallerDep, jobs: JobsDep) -> Ingestion:
    """The ingestion with its status block (the IngestionJob CR's)."""
    return await _ingestion(jobs, await visible(jobs, caller, job_id))


@router.delete("/{job_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses={401: ERRORS[401], 404: {"description": "no such ingestion"}})
async def delete_ingestion(job_id: str, caller: CallerDep, jobs: JobsDep) -> Response:
    """Cancel: stop the fan-out and delete the job's state and record. Vectors already
    written stay in the collection."""
    await jobs.cancel(await visible(jobs, caller, job_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("", response_model=IngestionList,
            responses={401: ERRORS[401], 403: ERRORS[403],
                       422: {"description": "bad limit or cursor"}})
async def list_ingestions(
    caller: CallerDep, jobs: JobsDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,9}$")] = None,
    tenant: Annotated[str | None, Query(max_length=128)] = None,
) -> IngestionList:
    """The caller's tenant's ingestions, newest first. A key valid for every tenant lists
    all, or one `tenant`'s."""
    if caller.tenant is not None:
        if tenant is not None and tenant != caller.tenant:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"key not valid for tenant {tenant!r}")
        tenant = caller.tenant
    records, nxt = await jobs.page(tenant, limit, int(cursor or 0))
    return IngestionList(items=[await _ingestion(jobs, r) for r in records],
                         nextCursor=None if nxt is None else str(nxt))
