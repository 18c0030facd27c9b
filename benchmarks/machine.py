"""What the numbers were measured on: cores, memory, CPU model, package versions; and the
/proc readings (RSS, CPU seconds) the benchmarks sample while they run."""

from __future__ import annotations

import contextlib
import os
import platform
import socket
from importlib import metadata
from pathlib import Path

DISTRIBUTIONS = ("kubeingest", "torch", "sentence-transformers", "transformers", "redis",
                 "qdrant-client", "numpy", "llama-index-core",
                 "llama-index-embeddings-huggingface", "llama-index-vector-stores-qdrant")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def facts(redis_version: str | None = None) -> dict[str, object]:
    versions = {}
    for dist in DISTRIBUTIONS:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    if redis_version:
        versions["redis-server"] = redis_version
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(_meminfo_kib("MemTotal") / 2**20, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "versions": versions,
    }


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _meminfo_kib(key: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def rss_mb(pid: int | str = "self") -> float:
    """Resident set size now; 0 once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU time the process has used so far (its own threads, not children)."""
    try:
        # Field 2 (comm) may hold spaces: split after its closing parenthesis.
        rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(rest[11]) + int(rest[12])) / CLOCK_TICKS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
