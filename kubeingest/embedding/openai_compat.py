"""The `openai` backend: any OpenAI-compatible `/v1/embeddings` (vLLM serve, TEI, OpenAI).

Vectors are asked for base64-encoded (float32 little-endian), 4x smaller than JSON floats.
Timeouts and 5xx are retried with exponential backoff; a 4xx is the request's fault and is
reported at once as `backend_rejected`.
"""

from __future__ import annotations

import base64
import logging
import time
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np

from kubeingest.contracts import Float32Matrix
from kubeingest.embedding.base import EmbeddingError

if TYPE_CHECKING:
    from kubeingest.settings import EmbedderSettings

logger = logging.getLogger(__name__)


class OpenAIEmbedder:
    backend = "openai"

    def __init__(self, settings: EmbedderSettings) -> None:
        self.model = settings.model
        self.normalize = settings.normalize
        self._max_batch = settings.openai_max_batch
        self._retries = settings.openai_max_retries
        headers = {}
        if settings.openai_api_key is not None:
            headers["Authorization"] = f"Bearer {settings.openai_api_key.get_secret_value()}"
        base = settings.openai_base_url.rstrip("/")
        if not base.endswith("/v1"):
            base += "/v1"
        self._client = httpx.Client(
            base_url=base, headers=headers, timeout=settings.openai_timeout_s
        )
        try:
            self.dim = int(self._request(["dimension probe"]).shape[1])
        except BaseException:
            self._client.close()  # a failed start must not leak the connection pool
            raise

    def close(self) -> None:
        self._client.close()

    def embed(self, texts: list[str]) -> Float32Matrix:
        parts = [
            self._request(texts[i : i + self._max_batch])
            for i in range(0, len(texts), self._max_batch)
        ]
        out = np.concatenate(parts) if parts else np.empty((0, self.dim), np.float32)
        if self.normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def _request(self, texts: list[str]) -> Float32Matrix:
        body = {"model": self.model, "input": texts, "encoding_format": "base64"}
        delay = 0.5
        for attempt in range(self._retries + 1):
            try:
                resp = self._client.post("/embeddings", json=body)
            except httpx.TransportError as e:  # connect errors and timeouts: the server may recover
                failure = EmbeddingError("backend_unavailable", f"{type(e).__name__}: {e}",
                                         retryable=True)
            else:
                if resp.status_code < 400:
                    return _decode(resp.json(), len(texts))
                message = _error_message(resp)
                if resp.status_code < 500 and resp.status_code != 429:
                    raise EmbeddingError("backend_rejected", f"HTTP {resp.status_code}: {message}")
                failure = EmbeddingError("backend_error", f"HTTP {resp.status_code}: {message}",
                                         retryable=True)
            if attempt < self._retries:
                logger.warning("embeddings request failed (%s); retry in %.1fs", failure, delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
        raise failure


def _decode(payload: dict[str, Any], expected: int) -> Float32Matrix:
    items = sorted(payload.get("data", []), key=lambda d: d.get("index", 0))
    if len(items) != expected:
        raise EmbeddingError("backend_error", f"server returned {len(items)} of {expected} vectors")
    rows = []
    for item in items:
        emb = item["embedding"]
        if isinstance(emb, str):
            rows.append(np.frombuffer(base64.b64decode(emb), dtype="<f4"))
        else:  # a server that ignores encoding_format answers with floats
            rows.append(np.asarray(emb, dtype=np.float32))
    return np.stack(rows).astype(np.float32, copy=True)


def _error_message(resp: httpx.Response) -> str:
    try:
        err = resp.json()
    except ValueError:
        return resp.text[:200]
    if isinstance(err, dict):
        inner = err.get("error", err)
        if isinstance(inner, dict):
            return str(inner.get("message", inner))[:200]
        return str(inner)[:200]
    return str(err)[:200]
