"""Membership changes by joint consensus, learners (Raft §6, dissertation ch. 4)."""

from __future__ import annotations

import pytest

from resonetics import errors
from resonetics.raft.config import RaftConfig
from resonetics.raft.entry import EntryType
from resonetics.raft.membership import Membership
from resonetics.raft.membership_change import ChangeKind, ConfigChange
from resonetics.raft.messages import (
    AppendEntries,
    AppendEntriesResp,
    Message,
    PreVote,
    RequestVote,
)
from resonetics.raft.ready import Ready, Role
from resonetics.raft.types import NodeId
from tests.raft.harness import Disk, Network


class GrowingNetwork(Network):
    """A ``Network`` that can start extra nodes with no voters (``serve --join``)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.joiners: set[NodeId] = set()
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def config(self, node: NodeId) -> RaftConfig:
        base = super().config(node)
        if node in self.joiners:
            base = RaftConfig(node_id=node, initial_voters=(), **self.config_kwargs)
        else:
            founders = tuple(i for i in self.ids if i not in self.joiners)
            base = RaftConfig(node_id=node, initial_voters=founders, **self.config_kwargs)
        return base

    def join(self, node: NodeId) -> None:
        self.joiners.add(node)
        self.ids.append(node)
        self.disks[node] = Disk()
        self.reads[node] = []
        self.dropped_reads[node] = []
        self.nodes[node] = self._boot(node)


def change(kind: ChangeKind, node: NodeId, address: str | None = None) -> ConfigChange:
    return ConfigChange(kind, node, address)


def settle(net: Network, ticks: int = 3) -> None:
    net.deliver()
    net.tick_and_deliver(ticks)


def test_add_learner_is_a_single_entry_and_learner_gets_the_log() -> None:
    net = GrowingNetwork(seed=1)
    net.elect("n1")
    net.propose("n1", "before")
    net.join("n4")
    net.nodes["n1"].propose_config_change(change(ChangeKind.ADD_LEARNER, "n4", "h:4"))
    settle(net)
    m = net.nodes["n4"].membership
    assert m.learners == ("n4",) and not m.joint and m.addresses == {"n4": "h:4"}
    assert "before" in net.applied_data("n4")
    assert net.nodes["n4"].role is Role.LEARNER


def test_learner_never_votes_or_counts() -> None:
    net = GrowingNetwork(seed=1)
    net.elect("n1")
    net.join("n4")
    net.nodes["n1"].propose_config_change(change(ChangeKind.ADD_LEARNER, "n4", "h:4"))
    settle(net)
    # Learner does not campaign, however long it waits.
    net.sent.clear()
    net.isolate("n4")
    net.tick("n4", times=100)
    assert not [m for m in net.sent if m.src == "n4" and isinstance(m, PreVote | RequestVote)]
    assert net.nodes["n4"].role is Role.LEARNER
    net.heal()
    # Learner's ack does not count: with n2, n3 cut, nothing commits.
    net.partition(["n1", "n4"], ["n2", "n3"])
    commit = net.nodes["n1"].commit_index
    net.propose("n1", "x")
    net.deliver()
    assert net.nodes["n4"].last_index > commit
    assert net.nodes["n1"].commit_index == commit
    # Nor is a learner asked for a vote.
    net.sent.clear()
    net.nodes["n2"].campaign()
    net.deliver()
    assert not [m for m in net.sent if m.dst == "n4" and isinstance(m, PreVote | RequestVote)]


def test_add_voter_enters_joint_then_leaves_after_learner_catches_up() -> None:
    net = GrowingNetwork(seed=1)
    net.elect("n1")
    for i in range(5):
        net.propose("n1", i)
    net.deliver()
    net.join("n4")
    net.nodes["n1"].propose_config_change(change(ChangeKind.ADD_VOTER, "n4", "h:4"))
    settle(net, 5)
    configs = [e.data for e in net.disks["n1"].entries if e.type is EntryType.CONFIG]
    kinds = [Membership.from_data(c) for c in configs]
    assert kinds[0].learners == ("n4",) and kinds[0].promote_when_caught_up == ("n4",)
    assert kinds[1].joint and kinds[1].voters == ("n1", "n2", "n3", "n4")
    assert kinds[1].voters_outgoing == ("n1", "n2", "n3")
    assert not kinds[2].joint and kinds[2].voters == ("n1", "n2", "n3", "n4")
    assert kinds[2].promote_when_caught_up == ()
    for n in net.nodes.values():
        assert n.membership == kinds[2]
        assert n.commit_index == net.nodes["n1"].last_index


def test_joint_config_requires_both_majorities_to_commit() -> None:
    # Promote n4: C_old = {n1,n2,n3}, C_new = {n1,n2,n3,n4}: joint needs 2 of old AND 3 of new.
    net = GrowingNetwork(("n1", "n2", "n3"), seed=2)
    net.elect("n1")
    net.join("n4")
    net.join("n5")
    for n in ("n4", "n5"):
        net.nodes["n1"].propose_config_change(change(ChangeKind.ADD_LEARNER, n, f"h:{n}"))
        settle(net)
    net.nodes["n1"].propose_config_change(change(ChangeKind.PROMOTE, "n4"))
    net.process("n1")
    assert net.nodes["n1"].membership.joint
    # Old majority only (n1, n2): the joint entry cannot commit, new quorum {n1..n4} lacks n4.
    net.partition(["n1", "n2"], ["n3", "n4", "n5"])
    commit = net.nodes["n1"].commit_index
    net.deliver()
    assert net.nodes["n1"].commit_index == commit
    # n1, n4 (and learner n5): a majority of neither half.
    net.heal()
    net.partition(["n1", "n4", "n5"], ["n2", "n3"])
    net.tick_and_deliver(2)
    assert net.nodes["n1"].commit_index == commit
    # Both: n1, n2 (old) and n1, n2, n4 (new).
    net.heal()
    net.partition(["n1", "n2", "n4"], ["n3", "n5"])
    net.tick_and_deliver(6)  # n4's stalled pipeline is probed again first
    assert net.nodes["n1"].commit_index > commit
    assert net.nodes["n1"].membership.voters == ("n1", "n2", "n3", "n4")


def test_leader_not_in_new_config_steps_down_after_commit() -> None:
    net = Network(seed=1)
    net.elect("n1")
    net.nodes["n1"].propose_config_change(change(ChangeKind.REMOVE, "n1"))
    net.deliver()
    # It led through C_old,new and appended C_new, then stepped down once C_new committed.
    configs = [e for e in net.disks["n1"].entries if e.type is EntryType.CONFIG]
    assert len(configs) == 2
    assert net.nodes["n1"].commit_index >= configs[-1].index
    assert net.nodes["n1"].role is Role.FOLLOWER
    assert net.nodes["n1"].membership.voters == ("n2", "n3")
    # The remaining two elect a leader; n1 never campaigns again.
    net.sent.clear()
    net.tick_and_deliver(40)
    assert [n.node_id for n in net.leaders()] in (["n2"], ["n3"])
    assert not [m for m in net.sent if m.src == "n1" and isinstance(m, PreVote | RequestVote)]


def test_only_one_config_change_at_a_time() -> None:
    net = GrowingNetwork(seed=1)
    net.elect("n1")
    net.join("n4")
    net.isolate("n2")
    net.isolate("n3")
    net.nodes["n1"].propose_config_change(change(ChangeKind.ADD_LEARNER, "n4", "h:4"))
    with pytest.raises(errors.ConfigChangeRejected, match="in progress"):
        net.nodes["n1"].propose_config_change(change(ChangeKind.REMOVE, "n3"))


def test_no_new_change_while_joint() -> None:
    net = Network(seed=1)
    net.elect("n1")
    net.drop = lambda m: m.dst == "n1"  # acks lost: the joint entry stays uncommitted
    net.nodes["n1"].propose_config_change(change(ChangeKind.REMOVE, "n3"))
    net.deliver()
    assert net.nodes["n1"].membership.joint
    with pytest.raises(errors.ConfigChangeRejected):
        net.nodes["n1"].propose_config_change(change(ChangeKind.REMOVE, "n2"))


@pytest.mark.parametrize(
    ("req", "reason"),
    [
        (ConfigChange(ChangeKind.ADD_LEARNER, "n2", "h:2"), "already a member"),
        (ConfigChange(ChangeKind.ADD_VOTER, "n9"), "needs its address"),
        (ConfigChange(ChangeKind.PROMOTE, "n2"), "already a voter"),
        (ConfigChange(ChangeKind.PROMOTE, "n9"), "not a member"),
        (ConfigChange(ChangeKind.REMOVE, "n9"), "not a member"),
    ],
)
def test_invalid_change_is_rejected_with_a_reason(req: ConfigChange, reason: str) -> None:
    net = Network(seed=1)
    net.elect("n1")
    last = net.nodes["n1"].last_index
    with pytest.raises(errors.ConfigChangeRejected, match=reason):
        net.nodes["n1"].propose_config_change(req)
    assert net.nodes["n1"].last_index == last


def test_removing_the_last_voter_is_rejected() -> None:
    net = Network(("n1",), seed=1)
    net.elect("n1")
    with pytest.raises(errors.ConfigChangeRejected, match="last voter"):
        net.nodes["n1"].propose_config_change(change(ChangeKind.REMOVE, "n1"))


def test_follower_cannot_propose_a_change() -> None:
    net = Network(seed=1)
    net.elect("n1")
    with pytest.raises(errors.NotLeader):
        net.nodes["n2"].propose_config_change(change(ChangeKind.REMOVE, "n3"))


def test_uncommitted_config_entry_truncated_reverts_membership() -> None:
    net = Network(seed=1)
    net.elect("n1")
    net.isolate("n1")
    net.nodes["n1"].propose_config_change(change(ChangeKind.REMOVE, "n3"))
    net.process("n1")
    assert net.nodes["n1"].membership.joint
    net.queue.clear()
    # n2 becomes leader of a new term and writes a different entry (its NOOP) at that index.
    net.partition(["n1"], ["n2", "n3"])
    net.expire_leases()
    net.nodes["n2"].campaign()
    net.deliver()
    assert net.nodes["n2"].role is Role.LEADER
    net.heal()
    net.tick_and_deliver(5)
    assert net.nodes["n1"].membership == Membership(voters=("n1", "n2", "n3"))
    assert not any(e.type is EntryType.CONFIG for e in net.disks["n1"].entries)


def test_restart_recovers_membership_from_the_log() -> None:
    net = GrowingNetwork(seed=1)
    net.elect("n1")
    net.join("n4")
    net.nodes["n1"].propose_config_change(change(ChangeKind.ADD_VOTER, "n4", "h:4"))
    settle(net, 5)
    before = net.nodes["n4"].membership
    assert before.is_voter("n4")
    net.restart("n4")
    assert net.nodes["n4"].membership == before
    assert net.nodes["n4"].membership.addresses == {"n4": "h:4"}


def test_new_leader_finishes_a_joint_change() -> None:
    net = Network(seed=1)
    net.elect("n1")

    def carries_c_new(m: Message) -> bool:
        entries = m.entries if isinstance(m, AppendEntries) else []
        return any(
            e.type is EntryType.CONFIG and not Membership.from_data(e.data).joint for e in entries
        )

    # The leader removes itself; the joint entry reaches n2 and n3, C_new never leaves n1.
    net.drop = carries_c_new
    net.nodes["n1"].propose_config_change(change(ChangeKind.REMOVE, "n1"))
    net.deliver()
    assert net.nodes["n2"].membership.joint
    net.isolate("n1")
    net.drop = lambda m: False
    net.expire_leases()
    net.nodes["n2"].campaign()
    net.deliver()
    assert net.nodes["n2"].role is Role.LEADER
    net.tick_and_deliver(3)
    assert net.nodes["n2"].membership == Membership(voters=("n2", "n3"))
    assert net.nodes["n2"].commit_index == net.nodes["n2"].last_index


def test_promote_learner_by_hand_and_transfer_to_it() -> None:
    net = GrowingNetwork(seed=1)
    net.elect("n1")
    net.join("n4")
    net.nodes["n1"].propose_config_change(change(ChangeKind.ADD_LEARNER, "n4", "h:4"))
    settle(net)
    with pytest.raises(errors.ConfigChangeRejected):
        net.nodes["n1"].transfer_leadership("n4")
    net.nodes["n1"].propose_config_change(change(ChangeKind.PROMOTE, "n4"))
    settle(net)
    assert net.nodes["n4"].membership.voters == ("n1", "n2", "n3", "n4")
    net.nodes["n1"].transfer_leadership("n4")
    net.deliver()
    assert net.nodes["n4"].role is Role.LEADER


def test_replace_a_dead_node() -> None:
    net = GrowingNetwork(seed=3)
    net.elect("n1")
    net.down.add("n3")
    net.nodes["n1"].propose_config_change(change(ChangeKind.REMOVE, "n3"))
    settle(net)
    assert net.nodes["n1"].membership.voters == ("n1", "n2")
    net.join("n4")
    net.nodes["n1"].propose_config_change(change(ChangeKind.ADD_VOTER, "n4", "h:4"))
    settle(net, 5)
    assert net.nodes["n4"].membership.voters == ("n1", "n2", "n4")
    # n2 can now fail: n1 and n4 are a majority of {n1, n2, n4}.
    net.down.add("n2")
    net.propose("n1", "after")
    net.deliver()
    assert "after" in net.applied_data("n1")  # committed by n1 and n4
    net.tick_and_deliver(2)  # n4 learns the commit index from the heartbeat it is owed
    assert "after" in net.applied_data("n4")


def test_learner_is_promoted_only_once_caught_up() -> None:
    net = GrowingNetwork(seed=1, promote_lag_entries_max=2)
    net.elect("n1")
    for i in range(10):
        net.propose("n1", i)
    net.deliver()
    net.join("n4")
    net.down.add("n4")  # n4 is slow to start: it cannot catch up yet
    net.nodes["n1"].propose_config_change(change(ChangeKind.ADD_VOTER, "n4", "h:4"))
    settle(net, 5)
    m = net.nodes["n1"].membership
    assert m.learners == ("n4",) and m.promote_when_caught_up == ("n4",)
    net.down.discard("n4")
    settle(net, 8)
    assert net.nodes["n1"].membership.voters == ("n1", "n2", "n3", "n4")
    assert not net.nodes["n1"].membership.joint


def test_node_that_never_answered_is_not_promoted_on_a_young_cluster() -> None:
    """A mistyped, dead address once became a voter at once: with a log shorter than the
    promotion lag, a learner at match index 0 counted as caught up."""
    net = GrowingNetwork(seed=1)
    net.elect("n1")
    assert net.nodes["n1"].last_index < net.nodes["n1"]._cfg.promote_lag_entries_max
    net.join("n4")
    net.down.add("n4")  # nobody at that address: it never answers
    net.nodes["n1"].propose_config_change(change(ChangeKind.ADD_VOTER, "n4", "h:4"))
    settle(net, 10)
    m = net.nodes["n1"].membership
    assert m.learners == ("n4",) and m.voters == ("n1", "n2", "n3")
    net.down.discard("n4")  # once it answers, it is promoted
    settle(net, 10)
    assert net.nodes["n1"].membership.voters == ("n1", "n2", "n3", "n4")


def test_add_learner_is_never_promoted_by_itself() -> None:
    net = GrowingNetwork(seed=1)
    net.elect("n1")
    net.join("n4")
    net.nodes["n1"].propose_config_change(change(ChangeKind.ADD_LEARNER, "n4", "h:4"))
    settle(net, 10)
    assert net.nodes["n1"].membership.learners == ("n4",)
    assert net.nodes["n1"].membership.voters == ("n1", "n2", "n3")


def test_remove_a_learner_is_a_single_entry() -> None:
    net = GrowingNetwork(seed=1)
    net.elect("n1")
    net.join("n4")
    net.nodes["n1"].propose_config_change(change(ChangeKind.ADD_LEARNER, "n4", "h:4"))
    settle(net)
    last = net.nodes["n1"].last_index
    net.nodes["n1"].propose_config_change(change(ChangeKind.REMOVE, "n4"))
    settle(net)
    m = net.nodes["n1"].membership
    assert m.learners == () and "n4" not in m.addresses
    configs = [e for e in net.disks["n1"].entries if e.type is EntryType.CONFIG]
    assert [e.index for e in configs if e.index > last] == [last + 1]
    assert net.nodes["n1"].progress_of("n4") is None


def test_transfer_blocks_config_change_and_change_blocks_nothing_else() -> None:
    net = Network(seed=1)
    net.elect("n1")
    net.isolate("n2")
    net.nodes["n1"].transfer_leadership("n2")
    with pytest.raises(errors.ConfigChangeInProgress, match="transfer"):
        net.nodes["n1"].propose_config_change(change(ChangeKind.REMOVE, "n3"))


def test_new_leader_refuses_a_change_until_its_first_entry_commits() -> None:
    net = Network(seed=1)
    net.nodes["n1"].campaign()
    net.drop = lambda m: isinstance(m, AppendEntries)  # its NOOP cannot commit
    net.deliver()
    assert net.nodes["n1"].role is Role.LEADER
    with pytest.raises(errors.ConfigChangeInProgress, match="first entry"):
        net.nodes["n1"].propose_config_change(change(ChangeKind.REMOVE, "n3"))


def test_membership_data_without_new_fields_is_unchanged() -> None:
    # CONFIG entries written before addresses existed hash and decode as before.
    m = Membership(voters=("n1", "n2"))
    assert m.to_data() == {"voters": ["n1", "n2"], "learners": [], "voters_outgoing": []}
    assert Membership.from_data(m.to_data()) == m
    full = Membership(voters=("n1",), addresses={"n1": "h:1"}, promote_when_caught_up=())
    assert Membership.from_data(full.to_data()) == full


def test_a_second_node_on_a_members_address_is_refused() -> None:
    """Two ids at one address: whichever answers there, one of them is a voter that is
    not what the configuration says."""
    net = GrowingNetwork(seed=1)
    net.elect("n1")
    net.join("n4")
    net.nodes["n1"].propose_config_change(change(ChangeKind.ADD_LEARNER, "n4", "h:4"))
    settle(net)
    with pytest.raises(errors.ConfigChangeRejected, match="already the address of member n4"):
        net.nodes["n1"].propose_config_change(change(ChangeKind.ADD_LEARNER, "n5", "h:4"))


def test_learner_that_never_answers_is_never_promoted() -> None:
    """A node added at a dead address never acks: neither the leader's own promotion nor an
    operator's ``member promote`` may make it a voter, however long the cluster runs, and the
    cluster keeps committing with its three voters."""
    net = GrowingNetwork(seed=2)
    net.elect("n1")
    net.join("n4")
    net.down.add("n4")
    net.nodes["n1"].propose_config_change(change(ChangeKind.ADD_VOTER, "n4", "127.0.0.1:9"))
    for round_ in range(5):
        settle(net, 10)
        net.propose("n1", f"w{round_}")
        net.deliver()
        assert net.nodes["n1"].membership.voters == ("n1", "n2", "n3")
    with pytest.raises(errors.LearnerNotCaughtUp) as refused:
        net.nodes["n1"].propose_config_change(change(ChangeKind.PROMOTE, "n4"))
    assert refused.value.acked_index == 0 and refused.value.required_index >= 1
    assert "n4 at 127.0.0.1:9 has not answered since it was added" in str(refused.value)
    assert "it stays a learner" in str(refused.value)
    net.tick_and_deliver(2)  # followers learn the commit index within a period and a tick
    assert "w4" in net.applied_data("n1") and "w4" in net.applied_data("n2")


def test_learner_promoted_only_after_acking_commit_index_at_add() -> None:
    """Within the lag bound is not enough: the learner must have acknowledged the commit
    index the leader had when it was added (recorded in the CONFIG entry)."""
    net = GrowingNetwork(seed=4, append_entries_max=2, promote_lag_entries_max=1000)
    net.elect("n1")
    for i in range(12):
        net.propose("n1", i)
    net.deliver()
    commit_at_add = net.nodes["n1"].commit_index
    net.join("n4")
    held_back = 5
    net.drop = lambda m: (
        m.src == "n4" and isinstance(m, AppendEntriesResp) and m.match_index > held_back
    )
    net.nodes["n1"].propose_config_change(change(ChangeKind.ADD_VOTER, "n4", "h:4"))
    settle(net, 10)
    m = net.nodes["n1"].membership
    assert m.catch_up_index == {"n4": commit_at_add}
    pr = net.nodes["n1"].progress_of("n4")
    assert pr is not None and 0 < pr.match_index <= held_back < commit_at_add
    assert m.learners == ("n4",), "promoted before acking the commit index at add"
    with pytest.raises(errors.LearnerNotCaughtUp):
        net.nodes["n1"].propose_config_change(change(ChangeKind.PROMOTE, "n4"))
    net.drop = lambda m: False
    settle(net, 10)
    m = net.nodes["n1"].membership
    assert m.voters == ("n1", "n2", "n3", "n4") and not m.joint
    assert "n4" not in m.catch_up_index


def test_member_add_refuses_duplicate_address() -> None:
    """docs/membership.md: duplicate adds are refused; a second id on a member's peer or
    client address was once accepted on a cluster whose CONFIG entries held no addresses."""
    net = GrowingNetwork(seed=1)
    net.elect("n1")
    leader = net.nodes["n1"]
    assert leader.membership.addresses == {}  # a young cluster: no addresses in the log
    known = {"n1": "h:1", "n2": "h:2", "n3": "h:3"}
    with pytest.raises(errors.ConfigChangeRejected, match="already the address of member n2"):
        leader.propose_config_change(ConfigChange(ChangeKind.ADD_VOTER, "n4", "h:2", known))
    with pytest.raises(errors.ConfigChangeRejected, match="n3 is already a member"):
        leader.propose_config_change(ConfigChange(ChangeKind.ADD_VOTER, "n3", "h:9", known))
    net.join("n4")
    leader.propose_config_change(
        ConfigChange(ChangeKind.ADD_LEARNER, "n4", "h:4", known, client_address="c:4")
    )
    settle(net)
    with pytest.raises(
        errors.ConfigChangeRejected, match="c:4 is already the client address of member n4"
    ):
        leader.propose_config_change(
            ConfigChange(ChangeKind.ADD_LEARNER, "n5", "h:5", client_address="c:4")
        )
    assert leader.membership.members() == {"n1", "n2", "n3", "n4"}


class CrossCheckedNetwork(GrowingNetwork):
    """Whenever a node says ``has_ready()`` is False, take its Ready anyway and check
    that it would have handed out nothing: the cheap answer (attribute tests, the
    learner flag kept with the membership) must never hide work."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.soft: dict[NodeId, object] = {}
        self.quiet_checks = 0

    def process(self, node: NodeId) -> Ready | None:
        n = self.nodes[node]
        if n.has_ready():
            rd = super().process(node)
            assert rd is not None
            self.soft[node] = rd.soft_state
            return rd
        rd = n.ready()
        assert not rd.must_persist(), rd
        assert (rd.messages, rd.committed_entries, rd.read_states, rd.dropped_reads) == (
            [],
            [],
            [],
            [],
        ), rd
        assert rd.soft_state == self.soft.get(node), (rd.soft_state, self.soft.get(node))
        assert rd.soft_state.role is n.role
        self.quiet_checks += 1
        return None


def test_has_ready_is_false_only_when_ready_would_hand_out_nothing() -> None:
    net = CrossCheckedNetwork(seed=3)
    net.elect("n1")
    for i in range(3):
        net.propose("n1", i)
    settle(net)
    net.join("n4")  # a learner first (its role flips with the membership alone) ...
    net.nodes["n1"].propose_config_change(change(ChangeKind.ADD_LEARNER, "n4", "h:4"))
    settle(net)
    assert net.nodes["n4"].role is Role.LEARNER
    net.nodes["n1"].propose_config_change(change(ChangeKind.PROMOTE, "n4"))
    settle(net, 8)  # ... then a voter: FOLLOWER with no other change of state
    assert net.nodes["n4"].role is Role.FOLLOWER
    net.nodes["n1"].transfer_leadership("n2")
    settle(net, 5)
    net.partition(["n1", "n3"], ["n2", "n4"])
    net.tick_and_deliver(30)
    net.heal()
    net.tick_and_deliver(30)
    leader = net.leaders()[0].node_id
    net.nodes[leader].read_index("ctx")
    net.propose(leader, "after")
    settle(net)
    assert net.quiet_checks > 100


def test_reads_waiting_when_the_leader_becomes_the_only_voter_are_confirmed() -> None:
    """Reads registered while a joint C_old,new still needed another voter's echo are
    confirmed when C_new = {leader} is appended: a leader alone gets no acks, so
    nothing else would ever confirm them (``read_index`` asks only for a read alone
    in the queue)."""
    net = GrowingNetwork(seed=1)
    net.elect("n1")
    net.nodes["n1"].propose_config_change(change(ChangeKind.REMOVE, "n3"))
    settle(net)
    leader = net.nodes["n1"]
    assert leader.membership.voters == ("n1", "n2")
    joint_index = leader.propose_config_change(change(ChangeKind.REMOVE, "n2"))
    net.process("n1")
    reads_registered = False
    for _ in range(100):
        if not net.queue:
            break
        msg = net.queue.pop(0)
        commits_joint = (
            isinstance(msg, AppendEntriesResp)
            and msg.dst == "n1"
            and msg.match_index >= joint_index
            and not reads_registered
        )
        net.nodes[msg.dst].step(msg)
        if commits_joint:
            leader.read_index("r1")
            leader.read_index("r2")
            reads_registered = True
        net.process(msg.dst)
    assert reads_registered and leader.membership.voters == ("n1",)
    assert [r.ctx for r in net.reads["n1"]] == ["r1", "r2"]
