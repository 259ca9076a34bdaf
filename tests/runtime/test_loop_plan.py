"""Each rule of the driver loop's decision (runtime/loop_plan.py), and the driver's halves."""

from __future__ import annotations

import random

import pytest

from resonetics.errors import InvariantViolation
from resonetics.raft.config import RaftConfig
from resonetics.raft.messages import Message
from resonetics.runtime.driver import NodeDriver
from resonetics.runtime.loop_plan import (
    LoopState,
    ReadyShape,
    SnapshotStep,
    Step,
    decide,
    snapshot_step,
)
from resonetics.runtime.outcome import Outcome
from resonetics.runtime.snapshots import SnapshotPolicy
from resonetics.storage.memory import MemoryNodeStorage
from resonetics.wire import codes

SMALL = ReadyShape(entries=2, truncates=False, writes_disk=True, installs_snapshot=False)


def _state(
    ready: ReadyShape | None = SMALL,
    *,
    in_flight: bool = False,
    taking: bool = False,
    due: bool = False,
    reading: bool = False,
) -> LoopState:
    return LoopState(ready, in_flight, taking, due, reading)


def test_one_ready_in_flight_at_a_time() -> None:
    assert decide(_state(in_flight=True), 64) is Step.WAIT_FOR_WRITE
    assert decide(_state(None, in_flight=True, due=True), 64) is Step.WAIT_FOR_WRITE


def test_nothing_to_do_without_a_ready_or_a_due_snapshot() -> None:
    assert decide(_state(None), 64) is Step.NOTHING


def test_a_due_snapshot_starts_only_when_no_ready_waits_and_none_is_being_taken() -> None:
    assert decide(_state(None, due=True), 64) is Step.START_SNAPSHOT
    assert decide(_state(None, due=True, taking=True), 64) is Step.NOTHING
    assert decide(_state(SMALL, due=True), 64) is Step.WRITE_INLINE


def test_a_received_snapshot_is_read_before_anything_but_the_write_in_flight() -> None:
    assert decide(_state(None, reading=True), 64) is Step.READ_SNAPSHOT
    assert decide(_state(SMALL, reading=True, due=True), 64) is Step.READ_SNAPSHOT
    assert decide(_state(SMALL, reading=True, taking=True), 64) is Step.READ_SNAPSHOT
    assert decide(_state(SMALL, in_flight=True, reading=True), 64) is Step.WAIT_FOR_WRITE


def test_a_snapshot_install_waits_for_the_snapshot_being_taken() -> None:
    install = ReadyShape(entries=0, truncates=False, writes_disk=True, installs_snapshot=True)
    assert decide(_state(install, taking=True), 64) is Step.WAIT_FOR_SNAPSHOT
    # Its file is the size of the state: written on the disk thread, never on the loop.
    assert decide(_state(install), 64) is Step.WRITE_ON_DISK_THREAD


def test_a_ready_with_nothing_to_write_is_handled_without_a_write() -> None:
    nothing = ReadyShape(entries=0, truncates=False, writes_disk=False, installs_snapshot=False)
    assert decide(_state(nothing), 64) is Step.NO_WRITE
    assert decide(_state(nothing, taking=True), 64) is Step.NO_WRITE


def test_a_small_write_is_inline_and_a_big_one_goes_to_the_disk_thread() -> None:
    assert decide(_state(SMALL), 2) is Step.WRITE_INLINE
    assert decide(_state(SMALL), 1) is Step.WRITE_ON_DISK_THREAD


def test_a_truncation_goes_to_the_disk_thread() -> None:
    cut = ReadyShape(entries=1, truncates=True, writes_disk=True, installs_snapshot=False)
    assert decide(_state(cut), 64) is Step.WRITE_ON_DISK_THREAD


def test_writes_go_to_the_disk_thread_while_a_snapshot_owns_it() -> None:
    assert decide(_state(SMALL, taking=True), 64) is Step.WRITE_ON_DISK_THREAD


def test_a_snapshot_is_encoded_in_slices_then_saved_then_finished() -> None:
    assert snapshot_step(encoded=False, written=False, saved=False) is SnapshotStep.SNAPSHOT_SLICE
    assert (
        snapshot_step(encoded=True, written=False, saved=False) is SnapshotStep.WRITE_SNAPSHOT_FILE
    )
    assert snapshot_step(encoded=True, written=True, saved=False) is SnapshotStep.COMPACT_LOG
    assert snapshot_step(encoded=True, written=True, saved=True) is SnapshotStep.FINISH_SNAPSHOT


# --- the driver's halves --------------------------------------------------------------------
class _Host:
    def __init__(self) -> None:
        self.sent: list[Message] = []

    def now_ms(self) -> int:
        return 1_000

    def send(self, msg: Message) -> None:
        self.sent.append(msg)

    def flush(self) -> None:
        pass


def _leader(snapshot_entries: int = 0) -> NodeDriver:
    node = NodeDriver(
        RaftConfig(node_id="n1", initial_voters=("n1",)),
        MemoryNodeStorage(),
        _Host(),
        random.Random(1),
        snapshot_policy=SnapshotPolicy(entries=snapshot_entries, trailing_entries=0),
    )
    node.core.campaign()
    node.process_ready()
    return node


def test_a_write_is_answered_only_after_its_ready_is_finished() -> None:
    """Answer only after durable: the disk thread's half returning is not enough."""
    node = _leader()
    node.inline_entries_max = 0
    answers: list[Outcome] = []
    node.submit("c", "r1", "kv_set", {"k": "a", "v": 1}, answers.append)
    assert node.next_step() is Step.WRITE_ON_DISK_THREAD
    job = node.begin_ready()
    assert node.next_step() is Step.WAIT_FOR_WRITE
    job.write()
    assert answers == []
    node.finish_ready(job)
    # A one-node cluster commits at advance(); the next Ready applies and answers.
    node.process_ready()
    assert [a.code for a in answers] == [codes.OK]


def test_input_during_a_write_in_flight_is_proposed_after_it() -> None:
    """Group commit during the fsync: commands accepted meanwhile wait for the next Ready."""
    node = _leader()
    node.inline_entries_max = 0
    node.submit("c", "r1", "kv_set", {"k": "a", "v": 1}, lambda o: None)
    assert node.next_step() is Step.WRITE_ON_DISK_THREAD
    job = node.begin_ready()
    last = node.core.last_index
    node.submit("c", "r2", "kv_set", {"k": "b", "v": 2}, lambda o: None)
    node.tick()
    assert node.next_step() is Step.WAIT_FOR_WRITE
    assert node.core.last_index == last  # not proposed while the write is in flight
    job.write()
    node.finish_ready(job)
    assert node.has_work()
    node.next_step()
    assert node.core.last_index == last + 1


def test_finishing_a_ready_not_in_flight_is_refused() -> None:
    node = _leader()
    node.submit("c", "r1", "kv_set", {"k": "a", "v": 1}, lambda o: None)
    node.next_step()
    job = node.begin_ready()
    job.write()
    node.finish_ready(job)
    with pytest.raises(InvariantViolation):
        node.finish_ready(job)


def test_a_snapshot_taken_in_slices_fixes_the_state_at_its_start() -> None:
    node = _leader(snapshot_entries=1)
    node.submit("c", "r1", "kv_set", {"k": "a", "v": 1}, lambda o: None)
    while (step := node.next_step()) is not Step.START_SNAPSHOT:
        assert step is not Step.NOTHING
        job = node.begin_ready()
        job.write()
        node.finish_ready(job)
    snap = node.start_snapshot()
    at = snap.index
    assert node.next_step() is Step.NOTHING  # no second snapshot while one is taken
    node.submit("c", "r2", "kv_set", {"k": "a", "v": 2}, lambda o: None)
    node.process_ready()  # the node goes on applying meanwhile
    assert node.machine.last_applied > at
    while not snap.slice():
        pass
    assert snap.slices >= 2
    snap.write_file()
    node.process_ready()  # the log is written while the snapshot file is
    snap.compact_log()
    node.finish_snapshot(snap)
    assert node.snapshots.stats.last_index == at
    assert node.storage.load().snapshot is not None


def test_next_step_when_idle_says_what_decide_says() -> None:
    """``next_step`` answers NOTHING for an idle driver without building the loop
    state; the answer must be ``decide``'s for the same facts: idle, with a snapshot
    due (START_SNAPSHOT, not the shortcut), and idle while one is being taken."""
    node = _leader(snapshot_entries=1)
    assert node.next_step() is Step.NOTHING
    assert decide(node._loop_state(), node.inline_entries_max) is Step.NOTHING
    node.submit("c", "r1", "kv_set", {"k": "a", "v": 1}, lambda o: None)
    while (step := node.next_step()) is not Step.START_SNAPSHOT:
        assert step is not Step.NOTHING  # a due snapshot is never skipped as idle
        job = node.begin_ready()
        job.write()
        node.finish_ready(job)
    assert decide(node._loop_state(), node.inline_entries_max) is Step.START_SNAPSHOT
    node.start_snapshot()
    assert node.next_step() is Step.NOTHING
    assert decide(node._loop_state(), node.inline_entries_max) is Step.NOTHING


def test_a_leader_answers_writes_already_on_disk_before_its_next_fsync() -> None:
    """``_apply_durable``: a Ready carrying committed entries and a new batch applies
    (and answers) the committed ones before the batch's write, not after it."""
    node = _leader()
    first: list[Outcome] = []
    node.submit("c", "r1", "kv_set", {"k": "a", "v": 1}, first.append)
    assert node.next_step() is Step.WRITE_INLINE
    job = node.begin_ready()
    job.write()
    node.finish_ready(job)  # r1 is durable; a one-node cluster commits it at advance()
    assert first == []
    node.submit("c", "r2", "kv_set", {"k": "b", "v": 2}, lambda o: None)
    assert node.next_step() is Step.WRITE_INLINE
    job = node.begin_ready()  # commits r1, carries r2's entry to write
    assert [a.code for a in first] == [codes.OK], "r1 waited for r2's write"
    job.write()
    node.finish_ready(job)


def test_a_follower_acks_a_new_batch_before_it_applies_what_is_committed() -> None:
    """A follower's Ready with a new entry to write and an older one newly committed:
    nothing is applied before the write (nobody waits on a follower's applies, the
    leader waits on its ack); the ack leaves after the write, then the apply."""
    from resonetics.raft.entry import EntryType, make_entry
    from resonetics.raft.messages import AppendEntries, AppendEntriesResp

    host = _Host()
    node = NodeDriver(
        RaftConfig(node_id="n2", initial_voters=("n1", "n2", "n3")),
        MemoryNodeStorage(),
        host,
        random.Random(1),
    )
    anchor_hash = node.core.hash_at(0)
    assert anchor_hash is not None
    cmd = {
        "client_id": "c",
        "request_id": "r1",
        "op": "kv_set",
        "args": {"k": "a", "v": 1},
        "ts": 1,
    }
    e1 = make_entry(anchor_hash, 1, 1, EntryType.CLIENT_CMD, cmd)
    e2 = make_entry(e1.hash, 1, 2, EntryType.CLIENT_CMD, {**cmd, "request_id": "r2"})

    def append(prev_index: int, prev_hash: str, entry: object, commit: int) -> AppendEntries:
        return AppendEntries(
            src="n1", dst="n2", term=1, leader_id="n1", prev_log_index=prev_index,
            prev_log_term=0 if prev_index == 0 else 1, prev_log_hash=prev_hash,
            entries=[entry], leader_commit=commit,
        )  # fmt: skip

    node.step(append(0, anchor_hash, e1, 0))
    node.process_ready()
    host.sent.clear()
    node.step(append(1, e1.hash, e2, 1))  # entry 2 to write, entry 1 now committed
    assert node.next_step() is Step.WRITE_INLINE
    job = node.begin_ready()
    assert node.machine.last_applied == 0, "applied before the write that delays the ack"
    assert not any(isinstance(m, AppendEntriesResp) for m in host.sent)
    job.write()
    node.finish_ready(job)
    acks = [m for m in host.sent if isinstance(m, AppendEntriesResp)]
    assert [(a.success, a.match_index) for a in acks] == [(True, 2)]
    assert node.machine.last_applied == 1


class _Recorder:
    """A host that notes sends and flushes in one list, shared with the machine's applies."""

    def __init__(self, order: list[str]) -> None:
        self.order = order
        self.queued: list[Message] = []

    def now_ms(self) -> int:
        return 1_000

    def send(self, msg: Message) -> None:
        self.queued.append(msg)
        self.order.append(f"send {type(msg).__name__}")

    def flush(self) -> None:
        self.order.append("flush")


def test_a_follower_flushes_its_ack_before_it_applies() -> None:
    """The ack after a follower's write is what its leader waits on to commit: it is
    handed to the network, and the follower's core offered to whoever it woke, before
    the follower applies what the same Ready commits."""
    order: list[str] = []
    voters = ("n1", "n2", "n3")
    hosts = {n: _Recorder(order if n == "n2" else []) for n in ("n1", "n2")}
    nodes = {
        n: NodeDriver(
            RaftConfig(node_id=n, initial_voters=voters),
            MemoryNodeStorage(),
            host,
            random.Random(1),
        )
        for n, host in hosts.items()
    }
    applied = nodes["n2"].machine.apply

    def recording_apply(*args: object, **kwargs: object) -> object:
        order.append("apply")
        return applied(*args, **kwargs)  # type: ignore[arg-type]

    nodes["n2"].machine.apply = recording_apply  # type: ignore[method-assign]
    nodes["n2"].yield_after_acks = lambda: order.append("yield")

    def pump() -> None:
        for _ in range(50):  # bounded: a few rounds settle a two-node exchange
            for node in nodes.values():
                node.process_ready()
            moving = [m for h in hosts.values() for m in h.queued if m.dst in nodes]
            for host in hosts.values():
                host.queued.clear()
            if not moving:
                return
            for msg in moving:
                nodes[msg.dst].step(msg)
        raise AssertionError("the exchange did not settle")

    nodes["n1"].core.campaign()
    pump()
    assert nodes["n1"].core.role.value == "leader"
    answers: list[Outcome] = []
    for request in ("r1", "r2"):
        nodes["n1"].submit("c", request, "kv_set", {"k": request, "v": 1}, answers.append)
        order.clear()
        pump()
    # r2's AppendEntries carried r1's commit: n2 wrote r2, then acked, flushed, applied r1.
    assert "apply" in order and "send AppendEntriesResp" in order
    ack = order.index("send AppendEntriesResp")
    assert order.index("flush", ack) < order.index("apply", ack)
    # ... and gave its core away in between (the server: os.sched_yield), so the leader
    # the ack woke runs before that apply.
    assert order.index("flush", ack) < order.index("yield", ack) < order.index("apply", ack)


class _FlushCounter(_Host):
    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1


def _leader_of_three(host: _Host, apply_entries_max: int = 1024) -> NodeDriver:
    from resonetics.raft.messages import AppendEntriesResp, RequestVoteResp

    node = NodeDriver(
        RaftConfig(
            node_id="n1",
            initial_voters=("n1", "n2", "n3"),
            pre_vote=False,
            apply_entries_max=apply_entries_max,
        ),
        MemoryNodeStorage(),
        host,
        random.Random(1),
    )
    node.core.campaign()
    node.process_ready()
    node.step(RequestVoteResp(src="n2", dst="n1", term=1, vote_granted=True))
    node.process_ready()  # the NOOP written
    node.step(AppendEntriesResp(src="n2", dst="n1", term=1, success=True, match_index=1))
    node.process_ready()
    assert node.core.is_leader and node.core.applied == 1
    return node


def _ack(node: NodeDriver, match: int, peer: str = "n2") -> None:
    from resonetics.raft.messages import AppendEntriesResp

    node.step(AppendEntriesResp(src=peer, dst="n1", term=1, success=True, match_index=match))


def test_a_leader_answers_a_write_on_the_ack_that_commits_it_while_its_next_write_is_in_flight() -> (
    None
):
    """``_apply_on_commit``: the ack committing r1 arrives while r2's write is on the disk
    thread; r1 is applied and answered then, not after r2's write. The core hears of it
    after r2's Ready, whose entries come first; r2 itself (not on this node's disk yet)
    waits for its write, even once both followers have it."""
    host = _FlushCounter()
    node = _leader_of_three(host)
    node.inline_entries_max = 0
    first: list[Outcome] = []
    second: list[Outcome] = []
    node.submit("c", "r1", "kv_set", {"k": "a", "v": 1}, first.append)
    assert node.next_step() is Step.WRITE_ON_DISK_THREAD
    job = node.begin_ready()
    job.write()
    node.finish_ready(job)  # r1 (index 2) on the leader's disk, not committed
    node.submit("c", "r2", "kv_set", {"k": "b", "v": 2}, second.append)
    assert node.next_step() is Step.WRITE_ON_DISK_THREAD
    job = node.begin_ready()  # r2 (index 3) in flight
    assert first == []

    flushes = host.flushes
    _ack(node, 2)
    assert [a.code for a in first] == [codes.OK], "r1 waited for r2's write"
    assert host.flushes == flushes + 1  # its answer handed to the network at once
    assert node.machine.last_applied == 2 and node.core.applied == 1
    _ack(node, 3)
    _ack(node, 3, peer="n3")
    assert node.core.commit_index == 3 and second == []  # r2 is not on the leader's disk yet
    assert node.next_step() is Step.WAIT_FOR_WRITE

    job.write()
    node.finish_ready(job)
    assert node.core.applied == 2
    node.process_ready()  # r2, committed by the followers, applied by the next Ready
    assert [a.code for a in second] == [codes.OK]
    assert node.core.applied == node.machine.last_applied == 3
    assert node.stats.entries_applied_on_ack == 1


def test_a_leader_with_no_write_in_flight_applies_on_the_ack_and_tells_the_core_at_once() -> None:
    node = _leader_of_three(_Host())
    answers: list[Outcome] = []
    node.submit("c", "r1", "kv_set", {"k": "a", "v": 1}, answers.append)
    node.process_ready()
    assert answers == []
    _ack(node, 2)
    assert [a.code for a in answers] == [codes.OK]
    assert node.core.applied == node.machine.last_applied == 2
    node.process_ready()  # the commit index's Ready: applies nothing twice (that raises)
    assert node.machine.last_applied == 2 and len(answers) == 1


def test_nothing_is_applied_on_an_ack_while_a_ready_is_held() -> None:
    """A Ready the driver holds (taken by ``next_step``, not begun) may carry committed
    entries handed out ahead of anything an ack could commit: an ack then applies
    nothing, and the Readys apply in order."""
    node = _leader_of_three(_Host())
    answers: list[str] = []
    for request in ("r1", "r2"):
        node.submit(
            "c", request, "kv_set", {"k": request, "v": 1}, lambda o, r=request: answers.append(r)
        )
        node.process_ready()  # indexes 2 and 3 on the leader's disk, not committed
    node.submit("c", "r3", "kv_set", {"k": "r3", "v": 1}, lambda o: answers.append("r3"))
    assert node.next_step() is Step.WRITE_INLINE  # r3's Ready held, not begun
    _ack(node, 3)
    assert answers == [] and node.machine.last_applied == 1
    node.process_ready()
    _ack(node, 4)
    node.process_ready()
    assert answers == ["r1", "r2", "r3"]
    assert node.machine.last_applied == node.core.applied == 4


def test_a_backlog_past_the_apply_budget_is_applied_a_slice_per_ready_not_a_slice_per_ack() -> None:
    """An ack that commits more than one Ready's apply budget applies one slice; the rest
    goes a slice per Ready (the server yields to the loop between them), and the acks
    that arrive meanwhile apply nothing: several in one loop turn must not stall it for
    several slices."""
    node = _leader_of_three(_Host(), apply_entries_max=2)
    answered: list[str] = []
    for n in range(6):
        request = f"r{n}"
        node.submit(
            "c", request, "kv_set", {"k": request, "v": n}, lambda o, r=request: answered.append(r)
        )
        node.process_ready()  # indexes 2..7 on the leader's disk, one entry each
    assert answered == []
    _ack(node, 7)  # commits 2..7: six entries, three budgets
    assert answered == ["r0", "r1"] and node.core.apply_sliced
    _ack(node, 7, peer="n3")
    assert answered == ["r0", "r1"]  # the next slices are the Readys'
    node.process_ready()
    assert answered == [f"r{n}" for n in range(6)]
    assert node.core.applied == node.machine.last_applied == 7
    assert not node.core.apply_sliced
