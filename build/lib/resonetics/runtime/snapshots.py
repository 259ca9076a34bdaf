"""When to take a snapshot, how to take one, and how to install one received.

Theory of operation
-------------------
``SnapshotPolicy`` says when (``snapshot_due``): once the log since the last
snapshot holds ``log_ratio`` times the last snapshot's bytes (and at least
``log_bytes_floor``), so a snapshot costs about as many bytes as the log it
replaces, however large the state; or once it holds ``entries`` entries, a cap
on what a restart replays; or about ``log_bytes`` bytes, when set.

Every node has the same log and the same rule, so without more they would all
snapshot at the same index, and a large state's snapshot costs seconds of CPU:
on a small machine all nodes at once starved each other and the leader (a 3-node
cluster filling to a million keys lost its leader at every large snapshot,
``bench/large_store.py``). So each node scales its thresholds by
``1 + stagger * rank / voters`` (``stagger_position``): with 3 voters and the
default stagger of 0.5, at 1, 1.17 and 1.33 times the threshold; in the runs of
``bench/large_store.py`` the three nodes' snapshots then came at distinct indexes
(docs/benchmarks.md, "A store that grows under load").

``Snapshots`` takes one for the driver, between two Readys, when everything
handed out is durable and applied:

1. serialize the state machine at ``core.applied`` (``ReplicatedKV.snapshot()``:
   keys, client sessions, and the last applied index, term and hash), with the
   membership in force at that index;
2. ``storage.write_snapshot_file`` (snapshot.json atomically, on a thread of its
   own while log writes go on), then ``storage.compact_to_snapshot`` (the file
   log starts at a SNAP_DUMMY anchor at that index; on the disk thread, in order
   with the log writes);
3. ``core.set_snapshot`` (what a leader streams to lagging followers) and
   ``core.compact`` ``trailing_entries`` behind the snapshot's index, so that a
   follower lagging by less catches up through AppendEntries.

A crash between any two steps is safe: storage recovers either the old or the
new snapshot with a log that joins it, and the core is rebuilt from storage.

Both executors take snapshots the same way, through a ``SnapshotJob``: it
fixes the state with a copy, encodes it a slice at a time (the server: one
slice per event loop turn; the simulator: one per virtual-time event), writes
the file on the snapshot thread and compacts the file log on the disk thread,
so the node keeps serving, writing and acking (heartbeats included) while a
large state is saved; ``bench/snapshot_bench.py`` measures the cost. ``take``
runs the same steps at once (tests, shutdown).

Installing (a follower's ``Ready.snapshot``): restore the state machine from
the bytes, then ``storage.save_snapshot``; the core has already moved its log.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from resonetics import limits
from resonetics.errors import invariant
from resonetics.gc_pause import gc_paused
from resonetics.machine.replicated import PendingRestore, ReplicatedKV
from resonetics.raft.entry import Entry, snap_dummy
from resonetics.raft.log import entries_size_bytes
from resonetics.raft.node import RaftNode
from resonetics.raft.ready import Snapshot, SnapshotMeta
from resonetics.raft.snapshot import stream_checksum
from resonetics.raft.types import Index
from resonetics.runtime.loop_plan import SnapshotStep, snapshot_step
from resonetics.storage.api import NodeStorage


@dataclass(frozen=True, slots=True)
class SnapshotPolicy:
    """Thresholds and streaming parameters; 0 switches a threshold off."""

    #: Log entries since the last snapshot that trigger a new one.
    entries: int = limits.SNAPSHOT_ENTRIES_DEFAULT
    #: Approximate encoded log bytes since the last snapshot that trigger one.
    log_bytes: int = 0
    #: Log bytes since the last snapshot, as a multiple of its size, that trigger one.
    log_ratio: float = limits.SNAPSHOT_LOG_RATIO_DEFAULT
    #: The ratio rule never triggers below this many log bytes.
    log_bytes_floor: int = limits.SNAPSHOT_LOG_BYTES_FLOOR_DEFAULT
    #: Entries kept in memory behind the snapshot's index (see ``limits``).
    trailing_entries: int = limits.SNAPSHOT_TRAILING_ENTRIES
    chunk_bytes: int = limits.SNAPSHOT_CHUNK_BYTES
    chunks_inflight_max: int = limits.SNAPSHOT_CHUNKS_INFLIGHT_MAX
    #: Declared size of an incoming snapshot stream above which it is refused (bytes).
    bytes_max: int = limits.SNAPSHOT_BYTES_MAX
    #: How far apart nodes snapshot (``limits.SNAPSHOT_STAGGER_DEFAULT``); 0: all alike.
    stagger: float = limits.SNAPSHOT_STAGGER_DEFAULT

    def __post_init__(self) -> None:
        if min(self.entries, self.log_bytes, self.trailing_entries, self.log_bytes_floor) < 0:
            raise ValueError("snapshot thresholds must be >= 0")
        if not (self.log_ratio >= 0 and self.stagger >= 0):  # also refuses NaN
            raise ValueError("snapshot thresholds must be >= 0")
        if self.bytes_max < 1:
            raise ValueError("snapshot bytes_max must be >= 1")
        if self.chunk_bytes < 1 or self.chunks_inflight_max < 1:
            raise ValueError("snapshot chunks need >= 1 byte and a window >= 1")


def snapshot_due(
    policy: SnapshotPolicy, since_entries: int, log_bytes: int, last_snapshot_bytes: int
) -> bool:
    """Whether to snapshot now, given the entries and the (approximate) log bytes
    applied since the last snapshot and that snapshot's size (0: none yet).

    Any rule switched on (non-zero) suffices:

    * ratio: ``log_bytes >= max(log_bytes_floor, log_ratio * last_snapshot_bytes)``.
      A snapshot rewrites the whole state; taken once the log since the last one is
      as large as that state (ratio 1), the bytes written per client write stay at
      about twice the write's own log bytes, at any state size. A fixed entry count
      instead made them grow with the state (issue 19: 38 MB rewritten every 10,000
      writes at 200k keys). Rejected: incremental snapshots (a new file format and
      install path for the same amortised bound).
    * entries: ``since_entries >= entries``, the cap that bounds what a restart
      replays and what the log holds in memory when the state is large;
    * bytes: ``log_bytes >= log_bytes`` (an operator's fixed threshold).
    """
    if since_entries <= 0:
        return False
    p = policy
    if p.entries and since_entries >= p.entries:
        return True
    if p.log_bytes and log_bytes >= p.log_bytes:
        return True
    return bool(
        p.log_ratio and log_bytes >= max(p.log_bytes_floor, p.log_ratio * last_snapshot_bytes)
    )


def stagger_position(node_id: str, voters: Sequence[str]) -> float:
    """This node's place among the voters, in [0, 1): 0 for the first id in sorted
    order, 1/n for the next, and so on; 0 for a node that is not a voter."""
    ids = sorted(voters)
    return ids.index(node_id) / len(ids) if node_id in ids else 0.0


def staggered(policy: SnapshotPolicy, position: float) -> SnapshotPolicy:
    """``policy`` with its thresholds scaled for a node at ``position`` (see above)."""
    scale = 1 + policy.stagger * position
    if scale == 1:
        return policy
    return replace(
        policy,
        entries=round(policy.entries * scale),
        log_bytes=round(policy.log_bytes * scale),
        log_ratio=policy.log_ratio * scale,
        log_bytes_floor=round(policy.log_bytes_floor * scale),
    )


#: ``Snapshots._due_from`` when no rule can ever fire (every threshold switched off).
_NEVER: Index = 2**63


@dataclass(slots=True)
class SnapshotStats:
    taken: int = 0
    installed: int = 0
    #: Of ``installed``: those whose state was read a slice per loop turn before the
    #: install (runtime/snapshot_reading.py), not in the install's own step.
    installed_read: int = 0
    last_index: Index = 0
    last_bytes: int = 0
    #: Seconds the last snapshot this node took needed, from its first slice to saved.
    last_seconds: float = 0.0


class Snapshots:
    """The driver's snapshot duties for one node (see the module docstring)."""

    def __init__(
        self,
        policy: SnapshotPolicy,
        last_index: Index,
        signer: Callable[[Snapshot], Snapshot] | None = None,
        *,
        position: float = 0.0,
    ) -> None:
        """``position``: this node's ``stagger_position`` among the voters."""
        self._policy = policy
        self._position = position
        #: The thresholds this node goes by: ``policy``'s, staggered.
        self._due_policy = staggered(policy, position)
        #: Signs each snapshot this node takes (security/snapshot_signing.py); None: unsigned.
        self._signer = signer
        #: Read-only for others: ``due`` is re-armed only by this class's own updates.
        self.stats = SnapshotStats(last_index=last_index)
        self._log_bytes = 0
        #: The smallest applied index at which ``due`` says yes (``_rearm``).
        self._due_from: Index = 0
        self._rearm()

    @property
    def policy(self) -> SnapshotPolicy:
        return self._policy

    @policy.setter
    def policy(self, policy: SnapshotPolicy) -> None:
        self._policy = policy
        self._due_policy = staggered(policy, self._position)
        self._rearm()

    def _rearm(self) -> None:
        """Work out once, from what ``snapshot_due`` depends on, the applied index from
        which it says yes, so that ``due`` (asked on every idle loop step) is one compare.

        ``snapshot_due`` is true iff ``since = applied - last_index > 0`` and either
        ``since >= entries`` (entry rule on) or a byte rule holds; the byte rules depend
        on the log bytes and the last snapshot's size only, not on ``applied``. So it
        is true from ``last_index + 1`` on when it is true at ``since == 1``, else from
        ``last_index + entries`` (entry rule on), else never. Called whenever one of
        its inputs changes: the policy, ``_log_bytes``, ``stats.last_index`` and
        ``stats.last_bytes``; ``tests/runtime/test_snapshot_trigger.py`` checks the
        answers against ``snapshot_due``.
        """
        p, last = self._due_policy, self.stats.last_index
        if snapshot_due(p, 1, self._log_bytes, self.stats.last_bytes):
            self._due_from = last + 1
        elif p.entries:
            self._due_from = last + p.entries
        else:
            self._due_from = _NEVER

    def start(self, core: RaftNode, snapshot: Snapshot | None) -> None:
        """At boot: the recovered snapshot (if any) is what a leader streams, and
        its size is what the ratio rule compares the log with."""
        if snapshot is not None:
            self.stats.last_bytes = len(snapshot.data)
            self._rearm()
            self._hand_to_core(core, snapshot)

    def note_persisted(self, entries: Sequence[Entry]) -> None:
        """Count log bytes for the byte rules (only when one is switched on)."""
        if self._policy.log_bytes or self._policy.log_ratio:
            self._log_bytes += entries_size_bytes(entries)
            self._rearm()

    def due(self, applied: Index) -> bool:
        """``snapshot_due`` for the log applied up to ``applied`` (see ``_rearm``)."""
        return applied >= self._due_from

    def take(self, core: RaftNode, machine: ReplicatedKV, storage: NodeStorage) -> Snapshot:
        """Snapshot at ``core.applied``, save it, compact, all at once (see the module docstring)."""
        job = self.begin_take(core, machine, storage)
        while not job.slice():
            pass
        job.write_file()
        job.compact_log()
        return job.finish()

    def begin_take(
        self, core: RaftNode, machine: ReplicatedKV, storage: NodeStorage
    ) -> SnapshotJob:
        """Start a snapshot at ``core.applied``; its executor runs the job's steps."""
        return SnapshotJob(self, core, machine, storage)

    def _signed(self, snapshot: Snapshot) -> Snapshot:
        return snapshot if self._signer is None else self._signer(snapshot)

    def install(
        self, snapshot: Snapshot, machine: ReplicatedKV, read: PendingRestore | None = None
    ) -> None:
        """A follower's ``Ready.snapshot``, the state machine's part (its file is saved
        with the Ready's write, ``NodeDriver._write``). ``read``: its state as already
        read (runtime/snapshot_reading.py), else it is read now."""
        index = snapshot.meta.last_included_index
        if read is not None:
            read.apply()
            self.stats.installed_read += 1
        else:
            with gc_paused():  # a million records in a row: see resonetics/gc_pause.py
                machine.restore(snapshot.data)
        invariant(
            machine.last_applied == index
            and machine.last_applied_hash == snapshot.meta.last_included_hash,
            f"installed state is at {machine.last_applied}, snapshot at {index}",
        )
        self._done(snapshot)
        self.stats.installed += 1

    def _hand_to_core(
        self, core: RaftNode, snapshot: Snapshot, checksum: str | None = None
    ) -> None:
        core.set_snapshot(
            snapshot,
            checksum=checksum,
            chunk_bytes=self.policy.chunk_bytes,
            chunks_inflight_max=self.policy.chunks_inflight_max,
        )

    def _done(self, snapshot: Snapshot) -> None:
        self.stats.last_index = snapshot.meta.last_included_index
        self.stats.last_bytes = len(snapshot.data)
        self._log_bytes = 0
        self._rearm()


class SnapshotJob:
    """One snapshot being taken, in steps an executor runs (``loop_plan.snapshot_step``).

    The state is fixed at construction (``ReplicatedKV.snapshot_steps`` copies it
    at its first step, taken here), so the node may go on applying while the
    slices are encoded. ``write_file`` touches only the snapshot file (the snapshot
    thread's part), ``compact_log`` only the log file (the disk thread's);
    ``slice`` and ``finish`` run on the loop.
    """

    def __init__(
        self, owner: Snapshots, core: RaftNode, machine: ReplicatedKV, storage: NodeStorage
    ) -> None:
        index = core.applied
        invariant(machine.last_applied == index, "state machine and core disagree on applied")
        term, hash_ = core.term_at(index), core.hash_at(index)
        invariant(term is not None and hash_ is not None, f"no entry at applied {index}")
        assert term is not None and hash_ is not None
        self._owner = owner
        self._core = core
        self._storage = storage
        self.index = index
        self._meta = SnapshotMeta(index, term, hash_, core.membership_at(index))
        #: Where the log starts once compacted, in the file and in memory: the retained
        #: entries behind the snapshot, fixed now (the core's log may move meanwhile).
        self._keep_from = _retained_anchor(core, index - owner.policy.trailing_entries)
        self._steps = machine.snapshot_steps()
        self._data: bytes | None = None
        self._written: Snapshot | None = None
        self._saved: Snapshot | None = None
        #: The stream checksum (``stream_checksum``), made with the file.
        self._checksum: str | None = None
        self.slices = 0
        self._started = time.perf_counter()
        self.slice()  # the first step fixes the state

    def next_step(self) -> SnapshotStep:
        return snapshot_step(
            self._data is not None, self._written is not None, self._saved is not None
        )

    def slice(self) -> bool:
        """Encode one slice; True once the whole state is encoded."""
        if self._data is None:
            self.slices += 1
            try:
                next(self._steps)
            except StopIteration as done:
                self._data = done.value
        return self._data is not None

    def write_file(self) -> None:
        """Sign the encoded snapshot and write its file (the snapshot thread's step).

        It touches the snapshot file alone, so the disk thread goes on writing the
        log meanwhile. Signing hashes the whole payload, which is why it runs here too,
        and so does the checksum a leader's streams carry: made here, off the loop.
        """
        invariant(self._data is not None, "snapshot written before it was encoded")
        assert self._data is not None
        signed = self._owner._signed(Snapshot(self._meta, self._data))
        self._storage.write_snapshot_file(signed)
        # The entries kept behind it are copied here too, off the disk thread.
        self._storage.prepare_compaction(signed, self._keep_from)
        self._checksum = stream_checksum(signed)
        self._written = signed

    def compact_log(self) -> None:
        """Start the file log at the written snapshot (the disk thread's step, in order
        with the log writes)."""
        invariant(self._written is not None, "log compacted before the snapshot was written")
        assert self._written is not None
        self._storage.compact_to_snapshot(self._written, self._keep_from)
        self._saved = self._written

    def finish(self) -> Snapshot:
        """Saved: the core streams it from now on and compacts behind it."""
        invariant(self._saved is not None, "snapshot finished before it was saved")
        assert self._saved is not None
        owner, core = self._owner, self._core
        owner._hand_to_core(core, self._saved, self._checksum)
        core.compact(max(core.anchor.index, self._keep_from.index))
        owner._done(self._saved)
        owner.stats.taken += 1
        owner.stats.last_seconds = time.perf_counter() - self._started
        return self._saved


def _retained_anchor(core: RaftNode, index: Index) -> Entry:
    """The SNAP_DUMMY a log compacted to keep the entries after ``index`` starts with
    (the core's own anchor when ``index`` is at or before it)."""
    if index <= core.anchor.index:
        return core.anchor
    term, hash_ = core.term_at(index), core.hash_at(index)
    invariant(term is not None and hash_ is not None, f"no entry at {index} to keep from")
    assert term is not None and hash_ is not None
    return snap_dummy(index, term, hash_)


__all__ = [
    "SnapshotJob",
    "SnapshotPolicy",
    "SnapshotStats",
    "Snapshots",
    "snapshot_due",
    "stagger_position",
    "staggered",
]
