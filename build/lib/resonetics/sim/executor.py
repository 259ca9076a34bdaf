"""The simulator's executor of the driver loop: a disk thread in virtual time.

Theory of operation
-------------------
The driver names each step (``runtime/loop_plan.py``); the server carries it
out on asyncio and a disk thread (``runtime/server_executor.py``), and this
carries out the same steps on the virtual clock, so every path the server
takes the simulator takes too:

- ``NO_WRITE`` / ``WRITE_INLINE``: at once, on the node's own event.
- ``WRITE_ON_DISK_THREAD``: the Ready is begun now; its write runs on the
  node's *disk thread*, a FIFO modelled as events: the write itself at
  ``start + latency`` (seeded, ``DISK_LATENCY_MS``), where ``start`` is when the
  previous job on the thread is done, and the loop notices it (``finish_ready``,
  then the loop goes on: there is no lost wake-up, and ``Cluster.check_awake``
  fails the run if there is one) up to ``NOTICE_MS_MAX`` later.
  Meanwhile the node keeps receiving messages, ticks and client requests: they
  are stepped into the core (which allows input between ``ready()`` and
  ``advance()``) and wait, as on the server, for the write to finish.
- ``START_SNAPSHOT``: the state is fixed now; each further slice of its
  encoding is an event of its own, then the snapshot file is written on the
  node's *snapshot thread* (a FIFO of its own, modelled like the disk thread,
  while log writes go on), then the log is compacted on the disk thread
  (behind any write queued there), then the core is told; a Ready that installs
  a snapshot meanwhile waits (``WAIT_FOR_SNAPSHOT``) and is resumed then.
- ``READ_SNAPSHOT``: each slice of a received snapshot's reading is an event of
  its own (``runtime/snapshot_reading.py``); the core installs it once read.

A crash while a job is on the disk thread is the existing power cut
(``sim/cluster.py``): if the write had not run yet, it is lost whole (nothing
of it reached the disk); if it ran but the loop had not noticed, it is on disk
and synced though nobody was told. Either way the node's memory is gone and
the job's events, which belong to that incarnation's driver, do nothing.

The size under which a write is done inline is drawn per incarnation from
``INLINE_ENTRIES_CHOICES`` (with 0, every write with entries goes to the disk
thread), and every random draw comes from the run's seed: same seed, same run.
"""

from __future__ import annotations

import functools
import random
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from resonetics import planted
from resonetics.planted import Bug
from resonetics.runtime.driver import INLINE_WRITE_ENTRIES_MAX, NodeDriver
from resonetics.runtime.loop_plan import INLINE_STEPS, SnapshotStep, Step
from resonetics.runtime.snapshot_reading import SnapshotReading
from resonetics.runtime.snapshots import SnapshotJob
from resonetics.sim.observed import ObservedStorage

if TYPE_CHECKING:
    from resonetics.sim.cluster import Cluster, SimNode

#: Virtual time one job takes on the disk thread, drawn per job (milliseconds, inclusive).
DISK_LATENCY_MS = (1, 4)
#: How long after a disk job is done the loop notices it, at most (virtual milliseconds).
NOTICE_MS_MAX = 1
#: Virtual time between two slices of a snapshot's encoding, at most (milliseconds).
SLICE_MS_MAX = 1
#: Inline-write thresholds an incarnation draws from (entries); the server's is the last.
INLINE_ENTRIES_CHOICES = (0, 1, 4, INLINE_WRITE_ENTRIES_MAX)

#: Every loop step by ``id`` (members live as long as their enum: the ids are stable).
_STEP_BY_ID: dict[int, Step | SnapshotStep] = {id(s): s for s in (*Step, *SnapshotStep)}
_INLINE_IDS = frozenset(id(s) for s in INLINE_STEPS)
_NOTHING, _WRITE_ON_DISK_THREAD = Step.NOTHING, Step.WRITE_ON_DISK_THREAD


class SimExecutor:
    """Carries out one incarnation's driver steps on the virtual clock."""

    def __init__(
        self, cluster: Cluster, node: SimNode, driver: NodeDriver, rng: random.Random
    ) -> None:
        self.cluster = cluster
        self.node = node
        self.driver = driver
        self.rng = rng
        driver.inline_entries_max = rng.choice(INLINE_ENTRIES_CHOICES)
        #: When the disk thread is done with the last job handed to it (virtual ms).
        self._disk_free_ms = 0
        #: The same for the snapshot thread.
        self._snapshot_free_ms = 0
        #: Steps carried out, by ``id`` of the step (the run's loop coverage): an enum
        #: member hashes in Python (``Enum.__hash__``), an int in C, and counting costs
        #: two hashes per step; ``steps`` names them.
        self._counts: Counter[int] = Counter()
        #: Times a long apply went on at a later event (the server yields to its loop).
        self.apply_yields = 0
        #: A later event will go on with a long apply (``_apply_later``): not idle.
        self.resume_scheduled = False

    @property
    def steps(self) -> Counter[str]:
        """Steps carried out, by name (the run's loop coverage)."""
        return Counter({_STEP_BY_ID[key].value: count for key, count in self._counts.items()})

    # --- the loop ------------------------------------------------------------------------
    def run(self) -> None:
        """Carry out steps until one must wait (or there is nothing to do)."""
        driver, counts = self.driver, self._counts
        while True:
            step = driver.next_step()
            if step is _NOTHING:
                return
            key = id(step)
            counts[key] += 1
            if key in _INLINE_IDS:
                job = driver.begin_ready()
                job.write()
                driver.finish_ready(job)
                if driver.core.apply_sliced:
                    self._apply_later()
                    return
            elif step is _WRITE_ON_DISK_THREAD:
                write_job = driver.begin_ready()
                self._on_disk_thread(
                    write_job.write, functools.partial(driver.finish_ready, write_job)
                )
                return
            elif step is Step.START_SNAPSHOT:
                snapshot = driver.start_snapshot()
                self._next_slice(snapshot)
            elif step is Step.READ_SNAPSHOT:
                self._next_reading_slice(driver.start_reading())
            else:
                return  # a wait that a later event ends

    def _apply_later(self) -> None:
        """The rest of a long apply at a later event of the same instant: as the server's
        executor yields to its loop between slices, what is already queued (messages,
        ticks, client requests) is handled first."""
        self.apply_yields += 1
        if self.resume_scheduled:
            return

        def go_on() -> None:
            self.resume_scheduled = False
            if self._alive():
                self.cluster.run(self.node, lambda _d: None)

        self.resume_scheduled = True
        self.cluster.queue.after(0, go_on)

    # --- the disk and snapshot threads ----------------------------------------------------
    def _on_disk_thread(self, work: Callable[[], None], then: Callable[[], None]) -> None:
        """Run ``work`` on the disk thread (FIFO), then ``then`` on the loop when noticed."""
        queue = self.cluster.queue
        start = max(queue.now_ms, self._disk_free_ms)
        self._disk_free_ms = done = start + self.rng.randint(*DISK_LATENCY_MS)
        self._on_thread(done, work, then, snapshot_thread=False)

    def _on_snapshot_thread(self, work: Callable[[], None], then: Callable[[], None]) -> None:
        """Run ``work`` on the snapshot thread (FIFO), then ``then`` on the loop when noticed."""
        queue = self.cluster.queue
        start = max(queue.now_ms, self._snapshot_free_ms)
        self._snapshot_free_ms = done = start + self.rng.randint(*DISK_LATENCY_MS)
        self._on_thread(done, work, then, snapshot_thread=True)

    def _on_thread(
        self,
        done: int,
        work: Callable[[], None],
        then: Callable[[], None],
        *,
        snapshot_thread: bool,
    ) -> None:
        queue = self.cluster.queue
        notice = self.rng.randint(0, NOTICE_MS_MAX)
        storage = self.driver.storage
        observed = storage if isinstance(storage, ObservedStorage) else None
        if observed is not None:
            if snapshot_thread:
                observed.snapshot_jobs_queued += 1
            else:
                observed.disk_jobs_queued += 1

        def on_thread() -> None:
            if not self._alive():
                return
            if self._run_on_thread(work, observed, snapshot_thread):
                queue.after(notice, on_loop)

        def on_loop() -> None:
            if self._alive():
                self._resume(then)
                if self._alive():  # not lost in a power cut meanwhile
                    self.cluster.check_awake(self.node, self.driver)

        queue.at(done, on_thread)

    def _run_on_thread(
        self, work: Callable[[], None], observed: ObservedStorage | None, snapshot_thread: bool
    ) -> bool:
        if observed is None:
            return self.cluster.run_disk_job(self.node, work)
        if snapshot_thread:
            observed.on_snapshot_thread = True
        else:
            observed.on_disk_thread = True
        try:
            return self.cluster.run_disk_job(self.node, work)
        finally:
            if snapshot_thread:
                observed.on_snapshot_thread = False
                observed.snapshot_jobs_queued -= 1
            else:
                observed.on_disk_thread = False
                observed.disk_jobs_queued -= 1

    def _resume(self, then: Callable[[], None]) -> None:
        """The loop notices a disk job is done and goes on at once: whatever was stepped
        meanwhile is handled now, not at the next tick (the lost wake-up fixed in the
        server's ``_flush_done``)."""
        # Planted bug: finish the job but do not look for more work (as if
        # ``NodeServer._flush_done`` did not reschedule): what arrived meanwhile sleeps.
        go_on = not planted.on(Bug.LOST_WAKEUP)
        self.cluster.run(self.node, lambda _d: then(), process=go_on)

    # --- snapshots --------------------------------------------------------------------------
    def _next_slice(self, job: SnapshotJob) -> None:
        def slice_() -> None:
            if self._alive():
                self.cluster.run(self.node, lambda _d: self._snapshot_step(job), process=False)

        self.cluster.queue.after(self.rng.randint(0, SLICE_MS_MAX), slice_)

    def _snapshot_step(self, job: SnapshotJob) -> None:
        step = job.next_step()
        self._counts[id(step)] += 1
        if step is SnapshotStep.SNAPSHOT_SLICE:
            job.slice()
            self._next_slice(job)
        elif step is SnapshotStep.WRITE_SNAPSHOT_FILE:
            self._on_snapshot_thread(job.write_file, lambda: self._snapshot_step(job))
        else:  # written: compact the log on the disk thread, then tell the core and go on
            self._on_disk_thread(job.compact_log, lambda: self._finish_snapshot(job))

    def _next_reading_slice(self, reading: SnapshotReading) -> None:
        """A received snapshot's reading: each slice an event of its own, as the server's
        executor runs one per loop turn."""

        def slice_() -> None:
            if self._alive() and not reading.slice():
                self._next_reading_slice(reading)

        self.cluster.queue.after(self.rng.randint(0, SLICE_MS_MAX), slice_)

    def _finish_snapshot(self, job: SnapshotJob) -> None:
        self._counts[id(SnapshotStep.FINISH_SNAPSHOT)] += 1
        self.driver.finish_snapshot(job)

    def _alive(self) -> bool:
        """Whether this executor's driver still runs (not lost in a power cut since)."""
        return self.node.driver is self.driver


__all__ = [
    "DISK_LATENCY_MS",
    "INLINE_ENTRIES_CHOICES",
    "NOTICE_MS_MAX",
    "SLICE_MS_MAX",
    "SimExecutor",
]
