"""MemoryFileSystem models what a power loss can do; OsFileSystem does the same calls for real."""

from __future__ import annotations

import errno
import itertools
import os
import random
from pathlib import Path

import pytest

from resonetics.storage.fs import MemoryFileSystem, OsFileSystem, SimulatedCrash, atomic_write


def test_unsynced_bytes_are_lost_and_synced_bytes_survive_a_crash() -> None:
    fs = MemoryFileSystem()
    fs.mkdir("/d")
    fs.append("/d/f", b"one\n")
    fs.fsync("/d/f")
    fs.fsync_dir("/d")
    fs.append("/d/f", b"two\n")
    assert fs.read("/d/f") == b"one\ntwo\n"
    fs.crash()
    assert fs.read("/d/f") == b"one\n"


def test_a_new_file_without_a_folder_fsync_may_vanish() -> None:
    fs = MemoryFileSystem()
    fs.mkdir("/d")
    fs.append("/d/f", b"x")
    fs.fsync("/d/f")
    fs.crash()
    assert not fs.exists("/d/f")


def test_a_rename_without_a_folder_fsync_is_lost() -> None:
    fs = MemoryFileSystem()
    fs.mkdir("/d")
    atomic_write(fs, "/d/f", b"old")
    fs.write("/d/f.tmp", b"new")
    fs.fsync("/d/f.tmp")
    fs.replace("/d/f.tmp", "/d/f")
    assert fs.read("/d/f") == b"new"
    fs.crash()
    assert fs.read("/d/f") == b"old"


def test_atomic_write_is_durable_when_it_returns() -> None:
    fs = MemoryFileSystem()
    fs.mkdir("/d")
    atomic_write(fs, "/d/f", b"v1")
    atomic_write(fs, "/d/f", b"v2")
    fs.crash(random.Random(3))
    assert fs.read("/d/f") == b"v2"
    assert fs.listdir("/d") == ["f"]


def test_truncate_is_volatile_until_fsync() -> None:
    fs = MemoryFileSystem()
    fs.mkdir("/d")
    atomic_write(fs, "/d/f", b"abcdef")
    fs.truncate("/d/f", 2)
    assert fs.read("/d/f") == b"ab"
    fs.crash()
    assert fs.read("/d/f") == b"abcdef"
    fs.truncate("/d/f", 2)
    fs.fsync("/d/f")
    fs.crash()
    assert fs.read("/d/f") == b"ab"


def test_a_torn_write_leaves_a_prefix_of_the_last_write() -> None:
    seen: set[bytes] = set()
    for seed in range(60):
        fs = MemoryFileSystem()
        fs.mkdir("/d")
        atomic_write(fs, "/d/f", b"base|")
        fs.append("/d/f", b"0123456789")
        fs.crash(random.Random(seed))
        after = fs.read("/d/f")
        assert after.startswith(b"base|")
        assert b"0123456789".startswith(after[5:])
        seen.add(after)
    assert b"base|" in seen and b"base|0123456789" in seen
    assert len(seen) > 3, "some crashes tear the write in the middle"


def test_crash_at_raises_at_exactly_that_operation_with_half_a_write() -> None:
    fs = MemoryFileSystem()
    fs.mkdir("/d")
    fs.crash_at(fs.op_count + 1)
    fs.append("/d/f", b"aaaa")
    with pytest.raises(SimulatedCrash):
        fs.append("/d/f", b"bbbb")
    with pytest.raises(SimulatedCrash):
        fs.read("/d/f")
    was_down = fs.crashed
    fs.crash(random.Random(0))
    assert was_down and not fs.crashed
    fs.mkdir("/d")
    assert fs.op_count == 1


def test_op_count_numbers_the_crash_points() -> None:
    fs = MemoryFileSystem()
    fs.mkdir("/d")
    atomic_write(fs, "/d/f", b"x")
    assert fs.op_count == 5  # mkdir, write, fsync, replace, fsync_dir


def test_listdir_remove_and_exists() -> None:
    fs = MemoryFileSystem()
    fs.mkdir("/d/sub")
    fs.append("/d/b", b"")
    fs.append("/d/a", b"")
    assert fs.listdir("/d") == ["a", "b", "sub"]
    assert fs.isdir("/d/sub") and not fs.isdir("/d/a")
    fs.remove("/d/a")
    assert not fs.exists("/d/a")
    with pytest.raises(FileNotFoundError):
        fs.read("/d/a")


def test_os_file_system_does_the_same_things(tmp_path: Path) -> None:
    fs = OsFileSystem()
    d = str(tmp_path / "d")
    fs.mkdir(d)
    fs.append(d + "/f", b"one\n")
    fs.append(d + "/f", b"two\n")
    fs.fsync(d + "/f")
    fs.truncate(d + "/f", 4)
    fs.append(d + "/f", b"three\n")
    assert fs.read(d + "/f") == b"one\nthree\n"
    atomic_write(fs, d + "/f", b"new")
    fs.append(d + "/f", b"+")
    assert fs.read(d + "/f") == b"new+"
    assert fs.listdir(d) == ["f"]
    fs.remove(d + "/f")
    assert not fs.exists(d + "/f")
    fs.close()


def test_fsync_after_appends_and_a_cut_keeps_exactly_the_current_bytes() -> None:
    fs = MemoryFileSystem()
    fs.mkdir("/d")
    atomic_write(fs, "/d/f", b"abc")
    for chunk in (b"def", b"ghi"):
        fs.append("/d/f", chunk)
        fs.fsync("/d/f")
    fs.truncate("/d/f", 4)
    fs.append("/d/f", b"XY")
    fs.fsync("/d/f")
    fs.append("/d/f", b"lost")
    fs.crash()
    assert fs.read("/d/f") == b"abcdXY"
    assert fs.durable_bytes("/d/f") == b"abcdXY"


@pytest.mark.parametrize("kind", ["memory", "os"])
def test_read_from_returns_the_file_from_an_offset_to_its_end(kind: str, tmp_path: Path) -> None:
    fs = MemoryFileSystem() if kind == "memory" else OsFileSystem()
    folder = "/d" if kind == "memory" else str(tmp_path)
    fs.mkdir(folder)
    fs.append(f"{folder}/f", b"first\nsecond\n")
    assert fs.read_from(f"{folder}/f", 0) == b"first\nsecond\n"
    assert fs.read_from(f"{folder}/f", 6) == b"second\n"
    assert fs.read_from(f"{folder}/f", 13) == b""
    with pytest.raises(FileNotFoundError):
        fs.read_from(f"{folder}/missing", 0)


@pytest.mark.parametrize("kind", ["memory", "os"])
def test_allocate_extends_with_zeros_and_write_at_writes_in_place(
    kind: str, tmp_path: Path
) -> None:
    fs = MemoryFileSystem(allocate_ahead=100) if kind == "memory" else OsFileSystem(100)
    folder = "/d" if kind == "memory" else str(tmp_path)
    fs.mkdir(folder)
    path = f"{folder}/f"
    fs.write_at(path, 0, b"head\n")
    assert fs.allocate(path, 12) == 112  # what was asked for, and as much again ahead
    assert fs.read(path) == b"head\n" + bytes(107)
    assert fs.allocate(path, 50) == 112  # already there: nothing changes
    fs.write_at(path, 5, b"next\n")
    fs.fsync(path)
    assert fs.read(path) == b"head\nnext\n" + bytes(102)
    fs.write_at(path, 110, b"past the end")  # a write that runs past the end grows the file
    assert fs.read(path)[108:] == b"\0\0past the end"
    fs.close()


def test_a_scattered_crash_keeps_every_synced_byte_and_each_sector_old_or_new() -> None:
    """A file written in place may come back from a crash with any of its unsynced
    sectors written, in no order: a later sector on disk, an earlier one still zeros."""
    sector = 512
    synced = b"s" * (2 * sector)
    seen_out_of_order = False
    for seed in range(200):
        fs = MemoryFileSystem(allocate_ahead=0)
        fs.mkdir("/d")
        fs.allocate("/d/f", 8 * sector)
        fs.write_at("/d/f", 0, synced)
        fs.fsync("/d/f")
        fs.fsync_dir("/d")
        fs.write_at("/d/f", len(synced), b"n" * (4 * sector))
        fs.crash(random.Random(seed))
        after = fs.read("/d/f")
        assert after.startswith(synced) and len(after) == 8 * sector
        assert after[6 * sector :] == bytes(2 * sector)
        assert set(after[2 * sector :]) <= {0, ord("n")}  # new bytes or never written
        landed = [after[at] == ord("n") for at in range(2 * sector, 6 * sector, sector)]
        seen_out_of_order |= any(not a and b for a, b in itertools.pairwise(landed))
    assert seen_out_of_order


@pytest.mark.parametrize("err", [errno.EOPNOTSUPP, errno.ENOSPC])
def test_os_allocate_without_fallocate_or_room_for_the_chunk_still_makes_the_file_long_enough(
    err: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file system without fallocate gets a hole (reads as zeros); a disk without
    room for the whole chunk gets just the bytes asked for."""
    asked: list[int] = []

    def refusing(fd: int, offset: int, length: int) -> None:
        asked.append(length)
        if err == errno.EOPNOTSUPP or length > 40:
            raise OSError(err, os.strerror(err))
        real(fd, offset, length)

    real = os.posix_fallocate
    monkeypatch.setattr(os, "posix_fallocate", refusing)
    fs = OsFileSystem(allocate_ahead=1000)
    path = str(tmp_path / "f")
    fs.write_at(path, 0, b"x")
    length = fs.allocate(path, 30)
    assert length == (1030 if err == errno.EOPNOTSUPP else 30)
    assert fs.read(path) == b"x" + bytes(length - 1)
    assert asked == ([1029] if err == errno.EOPNOTSUPP else [1029, 29])
    fs.close()


def test_os_allocate_passes_on_any_other_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "posix_fallocate", failing)
    fs = OsFileSystem()
    path = str(tmp_path / "f")
    fs.write_at(path, 0, b"x")
    with pytest.raises(OSError) as info:
        fs.allocate(path, 30)
    assert info.value.errno == errno.EIO
    fs.close()
