"""bench/snapshot_amplification.py counts the snapshots a node takes and the bytes it writes."""

from __future__ import annotations

from bench.snapshot_amplification import run

from resonetics.runtime.snapshots import SnapshotPolicy


def test_every_snapshot_the_node_takes_is_counted_with_its_files_bytes() -> None:
    """The counter hooks the method a node's own snapshots go through: hooked on another
    one, the bench printed no snapshot at all and a total of the log alone."""
    storage = run(SnapshotPolicy(entries=100, log_ratio=0.0), keys=1_000, per_ready=1)
    assert 9 <= storage.snapshots <= 10  # every 100 entries of 1,000 writes (and elections)
    assert storage.snapshot_bytes > storage.snapshots * 100 * 100  # 100+ keys of 100 bytes each
    assert storage.log_bytes > 1_000 * 100  # each write's line holds its 100-byte value
