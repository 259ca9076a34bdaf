"""The rules of a transaction's shape, shared by the gateway (``wire/txn.py``), the
store (``machine/txn.py``) and the client (``resonetics/txn.py``).

A module of its own, importing nothing of Resonetics, because the client's request validation
needs these three names and a one-shot ``resonetics kv get`` must not pay for the
txn builders and their classes to get them (start-up time).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

TARGETS: Final[tuple[str, ...]] = ("value", "exists", "version", "create_index", "mod_index")
#: The ops each target allows: ordering a JSON value or a boolean makes no sense.
OPS_FOR_TARGET: Final[Mapping[str, tuple[str, ...]]] = {
    "value": ("==", "!="),
    "exists": ("==", "!="),
    "version": ("==", "!=", "<", ">"),
    "create_index": ("==", "!=", "<", ">"),
    "mod_index": ("==", "!=", "<", ">"),
}
OP_TYPES: Final[tuple[str, ...]] = ("put", "delete", "get")

__all__ = ["OPS_FOR_TARGET", "OP_TYPES", "TARGETS"]
