"""Embedding backends behind one small interface (`embed(texts) -> float32 matrix`)."""

from kubeingest.embedding.base import Embedder, EmbeddingError, create_embedder

__all__ = ["Embedder", "EmbeddingError", "create_embedder"]
