"""A follower reads a received snapshot's state a slice at a time, acking meanwhile, and
installs it once read (runtime/snapshot_reading.py)."""

from __future__ import annotations

from resonetics.machine.replicated import PendingRestore, ReplicatedKV
from resonetics.raft.messages import AppendEntriesResp, InstallSnapshot
from resonetics.raft.ready import Role, Snapshot, SnapshotMeta
from resonetics.runtime.driver import NodeDriver
from resonetics.runtime.loop_plan import Step
from resonetics.runtime.snapshot_reading import SnapshotReading
from resonetics.runtime.snapshots import SnapshotPolicy
from tests.runtime.test_snapshots import Mini, state

#: Small slices of the key-value table, so that a reading takes many steps.
POLICY = SnapshotPolicy(
    entries=20, trailing_entries=5, chunk_bytes=300, chunks_inflight_max=2, stagger=0.0
)


def _hold_readings(d: NodeDriver, held: list[SnapshotReading]) -> None:
    """``d.process_ready`` that starts a reading but leaves its slices to the test (as the
    server's executor runs them, one per loop turn, beside everything else)."""

    def process_ready() -> None:
        while (step := d.next_step()) is not Step.NOTHING:
            if step is Step.READ_SNAPSHOT:
                held.append(d.start_reading())
                continue
            job = d.begin_ready()
            job.write()
            d.finish_ready(job)

    d.process_ready = process_ready  # type: ignore[method-assign]


def _lagging_follower(mini: Mini) -> str:
    mini.write(5)
    lagging = next(i for i in mini.ids if mini.driver(i).core.role is not Role.LEADER)
    mini.down.add(lagging)
    mini.write(60)
    return lagging


def _back_and_reading(mini: Mini, lagging: str) -> tuple[list[SnapshotReading], SnapshotReading]:
    """Bring ``lagging`` back and tick until it has started reading the leader's snapshot
    (its slices are left to the test); every reading it starts goes into the list."""
    held: list[SnapshotReading] = []
    _hold_readings(mini.driver(lagging), held)
    mini.down.discard(lagging)
    for _ in range(40):
        if held:
            break
        mini.tick()
    (reading,) = held
    return held, reading


def test_a_follower_acks_while_it_reads_a_snapshot_and_installs_it_once_read() -> None:
    mini = Mini(policy=POLICY)
    lagging = _lagging_follower(mini)
    d = mini.driver(lagging)
    before = state(d)
    held, reading = _back_and_reading(mini, lagging)
    assert not reading.done and d.snapshots.stats.installed == 0
    leader = mini.leader().config.node_id

    acks = 0
    ticks = 0
    while not reading.slice():
        sent_before = len(mini.sent)
        mini.tick()
        ticks += 1
        acks += sum(
            isinstance(m, AppendEntriesResp) and m.src == lagging for m in mini.sent[sent_before:]
        )
        assert state(d) == before, "nothing changes before the install"
        assert mini.leader().config.node_id == leader
    assert reading.slices > 3 and ticks == reading.slices - 1
    assert acks >= ticks, "every tick's heartbeat was answered while reading"
    assert reading.reason is None and reading.pending is not None

    for _ in range(40):  # the leader resends the last chunk on its stall timer
        if d.snapshots.stats.installed:
            break
        mini.tick()
    assert d.snapshots.stats.installed == d.snapshots.stats.installed_read == 1
    mini.tick(10)
    assert len({repr(state(mini.driver(i))) for i in mini.ids}) == 1
    assert len(held) == 1, "read once"


def _snapshot_of(d: NodeDriver) -> Snapshot:
    index = d.machine.last_applied
    meta = SnapshotMeta(
        index, d.core.term_at(index) or 0, d.core.hash_at(index) or "", d.core.membership
    )
    return Snapshot(meta, d.machine.snapshot())


def test_a_reading_is_dropped_when_another_snapshot_comes() -> None:
    """A new leader streams another snapshot: the first reading stops, the second is read
    and installed, and the first one's state never reaches the machine."""
    mini = Mini(policy=POLICY)
    mini.write(30)
    leader = mini.leader()
    follower = next(d for d in mini.drivers.values() if d is not None and d is not leader)
    first = _snapshot_of(leader)
    assert follower._snapshot_read(first) is False
    reading = follower.start_reading()
    reading.slice()
    mini.write(10, tag="more")
    second = _snapshot_of(leader)
    assert follower._snapshot_read(second) is False
    assert reading.done and reading.pending is None and reading.reason == "dropped"
    newer = follower.start_reading()
    assert newer.snapshot is second
    while not newer.slice():
        pass
    assert follower._snapshot_read(second) is True
    assert follower._check_snapshot(second) is None


def test_restore_steps_change_nothing_until_the_state_read_is_put_in_place() -> None:
    mini = Mini(policy=POLICY)
    mini.write(30)
    source = mini.leader().machine
    target = ReplicatedKV()
    empty = target.state_digest()
    steps = target.restore_steps(source.snapshot())
    taken = 0
    while True:
        try:
            next(steps)
        except StopIteration as done:
            pending: PendingRestore = done.value
            break
        taken += 1
        assert target.state_digest() == empty
    assert taken > 1 and target.state_digest() == empty
    pending.apply()
    assert target.state_digest() == source.state_digest()


def test_chunks_are_streamed_to_the_follower_that_reads() -> None:
    """Sanity of the scenario above: the lagging follower really was sent a snapshot."""
    mini = Mini(policy=POLICY)
    lagging = _lagging_follower(mini)
    mini.down.discard(lagging)
    mini.tick(40)
    assert any(isinstance(m, InstallSnapshot) and m.dst == lagging for m in mini.sent)
    assert mini.driver(lagging).snapshots.stats.installed_read == 1


def test_a_reading_the_log_has_overtaken_is_let_go_at_the_next_tick() -> None:
    """The follower caught up by the log meanwhile: the state read (as large as the
    store) is not kept for a snapshot that will never be installed."""
    mini = Mini(policy=POLICY)
    mini.write(10)
    leader = mini.leader()
    follower = next(d for d in mini.drivers.values() if d is not None and d is not leader)
    snapshot = _snapshot_of(leader)
    follower._snapshot_read(snapshot)
    reading = follower.start_reading()
    while not reading.slice():
        pass
    assert follower._reading is reading
    mini.tick()  # the follower learns the commit index, applies up to the snapshot's
    assert follower.core.applied >= snapshot.meta.last_included_index
    mini.tick()
    assert follower._reading is None and reading.pending is None


def test_a_tick_between_the_cores_install_and_its_ready_keeps_the_state_read() -> None:
    """The core is at the snapshot's index as soon as it installs it; a tick before the
    driver takes that Ready must not take the state read for one the log overtook."""
    mini = Mini(policy=POLICY)
    lagging = _lagging_follower(mini)
    d = mini.driver(lagging)
    _, reading = _back_and_reading(mini, lagging)
    while not reading.slice():
        pass
    last = next(
        m for m in reversed(mini.sent) if isinstance(m, InstallSnapshot) and m.dst == lagging
    )
    assert last.done
    d.step(last)  # the core installs now; its Ready is not taken yet
    assert d.core.applied == last.last_included_index > d.machine.last_applied
    d.tick()
    d.process_ready()
    assert d.snapshots.stats.installed == d.snapshots.stats.installed_read == 1
