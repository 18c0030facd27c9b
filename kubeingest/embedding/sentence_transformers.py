"""The default backend: sentence-transformers on CPU or GPU, loaded offline."""

from __future__ import annotations

import logging
import os

import numpy as np

from kubeingest.contracts import Float32Matrix
from kubeingest.embedding.base import EmbeddingError
from kubeingest.models import resolve_model

logger = logging.getLogger(__name__)


class SentenceTransformerEmbedder:
    backend = "sentence-transformers"

    def __init__(
        self, model: str, *, device: str | None = None, normalize: bool = True,
        batch_size: int = 64,
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise EmbeddingError(
                "backend_unavailable",
                "sentence-transformers is not installed: pip install 'kubeingest[st]'",
            ) from e
        try:  # the weights' loading bar is noise in logs and under our own progress bar
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        except ImportError:  # older transformers: the bar stays, nothing breaks
            pass
        self.model = model
        self.normalize = normalize
        self.batch_size = batch_size
        self._st = SentenceTransformer(resolve_model(model), device=device)
        # sentence-transformers 6 renamed the method; the old name still works with a warning.
        get_dim = getattr(self._st, "get_embedding_dimension", None)
        dim = get_dim() if get_dim else self._st.get_sentence_embedding_dimension()
        if dim is None:
            raise EmbeddingError("backend_error", f"{model}: unknown embedding dimension")
        self.dim = int(dim)
        # Texts longer than this are truncated by the model's tokenizer, before the model.
        self.max_tokens = int(self._st.max_seq_length or 512)

    def embed(self, texts: list[str]) -> Float32Matrix:
        out = self._st.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=self.normalize,
            convert_to_numpy=True, show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float32)
