"""The fault schedule: which faults happen when, drawn from the seed.

Theory of operation
-------------------
``FaultSchedule`` owns one seeded ``Random`` and, for each fault kind switched
on in ``SimOptions``, either sets a standing condition at the start (network
loss, duplication and latency; slow and fast timers) or runs a self-renewing
chain of events during the faulty phase (partitions that come and go, crashes
followed by restarts, timer drift). At ``fault_ms`` the quiet phase begins:
partitions heal, the network becomes reliable, every crashed node restarts,
and no new fault is scheduled, so the liveness check at the end is fair.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from resonetics.sim.cluster import Cluster, SimNode
from resonetics.sim.network import NetworkProfile
from resonetics.sim.options import CLOCK_FACTOR_MAX, CLOCK_FACTOR_MIN

#: Gaps between faults and how long each lasts (virtual milliseconds).
PARTITION_GAP_MS = (100, 1_200)
PARTITION_SPAN_MS = (100, 1_500)
CRASH_GAP_MS = (150, 1_200)
DOWN_SPAN_MS = (10, 1_200)
CLOCK_GAP_MS = (300, 2_000)
#: A restart that crashes again while the node recovers (reading its folder, cutting a
#: torn tail, replaying the log): how often, and within how many disk operations of
#: the start (a recovery takes 7-15 in the default runs).
RECOVERY_CRASH_P = 0.25
RECOVERY_CRASH_OPS_MAX = 15


@dataclass(slots=True)
class FaultStats:
    partitions: int = 0
    crashes: int = 0
    mid_op_crashes: int = 0
    #: Restarts armed to crash again during recovery (``recovery_crashes`` of the
    #: cluster counts those that did).
    recovery_crashes_armed: int = 0
    restarts: int = 0
    clock_changes: int = 0
    #: Followers crashed for the rest of the faulty phase ("longdown").
    long_downs: int = 0

    @property
    def total(self) -> int:
        return (
            self.partitions
            + self.crashes
            + self.mid_op_crashes
            + self.recovery_crashes_armed
            + self.clock_changes
            + self.long_downs
        )


class FaultSchedule:
    """Injects the faults named in the options into one cluster."""

    def __init__(self, cluster: Cluster, rng: random.Random) -> None:
        self.cluster = cluster
        self.rng = rng
        self.kinds = cluster.options.faults
        self.stats = FaultStats()
        self.quiet = False
        #: Nodes crashed (or armed to crash) and waiting for their restart.
        self._down: set[str] = set()
        #: Its own Random, so that crashes during recovery leave the other faults' draws alone.
        self._recovery_rng = random.Random(f"{cluster.seed}/recovery-crash")

    def install(self) -> None:
        """Set standing conditions and schedule the first fault of each kind."""
        options = self.cluster.options
        self.cluster.network.profile = self._profile()
        queue = self.cluster.queue
        if "clock" in self.kinds:
            for node in self.cluster.nodes.values():
                self._skew(node)
            queue.after(self._between(CLOCK_GAP_MS), self._clock_drift)
        if "partition" in self.kinds:
            queue.after(self._between(PARTITION_GAP_MS), self._partition)
        if "crash" in self.kinds:
            queue.after(self._between(CRASH_GAP_MS), self._crash)
        if "longdown" in self.kinds:
            # Its own Random, so that switching it on leaves the other faults' draws alone.
            long_rng = random.Random(f"{self.cluster.seed}/longdown")
            start = long_rng.randint(0, max(1, options.fault_ms // 4))
            queue.after(start, lambda: self._long_down(long_rng))
        queue.at(options.fault_ms, self._go_quiet)

    def _between(self, span: tuple[int, int]) -> int:
        return self.rng.randint(*span)

    def _profile(self) -> NetworkProfile:
        p = NetworkProfile()
        if "drop" in self.kinds:
            p.drop_p = self.rng.uniform(0.01, 0.2)
        if "dup" in self.kinds:
            p.dup_p = self.rng.uniform(0.01, 0.15)
        if "delay" in self.kinds:
            p.latency_max_ms = self.rng.randint(5, 60)
            p.slow_p = self.rng.uniform(0.0, 0.05)
            p.slow_ms = self.rng.randint(50, 400)
        return p

    def _note(self, what: str, *details: str) -> None:
        self.cluster.trace.add(self.cluster.queue.now_ms, what, *details)

    # --- clocks -------------------------------------------------------------------------
    def _skew(self, node: SimNode) -> None:
        factor = self.rng.uniform(CLOCK_FACTOR_MIN, CLOCK_FACTOR_MAX)
        node.tick_ms = max(1, round(self.cluster.options.tick_ms * factor))
        self.stats.clock_changes += 1
        self._note("clock", node.node_id, f"tick={node.tick_ms}ms")

    def _clock_drift(self) -> None:
        if self.quiet:
            return
        self._skew(self.rng.choice(list(self.cluster.nodes.values())))
        self.cluster.queue.after(self._between(CLOCK_GAP_MS), self._clock_drift)

    # --- partitions ---------------------------------------------------------------------
    def _partition(self) -> None:
        if self.quiet:
            return
        net = self.cluster.network
        ids = self.cluster.ids
        kind = self.rng.choice(["split", "one-way", "from-leader", "isolate"])
        if kind == "split":
            side = set(self.rng.sample(ids, self.rng.randint(1, len(ids) // 2 or 1)))
            for a in ids:
                for b in ids:
                    if (a in side) != (b in side):
                        net.block(a, b)
        elif kind == "one-way":
            for _ in range(self.rng.randint(1, len(ids))):
                a, b = self.rng.sample(ids, 2) if len(ids) > 1 else (ids[0], ids[0])
                net.block(a, b)
        else:
            leader = self.cluster.leader()
            target = leader.node_id if leader is not None else self.rng.choice(ids)
            others = [n for n in ids if n != target]
            if kind == "from-leader" and others:
                others = [self.rng.choice(others)]
            for other in others:
                net.block(target, other)
                net.block(other, target)
        self.stats.partitions += 1
        self._note("partition", kind, " ".join(f"{a}-x->{b}" for a, b in sorted(net.blocked)))
        self.cluster.queue.after(self._between(PARTITION_SPAN_MS), self._heal)

    def _heal(self) -> None:
        self.cluster.network.heal()
        self._note("heal")
        if not self.quiet:
            self.cluster.queue.after(self._between(PARTITION_GAP_MS), self._partition)

    # --- crashes ------------------------------------------------------------------------
    def _crash(self) -> None:
        if self.quiet:
            return
        up = [n for n in self.cluster.nodes.values() if n.up and n.node_id not in self._down]
        if up:
            node = self.rng.choice(up)
            if self.rng.random() < 0.5:
                self.cluster.crash(node)
                self.stats.crashes += 1
            else:
                self.cluster.arm_crash(node)
                self.stats.mid_op_crashes += 1
            self._down.add(node.node_id)
            self.cluster.queue.after(self._between(DOWN_SPAN_MS), lambda: self._restart(node))
        self.cluster.queue.after(self._between(CRASH_GAP_MS), self._crash)

    def _long_down(self, rng: random.Random) -> None:
        """A follower goes down until the quiet phase: the others compact past it, so
        it can only come back through InstallSnapshot."""
        if self.quiet:
            return
        leader = self.cluster.leader()
        up = [
            n
            for n in self.cluster.nodes.values()
            if n.up and n.node_id not in self._down and n is not leader
        ]
        if not up:
            return
        node = rng.choice(up)
        self.cluster.crash(node)
        self._down.add(node.node_id)  # restarted by the quiet phase, not before
        self.stats.long_downs += 1

    def _restart(self, node: SimNode) -> None:
        self._down.discard(node.node_id)
        if self.quiet:
            return  # the quiet phase restarted it already
        if node.up:
            # An armed crash that has not fired yet: fire it now, then reboot.
            self.cluster.disarm_crash(node)
            self.cluster.crash(node)
        rng = self._recovery_rng
        crash_in_recovery = "crash" in self.kinds and rng.random() < RECOVERY_CRASH_P
        if crash_in_recovery:
            self.cluster.arm_recovery_crash(node, rng.randint(0, RECOVERY_CRASH_OPS_MAX))
            self.stats.recovery_crashes_armed += 1
        self.cluster.start(node)
        self.stats.restarts += 1
        if not crash_in_recovery:
            return
        if node.up:
            self.cluster.disarm_crash(node)  # recovered in fewer operations: no crash
        else:
            # Down again, mid-recovery: it comes back later, as after any crash.
            self._down.add(node.node_id)
            self.cluster.queue.after(rng.randint(*DOWN_SPAN_MS), lambda: self._restart(node))

    # --- quiet phase ----------------------------------------------------------------------
    def _go_quiet(self) -> None:
        """Faults stop: heal, reliable network, restart everything that is down."""
        self.quiet = True
        self.cluster.network.heal()
        self.cluster.network.profile = NetworkProfile()
        self._note("quiet", "faults stop")
        for node in self.cluster.nodes.values():
            if node.up:
                self.cluster.disarm_crash(node)
            else:
                self.cluster.start(node)
                self.stats.restarts += 1


__all__ = ["FaultSchedule", "FaultStats"]
