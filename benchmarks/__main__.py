"""kubeingest benchmarks, one command:

    python -m benchmarks all                # full run: ~13 min on 2 cores
    python -m benchmarks smoke --out DIR    # tiny corpus, a minute: CI runs it

`all` runs each part in its own child process (one process tree, a clean interpreter each, so
one contestant's model or threads never weigh on the next) and writes
`<out>/<name>.json` and `<out>/<name>.md`. The parts also run alone: `raw`, `e2e`, `peer`,
`ceiling`, `peer-ceiling`, each printing its JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import machine
from benchmarks.corpus import PY_DOCS

RESULTS = Path(__file__).resolve().parent / "results"
MODEL_PARTS = (("raw", "raw"), ("kubeingest", "e2e"), ("llamaindex", "peer"))
# The options a part needs, handed down from `all` to each child process.
CHILD_OPTIONS = ("corpus", "chunks", "chunk_tokens", "chunk_overlap", "batch", "ceiling_chunks",
                 "ceiling_batch", "chunk_chars", "processes", "out")
SMOKE = ["--chunks", "48", "--repeat", "1", "--batch", "16", "--ceiling-chunks", "3000",
         "--ceiling-batch", "64", "--processes", "1,2"]


def _args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    ap.add_argument("part", choices=["all", "smoke", "raw", "e2e", "peer", "ceiling",
                                     "peer-ceiling"])
    ap.add_argument("--corpus", type=Path, default=PY_DOCS,
                    help="folder of .txt/.rst documents (default: python3.11-doc sources)")
    ap.add_argument("--chunks", type=int, default=512, help="chunks the model contestants embed")
    ap.add_argument("--repeat", type=int, default=3,
                    help="rounds of the model contestants, interleaved; medians are reported")
    ap.add_argument("--chunk-tokens", type=int, default=200)
    ap.add_argument("--chunk-overlap", type=int, default=20)
    ap.add_argument("--batch", type=int, default=64, help="texts per embedding batch, all three")
    ap.add_argument("--ceiling-chunks", type=int, default=200_000)
    ap.add_argument("--ceiling-batch", type=int, default=256)
    ap.add_argument("--chunk-chars", type=int, default=512, help="ceiling chunk size")
    ap.add_argument("--processes", default="1,2,4", help="embedder/sink counts for the ceiling")
    ap.add_argument("--profile", action="store_true",
                    help="(parts) cProfile the worker processes of e2e / the first ceiling run")
    ap.add_argument("--no-profile", action="store_true",
                    help="`all` skips its profiled runs (extra, smaller runs of e2e and ceiling)")
    ap.add_argument("--skip", default="", help="parts `all` leaves out, e.g. peer,ceiling")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--name", default="latest", help="file name of the results, without suffix")
    ap.add_argument("--json", type=Path, help="(parts) write the part's JSON here")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.part in ("all", "smoke"):
        if args.part == "smoke":
            args = _args(["all", *SMOKE, *_passed_through(argv)])
        run_all(args, argv if argv is not None else sys.argv[1:])
        return
    result = run_part(args)
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    else:
        print(text)


def _passed_through(argv: list[str] | None) -> list[str]:
    """Options given with `smoke` (e.g. --out) override its tiny defaults."""
    rest = list(argv if argv is not None else sys.argv[1:])
    rest.remove("smoke")
    return rest


def run_part(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks import contestants
    from benchmarks.corpus import model_chunks

    profile_dir = args.out / "profiles" if args.profile else None
    if args.part == "peer-ceiling":
        from benchmarks.ceiling import peer_ceiling

        return peer_ceiling(args.corpus, args.ceiling_chunks, batch=args.ceiling_batch,
                            chunk_chars=args.chunk_chars)
    if args.part == "ceiling":
        from benchmarks.ceiling import ceiling

        counts = [int(n) for n in args.processes.split(",") if n]
        return asyncio.run(ceiling(args.corpus, args.ceiling_chunks, counts,
                                   batch=args.ceiling_batch, chunk_chars=args.chunk_chars,
                                   profile_dir=profile_dir))
    chunks = model_chunks(args.corpus, args.chunks, args.chunk_tokens, args.chunk_overlap)
    if args.part == "raw":
        return contestants.raw_model(chunks, args.batch)
    if args.part == "peer":
        return contestants.llamaindex(chunks, args.batch)
    return asyncio.run(contestants.kubeingest_e2e(
        chunks, args.batch, profile_dir=profile_dir / "e2e" if profile_dir else None))


def run_all(args: argparse.Namespace, argv: list[str]) -> None:
    from benchmarks.corpus import model_chunks
    from benchmarks.profiling import summarize_dir
    from benchmarks.report import markdown, ratios

    skip = set(filter(None, args.skip.split(",")))
    chunks = model_chunks(args.corpus, args.chunks, args.chunk_tokens, args.chunk_overlap)
    if len(chunks) < args.chunks:
        raise SystemExit(f"{args.corpus} gives only {len(chunks)} chunks; lower --chunks")
    profiles = args.out / "profiles"
    for old in profiles.rglob("*.prof"):
        old.unlink()
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m benchmarks " + shlex.join(argv),
        "machine": machine.facts(_redis_server_version()),
    }
    # Rounds interleave the contestants (raw, kubeingest, LlamaIndex, raw, ...) so a slow
    # spell of a shared machine hits all of them; each reports its median round.
    rounds: dict[str, list[dict[str, Any]]] = {k: [] for k, part in MODEL_PARTS if part not in skip}
    for _ in range(args.repeat):
        for key, part in MODEL_PARTS:
            if key in rounds:
                rounds[key].append(_child(part, args))
    contestants = [{"key": key, **_median(runs)} for key, runs in rounds.items()]
    if contestants:
        result["models"] = {
            "corpus": str(args.corpus), "chunks": len(chunks), "batch": args.batch,
            "chunk_tokens": args.chunk_tokens, "chunk_overlap": args.chunk_overlap,
            "mean_chunk_chars": round(sum(map(len, chunks)) / len(chunks), 1),
            "contestants": contestants,
        }
    if "ceiling" not in skip:
        result["ceiling"] = _child("ceiling", args)
        if "peer-ceiling" not in skip:
            result["ceiling"]["peer"] = _child("peer-ceiling", args)
    if not args.no_profile:
        # Separate, smaller runs: the timed runs above never carry the profiler's overhead.
        if "e2e" not in skip:
            _child("e2e", args, profile=True, chunks=min(args.chunks, 256))
        if "ceiling" not in skip:
            _child("ceiling", args, profile=True, processes="1",
                   ceiling_chunks=min(args.ceiling_chunks, 50_000))
        result["profiles"] = summarize_dir(profiles)
    result["ratios"] = ratios(result)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    (args.out / f"{args.name}.md").write_text(table + "\n")
    print(table)
    print(f"wrote {args.out / args.name}.json and .md")


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(runs, key=lambda r: float(r["chunks_per_s"]))
    return {**ordered[(len(ordered) - 1) // 2],
            "rounds_chunks_per_s": [r["chunks_per_s"] for r in runs]}


def _child(part: str, args: argparse.Namespace, *, profile: bool = False,
           **overrides: object) -> dict[str, Any]:
    """One part in a fresh interpreter: its imports, threads and memory end with it."""
    opts = {**vars(args), **overrides}
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        cmd = [sys.executable, "-m", "benchmarks", part, "--json", f.name]
        for name in CHILD_OPTIONS:
            cmd += [f"--{name.replace('_', '-')}", str(opts[name])]
        if profile:
            cmd.append("--profile")
        print(f"== {part}{' (profiled)' if profile else ''}", flush=True)
        subprocess.run(cmd, check=True)
        data: dict[str, Any] = json.loads(Path(f.name).read_text())
    print(json.dumps(data), flush=True)
    return data


def _redis_server_version() -> str | None:
    try:
        out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return next((w.split("=", 1)[1] for w in out.split() if w.startswith("v=")), out.strip())


if __name__ == "__main__":
    main()
