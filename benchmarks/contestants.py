"""The three ways to get the same chunks into Qdrant with the same model and batch size.

1. raw: sentence-transformers `encode` alone, the machine's limit for this model;
2. kubeingest: producer -> Redis -> embedder process -> Redis -> sink process -> Qdrant;
3. llamaindex: `IngestionPipeline` with `HuggingFaceEmbedding` and `QdrantVectorStore`.

Model loading is never timed, and each contestant embeds one warm-up batch first: first-call
allocations are not throughput. Qdrant is local mode in memory for 2 and 3 alike.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.corpus import check_kubeingest_sees, chunk_files_spec, write_chunk_files
from benchmarks.processes import pipeline
from kubeingest.models import bundled_minilm_path

COLLECTION = "bench"


def raw_model(chunks: list[str], batch: int) -> dict[str, Any]:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(bundled_minilm_path()), device="cpu")
    model.encode(chunks[:batch], batch_size=batch, normalize_embeddings=True)
    started = time.perf_counter()
    vectors = model.encode(chunks, batch_size=batch, normalize_embeddings=True,
                           convert_to_numpy=True, show_progress_bar=False)
    seconds = time.perf_counter() - started
    assert len(vectors) == len(chunks)
    return _result("raw sentence-transformers encode", len(chunks), seconds)


async def kubeingest_e2e(chunks: list[str], batch: int, *,
                         profile_dir: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kubeingest-bench-") as tmp:
        docs, warm = Path(tmp) / "docs", Path(tmp) / "warmup"
        write_chunk_files(docs, chunks)
        write_chunk_files(warm, chunks[:batch])
        spec = chunk_files_spec(docs, batch, "sentence-transformers", COLLECTION)
        check_kubeingest_sees(spec, chunks)
        env = {"KUBEINGEST_BACKEND": "sentence-transformers",
               "KUBEINGEST_ENCODE_BATCH_SIZE": str(batch)}
        async with pipeline(embedders=1, sinks=1, env=env, profile_dir=profile_dir) as p:
            await p.run_job("warmup", chunk_files_spec(warm, batch, "sentence-transformers",
                                                       "warmup"))
            run = await p.run_job("bench", spec)
    if run.chunks != len(chunks) or run.failed:
        raise SystemExit(f"kubeingest stored {run.chunks} of {len(chunks)} chunks "
                         f"({run.failed} failed)")
    return {**_result("kubeingest end to end", run.chunks, run.seconds), "cpu_s": run.cpu_s,
            **run.timed_s}


def llamaindex(chunks: list[str], batch: int) -> dict[str, Any]:
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.schema import TextNode
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient

    embed = HuggingFaceEmbedding(model_name=str(bundled_minilm_path()), device="cpu",
                                 embed_batch_size=batch, normalize=True)
    embed.get_text_embedding_batch(chunks[:batch])
    client = QdrantClient(location=":memory:")
    store = QdrantVectorStore(client=client, collection_name=COLLECTION, batch_size=batch)
    # Nodes as given: no splitter, so LlamaIndex embeds exactly the texts the others embed.
    nodes = [TextNode(text=t) for t in chunks]
    ingest = IngestionPipeline(transformations=[embed], vector_store=store)
    started = time.perf_counter()
    ingest.run(nodes=nodes, disable_cache=True)  # the cache would only add hashing work
    seconds = time.perf_counter() - started
    stored = client.count(COLLECTION).count
    if stored != len(chunks):
        raise SystemExit(f"LlamaIndex stored {stored} of {len(chunks)} chunks")
    return _result("LlamaIndex IngestionPipeline", stored, seconds)


def _result(name: str, chunks: int, seconds: float) -> dict[str, Any]:
    return {"contestant": name, "chunks": chunks, "seconds": round(seconds, 2),
            "chunks_per_s": round(chunks / seconds, 2)}
