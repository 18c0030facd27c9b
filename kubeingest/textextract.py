"""Bytes of a document to plain text, by file name: `.gz` is opened transparently, HTML is
reduced to its visible text, everything else must be UTF-8 text."""

from __future__ import annotations

import zlib
from pathlib import PurePosixPath

from selectolax.lexbor import LexborHTMLParser as HTMLParser

TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".rst", ".text", ""})
HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES


class ExtractionError(ValueError):
    """The document cannot become text; the message is the reason shown to the user."""


def inner_suffix(name: str) -> str:
    """`a/b.rst.gz` -> `.rst`; the suffix that decides how the content is read."""
    p = PurePosixPath(name.lower())
    if p.suffix == ".gz":
        p = p.with_suffix("")
    return p.suffix


def is_supported(name: str) -> bool:
    return inner_suffix(name) in SUPPORTED_SUFFIXES


def extract_text(name: str, raw: bytes, *, max_bytes: int, content_type: str = "") -> str:
    """Decode `raw` to text; raise ExtractionError with the reason."""
    if name.lower().endswith(".gz"):
        raw = _gunzip(raw, max_bytes)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ExtractionError(f"not UTF-8 text (byte {e.start})") from e
    if inner_suffix(name) in HTML_SUFFIXES or "html" in content_type:
        text = html_to_text(text)
    text = text.replace("\x00", "").strip()
    if not text:
        raise ExtractionError("empty document")
    return text


def html_to_text(html: str) -> str:
    tree = HTMLParser(html)
    for node in tree.css("script, style, noscript, template, head"):
        node.decompose()
    body = tree.body or tree.root
    if body is None:
        return ""
    return "\n".join(
        line.strip() for line in body.text(separator="\n").splitlines() if line.strip()
    )


def _gunzip(raw: bytes, max_bytes: int) -> bytes:
    # Bounded decompression: a small .gz can expand without limit (a zip bomb).
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(raw, max_bytes + 1)
    except zlib.error as e:
        raise ExtractionError(f"not a valid gzip file: {e}") from e
    if len(out) > max_bytes:
        raise ExtractionError(f"larger than {max_bytes} bytes once decompressed")
    return out

