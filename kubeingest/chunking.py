"""Splitting documents into chunks, and the deterministic ids every retry relies on.

The default strategy counts the embedding model's own tokens, so a chunk of `size` tokens is
exactly what the model will see (no silent truncation of a chunk's tail). Chunks are cut at
token offsets of the original text: the stored text is the document's text, not a detokenized
approximation.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Protocol

from kubeingest.models import bundled_minilm_path, local_model_dir
from kubeingest.spec import Chunking, ChunkingStrategy

logger = logging.getLogger(__name__)

# Fixed namespace for UUIDv5 ids: changing it would re-key every collection ever written.
ID_NAMESPACE = uuid.UUID("3f5d7a52-3c1e-4f0b-9d55-6b0c3f7e2a10")


def chunk_id(collection: str, document_id: str, index: int, text: str) -> str:
    """Deterministic chunk id, also the Qdrant point id: a retry overwrites, never duplicates."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    return str(uuid.uuid5(ID_NAMESPACE, f"{collection}\x00{document_id}\x00{index}\x00{digest}"))


@dataclass(frozen=True)
class Chunk:
    seq: int  # position in the whole job: index of the job's progress bitmap
    chunk_id: str
    document_id: str
    index: int  # position within its document
    text: str
    source: str
    metadata: dict[str, str] = field(default_factory=dict)


class Splitter(Protocol):
    def split(self, text: str) -> Iterator[str]: ...


class CharacterSplitter:
    """Windows of `size` characters with `overlap`, preferring to cut at whitespace."""

    def __init__(self, size: int, overlap: int) -> None:
        self.size, self.overlap = size, overlap

    def split(self, text: str) -> Iterator[str]:
        start, n = 0, len(text)
        while start < n:
            end = min(start + self.size, n)
            if end < n:
                cut = text.rfind(" ", start + self.size // 2, end)
                end = cut if cut > start else end
            piece = text[start:end].strip()
            if piece:
                yield piece
            if end >= n:
                return
            start = max(end - self.overlap, start + 1)


class TokenSplitter:
    """Windows of `size` model tokens with `overlap` tokens, cut at the tokens' offsets."""

    def __init__(self, model: str, size: int, overlap: int) -> None:
        self.size, self.overlap = size, overlap
        self._tokenizer = load_tokenizer(model)

    def split(self, text: str) -> Iterator[str]:
        offsets = self._tokenizer.encode(text, add_special_tokens=False).offsets
        if not offsets:
            return
        step = self.size - self.overlap
        for first in range(0, len(offsets), step):
            window = offsets[first : first + self.size]
            piece = text[window[0][0] : window[-1][1]].strip()
            if piece:
                yield piece
            if first + self.size >= len(offsets):
                return


@cache
def load_tokenizer(model: str):  # type: ignore[no-untyped-def]  # tokenizers has no stubs
    from tokenizers import Tokenizer

    d = local_model_dir(model)
    if d is not None and (d / "tokenizer.json").is_file():
        tok = Tokenizer.from_file(str(d / "tokenizer.json"))
    else:
        # No local tokenizer for this model: count with MiniLM's WordPiece, a close proxy for
        # BERT-family models, and say so once.
        logger.warning("no local tokenizer for %s; counting tokens with MiniLM's", model)
        tok = Tokenizer.from_file(str(bundled_minilm_path() / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


def make_splitter(chunking: Chunking, model: str) -> Splitter:
    if chunking.strategy is ChunkingStrategy.CHARACTERS:
        return CharacterSplitter(chunking.size, chunking.overlap)
    return TokenSplitter(model, chunking.size, chunking.overlap)
