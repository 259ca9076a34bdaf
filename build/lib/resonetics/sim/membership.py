"""Membership changes and leadership transfers mixed into a simulated run.

Theory of operation
-------------------
``MembershipChurn`` is one more seeded source of events, like the fault
schedule. During the faulty phase it asks whoever leads now to transfer
leadership to a random voter, to remove one voter (at most one is out at a
time), or to add a removed node back (``ChangeKind.ADD_VOTER``: a learner first,
promoted by the leader once caught up). Requests go through the same driver
calls the server's admin ops use, so they meet partitions, crashes and lost
messages like everything else; refusals (a change in progress, no leader) are
counted, not errors. In the quiet phase it only puts every node back as a voter,
so the liveness check at the end sees the whole cluster again.

The safety checks need nothing new: election safety, log matching and "no
acknowledged write lost" are checked by the monitor across configurations.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from resonetics.raft.membership_change import ChangeKind, ConfigChange
from resonetics.runtime.driver import NodeDriver
from resonetics.runtime.outcome import Outcome
from resonetics.sim.cluster import Cluster, SimNode
from resonetics.wire import codes

#: Virtual milliseconds between two churn steps in the faulty phase, and in the quiet one.
CHURN_GAP_MS = (150, 700)
RESTORE_GAP_MS = 50
#: With ``transfer_lag``: how long the target's messages to the old leader are held back.
TRANSFER_LAG_MS = (50, 400)


@dataclass(slots=True)
class ChurnStats:
    transfers: int = 0
    changes_proposed: int = 0
    changes_committed: int = 0
    refused: int = 0


class MembershipChurn:
    """Transfers leadership and removes/re-adds voters during a run."""

    def __init__(self, cluster: Cluster, rng: random.Random) -> None:
        self.cluster = cluster
        self.rng = rng
        self.stats = ChurnStats()
        #: Its own Random, so that switching ``transfer_lag`` on leaves the churn's draws alone.
        self._lag_rng = random.Random(f"{cluster.seed}/transfer-lag")

    def install(self) -> None:
        self.cluster.queue.after(self.rng.randint(*CHURN_GAP_MS), self._step)

    def _quiet(self) -> bool:
        return self.cluster.queue.now_ms >= self.cluster.options.fault_ms

    def _step(self) -> None:
        leader = self.cluster.leader()
        if leader is not None and leader.driver is not None:
            if self._quiet():
                self._restore(leader, leader.driver)
            else:
                self._churn(leader, leader.driver)
        gap = RESTORE_GAP_MS if self._quiet() else self.rng.randint(*CHURN_GAP_MS)
        self.cluster.queue.after(gap, self._step)

    def _churn(self, leader: SimNode, driver: NodeDriver) -> None:
        m = driver.membership
        outside = [n for n in self.cluster.ids if not m.is_voter(n) and n not in m.learners]
        action = self.rng.choice(["transfer", "remove", "add"])
        if self.cluster.options.transfer_lag:
            action = "transfer"  # every step a transfer, each heard late by the old leader
        if action == "transfer":
            others = [v for v in m.voters if v != leader.node_id]
            if others:
                target = self.rng.choice(others)
                self.stats.transfers += 1
                self._trace("transfer", leader.node_id, f"to={target}")
                if self.cluster.options.transfer_lag:
                    self._lag(target, leader.node_id)
                self.cluster.run(leader, lambda d: self._count(d.transfer_leadership(target)))
        elif action == "remove" and not outside and len(m.voters) == len(self.cluster.ids):
            self._propose(leader, ChangeKind.REMOVE, self.rng.choice(sorted(m.voters)))
        elif outside:
            self._propose(leader, ChangeKind.ADD_VOTER, self.rng.choice(outside))

    def _lag(self, target: str, old: str) -> None:
        """Hold the target's messages to the old leader back for a while (one-way)."""
        net = self.cluster.network
        net.block(target, old)
        self._trace("partition", "transfer-lag", f"{target}-x->{old}")
        span = self._lag_rng.randint(*TRANSFER_LAG_MS)
        self.cluster.queue.after(span, lambda: net.blocked.discard((target, old)))

    def _restore(self, leader: SimNode, driver: NodeDriver) -> None:
        m = driver.membership
        for node in self.cluster.ids:
            if not m.is_voter(node) and node not in m.learners:
                self._propose(leader, ChangeKind.ADD_VOTER, node)
                return
            if node in m.learners and node not in m.promote_when_caught_up:
                self._propose(leader, ChangeKind.PROMOTE, node)
                return

    def _propose(self, leader: SimNode, kind: ChangeKind, node: str) -> None:
        address = f"sim-{node}:1" if kind is ChangeKind.ADD_VOTER else None
        change = ConfigChange(kind, node, address)
        self.stats.changes_proposed += 1
        self._trace("config", leader.node_id, f"{kind}:{node}")
        self.cluster.run(leader, lambda d: d.change_membership(change, self._count))

    def _count(self, outcome: Outcome) -> None:
        if outcome.code == codes.OK:
            if outcome.result and "voters" in outcome.result:
                self.stats.changes_committed += 1
        else:
            self.stats.refused += 1

    def _trace(self, what: str, *details: str) -> None:
        self.cluster.trace.add(self.cluster.queue.now_ms, what, *details)


__all__ = ["CHURN_GAP_MS", "TRANSFER_LAG_MS", "ChurnStats", "MembershipChurn"]
