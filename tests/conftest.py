"""Shared fixtures: a real redis-server per test session, per-test stream names, and helpers
to run `kubeingest` worker processes and poll for conditions with a deadline."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
PY_DOCS = Path("/usr/share/doc/python3.11/html/_sources")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(cond: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    """Poll `cond` until it returns a truthy value; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server; see .ci/run)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    import redis

    client = redis.Redis.from_url(url)
    wait_for(lambda: _pings(client), 10, "redis-server to start")
    client.close()
    yield url
    proc.terminate()
    proc.wait(10)


def _pings(client: Any) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


@pytest.fixture
def prefix() -> str:
    """A stream/key prefix of this test's own: tests never share Redis state."""
    return f"t{uuid.uuid4().hex[:10]}"


class Procs:
    """`kubeingest` subprocesses of one test, killed at teardown; logs kept for failures."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, command: str, env: dict[str, str], name: str | None = None) -> subprocess.Popen[bytes]:
        name = name or f"{command}-{len(self.procs)}"
        full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                    "KUBEINGEST_METRICS_PORT": "0", **env}
        with open(self.tmp / f"{name}.log", "wb") as log:  # the child keeps its own fd
            proc = subprocess.Popen(
                [sys.executable, "-m", "kubeingest.cli", command], env=full_env, cwd=self.tmp,
                stdout=log, stderr=subprocess.STDOUT,
            )
        proc.log_path = self.tmp / f"{name}.log"  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.log_path.name} ---\n{p.log_path.read_text(errors='replace')[-3000:]}"  # type: ignore[attr-defined]
            for p in self.procs
        )

    def stop_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture
def procs(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Procs]:
    ps = Procs(tmp_path)
    yield ps
    ps.stop_all()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print(ps.logs())


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep


@pytest.fixture(scope="session")
def py_docs() -> Path:
    """Real documents no one here wrote: the Python tutorial's reStructuredText sources."""
    path = PY_DOCS / "tutorial"
    if not path.is_dir():
        pytest.fail("python3.11-doc is not installed (apt-get install python3.11-doc; see .ci/run)")
    return path


@pytest.fixture(scope="session")
def minilm() -> Any:
    """The bundled all-MiniLM-L6-v2, loaded once: the reference for vector equality."""
    from sentence_transformers import SentenceTransformer

    from kubeingest.models import bundled_minilm_path

    return SentenceTransformer(str(bundled_minilm_path()), device="cpu")
