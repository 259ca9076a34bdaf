"""What an in-memory log between two snapshots costs Python's garbage collector (not a test).

``python -m bench.log_gc [--entries 7500] [--batch 34] [--unpacked]`` builds a
follower's ``RaftLog`` from AppendEntries lines as they arrive on the wire (one
CLIENT_BATCH entry of ``--batch`` 100-byte writes per line), marks it applied (the
core packs applied client entries: ``raft/packing.py``; ``--unpacked`` keeps them
as decoded, as before) and prints the objects the collector tracks, the time of a
full collection (what runs on a node's event loop every time the tracked
population has grown by a quarter) and of compacting the whole log away.
"""

from __future__ import annotations

import argparse
import gc
import time

from resonetics.raft.entry import GENESIS, EntryType, make_entry
from resonetics.raft.log import RaftLog
from resonetics.raft.messages import AppendEntries
from resonetics.wire.envelope import decode_envelope
from resonetics.wire.peer import decode_peer, encode_peer


def _wire_batches(count: int, batch: int) -> list[bytes]:
    """AppendEntries lines of one CLIENT_BATCH entry each, chained from GENESIS."""
    lines, prev = [], GENESIS
    for i in range(1, count + 1):
        data = [
            {
                "client_id": f"client-{j}",
                "request_id": i * batch + j,
                "op": "kv_set",
                "args": {"k": f"user/{i * batch + j:016x}", "v": "v" * 100},
                "ts": 1_700_000_000_000 + i,
            }
            for j in range(batch)
        ]
        entry = make_entry(prev.hash, 1, i, EntryType.CLIENT_BATCH, data)
        msg = AppendEntries(
            src="n1",
            dst="n2",
            term=1,
            leader_id="n1",
            prev_log_index=prev.index,
            prev_log_term=prev.term,
            prev_log_hash=prev.hash,
            entries=[entry],
            leader_commit=i,
        )
        lines.append(encode_peer(msg, 0).rstrip(b"\n"))
        prev = entry
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=7_500)
    parser.add_argument("--batch", type=int, default=34, help="writes per batch entry")
    parser.add_argument("--unpacked", action="store_true", help="do not pack applied entries")
    args = parser.parse_args()
    lines = _wire_batches(args.entries, args.batch)
    gc.collect()
    before = len(gc.get_objects())
    log = RaftLog(GENESIS)
    for line in lines:
        msg = decode_peer(decode_envelope(line))
        assert isinstance(msg, AppendEntries)
        log.append(msg.entries)
        if not args.unpacked:
            log.pack_through(log.last_index)
    del lines
    tracked = len(gc.get_objects()) - before
    collections = []
    for _ in range(3):
        started = time.perf_counter()
        gc.collect()
        collections.append((time.perf_counter() - started) * 1e3)
    started = time.perf_counter()
    log.compact(log.last_index)
    dropped = (time.perf_counter() - started) * 1e3
    kind = "unpacked" if args.unpacked else "packed"
    print(
        f"{args.entries:,} {kind} batch entries of {args.batch}: {tracked:,} tracked objects "
        f"({tracked / args.entries:.1f} per entry); full collection "
        f"{min(collections):.1f} ms (best of 3); compacting them away {dropped:.1f} ms"
    )


if __name__ == "__main__":
    main()
