"""Targeted fault scenarios: a seeded adversary that steers a run toward one known trap.

Theory of operation
-------------------
The fault schedule (``faults.py``) draws faults blindly, which finds most
bugs but reaches some classic traps too rarely to be useful. A scenario is a
small state machine over the cluster that arranges the preconditions of one
trap on purpose, with every delay drawn from its own seeded ``Random`` (same
seed, same run) and every move an ordinary fault (partition, power cut,
restart). It never looks at the code under test beyond who leads, so a
correct implementation goes through it untouched; a run with a scenario is
checked by the same monitor and final checks as any other.

``figure8`` (Raft paper, Figure 8; dissertation §3.6.2): a leader A of term t
is cut off right after it took client writes (they reach its log only); A
loses power; a new leader B of a later term takes client writes cut off the
same way and loses power too; A comes back and is elected by the remaining
node C, which then copies A's old-term entries. If A now counted replicas to
commit them (instead of committing only entries of its own term), they would
be "committed" on A and C with B able to win C's vote: A is cut off again and
B restarts. B leading without those entries is a leader-completeness
violation. The whole round repeats while the faulty phase lasts.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from resonetics.sim.cluster import Cluster, SimNode
from resonetics.sim.options import SCENARIOS

#: Virtual milliseconds: when the first round starts, how long a cut-off leader keeps
#: taking writes before it loses power, how often the scenario looks for a leader, and
#: how long a re-elected leader has to copy old entries before it is cut off again.
START_MS = (300, 700)
CUT_OFF_MS = (40, 250)
POLL_MS = 10
COPY_MS = (1, 30)
#: How long to wait for a leader before a round gives up (and the next one starts).
WAIT_LEADER_MS = 1_500


class Figure8:
    """The Figure 8 round, repeated until the faulty phase ends (module docstring)."""

    def __init__(self, cluster: Cluster, rng: random.Random) -> None:
        self.cluster = cluster
        self.rng = rng
        self.rounds = 0

    def install(self) -> None:
        self.cluster.queue.after(self.rng.randint(*START_MS), self._round)

    # --- helpers ---------------------------------------------------------------------------
    def _quiet(self) -> bool:
        return self.cluster.queue.now_ms >= self.cluster.options.fault_ms

    def _later(self, span: tuple[int, int], then: Callable[[], None]) -> None:
        self.cluster.queue.after(self.rng.randint(*span), lambda: None if self._quiet() else then())

    def _note(self, *details: str) -> None:
        self.cluster.trace.add(self.cluster.queue.now_ms, "figure8", *details)

    def _isolate(self, node: SimNode) -> None:
        net = self.cluster.network
        for other in self.cluster.ids:
            if other != node.node_id:
                net.block(node.node_id, other)
                net.block(other, node.node_id)

    def _rejoin(self, node: SimNode) -> None:
        net = self.cluster.network
        net.blocked = {(a, b) for a, b in net.blocked if node.node_id not in (a, b)}

    def _when_leader(
        self, exclude: set[str], then: Callable[[SimNode], None], waited: int = 0
    ) -> None:
        """Call ``then`` with the first live leader not in ``exclude``; give up after a while."""
        if self._quiet():
            return
        leader = self.cluster.leader()
        if leader is not None and leader.node_id not in exclude:
            then(leader)
        elif waited >= WAIT_LEADER_MS:
            self._note("no leader: round abandoned")
            self._restart_all()
            self._later(START_MS, self._round)
        else:
            self.cluster.queue.after(
                POLL_MS, lambda: self._when_leader(exclude, then, waited + POLL_MS)
            )

    def _restart_all(self) -> None:
        for node in self.cluster.nodes.values():
            self._rejoin(node)
            self._start(node)

    def _start(self, node: SimNode) -> None:
        """Power ``node`` on unless it already is: the random faults running beside the
        scenario restart crashed nodes too, possibly before the scenario's own turn."""
        if not node.up:
            self.cluster.start(node)

    # --- the round -------------------------------------------------------------------------
    def _round(self) -> None:
        self.rounds += 1
        self._when_leader(set(), self._cut_off_a)

    def _cut_off_a(self, a: SimNode) -> None:
        self._note("cut off", a.node_id)
        self._isolate(a)  # its clients' writes reach its log only
        self._later(CUT_OFF_MS, lambda: self._power_off_a(a))

    def _power_off_a(self, a: SimNode) -> None:
        self.cluster.crash(a)
        self._rejoin(a)  # down anyway; the link comes back for its return
        self._when_leader({a.node_id}, lambda b: self._cut_off_b(a, b))

    def _cut_off_b(self, a: SimNode, b: SimNode) -> None:
        self._note("cut off", b.node_id)
        self._isolate(b)
        self._later(CUT_OFF_MS, lambda: self._power_off_b(a, b))

    def _power_off_b(self, a: SimNode, b: SimNode) -> None:
        self.cluster.crash(b)
        self._rejoin(b)
        self._start(a)  # A and the third node: A's longer log wins
        self._when_leader({b.node_id}, lambda leader: self._copying(a, b, leader))

    def _copying(self, a: SimNode, b: SimNode, leader: SimNode) -> None:
        if leader is not a:  # A had nothing newer than the third node: no trap this round
            self._note("round missed:", leader.node_id, "leads")
            self._next_round()
            return
        self._later(COPY_MS, lambda: self._cut_off_again(a, b))

    def _cut_off_again(self, a: SimNode, b: SimNode) -> None:
        self._note("cut off", a.node_id, "restart", b.node_id)
        self._isolate(a)
        self._start(b)  # B's later last term can win the third node's vote
        self._later(CUT_OFF_MS, self._next_round)

    def _next_round(self) -> None:
        self._restart_all()
        if not self._quiet():
            self._later(START_MS, self._round)


#: ``revote``: how long a voter that just granted stays down, and how often the leader is
#: cut off (and for how long) so that elections, and split ones, keep coming.
REVOTE_DOWN_MS = (1, 15)
REVOTE_CUT_GAP_MS = (200, 600)
REVOTE_CUT_SPAN_MS = (150, 400)


class Revote:
    """A voter loses power right after it grants a vote and comes back at once; the
    leader is cut off now and then so that elections keep coming. A node that forgets
    its vote over a restart can then grant a second candidate of the same term."""

    def __init__(self, cluster: Cluster, rng: random.Random) -> None:
        self.cluster = cluster
        self.rng = rng
        self.rounds = 0
        self._down: set[str] = set()

    def install(self) -> None:
        self.cluster.on_vote_granted = self._voted
        self.cluster.queue.after(self.rng.randint(*REVOTE_CUT_GAP_MS), self._cut_leader)

    def _quiet(self) -> bool:
        return self.cluster.queue.now_ms >= self.cluster.options.fault_ms

    def _voted(self, voter: str) -> None:
        if self._quiet() or voter in self._down:
            return
        self._down.add(voter)
        self.cluster.queue.after(0, lambda: self._power_cut(voter))

    def _power_cut(self, voter: str) -> None:
        node = self.cluster.nodes[voter]
        self.cluster.crash(node)
        self.rounds += 1
        self.cluster.queue.after(self.rng.randint(*REVOTE_DOWN_MS), lambda: self._restart(node))

    def _restart(self, node: SimNode) -> None:
        self._down.discard(node.node_id)
        if not node.up:
            self.cluster.start(node)

    def _cut_leader(self) -> None:
        if self._quiet():
            return
        leader = self.cluster.leader()
        net = self.cluster.network
        if leader is not None:
            others = [n for n in self.cluster.ids if n != leader.node_id]
            for other in others:
                net.block(leader.node_id, other)
                net.block(other, leader.node_id)
            self.cluster.queue.after(self.rng.randint(*REVOTE_CUT_SPAN_MS), net.heal)
        self.cluster.queue.after(self.rng.randint(*REVOTE_CUT_GAP_MS), self._cut_leader)


def install(name: str, cluster: Cluster) -> Figure8 | Revote:
    """Start scenario ``name`` on ``cluster`` (its Random is seeded from the run's seed)."""
    rng = random.Random(f"{cluster.seed}/scenario/{name}")
    scenario: Figure8 | Revote
    if name == "figure8":
        scenario = Figure8(cluster, rng)
    elif name == "revote":
        scenario = Revote(cluster, rng)
    else:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    scenario.install()
    return scenario


__all__ = ["SCENARIOS", "Figure8", "Revote", "install"]
