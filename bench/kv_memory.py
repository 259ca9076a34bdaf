"""Memory per key of the key-value machine (issue 19: <= 300 bytes + the value's
encoded size at 1 M keys).

Run: ``PYTHONPATH=src .venv/bin/python bench/kv_memory.py [KEYS ...]``

For each KEYS, a fresh ``ReplicatedKV`` in this process
applies KEYS ``kv_set`` commands (distinct keys ``key-0000001``.., 100-character
values, each its own string as a decoded log entry gives it; 64 clients, so the
sessions table is counted too) one CLIENT_CMD entry each, and reports the bytes
per key held at the end: ``tracemalloc`` (Python allocations still alive) and the
growth of RSS (``/proc/self/statm``) over the same span (``--rss-only``: without
tracemalloc, whose own bookkeeping inflates RSS). Both measure memory, not
time, so machine load does not change them. Not a test.
"""

from __future__ import annotations

import gc
import os
import sys
import tracemalloc

import msgspec

from resonetics.machine.replicated import ReplicatedKV
from resonetics.raft.entry import Entry, EntryType

VALUE_CHARS = 100
CLIENTS = 64


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(keys: int, trace: bool) -> None:
    gc.collect()
    rss0 = _rss()
    if trace:
        tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    machine = ReplicatedKV()
    for i in range(1, keys + 1):
        # A value decoded from a log line is a new string object per write.
        value = msgspec.json.decode(b'"' + (b"%07d" % i) * 15 + b'"')[:VALUE_CHARS]
        data = {
            "client_id": f"client-{i % CLIENTS}",
            "request_id": f"r{i}",
            "op": "kv_set",
            "args": {"k": f"key-{i:07d}", "v": value},
            "ts": 1_764_350_000_000 + i,
        }
        machine.apply(Entry(term=1, index=i, type=EntryType.CLIENT_CMD, data=data, hash=""))
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    rss = _rss() - rss0
    encoded = len(msgspec.json.encode(value))
    what = f"tracemalloc {traced / keys:6.0f} B/key" if trace else "(no tracemalloc)"
    print(
        f"{keys:>9} keys: {what}, RSS growth {rss / keys:6.0f} "
        f"B/key (value encoded: {encoded} B; target <= {300 + encoded} B/key)"
    )
    del machine


def main(argv: list[str]) -> None:
    trace = "--rss-only" not in argv
    for keys in [int(a) for a in argv if a != "--rss-only"] or [100_000, 1_000_000]:
        measure(keys, trace)


if __name__ == "__main__":
    main(sys.argv[1:])
