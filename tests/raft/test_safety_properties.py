"""Raft's safety properties (Figure 3) under random interleavings, drops and partitions.

Hypothesis drives a 3- or 5-node ``Network`` through random ticks, deliveries in
any order, drops, duplicates, partitions, restarts, proposals and reads, and
after every step checks election safety, log matching, leader completeness,
state machine safety and a monotonic commit index.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resonetics import errors
from resonetics.raft.ready import Ready, Role
from resonetics.raft.types import Index, NodeId, Term
from tests.raft.harness import Network


@dataclass
class SafetyChecker:
    net: Network
    leader_of_term: dict[Term, NodeId] = field(default_factory=dict)
    #: index -> (hash, term of the node when it learned the entry was committed)
    committed: dict[Index, tuple[str, Term]] = field(default_factory=dict)
    commit_seen: dict[NodeId, Index] = field(default_factory=dict)

    def on_ready(self, node: NodeId, rd: Ready) -> None:
        term = self.net.nodes[node].term
        for e in rd.committed_entries:
            known = self.committed.get(e.index)
            # State machine safety: no two nodes apply different entries at one index.
            assert known is None or known[0] == e.hash, f"two entries applied at {e.index}"
            if known is None or term < known[1]:
                self.committed[e.index] = (e.hash, term)

    def check(self) -> None:
        nodes = list(self.net.nodes.values())
        for n in nodes:
            if n.role is Role.LEADER:
                # Election safety: at most one leader per term.
                assert self.leader_of_term.setdefault(n.term, n.node_id) == n.node_id
                # Leader completeness: a leader holds every entry committed in earlier terms.
                for index, (hash_, term) in self.committed.items():
                    if term <= n.term:
                        assert n.hash_at(index) == hash_, f"leader {n.node_id} lacks {index}"
            assert n.commit_index >= self.commit_seen.get(n.node_id, 0), "commit went back"
            self.commit_seen[n.node_id] = n.commit_index
        # Log matching: same term at an index => same history up to it (same hash).
        for a in nodes:
            for b in nodes:
                if a.node_id >= b.node_id:
                    continue
                for i in range(1, min(a.last_index, b.last_index) + 1):
                    if a.term_at(i) == b.term_at(i):
                        assert a.hash_at(i) == b.hash_at(i), f"logs diverge at {i}"


_DELIVER = st.tuples(st.just("deliver"), st.integers(0, 1000), st.integers(1, 30))
_TICK = st.tuples(st.just("tick"), st.integers(0, 4), st.integers(1, 6))
_PROPOSE = st.tuples(st.just("propose"), st.integers(0, 4), st.integers(0, 99))
# Repeated branches weight the mix toward progress; faults stay frequent enough to bite.
OPS = st.one_of(
    _DELIVER,
    _DELIVER,
    _DELIVER,
    _TICK,
    _TICK,
    _PROPOSE,
    _PROPOSE,
    st.tuples(st.just("drop"), st.integers(0, 1000), st.just(0)),
    st.tuples(st.just("dup"), st.integers(0, 1000), st.just(0)),
    st.tuples(st.just("read"), st.integers(0, 4), st.just(0)),
    st.tuples(st.just("partition"), st.integers(1, 30), st.just(0)),
    st.tuples(st.just("heal"), st.just(0), st.just(0)),
    st.tuples(st.just("restart"), st.integers(0, 4), st.just(0)),
)


def run_op(net: Network, op: tuple[str, int, int]) -> None:
    kind, a, b = op
    node = net.ids[a % len(net.ids)]
    if kind == "tick":
        net.tick(node, b)
    elif kind == "deliver" and net.queue:
        net.deliver_one(net.queue.pop(a % len(net.queue)))
        for _ in range(b - 1):
            if net.queue:
                net.deliver_one(net.queue.pop(0))
    elif kind == "drop" and net.queue:
        net.queue.pop(a % len(net.queue))
    elif kind == "dup" and net.queue:
        net.deliver_one(net.queue[a % len(net.queue)])  # delivered now and again later
    elif kind == "propose":
        with contextlib.suppress(errors.NotLeader, errors.ProposalDropped):
            net.propose(node, b)
    elif kind == "read":
        try:
            net.nodes[node].read_index(("r", a))
            net.process(node)
        except errors.NotLeader:
            pass
    elif kind == "partition":
        group = [i for k, i in enumerate(net.ids) if a >> k & 1]
        net.heal()
        net.partition(group, [i for i in net.ids if i not in group])
    elif kind == "heal":
        net.heal()
    elif kind == "restart":
        net.restart(node)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    seed=st.integers(0, 10_000),
    size=st.sampled_from([3, 5]),
    pre_vote=st.booleans(),
    check_quorum=st.booleans(),
    ops=st.lists(OPS, min_size=20, max_size=200),
)
def test_safety_holds_under_random_interleavings(
    seed: int, size: int, pre_vote: bool, check_quorum: bool, ops: list[tuple[str, int, int]]
) -> None:
    net = Network(
        [f"n{i}" for i in range(1, size + 1)],
        seed=seed,
        election_ticks=4,
        pre_vote=pre_vote,
        check_quorum=check_quorum,
        inflight_appends_max=4,
        append_entries_max=3,
    )
    checker = SafetyChecker(net)
    net.on_ready = checker.on_ready
    for op in ops:
        run_op(net, op)
        checker.check()
    # Liveness once the faults stop: one leader at the highest term, and a new
    # proposal commits on every node.
    net.heal()
    for _ in range(60):
        net.tick_and_deliver(1)
        checker.check()
    top = max(n.term for n in net.nodes.values())
    (leader,) = [n for n in net.leaders() if n.term == top]
    net.propose(leader.node_id, "final")
    net.tick_and_deliver(20)
    checker.check()
    assert all(n.commit_index == leader.last_index for n in net.nodes.values())
