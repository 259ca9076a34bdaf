"""CPU per command of ``ReplicatedKV.apply``, the work every replica does per write.

Not a test: run ``python -m bench.apply_cost [--commands N] [--rounds 3]``. It builds a
chain of ``kv_set`` commands in the two shapes clients send (``legacy``: one command
per ``CLIENT_CMD`` entry, 64 client ids, request ids only, as ``bench/recovery.py``
writes; ``sequenced``: ``CLIENT_BATCH`` entries of 64 commands from 4 sequenced
sessions acknowledging as they go, as the client library sends under load), packed as
a leader proposes them or decoded as an in-process test would, and applies each chain
to a fresh ``ReplicatedKV`` ``--rounds`` times with the collector off. It prints the
best round's CPU microseconds per command: the other rounds are the same work with
the machine's noise added.
"""

from __future__ import annotations

import argparse
import gc
import time
from typing import Any

from resonetics.machine.replicated import ReplicatedKV
from resonetics.raft.entry import GENESIS, Entry, EntryType, make_entry
from resonetics.raft.packing import canonical

VALUE = "v" * 100
BATCH = 64
SESSIONS = 4
T0 = 1_764_350_000_000


def _legacy(i: int) -> dict[str, Any]:
    return {
        "client_id": f"c{i % 64}",
        "request_id": f"r{i}",
        "op": "kv_set",
        "args": {"k": f"key-{i:07d}", "v": VALUE},
        "ts": T0 + i,
    }


def _sequenced(i: int) -> dict[str, Any]:
    c = i % SESSIONS
    seq = i // SESSIONS + 1
    return {
        **_legacy(i),
        "client_id": f"c{c}",
        "session": c + 1,
        "seq": seq,
        "ack_below": max(1, seq - 60),
    }


def chain(shape: str, commands: int, packed: bool) -> list[Entry]:
    """Entries carrying ``commands`` kv_set commands of ``shape``, linked from GENESIS."""
    pack = canonical if packed else (lambda data: data)
    entries: list[Entry] = []
    prev = GENESIS.hash
    if shape == "sequenced":
        for c in range(SESSIONS):
            data = {"client_id": f"c{c}", "request_id": f"o{c}", "op": "session_open"}
            entry = make_entry(
                prev,
                1,
                len(entries) + 1,
                EntryType.CLIENT_CMD,
                pack({**data, "args": {}, "ts": T0}),
            )
            entries.append(entry)
            prev = entry.hash
    i = 0
    while i < commands:
        if shape == "legacy":
            type_, data = EntryType.CLIENT_CMD, _legacy(i)
            i += 1
        else:
            type_, data = EntryType.CLIENT_BATCH, [_sequenced(i + j) for j in range(BATCH)]
            i += BATCH
        entry = make_entry(prev, 1, len(entries) + 1, type_, pack(data))
        entries.append(entry)
        prev = entry.hash
    return entries


def best_us_per_command(entries: list[Entry], commands: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        machine = ReplicatedKV()
        gc.collect()
        gc.disable()
        try:
            started = time.process_time()
            for entry in entries:
                machine.apply(entry)
            best = min(best, time.process_time() - started)
        finally:
            gc.enable()
    return best / commands * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=150_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.commands < BATCH or args.rounds < 1:
        parser.error(f"--commands must be at least {BATCH} and --rounds at least 1")
    for shape in ("legacy", "sequenced"):
        for packed in (True, False):
            entries = chain(shape, args.commands, packed)
            us = best_us_per_command(entries, args.commands, args.rounds)
            form = "packed" if packed else "decoded"
            print(f"{shape:<10} {form:<8} {us:5.2f} us per command (best of {args.rounds})")


if __name__ == "__main__":
    main()
