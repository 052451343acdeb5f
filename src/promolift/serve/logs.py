"""Structured JSON logs: one line per request on the ``promolift.serve`` logger.

Lines carry the request id, method, route, status, latency, key name, number of customers and
model version; never a raw customer id (the audit log has keyed pseudonyms only).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

__all__ = ["JsonFormatter", "configure_logging", "logger"]

logger = logging.getLogger("promolift.serve")


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object: time, level, message and the ``extra`` fields."""

    _skip = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
               "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        out.update({k: v for k, v in record.__dict__.items() if k not in self._skip})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, separators=(",", ":"))


def configure_logging(level: str = "info") -> None:
    """Send ``promolift.serve`` logs as JSON lines to stderr (idempotent)."""
    logger.setLevel(level.upper())
    if not any(getattr(h, "_promolift", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler._promolift = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False
