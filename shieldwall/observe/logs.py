"""Structured logs: one JSON object a line, for a SIEM or a log shipper to read as is.

Off by default (a person at a terminal reads plain lines); on with `[observe] json_logs =
true` or `SHIELDWALL_OBSERVE__JSON_LOGS=true`. Every record keeps its time (UTC, RFC
3339), level, logger and message, and any `extra={...}` fields the caller passed.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

# Attributes every LogRecord has: anything else on a record came from `extra`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message",
                                                                                "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def setup(*, json_logs: bool, level: int = logging.INFO, logger: str = "shieldwall") -> None:
    """Send `logger`'s records (and its children's) to stderr, as JSON lines or plain
    text; handlers the children already have get the same formatter."""
    formatter: logging.Formatter = JsonFormatter() if json_logs else logging.Formatter(
        "%(message)s")
    root = logging.getLogger(logger)
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
    root.setLevel(level)
    for name, child in [(logger, root), *logging.root.manager.loggerDict.items()]:
        if isinstance(child, logging.Logger) and (name == logger
                                                   or name.startswith(logger + ".")):
            for handler in child.handlers:
                handler.setFormatter(formatter)
