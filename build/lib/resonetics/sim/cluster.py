"""The simulated world: nodes, their disks and timers, and the hosts they run on.

Theory of operation
-------------------
Each ``SimNode`` is one machine: a ``MemoryFileSystem`` (its disk, which
outlives crashes) and, while it is up, a ``NodeDriver`` over
``FileNodeStorage`` on that disk — the very driver and storage code the server
runs. ``SimNode`` is the driver's ``Host``: ``now_ms`` is the virtual clock,
``send`` hands the message to the faulty network.

Every input (a tick, an arriving message, a client request) is one event: the
input is fed to the driver, its executor (``sim/executor.py``) carries out the
loop's steps — a big write or a snapshot's save goes to the node's disk thread,
modelled in virtual time, and the node keeps taking input meanwhile — and then
the monitor checks what changed. A ``SimulatedCrash`` raised by the disk anywhere in that
(including during recovery) takes the node down right there, as a power cut
would. A crash discards the driver and everything in memory; a restart builds
a new driver over the same disk, so recovery runs the real code.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from resonetics.machine.changes import ChangeHistory, attach_history
from resonetics.machine.ops import load_factory
from resonetics.machine.served import ServedMachine
from resonetics.raft.config import RaftConfig, lease_ticks_for
from resonetics.raft.messages import (
    AppendEntriesResp,
    InstallSnapshotResp,
    Message,
    PreVote,
    PreVoteResp,
    RequestVoteResp,
)
from resonetics.raft.ready import Role
from resonetics.raft.types import NodeId
from resonetics.runtime import peer_gate
from resonetics.runtime.dispatch import Routed, dispatch, route
from resonetics.runtime.driver import NodeDriver
from resonetics.runtime.outcome import OnDone, Outcome
from resonetics.runtime.snapshots import SnapshotPolicy
from resonetics.sim.clock import EventQueue
from resonetics.sim.executor import SimExecutor
from resonetics.sim.invariants import SafetyMonitor, SimViolation
from resonetics.sim.machine_state import Convergence
from resonetics.sim.network import Network
from resonetics.sim.observed import ObservedKV, ObservedStorage
from resonetics.sim.options import CLOCK_DRIFT_MAX, SimOptions, heartbeat_ticks_for
from resonetics.sim.trace import Trace
from resonetics.storage.fs import MemoryFileSystem, SimulatedCrash
from resonetics.storage.node_storage import FileNodeStorage
from resonetics.wire import codes
from resonetics.wire.client import OpTable
from resonetics.wire.machine_ops import op_table

if TYPE_CHECKING:
    from resonetics.sim.adversary import Adversary

#: Operations after "now" at which an armed mid-operation crash may fire.
CRASH_AT_OPS_MAX = 12

#: ``Role.LEADER`` read once: reading an enum member off its class costs a descriptor
#: call (~0.2 us), and ``_observe`` compares a role after every step.
_LEADER = Role.LEADER


class SimNode:
    """One simulated machine; the ``Host`` of its driver."""

    def __init__(self, node_id: NodeId, cluster: Cluster, tick_ms: int) -> None:
        self.node_id = node_id
        self.cluster = cluster
        self.fs = MemoryFileSystem()
        self.driver: NodeDriver | None = None
        #: Carries out the driver's steps in virtual time (``sim/executor.py``).
        self.executor: SimExecutor | None = None
        #: Loop steps carried out by earlier incarnations, by name.
        self.loop_steps: Counter[str] = Counter()
        self.incarnation = 0
        self.tick_ms = tick_ms
        self.role = Role.FOLLOWER
        self.crashes = 0
        #: Snapshots taken and installed by earlier incarnations.
        self._snapshot_counts = (0, 0)
        #: What this incarnation's applied entries changed (watch streams, ``sim/watchers``).
        self.history: ChangeHistory | None = None
        #: ``Host.send``: straight to the cluster (the driver calls it for every message,
        #: and a method here that only forwarded cost a call level each time).
        self.send: Callable[[Message], None] = cluster.send_peer

    @property
    def up(self) -> bool:
        return self.driver is not None

    def snapshot_counts(self) -> tuple[int, int]:
        """(taken, installed) over every incarnation of this node."""
        taken, installed = self._snapshot_counts
        if self.driver is not None:
            stats = self.driver.snapshots.stats
            taken, installed = taken + stats.taken, installed + stats.installed
        return taken, installed

    def lose_driver(self) -> None:
        """Power cut: everything in memory is gone (counters are kept for the summary)."""
        self._snapshot_counts = self.snapshot_counts()
        if self.executor is not None:
            self.loop_steps.update(self.executor.steps)
        self.driver = None
        self.executor = None

    def loop_step_counts(self) -> Counter[str]:
        """Loop steps (``runtime/loop_plan.py``) carried out over every incarnation."""
        counts = Counter(self.loop_steps)
        if self.executor is not None:
            counts.update(self.executor.steps)
        return counts

    # --- Host --------------------------------------------------------------------------
    def now_ms(self) -> int:
        return self.cluster.queue.now_ms

    def flush(self) -> None:
        """Sends reach the simulated network at once; nothing waits in a buffer."""


class Cluster:
    """Nodes, network, clock and monitor of one run."""

    def __init__(
        self,
        seed: int,
        options: SimOptions,
        queue: EventQueue,
        network: Network,
        trace: Trace,
        monitor: SafetyMonitor,
    ) -> None:
        self.seed = seed
        self.options = options
        self.queue = queue
        self.network = network
        self.trace = trace
        self.monitor = monitor
        self.ids = [f"n{i + 1}" for i in range(options.nodes)]
        self.nodes = {nid: SimNode(nid, self, options.tick_ms) for nid in self.ids}
        self._disk_rng = random.Random(f"{seed}/disk")
        #: The leaders' heartbeat period (ticks): the options', or drawn from the seed.
        self.heartbeat_ticks = heartbeat_ticks_for(seed, options)
        #: The attacker on the network (``sim/adversary.py``), when the run has one.
        self.adversary: Adversary | None = None
        #: Messages the peer gate dropped, by reason.
        self.gate_drops: Counter[str] = Counter()
        #: Coverage (``RunResult.coverage``): role changes seen, as "old->new".
        self.role_changes: Counter[str] = Counter()
        #: Coverage: peer messages sent, by message class.
        self.sent_kinds: Counter[type[Message]] = Counter()
        #: Coverage: boots that recovered from a snapshot on disk, and boots a crash cut short.
        self.restored_from_snapshot = 0
        #: Starts that took lines of the log on its seal (``storage/log_seal.py``).
        self.loaded_on_seal = 0
        self.recovery_crashes = 0
        #: Called with the voter's id when a node sends a granted vote (a scenario's hook).
        self.on_vote_granted: Callable[[str], None] | None = None
        #: ``sim --machine``: the user's machine's op table, and the replicas' agreement.
        self.op_table: OpTable | None = None
        self.convergence: Convergence | None = None
        if options.machine:
            self.op_table = op_table(load_factory(options.machine))
            self.convergence = Convergence()

    # --- life cycle --------------------------------------------------------------------
    def start(self, node: SimNode) -> None:
        """Boot (or reboot) ``node`` from its disk and start its timer."""
        assert not node.up
        node.incarnation += 1
        config = RaftConfig(
            node_id=node.node_id,
            initial_voters=tuple(self.ids),
            election_ticks=self.options.election_ticks,
            heartbeat_ticks=self.heartbeat_ticks,
            # Lease reads as the server has them, with the margin the clock fault needs.
            lease_ticks=lease_ticks_for(self.options.election_ticks, CLOCK_DRIFT_MAX),
        )
        if self.options.append_entries_max:
            config = dataclasses.replace(config, append_entries_max=self.options.append_entries_max)
        file_storage = FileNodeStorage(node.fs, f"/data/{node.node_id}")
        storage = ObservedStorage(file_storage, node.node_id, self.monitor)
        rng = random.Random(f"{self.seed}/core/{node.node_id}/{node.incarnation}")
        machine = self._replicated(node)
        node.history = attach_history(machine)  # before the driver restores or applies
        policy = SnapshotPolicy(
            entries=self.options.snapshot_entries,
            trailing_entries=self.options.snapshot_trailing,
            chunk_bytes=self.options.snapshot_chunk_bytes,
        )
        try:
            driver = NodeDriver(config, storage, node, rng, machine, policy)
        except SimulatedCrash:
            self.recovery_crashes += 1
            self._power_cut(node, "crash during recovery")
            return
        if driver.core.anchor.index > 0:
            self.restored_from_snapshot += 1
        if file_storage.sealed_lines:
            self.loaded_on_seal += 1
        node.driver = driver
        node.executor = SimExecutor(
            self,
            node,
            driver,
            random.Random(f"{self.seed}/disk-thread/{node.node_id}/{node.incarnation}"),
        )
        node.role = driver.core.role
        self.monitor.on_restart(node.node_id, driver.core.term)
        self.trace.add(self.queue.now_ms, "start", node.node_id, f"term={driver.core.term}")
        self.run(node, lambda d: None)
        self._schedule_tick(node)

    def _replicated(self, node: SimNode) -> ObservedKV:
        """A fresh replicated state: the key-value store, or a new instance of the user's
        machine served as the server serves it (``sim --machine``)."""
        if self.convergence is None:
            observed = ObservedKV(node.node_id, self.monitor)
            observed.lease_clock = lambda: self.queue.now_ms  # lease checks (lease_checks.py)
            return observed
        inner = ServedMachine(load_factory(self.options.machine))
        return ObservedKV(node.node_id, self.monitor, inner, self.convergence.check)

    def crash(self, node: SimNode) -> None:
        """Power loss now: unsynced bytes may be lost or torn."""
        if node.up:
            self._power_cut(node, "crash")

    def arm_crash(self, node: SimNode) -> None:
        """Make the disk fail a few operations from now, in the middle of whatever runs."""
        if node.up:
            k = self._disk_rng.randint(0, CRASH_AT_OPS_MAX)
            node.fs.crash_at(node.fs.op_count + k)
            self.trace.add(self.queue.now_ms, "arm-crash", node.node_id, f"op+{k}")

    def arm_recovery_crash(self, node: SimNode, ops: int) -> None:
        """Make the disk of a node that is down fail ``ops`` operations into its next
        start: a crash while it reads its folder, cuts a torn tail or replays its log."""
        assert not node.up
        node.fs.crash_at(node.fs.op_count + ops)
        self.trace.add(self.queue.now_ms, "arm-recovery-crash", node.node_id, f"op+{ops}")

    def disarm_crash(self, node: SimNode) -> None:
        if node.up:
            node.fs.crash_at(None)

    def _power_cut(self, node: SimNode, why: str) -> None:
        node.lose_driver()
        node.role = Role.FOLLOWER
        node.crashes += 1
        node.fs.crash(self._disk_rng)
        self.monitor.forget_commit(node.node_id)
        self.trace.add(self.queue.now_ms, "crash", node.node_id, why)

    # --- inputs ------------------------------------------------------------------------
    def run(
        self,
        node: SimNode,
        feed: Callable[[NodeDriver], None] | Message,
        *,
        process: bool = True,
    ) -> None:
        """One step: feed an input (a peer message is stepped), process the Ready (unless
        ``process`` is False: the node then handles it with its next input), check what
        changed."""
        driver, executor = node.driver, node.executor
        if driver is None or executor is None:
            return
        try:
            if callable(feed):
                feed(driver)
            else:  # a message: no closure per delivery (the commonest input)
                driver.step(feed)
            if process:
                executor.run()
        except SimulatedCrash:
            self._power_cut(node, "disk failed mid-operation")
            return
        self._observe(node, driver)

    def run_disk_job(self, node: SimNode, work: Callable[[], None]) -> bool:
        """``work`` runs on ``node``'s disk thread now; False if the disk failed under it."""
        try:
            work()
        except SimulatedCrash:
            self._power_cut(node, "disk failed under the disk thread")
            return False
        return True

    def _schedule_tick(self, node: SimNode) -> None:
        incarnation = node.incarnation
        queue, tick = self.queue, NodeDriver.tick

        def fire() -> None:  # one closure per incarnation, rescheduling itself
            if node.incarnation == incarnation and node.up:
                self.run(node, tick)
                queue.after(node.tick_ms, fire)  # read now: a clock fault changes it

        queue.after(node.tick_ms, fire)

    def send_peer(self, msg: Message) -> None:
        # Exact classes (messages are final structs): one type() instead of isinstance chains.
        kind = type(msg)
        if kind is RequestVoteResp and msg.vote_granted:  # type: ignore[union-attr]
            self.monitor.on_vote_sent(msg.src, msg.term, msg.dst)
            if self.on_vote_granted is not None:
                self.on_vote_granted(msg.src)
        elif kind is AppendEntriesResp and msg.success:  # type: ignore[union-attr]
            self.monitor.on_ack_sent(msg.src, msg.match_index)  # type: ignore[union-attr]
            self.monitor.on_answer(msg.src, msg.match_index)  # type: ignore[union-attr]
        elif kind is InstallSnapshotResp and msg.success:  # type: ignore[union-attr]
            self.monitor.on_answer(msg.src, msg.last_included_index)  # type: ignore[union-attr]
        if kind is not PreVote and kind is not PreVoteResp:
            # PreVote rounds carry a term (my term + 1) that nobody adopts.
            self.monitor.on_term_sent(msg.src, msg.term)
        self.trace.add(self.queue.now_ms, "send", msg)
        self.sent_kinds[kind] += 1
        if msg.dst not in self.nodes:
            return
        if self.adversary is not None:
            self.adversary.capture(msg)
        self.network.send_to(msg.src, msg.dst, msg, self._deliver_genuine, msg)

    def _deliver_genuine(self, msg: Message) -> None:
        """Links between nodes are authenticated: a genuine message arrives as its sender."""
        self.deliver_peer(msg, authenticated=msg.src)

    def deliver_peer(self, msg: Message, *, authenticated: str | None) -> bool:
        """``msg`` arrives at its ``dst`` over a link that authenticated as ``authenticated``.

        The peer gate the server runs (``runtime/peer_gate.py``) decides whether
        it is stepped; returns whether it was.
        """
        target = self.nodes.get(msg.dst)
        driver = target.driver if target is not None else None
        if target is None or driver is None:  # not a node, or down
            return False
        members = driver.membership.members()
        reason = peer_gate.refusal(target.node_id, members, authenticated, msg)
        if reason is not None:
            self.gate_drops[reason] += 1
            self.trace.add(self.queue.now_ms, "gate-drop", msg, reason)
            return False
        self.trace.add(self.queue.now_ms, "deliver", msg)
        self.run(target, msg)
        return True

    def client_request(
        self, node_id: NodeId, request: dict[str, Any], reply: Callable[[Outcome], None]
    ) -> None:
        """A client's request arrives at ``node_id`` (nothing happens if it is down)."""
        node = self.nodes[node_id]
        if not node.up:
            return
        on_done: OnDone = reply
        # Writes wait for the node's next input when batching, as on a loaded server.
        ops = self.op_table
        defer = self.options.batch_writes and route(request["op"], ops=ops) is Routed.WRITE
        lease = request["op"] == "kv_get" and request["args"].get("consistency") == "lease"
        served: list[Outcome] = []

        def answer(outcome: Outcome) -> None:
            served.append(outcome)
            on_done(outcome)

        def feed(driver: NodeDriver) -> None:
            # Copies args, as decoding off the wire would.
            dispatch(driver, request, answer if lease else on_done, ops=ops)

        self.run(node, feed, process=not defer)
        if lease and served and served[0].code == codes.OK and node.driver is not None:
            # Answered within the step that brought it: from the lease, no round.
            self.monitor.on_lease_read(node.node_id, node.driver.core.term)

    # --- checks ------------------------------------------------------------------------
    def _observe(self, node: SimNode, driver: NodeDriver) -> None:
        core = driver.core
        monitor = self.monitor
        role = core.role
        term = core.term
        if role is not node.role:
            self.trace.add(self.queue.now_ms, "role", node.node_id, f"{role} term={term}")
            self.role_changes[f"{node.role}->{role}"] += 1
            node.role = role
        # Indexes below the anchor were compacted into a snapshot: the anchor's hash
        # (the chain value at its index) stands for all of them.
        # A leader already known for its term is all ``on_leader`` would accept without
        # looking at the probes (it returns at once), so they are computed only when new.
        if role is _LEADER and monitor.leaders.get(term) != node.node_id:
            floor = core.anchor.index
            probes = monitor.completeness_probes(term)
            monitor.on_leader(
                node.node_id,
                term,
                {max(i, floor): core.hash_at(max(i, floor)) for i in probes},
            )
        commit = core.commit_index
        if monitor.commit_unchanged(node.node_id, term, commit, core.hash_at(commit)):
            return  # what on_commit would check is what it checked last step: no-op
        floor = core.anchor.index
        start = max(monitor.committed_max, monitor.commit_seen.get(node.node_id, 0), floor - 1)
        hashes = (
            {i: core.hash_at(i) for i in range(start + 1, commit + 1)} if commit > start else {}
        )
        if commit > 0:
            hashes[commit] = core.hash_at(commit)
        monitor.on_commit(node.node_id, term, commit, hashes)

    def check_awake(self, node: SimNode, driver: NodeDriver) -> None:
        """No lost wake-up: once the loop has noticed a disk job is done, it either has
        nothing to do or waits for something that will resume it (a write on its disk
        thread, a snapshot being taken). Commands held for the next input are allowed
        when batching. (Checked after those events only: checking after every event
        cost 8% of a run.)"""
        if driver.write_in_flight or driver.snapshot_in_progress:
            return
        if node.executor is not None and node.executor.resume_scheduled:
            return  # a long apply goes on at a later event (``SimExecutor._apply_later``)
        idle_work = driver.has_ready_work() if self.options.batch_writes else driver.has_work()
        if idle_work:
            raise SimViolation(
                f"lost wake-up: {node.node_id} went idle at {self.queue.now_ms} ms with work "
                "to do and nothing in flight to wake it"
            )

    def leader(self) -> SimNode | None:
        """The live leader of the highest term, if any."""
        best: SimNode | None = None
        best_term = -1
        for node in self.nodes.values():
            core = node.driver.core if node.driver is not None else None
            if core is not None and core.role is Role.LEADER and core.term > best_term:
                best, best_term = node, core.term
        return best


__all__ = ["CRASH_AT_OPS_MAX", "Cluster", "SimNode"]
