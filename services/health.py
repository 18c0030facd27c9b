"""The ops endpoints every long-running worker serves: /metrics, /healthz, /readyz."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator

import uvicorn
from fastapi import FastAPI, Response
from prometheus_client import make_asgi_app

logger = logging.getLogger(__name__)

ReadyCheck = Callable[[], Awaitable[str | None]]  # None when ready, else the reason


def ops_app(ready: ReadyCheck) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(response: Response) -> dict[str, str]:
        reason = await ready()
        if reason is not None:
            response.status_code = 503
            return {"status": "not ready", "reason": reason}
        return {"status": "ready"}

    app.mount("/metrics", make_asgi_app())
    return app


async def serve_ops(port: int, ready: ReadyCheck, stop: asyncio.Event) -> None:
    """Serve until `stop` is set; port 0 disables the server."""
    if port == 0:
        await stop.wait()
        return
    config = uvicorn.Config(
        ops_app(ready), host="0.0.0.0", port=port, log_level="warning",  # noqa: S104  # pod IP
        lifespan="off",
    )
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve())
    await stop.wait()
    server.should_exit = True
    await task


class _QuietServer(uvicorn.Server):
    """Leaves signals to the worker: SIGTERM must drain the batch in hand first."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
