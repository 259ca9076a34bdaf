"""``RaftNode``: the consensus rules as a pure, deterministic state machine.

Theory of operation
-------------------
Inputs are ``tick()``, ``step(message)``, ``propose(data)``, ``read_index(ctx)``
and ``transfer_leadership(target)``; the only output is the ``Ready`` value the
runtime pulls with ``ready()`` and acknowledges with ``advance()`` (see
``ready.py`` for the order in which a Ready must be handled). Nothing here does
I/O, reads a clock, or draws from the global ``random``: chance is the injected
``random.Random``, time is ticks. Given the same seed and inputs, a node
produces the same outputs.

``step()`` applies the term rules once (Raft Figure 2 "Rules for Servers",
plus PreVote and leader stickiness, dissertation §9.6 and §4.2.3), then hands
the message to one short handler per role. Every role change goes through a
``_become_*`` method that asserts where it may come from.

Durability: ``LogWrites`` tracks what the runtime still has to write and the
last index ``advance()`` confirmed written. A leader counts itself toward a commit quorum only up to it,
so the runtime may send AppendEntries before its own fsync completes. A vote or
an ack always leaves in the same Ready as the hard state or entries it depends
on, and the runtime sends messages only after persisting that Ready.

Invariant (checked after every input): anchor.index <= applied <= commit_index
<= last_index, and commit_index never decreases.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from resonetics import errors, limits, planted
from resonetics.errors import invariant
from resonetics.planted import Bug
from resonetics.raft import membership_change, quorum
from resonetics.raft.config import RaftConfig
from resonetics.raft.entry import (
    GENESIS,
    Entry,
    EntryType,
    Signer,
    make_entry,
    signed,
    snap_dummy,
)
from resonetics.raft.log import RaftLog
from resonetics.raft.log_writes import LogWrites
from resonetics.raft.membership import Membership
from resonetics.raft.membership_change import ChangeKind, ConfigChange
from resonetics.raft.messages import (
    AppendEntries,
    AppendEntriesResp,
    InstallSnapshot,
    InstallSnapshotResp,
    Message,
    PreVote,
    PreVoteResp,
    ReadIndex,
    ReadIndexResp,
    RequestVote,
    RequestVoteResp,
    TimeoutNow,
)
from resonetics.raft.packing import recanonicalized, unpacked
from resonetics.raft.progress import Progress, ProgressState
from resonetics.raft.read_index import ReadClock, RemoteRead
from resonetics.raft.ready import HardState, ReadState, Ready, Role, Snapshot, SoftState
from resonetics.raft.replication import batch_links, next_index_from_hint, rejection_hint
from resonetics.raft.roles import CandidateState, FollowerState, LeaderState, RoleState
from resonetics.raft.snapshot import (
    MemorySpool,
    OutgoingSnapshot,
    ReceiveResult,
    SnapshotReceive,
    SnapshotSend,
    Spool,
)
from resonetics.raft.types import Index, NodeId, Term

if TYPE_CHECKING:
    # Only the type: chance comes from the caller's seeded Random, never the module's.
    import random


# Message classes tested per input, as tuples made once: ``A | B`` in an isinstance call
# builds a new union object on every call.
_VOTE_REQUESTS = (PreVote, RequestVote)
_LOG_CARRIERS = (AppendEntries, InstallSnapshot)
_FROM_LEADER = (AppendEntries, InstallSnapshot, TimeoutNow)


class RaftNode:
    """One Raft participant. See the module docstring for the contract."""

    def __init__(
        self,
        config: RaftConfig,
        rng: random.Random,
        *,
        hard_state: HardState = HardState(),  # noqa: B008 - frozen value, safe as default
        anchor: Entry = GENESIS,
        entries: Sequence[Entry] = (),
        applied: Index = 0,
        membership: Membership | None = None,
        snapshot_spool: Callable[[], Spool] = MemorySpool,
        signer: Signer | None = None,
        snapshot_check: Callable[[Snapshot], str | None] | None = None,
        snapshot_prepared: Callable[[Snapshot], bool] | None = None,
        entries_linked: bool = False,
    ) -> None:
        """``entries_linked``: ``entries`` come from a ``NodeStorage.load`` whose
        contract is a verified chain, so the hashes are not computed a second time
        (at 1 M entries that second pass cost about 3 s of CPU at start)."""
        self._cfg = config
        self._rng = rng
        self._id = config.node_id
        self._log = RaftLog(anchor, entries, linked=entries_linked)
        invariant(anchor.index <= applied, f"applied {applied} below anchor {anchor.index}")
        self._term: Term = hard_state.term
        self._vote: NodeId | None = hard_state.vote
        self._commit: Index = max(hard_state.commit, applied)
        self._applied: Index = applied
        self._applying: Index = applied  # last index handed out in committed_entries
        #: Whether the last Ready left committed entries for the next (``apply_sliced``).
        self._apply_sliced = False
        self._base_membership = membership or Membership(voters=config.initial_voters)
        self._membership = self._base_membership
        #: Whether this node is a learner in ``_membership``; set with it (``_refresh_membership``)
        #: so that ``role``, asked after every input, needs no lookup.
        self._learner = self._id in self._membership.learners
        self._role = Role.FOLLOWER
        #: The read_seq clock and the follower read ids: node-lifetime, never reused.
        self._read_clock = ReadClock()
        self._read_ids = itertools.count(1)
        #: What only the current role knows (raft/roles.py); replaced by every _become_*.
        self._state: RoleState = FollowerState.new(self._read_ids)
        self._refresh_membership()
        self._leader: NodeId | None = None
        self._election_elapsed = 0
        self._election_timeout = config.election_ticks
        #: Ticks since this node object was created: the clock of leases and read expiry.
        self._ticks = 0
        # Snapshots (see raft/snapshot.py): the latest one, for streaming to
        # followers; one being received; one received and not yet handed out.
        self._snapshot: OutgoingSnapshot | None = None
        self._snapshot_chunk_bytes = limits.SNAPSHOT_CHUNK_BYTES
        self._snapshot_window = limits.SNAPSHOT_CHUNKS_INFLIGHT_MAX
        self._receiving: SnapshotReceive | None = None
        #: Makes the place a snapshot being received is kept (see raft/snapshot.py Spool).
        self._snapshot_spool = snapshot_spool
        #: Signs the entries this node creates as leader (None: entries go unsigned).
        self._signer = signer
        #: Says why an assembled snapshot (checksum verified) must not be installed, or
        #: None: the runtime's check that its state decodes for this state machine, so a
        #: bad stream is refused here instead of failing the install (runtime/message_gate.py).
        self._snapshot_check = snapshot_check
        #: Whether the runtime has read an assembled snapshot's state, ready to install
        #: it at once; until it has, the snapshot waits here, assembled, and the leader
        #: is asked for its last chunk again (``_handle_snapshot_chunk``). None: always.
        self._snapshot_prepared = snapshot_prepared
        self._install: Snapshot | None = None
        # Ready bookkeeping: what has been handed to the runtime, what is durable.
        self._msgs: list[Message] = []
        self._read_states: list[ReadState] = []
        self._dropped_reads: list[object] = []
        self._writes = LogWrites(self._log.last_index)
        self._prev_hard_state = HardState(self._term, self._vote, self._commit)
        #: The last vote count (term, voter -> granted): what the runtime's "election
        #: won/lost" log events report. Read only; no Raft rule depends on it.
        self.last_tally: tuple[Term, dict[NodeId, bool]] = (0, {})
        self._prev_soft_state: SoftState | None = None
        self._bcast_pending = False
        self._read_round_pending = False
        self._reset_election_timer()
        self._check_invariants()

    # --- read-only views --------------------------------------------------------
    @property
    def node_id(self) -> NodeId:
        return self._id

    @property
    def is_leader(self) -> bool:
        """``role is Role.LEADER``, without the learner lookup (asked once per client write)."""
        return self._role is Role.LEADER

    @property
    def role(self) -> Role:
        if self._learner and self._role is Role.FOLLOWER:
            return Role.LEARNER
        return self._role

    @property
    def term(self) -> Term:
        return self._term

    @property
    def vote(self) -> NodeId | None:
        return self._vote

    @property
    def leader_id(self) -> NodeId | None:
        return self._leader

    @property
    def commit_index(self) -> Index:
        return self._commit

    @property
    def applied(self) -> Index:
        return self._applied

    @property
    def apply_sliced(self) -> bool:
        """The last Ready handed out only a slice of what is committed, by the
        ``apply_*_max`` budget (a replay at start, a long backlog): the executor lets
        other work run before the next Ready, so the node keeps acking and voting."""
        return self._apply_sliced

    @property
    def last_index(self) -> Index:
        return self._log.last_index

    @property
    def last_term(self) -> Term:
        return self._log.last_term

    @property
    def membership(self) -> Membership:
        return self._membership

    @property
    def anchor(self) -> Entry:
        return self._log.anchor

    def entries_from(self, index: Index) -> list[Entry]:
        """Every entry from ``index`` on, with its data decoded (the log packs applied
        client entries: ``raft/packing.py``)."""
        return [unpacked(e) for e in self._log.entries_from(index)]

    def entry_at(self, index: Index) -> Entry:
        """The entry at ``index`` with its data decoded (see ``entries_from``)."""
        return unpacked(self._log.entry_at(index))

    def positions_from(self, index: Index) -> list[tuple[Index, Term, str]]:
        """(index, term, chain hash) of every entry from ``index`` on: what a check of
        log matching needs, without decoding any entry's data (``entries_from`` would
        unpack every applied one)."""
        return [(e.index, e.term, e.hash) for e in self._log.entries_from(index)]

    def hash_at(self, index: Index) -> str | None:
        return self._log.hash_at(index)

    def term_at(self, index: Index) -> Term | None:
        return self._log.term_at(index)

    def progress_of(self, node: NodeId) -> Progress | None:
        """The leader's view of ``node`` (None on a non-leader). Do not mutate."""
        return self._lead.progress.get(node) if self._role is Role.LEADER else None

    # --- inputs -------------------------------------------------------------------
    def tick(self) -> None:
        """One unit of logical time."""
        self._ticks += 1
        st = self._state
        if isinstance(st, FollowerState) and st.reads.sent:
            self._dropped_reads.extend(st.reads.expire(self._ticks, self._cfg.election_ticks))
        if self._role is Role.LEADER:
            self._tick_leader()
        else:
            self._tick_election()
        self._check_invariants()

    def campaign(self) -> None:
        """Start an election now (PreVote first when configured)."""
        if self._role is not Role.LEADER and self._promotable():
            self._start_election(transfer=False)
        self._check_invariants()

    def step(self, msg: Message) -> None:
        """Handle one peer message addressed to this node."""
        if msg.dst != self._id or msg.src == self._id:
            return
        # Same term, the common case: the term rules have nothing to do (they return True).
        if msg.term != self._term and not self._apply_term_rules(msg):
            return
        if isinstance(msg, _VOTE_REQUESTS):
            self._handle_vote_request(msg)
        elif self._role is Role.LEADER:
            self._step_leader(msg)
        elif self._role in (Role.CANDIDATE, Role.PRE_CANDIDATE):
            self._step_candidate(msg)
        else:
            self._step_follower(msg)
        self._check_invariants()

    def propose(self, data: Any, *, batch: bool = False) -> Index:
        """Append a CLIENT_CMD entry on the leader (a CLIENT_BATCH when ``batch``: ``data``
        is then a list of commands); returns its index (not yet committed)."""
        self._require_leader()
        if self._lead.transfer_target is not None:
            raise errors.ProposalDropped(f"leadership transfer to {self._lead.transfer_target}")
        if self._log.last_index - self._commit >= self._cfg.uncommitted_entries_max:
            raise errors.ProposalDropped("too many uncommitted entries")
        index = self._append_own(EntryType.CLIENT_BATCH if batch else EntryType.CLIENT_CMD, data)
        self._bcast_pending = True  # sent at ready(): proposals between two Readys batch
        return index

    def read_index(self, ctx: object, *, lease: bool = False) -> None:
        """Register a linearizable read (dissertation §6.4); answered in Ready.read_states.

        On a follower that knows the leader, the read is forwarded to it (§6.4.1) and
        answered when the leader has confirmed it. With ``lease=True`` a leader whose
        lease is valid answers at once, without a heartbeat round (see read_index.py).
        """
        if self._role is not Role.LEADER and self._leader is not None:
            read_id = self._following.reads.add(ctx, self._ticks)
            self._send(ReadIndex(src=self._id, dst=self._leader, term=self._term, read_id=read_id))
            return
        self._require_leader()
        reads = self._lead.reads
        if not self._committed_in_term():
            reads.waiting_for_noop.append(ctx)
            return
        if lease and self._lease_valid():
            self._read_states.append(ReadState(ctx, self._commit))
            return
        reads.register(ctx, self._commit, self._ticks)
        if len(reads.pending) == 1:
            # Reads already waiting were offered every ack since they came, and this
            # one can be confirmed before the next only where the leader alone is a
            # quorum: asking again for each of 256 reads in flight found nothing.
            self._emit_confirmed_reads()
        self._read_round_pending = bool(reads.pending)

    def _lease_valid(self) -> bool:
        """True while no other leader can exist (§6.4.1; assumes bounded clock drift)."""
        if planted.on(Bug.LEASE_ALWAYS_VALID):
            return True
        lead = self._lead
        if self._cfg.lease_ticks <= 0:
            return False
        if lead.transfer_target is not None and not planted.on(Bug.STALE_READ_AFTER_TRANSFER):
            return False  # the target may win without waiting out any lease (§3.10)
        start = lead.reads.lease_start(self._id, self._membership)
        return start is not None and self._ticks - start < self._cfg.lease_ticks

    def transfer_leadership(self, target: NodeId) -> None:
        """Hand leadership to ``target`` (dissertation §3.10); aborts after an election timeout."""
        self._require_leader()
        lead = self._lead
        if target in (self._id, lead.transfer_target):
            return
        if not self._membership.is_voter(target) or target not in lead.progress:
            raise errors.ConfigChangeRejected(f"cannot transfer leadership to non-voter {target}")
        lead.transfer_target = target
        lead.transfer_elapsed = 0
        pr = lead.progress[target]
        if pr.match_index == self._log.last_index:
            self._send_timeout_now(target)
        else:
            # Resend from what is known to match rather than trust an optimistic
            # pipeline that may have lost messages: the transfer waits on this.
            pr.become_probe()
            self._send_appends_to(target)

    def propose_config_change(self, change: ConfigChange) -> Index:
        """Append the CONFIG entry for ``change`` (joint consensus, dissertation §4.3).

        Returns the entry's index; ``ConfigChangeRejected`` when the change is invalid
        or another one is still in progress. The rest (leaving the joint configuration,
        promoting caught-up learners, stepping down when removed) happens on its own.
        """
        self._require_leader()
        if self._lead.transfer_target is not None:
            raise errors.ConfigChangeInProgress(
                f"leadership transfer to {self._lead.transfer_target} in progress"
            )
        if self._config_change_pending():
            raise errors.ConfigChangeInProgress(
                "a membership change is still in progress; retry when it has committed"
            )
        if not self._committed_in_term():
            # A new leader first commits its NOOP (dissertation §4.1, the
            # single-server-change bug fix): an older leader's uncommitted change is settled.
            raise errors.ConfigChangeInProgress("the leader is still committing its first entry")
        if change.kind is ChangeKind.PROMOTE:
            self._require_learner_caught_up(change.node)
        nxt = membership_change.next_membership(self._membership, change, self._commit)
        index = self._append_own(EntryType.CONFIG, nxt.to_data())
        self._bcast_pending = True
        return index

    def _require_learner_caught_up(self, learner: NodeId) -> None:
        """An explicit promotion obeys the same bar as the automatic one: a learner votes
        only once it has acknowledged the commit index the leader had when it was added."""
        m = self._membership
        pr = self._lead.progress.get(learner)
        if learner not in m.learners or pr is None:
            return  # next_membership names what is wrong with the request
        required = membership_change.required_index(m, learner)
        if not membership_change.caught_up(
            pr.match_index, required, self._log.last_index, self._cfg.promote_lag_entries_max
        ):
            raise errors.LearnerNotCaughtUp(
                learner,
                pr.match_index,
                required,
                membership_change.not_caught_up_reason(
                    m, learner, pr.match_index, pr.recent_active
                ),
            )

    def compact(self, index: Index) -> None:
        """Drop entries up to ``index`` (<= applied), keeping a SNAP_DUMMY anchor there."""
        invariant(index <= self._applied, f"compacting {index} beyond applied {self._applied}")
        cfg = self._log.last_config_at_or_before(index)
        if cfg is not None:
            self._base_membership = Membership.from_data(cfg.data)
        self._log.compact(index)

    def set_snapshot(
        self,
        snapshot: Snapshot,
        *,
        checksum: str | None = None,
        chunk_bytes: int = limits.SNAPSHOT_CHUNK_BYTES,
        chunks_inflight_max: int = limits.SNAPSHOT_CHUNKS_INFLIGHT_MAX,
    ) -> None:
        """The latest durable snapshot: what a leader streams to a follower that needs
        compacted entries. The runtime calls it at start and after taking or installing one;
        ``checksum``, its stream's (``stream_checksum``) when the runtime has made it, else it
        is made when a first stream needs it."""
        if self._snapshot is None or snapshot.meta.last_included_index > self._snapshot.index:
            self._snapshot = OutgoingSnapshot.of(snapshot, checksum)
        self._snapshot_chunk_bytes = chunk_bytes
        self._snapshot_window = chunks_inflight_max

    def snapshot_to_hash(self) -> Snapshot | None:
        """The latest snapshot if its stream checksum is not made yet (the one a restart
        recovered): the runtime hashes it off the loop and calls ``snapshot_hashed``."""
        return None if self._snapshot is None else self._snapshot.unhashed

    def snapshot_hashed(self, index: Index, checksum: str) -> None:
        """``stream_checksum`` of the snapshot at ``index``; nothing if a newer one has
        replaced it meanwhile."""
        if self._snapshot is not None and self._snapshot.index == index:
            self._snapshot.know_checksum(checksum)

    def membership_at(self, index: Index) -> Membership:
        """The configuration in force at ``index`` (for a snapshot taken there)."""
        cfg = self._log.last_config_at_or_before(index)
        return Membership.from_data(cfg.data) if cfg is not None else self._base_membership

    # --- Ready ----------------------------------------------------------------------
    def has_ready(self) -> bool:
        # Asked after every input (most often with nothing to do): the states are
        # compared field by field rather than built and compared as HardState/SoftState
        # (same answer, no allocation), the cheap attribute tests first.
        if (
            self._msgs
            or self._commit > self._applying
            or self._bcast_pending
            or self._read_round_pending
            or self._read_states
            or self._dropped_reads
            or self._install is not None
        ):
            return True
        term = self._term
        hard = self._prev_hard_state
        if hard.term != term or hard.vote != self._vote or hard.commit != self._commit:
            return True
        soft = self._prev_soft_state
        if soft is None or soft.term != term or soft.leader != self._leader:
            return True
        role = self._role
        if self._learner and role is Role.FOLLOWER:
            role = Role.LEARNER
        return soft.role is not role or self._writes.has_writes(self._log)

    def ready(self) -> Ready:
        """Everything to do now; the runtime must handle it in ready.py's order.

        An unchanged hard or soft state is handed out as the (equal, frozen) object
        of the previous Ready instead of a new one: a Ready is taken after most
        inputs, and building the two frozen dataclasses was a fifth of its cost.
        """
        if self._bcast_pending or self._read_round_pending:
            self._flush_broadcasts()
        term, vote, commit = self._term, self._vote, self._commit
        hard = self._prev_hard_state
        if hard.term == term and hard.vote == vote and hard.commit == commit:
            new_hard = None
        else:
            hard = self._prev_hard_state = new_hard = HardState(term, vote, commit)
        soft = self._prev_soft_state
        role = self._role
        if self._learner and role is Role.FOLLOWER:
            role = Role.LEARNER
        if (
            soft is None
            or soft.role is not role
            or soft.leader != self._leader
            or soft.term != term
        ):
            soft = self._prev_soft_state = SoftState(role, self._leader, term)
        truncate_from, entries = self._writes.take(self._log)
        upto = self._apply_upto()
        applying = self._applying
        committed: list[Entry] = []
        if upto > applying:
            cfg = self._cfg
            committed = self._log.slice(
                applying + 1, upto, count_max=cfg.apply_entries_max, bytes_max=cfg.apply_bytes_max
            )
            self._apply_sliced = committed[-1].index < upto
            upto = committed[-1].index
        else:
            self._apply_sliced = False
        rd = Ready(
            soft_state=soft,
            hard_state=new_hard,
            snapshot=self._install,
            truncate_from=truncate_from,
            entries=entries,
            messages=self._msgs,
            committed_entries=committed,
            read_states=self._read_states,
            dropped_reads=self._dropped_reads,
        )
        self._applying = upto
        self._install = None
        self._msgs, self._read_states, self._dropped_reads = [], [], []
        return rd

    def take_committed(self) -> list[Entry]:
        """A leader's committed entries that are on its own disk and not yet handed out,
        for applying outside a Ready (``NodeDriver._apply_on_commit``); confirm them with
        ``applied_to`` once applied.

        Why: a leader learns that a batch is committed from an ack, usually while its
        next batch is being written or while the loop reads more requests; a Ready
        would apply it only after that. Entries are handed out once and in order, as by
        ``ready()`` (the next Ready's ``committed_entries`` start after them), within the
        same ``apply_*_max`` budget (what is left past it sets ``apply_sliced``), and only
        up to ``durable_index``: committed means on a majority's disks, and the entries
        of the write in flight are not on this node's yet, so they wait for the Ready
        that wrote them.
        """
        if self._role is not Role.LEADER:
            return []
        upto = min(self._apply_upto(), self._writes.durable_index)
        if upto <= self._applying:
            return []
        cfg = self._cfg
        committed = self._log.slice(
            self._applying + 1, upto, count_max=cfg.apply_entries_max, bytes_max=cfg.apply_bytes_max
        )
        self._applying = committed[-1].index
        # A backlog past the budget (a new leader that was behind) goes on a slice per
        # Ready, a loop turn apart, as ``ready()`` hands it out: not a slice per ack.
        self._apply_sliced = self._applying < upto
        return committed

    def applied_to(self, index: Index) -> None:
        """The entries ``take_committed`` handed out are applied up to ``index``."""
        invariant(
            self._applied < index <= self._applying,
            "applied_to %d: applied %d, handed out %d",
            index,
            self._applied,
            self._applying,
        )
        self._applied = index
        self._log.pack_through(index)  # as advance() does
        self._check_invariants()

    def advance(self, ready: Ready) -> None:
        """``ready``'s log writes are durable and its committed entries are applied."""
        self._writes.on_persisted(ready.entries, self._log)
        if ready.committed_entries:
            first, last_applied = ready.committed_entries[0], ready.committed_entries[-1]
            invariant(first.index == self._applied + 1, "applied gap before %d", first.index)
            self._applied = last_applied.index
            self._log.pack_through(self._applied)  # out of the collector's sight: packing.py
        if self._role is Role.LEADER:
            self._maybe_commit()
            self._drive_config_change()
        self._check_invariants()

    # --- term rules -------------------------------------------------------------------
    def _apply_term_rules(self, msg: Message) -> bool:
        """Raft Figure 2 term rules, PreVote's exceptions and leader stickiness.

        Returns False when the message has been fully handled (dropped or answered).
        """
        if msg.term > self._term:
            if isinstance(msg, _VOTE_REQUESTS):
                transfer = isinstance(msg, RequestVote) and msg.transfer
                if not transfer and self._in_lease():
                    return False  # stickiness: a live leader is not disrupted (§4.2.3)
            if isinstance(msg, PreVote) or (isinstance(msg, PreVoteResp) and msg.vote_granted):
                return True  # PreVote never changes the receiver's term (§9.6)
            from_leader = isinstance(msg, _FROM_LEADER)
            self._become_follower(msg.term, msg.src if from_leader else None)
            return True
        if msg.term < self._term:
            if isinstance(msg, _LOG_CARRIERS):
                # Tell a stale leader our term so that it steps down.
                self._send(
                    AppendEntriesResp(
                        src=self._id,
                        dst=msg.src,
                        term=self._term,
                        success=False,
                        match_index=self._log.last_index,
                    )
                )
            elif isinstance(msg, PreVote):
                self._send_vote_resp(msg, granted=False)
            return False
        return True

    def _in_lease(self) -> bool:
        """Heard from a leader within the minimum election timeout (leader stickiness)."""
        return self._leader is not None and self._election_elapsed < self._cfg.election_ticks

    # --- role handlers --------------------------------------------------------------------
    def _step_follower(self, msg: Message) -> None:
        if isinstance(msg, AppendEntries):  # the commonest message first
            self._leader = msg.src
            self._election_elapsed = 0
            self._handle_append(msg)
        elif isinstance(msg, ReadIndexResp):
            ctx = self._following.reads.answer(msg.read_id)
            if ctx is not None:
                self._read_states.append(ReadState(ctx, msg.index))
        elif isinstance(msg, InstallSnapshot):
            self._leader = msg.src
            self._election_elapsed = 0
            self._handle_snapshot_chunk(msg)
        elif isinstance(msg, TimeoutNow) and self._promotable():
            self._start_election(transfer=True)
        # Responses meant for another role are stale.

    def _step_candidate(self, msg: Message) -> None:
        if isinstance(msg, AppendEntries):
            self._become_follower(self._term, msg.src)
            self._handle_append(msg)
        elif isinstance(msg, InstallSnapshot):
            self._become_follower(self._term, msg.src)
            self._handle_snapshot_chunk(msg)
        elif isinstance(msg, PreVoteResp) and self._role is Role.PRE_CANDIDATE:
            if msg.term == self._term + 1 or not msg.vote_granted:
                self._candidacy.votes[msg.src] = msg.vote_granted
                self._tally()
        elif isinstance(msg, RequestVoteResp) and self._role is Role.CANDIDATE:
            self._candidacy.votes[msg.src] = msg.vote_granted
            self._tally()

    def _step_leader(self, msg: Message) -> None:
        if isinstance(msg, AppendEntries):
            invariant(False, f"two leaders in term {self._term}: {self._id} and {msg.src}")
        elif isinstance(msg, AppendEntriesResp):
            self._handle_append_resp(msg)
        elif isinstance(msg, InstallSnapshotResp):
            self._handle_snapshot_resp(msg)
        elif isinstance(msg, ReadIndex):
            self.read_index(RemoteRead(msg.src, msg.read_id))

    # --- elections ----------------------------------------------------------------------------
    def _promotable(self) -> bool:
        """Only voters campaign; learners and nodes outside the configuration never do."""
        return self._membership.is_voter(self._id)

    def _tick_election(self) -> None:
        self._election_elapsed += 1
        if self._election_elapsed >= self._election_timeout and self._promotable():
            self._start_election(transfer=False)

    def _start_election(self, *, transfer: bool) -> None:
        if self._cfg.pre_vote and not transfer:
            self._become_pre_candidate()
        else:
            self._become_candidate(transfer=transfer)

    def _handle_vote_request(self, msg: PreVote | RequestVote) -> None:
        """Grant at most one vote per term, only to an up-to-date log (§5.2, §5.4.1)."""
        pre = isinstance(msg, PreVote)
        can_vote = (
            self._vote == msg.candidate_id
            or (self._vote is None and self._leader is None)
            or (pre and msg.term > self._term)
        )
        grant = can_vote and self._log.is_up_to_date(msg.last_log_term, msg.last_log_index)
        if grant and not pre:
            self._vote = msg.candidate_id  # persisted by the Ready that carries the response
            self._reset_election_timer()
        self._send_vote_resp(msg, granted=grant)

    def _send_vote_resp(self, msg: PreVote | RequestVote, *, granted: bool) -> None:
        if isinstance(msg, PreVote):
            # A granted pre-vote answers at the proposed term; a refusal carries ours.
            term = msg.term if granted else self._term
            self._send(PreVoteResp(src=self._id, dst=msg.src, term=term, vote_granted=granted))
        else:
            self._send(
                RequestVoteResp(src=self._id, dst=msg.src, term=self._term, vote_granted=granted)
            )

    def _tally(self) -> None:
        result = quorum.vote_result(self._membership, self._candidacy.votes)
        if self._role is Role.CANDIDATE:
            self.last_tally = (self._term, dict(self._candidacy.votes))
        if result is quorum.VoteResult.LOST:
            self._become_follower(self._term, None)
        elif result is quorum.VoteResult.WON:
            if self._role is Role.PRE_CANDIDATE:
                self._become_candidate(transfer=False)
            else:
                self._become_leader()

    def _request_votes(self, *, pre: bool, transfer: bool) -> None:
        voters = set(self._membership.voters) | set(self._membership.voters_outgoing)
        for peer in sorted(voters - {self._id}):
            common: dict[str, Any] = {
                "src": self._id,
                "dst": peer,
                "candidate_id": self._id,
                "last_log_index": self._log.last_index,
                "last_log_term": self._log.last_term,
            }
            if pre:
                self._send(PreVote(term=self._term + 1, **common))
            else:
                self._send(RequestVote(term=self._term, transfer=transfer, **common))

    # --- role changes -----------------------------------------------------------------------------
    def _reset(self, term: Term) -> None:
        """Leave the current role: a new term clears the vote; the role's own state
        (``raft/roles.py``) goes with it, its unconfirmed reads reported as dropped.
        The caller sets the next role's state."""
        if term != self._term:
            invariant(term > self._term, f"term going back from {self._term} to {term}")
            self._term = term
            self._vote = None
        old = self._state
        if isinstance(old, LeaderState | FollowerState):
            self._dropped_reads.extend(old.reads.drop_all())
        self._state = CandidateState()  # holds nothing; replaced by the caller
        self._leader = None
        self._reset_election_timer()

    def _reset_election_timer(self) -> None:
        """Re-draw the randomized timeout in [election_ticks, 2*election_ticks) (§5.2)."""
        self._election_elapsed = 0
        e = self._cfg.election_ticks
        self._election_timeout = self._rng.randrange(e, 2 * e)

    def _become_follower(self, term: Term, leader: NodeId | None) -> None:
        self._reset(term)
        self._role = Role.FOLLOWER
        self._state = FollowerState.new(self._read_ids)
        self._leader = leader

    def _become_pre_candidate(self) -> None:
        invariant(self._role is not Role.LEADER, "a leader cannot become pre-candidate")
        self._reset(self._term)
        self._role = Role.PRE_CANDIDATE
        self._state = CandidateState({self._id: True})
        self._request_votes(pre=True, transfer=False)
        self._tally()

    def _become_candidate(self, *, transfer: bool) -> None:
        invariant(self._role is not Role.LEADER, "a leader cannot become candidate")
        self._reset(self._term + 1)
        self._role = Role.CANDIDATE
        self._vote = self._id
        self._state = CandidateState({self._id: True})
        self._request_votes(pre=False, transfer=transfer)
        self._tally()

    def _become_leader(self) -> None:
        invariant(self._role is Role.CANDIDATE, f"{self._role} cannot become leader")
        self._role = Role.LEADER
        self._leader = self._id
        self._state = LeaderState.new(self._read_clock)  # nothing of an earlier leadership
        self._sync_progress()
        if not planted.on(Bug.FIGURE8_COMMIT_BY_COUNTING):  # the NOOP would mask it
            self._append_own(EntryType.NOOP, None)  # commits the previous terms' entries (§5.4.2)
        for peer in sorted(self._lead.progress):
            self._send_appends_to(peer, allow_empty=True)
        self._maybe_commit()

    # --- follower side of replication ---------------------------------------------------------------
    def _handle_append(self, msg: AppendEntries) -> None:
        """AppendEntries receiver (Figure 2) with the hash-chain check on top."""
        if msg.prev_log_index < self._commit:
            # Everything up to our commit index matches any current leader (§5.4).
            self._ack_append(msg, self._commit)
            return
        if not self._log.matches(msg.prev_log_index, msg.prev_log_term, msg.prev_log_hash):
            hint = rejection_hint(self._log, msg.prev_log_index, msg.prev_log_term)
            self._reject_append(msg, hint.conflict_index, hint.conflict_term)
            return
        entries: Sequence[Entry] = msg.entries
        if not batch_links(msg.prev_log_index, msg.prev_log_term, msg.prev_log_hash, entries):
            # Packed data is hashed as it came; a leader from before proposals were
            # canonical sends its commands' keys unsorted: try their canonical bytes.
            entries = recanonicalized(entries)
            if entries is msg.entries or not batch_links(
                msg.prev_log_index, msg.prev_log_term, msg.prev_log_hash, entries
            ):
                self._reject_append(msg, msg.prev_log_index + 1, 0)
                return
        conflict = self._log.find_conflict(entries)
        if planted.on(Bug.TRUNCATE_BELOW_COMMIT) and msg.entries:
            conflict = msg.prev_log_index + 1  # cut after prev even where it matches
        if conflict is not None:
            if conflict <= self._log.last_index:
                self._truncate_from(conflict)
            # Client entries stay packed (raft/packing.py): logged and applied as they came.
            self._append(entries[conflict - msg.prev_log_index - 1 :])
        # Only what this message confirmed matches the leader: entries past it may
        # be a stale suffix from an older term.
        confirmed = msg.prev_log_index + len(msg.entries)
        upto = (
            self._log.last_index if planted.on(Bug.FOLLOWER_COMMIT_BEYOND_CONFIRMED) else confirmed
        )
        self._commit_to(min(msg.leader_commit, upto))
        self._ack_append(msg, confirmed)

    def _ack_append(self, msg: AppendEntries, match_index: Index) -> None:
        self._send(
            AppendEntriesResp(
                src=self._id,
                dst=msg.src,
                term=self._term,
                success=True,
                match_index=match_index,
                read_seq=msg.read_seq,
            )
        )

    def _reject_append(
        self, msg: AppendEntries, conflict_index: Index, conflict_term: Term
    ) -> None:
        self._send(
            AppendEntriesResp(
                src=self._id,
                dst=msg.src,
                term=self._term,
                success=False,
                match_index=self._log.last_index,
                conflict_index=conflict_index,
                conflict_term=conflict_term,
                read_seq=msg.read_seq,
            )
        )

    # --- leader side of replication -------------------------------------------------------------------
    def _handle_append_resp(self, msg: AppendEntriesResp) -> None:
        lead = self._lead
        pr = lead.progress.get(msg.src)
        if pr is None:
            return
        lead.reads.record_ack(msg.src, msg.read_seq)
        if msg.success:
            if pr.on_ack(min(msg.match_index, self._log.last_index)):
                self._maybe_commit()
            if msg.src == lead.transfer_target and pr.match_index == self._log.last_index:
                self._send_timeout_now(msg.src)
            # An empty append is worth sending if it probes a follower still in PROBE
            # with nothing new to send (a lost probe, e.g. a node added while down, would
            # otherwise wait for a write). A newer commit alone waits for the heartbeat.
            probing = pr.state is ProgressState.PROBE
            self._send_appends_to(msg.src, allow_empty=probing)
        else:
            hint = next_index_from_hint(self._log, msg.conflict_index, msg.conflict_term)
            pr.on_reject(hint)
            self._send_appends_to(msg.src, allow_empty=True)
        self._emit_confirmed_reads()

    def _tick_leader(self) -> None:
        lead = self._lead
        lead.heartbeat_elapsed += 1
        self._election_elapsed += 1
        if lead.transfer_target is not None:
            lead.transfer_elapsed += 1
            if lead.transfer_elapsed >= self._cfg.election_ticks:
                lead.transfer_target = None  # the target did not take over: abort
        if self._election_elapsed >= self._cfg.election_ticks:
            self._election_elapsed = 0
            if self._cfg.check_quorum and not self._quorum_recently_active():
                self._become_follower(self._term, None)  # CheckQuorum (§6.2)
                return
        # A pipeline with no ack for this long lost a message (the core has no
        # "unreachable" signal from the transport): probe again. Several heartbeat
        # round trips, but well inside an election timeout.
        stall_ticks_max = max(2 * self._cfg.heartbeat_ticks, self._cfg.election_ticks // 2)
        for peer, pr in sorted(lead.progress.items()):
            if pr.tick_stalled(stall_ticks_max):
                self._send_appends_to(peer)
            send = pr.snapshot_send
            if send is not None and send.tick_stalled(stall_ticks_max):
                self._send_snapshot_chunks(peer)
        if lead.heartbeat_elapsed >= self._cfg.heartbeat_ticks:
            lead.heartbeat_elapsed = 0
            lead.reads.next_seq(self._ticks)  # every periodic round can renew the lease
            self._broadcast_heartbeat(periodic=True)
        else:
            for peer, pr in sorted(lead.progress.items()):
                if pr.heartbeat_owed:
                    self._send_heartbeat(peer, pr)

    def _quorum_recently_active(self) -> bool:
        progress = self._lead.progress
        active = {n for n, pr in progress.items() if pr.recent_active} | {self._id}
        for pr in progress.values():
            pr.recent_active = False
        return quorum.has_quorum(self._membership, active)

    def _send_appends_to(self, peer: NodeId, *, allow_empty: bool = False) -> None:
        """Send to ``peer`` until its window is full (replicate) or one probe is out."""
        sent = self._send_append(peer, allow_empty=allow_empty)
        while sent and self._lead.progress[peer].state is ProgressState.REPLICATE:
            sent = self._send_append(peer, allow_empty=False)

    def _send_append(self, peer: NodeId, *, allow_empty: bool) -> bool:
        pr = self._lead.progress[peer]
        if pr.is_paused():
            return False
        prev = pr.next_index - 1
        log = self._log
        prev_entry = log.at(prev)
        if prev_entry is None:
            self._start_snapshot(peer)  # compacted away: only a snapshot can catch it up
            return False
        prev_term, prev_hash = prev_entry.term, prev_entry.hash
        entries = log.slice(
            pr.next_index,
            log.last_index,
            count_max=self._cfg.append_entries_max,
            bytes_max=self._cfg.append_bytes_max,
        )
        if not entries and not allow_empty:
            return False
        self._send_append_msg(peer, prev, prev_term, prev_hash, entries)
        pr.on_sent(entries[-1].index if entries else prev, len(entries))
        return True

    def _send_append_msg(
        self, peer: NodeId, prev: Index, prev_term: Term, prev_hash: str, entries: list[Entry]
    ) -> None:
        lead = self._lead
        pr = lead.progress[peer]
        pr.commit_sent = self._commit
        pr.heartbeat_owed = False
        self._send(
            AppendEntries(
                src=self._id,
                dst=peer,
                term=self._term,
                leader_id=self._id,
                prev_log_index=prev,
                prev_log_term=prev_term,
                prev_log_hash=prev_hash,
                entries=entries,
                leader_commit=self._commit,
                read_seq=lead.reads.seq,
            )
        )

    def _broadcast_heartbeat(self, *, periodic: bool = False) -> None:
        """Empty AppendEntries at each follower's match index: commit, read_seq, liveness.

        A periodic round skips a follower that entries went to since the last round
        (as LogCabin restarts a peer's heartbeat timer on every AppendEntries), unless a
        read waits on the round: that follower heard from this leader within the period,
        and the AppendEntries that follow carry the round's ``read_seq``, so under a
        steady write load the lease renews from their acks as it would from the
        heartbeat's. Under load, heartbeats and their answers were about a third of a
        leader's messages. If the skipped follower has not heard the current commit
        index, it is owed a heartbeat: the next tick sends it unless an AppendEntries
        went first, so a follower learns a commit within one period and one tick.
        A round asked for by a read (``_read_round_pending``) goes to everyone.
        """
        lead = self._lead
        may_skip = periodic and not lead.reads.pending
        commit = self._commit
        for peer, pr in sorted(lead.progress.items()):
            sent_entries, pr.entries_sent_this_round = pr.entries_sent_this_round, False
            if may_skip and sent_entries and pr.state is ProgressState.REPLICATE:
                pr.heartbeat_owed = pr.commit_sent < commit
                continue
            self._send_heartbeat(peer, pr)

    def _send_heartbeat(self, peer: NodeId, pr: Progress) -> None:
        prev = self._log.at(pr.match_index)
        if prev is None:  # compacted away: the anchor is what both still hold
            prev = self._log.anchor
        self._send_append_msg(peer, prev.index, prev.term, prev.hash, [])

    def _flush_broadcasts(self) -> None:
        if self._role is Role.LEADER:
            if self._bcast_pending:
                for peer in sorted(self._lead.progress):
                    self._send_appends_to(peer)
            if self._read_round_pending:
                self._broadcast_heartbeat()
        self._bcast_pending = self._read_round_pending = False

    def _send_timeout_now(self, target: NodeId) -> None:
        self._send(TimeoutNow(src=self._id, dst=target, term=self._term))

    # --- commit and reads -------------------------------------------------------------------------
    def _maybe_commit(self) -> None:
        """Commit N iff log[N].term == current term and a (joint) majority matched N (§5.4.2)."""
        lead = self._lead
        match = {n: pr.match_index for n, pr in lead.progress.items()}
        match[self._id] = self._writes.durable_index  # only what is durable here counts
        n = quorum.committed_index(self._membership, match)
        if n <= self._commit:
            return
        if self._log.term_at(n) != self._term and not planted.on(Bug.FIGURE8_COMMIT_BY_COUNTING):
            return
        self._commit_to(n)
        reads = lead.reads
        if reads.waiting_for_noop:
            waiting, reads.waiting_for_noop = reads.waiting_for_noop, []
            for ctx in waiting:
                reads.register(ctx, self._commit, self._ticks)
            self._emit_confirmed_reads()
            self._read_round_pending = bool(reads.pending)
        # No message of its own for the new commit index: it rides on the next
        # AppendEntries or heartbeat (at most one heartbeat interval later). An extra
        # round per commit cost every node a send, a receive and an ack, and at one
        # client at a time that work landed on the next write's path (8-20 % of its
        # latency on a 2-core machine). A follower that needs it sooner for a read gets
        # it with the read's answer (_emit_confirmed_reads).

    def _commit_to(self, index: Index) -> None:
        if index > self._commit:
            invariant(index <= self._log.last_index, "commit %d beyond last index", index)
            self._commit = index

    def _apply_upto(self) -> Index:
        """The last index a Ready may hand out for applying: the commit index."""
        if planted.on(Bug.APPLY_BEFORE_COMMIT):
            return self._log.last_index
        return self._commit

    def _committed_in_term(self) -> bool:
        return self._log.term_at(self._commit) == self._term

    def _emit_confirmed_reads(self) -> None:
        lead = self._lead
        if not lead.reads.pending:  # asked after every ack; confirmed() would find nothing
            return
        confirmed = lead.reads.confirmed(self._id, self._membership)
        for state in confirmed:
            if isinstance(state.ctx, RemoteRead):
                remote = state.ctx
                pr = lead.progress.get(remote.node)
                if pr is not None and pr.commit_sent < min(state.index, pr.match_index):
                    # The follower serves the read once it has applied state.index: tell
                    # it the commit now (same link, so before the answer), not at the
                    # next heartbeat.
                    self._send_appends_to(remote.node, allow_empty=True)
                resp = ReadIndexResp(
                    src=self._id,
                    dst=remote.node,
                    term=self._term,
                    read_id=remote.read_id,
                    index=state.index,
                )
                self._send(resp)
            else:
                self._read_states.append(state)

    # --- log and membership -----------------------------------------------------------------------
    def _append_own(self, type_: EntryType, data: Any) -> Index:
        last = self._log.last_entry
        entry = make_entry(last.hash, self._term, last.index + 1, type_, data)
        if self._signer is not None:
            entry = signed(entry, self._signer)
        self._append([entry])
        return entry.index

    def _append(self, entries: Sequence[Entry]) -> None:
        """Entries whose links were just made (``_append_own``) or checked against the
        entry before them here (``batch_links`` + ``find_conflict``)."""
        if self._log.append(entries, linked=True):
            self._refresh_membership()

    def _truncate_from(self, index: Index) -> None:
        self._log.truncate_from(index, self._commit)
        self._writes.on_truncate(index)
        self._refresh_membership()

    def _refresh_membership(self) -> None:
        """The newest CONFIG entry in the log governs, committed or not (dissertation §4.1)."""
        cfg = self._log.last_config_entry()
        self._membership = Membership.from_data(cfg.data) if cfg else self._base_membership
        self._learner = self._id in self._membership.learners
        if self._role is Role.LEADER:
            self._sync_progress()
            # A smaller quorum may confirm reads waiting now (``read_index`` asks only
            # for a read alone in the queue, and a leader alone gets no acks).
            self._emit_confirmed_reads()

    def _config_change_pending(self) -> bool:
        """An uncommitted CONFIG entry or a joint configuration: no new change may start."""
        cfg = self._log.last_config_entry()
        return (cfg is not None and cfg.index > self._commit) or self._membership.joint

    def _drive_config_change(self) -> None:
        """Leader, after each Ready: the next step of a change once the previous one committed.

        C_old,new committed -> append C_new; C_new committed without us -> step down
        (dissertation §4.2.2); a learner marked for promotion caught up -> promote it.
        Runs from ``advance()`` rather than inside a message handler so that progress
        entries dropped by a new configuration are never in use mid-handler.
        """
        cfg = self._log.last_config_entry()
        if cfg is not None and cfg.index > self._commit:
            return
        m = self._membership
        if m.joint:
            self._append_own(EntryType.CONFIG, membership_change.leave_joint(m).to_data())
            self._bcast_pending = True
        elif not m.is_voter(self._id):
            self._become_follower(self._term, None)
        elif (
            m.promote_when_caught_up  # else learner_to_promote has nobody to look at
            and self._lead.transfer_target is None
            and self._committed_in_term()
        ):
            match = {n: pr.match_index for n, pr in self._lead.progress.items()}
            learner = membership_change.learner_to_promote(
                m, match, self._log.last_index, self._cfg.promote_lag_entries_max
            )
            if learner is not None:
                self.propose_config_change(ConfigChange(ChangeKind.PROMOTE, learner))

    def _sync_progress(self) -> None:
        progress = self._lead.progress
        members = self._membership.members() - {self._id}
        for gone in set(progress) - members:
            del progress[gone]
        for peer in members - set(progress):
            progress[peer] = Progress(self._log.last_index + 1, self._cfg.inflight_appends_max)

    # --- snapshots (the streaming state lives in raft/snapshot.py) -------------------------------
    def _start_snapshot(self, peer: NodeId) -> None:
        """Leader: ``peer`` needs compacted entries; stream the latest snapshot."""
        snap = self._snapshot
        invariant(snap is not None, "log compacted but no snapshot was set")
        assert snap is not None
        send = SnapshotSend(snap, self._snapshot_chunk_bytes, self._snapshot_window)
        self._lead.progress[peer].become_snapshot(snap.index, send)
        self._send_snapshot_chunks(peer)

    def _send_snapshot_chunks(self, peer: NodeId) -> None:
        send = self._lead.progress[peer].snapshot_send
        if send is not None:
            for chunk in send.next_chunks(self._id, peer, self._term):
                self._send(chunk)

    def _handle_snapshot_resp(self, msg: InstallSnapshotResp) -> None:
        pr = self._lead.progress.get(msg.src)
        send = pr.snapshot_send if pr is not None else None
        if pr is None or send is None or msg.last_included_index != send.snap.index:
            return
        pr.recent_active = True
        if msg.success and msg.next_offset >= send.total:
            pr.on_ack(send.snap.index)  # the follower holds everything up to the snapshot
            self._maybe_commit()
            self._send_appends_to(msg.src, allow_empty=True)
            return
        send.on_response(msg.next_offset)
        self._send_snapshot_chunks(msg.src)

    def _handle_snapshot_chunk(self, msg: InstallSnapshot) -> None:
        """Follower: take one chunk; install once the whole snapshot checks out."""
        index = msg.last_included_index
        if index <= self._commit:
            # Already holds it (committed entries match any leader's, §5.4): done.
            if self._receiving is not None and self._receiving.index <= self._commit:
                self._receiving.spool.discard()
                self._receiving = None
            self._answer_snapshot(msg, success=True, next_offset=msg.total_bytes)
            return
        recv = self._receiving
        if recv is None or not recv.same_stream(msg):
            if msg.offset != 0:
                self._answer_snapshot(msg, success=False, next_offset=0)
                return
            if recv is not None:
                recv.spool.discard()
            recv = self._receiving = SnapshotReceive(msg, self._snapshot_spool())
        if msg.done and self._applying != self._applied:
            # Committed entries handed out in a Ready are not applied yet (the runtime
            # is between ready() and advance()): installing now would skip past them.
            # Ask for the last chunk again; it is resent on the leader's next answer.
            self._answer_snapshot(msg, success=True, next_offset=msg.offset)
            return
        if recv.assembled is not None:
            if not msg.done:  # a late copy of an earlier chunk: still the last one, please
                self._answer_snapshot(msg, success=True, next_offset=recv.last_offset)
                return
            result = ReceiveResult(recv.total, snapshot=recv.assembled)
        else:
            result = recv.accept(msg)
        prepared = self._snapshot_prepared
        if result.snapshot is not None and prepared is not None and not prepared(result.snapshot):
            # The runtime reads its state meanwhile, a slice per loop turn, so this node
            # goes on acking: read at the install, a large state stopped the loop for
            # seconds. Kept assembled; the leader resends the last chunk (at once, then
            # on its stall timer) until the state is read.
            recv.assembled, recv.last_offset = result.snapshot, msg.offset
            self._answer_snapshot(msg, success=True, next_offset=msg.offset)
            return
        check = self._snapshot_check
        if result.snapshot is not None and check is not None and check(result.snapshot):
            result = ReceiveResult(0, ok=False)  # refused: the leader restarts from 0
        if not result.ok or result.snapshot is not None:
            self._receiving = None
            recv.spool.discard()
        if result.snapshot is not None:
            self._install_snapshot(result.snapshot, recv.restream_checksum(result.snapshot))
        self._answer_snapshot(msg, success=result.ok, next_offset=result.next_offset)

    def forget_snapshot(self, snapshot: Snapshot) -> None:
        """The runtime found ``snapshot``'s state unusable while reading it (see
        ``snapshot_prepared``): let it go, spool and all. The leader's next resend of
        its last chunk is then answered with offset 0, and it starts over."""
        recv = self._receiving
        if recv is not None and recv.assembled is snapshot:
            recv.spool.discard()
            self._receiving = None

    def _answer_snapshot(self, msg: InstallSnapshot, *, success: bool, next_offset: int) -> None:
        self._send(
            InstallSnapshotResp(
                src=self._id,
                dst=msg.src,
                term=self._term,
                success=success,
                last_included_index=msg.last_included_index,
                next_offset=next_offset,
            )
        )

    def _install_snapshot(self, snap: Snapshot, checksum: str | None) -> None:
        """Replace log and state by ``snap``, keeping a log suffix that matches it (§7).

        The runtime gets it as ``Ready.snapshot``; the answer that acknowledges it
        leaves in the same Ready, so only after the snapshot is durable.
        """
        meta = snap.meta
        index = meta.last_included_index
        keep = self._log.matches(index, meta.last_included_term, meta.last_included_hash)
        if keep:
            self._log.compact(index)
        else:
            self._log = RaftLog(snap_dummy(index, meta.last_included_term, meta.last_included_hash))
        self._writes.on_snapshot(index, kept_suffix=keep)
        self._commit = max(self._commit, index)
        self._applied = self._applying = index
        self._base_membership = meta.membership
        self._refresh_membership()
        self._install = snap
        # The stream's checksum, when this node streams the same bytes: no second hash.
        self._snapshot = OutgoingSnapshot.of(snap, checksum)

    # --- small helpers ----------------------------------------------------------------------------
    def _send(self, msg: Message) -> None:
        self._msgs.append(msg)

    @property
    def _lead(self) -> LeaderState:
        """The current leadership's state; asking for it in another role is a bug."""
        st = self._state
        if not isinstance(st, LeaderState):
            raise errors.InvariantViolation(f"{self._id}: leader state asked for as {self._role}")
        return st

    @property
    def _candidacy(self) -> CandidateState:
        st = self._state
        if not isinstance(st, CandidateState):
            raise errors.InvariantViolation(f"{self._id}: votes asked for as {self._role}")
        return st

    @property
    def _following(self) -> FollowerState:
        st = self._state
        if not isinstance(st, FollowerState):
            raise errors.InvariantViolation(f"{self._id}: follower state asked for as {self._role}")
        return st

    def _require_leader(self) -> None:
        if self._role is not Role.LEADER:
            raise errors.NotLeader(self._leader, None, self._term)

    def _check_invariants(self) -> None:
        # Invariant: anchor.index <= applied <= commit_index <= last_index. Checked after
        # every input, so the passing case is tested inline before calling ``invariant``.
        log = self._log
        if log.first_index - 1 <= self._applied <= self._commit <= log.last_index:
            return
        invariant(
            self._log.anchor.index <= self._applied <= self._commit <= self._log.last_index,
            "%s: anchor %d, applied %d, commit %d, last %d",
            self._id,
            self._log.anchor.index,
            self._applied,
            self._commit,
            self._log.last_index,
        )


__all__ = ["RaftNode"]
