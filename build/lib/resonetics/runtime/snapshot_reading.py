"""A follower reads a received snapshot's state before the core installs it.

Theory of operation
-------------------
Once the last chunk of a snapshot has arrived and its checksum holds, the core asks
the driver (``RaftNode``'s ``snapshot_prepared``) whether that snapshot's state has
been read. The first time it has not: the driver starts a ``SnapshotReading``, the
core keeps the snapshot assembled and asks the leader for the last chunk again.
The executor runs the reading a slice per loop turn (``Step.READ_SNAPSHOT``), so the
node goes on answering heartbeats, votes and clients meanwhile. When the leader
resends the last chunk (at once, then on its stall timer) after the reading is done,
the core installs it, and the driver puts the state read in place with one
assignment per structure (``PendingRestore.apply``). A state that cannot be used is
refused as soon as the reading finds out: the refusal is counted and the core lets
the assembled snapshot go, so the leader's next resend starts the stream over.

Why: installing used to read the state twice on the loop, once into a scratch
machine to check it and once into the real one, in one step each. With the session
table at its byte bound that was 4-8 s during which the follower acked nothing; in
a three-node cluster with one node down the leader lost its quorum. A million keys
took about a second.

Nothing of the node's state changes while it reads: the reading builds new
structures and the install swaps them in. A reading that fails refuses the
snapshot, as the scratch check before the install did. A wrapped machine without ``restore_steps`` is still checked by a scratch
restore (in one step) and restored at the install, in one call.
"""

from __future__ import annotations

from collections.abc import Callable, Generator

from resonetics.gc_pause import gc_paused
from resonetics.machine.replicated import PendingRestore
from resonetics.raft.ready import Snapshot
from resonetics.runtime.message_gate import (
    SNAPSHOT_GARBAGE_STATE,
    STATE_UNREADABLE,
    state_reason,
)


class SnapshotReading:
    """One received snapshot's state, read a slice per ``slice`` call."""

    def __init__(
        self,
        snapshot: Snapshot,
        steps: Generator[None, None, PendingRestore],
        scratch_check: Callable[[Snapshot], str | None],
        on_refused: Callable[[SnapshotReading], None] = lambda reading: None,
    ) -> None:
        """``steps``: ``ReplicatedKV.restore_steps(snapshot.data)`` of the node's
        machine; ``scratch_check``: the one-call check for a wrapped machine that
        cannot be read in steps; ``on_refused``: told as soon as the state turns out
        unusable (``reason`` says why), so the node lets the snapshot go at once."""
        self.snapshot = snapshot
        self._steps: Generator[None, None, PendingRestore] | None = steps
        self._scratch_check = scratch_check
        self._on_refused = on_refused
        #: Set once done: the state read, ready to put in place (None if refused).
        self.pending: PendingRestore | None = None
        #: Set once done: why the snapshot must not be installed, or None.
        self.reason: str | None = None
        self.slices = 0

    @property
    def done(self) -> bool:
        return self._steps is None

    def slice(self) -> bool:
        """Read one more slice; True once done (read, refused or dropped)."""
        steps = self._steps
        if steps is None:
            return True
        self.slices += 1
        pending: PendingRestore | None = None
        try:
            # Each slice makes thousands of long-lived objects in a row: see gc_pause.py.
            with gc_paused():
                next(steps)
        except StopIteration as end:
            pending = end.value
            reason = self._verdict(end.value)
        except STATE_UNREADABLE:
            reason = SNAPSHOT_GARBAGE_STATE
        else:
            return False
        if reason is None:
            self._finish(pending, None)
            return True
        self._finish(None, reason)
        self._on_refused(self)
        return True

    def _verdict(self, pending: PendingRestore) -> str | None:
        """Why the state read must not be installed, or None."""
        reason = state_reason(
            self.snapshot,
            pending.last_applied,
            pending.last_applied_term,
            pending.last_applied_hash,
        )
        if reason is None and not pending.machine_read:
            reason = self._scratch_check(self.snapshot)
        return reason

    def drop(self) -> None:
        """Stop reading (another snapshot came, or this one is no longer needed)."""
        if self._steps is not None:
            self._steps.close()
        self._finish(None, "dropped")

    def _finish(self, pending: PendingRestore | None, reason: str | None) -> None:
        self._steps = None
        self.pending, self.reason = pending, reason


__all__ = ["SnapshotReading"]
