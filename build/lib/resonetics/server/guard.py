"""Nothing a peer or client sends raises out of a connection's handler.

Every expected defect of input is a typed ``ResoneticsError`` answered on the
connection (``BAD_REQUEST``, ``TOO_LARGE``...). Anything else escaping the
per-line handler is a bug in this node, not the sender's fault; but the sender
can repeat it, so it must cost that connection only: ``HandlerGuard.run`` catches
it, counts it (``handler_errors`` in the ``status`` op), logs the first of each
exception type with its traceback (a flood of the same bug must not flood the
log), and tells the caller to close the connection: after an unexpected error
the stream's state cannot be trusted.

The driver loop is not guarded here: a failure there is a broken invariant or
a failing disk, and stops the node on purpose (``NodeServer._driver_failed``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final, ParamSpec

log = logging.getLogger("resonetics.server")

_P = ParamSpec("_P")

#: Exception types whose traceback has been logged, at most (a bound on the set).
LOGGED_TYPES_MAX: Final = 256


class HandlerGuard:
    """Runs per-line handlers; an unexpected exception closes that connection only."""

    __slots__ = ("_logged", "errors")

    def __init__(self) -> None:
        #: Unexpected exceptions caught, in total (each closed one connection).
        self.errors = 0
        self._logged: set[str] = set()

    def run(self, handler: Callable[_P, None], *args: _P.args, **kwargs: _P.kwargs) -> bool:
        """Call ``handler``; False (close the connection) if it raised anything."""
        try:
            handler(*args, **kwargs)
        except Exception as exc:  # a bug: contained to this connection, counted, logged once
            self.failed(exc)
            return False
        return True

    def failed(self, exc: Exception) -> None:
        """Count ``exc``; log it with its traceback if its type was not logged before."""
        self.errors += 1
        name = f"{type(exc).__module__}.{type(exc).__qualname__}"
        if name in self._logged or len(self._logged) >= LOGGED_TYPES_MAX:
            return
        self._logged.add(name)
        log.error(
            "unexpected %s while handling a line; closing that connection "
            "(later %s errors are only counted in status.handler_errors)",
            name,
            name,
            exc_info=exc,
        )


__all__ = ["LOGGED_TYPES_MAX", "HandlerGuard"]
