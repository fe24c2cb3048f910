"""Logging for a running node: one line per event, as text for people or JSON for log shippers.

    text: 2026-11-26T17:00:00.123Z INFO  pausenet.node.node  node lab-a up: …
    json: {"ts": "2026-11-26T17:00:00.123Z", "level": "INFO", "logger": "pausenet.node",
           "msg": "node lab-a up: …", "member": "lab-a"}

Both go to stderr (stdout is left for what a command prints on purpose). pausenet's own loggers
log at the chosen level; the libraries under it (gRPC, aiosqlite) only from WARNING up, so an
operator reads what the node does, not how its dependencies do it.

With `hold=True` records are held back until `release()`: a node that fails to start then says
so in one line (`discard()` drops what was held), and one that starts logs everything.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

__all__ = [
    "LOG_FORMATS",
    "JsonFormatter",
    "LogFormat",
    "LogSetup",
    "TextFormatter",
    "iso_ms",
    "setup_logging",
]

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")

_HANDLER_NAME = "pausenet-cli"
_LIBRARY_LEVEL = logging.WARNING


def iso_ms(seconds: float) -> str:
    """'2026-11-26T17:00:00.123Z': UTC, millisecond precision."""
    ms = int(seconds * 1000)
    dt = datetime.fromtimestamp(ms // 1000, UTC)
    return f"{dt.strftime('%Y-%m-%dT%H:%M:%S')}.{ms % 1000:03d}Z"


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"{iso_ms(record.created)} {record.levelname:<5} {record.name}  {record.getMessage()}"
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, member, and exc when there is one."""

    def __init__(self, member: str) -> None:
        super().__init__()
        self.member = member

    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, Any] = {
            "ts": iso_ms(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "member": self.member,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for k, v in fields.items():
                obj.setdefault(str(k), v)
        if record.exc_info:
            obj["exc"] = self.formatException(record.exc_info)
        return json.dumps(obj, ensure_ascii=False, default=str)


class LogSetup:
    """The handler installed on the root logger, and a hold on its output (see the module doc)."""

    def __init__(self, handler: logging.Handler, held: logging.handlers.MemoryHandler | None):
        self.handler = handler
        self._held = held

    def release(self) -> None:
        """Write the records held so far, and log directly from now on."""
        self._unhold(keep=True)

    def discard(self) -> None:
        """Drop the records held so far, and log directly from now on."""
        self._unhold(keep=False)

    def _unhold(self, *, keep: bool) -> None:
        held, self._held = self._held, None
        if held is None:
            return
        root = logging.getLogger()
        root.addHandler(self.handler)
        root.removeHandler(held)
        if not keep:
            held.buffer.clear()
        held.flush()
        held.setTarget(None)
        held.close()


def setup_logging(
    level: str,
    fmt: LogFormat = "text",
    *,
    member: str = "",
    stream: TextIO | None = None,
    hold: bool = False,
) -> LogSetup:
    """Send log records to stderr (or `stream`) in `fmt`; replaces an earlier setup's handler.

    `level` is a name (debug, info, warning, error). Extra structured fields ride on
    `extra={"fields": {...}}` and appear in JSON only. With `hold`, records wait for
    `release()` or `discard()` on the result.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    if fmt not in LOG_FORMATS:
        raise ValueError(f"unknown log format {fmt!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter(member) if fmt == "json" else TextFormatter())
    held: logging.handlers.MemoryHandler | None = None
    if hold:
        # flushLevel above CRITICAL: nothing is written before release()
        held = logging.handlers.MemoryHandler(
            capacity=100_000, flushLevel=logging.CRITICAL + 1, target=handler
        )
        held.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    for h in list(root.handlers):
        if h.get_name() == _HANDLER_NAME:
            root.removeHandler(h)
    root.addHandler(held if held is not None else handler)
    root.setLevel(min(numeric, _LIBRARY_LEVEL))
    logging.getLogger("pausenet").setLevel(numeric)
    for lib in ("grpc", "aiosqlite", "asyncio"):
        logging.getLogger(lib).setLevel(max(numeric, _LIBRARY_LEVEL))
    return LogSetup(handler, held)
