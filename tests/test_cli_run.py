"""`kubeingest run` as a user runs it: from the repository, on embedded defaults."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration


def kubeingest(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "kubeingest.cli", *args], cwd=cwd, env=env, capture_output=True,
        text=True, timeout=600, check=False,
    )


def test_quickstart_example_runs_and_is_queryable(tmp_path: Path) -> None:
    qdrant = tmp_path / "qdrant"
    res = kubeingest("run", "examples/quickstart.yaml", "--qdrant-path", str(qdrant))
    assert res.returncode == 0, res.stderr
    summary = res.stdout.strip().splitlines()[0]
    assert summary.startswith("Succeeded:"), res.stdout
    stored, total = summary.split()[1].split("/")
    assert stored == total and int(total) > 0
    assert f"; {total} points in Qdrant" in summary

    q = kubeingest("query", "How do chunks reach the embedding pods?", "-c", "kubeingest-docs",
                   "-k", "3", "--qdrant-path", str(qdrant))
    assert q.returncode == 0, q.stderr
    lines = q.stdout.splitlines()
    assert lines[0].startswith("1. score=")
    assert any("(document note-streams, chunk 0)" in line for line in lines), q.stdout


def test_bad_manifest_is_one_line_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: kubeingest.io/v1alpha1\nkind: IngestionJob\nmetadata: {name: bad}\n"
        "spec:\n  sources: [{inline: {documents: [{text: hi}]}}]\n"
        "  chunking: {size: 100, overlap: 100}\n  destination: {collection: c}\n"
    )
    res = kubeingest("run", str(bad))
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "spec.chunking" in lines[0] and "overlap (100) must be smaller than size (100)" in lines[0]

    bad.write_text(bad.read_text().replace("overlap: 100", "overlap: 10").replace(
        "destination: {collection: c}", "destination: {collection: c}\n  embedding: {backend: magic}"))
    res = kubeingest("run", str(bad))
    assert res.returncode == 2 and "spec.embedding.backend" in res.stderr


def test_empty_and_undecodable_documents_are_reported_not_fatal(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.md").write_text("A perfectly ordinary paragraph about ingestion. " * 30)
    (docs / "empty.txt").write_text("   \n")
    (docs / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    with gzip.open(docs / "zipped.rst.gz", "wt") as f:
        f.write("Compressed reStructuredText is read transparently. " * 10)
    job = tmp_path / "job.yaml"
    job.write_text(
        "apiVersion: kubeingest.io/v1alpha1\nkind: IngestionJob\nmetadata: {name: mixed}\n"
        f"spec:\n  sources: [{{path: {{path: {docs}, glob: '*'}}}}]\n"
        "  destination: {collection: mixed}\n"
    )
    res = kubeingest("run", str(job), "--backend", "hash", "--qdrant-path", str(tmp_path / "q"))
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    assert "from 4 documents (2 failed)" in out
    assert "failed document empty.txt: empty document" in out
    assert "failed document latin1.txt: not UTF-8 text" in out
