"""Logging setup: one scannable line per outcome by default, JSON lines for clusters."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

# Extra attributes that, when passed with `extra=`, are carried into JSON lines.
CONTEXT_FIELDS = ("trace_id", "correlation_id", "job", "task_id")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for f in CONTEXT_FIELDS:
            if hasattr(record, f):
                line[f] = getattr(record, f)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Libraries' per-request chatter is not an outcome.
    for noisy in ("httpx", "httpcore", "urllib3", "sentence_transformers", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
