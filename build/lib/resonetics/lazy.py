"""Lazy package exports: a package's names are imported on first use.

Why: a one-shot client command must not pay for the server, the simulator or
cryptography just because a package ``__init__`` re-exports them (start-up time).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_getattr(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``exports[name]`` (a module path) on first use."""

    def load(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return load


__all__ = ["lazy_getattr"]
