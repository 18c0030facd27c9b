"""Qdrant as the destination: collections, batched upserts, deletes by job.

Local mode (a folder, the embedded default) and a server URL (production) go through the same
async client. Local mode locks its folder: one process at a time may open it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from qdrant_client import AsyncQdrantClient, models

logger = logging.getLogger(__name__)

DISTANCES = {
    "Cosine": models.Distance.COSINE,
    "Dot": models.Distance.DOT,
    "Euclid": models.Distance.EUCLID,
}
JOB_FIELD = "job_id"


class DimensionMismatch(RuntimeError):
    def __init__(self, collection: str, existing: int, wanted: int) -> None:
        super().__init__(
            f"collection {collection!r} has vectors of size {existing}; "
            f"the model produces {wanted}"
        )
        self.collection = collection


def open_client(
    *, url: str | None, path: str, api_key: str | None = None, timeout_s: int = 30
) -> AsyncQdrantClient:
    if url:
        return AsyncQdrantClient(url=url, api_key=api_key, timeout=timeout_s)
    if path == ":memory:":  # local mode without persistence (benchmarks, throwaway runs)
        return AsyncQdrantClient(location=":memory:")
    return AsyncQdrantClient(path=path)


class QdrantStore:
    def __init__(self, client: AsyncQdrantClient, *, server: bool = True) -> None:
        self.client = client
        # Payload indexes only matter on a server; local mode warns that it ignores them.
        self.server = server
        self._known: dict[str, int] = {}

    async def ensure_collection(self, name: str, dim: int, distance: str = "Cosine") -> None:
        """Create the collection if missing; refuse a different vector size."""
        known = self._known.get(name)
        if known == dim:
            return
        if known is None and await self.client.collection_exists(name):
            info = await self.client.get_collection(name)
            known = _vector_size(info)
            self._known[name] = known
        if known is None:
            await self.client.create_collection(
                name, vectors_config=models.VectorParams(size=dim, distance=DISTANCES[distance])
            )
            if self.server:
                await self.client.create_payload_index(
                    name, JOB_FIELD, field_schema=models.PayloadSchemaType.KEYWORD
                )
            logger.info("created collection %s (%d-d, %s)", name, dim, distance)
            self._known[name] = dim
            return
        if known != dim:
            raise DimensionMismatch(name, known, dim)

    async def upsert(self, name: str, points: Sequence[models.PointStruct]) -> None:
        # wait=True: the sink acks only once the write is applied.
        await self.client.upsert(name, points=list(points), wait=True)

    async def delete_job(self, name: str, job_id: str) -> None:
        if not await self.client.collection_exists(name):
            return
        await self.client.delete(
            name,
            points_selector=models.FilterSelector(filter=job_filter(job_id)),
            wait=True,
        )

    async def count(self, name: str, job_id: str | None = None) -> int:
        if not await self.client.collection_exists(name):
            return 0
        flt = job_filter(job_id) if job_id else None
        return (await self.client.count(name, count_filter=flt, exact=True)).count

    async def close(self) -> None:
        await self.client.close()


def job_filter(job_id: str) -> models.Filter:
    return models.Filter(
        must=[models.FieldCondition(key=JOB_FIELD, match=models.MatchValue(value=job_id))]
    )


def _vector_size(info: Any) -> int:
    vectors = info.config.params.vectors
    if isinstance(vectors, dict):  # named vectors: we write the unnamed default only
        raise RuntimeError("collections with named vectors are not supported")
    return int(vectors.size)
