"""Torn writes: damage the tail of a stopped node's ``log.jsonl`` the way a crash would.

A crash during an append leaves the last line torn: a prefix of the line
being written (no newline), or bytes that never formed a valid line. The
node must cut that tail and go on (DESIGN §4, Recovery). The log is allocated
ahead (zeros after its last line, ``storage/log_file.py``), so a tear is
written where the next line would have gone: over the first of those zeros.

We only ever *add* a torn tail; we never cut into a line that is already
complete. A complete line was fsynced before the node acknowledged it (it may
count in a commit quorum), so removing it models losing acknowledged data on
a disk that promised durability, which Raft does not claim to survive.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

TearKind = Literal["torn_line", "garbage", "garbage_line"]
TEAR_KINDS: tuple[TearKind, ...] = ("torn_line", "garbage", "garbage_line")
#: Most garbage bytes appended by one tear.
GARBAGE_BYTES_MAX = 200


@dataclass(frozen=True, slots=True)
class Tear:
    """What was done to a log file, for the fault log."""

    path: str
    kind: TearKind
    size_before: int
    bytes_added: int


def tear_tail(path: Path, kind: TearKind, rng: random.Random) -> Tear:
    """Append a torn tail of ``kind`` to the log at ``path`` (which must not be in use).

    * ``torn_line``: a strict prefix of the last complete line (a re-write of
      the next entry that stopped part-way), no newline;
    * ``garbage``: random non-newline bytes, no newline;
    * ``garbage_line``: random non-newline bytes and a newline (a complete
      last line whose checksum cannot match).
    """
    data = path.read_bytes() if path.exists() else b""
    lines = data.rstrip(b"\0")  # what follows the last line is space allocated ahead
    tail = _tail_bytes(lines, kind, rng)
    with path.open("r+b" if path.exists() else "wb") as handle:
        handle.seek(len(lines))
        handle.write(tail)
        handle.flush()
        os.fsync(handle.fileno())
    return Tear(str(path), kind, len(lines), len(tail))


def _tail_bytes(data: bytes, kind: TearKind, rng: random.Random) -> bytes:
    if kind == "torn_line":
        last = _last_line(data)
        if len(last) >= 2:
            return last[: rng.randrange(1, len(last))]
        kind = "garbage"  # nothing to tear a copy of: fall back to garbage
    garbage = bytes(rng.choice(_GARBAGE_ALPHABET) for _ in range(rng.randint(1, GARBAGE_BYTES_MAX)))
    return garbage + (b"\n" if kind == "garbage_line" else b"")


def _last_line(data: bytes) -> bytes:
    """The last complete line without its newline (empty when there is none)."""
    body = data[: data.rfind(b"\n")] if b"\n" in data else b""
    return body[body.rfind(b"\n") + 1 :]


_GARBAGE_ALPHABET = bytes(b for b in range(256) if b != ord("\n"))

__all__ = ["TEAR_KINDS", "Tear", "TearKind", "tear_tail"]
