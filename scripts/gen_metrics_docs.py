"""Write docs/metrics.md from the metrics the code declares (tests check it is current)."""

from __future__ import annotations

import sys
from pathlib import Path

from prometheus_client import REGISTRY

import kubeingest.metrics
import kubeingest.operator.metrics
import kubeingest.services.api.app  # noqa: F401  # declares the HTTP metrics

PARTS = [
    ("kubeingest_stream_", "streams layer (embedder and sink)"),
    ("kubeingest_dead_letters", "streams layer (embedder and sink)"),
    ("kubeingest_embedder_", "embedder"),
    ("kubeingest_sink_", "sink"),
    ("kubeingest_chunks_published", "producer (operator, `kubeingest run`)"),
    ("kubeingest_documents_", "producer (operator, `kubeingest run`)"),
    ("kubeingest_fanout_", "producer (operator, `kubeingest run`)"),
    ("kubeingest_operator_", "operator"),
    ("kubeingest_jobs", "operator"),
    ("kubeingest_http_", "HTTP API"),
]


def collect() -> list[tuple[str, str, str, str, str]]:
    rows = set()
    seen = {id(c): c for c in REGISTRY._names_to_collectors.values()}  # no public listing
    for collector in seen.values():
        base = getattr(collector, "_name", "")
        if not base.startswith("kubeingest"):
            continue
        kind = collector._type
        name = base + ("_total" if kind == "counter" else "")
        part = next((p for pre, p in PARTS if name.startswith(pre)), "other")
        labels = ", ".join(collector._labelnames) or "-"
        rows.add((part, name, kind, labels, collector._documentation))
    return sorted(rows)


def render() -> str:
    out = [
        "# Metrics",
        "",
        "Every long-running process serves Prometheus metrics at `/metrics` (embedder and sink on",
        "`KUBEINGEST_METRICS_PORT`, the API on its HTTP port, the operator on 9100). Labels are",
        "bounded: never a job, document or chunk id. Generated from the code by",
        "`python scripts/gen_metrics_docs.py`.",
        "",
        "| metric | type | labels | part | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for part, name, kind, labels, doc in collect():
        out.append(f"| `{name}` | {kind} | {labels} | {part} | {doc} |")
    out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    target = Path(__file__).resolve().parent.parent / "docs" / "metrics.md"
    target.write_text(render())
    sys.stdout.write(f"wrote {target}\n")
