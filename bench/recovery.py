"""Recovery time of a node whose log holds N entries (issue 19: 1 M entries under 5 s).

Run::

    PYTHONPATH=src .venv/bin/python bench/recovery.py build DIR [--entries N] [--per-entry K]
    PYTHONPATH=src .venv/bin/python bench/recovery.py open DIR [--profile]

``build`` writes a node folder through the real storage layer (``FileNodeStorage``:
``append`` + ``sync``, one fsync per 64 entries, as group commit does) holding N
kv_set entries after GENESIS, each a ``CLIENT_CMD`` (K=1) or a ``CLIENT_BATCH`` of K
commands shaped like the driver's (client id, request id, op, args, ts), 100-byte
values over a keyspace of N keys (``key-0000001``.. in ascending order, or with
``--random-keys`` the same keys scrambled: each write of a new key lands at a
random place in the store's key order); meta.json says all of it is committed. With
``--snapshot-at S`` the entries up to S are applied as they are built and a
snapshot saved at S (the log compacted there), as a running node would have done;
``--retain R`` keeps R entries behind it in the log (``log_retain_entries``; R >= S
keeps the whole log), so ``open`` loads them all but replays only what follows S.

``open`` runs the node's start path: ``FileNodeStorage.load()`` (every CRC, the
hash chain, the anchor, except for the lines under the log's seal, which ``build``
leaves covering the whole log as a clean stop does: ``storage/log_seal.py``; delete
``log.jsonl.seal`` to time a start that checks every line), the ``NodeDriver`` constructor (snapshot restore, core
built over the log) and the replay of every committed entry into the state
machine (``process_ready`` until ``applied == commit``), a slice per Ready as the
core hands them out; "answering peers after" is the time to the end of the first
slice, when a server reads its sockets again (acks, votes). It prints the CPU
seconds (user + sys, ``time.process_time``) of each phase, which on a loaded
machine mean far more than wall time; wall time is printed beside them.
Not a test: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from typing import TYPE_CHECKING

from resonetics.machine.replicated import ReplicatedKV
from resonetics.raft.config import RaftConfig
from resonetics.raft.entry import Entry, EntryType, make_entry, snap_dummy
from resonetics.raft.membership import Membership
from resonetics.raft.messages import Message
from resonetics.raft.ready import HardState, Snapshot, SnapshotMeta
from resonetics.storage.fs import OsFileSystem
from resonetics.storage.node_storage import FileNodeStorage

if TYPE_CHECKING:
    from resonetics.runtime.driver import NodeDriver

SYNC_EVERY = 64
VALUE = "v" * 100


#: An odd multiplier: ``n * _SCRAMBLE mod 2**64`` is a bijection, so scrambled keys stay distinct.
_SCRAMBLE = 0x9E3779B97F4A7C15


def _key(n: int, random_keys: bool) -> str:
    return f"key-{n * _SCRAMBLE % 2**64:016x}" if random_keys else f"key-{n:07d}"


def _command(i: int, keys: int, random_keys: bool = False) -> dict[str, object]:
    return {
        "client_id": f"c{i % 64}",
        "request_id": f"r{i}",
        "op": "kv_set",
        "args": {"k": _key(i % keys, random_keys), "v": VALUE},
        "ts": 1_764_350_000_000 + i,
    }


def _snapshot(machine: ReplicatedKV, entry: Entry) -> Snapshot:
    meta = SnapshotMeta(entry.index, entry.term, entry.hash, Membership(voters=("n1",)))
    return Snapshot(meta=meta, data=machine.snapshot())


def build(
    folder: str,
    entries: int,
    per_entry: int,
    snapshot_at: int = 0,
    random_keys: bool = False,
    retain: int = 0,
) -> None:
    storage = FileNodeStorage(OsFileSystem(), folder)
    anchor = storage.load().anchor
    storage.save_hard_state(HardState(term=1, vote="n1"), 0)
    machine = ReplicatedKV() if snapshot_at else None
    if machine is not None:
        machine.last_applied_hash = anchor.hash
    prev = anchor.hash
    keep_from: Entry | None = None  # the anchor of the entries retained behind the snapshot
    batch: list[Entry] = []
    n = 0
    started = time.perf_counter()
    for index in range(1, entries + 1):
        if per_entry == 1:
            type_, data = EntryType.CLIENT_CMD, _command(n, entries, random_keys)
        else:
            type_ = EntryType.CLIENT_BATCH
            data = [_command(n + j, entries * per_entry, random_keys) for j in range(per_entry)]
        n += per_entry
        entry = make_entry(prev, 1, index, type_, data)
        prev = entry.hash
        batch.append(entry)
        if index == snapshot_at - retain:
            keep_from = snap_dummy(index, 1, entry.hash)
        if machine is not None and index <= snapshot_at:
            machine.apply(entry)
            if index == snapshot_at:
                storage.append(batch)
                storage.sync()
                batch = []
                snapshot = _snapshot(machine, entry)
                storage.write_snapshot_file(snapshot)
                if retain < snapshot_at:  # else the whole log is kept, GENESIS on
                    storage.compact_to_snapshot(snapshot, keep_from)
                machine = None
                continue
        if len(batch) == SYNC_EVERY:
            storage.append(batch)
            storage.sync()
            batch = []
    storage.append(batch)
    storage.sync()
    storage.save_hard_state(HardState(term=1, vote="n1", commit=entries), 0)
    storage.close()
    size = os.path.getsize(os.path.join(folder, "log.jsonl"))
    took = time.perf_counter() - started
    print(f"built {entries} entries ({n} writes), log.jsonl {size / 1e6:.1f} MB in {took:.1f} s")


class _Host:
    def now_ms(self) -> int:
        return 0

    def send(self, msg: Message) -> None:
        pass

    def flush(self) -> None:
        pass


def _phase(name: str, clock: tuple[float, float]) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    print(f"  {name:<28} cpu {cpu - clock[0]:6.2f} s   wall {wall - clock[1]:6.2f} s")
    return cpu, wall


def _one_ready(driver: NodeDriver) -> None:
    """Handle one Ready, as the server's executor does before it yields to the loop."""
    from resonetics.runtime.loop_plan import INLINE_STEPS

    if driver.next_step() in INLINE_STEPS:
        job = driver.begin_ready()
        job.write()
        driver.finish_ready(job)


def open_node(folder: str, snapshots: bool = False) -> None:
    # Imported here so that ``build`` timings do not include them, and so that the
    # imports are not counted in the open's phases.
    from resonetics.runtime.driver import NodeDriver
    from resonetics.runtime.snapshots import SnapshotPolicy

    start = (time.process_time(), time.perf_counter())
    storage = FileNodeStorage(OsFileSystem(), folder)
    recovered = storage.load()
    clock = _phase(
        f"load ({len(recovered.entries)} entries, {storage.sealed_lines} lines on the seal)", start
    )

    class _Loaded:
        """The storage, with ``load`` answering what was just loaded (timed apart)."""

        def __getattr__(self, name: str) -> object:
            return getattr(storage, name)

        def load(self) -> object:
            return recovered

    config = RaftConfig(node_id="n1", initial_voters=("n1",))
    # Without --snapshots no snapshot is taken during the replay, so the folder is
    # left as it was and the next open measures the same thing.
    policy = SnapshotPolicy() if snapshots else SnapshotPolicy(entries=0)
    driver = NodeDriver(
        config,
        _Loaded(),  # type: ignore[arg-type]
        _Host(),
        random.Random(1),
        snapshot_policy=policy,
    )
    clock = _phase("driver (core + restore)", clock)
    commit = recovered.hard_state.commit
    _one_ready(driver)  # the first slice: a server reads its sockets again after it
    slice_clock = _phase(f"first slice (to {driver.machine.last_applied})", clock)
    print(
        f"  {'answering peers after':<28} cpu {slice_clock[0] - start[0]:6.2f} s   "
        f"wall {slice_clock[1] - start[1]:6.2f} s"
    )
    while driver.machine.last_applied < commit:
        driver.process_ready()
    clock = _phase(f"replay to {commit}", clock)
    total_cpu = clock[0] - start[0]
    total_wall = clock[1] - start[1]
    print(f"  {'total':<28} cpu {total_cpu:6.2f} s   wall {total_wall:6.2f} s")
    print(f"  load average: {os.getloadavg()[0]:.1f}")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("build", "open"))
    parser.add_argument("dir")
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--per-entry", type=int, default=1)
    parser.add_argument(
        "--snapshot-at",
        type=int,
        default=0,
        help="build: apply the entries up to this index and save a snapshot there",
    )
    parser.add_argument(
        "--retain",
        type=int,
        default=0,
        help="build: keep this many entries behind the snapshot in the log "
        "(log_retain_entries); at least --snapshot-at keeps the whole log",
    )
    parser.add_argument(
        "--random-keys",
        action="store_true",
        help="build: scrambled keys, so new keys land anywhere in key order",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the open, top 25")
    parser.add_argument(
        "--snapshots",
        action="store_true",
        help="take snapshots during the replay as a server would (compacts DIR)",
    )
    args = parser.parse_args(argv)
    if args.action == "build":
        build(
            args.dir,
            args.entries,
            args.per_entry,
            args.snapshot_at,
            args.random_keys,
            args.retain,
        )
    elif args.profile:
        import cProfile
        import pstats

        cProfile.runctx(
            "open_node(args.dir, args.snapshots)", globals(), {"args": args}, "/tmp/recovery.prof"
        )
        pstats.Stats("/tmp/recovery.prof").sort_stats("cumulative").print_stats(25)
    else:
        open_node(args.dir, args.snapshots)


if __name__ == "__main__":
    main(sys.argv[1:])
