"""kubeingest's `hash` pseudo-embedding as a LlamaIndex embedding: LlamaIndex's pipeline with
a free model, to compare pipeline costs when the model no longer hides them."""

from __future__ import annotations

from llama_index.core.embeddings import BaseEmbedding
from pydantic import PrivateAttr

from kubeingest.embedding.hashing import HashEmbedder


class HashEmbedding(BaseEmbedding):
    _hash: HashEmbedder = PrivateAttr(default_factory=lambda: HashEmbedder("hash"))

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = self._hash.embed(texts).tolist()
        return out

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._get_text_embedding(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_text_embedding(query)
