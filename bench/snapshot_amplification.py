"""Bytes written per client write, log and snapshots together, as the state grows
(issue 19: snapshot cost should track the log it replaces).

Run: ``PYTHONPATH=src .venv/bin/python bench/snapshot_amplification.py [KEYS [PER_ENTRY]]``

A single-node ``NodeDriver`` over in-memory storage applies KEYS writes of 100-byte
values to distinct keys, PER_ENTRY writes per Ready (so per log entry; default 1, a
client writing one at a time; a loaded leader batches up to 64), once under the old rule (a snapshot every 10,000 entries) and once
under the default ``SnapshotPolicy`` (ratio rule, 50,000-entry cap). It counts the
log bytes (encoded lines) and the bytes of each ``snapshot.json`` written, and prints
both per write.
Byte counts do not depend on machine load. Not a test.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Sequence

from resonetics.raft.config import RaftConfig
from resonetics.raft.entry import Entry
from resonetics.raft.messages import Message
from resonetics.raft.ready import Snapshot
from resonetics.runtime.driver import NodeDriver
from resonetics.runtime.outcome import Outcome
from resonetics.runtime.snapshots import SnapshotPolicy
from resonetics.storage.log_file import encode_line
from resonetics.storage.memory import MemoryNodeStorage
from resonetics.storage.snapshot_file import encode_snapshot

VALUE = "v" * 100


class _CountingStorage(MemoryNodeStorage):
    def __init__(self) -> None:
        super().__init__()
        self.log_bytes = 0
        self.snapshot_bytes = 0
        self.snapshots = 0

    def append(self, entries: Sequence[Entry]) -> None:
        self.log_bytes += sum(len(encode_line(e)) for e in entries)
        super().append(entries)

    def write_snapshot_file(self, snapshot: Snapshot) -> None:
        """A snapshot this node took (``SnapshotJob.write_file``): the bytes of the
        ``snapshot.json`` a file-backed node writes for it."""
        self.snapshot_bytes += len(encode_snapshot(snapshot))
        self.snapshots += 1
        super().write_snapshot_file(snapshot)


class _Host:
    def now_ms(self) -> int:
        return 0

    def send(self, msg: Message) -> None:
        pass

    def flush(self) -> None:
        pass


def run(policy: SnapshotPolicy, keys: int, per_ready: int) -> _CountingStorage:
    storage = _CountingStorage()
    config = RaftConfig(node_id="n1", initial_voters=("n1",))
    node = NodeDriver(config, storage, _Host(), random.Random(1), snapshot_policy=policy)
    node.core.campaign()
    node.process_ready()
    answers: list[Outcome] = []
    for i in range(keys):
        args = {"k": f"key-{i:07d}", "v": VALUE}
        node.submit(f"c{i % 16}", f"r{i}", "kv_set", args, answers.append, size=160)
        if i % per_ready == per_ready - 1:
            node.process_ready()
    while len(answers) < keys:
        node.process_ready()
    return storage


def main(argv: list[str]) -> None:
    keys = int(argv[0]) if argv else 200_000
    per_entry = int(argv[1]) if len(argv) > 1 else 1
    for label, policy in (
        ("every 10,000 entries (old)", SnapshotPolicy(entries=10_000, log_ratio=0.0)),
        ("ratio 1, cap 50,000 (new)", SnapshotPolicy()),
    ):
        s = run(policy, keys, per_entry)
        print(
            f"{label:<28} {keys} writes, {per_entry}/entry: log {s.log_bytes / keys:6.0f} B/write, "
            f"snapshots {s.snapshots:3d} = {s.snapshot_bytes / keys:7.0f} B/write, "
            f"total {(s.log_bytes + s.snapshot_bytes) / keys:7.0f} B/write"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
