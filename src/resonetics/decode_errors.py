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

from typing import Final

import msgspec

UNREADABLE: Final = (msgspec.MsgspecError, UnicodeDecodeError, RecursionError)

__all__ = ["UNREADABLE"]
