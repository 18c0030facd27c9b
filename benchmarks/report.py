"""The results as JSON (everything) and as a markdown table (what a reader compares)."""

from __future__ import annotations

from typing import Any

TARGETS = {
    "kubeingest_over_raw": 0.95,
    "kubeingest_over_llamaindex": 1.2,
    "ceiling_one_process_chunks_per_s": 10_000,
    "ceiling_over_llamaindex_hash": 1.2,
}


def ratios(result: dict[str, Any]) -> dict[str, float]:
    by = {c["key"]: c["chunks_per_s"] for c in result.get("models", {}).get("contestants", [])}
    out: dict[str, float] = {}
    if "kubeingest" in by and "raw" in by:
        out["kubeingest_over_raw"] = round(by["kubeingest"] / by["raw"], 3)
    if "kubeingest" in by and "llamaindex" in by:
        out["kubeingest_over_llamaindex"] = round(by["kubeingest"] / by["llamaindex"], 3)
    runs = result.get("ceiling", {}).get("runs", [])
    if runs:
        out["ceiling_one_process_chunks_per_s"] = runs[0]["chunks_per_s"]
        peer = result["ceiling"].get("peer")
        if peer:
            out["ceiling_over_llamaindex_hash"] = round(
                runs[0]["chunks_per_s"] / peer["chunks_per_s"], 3)
    return out


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"# kubeingest benchmarks: {result['date']}",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']};"
        f" load average at start {m['load_average_at_start']}.",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + ".",
        f"Command: `{result['command']}`",
        "",
    ]
    models = result.get("models")
    if models:
        lines += [
            f"## Same {models['chunks']} chunks, same model, batch {models['batch']}",
            "",
            f"Corpus: {models['corpus']}, chunks of <= {models['chunk_tokens']} MiniLM tokens"
            f" (mean {models['mean_chunk_chars']} characters). Model: all-MiniLM-L6-v2 on the"
            " CPU. Qdrant: local mode in memory.",
            "",
            "| contestant | seconds | chunks/s (median) | vs raw model | chunks/s of each round |",
            "| --- | ---: | ---: | ---: | --- |",
        ]
        raw = next((c["chunks_per_s"] for c in models["contestants"] if c["key"] == "raw"), None)
        for c in models["contestants"]:
            vs = f"{c['chunks_per_s'] / raw:.3f}" if raw else "-"
            each = ", ".join(str(x) for x in c.get("rounds_chunks_per_s", []))
            lines.append(f"| {c['contestant']} | {c['seconds']} | {c['chunks_per_s']} | {vs} |"
                         f" {each} |")
        ki = next((c for c in models["contestants"] if c["key"] == "kubeingest"), None)
        if ki and "model_s" in ki:
            lines += ["", f"Inside kubeingest's {ki['seconds']} s: the embedder spent"
                      f" {ki['model_s']} s in the model, the sink {ki['qdrant_upsert_s']} s in"
                      " Qdrant upserts; CPU seconds by part: "
                      + ", ".join(f"{k} {v}" for k, v in ki["cpu_s"].items()) + "."]
        lines.append("")
    ceiling = result.get("ceiling")
    if ceiling:
        lines += [
            f"## Ceiling: `hash` backend, {ceiling['chunks']:,} chunks",
            "",
            f"Real documents cut in {ceiling['chunk_chars']}-character chunks, batches of"
            f" {ceiling['batch']}; real redis-server, Qdrant local mode in memory (one per sink).",
            "",
            "| embedders + sinks | seconds | chunks/s | speedup | CPU s: producer / embedders /"
            " sinks / redis | s in hash / in Qdrant upsert |",
            "| ---: | ---: | ---: | ---: | --- | --- |",
        ]
        for r in ceiling["runs"]:
            cpu = r["cpu_s"]
            lines.append(
                f"| {r['processes']} + {r['processes']} | {r['seconds']} | {r['chunks_per_s']:,} |"
                f" {r['speedup']} | {cpu.get('producer', 0)} / {cpu.get('embedder', 0)} /"
                f" {cpu.get('sink', 0)} / {cpu.get('redis', 0)} |"
                f" {r.get('model_s', '-')} / {r.get('qdrant_upsert_s', '-')} |")
        peer = ceiling.get("peer")
        if peer:
            lines.append(
                f"| LlamaIndex IngestionPipeline, same texts, same hash embedding, one process |"
                f" {peer['seconds']} | {peer['chunks_per_s']:,} | - | - | - |")
        lines += [
            "",
            "### Memory during the ceiling runs (RSS in MB: peak; at 10% of the job -> end;"
            " growth per 100k chunks)",
            "",
            "| embedders + sinks | producer | embedders | sinks | redis-server | Redis used_memory"
            " peak | in flight peak (chunks) |",
            "| ---: | --- | --- | --- | --- | ---: | ---: |",
        ]
        for r in ceiling["runs"]:
            mem = r["memory"]
            cells = [f"{mem[k]['peak_rss_mb']}; {mem[k]['rss_at_10pct_mb']} -> "
                     f"{mem[k]['rss_end_mb']}; {mem[k]['mb_per_100k_chunks']:+}"
                     for k in ("producer", "embedder", "sink", "redis")]
            lines.append(f"| {r['processes']} + {r['processes']} | " + " | ".join(cells)
                         + f" | {r['redis_peak_used_mb']} MB | {r['in_flight_peak_chunks']:,} |")
        lines.append("")
    got = ratios(result)
    if got:
        lines += ["## Against the targets", "", "| measure | target | measured | met |",
                  "| --- | ---: | ---: | --- |"]
        for key, target in TARGETS.items():
            if key in got:
                met = "yes" if got[key] >= target else "no"
                lines.append(f"| {key.replace('_', ' ')} | {target:,} | {got[key]:,} | {met} |")
        lines.append("")
    for prof in result.get("profiles", []):
        lines += [f"## Profile: {prof['label']} ({prof['busy_s']} s busy, after start-up)", "",
                  "| category | self seconds | share of busy |", "| --- | ---: | ---: |"]
        for cat, v in prof["categories"].items():
            share = f"{v['share_of_busy']:.0%}" if v["share_of_busy"] is not None else "-"
            lines.append(f"| {cat} | {v['seconds']} | {share} |")
        if prof.get("boundaries"):
            lines += ["", "| our boundary (cumulative, main thread) | seconds | share of busy |",
                      "| --- | ---: | ---: |"]
            lines += [f"| {k} | {v['seconds']} | {v['share_of_busy']:.0%} |"
                      for k, v in prof["boundaries"].items()]
        lines += ["", "| top functions (self time) | category | s | calls |",
                  "| --- | --- | ---: | ---: |"]
        lines += [f"| `{t['function']}` | {t['category']} | {t['self_s']} | {t['calls']:,} |"
                  for t in prof["top"]]
        lines.append("")
    return "\n".join(lines)
