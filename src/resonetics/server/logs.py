"""Structured log lines: every line names the node, its term and its role."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable


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


def configure_logging(node_id: str, view: Callable[[], tuple[int, str]], level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s %(levelname)s node=%(node)s term=%(term)s role=%(role)s "
            "%(name)s: %(message)s"
        )
    )
    handler.addFilter(NodeContextFilter(node_id, view))
    root = logging.getLogger("resonetics")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


__all__ = ["NodeContextFilter", "configure_logging"]
