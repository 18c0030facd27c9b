"""The operator's own metrics (shared ones live in kubeingest.metrics)."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from prometheus_client import Counter, Gauge, Histogram

from kubeingest.metrics import LATENCY_BUCKETS, NS

P = ParamSpec("P")
R = TypeVar("R")

HANDLER_SECONDS = Histogram(
    f"{NS}_operator_handler_seconds", "Duration of the operator's handlers.", ["handler"],
    buckets=LATENCY_BUCKETS,
)
HANDLER_ERRORS = Counter(
    f"{NS}_operator_handler_errors_total", "Handler runs that raised (kopf retries them).",
    ["handler"],
)


class _JobsByPhase:
    def __init__(self) -> None:
        self.gauge = Gauge(f"{NS}_jobs", "IngestionJobs known to this operator, by phase.",
                           ["phase"])
        for phase in ("Pending", "Running", "Succeeded", "Failed", "Suspended"):
            self.gauge.labels(phase=phase).set(0)

    def refresh(self, phases: dict[str, str]) -> None:
        counts: dict[str, int] = {}
        for phase in phases.values():
            counts[phase] = counts.get(phase, 0) + 1
        for phase in ("Pending", "Running", "Succeeded", "Failed", "Suspended"):
            self.gauge.labels(phase=phase).set(counts.get(phase, 0))


JOBS_BY_PHASE = _JobsByPhase()


def observe_handler(name: str) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    def wrap(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(fn)
        async def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            started = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            except Exception:
                HANDLER_ERRORS.labels(handler=name).inc()
                raise
            finally:
                HANDLER_SECONDS.labels(handler=name).observe(time.perf_counter() - started)

        return inner

    return wrap


__all__ = ["HANDLER_ERRORS", "HANDLER_SECONDS", "JOBS_BY_PHASE", "Any", "observe_handler"]
