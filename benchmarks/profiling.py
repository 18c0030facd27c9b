"""Where the time goes: cProfile files of the worker processes, summed into the categories a
pipeline engineer acts on (model, serialization, Redis client, Qdrant, our own code, waiting).

Self time (tottime) is used, so each second is counted once, in the function that spent it.
"""

from __future__ import annotations

import pstats
from pathlib import Path
from typing import Any

# (category, substrings of the file path or built-in name that belong to it); first match wins.
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    # Importing modules and building pydantic/typing schemas: once per process, not per chunk.
    ("startup (imports)", ("importlib", "marshal.loads", "builtins.compile", "exec_dynamic",
                           "__build_class__", "_generate_schema", "_model_construction",
                           "typing.py", "builtins.exec", "/inspect.py", "/re/_")),
    ("waiting (idle)", ("select.epoll", "method 'poll'", "time.sleep", "lock' objects",
                        "method 'acquire'", "threading.py")),
    ("model", ("/torch/", "/sentence_transformers/", "/transformers/", "/tokenizers/",
               "_hashlib", "shake_256", "embedding/hashing.py", "/safetensors/")),
    ("serialization", ("/json/", "_json", "/pydantic", "contracts.py", "tolist", "frombuffer",
                       "tobytes", "/uuid.py", "method 'encode'", "method 'decode'")),
    ("Redis client", ("/redis/", "socket", "/asyncio/streams.py", "/ssl.py")),
    ("Qdrant", ("/qdrant_client/", "/numpy/", "/grpc/", "/httpx/")),
    ("event loop", ("/asyncio/", "/selectors.py", "/concurrent/")),
    ("kubeingest", ("/kubeingest/", "/services/", "/operator/")),
)
OTHER = "other"
NOT_BUSY = ("waiting (idle)", "startup (imports)")  # not the per-chunk work being studied
# Our own boundaries, by cumulative time (main thread: the model's thread is not in here).
BOUNDARIES: tuple[tuple[str, str, str], ...] = (
    ("read a batch (XREADGROUP + decode)", "kubeingest/streams.py", "_read"),
    ("ack + XDEL", "kubeingest/streams.py", "ack"),
    ("decode an action (JSON + pydantic)", "kubeingest/contracts.py", "decode_action"),
    ("reply: encode + XADD", "services/embedder.py", "_send"),
    ("join chunk context (GET)", "services/sink.py", "_load_contexts"),
    ("build points", "services/sink.py", "_point"),
    ("Qdrant upsert (local mode, in process)", "kubeingest/qdrant_store.py", "upsert"),
    ("progress bitmaps", "kubeingest/progress.py", "record_stored"),
)


def categorize(key: tuple[str, int, str]) -> str:
    filename, _, func = key
    where = f"{filename} {func}"
    for name, needles in CATEGORIES:
        if any(n in where for n in needles):
            return name
    return OTHER


def summarize(path: Path, label: str, top: int = 12) -> dict[str, Any]:
    stats = pstats.Stats(str(path))
    table: dict[tuple[str, int, str], tuple[int, int, float, float, object]]
    table = stats.stats  # type: ignore[attr-defined]
    by_cat: dict[str, float] = {}
    rows = []
    for key, (_, calls, tottime, _, _) in table.items():
        cat = categorize(key)
        by_cat[cat] = by_cat.get(cat, 0.0) + tottime
        rows.append((tottime, calls, key, cat))
    busy = sum(v for k, v in by_cat.items() if k not in NOT_BUSY) or 1.0
    boundaries = {}
    for what, file_end, func in BOUNDARIES:
        cum = sum(v[3] for k, v in table.items() if k[0].endswith(file_end) and k[2] == func)
        if cum:
            boundaries[what] = {"seconds": round(cum, 2), "share_of_busy": round(cum / busy, 3)}
    rows.sort(reverse=True, key=lambda r: r[0])
    return {
        "label": label,
        "busy_s": round(busy, 2),
        "categories": {k: {"seconds": round(v, 2),
                           "share_of_busy": round(v / busy, 3) if k not in NOT_BUSY else None}
                       for k, v in sorted(by_cat.items(), key=lambda kv: -kv[1])},
        "boundaries": boundaries,
        "top": [{"function": _name(key), "category": cat, "self_s": round(t, 3), "calls": calls}
                for t, calls, key, cat in rows if cat not in NOT_BUSY][:top],
    }


def _name(key: tuple[str, int, str]) -> str:
    filename, line, func = key
    if filename == "~":
        return func
    parts = Path(filename).parts
    return f"{'/'.join(parts[-2:])}:{line}({func})"


def summarize_dir(root: Path) -> list[dict[str, Any]]:
    """One summary per worker profile, labelled by run and process (e.g. e2e/sink-0)."""
    return [summarize(p, str(p.relative_to(root).with_suffix("")))
            for p in sorted(root.rglob("*.prof"))]
