"""The `kubeingest` command: one entry point, a subcommand per process kind.

Exit codes: 0 success; 1 the job ran and failed (or a runtime error); 2 bad input (manifest,
arguments), with a one-line message naming the field.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from kubeingest.logs import configure_logging
from kubeingest.names import DEFAULT_PREFIX
from kubeingest.spec import IngestionJobManifest, SpecError, load_manifest

logger = logging.getLogger("kubeingest")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = _parser().parse_args(argv)
    level = args.log_level
    if args.command in ("run", "query", "submit") and "KUBEINGEST_LOG_LEVEL" not in os.environ \
            and level == "INFO":
        level = "WARNING"  # interactive commands: the progress bar and summary say it all
    configure_logging(level, args.log_format)
    handler = {
        "run": _cmd_run,
        "embedder": _cmd_embedder,
        "sink": _cmd_sink,
        "api": _cmd_api,
        "operator": _cmd_operator,
        "query": _cmd_query,
        "validate": _cmd_validate,
        "submit": _cmd_submit,
    }[args.command]
    return int(handler(args))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kubeingest", description=__doc__.splitlines()[0])
    p.add_argument("--log-level", default=os.environ.get("KUBEINGEST_LOG_LEVEL", "INFO"))
    p.add_argument("--log-format", choices=["text", "json"],
                   default=os.environ.get("KUBEINGEST_LOG_FORMAT", "text"))
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run an IngestionJob manifest locally, in one process")
    run.add_argument("manifest", type=Path)
    run.add_argument("--redis-url", default=os.environ.get("KUBEINGEST_REDIS_URL"),
                     help="use this Redis instead of the in-process one "
                     "(default: $KUBEINGEST_REDIS_URL)")
    run.add_argument("--qdrant-url", default=os.environ.get("KUBEINGEST_QDRANT_URL"),
                     help="use this Qdrant server instead of local mode "
                     "(default: $KUBEINGEST_QDRANT_URL)")
    run.add_argument("--qdrant-path", default=".kubeingest/qdrant",
                     help="local-mode storage folder (default: %(default)s)")
    run.add_argument("--backend", help="override spec.embedding.backend (e.g. hash)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")

    sub.add_parser("embedder", help="embedding service (settings from KUBEINGEST_* env)")
    sub.add_parser("sink", help="ingestion worker: results into Qdrant (KUBEINGEST_* env)")
    sub.add_parser("api", help="HTTP API: POST /api/v1/embeddings/generate, health, metrics")
    op = sub.add_parser("operator", help="the kopf operator reconciling IngestionJobs")
    op.add_argument("--namespace", "-n", action="append", default=[],
                    help="watch this namespace (repeatable); default: all namespaces")

    q = sub.add_parser("query", help="print the chunks nearest to a text")
    q.add_argument("text")
    q.add_argument("-c", "--collection", required=True)
    q.add_argument("-k", "--top-k", type=int, default=5)
    q.add_argument("--qdrant-url", default=os.environ.get("KUBEINGEST_QDRANT_URL"))
    q.add_argument("--qdrant-path", default=".kubeingest/qdrant")
    q.add_argument("--model", default=None, help="embedding model (default: the job default)")
    q.add_argument("--backend", default="sentence-transformers")

    v = sub.add_parser("validate", help="check an IngestionJob manifest")
    v.add_argument("manifest", type=Path)

    s = sub.add_parser("submit", help="submit an IngestionJob manifest to the HTTP API")
    s.add_argument("manifest", type=Path)
    s.add_argument("--api", default=os.environ.get("KUBEINGEST_API_URL"),
                   help="the API's base URL, e.g. http://localhost:8080 "
                   "(default: $KUBEINGEST_API_URL)")
    s.add_argument("--api-key", default=os.environ.get("KUBEINGEST_API_KEY"),
                   help="API key (default: $KUBEINGEST_API_KEY)")
    s.add_argument("--watch", action="store_true",
                   help="follow the job's progress until it finishes; exit 1 if it failed")
    s.add_argument("--no-progress", action="store_true", help="no progress bar (with --watch)")
    return p


def _cmd_run(args: argparse.Namespace) -> int:
    from kubeingest.services.local import LocalRunOptions, run_local

    manifest = _manifest_or_none(args.manifest)
    if manifest is None:
        return EXIT_USAGE
    opts = LocalRunOptions(
        redis_url=args.redis_url, qdrant_url=args.qdrant_url, qdrant_path=args.qdrant_path,
        stream_prefix=os.environ.get("KUBEINGEST_STREAM_PREFIX", DEFAULT_PREFIX),
        qdrant_api_key=os.environ.get("KUBEINGEST_QDRANT_API_KEY"), backend=args.backend,
        progress=not args.no_progress,
    )
    result = asyncio.run(run_local(manifest, opts))
    p = result.progress
    collection = manifest.spec.destination.collection
    print(
        f"{result.phase}: {p.chunks_stored}/{p.chunks_total or 0} chunks stored "
        f"({p.chunks_failed} failed) from {p.documents_total} documents "
        f"({p.documents_failed} failed) into {collection!r} in {result.seconds:.1f}s "
        f"({result.chunks_per_s:.0f} chunks/s); {result.points} points in Qdrant"
    )
    for fd in p.failed_documents:
        print(f"  failed document {fd.document}: {fd.reason}")
    for code, n in sorted(p.errors.items()):
        print(f"  {n} chunks failed: {code}")
    return EXIT_OK if result.phase == "Succeeded" else EXIT_FAILED


def _cmd_embedder(_: argparse.Namespace) -> int:
    from kubeingest.services.workers import run_embedder
    from kubeingest.settings import get_embedder_settings

    asyncio.run(run_embedder(get_embedder_settings()))
    return EXIT_OK


def _cmd_sink(_: argparse.Namespace) -> int:
    from kubeingest.services.workers import run_sink
    from kubeingest.settings import get_sink_settings

    asyncio.run(run_sink(get_sink_settings()))
    return EXIT_OK


def _cmd_api(_: argparse.Namespace) -> int:
    from kubeingest.services.api.server import serve

    serve()
    return EXIT_OK


def _cmd_operator(args: argparse.Namespace) -> int:
    from kubeingest.operator.main import run_operator

    return run_operator(namespaces=args.namespace)


def _cmd_query(args: argparse.Namespace) -> int:
    from kubeingest.search import print_results, search

    try:
        hits = asyncio.run(search(
            args.text, args.collection, args.top_k, qdrant_url=args.qdrant_url,
            qdrant_path=args.qdrant_path, model=args.model, backend=args.backend,
            qdrant_api_key=os.environ.get("KUBEINGEST_QDRANT_API_KEY"),
        ))
    except LookupError as e:
        print(f"kubeingest: {e}", file=sys.stderr)
        return EXIT_USAGE
    print_results(hits, sys.stdout)
    return EXIT_OK if hits else EXIT_FAILED


def _manifest_or_none(path: Path) -> IngestionJobManifest | None:
    """The manifest, or None after a one-line error naming the field (exit code 2)."""
    try:
        return load_manifest(path)
    except SpecError as e:
        print(f"kubeingest: invalid manifest: {e}", file=sys.stderr)
        return None


def _cmd_validate(args: argparse.Namespace) -> int:
    m = _manifest_or_none(args.manifest)
    if m is None:
        return EXIT_USAGE
    print(f"{args.manifest}: IngestionJob {m.metadata.name} is valid")
    return EXIT_OK


def _cmd_submit(args: argparse.Namespace) -> int:
    import time

    from kubeingest.client import ApiError, events, progress_from_event, submit
    from kubeingest.services.local import ProgressBar

    if not args.api:
        print("kubeingest: --api URL (or KUBEINGEST_API_URL) is required", file=sys.stderr)
        return EXIT_USAGE
    manifest = _manifest_or_none(args.manifest)
    if manifest is None:
        return EXIT_USAGE
    try:
        accepted = submit(args.api, manifest, args.api_key)
    except ApiError as e:
        print(f"kubeingest: rejected: {e}", file=sys.stderr)
        return EXIT_USAGE if 400 <= e.status < 500 else EXIT_FAILED
    job_id = accepted["id"]
    print(f"ingestion {job_id} accepted ({accepted['name']}, tenant {accepted['tenantId']}, "
          f"collection {accepted['collection']!r})")
    if not args.watch:
        return EXIT_OK
    bar = ProgressBar(sys.stderr, enabled=not args.no_progress)
    started = time.monotonic()
    last: dict[str, object] = {}
    for event in events(args.api, job_id, args.api_key):
        last = event
        elapsed = float(event.get("elapsedSeconds") or time.monotonic() - started)
        p = progress_from_event(event)
        if event["type"] == "final":
            bar.close(p, elapsed)
        elif event["type"] != "deleted":
            bar.update(p, elapsed)
    if last.get("type") != "final":
        print(f"ingestion {job_id}: {last.get('type', 'stream closed')} before it finished")
        return EXIT_FAILED
    print(f"{last['phase']}: {last.get('message', '')}")
    for fd in progress_from_event(last).failed_documents:
        print(f"  failed document {fd.document}: {fd.reason}")
    return EXIT_OK if last["phase"] == "Succeeded" else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
