"""``log.jsonl.seal``: the SHA-256 of the log's bytes up to a line boundary, so that a
restart checks only the lines after it (DESIGN §4).

Theory of operation
-------------------
A restart checks every line of ``log.jsonl``: its CRC, and the hash chain from the
anchor on (``storage/log_file.py``). At a million lines that was most of a restart
that had a snapshot to restore (docs/benchmarks.md, "Restart"), for lines this very
node checked before it wrote them: a leader links the entries it creates, a follower
checks the links of those it appends, a restart checks what it loads.

So the log file keeps a running SHA-256 of the bytes it has written and synced
(``LogFile``), and every ``SEAL_EVERY_BYTES`` of growth, after a compaction or a
rewrite, and at a clean close it records ``{"bytes": N, "sha256": H}`` here,
atomically, after the log's own fsync. At the next start ``parse_log`` hashes the
file's first N bytes (one C call, the GIL released: 0.2 s for 350 MB); if they give
H, they are the very bytes this node wrote, so their lines are taken without their
CRCs and their links (their offsets are still found, and they are still decoded),
and the checks start at the first line after them, which must link to the last one
before. Whatever is wrong with a seal (missing, unreadable, past the end of the
file, not ending a line, another digest) makes it count for nothing: every line is
checked, as without one, and a corrupt line is named with its line and index as
before. A seal can make a restart faster, never make it accept bytes it would
refuse: bytes that hash to H are the bytes that were checked.

What it does not change: anyone able to rewrite the log can rewrite the seal, as they
could recompute the CRCs; the chain is what pins history, and followers check every
link they are sent. ``resonetics verify`` ignores seals and checks every line.
"""

from __future__ import annotations

import msgspec

from resonetics.decode_errors import UNREADABLE
from resonetics.storage.fs import FileSystem, atomic_write

#: The log is sealed again once it has grown this much past its last seal (and after
#: a compaction, a rewrite, a clean close): a restart after a crash checks at most
#: about this many bytes of lines one by one (about 45,000 lines of a single write).
SEAL_EVERY_BYTES = 16 * 1024 * 1024

#: The seal of ``log.jsonl`` is ``log.jsonl.seal``.
SEAL_SUFFIX = ".seal"


class Seal(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The log's first ``bytes`` bytes (whole lines) hash to ``sha256`` (hex)."""

    bytes: int
    sha256: str


_DECODER = msgspec.json.Decoder(Seal)
_ENCODER = msgspec.json.Encoder()


def seal_path(log_path: str) -> str:
    return log_path + SEAL_SUFFIX


def read_seal(fs: FileSystem, log_path: str) -> Seal | None:
    """The seal next to ``log_path``, or None when there is none or it cannot be read
    (a seal only saves work: a bad one is no seal, never an error)."""
    path = seal_path(log_path)
    if not fs.exists(path):
        return None
    try:
        seal = _DECODER.decode(fs.read(path))
    except (*UNREADABLE, OSError):
        return None
    if seal.bytes < 1 or len(seal.sha256) != 64:
        return None
    return seal


def write_seal(fs: FileSystem, log_path: str, seal: Seal) -> None:
    """Record ``seal`` atomically; call only once the bytes it covers are synced."""
    atomic_write(fs, seal_path(log_path), _ENCODER.encode(seal))


__all__ = ["SEAL_EVERY_BYTES", "SEAL_SUFFIX", "Seal", "read_seal", "seal_path", "write_seal"]
