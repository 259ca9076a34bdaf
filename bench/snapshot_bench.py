"""Snapshot cost at scale: time, memory and size to snapshot and restore N keys.

Not a test: run ``python -m bench.snapshot_bench [--keys 1000000]``. It measures
each step a node performs, on its own thread, when it takes or installs a
snapshot:

* ``ReplicatedKV.snapshot()``: serialize keys, sessions and the applied position;
* ``encode_snapshot``: the snapshot.json bytes (header line + checksum, then the state) that
  ``write_snapshot_file`` writes;
* ``OutgoingSnapshot.of``: the streamed payload and its SHA-256 (leader side);
* ``ReplicatedKV.restore()``: a follower's install / a restart.

Memory is the peak of ``tracemalloc`` during the step (Python allocations),
reported separately from time because tracing slows the step down.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from resonetics.machine.kv import KeyValueStore
from resonetics.machine.replicated import ReplicatedKV
from resonetics.raft.membership import Membership
from resonetics.raft.ready import Snapshot, SnapshotMeta
from resonetics.raft.snapshot import OutgoingSnapshot
from resonetics.storage.snapshot_file import encode_snapshot

MIB = 1 << 20


def build(keys: int, value_bytes: int) -> ReplicatedKV:
    """A state with ``keys`` keys (in key order, so building it is linear)."""
    kv = KeyValueStore()
    value = "v" * value_bytes
    for i in range(keys):
        kv.set(f"key{i:09d}", value)
    machine = ReplicatedKV(kv)
    machine.last_applied = keys
    return machine


def measure(step: Callable[[], Any]) -> tuple[Any, float, float, float]:
    """(result, wall seconds and CPU seconds untraced, peak MiB traced)."""
    t0, c0 = time.perf_counter(), time.process_time()
    result = step()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    del result
    tracemalloc.start()
    result = step()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, seconds, cpu, peak / MIB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--value-bytes", type=int, default=16)
    args = parser.parse_args()
    t0 = time.perf_counter()
    machine = build(args.keys, args.value_bytes)
    print(
        f"built {args.keys} keys ({args.value_bytes}-byte values) in "
        f"{time.perf_counter() - t0:.1f} s"
    )
    data, *snap_cost = measure(machine.snapshot)
    meta = SnapshotMeta(args.keys, 1, "0" * 64, Membership(voters=("n1", "n2", "n3")))
    snap = Snapshot(meta, data)
    file_bytes, *file_cost = measure(lambda: encode_snapshot(snap))
    out, *out_cost = measure(lambda: OutgoingSnapshot.of(snap))
    _, *restore_cost = measure(lambda: ReplicatedKV().restore(data))
    rows = [
        ("ReplicatedKV.snapshot()", *snap_cost),
        ("encode_snapshot (snapshot.json)", *file_cost),
        ("OutgoingSnapshot.of (payload+sha256)", *out_cost),
        ("ReplicatedKV.restore()", *restore_cost),
    ]
    print(f"{'step':40} {'wall s':>8} {'CPU s':>8} {'peak MiB':>9}")
    for name, s, c, m in rows:
        print(f"{name:40} {s:8.2f} {c:8.2f} {m:9.1f}")
    print(
        f"state bytes: {len(data)} ({len(data) / args.keys:.1f} per key); "
        f"snapshot.json bytes: {len(file_bytes)} ({len(file_bytes) / args.keys:.1f} per key); "
        f"streamed payload: {len(out.payload)} bytes"
    )


if __name__ == "__main__":
    main()
