"""The spool a follower keeps a snapshot in while it streams in (raft.snapshot.Spool)."""

from __future__ import annotations

from pathlib import Path

import pytest

from resonetics.raft.snapshot import MemorySpool, Spool
from resonetics.storage.fs import MemoryFileSystem, OsFileSystem
from resonetics.storage.spool import SPOOL_NAME, FileSpool


def _spools(tmp_path: Path) -> list[tuple[str, Spool]]:
    mem_fs = MemoryFileSystem()
    mem_fs.mkdir("/n1")
    return [
        ("memory", MemorySpool()),
        ("file-on-disk", FileSpool(OsFileSystem(), str(tmp_path / SPOOL_NAME))),
        ("file-in-memory-fs", FileSpool(mem_fs, "/n1/" + SPOOL_NAME)),
    ]


@pytest.mark.parametrize("which", ["memory", "file-on-disk", "file-in-memory-fs"])
def test_spool_keeps_chunks_in_order_and_forgets_them_on_discard(
    tmp_path: Path, which: str
) -> None:
    spool = dict(_spools(tmp_path))[which]
    assert spool.size == 0 and spool.read() == b""
    spool.append(b"abc")
    spool.append(b"defg")
    assert spool.size == 7
    assert spool.read() == b"abcdefg"
    assert spool.read_from(3) == b"defg" and spool.read_from(7) == b""
    spool.discard()
    assert spool.size == 0 and spool.read() == b""
    spool.append(b"new")
    assert spool.read() == b"new"


def test_file_spool_starts_empty_even_if_a_crash_left_a_file(tmp_path: Path) -> None:
    path = tmp_path / SPOOL_NAME
    path.write_bytes(b"left over from a crash")
    spool = FileSpool(OsFileSystem(), str(path))
    assert spool.size == 0
    assert not path.exists()
    spool.append(b"x")
    assert path.read_bytes() == b"x"
    spool.discard()
    assert not path.exists()
