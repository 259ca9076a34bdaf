"""What decoding bytes nobody vouches for raises when they are not what was written.

msgspec's own errors, a ``UnicodeDecodeError`` for bad text, and a ``RecursionError``
for nesting deeper than the interpreter allows (msgspec counts depth against the
interpreter's recursion limit). Network input is bounded in size and depth before it
is decoded (``wire/shape.py``); files read at start and backups are not, so every
decoder of them catches all of these and names the file rather than crash with a
traceback. (A module of its own, not ``errors.py``: the CLI imports that one at start
and must not load msgspec for ``--version``.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, TypeVar

import msgspec

from resonetics.errors import StorageCorruption

UNREADABLE: Final = (msgspec.MsgspecError, UnicodeDecodeError, RecursionError)

T = TypeVar("T")


def snapshot_slice(
    decoder: msgspec.json.Decoder[T], parts: Sequence[msgspec.Raw], *, what: str, first: int
) -> T:
    """``parts`` (the JSON of consecutive items of a snapshot, ``first`` the first's
    index) decoded as one array; ``StorageCorruption`` naming ``what`` and the range if
    they are unreadable. How a snapshot's restore reads its rows a slice per step."""
    try:
        return decoder.decode(b"[" + b",".join(parts) + b"]")
    except UNREADABLE as exc:
        where = f"{first}-{first + len(parts) - 1}"
        raise StorageCorruption("snapshot", f"{what} unreadable in {where}: {exc}") from None


__all__ = ["UNREADABLE", "snapshot_slice"]
