"""The `hash` backend: deterministic pseudo-embeddings, instantly.

Not a language model. It exists for tests and to measure the pipeline's own ceiling without a
model in the way; every log line and the metrics' `backend` label say `hash`.
"""

from __future__ import annotations

import hashlib

import numpy as np

from kubeingest.contracts import Float32Matrix


class HashEmbedder:
    backend = "hash"

    def __init__(self, model: str, dim: int = 384) -> None:
        self.model = model
        self.dim = dim

    def embed(self, texts: list[str]) -> Float32Matrix:
        raw = b"".join(hashlib.shake_256(t.encode()).digest(self.dim) for t in texts)
        m = np.frombuffer(raw, dtype=np.uint8).reshape(len(texts), self.dim)
        out = m.astype(np.float32) - 127.5
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out
