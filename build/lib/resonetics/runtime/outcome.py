"""The answer to one client operation, as the driver hands it to whoever asked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from resonetics.wire import codes


class Outcome(msgspec.Struct, frozen=True):
    """``code`` is a wire code (``wire.codes``); ``result`` is the op's result on ``OK``.

    A msgspec Struct rather than a frozen dataclass: one is built per answer, and a
    frozen dataclass pays an ``object.__setattr__`` per field (430 ns against 70).
    """

    code: str
    result: Any = None
    dedup: bool = False
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.code == codes.OK


OnDone = Callable[[Outcome], None]

__all__ = ["OnDone", "Outcome"]
