"""Structured log lines: every line names the node, its term and its role.

Two formats (``serve --log-format``): ``text``, one readable line per record, and
``json``, one JSON object per line with fixed keys (``ts``, ``level``, ``logger``,
``event``, ``node``, ``term``, ``role``, ``message``) plus an event's own fields
(``server/events.py``), which is what log shippers (Vector, Fluent Bit,
Promtail, journald's JSON export) parse without a grok pattern. A field never
overwrites a fixed key: it is renamed ``event_<key>`` instead (an election's
``event_term`` beside the node's current ``term``).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime

#: Keys every JSON line has, in this order; event fields may not replace them.
JSON_KEYS = ("ts", "level", "logger", "event", "node", "term", "role", "message")


class NodeContextFilter(logging.Filter):
    """Adds ``node``, ``term`` and ``role`` to every record from a live view of the node."""

    def __init__(self, node_id: str, view: Callable[[], tuple[int, str]]) -> None:
        super().__init__()
        self.node_id = node_id
        self.view = view

    def filter(self, record: logging.LogRecord) -> bool:
        term, role = self.view()
        record.node = self.node_id
        record.term = term
        record.role = role
        return True


TEXT_FORMAT = (
    "%(asctime)s %(levelname)s node=%(node)s term=%(term)s role=%(role)s %(name)s: %(message)s"
)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in messages are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": getattr(record, "event", None),
            "node": getattr(record, "node", None),
            "term": getattr(record, "term", None),
            "role": getattr(record, "role", None),
            "message": record.getMessage(),
        }
        fields = getattr(record, "event_fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                line[f"event_{key}" if key in JSON_KEYS else str(key)] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def make_formatter(log_format: str) -> logging.Formatter:
    """The formatter for ``--log-format`` (``text`` or ``json``)."""
    if log_format == "json":
        return JsonFormatter()
    if log_format == "text":
        return logging.Formatter(TEXT_FORMAT)
    raise ValueError(f"log format must be text or json, got {log_format!r}")


def configure_logging(
    node_id: str, view: Callable[[], tuple[int, str]], level: str, log_format: str = "text"
) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(make_formatter(log_format))
    handler.addFilter(NodeContextFilter(node_id, view))
    root = logging.getLogger("resonetics")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


__all__ = ["JSON_KEYS", "JsonFormatter", "NodeContextFilter", "configure_logging", "make_formatter"]
