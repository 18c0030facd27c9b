"""The FastAPI application: routers, health, metrics, request limits."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import Counter, Histogram, make_asgi_app
from redis.asyncio import Redis

from kubeingest.services.api import embeddings, events, ingestions
from kubeingest.services.api.deps import parse_api_keys
from kubeingest.services.api.jobs import create_jobs
from kubeingest.settings import ApiSettings
from kubeingest.streams import REDIS_UNAVAILABLE

logger = logging.getLogger(__name__)

HTTP_REQUESTS = Counter(
    "kubeingest_http_requests_total", "HTTP requests by route and status.",
    ["method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "kubeingest_http_request_seconds", "HTTP request latency by route.", ["method", "route"],
)


def create_app(settings: ApiSettings, redis: Redis | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = redis is None
        if settings.redis_url is None and redis is None:
            raise RuntimeError("KUBEINGEST_REDIS_URL is required for the API")
        app.state.redis = redis or Redis.from_url(settings.redis_url.get_secret_value())  # type: ignore[union-attr]
        app.state.jobs = create_jobs(app.state.redis, settings)
        try:
            await app.state.jobs.resume()
        except REDIS_UNAVAILABLE as e:
            # Start anyway: /readyz says why, and the jobs resume with the next restart.
            logger.warning("could not resume ingestions, Redis unreachable: %s", e)
        try:
            yield
        finally:
            await app.state.jobs.close()
            if owned:
                await app.state.redis.aclose()

    app = FastAPI(title="kubeingest", version="0.1.0", lifespan=lifespan,
                  description="Kubernetes-native ingestion for RAG.")
    app.state.settings = settings
    app.state.api_keys = parse_api_keys(
        settings.api_keys.get_secret_value() if settings.api_keys else None
    )
    app.include_router(embeddings.router)
    app.include_router(ingestions.router)
    app.include_router(events.router)

    @app.middleware("http")
    async def limits_and_metrics(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > settings.max_request_bytes:
            return JSONResponse(
                {"detail": f"request body larger than {settings.max_request_bytes} bytes"},
                status_code=413,
            )
        started = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        HTTP_SECONDS.labels(request.method, route).observe(time.perf_counter() - started)
        return response

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz(request: Request, response: Response) -> dict[str, str]:
        try:
            await request.app.state.redis.ping()
        except REDIS_UNAVAILABLE as e:
            response.status_code = 503
            return {"status": "not ready", "reason": f"redis unreachable: {e}"}
        return {"status": "ready"}

    app.mount("/metrics", make_asgi_app())
    return app
