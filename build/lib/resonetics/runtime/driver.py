"""The one driver loop: persist → send → apply → advance (DESIGN §2).

Theory of operation
-------------------
``NodeDriver`` owns one ``RaftNode``, its ``NodeStorage`` and its replicated
state machine. It is synchronous and single-threaded: the asyncio server calls
it from the event loop, the simulator from its scheduler, and both implement
``runtime.host.Host`` for time and message delivery. Nothing here knows about
sockets or virtual clocks, so the simulator exercises exactly the code that
ships.

Everything the core asks for comes out of ``RaftNode.ready()`` and is carried
out in the order ``raft/ready.py`` documents. ``next_step()`` names what to do
with the Ready in hand (``runtime/loop_plan.py``); an executor carries it out
through the two halves ``begin_ready()`` / ``finish_ready()`` with the job's
``write()`` between them, on its own thread or a disk thread
(``runtime/server_executor.py``, ``sim/executor.py``; ``process_ready()`` runs
every step on the calling thread, for tests and shutdown). The log
and hard state are made durable (one fsync per Ready: group commit) *before*
any message that depends on them is handed to the host; committed entries are
applied in order (those already on this node's disk before the write, the rest
after it); then ``advance()``. A leader also applies entries already on its
disk on the ack that commits them, Ready or not (``_apply_on_commit``). Small
writes run on the calling thread, big ones on the disk thread
(``INLINE_WRITE_ENTRIES_MAX``); while one is there, input is stepped into the
core and proposed after it (group commit).

Client commands wait in ``_waiters`` keyed by log index, tagged with the term
they were proposed in: when that index is applied with the same term the
proposal committed; a different term means it was overwritten. Reads registered
through ReadIndex wait in ``_reads`` until the core confirms leadership for
them, then until the state machine has applied up to the read's index.
"""

from __future__ import annotations

import itertools
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from resonetics import errors, limits, planted
from resonetics.errors import invariant
from resonetics.gc_pause import gc_paused
from resonetics.machine.replicated import ReplicatedKV, receipt_of
from resonetics.planted import Bug
from resonetics.raft.config import RaftConfig
from resonetics.raft.entry import Entry, EntryType, Signer
from resonetics.raft.membership import Membership
from resonetics.raft.membership_change import ConfigChange
from resonetics.raft.messages import AppendEntries, AppendEntriesResp, InstallSnapshot, Message
from resonetics.raft.node import RaftNode
from resonetics.raft.packing import canonical, unpacked
from resonetics.raft.ready import HardState, Ready, Role, Snapshot
from resonetics.raft.snapshot import MemorySpool, Spool
from resonetics.raft.types import Index, NodeId, Term
from resonetics.runtime.host import Host
from resonetics.runtime.leases import LeaseKeeper
from resonetics.runtime.loop_plan import LoopState, ReadyShape, Step, decide
from resonetics.runtime.message_gate import (
    MessageFilter,
    Refusals,
    SnapshotStateCheck,
    check_snapshot_chunk,
)
from resonetics.runtime.outcome import OnDone, Outcome
from resonetics.runtime.snapshot_reading import SnapshotReading
from resonetics.runtime.snapshots import (
    SnapshotJob,
    SnapshotPolicy,
    Snapshots,
    stagger_position,
)
from resonetics.storage.api import NodeStorage
from resonetics.wire import codes

#: Commit index advance after which meta.json's commit/applied hints are refreshed.
#: They are lower bounds (DESIGN §4), so refreshing rarely costs nothing in safety.
META_REFRESH_ENTRIES = 4096


#: A Ready with at most this many entries is written on the caller's thread instead of
#: the disk thread. Handing a write over and waiting for it costs a thread wake-up each
#: way (measured at ~0.1 ms per hop on a 2-core VM, as much as the fsync itself), which
#: dominates a lone write's latency; a big batch is worth writing on the disk thread,
#: because the loop then builds the next batch while this one is synced.
INLINE_WRITE_ENTRIES_MAX = 64


#: Client commands proposed as one CLIENT_BATCH entry, at most (count, then approximate
#: bytes of their arguments). Everything a leader received since its last Ready is
#: proposed together: one entry, one hash, one log line and one AppendEntries item for
#: the lot instead of one each. The byte bound keeps any entry (and so any
#: AppendEntries line) well under the wire's line limit: bytes are counted as sent,
#: and the limit allows for re-encoding growth, so the entry fits in APPEND_BYTES_MAX.
BATCH_COMMANDS_MAX = limits.BATCH_COMMANDS_MAX
BATCH_BYTES_MAX = limits.BATCH_PAYLOAD_BYTES_MAX

_ARGS_SIZE = msgspec.json.Encoder()


@dataclass(slots=True)
class _Waiter:
    """Who waits for the entry at one index: one callback per command in it."""

    term: Term
    callbacks: list[OnDone]

    def answer_all(self, outcome: Outcome) -> None:
        for on_done in self.callbacks:
            on_done(outcome)


class WriteJob:
    """One Ready between ``begin_ready`` and ``finish_ready``.

    ``write`` is the disk's half: the log and hard-state writes, durable on return.
    It touches only storage, so the server runs big ones on its disk thread while
    the loop goes on stepping input; the simulator runs it at a virtual time.
    """

    __slots__ = ("_driver", "applied", "ready", "writes")

    def __init__(self, driver: NodeDriver, ready: Ready, applied: Index, writes: bool) -> None:
        self._driver = driver
        self.ready = ready
        #: The applied index when the write began (meta.json's applied hint).
        self.applied = applied
        #: Whether there is anything to write (False for ``NO_WRITE``).
        self.writes = writes

    def write(self) -> None:
        if self.writes:
            self._driver._write(self.ready, self.applied)


@dataclass(slots=True)
class _Proposal:
    """A client command accepted by the leader, waiting to be put in an entry."""

    data: dict[str, Any]
    on_done: OnDone
    size: int


_CLIENT_ENTRIES = frozenset({EntryType.CLIENT_CMD, EntryType.CLIENT_BATCH})


@dataclass(slots=True)
class _PendingRead:
    op: str
    args: dict[str, Any]
    on_done: OnDone
    index: Index = -1  # set once the core has confirmed leadership for it


@dataclass(slots=True)
class DriverStats:
    """Counters for status pages, metrics and benchmarks."""

    readies: int = 0
    fsyncs: int = 0
    entries_persisted: int = 0
    entries_applied: int = 0
    #: Of those, applied (and answered) on the ack that committed them (``_apply_on_commit``).
    entries_applied_on_ack: int = 0
    messages_sent: int = 0
    #: Seconds spent in log writes and fsyncs (on whichever thread ran them).
    write_seconds: float = 0.0
    #: Peer messages (and assembled snapshots) refused at the gate, by reason
    #: (runtime/message_gate.py, security/entry_check.py).
    refused: dict[str, int] = field(default_factory=dict)


class NodeDriver:
    """Drives one Raft core, its storage and its state machine over a ``Host``."""

    def __init__(
        self,
        config: RaftConfig,
        storage: NodeStorage,
        host: Host,
        rng: random.Random,
        machine: ReplicatedKV | None = None,
        snapshot_policy: SnapshotPolicy | None = None,
        snapshot_spool: Callable[[], Spool] = MemorySpool,
        signer: Signer | None = None,
        message_filter: MessageFilter | None = None,
        snapshot_signer: Callable[[Snapshot], Snapshot] | None = None,
    ) -> None:
        """``message_filter`` checks every incoming peer message before it is stepped
        (with a trust registry: ``security.entry_check.EntryGate``); ``snapshot_signer``
        signs each snapshot this node takes. Snapshot streams are always checked
        (``runtime.message_gate``)."""
        self.config = config
        self.storage = storage
        self.host = host
        self.machine = machine if machine is not None else ReplicatedKV()
        self.stats = DriverStats()
        recovered = storage.load()
        membership = None
        #: The machine's state is the snapshot's, whose index the log's anchor may precede
        #: (entries retained behind it): the replay starts after the snapshot.
        restored = recovered.anchor.index
        if recovered.snapshot is not None:
            restored = recovered.snapshot.meta.last_included_index
            with gc_paused():  # a million records in a row: see resonetics/gc_pause.py
                self.machine.restore(recovered.snapshot.data)
            membership = recovered.snapshot.meta.membership
        else:
            # The chain starts at this cluster's GENESIS, not the anonymous one.
            self.machine.last_applied_hash = recovered.anchor.hash
        self._filter = message_filter
        if message_filter is not None:
            message_filter.remember(recovered.entries)
        self._refusals = Refusals(config.node_id, self.stats.refused)
        self._state_check = SnapshotStateCheck(self.machine)
        self.core = RaftNode(
            config,
            rng,
            hard_state=recovered.hard_state,
            anchor=recovered.anchor,
            entries=recovered.entries,
            applied=restored,
            membership=membership,
            snapshot_spool=snapshot_spool,
            signer=signer,
            snapshot_check=self._check_snapshot,
            snapshot_prepared=self._snapshot_read,
            # NodeStorage.load's contract: contiguous and hash-chained from the anchor.
            entries_linked=True,
        )
        self.snapshots = Snapshots(
            snapshot_policy or SnapshotPolicy(),
            restored,
            snapshot_signer,
            # Its place among the voters it starts with: nodes snapshot apart (snapshots.py).
            position=stagger_position(config.node_id, self.core.membership.voters),
        )
        self.snapshots.start(self.core, recovered.snapshot)
        self._durable_hs = recovered.hard_state
        self._meta_commit = recovered.hard_state.commit
        self._waiters: dict[Index, _Waiter] = {}
        #: Client commands accepted since the last Ready; proposed by ``_propose_pending``.
        self._proposals: list[_Proposal] = []
        self._reads: dict[int, _PendingRead] = {}
        self._confirmed_reads: deque[_PendingRead] = deque()
        self._read_ids = itertools.count(1)
        self._was_leader = False
        #: A snapshot being taken (between ``start_snapshot`` and ``finish_snapshot``).
        self._taking: SnapshotJob | None = None
        #: A received snapshot's state being read, or read, before the core installs it
        #: (runtime/snapshot_reading.py); ``_reading_started``: an executor runs it.
        self._reading: SnapshotReading | None = None
        self._reading_started = False
        #: The Ready between ``begin_ready`` and ``finish_ready``.
        self._in_flight: WriteJob | None = None
        #: Small writes are done inline up to this many entries (the simulator varies it).
        self.inline_entries_max = INLINE_WRITE_ENTRIES_MAX
        #: Messages of the Ready in flight that wait for its disk write.
        self._late: list[Message] = []
        #: How many of the Ready in flight's committed entries were applied before its write.
        self._applied_early = 0
        #: The last entry applied on an ack while a Ready was in flight (``_apply_on_commit``),
        #: confirmed to the core after that Ready's ``advance``; 0 when there is none.
        self._applied_ahead: Index = 0
        #: The core's Ready held by ``next_step``, not begun yet.
        self._pending: Ready | None = None
        #: Planted bugs only: the applied index reads were last served at (see planted.py).
        self._woken_at: Index = -1
        #: node id -> client address, for NOT_LEADER hints (set by the host).
        self.addresses: dict[NodeId, str] = {}
        #: Told the seconds of each log fsync (on the thread that ran it) and of each
        #: entry's apply; set by a host that serves metrics (server/metrics.py), else None.
        self.observe_fsync: Callable[[float], None] | None = None
        self.observe_apply: Callable[[float], None] | None = None
        #: Called after this node's acks (or votes) are flushed, when it has entries to
        #: apply next: the server gives its core away (``os.sched_yield``) so the leader
        #: the ack just woke runs before this apply. None in the simulator.
        self.yield_after_acks: Callable[[], None] | None = None
        #: Lease keep-alives and expiry proposals while leader (runtime/leases.py).
        self.leases = LeaseKeeper(self)

    # --- inputs ------------------------------------------------------------------
    # Inputs only feed the core; the caller runs ``process_ready()`` once after a
    # batch of them, so that everything that arrived together shares one fsync.
    def tick(self) -> None:
        self.core.tick()
        self.leases.tick()
        reading = self._reading
        if (
            reading is not None
            and self.machine.last_applied >= reading.snapshot.meta.last_included_index
        ):
            # Caught up by the log meanwhile: the state read is not needed (nor its memory).
            # The machine's index, not the core's: the core is at the snapshot's index as
            # soon as it installs it, before the Ready that hands the install over.
            self._drop_reading()

    def step(self, msg: Message) -> None:
        """Step ``msg`` unless the gate refuses it (then it is dropped whole and counted)."""
        # Without a filter only a snapshot chunk has anything to check (``_gate``).
        if self._filter is not None or isinstance(msg, InstallSnapshot):
            reason = self._gate(msg)
            if reason is not None:
                self._refusals.note(reason, msg)
                return
        self.core.step(msg)
        if type(msg) is AppendEntriesResp:
            self._apply_on_commit()

    def _apply_on_commit(self) -> None:
        """A leader applies and answers what an ack just committed, if it is on this
        node's disk, without waiting for a Ready (``RaftNode.take_committed``).

        Under load the ack that commits batch k arrives while batch k + 1 is being
        written or while the loop is reading requests: a Ready would apply k only after
        that write, or after every request that loop turn read (about 1.1 ms of a 9 ms
        write at 256 in flight, traced). Order is kept: nothing is taken while a Ready
        is held (its committed entries come first) or while the Ready in flight still
        has committed entries to apply after its write, or installs a snapshot. Nor
        while a backlog is being applied a slice per Ready: an ack must not apply a
        slice of its own, or a loop turn with several acks would stall for several.
        """
        if self._pending is not None or not self.core.is_leader or self.core.apply_sliced:
            return  # a backlog goes a slice per Ready, a loop turn apart (server_executor)
        job = self._in_flight
        if job is not None:
            rd = job.ready
            if rd.snapshot is not None or self._applied_early != len(rd.committed_entries):
                return
        entries = self.core.take_committed()
        if not entries:
            return
        before = self.stats.entries_applied
        for entry in entries:
            self._apply(entry)
        self.stats.entries_applied_on_ack += self.stats.entries_applied - before
        if job is None:
            self.core.applied_to(entries[-1].index)
        else:  # the core hears of it after the Ready in flight, whose entries come first
            self._applied_ahead = entries[-1].index
        self._serve_confirmed_reads()
        # The answers leave now, not behind the requests the loop reads next or the
        # write in flight.
        self.host.flush()

    def _gate(self, msg: Message) -> str | None:
        if isinstance(msg, InstallSnapshot):
            reason = check_snapshot_chunk(msg, self.snapshots.policy.bytes_max)
            if reason is not None:
                return reason
        return self._filter.check(msg) if self._filter is not None else None

    def _check_snapshot(self, snapshot: Snapshot) -> str | None:
        """The core's last look at an assembled snapshot before it installs it: the
        reading's verdict (``_snapshot_read``), or a scratch restore if none was read."""
        reading = self._reading
        if reading is not None and reading.snapshot is snapshot and reading.done:
            reason = reading.reason
        else:
            reason = self._state_check(snapshot)
        if reason is not None:
            self._refusals.note(reason, None)
            self._drop_reading()
        return reason

    def _snapshot_read(self, snapshot: Snapshot) -> bool:
        """Whether ``snapshot``'s state has been read; if not, start reading it (the
        core asks again when the leader resends the last chunk)."""
        reading = self._reading
        if reading is not None and reading.snapshot is snapshot:
            return reading.done
        self._drop_reading()
        steps = self.machine.restore_steps(snapshot.data)
        self._reading = SnapshotReading(snapshot, steps, self._state_check, self._reading_refused)
        self._reading_started = False
        return False

    def _reading_refused(self, reading: SnapshotReading) -> None:
        """The state read cannot be installed: count why, let the snapshot go."""
        if self._reading is reading:
            self._reading = None
        if reading.reason is not None:
            self._refusals.note(reading.reason, None)
        self.core.forget_snapshot(reading.snapshot)

    def _drop_reading(self) -> None:
        if self._reading is not None:
            self._reading.drop()
            self._reading = None

    def start_reading(self) -> SnapshotReading:
        """``READ_SNAPSHOT``: the executor runs the reading's slices, one per loop turn."""
        reading = self._reading
        invariant(reading is not None and not self._reading_started, "no reading to start")
        assert reading is not None
        self._reading_started = True
        return reading

    def submit(
        self,
        client_id: str,
        request_id: str,
        op: str,
        args: dict[str, Any],
        on_done: OnDone,
        *,
        size: int | None = None,
        session: Mapping[str, int] | None = None,
    ) -> None:
        """Accept a write; ``on_done`` is called once with its outcome.

        The command is proposed at the start of the next ``process_ready*`` call,
        together with every other command accepted meanwhile (``_propose_pending``).
        ``size`` is the caller's estimate of the command's bytes (the request line's
        length on a server); without it the arguments are encoded to measure them.
        """
        data: dict[str, Any] = {
            "client_id": client_id,
            "request_id": request_id,
            "op": op,
            "args": args,
        }
        if session is not None:  # a sequenced session's fields travel in the log
            data.update(session)
        verdict = self.machine.precheck(data)
        if verdict is not None:  # a dedup hit, or a request id reused with another payload
            on_done(_verdict_outcome(verdict.code, verdict.result, verdict.message))
            return
        if not self.core.is_leader:
            on_done(self.not_leader_outcome(self.core.leader_id))
            return
        data["ts"] = self.host.now_ms()
        if size is None:
            size = len(_ARGS_SIZE.encode(data))
            if size > limits.COMMAND_BYTES_MAX:
                # An entry no AppendEntries could carry would stall replication for good.
                message = f"command: {size} bytes encoded, more than {limits.COMMAND_BYTES_MAX}"
                on_done(Outcome(codes.TOO_LARGE, message=message))
                return
        self._proposals.append(_Proposal(data, on_done, size))

    def has_work(self) -> bool:
        """Commands to propose or a Ready to handle: an executor has something to do."""
        return bool(self._proposals) or self.has_ready_work()

    def has_ready_work(self) -> bool:
        """A Ready to handle (held, or the core has one), proposals aside."""
        return self._pending is not None or self.core.has_ready()

    def _propose_pending(self) -> None:
        """Propose the accepted commands: one CLIENT_CMD entry for a lone command (the
        same entry as ever), CLIENT_BATCH entries of up to BATCH_* for several."""
        if not self._proposals:
            return
        pending, self._proposals = self._proposals, []
        chunk: list[_Proposal] = []
        chunk_bytes = 0
        for proposal in pending:
            full = len(chunk) >= BATCH_COMMANDS_MAX or chunk_bytes + proposal.size > BATCH_BYTES_MAX
            if chunk and full:
                self._propose_chunk(chunk)
                chunk, chunk_bytes = [], 0
            chunk.append(proposal)
            chunk_bytes += proposal.size
        self._propose_chunk(chunk)

    def _propose_chunk(self, chunk: list[_Proposal]) -> None:
        waiter = _Waiter(self.core.term, [p.on_done for p in chunk])
        try:
            if len(chunk) == 1:
                index = self.core.propose(canonical(chunk[0].data))
            else:
                index = self.core.propose(canonical([p.data for p in chunk]), batch=True)
        except errors.NotLeader as exc:
            waiter.answer_all(self.not_leader_outcome(exc.leader_id))
            return
        except errors.ProposalDropped as exc:
            waiter.answer_all(Outcome(codes.UNAVAILABLE, message=str(exc)))
            return
        self._waiters[index] = waiter

    def read(self, op: str, args: dict[str, Any], on_done: OnDone, *, lease: bool = False) -> None:
        """A linearizable read through ReadIndex (dissertation §6.4); no log write.

        On a follower the core forwards the read index request to the leader and the
        read is served here once this node has applied up to the index it returns.
        ``lease=True`` lets a leader with a valid lease skip the heartbeat round.
        """
        read_id = next(self._read_ids)
        try:
            self.core.read_index(read_id, lease=lease)
        except errors.NotLeader as exc:
            on_done(self.not_leader_outcome(exc.leader_id))
            return
        self._reads[read_id] = _PendingRead(op, args, on_done)

    def read_stale(self, op: str, args: dict[str, Any]) -> Outcome:
        """Answer from this node's applied state, however far behind it is.

        The index reported is the state machine's own: while a Ready is on the disk
        thread, the entries already durable have been applied (``_apply_durable``)
        but the core learns so only at ``advance()``, so ``core.applied`` may lag the
        state read (the simulator's disk thread found this).
        """
        result = dict(self.machine.read(op, args))
        result["applied_index"] = self.machine.last_applied
        result["commit_index"] = self.core.commit_index
        return Outcome(codes.OK, result)

    def not_leader_outcome(self, leader: NodeId | None) -> Outcome:
        result: dict[str, Any] = {"term": self.core.term, "node": self.config.node_id}
        if leader is not None:
            result["leader"] = leader
            if leader in self.addresses:
                result["leader_addr"] = self.addresses[leader]
        return Outcome(codes.NOT_LEADER, result, message="not the leader")

    # --- membership (admin) ---------------------------------------------------------
    @property
    def membership(self) -> Membership:
        """The configuration this node follows now (the newest in its log, committed or not)."""
        return self.core.membership

    def change_membership(self, change: ConfigChange, on_done: OnDone) -> None:
        """Propose ``change``; ``on_done`` gets OK once its CONFIG entry has committed."""
        try:
            index = self.core.propose_config_change(change)
        except errors.NotLeader as exc:
            on_done(self.not_leader_outcome(exc.leader_id))
            return
        except errors.ConfigChangeInProgress as exc:
            on_done(Outcome(codes.UNAVAILABLE, message=str(exc)))  # the client retries
            return
        except errors.ConfigChangeRejected as exc:
            on_done(Outcome(codes.BAD_REQUEST, message=f"change: {exc}"))
            return
        self._waiters[index] = _Waiter(self.core.term, [on_done])

    def transfer_leadership(self, target: NodeId) -> Outcome:
        """Start handing leadership to ``target``; it aborts after an election timeout."""
        try:
            self.core.transfer_leadership(target)
        except errors.NotLeader as exc:
            return self.not_leader_outcome(exc.leader_id)
        except errors.ConfigChangeRejected as exc:
            return Outcome(codes.BAD_REQUEST, message=f"to: {exc}")
        return Outcome(codes.OK, {"from": self.config.node_id, "to": target})

    # --- the loop ------------------------------------------------------------------
    # What to do next is decided in runtime/loop_plan.py; an executor carries it out
    # (runtime/server_executor.py, sim/executor.py, or ``process_ready`` below).
    def next_step(self) -> Step:
        """Propose what was accepted, hold the core's next Ready, and name the next step.

        While a Ready is in flight nothing is proposed and no new Ready is taken:
        what arrives meanwhile is stepped into the core and proposed together after
        it (group commit during the fsync); one Ready is in flight at a time.
        """
        if self._in_flight is None:
            if self._proposals:
                self._propose_pending()
            if self._pending is None:
                core = self.core
                if core.has_ready():
                    self._pending = core.ready()
                elif (
                    self._taking is not None or not self.snapshots.due(core.applied)
                ) and not self._reading_wanted:
                    # Idle, the commonest answer: what ``decide`` says for no Ready, nothing
                    # in flight and no snapshot to start, without building its state.
                    return Step.NOTHING
        return decide(self._loop_state(), self.inline_entries_max)

    def _loop_state(self) -> LoopState:
        rd = self._pending
        shape = None
        if rd is not None:  # positional: this runs once per loop step
            shape = ReadyShape(
                len(rd.entries),
                rd.truncate_from is not None,
                self._writes_disk(rd),
                rd.snapshot is not None,
            )
        in_flight, taking = self._in_flight is not None, self._taking is not None
        # Whether a snapshot is due matters only when nothing else is (rule 3).
        due = rd is None and not in_flight and not taking and self.snapshots.due(self.core.applied)
        return LoopState(shape, in_flight, taking, due, self._reading_wanted)

    @property
    def _reading_wanted(self) -> bool:
        return self._reading is not None and not self._reading_started

    def begin_ready(self) -> WriteJob:
        """The loop's half before the write (after ``NO_WRITE``, ``WRITE_INLINE`` or
        ``WRITE_ON_DISK_THREAD``): install a snapshot, send what may leave before the
        write, apply what is already durable. The job's ``write`` is the disk's half
        (storage only, any thread); ``finish_ready`` is the loop's half after it."""
        rd = self._pending
        invariant(rd is not None and self._in_flight is None, "begin_ready without a Ready")
        assert rd is not None
        self._pending = None
        rd, applied = self._begin(rd)
        if planted.on(Bug.ANSWER_BEFORE_DURABLE):
            self._answer_before_durable(rd)
        writes = self._writes_disk(rd)
        if writes:
            if rd.soft_state.role is Role.LEADER:
                self._apply_durable(rd)
            self.host.flush()  # what _begin and the applies queued leaves during our fsync
        job = WriteJob(self, rd, applied, writes)
        self._in_flight = job
        return job

    def finish_ready(self, job: WriteJob) -> None:
        """After ``job.write()`` returned (the Ready is durable): send the rest, apply,
        advance, serve the reads it confirmed."""
        invariant(self._in_flight is job, "finish_ready for a Ready not in flight")
        self._in_flight = None
        self._finish(job.ready)
        self._serve_confirmed_reads()

    def start_snapshot(self) -> SnapshotJob:
        """``START_SNAPSHOT``: fix the state now; the executor runs the job's steps."""
        invariant(self._taking is None, "a second snapshot started")
        self._taking = self.snapshots.begin_take(self.core, self.machine, self.storage)
        return self._taking

    def finish_snapshot(self, job: SnapshotJob) -> None:
        """The job is saved (``FINISH_SNAPSHOT``): the core streams it and compacts."""
        invariant(self._taking is job, "finish_snapshot for a snapshot not being taken")
        self._taking = None
        job.finish()

    def abandon_snapshot(self, job: SnapshotJob) -> None:
        """The job failed (its save raised): no snapshot is being taken any more."""
        if self._taking is job:
            self._taking = None

    @property
    def write_in_flight(self) -> bool:
        return self._in_flight is not None

    @property
    def snapshot_in_progress(self) -> bool:
        return self._taking is not None

    def process_ready(self) -> None:
        """Run every step on this thread until there is nothing left (tests, shutdown)."""
        while True:
            step = self.next_step()
            if step is Step.NOTHING:
                return
            if step is Step.READ_SNAPSHOT:
                reading = self.start_reading()
                while not reading.slice():
                    pass
                continue
            if step is Step.START_SNAPSHOT:
                snap = self.start_snapshot()
                while not snap.slice():
                    pass
                snap.write_file()
                snap.compact_log()
                self.finish_snapshot(snap)
                continue
            invariant(
                step not in (Step.WAIT_FOR_WRITE, Step.WAIT_FOR_SNAPSHOT),
                f"process_ready while another executor has work in flight ({step.value})",
            )
            job = self.begin_ready()
            job.write()
            self.finish_ready(job)

    def _begin(self, rd: Ready) -> tuple[Ready, Index]:
        """Install a snapshot and send what may leave before the disk write."""
        self.stats.readies += 1
        if rd.snapshot is not None:
            # The state now, on the loop (one swap when it was read beforehand); its file
            # with the Ready's write (``_write``), so on the disk thread (``loop_plan``).
            reading, self._reading = self._reading, None
            read = (
                reading.pending if reading is not None and reading.snapshot is rd.snapshot else None
            )
            self.snapshots.install(rd.snapshot, self.machine, read)
        early, late = self._split_messages(rd)
        for msg in early:
            self.host.send(msg)
        self._late = late
        return rd, self.core.applied

    def _finish(self, rd: Ready) -> None:
        """After the write is durable: send the rest, apply, advance."""
        if self._late:
            for msg in self._late:
                self.host.send(msg)
            self._late = []
            # Out before this node applies: a follower's ack is what its leader waits
            # for to commit, so it leaves ahead of the apply below (and of the
            # loop's next turn, where other input could be read first).
            self.host.flush()
            if (
                self.yield_after_acks is not None
                and len(rd.committed_entries) > self._applied_early
            ):
                self.yield_after_acks()
        if rd.entries:
            self.snapshots.note_persisted(rd.entries)
            if self._filter is not None:
                self._filter.remember(rd.entries)
        self.stats.messages_sent += len(rd.messages)
        early, self._applied_early = self._applied_early, 0
        todo = rd.committed_entries[early:] if early else rd.committed_entries
        if len(todo) >= limits.APPLY_GC_PAUSE_ENTRIES_MIN:
            # A replay at start or a follower catching up: see resonetics/gc_pause.py.
            with gc_paused():
                for entry in todo:
                    self._apply(entry)
        else:  # the usual few entries: not worth entering a context manager per Ready
            for entry in todo:
                self._apply(entry)
        self.core.advance(rd)
        if self._applied_ahead:
            self.core.applied_to(self._applied_ahead)
            self._applied_ahead = 0
        self._on_reads(rd)
        self._on_role(rd.soft_state.role)

    def _apply_durable(self, rd: Ready) -> None:
        """Before the write: apply the committed entries this node already has on disk.

        Under load a Ready carries the entries committed by the last round of acks
        and a new batch to persist. The committed ones were written by an earlier
        Ready, so their clients need not wait for this Ready's fsync: answering them
        first takes a whole fsync off each write's latency, and their next requests
        arrive in time for the next batch. Entries of this Ready's own batch (and
        anything after a truncation point, which is never committed) wait for it.

        A leader only. A follower has no client waiting on its applies (its reads
        are served in ``finish_ready``), while the leader waits on its ack, which
        leaves after the fsync: applying first would only delay the ack. Measured
        on three local nodes, one write in flight: about 4 % more writes per second
        (median of five alternated runs of each).
        """
        first_new = rd.entries[0].index if rd.entries else None
        count = 0
        for entry in rd.committed_entries:
            if first_new is not None and entry.index >= first_new:
                break
            self._apply(entry)
            count += 1
        self._applied_early = count

    def _answer_before_durable(self, rd: Ready) -> None:
        """Planted bug only: a leader tells a set's client it is done as soon as its entry
        is in the Ready, before the entry is durable here or anywhere else."""
        if rd.soft_state.role is not Role.LEADER:
            return
        for entry in rd.entries:
            waiter = self._waiters.get(entry.index)
            if waiter is None or entry.type is not EntryType.CLIENT_CMD:
                continue
            data = unpacked(entry).data
            if not isinstance(data, dict) or data.get("op") != "kv_set":
                continue
            del self._waiters[entry.index]
            waiter.answer_all(Outcome(codes.OK, {"receipt": receipt_of(entry)}))

    def _split_messages(self, rd: Ready) -> tuple[list[Message], list[Message]]:
        """Messages that may leave before this Ready is durable, and those that must wait.

        A leader's AppendEntries may go out while its own fsync runs (dissertation
        §10.2.1): the core counts the leader toward a commit quorum only for entries
        ``advance()`` confirmed durable, so replicating first changes no decision. It
        holds only while the leader's term and vote are already on disk; anything else
        (votes, acks, a new term) waits for the fsync.
        """
        if planted.on(Bug.ACK_BEFORE_FSYNC):
            return list(rd.messages), []
        if rd.soft_state.role is not Role.LEADER or not rd.messages:
            return [], rd.messages
        hs = rd.hard_state
        durable = self._durable_hs
        if hs is not None and (hs.term != durable.term or hs.vote != durable.vote):
            return [], rd.messages
        early: list[Message] = []
        late: list[Message] = []
        for msg in rd.messages:
            (early if isinstance(msg, AppendEntries) else late).append(msg)
        return early, late

    def _write(self, rd: Ready, applied: Index) -> None:
        """The Ready's log and hard-state writes, durable on return. Touches only storage."""
        started = time.perf_counter()
        self._save_new_term(rd, applied)
        if rd.snapshot is not None:
            # snapshot.json and the log compacted to it, durable before the answer that
            # acknowledges the install leaves (it is among the Ready's late messages).
            # Here rather than in ``_begin``: writing a 100 MB state took 0.7 s of the loop.
            self.storage.save_snapshot(rd.snapshot, rd.snapshot.meta.last_included_index)
        if rd.truncate_from is not None:
            self.storage.truncate_from(rd.truncate_from)
        if rd.entries:
            self.storage.append(rd.entries)
            self.stats.entries_persisted += len(rd.entries)
        if (rd.truncate_from is not None or rd.entries) and not planted.on(
            Bug.APPENDS_NEVER_FSYNCED
        ):
            synced = time.perf_counter()
            self.storage.sync()
            self.stats.fsyncs += 1
            if self.observe_fsync is not None:
                self.observe_fsync(time.perf_counter() - synced)
        hs = rd.hard_state
        if hs is not None and self._meta_due(hs):
            self.storage.save_hard_state(hs, min(applied, hs.commit))
            self._durable_hs = hs
            self._meta_commit = hs.commit
        self.stats.write_seconds += time.perf_counter() - started

    def _save_new_term(self, rd: Ready, applied: Index) -> None:
        """A new term or vote reaches meta.json before any entry or snapshot of it:
        storage refuses a log whose last term is above meta.json's (the sign of a
        term lowered by hand), so no crash may leave that state honestly."""
        hs = rd.hard_state
        durable = self._durable_hs
        if hs is not None and (hs.term != durable.term or hs.vote != durable.vote):
            # The commit hint stays at the saved one: the entries a new commit index
            # covers may not be on disk yet (the hint never runs ahead of the log).
            early = HardState(term=hs.term, vote=hs.vote, commit=self._meta_commit)
            self.storage.save_hard_state(early, min(applied, early.commit))
            self._durable_hs = early

    def _writes_disk(self, rd: Ready) -> bool:
        """Whether ``_write`` has anything to do: a commit-only change usually does not."""
        if rd.truncate_from is not None or rd.entries or rd.snapshot is not None:
            return True
        return rd.hard_state is not None and self._meta_due(rd.hard_state)

    def _meta_due(self, hs: HardState) -> bool:
        durable = self._durable_hs
        if hs.term != durable.term or hs.vote != durable.vote:
            return True
        return hs.commit - self._meta_commit >= META_REFRESH_ENTRIES

    def _apply(self, entry: Entry) -> None:
        waiter = self._waiters.pop(entry.index, None)
        answers = waiter is not None  # else no result is read: none is built
        if self.observe_apply is None:
            applied = self.machine.apply(entry, answers=answers)
        else:
            started = time.perf_counter()
            applied = self.machine.apply(entry, answers=answers)
            self.observe_apply(time.perf_counter() - started)
        if entry.type in _CLIENT_ENTRIES:
            self.stats.entries_applied += 1
        if waiter is None:
            return
        if waiter.term != entry.term:
            waiter.answer_all(Outcome(codes.TIMEOUT, message="entry was overwritten"))
        elif entry.type in _CLIENT_ENTRIES:
            parts = applied.parts or (applied,)
            for part, on_done in zip(parts, waiter.callbacks, strict=True):
                if part.code == codes.OK:
                    on_done(Outcome(codes.OK, part.result, dedup=part.dedup))
                else:
                    on_done(_verdict_outcome(part.code, part.result, part.message))
        elif entry.type is EntryType.CONFIG:
            waiter.answer_all(Outcome(codes.OK, {"index": entry.index, **entry.data}))
        else:
            waiter.answer_all(Outcome(codes.TIMEOUT, message="entry was overwritten"))

    def _on_reads(self, rd: Ready) -> None:
        for state in rd.read_states:
            pending = self._reads.pop(state.ctx, None)  # type: ignore[call-overload]
            if pending is not None:
                pending.index = state.index
                self._confirmed_reads.append(pending)
        for ctx in rd.dropped_reads:
            pending = self._reads.pop(ctx, None)  # type: ignore[call-overload]
            if pending is not None:
                pending.on_done(self.not_leader_outcome(self.core.leader_id))

    def _serve_confirmed_reads(self) -> None:
        applied = self.core.applied
        if planted.on(Bug.READ_WOKEN_ONLY_BY_APPLY) and applied == self._woken_at:
            return  # woken by a new apply only: a read confirmed later sleeps on
        self._woken_at = applied
        while self._confirmed_reads and self._confirmed_reads[0].index <= applied:
            pending = self._confirmed_reads.popleft()
            pending.on_done(Outcome(codes.OK, self.machine.read(pending.op, pending.args)))

    def _on_role(self, role: Role) -> None:
        is_leader = role is Role.LEADER
        if self._was_leader and not is_leader:
            self._fail_waiters()
        self._was_leader = is_leader

    def _fail_waiters(self) -> None:
        """Leadership lost: pending writes may or may not commit — tell clients so."""
        waiters, self._waiters = self._waiters, {}
        lost = Outcome(codes.TIMEOUT, message="leadership lost; the write may still commit")
        for waiter in waiters.values():
            waiter.answer_all(lost)
        proposals, self._proposals = self._proposals, []
        for proposal in proposals:  # never proposed: certainly not committed
            proposal.on_done(self.not_leader_outcome(self.core.leader_id))
        reads, self._reads = self._reads, {}
        for pending in reads.values():
            pending.on_done(self.not_leader_outcome(self.core.leader_id))

    def cancel_all(self, outcome: Outcome) -> None:
        """Answer every waiting client (shutdown)."""
        self._fail_waiters()
        while self._confirmed_reads:
            self._confirmed_reads.popleft().on_done(outcome)

    def close(self) -> None:
        hs = HardState(self.core.term, self.core.vote, self.core.commit_index)
        self.storage.save_hard_state(hs, self.core.applied)
        self.storage.close()


def _verdict_outcome(code: str, result: Any, message: str) -> Outcome:
    """A session's answer in place of applying: a dedup hit (``OK``) or a refusal."""
    if code == codes.OK:
        return Outcome(codes.OK, result, dedup=True)
    return Outcome(code, result, message=message)


__all__ = ["INLINE_WRITE_ENTRIES_MAX", "DriverStats", "NodeDriver", "WriteJob"]
