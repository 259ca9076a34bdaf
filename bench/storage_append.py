"""Storage throughput on the real disk: group-commit appends and load() of a long log.

Run: ``.venv/bin/python bench/storage_append.py [DIR]`` (default: a temp folder).
Prints entries/s for FileNodeStorage appends with one fsync per batch of 1, 16
and 256 entries, beside a baseline measured in the same run (the same bytes
written with os.write + os.fsync per batch, no encoding, no bookkeeping), and
the time to load() a 100k-entry log (checksums and hash chain verified).
Not a test: nothing here passes or fails.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

from resonetics.raft.entry import GENESIS, Entry, EntryType, make_entry
from resonetics.raft.ready import HardState
from resonetics.storage.fs import OsFileSystem
from resonetics.storage.log_file import encode_line
from resonetics.storage.node_storage import FileNodeStorage

PAYLOAD = {"op": "kv_set", "k": "key-000000", "v": "x" * 64}
LOAD_ENTRIES = 100_000


def make_log(count: int) -> list[Entry]:
    out: list[Entry] = []
    prev = GENESIS
    for i in range(1, count + 1):
        prev = make_entry(prev.hash, 1, i, EntryType.CLIENT_CMD, PAYLOAD)
        out.append(prev)
    return out


def bench_storage(folder: str, entries: list[Entry], batch: int) -> float:
    """Entries/s through FileNodeStorage.append + sync (one fsync per batch)."""
    s = FileNodeStorage(OsFileSystem(), folder)
    s.load()
    s.save_hard_state(HardState(term=1, vote="n1"), 0)
    start = time.perf_counter()
    for i in range(0, len(entries), batch):
        s.append(entries[i : i + batch])
        s.sync()
    elapsed = time.perf_counter() - start
    s.close()
    return len(entries) / elapsed


def bench_raw(path: str, entries: list[Entry], batch: int) -> float:
    """Baseline: the same bytes, pre-encoded, os.write + os.fsync per batch."""
    blobs = [
        b"".join(encode_line(e) for e in entries[i : i + batch])
        for i in range(0, len(entries), batch)
    ]
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    start = time.perf_counter()
    for blob in blobs:
        os.write(fd, blob)
        os.fsync(fd)
    elapsed = time.perf_counter() - start
    os.close(fd)
    return len(entries) / elapsed


def bench_load(folder: str, entries: list[Entry]) -> float:
    s = FileNodeStorage(OsFileSystem(), folder)
    s.load()
    s.save_hard_state(HardState(term=1, vote="n1"), 0)
    for i in range(0, len(entries), 1024):
        s.append(entries[i : i + 1024])
    s.sync()
    s.close()
    start = time.perf_counter()
    state = FileNodeStorage(OsFileSystem(), folder).load()
    elapsed = time.perf_counter() - start
    assert state.last_index == len(entries)
    return elapsed


def main() -> None:
    root = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="resonetics-bench-")
    print(f"folder: {root}")
    for batch, count in ((1, 2_000), (16, 16_000), (256, 64_000)):
        entries = make_log(count)
        ours = bench_storage(os.path.join(root, f"b{batch}"), entries, batch)
        raw = bench_raw(os.path.join(root, f"raw{batch}.jsonl"), entries, batch)
        print(
            f"batch {batch:>3}: {ours:>10,.0f} entries/s   "
            f"raw write+fsync {raw:>10,.0f} entries/s   ratio {ours / raw:.2f}"
        )
    seconds = bench_load(os.path.join(root, "load"), make_log(LOAD_ENTRIES))
    print(f"load() of {LOAD_ENTRIES:,} entries: {seconds:.2f} s ({LOAD_ENTRIES / seconds:,.0f}/s)")


if __name__ == "__main__":
    main()
