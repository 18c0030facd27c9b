"""`kubeingest query`: the chunks nearest to a text, to check what a job stored."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TextIO

from kubeingest.embedding import create_embedder
from kubeingest.qdrant_store import open_client
from kubeingest.settings import EmbedderSettings
from kubeingest.spec import DEFAULT_MODEL, Backend


@dataclass(frozen=True)
class Hit:
    score: float
    source: str
    document_id: str
    chunk_index: int
    text: str


async def search(
    text: str, collection: str, k: int, *, qdrant_url: str | None, qdrant_path: str,
    model: str | None, backend: str, qdrant_api_key: str | None = None,
) -> list[Hit]:
    settings = EmbedderSettings(backend=Backend(backend), model=model or DEFAULT_MODEL,
                                metrics_port=0)
    embedder = await asyncio.to_thread(create_embedder, settings)
    vector = (await asyncio.to_thread(embedder.embed, [text]))[0]
    client = open_client(url=qdrant_url, path=qdrant_path, api_key=qdrant_api_key)
    try:
        if not await client.collection_exists(collection):
            raise LookupError(f"no collection {collection!r} in Qdrant")
        res = await client.query_points(collection, query=vector.tolist(), limit=k,
                                        with_payload=True)
    finally:
        await client.close()
    hits = []
    for pt in res.points:
        pl = pt.payload or {}
        hits.append(Hit(float(pt.score), str(pl.get("source", "")),
                        str(pl.get("document_id", "")), int(pl.get("chunk_index", 0)),
                        str(pl.get("text", ""))))
    return hits


def print_results(hits: list[Hit], out: TextIO) -> None:
    if not hits:
        out.write("no results\n")
    for rank, h in enumerate(hits, 1):
        snippet = " ".join(h.text.split())[:160]
        out.write(f"{rank}. score={h.score:.4f} {h.source} (document {h.document_id}, "
                  f"chunk {h.chunk_index})\n   {snippet}\n")
