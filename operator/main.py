"""`kubeingest operator`: run the kopf operator (also runnable as `kopf run -m
kubeingest.operator.handlers`)."""

from __future__ import annotations

import logging
from typing import Any

import kopf
from prometheus_client import start_http_server

from kubeingest.settings import get_operator_settings

logger = logging.getLogger(__name__)


@kopf.on.login()
def login(
    *, logger: logging.Logger | logging.LoggerAdapter[Any], settings: kopf.OperatorSettings,
    **_: Any,
) -> kopf.ConnectionInfo | None:
    url = get_operator_settings().kube_api_url
    if url:
        return kopf.ConnectionInfo(server=url, insecure=True)
    return kopf.login_via_client(logger=logger, settings=settings)


def run_operator(namespaces: list[str]) -> int:
    import kubeingest.operator.handlers  # noqa: F401  # registers the handlers

    settings = get_operator_settings()
    if settings.metrics_port:
        start_http_server(settings.metrics_port)
    liveness = (
        f"http://0.0.0.0:{settings.liveness_port}/healthz" if settings.liveness_port else None
    )
    kopf.run(
        clusterwide=not namespaces, namespaces=namespaces, standalone=True,
        liveness_endpoint=liveness,
    )
    return 0
