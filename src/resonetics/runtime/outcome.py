"""The answer to one client operation, as the driver hands it to whoever asked."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from resonetics.wire import codes


@dataclass(frozen=True, slots=True)
class Outcome:
    """``code`` is a wire code (``wire.codes``); ``result`` is the op's result on ``OK``."""

    code: str
    result: Any = None
    dedup: bool = False
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.code == codes.OK


OnDone = Callable[[Outcome], None]

__all__ = ["OnDone", "Outcome"]
