"""`POST /api/v1/embeddings/generate`: the second seed's asynchronous endpoint.

The request is validated, turned into an `embedding.batch.process` action and queued for the
embedding service with `reply_to_stream = callback_queue`; the answer is `202 Accepted` with
the task id. The result (status success or error, vectors as float32 bytes) arrives on the
caller's `callback_queue` stream.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, HTTPException, status

from kubeingest.contracts import (
    DomainAction,
    EmbedBatchData,
    GenerateEmbeddingsAccepted,
    GenerateEmbeddingsRequest,
    encode_action,
)
from kubeingest.names import ACTION_EMBED_BATCH, DEAD_SUFFIX, INGESTION_SERVICE
from kubeingest.services.api.deps import CallerDep, NamesDep, RedisDep, SettingsDep

router = APIRouter(prefix="/api/v1/embeddings", tags=["embeddings"])

CALLBACK_PATTERN = re.compile(r"^[A-Za-z0-9:._-]{1,200}$")


@router.post(
    "/generate",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=GenerateEmbeddingsAccepted,
    responses={401: {"description": "missing or invalid API key"},
               403: {"description": "the key is not valid for this tenant"},
               413: {"description": "too many chunks or a text too large"},
               422: {"description": "malformed request"}},
)
async def generate(
    req: GenerateEmbeddingsRequest, caller: CallerDep, settings: SettingsDep,
    redis: RedisDep, names: NamesDep,
) -> GenerateEmbeddingsAccepted:
    if not caller.may_act_for(req.tenant_id):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"key not valid for tenant {req.tenant_id!r}"
        )
    if len(req.chunks) > settings.max_chunks_per_request:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"{len(req.chunks)} chunks; at most {settings.max_chunks_per_request} per request",
        )
    for i, chunk in enumerate(req.chunks):
        if len(chunk.text.encode()) > settings.max_text_bytes:
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE,
                f"chunks[{i}].text is larger than {settings.max_text_bytes} bytes",
            )
    _check_callback(req.callback_queue, names.embed_requests, names.embedding_results)
    data = EmbedBatchData(
        task_id=req.task_id,
        chunk_ids=[c.chunk_id for c in req.chunks],
        chunk_seqs=list(range(len(req.chunks))),
        texts=[c.text for c in req.chunks],
        model=req.model or settings.model,
        tenant_id=req.tenant_id,
        collection_id=req.collection_id,
        document_id=req.document_id,
    )
    action = DomainAction(
        action_type=ACTION_EMBED_BATCH, task_id=req.task_id, tenant_id=req.tenant_id,
        origin_service=INGESTION_SERVICE, reply_to_stream=req.callback_queue,
        data=data.model_dump(),
    )
    await redis.xadd(names.embed_requests, encode_action(action))  # type: ignore[arg-type]
    return GenerateEmbeddingsAccepted(
        task_id=req.task_id, correlation_id=action.correlation_id, chunks=len(req.chunks)
    )


def _check_callback(queue: str, *internal: str) -> None:
    # A callback into our own streams would let a caller forge pipeline messages.
    if not CALLBACK_PATTERN.match(queue) or queue in internal or queue.endswith(DEAD_SUFFIX):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "callback_queue: must be 1-200 of [A-Za-z0-9:._-] and not an internal stream",
        )
