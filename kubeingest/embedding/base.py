"""The backend interface, its errors, and the factory that picks one from settings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from kubeingest.contracts import Float32Matrix
from kubeingest.spec import Backend

if TYPE_CHECKING:
    from kubeingest.settings import EmbedderSettings


class EmbeddingError(RuntimeError):
    """A batch that could not be embedded; `code` goes into the error reply's `error_code`."""

    def __init__(self, code: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable


class Embedder(Protocol):
    backend: str
    model: str
    dim: int

    def embed(self, texts: list[str]) -> Float32Matrix:
        """One float32 row per text, in order. Blocking: call from a worker thread."""
        ...


def create_embedder(settings: EmbedderSettings) -> Embedder:
    """Load the configured backend once per process (model loading is the slow part)."""
    backend = settings.backend
    if backend is Backend.HASH:
        from kubeingest.embedding.hashing import HashEmbedder

        return HashEmbedder(settings.model, settings.hash_dim)
    if backend is Backend.SENTENCE_TRANSFORMERS:
        from kubeingest.embedding.sentence_transformers import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(
            settings.model, device=settings.device, normalize=settings.normalize,
            batch_size=settings.encode_batch_size,
        )
    if backend is Backend.OPENAI:
        from kubeingest.embedding.openai_compat import OpenAIEmbedder

        return OpenAIEmbedder(settings)
    if backend is Backend.VLLM:
        from kubeingest.embedding.vllm_engine import VllmEmbedder

        return VllmEmbedder(settings)
    raise EmbeddingError("unknown_backend", f"unknown backend {backend!r}")
