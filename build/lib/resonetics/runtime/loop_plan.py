"""What the driver loop does next: one decision, no I/O (DESIGN §2).

Theory of operation
-------------------
The driver (``runtime/driver.py``) is run by two executors: the server's
(``runtime/server_executor.py``: asyncio and a disk thread) and the
simulator's (``sim/executor.py``: a disk thread modelled as virtual-time
events). Both ask the driver for the next step, carry it out, and ask again;
*what* to do is decided here, once, from a few facts about the driver and the
Ready it holds, so that every path the server takes the simulator takes too.

The rules, in the order ``decide`` applies them:

1. A Ready is in flight (handed to the disk thread, not yet finished):
   ``WAIT_FOR_WRITE``. One Ready in flight at a time; inputs that arrive
   meanwhile are stepped into the core (which allows input between
   ``ready()`` and ``advance()``) and proposed together after it: group commit
   during the fsync.
2. A received snapshot's state is to be read and no executor reads it yet:
   ``READ_SNAPSHOT`` (runtime/snapshot_reading.py). Only the start: the
   executor runs the reading a slice per loop turn, beside everything else.
3. No Ready waiting: ``START_SNAPSHOT`` when a snapshot is due and none is
   being taken, else ``NOTHING``.
4. The Ready installs a snapshot while one is being taken: ``WAIT_FOR_SNAPSHOT``
   (one user of the snapshot files at a time).
5. Nothing to write (a commit-only change, messages): ``NO_WRITE``.
6. A small write (at most ``inline_entries_max`` entries, no truncation, no
   installed snapshot to save: its file is the size of the state) while the
   disk thread is idle (no snapshot being saved there): ``WRITE_INLINE``.
7. Otherwise ``WRITE_ON_DISK_THREAD``.

A snapshot being taken goes through its own steps (``snapshot_step``):
``SNAPSHOT_SLICE`` until the state is encoded (the state is fixed at the first
slice), ``WRITE_SNAPSHOT_FILE`` on the snapshot thread (the snapshot file only,
while the disk thread goes on writing the log), ``COMPACT_LOG`` on the disk
thread (behind the log writes queued there), then ``FINISH_SNAPSHOT`` (the
core is told and compacts). Writing the file on the disk thread held up every
log write behind it: at 66 MB of state a node neither acked nor committed for
half a second, and when all nodes snapshot at the same index (they do: same log,
same rule) the leader lost its quorum (``bench/large_store.py``).

The guarantees the steps keep are the driver's (``driver.py``): a message that
depends on a write leaves only after it is durable, an entry is applied only
after it is committed, and a client is answered only after its entry is
applied. One apply is not a step: a leader applies what an ack commits, if it
is on its own disk, when it steps the ack (``NodeDriver._apply_on_commit``),
under ``WAIT_FOR_WRITE`` too; both executors step acks the same way, so the
simulator runs it as the server does.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from resonetics import planted
from resonetics.planted import Bug


class Step(enum.Enum):
    """The next step of the driver loop."""

    #: No Ready, no snapshot due: wait for input.
    NOTHING = "nothing"
    #: Handle the Ready on this thread; it writes nothing.
    NO_WRITE = "no-write"
    #: Handle the Ready on this thread, its (small) write included.
    WRITE_INLINE = "write-inline"
    #: Begin the Ready here, write it on the disk thread, finish it here when durable.
    WRITE_ON_DISK_THREAD = "write-on-disk-thread"
    #: A Ready is on the disk thread: step inputs, wait for it.
    WAIT_FOR_WRITE = "wait-for-write"
    #: The Ready installs a snapshot while one is being taken: wait for that.
    WAIT_FOR_SNAPSHOT = "wait-for-snapshot"
    #: A snapshot is due: start taking one (its steps are ``snapshot_step``'s).
    START_SNAPSHOT = "start-snapshot"
    #: A received snapshot's state is to be read before its install: start reading it,
    #: a slice per loop turn (runtime/snapshot_reading.py).
    READ_SNAPSHOT = "read-snapshot"


class SnapshotStep(enum.Enum):
    """The next step of a snapshot being taken."""

    #: Encode one more slice of the (fixed) state, on the loop.
    SNAPSHOT_SLICE = "snapshot-slice"
    #: Sign the encoded snapshot and write its file, on the snapshot thread.
    WRITE_SNAPSHOT_FILE = "write-snapshot-file"
    #: Start the file log at the written snapshot, on the disk thread.
    COMPACT_LOG = "compact-log"
    #: Saved: hand it to the core and compact, on the loop.
    FINISH_SNAPSHOT = "finish-snapshot"


class ReadyShape(NamedTuple):
    """What the plan needs to know about the Ready the driver holds."""

    entries: int
    truncates: bool
    writes_disk: bool
    installs_snapshot: bool


class LoopState(NamedTuple):
    """The driver's facts the plan decides from."""

    ready: ReadyShape | None
    write_in_flight: bool
    snapshot_in_progress: bool
    snapshot_due: bool
    #: A received snapshot's reading is wanted and no executor runs it yet.
    reading_wanted: bool = False


def decide(state: LoopState, inline_entries_max: int) -> Step:
    """The next step for ``state`` (rules in the module docstring)."""
    if state.write_in_flight:
        return Step.WAIT_FOR_WRITE
    if state.reading_wanted:
        return Step.READ_SNAPSHOT
    rd = state.ready
    if rd is None:
        if state.snapshot_due and not state.snapshot_in_progress:
            return Step.START_SNAPSHOT
        return Step.NOTHING
    # Planted bug: forget that the disk thread is saving a snapshot (rules 4 and 6).
    saving = state.snapshot_in_progress and not planted.on(Bug.SNAPSHOT_INSTALL_RACES_LOG_WRITE)
    if rd.installs_snapshot and saving:
        return Step.WAIT_FOR_SNAPSHOT
    if not rd.writes_disk:
        return Step.NO_WRITE
    if rd.entries <= inline_entries_max and not (rd.truncates or rd.installs_snapshot or saving):
        return Step.WRITE_INLINE
    return Step.WRITE_ON_DISK_THREAD


def snapshot_step(encoded: bool, written: bool, saved: bool) -> SnapshotStep:
    """The next step of a snapshot being taken."""
    if not encoded:
        return SnapshotStep.SNAPSHOT_SLICE
    if not written:
        return SnapshotStep.WRITE_SNAPSHOT_FILE
    if not saved:
        return SnapshotStep.COMPACT_LOG
    return SnapshotStep.FINISH_SNAPSHOT


#: Steps that handle a Ready on the loop's own thread.
INLINE_STEPS = frozenset({Step.NO_WRITE, Step.WRITE_INLINE})


__all__ = [
    "INLINE_STEPS",
    "LoopState",
    "ReadyShape",
    "SnapshotStep",
    "Step",
    "decide",
    "snapshot_step",
]
