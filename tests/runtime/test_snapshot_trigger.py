"""When a snapshot is due (runtime/snapshots.snapshot_due): its cost tracks the log it
replaces, with a cap on the log a restart replays (issue 19)."""

from __future__ import annotations

import math
import random

import pytest

from resonetics import limits
from resonetics.raft.entry import GENESIS, EntryType, make_entry
from resonetics.raft.log import entry_size_bytes
from resonetics.raft.membership import Membership
from resonetics.raft.ready import Snapshot, SnapshotMeta
from resonetics.runtime.snapshots import SnapshotPolicy, Snapshots, snapshot_due

MB = 1024 * 1024
RATIO_ONLY = SnapshotPolicy(entries=0, log_bytes=0, log_ratio=1.0, log_bytes_floor=4 * MB)


def test_a_snapshot_is_due_once_the_log_since_the_last_one_is_as_large_as_it() -> None:
    assert not snapshot_due(RATIO_ONLY, 100_000, 38 * MB - 1, 38 * MB)
    assert snapshot_due(RATIO_ONLY, 100_000, 38 * MB, 38 * MB)


def test_the_ratio_scales_the_log_bytes_a_snapshot_waits_for() -> None:
    policy = SnapshotPolicy(entries=0, log_ratio=2.5, log_bytes_floor=0)
    assert not snapshot_due(policy, 10, 249, 100)
    assert snapshot_due(policy, 10, 250, 100)


def test_a_small_state_is_not_snapshotted_before_the_floor_of_log_bytes() -> None:
    assert not snapshot_due(RATIO_ONLY, 50, 4 * MB - 1, 10)
    assert snapshot_due(RATIO_ONLY, 50, 4 * MB, 10)
    assert snapshot_due(RATIO_ONLY, 50, 4 * MB, 0)  # no snapshot yet: the floor alone


def test_the_entry_cap_bounds_the_log_whatever_the_state_size() -> None:
    """A 1 GB state would wait for 1 GB of log; the cap bounds replay at restart."""
    policy = SnapshotPolicy(entries=50_000, log_ratio=1.0, log_bytes_floor=4 * MB)
    assert not snapshot_due(policy, 49_999, 20 * MB, 1024 * MB)
    assert snapshot_due(policy, 50_000, 20 * MB, 1024 * MB)


def test_the_fixed_byte_threshold_still_triggers_on_its_own() -> None:
    policy = SnapshotPolicy(entries=0, log_bytes=1 * MB, log_ratio=1.0, log_bytes_floor=4 * MB)
    assert snapshot_due(policy, 5, 1 * MB, 100 * MB)


def test_nothing_is_due_when_nothing_was_applied_since_the_last_snapshot() -> None:
    assert not snapshot_due(RATIO_ONLY, 0, 100 * MB, 1)
    assert not snapshot_due(SnapshotPolicy(entries=1), 0, 0, 0)


def test_every_rule_switched_off_never_snapshots() -> None:
    off = SnapshotPolicy(entries=0, log_bytes=0, log_ratio=0.0)
    assert not snapshot_due(off, 10**9, 10**12, 1)


def test_the_defaults_are_the_documented_limits() -> None:
    policy = SnapshotPolicy()
    assert policy.entries == limits.SNAPSHOT_ENTRIES_DEFAULT
    assert policy.log_ratio == limits.SNAPSHOT_LOG_RATIO_DEFAULT
    assert policy.log_bytes_floor == limits.SNAPSHOT_LOG_BYTES_FLOOR_DEFAULT


@pytest.mark.parametrize("ratio", [-1.0, math.nan])
def test_a_negative_or_nan_ratio_is_refused(ratio: float) -> None:
    with pytest.raises(ValueError, match=">= 0"):
        SnapshotPolicy(log_ratio=ratio)


def test_a_negative_floor_is_refused() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        SnapshotPolicy(log_bytes_floor=-1)


def test_bytes_written_per_write_stay_flat_as_the_state_grows() -> None:
    """The oracle: simulate writes of 350 log bytes that each add 200 bytes of state
    and count the bytes written (log + snapshots). Under the ratio rule the snapshot
    bytes per write stay bounded by about the log bytes per write; under a fixed
    count of entries they grow with the state."""

    def snapshot_bytes_per_write(policy: SnapshotPolicy, writes: int) -> float:
        snaps = Snapshots(policy, 0)
        state = written = since = log = 0
        for _ in range(writes):
            state += 200
            since += 1
            log += 350
            if snapshot_due(policy, since, log, snaps.stats.last_bytes):
                written += state
                snaps.stats.last_bytes = state
                since = log = 0
        return written / writes

    ratio = SnapshotPolicy(entries=0, log_ratio=1.0, log_bytes_floor=64 * 1024)
    fixed = SnapshotPolicy(entries=1_000, log_ratio=0.0)
    assert snapshot_bytes_per_write(ratio, 200_000) <= 2 * 350
    assert snapshot_bytes_per_write(fixed, 200_000) > 10 * 350


def test_due_answers_as_snapshot_due_after_every_update() -> None:
    """``Snapshots.due`` is one compare against a threshold re-armed on every change of
    its inputs (policy, log bytes, the last snapshot's index and size); it must answer
    exactly what ``snapshot_due`` answers, for every applied index, after each change."""
    rng = random.Random(7)
    policies = [
        SnapshotPolicy(),
        SnapshotPolicy(entries=0, log_bytes=0, log_ratio=0.0),
        SnapshotPolicy(entries=1, log_ratio=0.0),
        SnapshotPolicy(entries=5, log_ratio=0.5, log_bytes_floor=600),
        SnapshotPolicy(entries=0, log_bytes=900, log_ratio=0.0),
        SnapshotPolicy(entries=0, log_ratio=1.5, log_bytes_floor=0),
    ]
    checked = 0
    for policy in policies:
        snaps = Snapshots(policy, rng.randrange(3))
        log_bytes = 0
        for _ in range(60):
            action = rng.randrange(3)
            if action == 0:
                entries = [
                    make_entry(GENESIS.hash, 1, k + 1, EntryType.CLIENT_CMD, {"v": "x" * k})
                    for k in range(rng.randrange(1, 4))
                ]
                snaps.note_persisted(entries)
                if snaps.policy.log_bytes or snaps.policy.log_ratio:
                    log_bytes += sum(entry_size_bytes(e) for e in entries)
            elif action == 1:  # what a finished take and an install both do
                index = snaps.stats.last_index + rng.randrange(0, 8)
                meta = SnapshotMeta(index, 1, "h", Membership(voters=("a",)))
                snaps._done(Snapshot(meta, b"s" * rng.randrange(0, 2000)))
                log_bytes = 0
            else:
                snaps.policy = rng.choice(policies)
            for applied in range(snaps.stats.last_index - 2, snaps.stats.last_index + 12):
                since = applied - snaps.stats.last_index
                expected = snapshot_due(snaps.policy, since, log_bytes, snaps.stats.last_bytes)
                assert snaps.due(applied) is expected, (snaps.policy, applied, log_bytes)
                checked += 1
    assert checked == len(policies) * 60 * 14
