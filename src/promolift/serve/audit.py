"""Append-only audit log of decisions, and keyed pseudonyms of customer ids.

One JSON line per decision: time, request id, who asked (API key name), model version, campaign,
pseudonymized customer id, arm, expected cost and profit, and whether the budget limited it. The
file is opened in append mode (``O_APPEND``: every write lands at the end, also with several
worker processes) and never rewritten; each request's lines go out in one ``write`` call.

Durability (``audit_fsync``): every request's lines are written to the OS before the response is
sent, so a crash of the service loses nothing. ``always`` also fsyncs each request (survives a
power cut; about a millisecond per request on SSDs), ``interval`` fsyncs at most every
``interval`` seconds (a power cut may lose that many seconds), ``never`` leaves it to the OS.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

__all__ = ["AuditLog", "Pseudonymizer"]


class Pseudonymizer:
    """Keyed HMAC-SHA256 pseudonyms: stable for one key, not reversible without it.

    Examples
    --------
    >>> p = Pseudonymizer(b"secret")
    >>> p("c-1") == p("c-1") != Pseudonymizer(b"other")("c-1")
    True
    >>> len(p("c-1"))
    32
    """

    def __init__(self, key: bytes | None = None):
        self.stable = key is not None
        self._key = key if key is not None else secrets.token_bytes(32)

    def __call__(self, customer_id: object) -> str:
        return hmac.new(self._key, str(customer_id).encode("utf-8", "surrogateescape"),
                        hashlib.sha256).hexdigest()[:32]

    def many(self, ids: Sequence[object]) -> list[str]:
        return [self(i) for i in ids]


class AuditLog:
    """Append-only JSON-lines file (thread-safe; see the module docstring for fsync)."""

    def __init__(self, path: str | Path, fsync: Literal["always", "interval", "never"] = "interval",
                 interval: float = 1.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self.interval = interval
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        self._lock = threading.Lock()
        self._last_sync = time.monotonic()
        self._dirty = False

    def write(self, records: Sequence[dict]) -> None:
        """Append the records (one line each) in one write."""
        if not records:
            return
        data = "".join(json.dumps(r, separators=(",", ":"), default=str) + "\n" for r in records).encode()
        with self._lock:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
            now = time.monotonic()
            if self.fsync == "always" or (self.fsync == "interval" and now - self._last_sync >= self.interval):
                os.fsync(self._fd)
                self._last_sync, self._dirty = now, False
            else:
                self._dirty = True

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                if self._dirty and self.fsync != "never":
                    os.fsync(self._fd)
                os.close(self._fd)
                self._fd = -1
