"""Thin observers wrapped around the real storage and state machine.

They change nothing: each call goes straight to the wrapped ``FileNodeStorage``
or ``ReplicatedKV`` and, on the way, tells the ``SafetyMonitor`` what was
appended or applied, so the log-matching, hash-chain and state-machine-safety
checks see every entry exactly where it enters a node's log or state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from resonetics.machine.base import StateMachine
from resonetics.machine.replicated import ApplyResult, ReplicatedKV
from resonetics.raft.entry import Entry, EntryType
from resonetics.raft.ready import HardState, Snapshot
from resonetics.raft.types import Index, NodeId
from resonetics.sim.invariants import SafetyMonitor, SimViolation
from resonetics.storage.api import NodeStorage, RecoveredState

#: Read once: an enum member read off its class costs a descriptor call per apply.
_GENESIS, _SNAP_DUMMY = EntryType.GENESIS, EntryType.SNAP_DUMMY


class ObservedStorage:
    """``NodeStorage`` that reports appends to the monitor; keeps a mirror of the hashes."""

    def __init__(self, inner: NodeStorage, node: NodeId, monitor: SafetyMonitor) -> None:
        self._inner = inner
        self._node = node
        self._monitor = monitor
        self._anchor: Index = 0
        #: Hashes of the log, anchor first: ``_hashes[k]`` is index ``_anchor + k``.
        self._hashes: list[str] = []
        #: Jobs handed to the node's disk thread and not run yet, and whether the disk
        #: thread is the caller now (``sim/executor.py`` keeps both up to date).
        self.disk_jobs_queued = 0
        self.on_disk_thread = False
        #: The same for the snapshot thread (it writes the snapshot file, nothing else).
        self.snapshot_jobs_queued = 0
        self.on_snapshot_thread = False

    def _one_user(self, call: str) -> None:
        """The loop may not touch the log files while the disk thread has a job queued:
        on a server the two threads would write the same files at once; the snapshot
        thread never touches them. (meta.json is not checked: the loop writes it only
        in ``begin_ready``, before a Ready's job is queued, and a snapshot's save does
        not touch it.)"""
        if self.on_snapshot_thread:
            raise SimViolation(f"storage race: {self._node}'s snapshot thread calls {call}")
        if self.disk_jobs_queued and not self.on_disk_thread:
            raise SimViolation(
                f"storage race: {self._node}'s loop calls {call} while its disk thread has "
                f"{self.disk_jobs_queued} job(s) queued"
            )

    def _one_snapshot_file_user(self, call: str) -> None:
        """Nothing but the snapshot thread may write the snapshot file while it has a job
        queued (a snapshot being installed waits for the one being taken: rule 3)."""
        if self.snapshot_jobs_queued and not self.on_snapshot_thread:
            raise SimViolation(
                f"storage race: {self._node} calls {call} while its snapshot thread has "
                f"{self.snapshot_jobs_queued} job(s) queued"
            )

    def load(self) -> RecoveredState:
        state = self._inner.load()
        self._anchor = state.anchor.index
        self._hashes = [state.anchor.hash]
        self._monitor.on_recovered(self._node, state.anchor.index + len(state.entries))
        self._monitor.on_append(self._node, state.anchor.hash, state.entries)
        self._hashes.extend(e.hash for e in state.entries)
        return state

    def append(self, entries: Sequence[Entry]) -> None:
        self._one_user("append")
        if entries:
            expected = self._anchor + len(self._hashes)
            if entries[0].index != expected:
                raise SimViolation(
                    f"{self._node} appends index {entries[0].index}, its log ends at {expected - 1}"
                )
            self._monitor.on_append(self._node, self._hashes[-1], entries)
            self._hashes.extend(e.hash for e in entries)
        self._inner.append(entries)

    def truncate_from(self, index: Index) -> None:
        self._one_user("truncate_from")
        keep = max(1, index - self._anchor)
        cut = {self._anchor + k: h for k, h in enumerate(self._hashes) if k >= keep}
        self._monitor.on_truncate(self._node, index, cut)
        del self._hashes[keep:]
        self._inner.truncate_from(index)

    def sync(self) -> None:
        self._inner.sync()

    def save_hard_state(self, hard_state: HardState, last_applied: Index) -> None:
        self._inner.save_hard_state(hard_state, last_applied)

    def save_snapshot(self, snapshot: Snapshot, last_applied: Index) -> None:
        self._one_user("save_snapshot")
        self._one_snapshot_file_user("save_snapshot")
        self._inner.save_snapshot(snapshot, last_applied)
        self._compacted(snapshot)

    def write_snapshot_file(self, snapshot: Snapshot) -> None:
        self._one_snapshot_file_user("write_snapshot_file")
        self._inner.write_snapshot_file(snapshot)

    def prepare_compaction(self, snapshot: Snapshot, keep_from: Entry | None) -> None:
        self._one_snapshot_file_user("prepare_compaction")
        self._inner.prepare_compaction(snapshot, keep_from)

    def compact_to_snapshot(self, snapshot: Snapshot, keep_from: Entry | None = None) -> None:
        self._one_user("compact_to_snapshot")
        self._inner.compact_to_snapshot(snapshot, keep_from)
        if keep_from is not None and keep_from.index < snapshot.meta.last_included_index:
            # Entries retained behind the snapshot: only what precedes ``keep_from`` goes.
            cut = keep_from.index - self._anchor
            if cut > 0:
                self._anchor, self._hashes = keep_from.index, self._hashes[cut:]
            return
        self._compacted(snapshot)

    def _compacted(self, snapshot: Snapshot) -> None:
        # Compaction keeps the tail after the snapshot's index, if the log has one.
        cut = snapshot.meta.last_included_index - self._anchor
        joins = (
            0 <= cut < len(self._hashes) and self._hashes[cut] == snapshot.meta.last_included_hash
        )
        tail = self._hashes[cut + 1 :] if joins else []
        self._anchor = snapshot.meta.last_included_index
        self._hashes = [snapshot.meta.last_included_hash, *tail]
        # A snapshot that does not join the log replaces it: what was acked past it goes.
        self._monitor.on_truncate(self._node, self._anchor + len(self._hashes), {})

    def close(self) -> None:
        self._inner.close()


class ObservedKV(ReplicatedKV):
    """The replicated key-value store (or ``machine``, for ``sim --machine``), reporting
    each applied entry to the monitor and, when ``on_state`` is given, the machine's
    state after it (``sim/machine_client.Convergence``)."""

    def __init__(
        self,
        node: NodeId,
        monitor: SafetyMonitor,
        machine: StateMachine | None = None,
        on_state: Callable[[NodeId, Entry, bytes], None] | None = None,
    ) -> None:
        super().__init__(machine)
        self._node = node
        self._monitor = monitor
        self._on_state = on_state
        #: The virtual clock, for lease checks (``sim/lease_checks.py``); None: unchecked.
        self.lease_clock: Callable[[], int] | None = None

    def apply(self, entry: Entry, *, answers: bool = True) -> ApplyResult:
        table = getattr(self.machine, "lease_table", None)
        before = set(table.leases) if table is not None and table.leases else None
        result = super().apply(entry, answers=answers)
        kind = entry.type
        if kind is not _GENESIS and kind is not _SNAP_DUMMY:
            self._monitor.on_apply(self._node, entry)
            if before is not None and table is not None and self.lease_clock is not None:
                ended = tuple(sorted(before - set(table.leases)))
                self._monitor.leases.on_applied(self._node, entry.index, ended, self.lease_clock())
            if self._on_state is not None:
                self._on_state(self._node, entry, self.machine.snapshot())
        return result


__all__ = ["ObservedKV", "ObservedStorage"]
