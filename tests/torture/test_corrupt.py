"""Torn tails: what ``tear_tail`` writes, and that a node's storage cuts every kind of it."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from resonetics.raft.entry import GENESIS, Entry, EntryType, make_entry
from resonetics.raft.ready import HardState
from resonetics.storage.fs import OsFileSystem
from resonetics.storage.node_storage import FileNodeStorage
from resonetics.torture.corrupt import TEAR_KINDS, TearKind, tear_tail


def _entries(count: int) -> list[Entry]:
    out: list[Entry] = []
    prev = GENESIS
    for index in range(1, count + 1):
        prev = make_entry(prev.hash, 1, index, EntryType.CLIENT_CMD, {"k": f"v{index}"})
        out.append(prev)
    return out


def _node_dir(tmp_path: Path, count: int) -> Path:
    fs = OsFileSystem()
    storage = FileNodeStorage(fs, str(tmp_path / "n1"))
    storage.load()
    storage.append(_entries(count))
    storage.sync()
    storage.save_hard_state(HardState(1, None, count), count)
    storage.close()
    fs.close()
    return tmp_path / "n1"


@pytest.mark.parametrize("kind", TEAR_KINDS)
def test_a_tear_only_adds_bytes_after_the_last_complete_line(
    tmp_path: Path, kind: TearKind
) -> None:
    log = _node_dir(tmp_path, 3) / "log.jsonl"
    before = log.read_bytes()
    lines = before.rstrip(b"\0")
    assert len(before) > len(lines)  # the file is allocated ahead: zeros after its lines
    tear = tear_tail(log, kind, random.Random(7))
    after = log.read_bytes()
    assert tear.size_before == len(lines) and tear.bytes_added > 0
    end = len(lines) + tear.bytes_added
    # Written over the first zeros after the last line; nothing else changed.
    assert after[: len(lines)] == lines and after[end:] == before[end:]
    added = after[len(lines) : end]
    assert b"\n" not in added[:-1]
    assert added.endswith(b"\n") == (kind == "garbage_line")


@pytest.mark.parametrize("kind", TEAR_KINDS)
@pytest.mark.parametrize("seed", range(5))
def test_a_node_cuts_each_kind_of_torn_tail_and_keeps_every_entry(
    tmp_path: Path, kind: TearKind, seed: int
) -> None:
    node = _node_dir(tmp_path, 4)
    good = (node / "log.jsonl").read_bytes()
    tear_tail(node / "log.jsonl", kind, random.Random(seed))
    fs = OsFileSystem()
    try:
        state = FileNodeStorage(fs, str(node)).load()
    finally:
        fs.close()
    assert [e.hash for e in state.entries] == [e.hash for e in _entries(4)]
    assert (node / "log.jsonl").read_bytes() == good.rstrip(b"\0")  # cut after its lines
