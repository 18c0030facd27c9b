"""The benchmark corpus: real documents no one here wrote, chunked once.

Every model contestant embeds the same list of chunk texts. kubeingest reads them as one file
per chunk with a character window larger than any chunk, so its producer re-emits each text
unchanged; `check_kubeingest_sees` proves that before anything is timed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

from kubeingest.chunking import CharacterSplitter, TokenSplitter
from kubeingest.spec import DEFAULT_MODEL, parse_spec

PY_DOCS = Path("/usr/share/doc/python3.11/html/_sources")  # Debian python3.11-doc
SUFFIXES = (".txt", ".rst")
# A window no chunk reaches: the producer then cuts nothing (spec maximum is 8192).
WHOLE_FILE_CHARS = 8192


def documents(root: Path) -> Iterator[tuple[str, str]]:
    """(relative name, text) of every reStructuredText/text file under root, sorted."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES))
    if not files:
        raise SystemExit(f"no .txt/.rst documents under {root} "
                         "(apt-get install python3.11-doc, or pass --corpus DIR)")
    for p in files:
        yield str(p.relative_to(root)), p.read_text(errors="replace")


def model_chunks(root: Path, n: int, size: int, overlap: int) -> list[str]:
    """The first n chunks of `size` MiniLM tokens: what a job with default chunking embeds."""
    splitter = TokenSplitter(DEFAULT_MODEL, size=size, overlap=overlap)
    out: list[str] = []
    for _, text in documents(root):
        out.extend(splitter.split(text))
        if len(out) >= n:
            return out[:n]
    return out


def write_chunk_files(root: Path, chunks: list[str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(chunks):
        if len(text) > WHOLE_FILE_CHARS:
            raise ValueError(f"chunk {i} has {len(text)} chars; the window is {WHOLE_FILE_CHARS}")
        (root / f"c{i:07d}.txt").write_text(text)


def chunk_files_spec(root: Path, batch: int, backend: str, collection: str) -> dict[str, object]:
    return {
        "sources": [{"path": {"path": str(root), "glob": "*.txt"}}],
        "chunking": {"strategy": "characters", "size": WHOLE_FILE_CHARS, "overlap": 0},
        "embedding": {"backend": backend, "batchSize": batch},
        "destination": {"collection": collection},
    }


def job_texts(spec: dict[str, object]) -> list[str]:
    """The chunk texts a job with this spec publishes, in order: the producer's own reading
    and splitting code, run here."""
    from kubeingest.chunking import make_splitter
    from kubeingest.sources import Document, iter_documents

    parsed = parse_spec(spec)
    splitter = make_splitter(parsed.chunking, parsed.embedding.model)
    return [piece for doc in iter_documents(parsed.sources) if isinstance(doc, Document)
            for piece in splitter.split(doc.text)]


def check_kubeingest_sees(spec: dict[str, object], chunks: list[str]) -> None:
    """Read the files as the producer does and compare: identical texts or no benchmark."""
    seen = job_texts(spec)
    if seen != chunks:
        diff = next((i for i, (a, b) in enumerate(zip(seen, chunks, strict=False)) if a != b),
                    min(len(seen), len(chunks)))
        raise SystemExit(f"kubeingest would embed different texts (first at chunk {diff}, "
                         f"{len(seen)} vs {len(chunks)} chunks)")


def write_ceiling_corpus(src: Path, dest: Path, chunks: int, chunk_chars: int) -> int:
    """Copies of the real documents until a job cut in `chunk_chars` windows has >= chunks.

    Returns the exact number of chunks the job will publish.
    """
    splitter = CharacterSplitter(chunk_chars, 0)
    docs = [(name, text, sum(1 for _ in splitter.split(text))) for name, text in documents(src)]
    per_copy = sum(n for *_, n in docs)
    if per_copy == 0:
        raise SystemExit(f"no text under {src}")
    copies = max(1, math.ceil(chunks / per_copy))
    dest.mkdir(parents=True, exist_ok=True)
    total = 0
    for c in range(copies):
        for i, (_, text, n) in enumerate(docs):
            if total >= chunks and c == copies - 1:
                break  # the last copy only as far as needed
            (dest / f"r{c:03d}-{i:05d}.txt").write_text(text)
            total += n
    return total
