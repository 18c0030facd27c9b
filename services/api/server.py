"""`kubeingest api`: serve the app with uvicorn (SIGTERM drains in-flight requests)."""

from __future__ import annotations

import uvicorn

from kubeingest.services.api.app import create_app
from kubeingest.settings import get_api_settings


def serve() -> None:
    settings = get_api_settings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                log_level=settings.log_level.lower(), access_log=False)
