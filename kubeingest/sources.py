"""Documents from an IngestionJob's sources, one at a time.

Every reader is a generator: a corpus of any size streams through with one document in memory.
A document that cannot be read becomes a `DocumentFailure` in the stream (reported in the job's
status), never an exception that stops the job. The order is deterministic (sorted paths, listed
URLs and keys) so that a restarted producer numbers chunks the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from kubeingest.spec import ConfigMapSource, HttpSource, InlineSource, PathSource, Source
from kubeingest.textextract import ExtractionError, extract_text, is_supported

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Document:
    id: str
    text: str
    source: str
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DocumentFailure:
    id: str
    source: str
    reason: str


DocumentOrFailure = Document | DocumentFailure

# Reads a ConfigMap's data (key -> text); the operator supplies one backed by the API server.
ConfigMapReader = Callable[[str], Mapping[str, str]]


class SourceError(RuntimeError):
    """A source as a whole is unusable (missing directory, unreadable ConfigMap)."""


def iter_documents(
    sources: list[Source], *, configmap_reader: ConfigMapReader | None = None
) -> Iterator[DocumentOrFailure]:
    for index, source in enumerate(sources):
        if source.inline is not None:
            yield from _inline(source.inline, index)
        elif source.path is not None:
            yield from _path(source.path)
        elif source.http is not None:
            yield from _http(source.http)
        elif source.config_map is not None:
            yield from _configmap(source.config_map, configmap_reader)


def _inline(src: InlineSource, source_index: int) -> Iterator[DocumentOrFailure]:
    for i, doc in enumerate(src.documents):
        doc_id = doc.id or f"inline-{source_index}-{i}"
        text = doc.text.strip()
        if not text:
            yield DocumentFailure(doc_id, "inline", "empty document")
            continue
        yield Document(doc_id, text, "inline", dict(doc.metadata))


def _path(src: PathSource) -> Iterator[DocumentOrFailure]:
    root = Path(src.path)
    if not root.exists():
        yield DocumentFailure(src.path, src.path, "path does not exist")
        return
    files = [root] if root.is_file() else sorted(p for p in root.glob(src.glob) if p.is_file())
    for path in files:
        rel = path.name if root.is_file() else path.relative_to(root).as_posix()
        if not is_supported(path.name):
            yield DocumentFailure(rel, str(path), f"unsupported file type {path.suffix!r}")
            continue
        try:
            size = path.stat().st_size
            if size > src.max_bytes:
                raise ExtractionError(f"{size} bytes exceeds maxBytes {src.max_bytes}")
            text = extract_text(path.name, path.read_bytes(), max_bytes=src.max_bytes)
        except ExtractionError as e:
            yield DocumentFailure(rel, str(path), str(e))
            continue
        except OSError as e:  # a file vanished or is unreadable: that file fails, not the job
            yield DocumentFailure(rel, str(path), f"cannot read: {e.strerror}")
            continue
        yield Document(rel, text, str(path))


def _http(src: HttpSource) -> Iterator[DocumentOrFailure]:
    timeout = httpx.Timeout(src.timeout_seconds)
    with httpx.Client(timeout=timeout, follow_redirects=True, max_redirects=5) as client:
        for url in src.urls:
            try:
                raw, content_type = _download(client, url, src.max_bytes)
                name = httpx.URL(url).path or "index.html"
                text = extract_text(name, raw, max_bytes=src.max_bytes, content_type=content_type)
            except (httpx.HTTPError, ExtractionError) as e:
                yield DocumentFailure(url, url, _http_reason(e))
                continue
            yield Document(url, text, url)


def _download(client: httpx.Client, url: str, max_bytes: int) -> tuple[bytes, str]:
    with client.stream("GET", url) as resp:
        resp.raise_for_status()
        declared = int(resp.headers.get("content-length") or 0)
        if declared > max_bytes:
            raise ExtractionError(f"{declared} bytes exceeds maxBytes {max_bytes}")
        buf = bytearray()
        for part in resp.iter_bytes():
            buf += part
            if len(buf) > max_bytes:
                raise ExtractionError(f"larger than maxBytes {max_bytes}")
        return bytes(buf), resp.headers.get("content-type", "")


def _http_reason(e: Exception) -> str:
    if isinstance(e, httpx.HTTPStatusError):
        return f"HTTP {e.response.status_code}"
    if isinstance(e, httpx.TimeoutException):
        return "timed out"
    if isinstance(e, httpx.HTTPError):
        return f"unreachable: {type(e).__name__}: {e}"
    return str(e)


def _configmap(
    src: ConfigMapSource, reader: ConfigMapReader | None
) -> Iterator[DocumentOrFailure]:
    if reader is None:
        yield DocumentFailure(src.name, f"configmap/{src.name}", "ConfigMap sources need a cluster")
        return
    try:
        data = reader(src.name)
    except SourceError as e:
        yield DocumentFailure(src.name, f"configmap/{src.name}", str(e))
        return
    keys = src.keys if src.keys is not None else sorted(data)
    for key in keys:
        origin = f"configmap/{src.name}/{key}"
        if key not in data:
            yield DocumentFailure(key, origin, "key not in ConfigMap")
            continue
        try:
            text = extract_text(key, data[key].encode(), max_bytes=len(data[key]) * 4 + 1)
        except ExtractionError as e:
            yield DocumentFailure(key, origin, str(e))
            continue
        yield Document(f"{src.name}/{key}", text, origin)
