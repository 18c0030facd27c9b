"""The benchmark suite's smoke run: the code behind the published figures cannot rot.

Tiny corpus, same command a reader runs (`python -m benchmarks smoke`); it asserts that every
contestant stored every chunk and that the table and JSON a reader compares are written.
Throughput is not asserted: a timed test on a shared CI machine would measure the machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration


def test_smoke_run_writes_every_comparison(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "benchmarks", "smoke", "--out", str(tmp_path)],
                   cwd=REPO, check=True, timeout=600)
    result = json.loads((tmp_path / "latest.json").read_text())
    table = (tmp_path / "latest.md").read_text()

    models = result["models"]
    assert [c["key"] for c in models["contestants"]] == ["raw", "kubeingest", "llamaindex"]
    for c in models["contestants"]:
        assert c["chunks"] == models["chunks"] == 48, c
        assert c["chunks_per_s"] > 0
    runs = result["ceiling"]["runs"]
    assert [r["processes"] for r in runs] == [1, 2]
    assert all(r["chunks"] == result["ceiling"]["chunks"] >= 3000 for r in runs)
    for r in runs:
        assert r["memory"]["sink"]["peak_rss_mb"] > 0 and r["redis_peak_used_mb"] > 0
        assert r["cpu_s"]["embedder"] > 0 and r["cpu_s"]["sink"] > 0
    assert result["ceiling"]["peer"]["chunks"] == result["ceiling"]["chunks"]
    assert set(result["ratios"]) == {"kubeingest_over_raw", "kubeingest_over_llamaindex",
                                     "ceiling_one_process_chunks_per_s",
                                     "ceiling_over_llamaindex_hash"}
    assert result["machine"]["cores"] and result["machine"]["versions"]["redis-server"]
    # Profiles of the e2e workers and of the first ceiling run, summed by category.
    labels = {p["label"] for p in result["profiles"]}
    assert {"e2e/embedder-0", "e2e/sink-0", "ceiling-1/embedder-0", "ceiling-1/sink-0"} <= labels
    assert all(p["busy_s"] > 0 and p["top"] for p in result["profiles"])

    for heading in ("| raw sentence-transformers encode |", "| kubeingest end to end |",
                    "| LlamaIndex IngestionPipeline |", "## Ceiling: `hash` backend",
                    "## Against the targets", "## Profile:"):
        assert heading in table


def test_kubeingest_refuses_to_race_on_different_texts(tmp_path: Path) -> None:
    """The fairness check: chunk files that kubeingest would read differently stop the run."""
    from benchmarks.corpus import check_kubeingest_sees, chunk_files_spec, write_chunk_files

    chunks = ["first chunk", "second chunk"]
    write_chunk_files(tmp_path, chunks)
    spec = chunk_files_spec(tmp_path, 16, "hash", "c")
    check_kubeingest_sees(spec, chunks)
    (tmp_path / "c0000001.txt").write_text("second chunk, edited")
    with pytest.raises(SystemExit, match="different texts"):
        check_kubeingest_sees(spec, chunks)
