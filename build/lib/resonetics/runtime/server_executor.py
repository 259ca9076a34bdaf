"""The server's executor of the driver loop: the event loop, a disk thread, a snapshot thread.

Theory of operation
-------------------
The driver names each step (``runtime/loop_plan.py``); this carries it out on
asyncio. ``run_now`` is called straight from an event loop callback and runs
every step that needs no waiting (no write, a small write done inline, the
start of a snapshot); it returns False, keeping the Ready in the driver, when a
step must wait. ``run`` (in a task) then goes on from that Ready: a big write
is handed to the disk thread and awaited, while the loop keeps reading sockets
and stepping the core — the next batch accumulates (group commit) and acks of
the previous one are handled, so the fsync of batch k overlaps the network
work of k - 1 and k + 1.

A long apply (a replay at start, any backlog past the core's ``apply_*_max``
budget per Ready) goes one slice per loop turn: ``run_now`` hands it to ``run``,
which yields to the loop between slices, so the node reads its sockets, acks and
votes while it catches up.

A snapshot is taken in a task of its own: one slice of the encoding per event
loop turn, then the file is written on a snapshot thread (it touches the
snapshot file alone, so the disk thread goes on writing and syncing the log and
the node keeps acking), then the log is compacted on the disk thread (behind any
write queued there: the log files are never used from two threads at once),
then the core is told. A Ready that installs a snapshot waits for it.

A received snapshot's state is read in a task of its own too, one slice per loop
turn, before the core installs it (``runtime/snapshot_reading.py``). If that task fails,
the next ``run_now``/``run`` raises its error: the node stops rather than
serve on from a state nobody can vouch for.

The simulator's executor (``sim/executor.py``) carries out the same steps with
a disk thread modelled in virtual time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from resonetics.errors import invariant
from resonetics.raft import snapshot as snapshot_format
from resonetics.raft.ready import Snapshot
from resonetics.runtime.driver import NodeDriver
from resonetics.runtime.loop_plan import INLINE_STEPS, SnapshotStep, Step
from resonetics.runtime.snapshot_reading import SnapshotReading
from resonetics.runtime.snapshots import SnapshotJob

#: Runs a blocking call off the event loop and awaits it (the server's disk thread).
BlockingRunner = Callable[..., Awaitable[None]]
#: Starts a background task (the snapshot's); the owner of the server's tasks may pass its own.
Spawner = Callable[[Coroutine[Any, Any, None]], "asyncio.Future[None]"]


class ServerExecutor:
    """Carries out one driver's steps on the event loop, the disk thread and the
    snapshot thread."""

    def __init__(
        self,
        driver: NodeDriver,
        run_blocking: BlockingRunner,
        spawn: Spawner | None = None,
        *,
        run_snapshot_write: BlockingRunner | None = None,
    ) -> None:
        """``run_blocking`` runs a call on the disk thread; ``run_snapshot_write`` on the
        snapshot thread (the disk thread's when not given)."""
        self.driver = driver
        self._run_blocking = run_blocking
        self._run_snapshot_write = run_snapshot_write or run_blocking
        #: Starts the snapshot task; the server hands in its TaskGroup's, which owns it.
        self.spawn: Spawner = spawn if spawn is not None else asyncio.ensure_future
        #: The snapshot task, while one is being taken.
        self._taking: asyncio.Future[None] | None = None
        self._failure: BaseException | None = None

    def run_now(self) -> bool:
        """Run the steps that need no waiting; False when one must wait (then ``run``)."""
        if self._failure is not None:
            raise self._failure
        driver = self.driver
        while True:
            step = driver.next_step()
            if step in INLINE_STEPS:
                job = driver.begin_ready()
                job.write()
                driver.finish_ready(job)
                if driver.core.apply_sliced:
                    return False  # the rest of a long apply from ``run``, a loop turn apart
            elif step is Step.START_SNAPSHOT:
                self._start_snapshot()
            elif step is Step.READ_SNAPSHOT:
                self._start_reading()
            else:  # NOTHING: done; anything else must wait, in ``run``
                return step is Step.NOTHING

    async def run(self) -> None:
        """Run steps, waiting where they say so, until there is nothing left to do."""
        driver = self.driver
        while True:
            if self._failure is not None:
                raise self._failure
            if driver.core.apply_sliced:
                # A long apply goes a slice per loop turn: sockets are read, acks and
                # votes answered in between (a replay at start no longer mutes a node).
                await asyncio.sleep(0)
            step = driver.next_step()
            if step in INLINE_STEPS:
                job = driver.begin_ready()
                job.write()
                driver.finish_ready(job)
            elif step is Step.WRITE_ON_DISK_THREAD:
                job = driver.begin_ready()
                await self._run_blocking(job.write)
                driver.finish_ready(job)
            elif step is Step.WAIT_FOR_SNAPSHOT:
                assert self._taking is not None
                await asyncio.wait({self._taking})
            elif step is Step.START_SNAPSHOT:
                self._start_snapshot()
            elif step is Step.READ_SNAPSHOT:
                self._start_reading()
            else:
                invariant(step is Step.NOTHING, f"server executor cannot {step.value} here")
                return

    def _start_snapshot(self) -> None:
        job = self.driver.start_snapshot()
        self._taking = self.spawn(self._take(job))
        self._taking.add_done_callback(self._took)

    async def _take(self, job: SnapshotJob) -> None:
        try:
            while True:
                step = job.next_step()
                if step is SnapshotStep.SNAPSHOT_SLICE:
                    await asyncio.sleep(0)  # one slice per loop turn: the node keeps serving
                    job.slice()
                elif step is SnapshotStep.WRITE_SNAPSHOT_FILE:
                    await self._run_snapshot_write(job.write_file)
                elif step is SnapshotStep.COMPACT_LOG:
                    await self._run_blocking(job.compact_log)
                else:
                    self.driver.finish_snapshot(job)
                    return
        except BaseException:
            self.driver.abandon_snapshot(job)
            raise

    def hash_recovered_snapshot(self) -> None:
        """Make the stream checksum of the snapshot the node restarted with on the
        snapshot thread, in the background (hashlib lets go of the GIL over the state).

        Without it a restarted leader hashed the whole state on its loop when a first
        follower needed the snapshot: about 90 ms at 160 MB. A stream that starts before
        it is done still makes the checksum itself, as before.
        """
        snapshot = self.driver.core.snapshot_to_hash()
        if snapshot is not None:
            self.spawn(self._hash(snapshot)).add_done_callback(self._ended)

    async def _hash(self, snapshot: Snapshot) -> None:
        made: list[str] = []
        await self._run_snapshot_write(
            lambda: made.append(snapshot_format.stream_checksum(snapshot))
        )
        self.driver.core.snapshot_hashed(snapshot.meta.last_included_index, made[0])

    def _start_reading(self) -> None:
        self.spawn(self._read(self.driver.start_reading())).add_done_callback(self._ended)

    async def _read(self, reading: SnapshotReading) -> None:
        while True:
            await asyncio.sleep(0)  # one slice per loop turn: the node keeps acking
            if reading.slice():
                return

    def _took(self, task: asyncio.Future[None]) -> None:
        self._taking = None
        self._ended(task)

    def _ended(self, task: asyncio.Future[None]) -> None:
        """A background task (a snapshot taken, or a received one read) ended."""
        if not task.cancelled() and task.exception() is not None:
            self._failure = task.exception()  # raised by the next run_now / run

    @property
    def snapshot_in_progress(self) -> bool:
        return self._taking is not None

    async def wait_snapshot(self) -> None:
        """Let a snapshot being taken finish (shutdown)."""
        if self._taking is not None:
            await asyncio.wait({self._taking})


__all__ = ["BlockingRunner", "ServerExecutor", "Spawner"]
