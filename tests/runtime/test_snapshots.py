"""The driver's snapshot duties: policy, compaction, restart, install, crashes during install."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

import pytest

from resonetics.raft.config import RaftConfig
from resonetics.raft.entry import EntryType
from resonetics.raft.messages import InstallSnapshot, Message
from resonetics.raft.ready import Role
from resonetics.runtime.driver import NodeDriver
from resonetics.runtime.outcome import Outcome
from resonetics.runtime.snapshots import SnapshotPolicy, stagger_position, staggered
from resonetics.storage.fs import MemoryFileSystem, SimulatedCrash
from resonetics.storage.node_storage import FileNodeStorage
from resonetics.storage.verify import verify_node

#: Every node alike (no stagger), so that snapshot indexes are exact multiples.
POLICY = SnapshotPolicy(
    entries=20, trailing_entries=5, chunk_bytes=300, chunks_inflight_max=2, stagger=0.0
)


@dataclass
class Mini:
    """Drivers on crashable in-memory disks, delivering messages synchronously."""

    ids: tuple[str, ...] = ("n1", "n2", "n3")
    fss: dict[str, MemoryFileSystem] = field(default_factory=dict)
    drivers: dict[str, NodeDriver | None] = field(default_factory=dict)
    queue: list[Message] = field(default_factory=list)
    down: set[str] = field(default_factory=set)
    sent: list[Message] = field(default_factory=list)
    #: node -> file-system operation to crash at, armed by the first chunk it receives.
    crash_on_install: dict[str, int] = field(default_factory=dict)
    policy: SnapshotPolicy = POLICY

    def __post_init__(self) -> None:
        for i in self.ids:
            self.fss[i] = MemoryFileSystem()
            self.boot(i)

    # Host
    def now_ms(self) -> int:
        return 0

    def send(self, msg: Message) -> None:
        self.sent.append(msg)
        self.queue.append(msg)

    def flush(self) -> None:
        pass  # sends are queued in memory for the test to deliver

    def boot(self, node: str) -> NodeDriver:
        cfg = RaftConfig(node_id=node, initial_voters=self.ids)
        storage = FileNodeStorage(self.fss[node], f"/data/{node}")
        d = NodeDriver(cfg, storage, self, random.Random(node), snapshot_policy=self.policy)
        self.drivers[node] = d
        self.down.discard(node)
        return d

    def driver(self, node: str) -> NodeDriver:
        d = self.drivers[node]
        assert d is not None
        return d

    def run(self, node: str, msg: Message | None) -> None:
        """Feed one input and process the Ready; a simulated crash takes the node down."""
        d = self.drivers[node]
        if d is None:
            return
        if isinstance(msg, InstallSnapshot) and node in self.crash_on_install:
            fs = self.fss[node]
            fs.crash_at(fs.op_count + self.crash_on_install.pop(node))
        try:
            if msg is None:
                d.tick()
            else:
                d.step(msg)
            d.process_ready()
        except SimulatedCrash:
            self.drivers[node] = None
            self.down.add(node)

    def deliver(self, rounds: int = 200) -> None:
        for _ in range(rounds):
            if not self.queue:
                return
            batch, self.queue = self.queue, []
            for m in batch:
                if m.dst not in self.down and m.src not in self.down:
                    self.run(m.dst, m)

    def tick(self, times: int = 1) -> None:
        for _ in range(times):
            for i in self.ids:
                self.run(i, None)
            self.deliver()

    def leader(self) -> NodeDriver:
        for _ in range(100):
            for d in self.drivers.values():
                if d is not None and d.core.role is Role.LEADER:
                    return d
            self.tick()
        raise AssertionError("no leader")

    def write(self, count: int, tag: str = "k") -> None:
        for i in range(count):
            leader = self.leader()
            done: list[Outcome] = []
            leader.submit("c", f"{tag}{i}", "kv_set", {"k": f"{tag}{i % 7}", "v": i}, done.append)
            leader.process_ready()
            self.deliver()
            self.tick()


def state(d: NodeDriver) -> tuple[int, str, list[tuple[str, object]]]:
    kv = d.machine
    return kv.last_applied, kv.last_applied_hash, kv.machine.items()  # type: ignore[attr-defined]


def test_snapshot_is_taken_every_n_entries_and_the_log_compacted() -> None:
    mini = Mini()
    mini.write(70)
    leader = mini.leader()
    stats = leader.snapshots.stats
    assert stats.taken >= 3
    assert stats.last_index >= 60
    # The trailing entries are kept behind the snapshot, in memory and in the log file
    # (which drops older lines only once that pays for copying the kept ones).
    assert leader.core.anchor.index == stats.last_index - POLICY.trailing_entries
    report = verify_node(mini.fss[leader.config.node_id], f"/data/{leader.config.node_id}")
    assert report.ok, report.problems
    assert report.anchor is not None and report.anchor.type is EntryType.SNAP_DUMMY
    assert 0 < report.anchor.index <= stats.last_index - POLICY.trailing_entries


def test_nodes_of_a_cluster_take_their_snapshots_at_different_indexes() -> None:
    """Same log, same rule: unstaggered, every node snapshots at the same index (at a
    large state, all of them busy at once starved the leader); staggered by their
    place among the voters, each at its own: n1 every 20 entries, n2 every 23, n3 27."""
    alike = Mini()
    alike.write(70)
    assert len({alike.driver(i).snapshots.stats.last_index for i in alike.ids}) == 1
    apart = Mini(policy=replace(POLICY, stagger=SnapshotPolicy().stagger))
    apart.write(70)
    taken = {i: apart.driver(i).snapshots.stats.last_index for i in apart.ids}
    assert len(set(taken.values())) == 3, taken
    assert all(
        index % every == 0 for index, every in zip(taken.values(), (20, 23, 27), strict=True)
    )


def test_stagger_scales_every_threshold_by_the_place_among_the_voters() -> None:
    assert [stagger_position(n, ["n3", "n1", "n2"]) for n in ("n1", "n2", "n3")] == [
        0,
        1 / 3,
        2 / 3,
    ]
    assert stagger_position("learner", ["n1", "n2"]) == 0
    policy = SnapshotPolicy(entries=300, log_bytes=600, log_ratio=1.5, log_bytes_floor=900)
    assert staggered(policy, 0) is policy
    far = staggered(policy, 2 / 3)  # the default stagger of 0.5: 4/3 of each threshold
    assert (far.entries, far.log_bytes, far.log_bytes_floor) == (400, 800, 1200)
    assert far.log_ratio == pytest.approx(2.0)
    with pytest.raises(ValueError, match=">= 0"):
        SnapshotPolicy(stagger=-0.1)


def test_restart_restores_the_state_from_snapshot_and_log_tail() -> None:
    mini = Mini()
    mini.write(50)
    before = {i: state(mini.driver(i)) for i in mini.ids}
    for i in mini.ids:
        mini.driver(i).close()
        d = mini.boot(i)
        snap = d.snapshots.stats.last_index
        assert snap > 0
        # The log kept the trailing entries behind the snapshot through the restart, and
        # the state is the snapshot's: what is replayed is only what follows it.
        assert d.core.anchor.index <= snap - POLICY.trailing_entries
        assert d.core.applied == d.machine.last_applied == snap
    mini.tick(30)
    after = {i: state(mini.driver(i)) for i in mini.ids}
    for i in mini.ids:
        assert after[i][0] >= before[i][0]
    assert len({repr(s) for s in after.values()}) == 1


def test_a_follower_within_the_retained_entries_catches_up_by_log_after_the_leader_restarts() -> (
    None
):
    """The entries kept behind a snapshot are in the log file too: a leader that restarted
    still sends a follower that lags by fewer the entries themselves, not the snapshot."""
    mini = Mini()
    writes = iter(range(1_000))
    while mini.leader().core.last_index < 17:
        mini.write(1, tag=f"w{next(writes)}-")
    lagging = next(i for i in mini.ids if i != mini.leader().config.node_id)
    mini.down.add(lagging)
    up = [i for i in mini.ids if i != lagging]
    while not all(mini.driver(i).snapshots.stats.taken for i in up):
        mini.write(1, tag=f"w{next(writes)}-")
    for i in up:  # restart every node that is up: the cluster recovers from its files
        mini.driver(i).close()
        restarted = mini.boot(i)
        assert restarted.core.anchor.index <= 17 < restarted.snapshots.stats.last_index
    mini.sent.clear()
    mini.down.discard(lagging)
    mini.write(2, tag="after")
    mini.tick(20)
    assert not any(isinstance(m, InstallSnapshot) and m.dst == lagging for m in mini.sent)
    assert mini.driver(lagging).snapshots.stats.installed == 0
    assert len({repr(state(mini.driver(i))) for i in mini.ids}) == 1


def test_follower_behind_the_compacted_log_installs_a_snapshot() -> None:
    mini = Mini()
    mini.write(5)
    lagging = next(i for i in mini.ids if mini.driver(i).core.role is not Role.LEADER)
    mini.down.add(lagging)
    mini.write(60)
    mini.down.discard(lagging)
    mini.tick(40)
    d = mini.driver(lagging)
    assert d.snapshots.stats.installed >= 1
    assert any(isinstance(m, InstallSnapshot) and m.dst == lagging for m in mini.sent)
    assert len({repr(state(mini.driver(i))) for i in mini.ids}) == 1
    assert verify_node(mini.fss[lagging], f"/data/{lagging}").ok


def test_a_snapshot_taken_here_is_streamed_with_the_checksum_made_with_its_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The stream's checksum (SHA-256 of the whole state) is made when the snapshot's
    file is written, on the snapshot thread, not on the leader's loop when a first
    follower needs the snapshot: about 90 ms of a stopped loop at 160 MB."""
    from resonetics.raft import snapshot as snapshot_module

    mini = Mini()
    mini.write(5)
    lagging = next(i for i in mini.ids if mini.driver(i).core.role is not Role.LEADER)
    mini.down.add(lagging)
    mini.write(60)  # the leader takes its snapshots here, each with its checksum

    def on_the_loop(snapshot: object) -> str:
        raise AssertionError("a stream hashed the state on the leader's loop")

    monkeypatch.setattr(snapshot_module, "stream_checksum", on_the_loop)
    mini.down.discard(lagging)
    mini.tick(40)
    assert mini.driver(lagging).snapshots.stats.installed >= 1
    assert len({repr(state(mini.driver(i))) for i in mini.ids}) == 1


@pytest.mark.parametrize("crash_op", range(9))
def test_crash_during_install_leaves_old_or_new_state(crash_op: int) -> None:
    mini = Mini()
    mini.write(5)
    lagging = next(i for i in mini.ids if mini.driver(i).core.role is not Role.LEADER)
    old = state(mini.driver(lagging))
    mini.down.add(lagging)
    mini.write(60)
    mini.down.discard(lagging)
    mini.crash_on_install[lagging] = crash_op
    for _ in range(40):
        mini.tick()
        if mini.drivers[lagging] is None:
            break
    assert mini.drivers[lagging] is None, "the crash did not happen during the install"
    fs = mini.fss[lagging]
    fs.crash_at(None)
    fs.crash(random.Random(crash_op))
    report = verify_node(fs, f"/data/{lagging}")
    assert report.ok, report.problems
    d = mini.boot(lagging)
    # The old state, or the whole new snapshot: never a mix.
    assert d.machine.last_applied in (old[0], d.snapshots.stats.last_index)
    if d.snapshots.stats.last_index > 0:
        assert d.machine.last_applied_hash == d.core.anchor.hash
    mini.tick(60)
    assert len({repr(state(mini.driver(i))) for i in mini.ids}) == 1
    assert verify_node(mini.fss[lagging], f"/data/{lagging}").ok
