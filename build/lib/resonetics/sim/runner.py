"""One simulated run from a seed, and its verdict.

Theory of operation
-------------------
``run_seed(seed, options)`` builds the world from nothing but the seed — one
``random.Random`` per concern, each seeded with ``f"{seed}/{concern}"`` so
that adding draws to one concern never shifts another — then runs the event
queue through the faulty phase and the quiet phase. Safety is checked after
every step (``cluster.py`` calls the monitor); at the end come the liveness
check, the acknowledged-writes check, the replicas' state comparison and the
linearizability check of the recorded client history.

After the faults stop, the cluster has at most ``SETTLE_MS`` to recover; then every
client operation started in the next ``quiet_ms - SETTLE_MS - DRAIN_MS`` (the window)
must succeed. The window opens as soon as the cluster serves again (every node up,
following one leader in its term, applied to within ``SERVING_LAG_ENTRIES`` of the
leader's commit index) and has kept serving for one of the longest election
timeouts, and at ``SETTLE_MS`` at the latest; the rest of the run moves earlier with
it. A cluster that serves sooner is held to the same window sooner, so the bound on
recovery is never looser; what a run saves is the calm time in between, where most
of a run's events were (heartbeats, ticks and client operations on a healthy cluster)
and no fault was. Runs with watchers or lease clients, whose checks follow their own
timelines, keep the fixed phases.

The drain (the last ``DRAIN_MS``, when clients start nothing new) exists for answers
still on their way. Once every client has its answer and the cluster is settled (the
final liveness conditions hold) for ``QUIET_GRACE_TIMEOUTS`` of the longest election
timeouts, the rest of the drain would be heartbeats only, and the run ends there; a
client still waiting, a node behind, or no single leader keeps it going to its end,
where the liveness check fails it. Every timer of a settled node fires within one of
the longest election timeouts (a follower's election timer, a leader's quorum check, a
transfer's abort), so a settled cluster that would still fall apart does so within the
grace; the half timeout beyond it covers the message that would show it. Runs with
watchers or lease clients, whose checks follow their own timelines, always run to
their end.

Any failure — a ``SimViolation``, or an exception escaping the code under test
(an ``InvariantViolation`` of the core included) — ends the run with a report
naming the seed, the options and the last events. Catching the exception here
is the point of a simulator: the bug is reported with the seed that replays
it, not swallowed.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import traceback
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from resonetics import planted
from resonetics.check.history import HistoryRecorder
from resonetics.check.invariants import log_matching
from resonetics.check.linearizability import Verdict, check_history
from resonetics.check.model import ModelVerdict, check_model
from resonetics.machine.ops import load_factory
from resonetics.raft.messages import InstallSnapshot, TimeoutNow
from resonetics.raft.ready import Role
from resonetics.sim import scenarios
from resonetics.sim.adversary import Adversary
from resonetics.sim.client import SimClient, Workload
from resonetics.sim.clock import EventQueue
from resonetics.sim.cluster import Cluster, SimNode
from resonetics.sim.faults import FaultSchedule
from resonetics.sim.invariants import SafetyMonitor, SimViolation
from resonetics.sim.lease_client import LeaseClient
from resonetics.sim.machine_client import MachineClient
from resonetics.sim.machine_state import MachineHistory
from resonetics.sim.membership import MembershipChurn
from resonetics.sim.network import Network
from resonetics.sim.options import CLOCK_FACTOR_MAX, HEARTBEAT_TICKS_CHOICES, SimOptions
from resonetics.sim.trace import Trace
from resonetics.sim.watchers import SimWatchers

#: After faults stop, how long the cluster has at most to settle before every new client
#: operation must succeed (virtual ms), and how long before the end clients stop.
SETTLE_MS = 1_500
DRAIN_MS = 2_600
#: The window opens early once every node has applied to within this many entries of the
#: leader's commit index (clients keep writing while the runner looks).
SERVING_LAG_ENTRIES = 4
#: Events waiting in the queue at once, at most: more means messages breed messages
#: (a storm the code under test started) and the run would never end. A clean run
#: stays in the low hundreds (132 at most over seeds 0-4 with 9 clients).
EVENTS_PENDING_MAX = 2_000
#: In the drain, how often the run looks whether the cluster has settled (virtual ms),
#: and for how many of the longest election timeouts it must stay settled before the
#: run ends early: what is left of the drain would only be heartbeats. (It was 3; the
#: planted-bug catalogue catches the same seeds with 1, and 1.5 leaves a margin.)
QUIET_CHECK_MS = 50
QUIET_GRACE_TIMEOUTS = 1.5
#: Search steps the linearizability checker may spend per key in a run.
CHECK_STEPS_MAX = 500_000


#: Virtual ms at which watchers first subscribe (after the nodes have booted).
WATCHERS_START_MS = 30


class SimulationFailed(AssertionError):
    """A run broke a property; ``str()`` is the full report (seed, options, trace)."""


@dataclass(slots=True)
class RunResult:
    seed: int
    options: SimOptions
    virtual_ms: int = 0
    steps: int = 0
    elections: int = 0
    faults: int = 0
    messages: int = 0
    ops: int = 0
    ops_ok: int = 0
    verdict: str = "ok"
    failure: str | None = None
    trace: list[str] = field(default_factory=list)
    #: Fault and network counters by name (dropped, duplicated, blocked, partitions, ...).
    counters: dict[str, int] = field(default_factory=dict)
    #: Digest of the whole run (trace and final state): equal digests, equal runs
    #: ("" when the run was made with ``digest=False``, as a sweep's are).
    digest: str = ""
    #: What the run exercised, as "area: what" -> how many times (faults by kind, role
    #: changes, snapshot paths, membership changes); a sweep counts the runs with each
    #: above zero (``sim/sweep.py``). Keys whose count is 0 are present too, so a sweep
    #: can show what no run reached.
    coverage: dict[str, int] = field(default_factory=dict)
    #: Virtual ms at which the must-succeed window opened (see ``_World._settle``).
    window_ms: int = 0
    #: The leaders' heartbeat period the run had (ticks): the options' or drawn.
    heartbeat_ticks: int = 0

    @property
    def ok(self) -> bool:
        return self.failure is None

    def report(self) -> str:
        drawn = (
            ""
            if self.options.heartbeat_ticks
            else f", heartbeat every {self.heartbeat_ticks} tick(s)"
        )
        head = f"seed {self.seed} FAILED ({self.options.describe()}{drawn}): {self.failure}"
        replay = f"replay: resonetics sim --seed {self.seed} {_cli_flags(self.options)}"
        return "\n".join([head, replay, f"last {len(self.trace)} events:", *self.trace])

    def raise_for_failure(self) -> None:
        if self.failure is not None:
            raise SimulationFailed(self.report())


def _cli_flags(options: SimOptions) -> str:
    faults = ",".join(sorted(options.faults)) or "none"
    return (
        f"--nodes {options.nodes} --faults {faults} --time {options.fault_ms / 1000:g} "
        f"--clients {options.clients} --snapshot-entries {options.snapshot_entries}"
        + (f" --heartbeat-ticks {options.heartbeat_ticks}" if options.heartbeat_ticks else "")
        + (" --churn" if options.membership_churn else "")
        + (" --batch-writes" if options.batch_writes else "")
        + (" --adversary" if options.adversary else "")
        + (
            f" --append-entries-max {options.append_entries_max}"
            if options.append_entries_max
            else ""
        )
        + (f" --readers {options.readers}" if options.readers else "")
        + (f" --watchers {options.watchers}" if options.watchers else "")
        + (f" --lease-clients {options.lease_clients}" if options.lease_clients else "")
        + (" --transfer-lag" if options.transfer_lag else "")
        + (f" --scenario {options.scenario}" if options.scenario else "")
        + (f" --plant {options.plant}" if options.plant else "")
        + (f" --machine {options.machine}" if options.machine else "")
    )


class _World:
    """Everything one run is made of."""

    def __init__(self, seed: int, options: SimOptions, *, digest: bool = True) -> None:
        self.seed = seed
        self.options = options
        self.queue = EventQueue()
        #: Whether the run's digest is computed (``RunResult.digest``; a sweep skips it).
        self.digest = digest
        self.trace = Trace(digest=digest)
        self.monitor = SafetyMonitor()
        self.network = Network(self.queue, random.Random(f"{seed}/network"), self.trace)
        self.cluster = Cluster(seed, options, self.queue, self.network, self.trace, self.monitor)
        self.faults = FaultSchedule(self.cluster, random.Random(f"{seed}/faults"))
        self.churn = (
            MembershipChurn(self.cluster, random.Random(f"{seed}/membership"))
            if options.membership_churn
            else None
        )
        self.adversary = (
            Adversary(self.cluster, random.Random(f"{seed}/adversary"))
            if options.adversary
            else None
        )
        self.end_ms = options.fault_ms + options.quiet_ms
        #: The targeted fault scenario, when the run has one (``sim/scenarios.py``).
        self.scenario: scenarios.Figure8 | scenarios.Revote | None = None
        self.recorder = HistoryRecorder(clock=lambda: float(self.queue.now_ms))
        #: Virtual ms at which the run ended because the cluster had settled (0: at its end).
        self.ended_early_ms = 0
        #: Virtual ms at which the must-succeed window opened (``SETTLE_MS`` after the
        #: faults stopped, or earlier once the cluster served again; see ``_settle``).
        self.window_ms = options.fault_ms + SETTLE_MS
        self.workload = workload = Workload(
            values=itertools.count(1),
            pids=itertools.count(0),
            stop_ms=self.end_ms - DRAIN_MS,
            settle_ms=options.fault_ms + SETTLE_MS,
            recorder=self.recorder,
        )
        #: ``sim --machine``: the machine's ops as the clients saw them.
        self.machine_history: MachineHistory | None = None
        self.clients: list[SimClient]
        if options.machine:
            self.machine_history = MachineHistory()
            self.clients = [
                MachineClient(
                    f"c{i + 1}",
                    self.cluster,
                    random.Random(f"{seed}/client/{i}"),
                    workload,
                    load_factory(options.machine),
                    self.machine_history,
                )
                for i in range(options.clients)
            ]
        else:
            self.clients = [
                SimClient(f"c{i + 1}", self.cluster, random.Random(f"{seed}/client/{i}"), workload)
                for i in range(options.clients)
            ]
        #: Watchers of change streams, when the run has some (``sim/watchers.py``).
        self.watchers = (
            SimWatchers(self.cluster, seed, options.watchers) if options.watchers else None
        )
        self.watch_counts: dict[str, int] = {}
        self.clients += [
            SimClient(
                f"r{i + 1}",
                self.cluster,
                random.Random(f"{seed}/reader/{i}"),
                workload,
                reader=True,
            )
            for i in range(options.readers)
        ]
        #: Lease users (``sim/lease_client.py``), checked by ``sim/lease_checks.py``.
        self.lease_clients = [
            LeaseClient(
                f"l{i + 1}",
                self.cluster,
                random.Random(f"{seed}/lease/{i}"),
                self.end_ms - DRAIN_MS,
            )
            for i in range(options.lease_clients)
        ]

    def run(self) -> None:
        if self.watchers is not None:
            self.watchers.start(WATCHERS_START_MS, self.end_ms)
        for i, lease_client in enumerate(self.lease_clients):
            lease_client.start(60 + 11 * i)
        self.faults.install()
        if self.churn is not None:
            self.churn.install()
        if self.adversary is not None:
            self.adversary.install()
        if self.options.scenario:
            self.scenario = scenarios.install(self.options.scenario, self.cluster)
        for node in self.cluster.nodes.values():
            self.cluster.start(node)
        for i, client in enumerate(self.clients):
            client.start(50 + 7 * i)
        grace_ms = self._quiet_grace_ms()
        if grace_ms is None:
            self._run_until(self.end_ms)
            return
        self._settle()
        self._run_until(self.end_ms - DRAIN_MS)
        quiet_since: int | None = None
        now = self.queue.now_ms
        while now < self.end_ms:
            now = min(now + QUIET_CHECK_MS, self.end_ms)
            self._run_until(now)
            # Replicas are compared once, by the final check: comparing their states
            # every QUIET_CHECK_MS cost more than the rest of the drain's checks.
            if _liveness_problem(self, compare_replicas=False) is not None:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = now
            elif now - quiet_since >= grace_ms:
                self.ended_early_ms = now
                return

    def _settle(self) -> None:
        """Run until the cluster serves again after the faults (for one of the longest
        election timeouts), at most ``SETTLE_MS``; open the window there and move the
        rest of the run (the window's end, the drain, the end) earlier by what was saved."""
        self._run_until(self.options.fault_ms)
        latest = self.window_ms
        hold_ms = self._longest_timeout_ms()
        now, serving_since = self.queue.now_ms, None
        while now < latest:
            now = min(now + QUIET_CHECK_MS, latest)
            self._run_until(now)
            if not _serving(self):
                serving_since = None
            elif serving_since is None:
                serving_since = now
            elif now - serving_since >= hold_ms:
                break
        saved = latest - now
        self.window_ms = now
        self.workload.settle_ms -= saved
        self.workload.stop_ms -= saved
        self.end_ms -= saved

    def _longest_timeout_ms(self) -> int:
        """The longest election timeout a node may have (randomized, on a slow clock)."""
        return int(2 * self.options.election_ticks * self.options.tick_ms * CLOCK_FACTOR_MAX)

    def _run_until(self, until_ms: int) -> None:
        if not self.queue.run_until(until_ms, EVENTS_PENDING_MAX):
            raise SimViolation(
                f"message storm: {len(self.queue)} events pending at "
                f"{self.queue.now_ms} ms (more than {EVENTS_PENDING_MAX})"
            )

    def _quiet_grace_ms(self) -> int | None:
        """How long the cluster must stay settled in the drain before the run may end
        early (None: this run always runs to its end)."""
        if self.watchers is not None or self.lease_clients:
            return None
        return int(QUIET_GRACE_TIMEOUTS * self._longest_timeout_ms())


def run_seed(seed: int, options: SimOptions | None = None, *, digest: bool = True) -> RunResult:
    """Run one seed to its verdict; never raises for a failing run (see ``RunResult``).

    ``digest=False`` leaves ``RunResult.digest`` empty: nothing else changes, and a
    sweep, which compares no runs, saves the cost of hashing every event."""
    options = options or SimOptions()
    bugs = (planted.parse(options.plant),) if options.plant else ()
    with planted.switched_on(*bugs):
        return _run(seed, options, digest)


def _run(seed: int, options: SimOptions, digest: bool) -> RunResult:
    world = _World(seed, options, digest=digest)
    result = RunResult(seed, options)
    try:
        world.run()
        _final_checks(world, result)
    except SimViolation as exc:
        result.verdict, result.failure = "violation", str(exc)
    except (Exception, AssertionError) as exc:  # the code under test crashed: report it
        result.verdict = "crash"
        result.failure = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
    _count(world, result)
    if result.failure is not None:
        result.trace = world.trace.lines()
    return result


def _count(world: _World, result: RunResult) -> None:
    result.virtual_ms = world.queue.now_ms
    result.window_ms = world.window_ms
    result.heartbeat_ticks = world.cluster.heartbeat_ticks
    result.steps = world.queue.steps
    result.elections = world.monitor.elections
    result.faults = world.faults.stats.total
    result.messages = world.network.stats.sent
    result.ops_ok = sum(c.ops_ok for c in world.clients)
    result.digest = _digest(world) if world.digest else ""
    net, faults = world.network.stats, world.faults.stats
    events = world.recorder.events()  # a copy of every event: taken once
    result.counters = {
        "sent": net.sent,
        "dropped": net.dropped,
        "duplicated": net.duplicated,
        "blocked": net.blocked,
        "delayed": net.delayed,
        "partitions": faults.partitions,
        "crashes": faults.crashes,
        "mid_op_crashes": faults.mid_op_crashes,
        "power_cuts": sum(n.crashes for n in world.cluster.nodes.values()),
        "restarts": faults.restarts,
        "clock_changes": faults.clock_changes,
        "long_downs": faults.long_downs,
        "snapshots": sum(n.snapshot_counts()[0] for n in world.cluster.nodes.values()),
        "snapshots_installed": sum(n.snapshot_counts()[1] for n in world.cluster.nodes.values()),
        "info_ops": sum(1 for e in events if e["type"] == "info"),
        **_txn_counts(events),
    }
    loop_steps: Counter[str] = Counter()
    for node in world.cluster.nodes.values():
        loop_steps.update(node.loop_step_counts())
    for name, count in sorted(loop_steps.items()):
        result.counters[f"loop: {name}"] = count
    for reason, count in sorted(world.cluster.gate_drops.items()):
        result.counters[f"gate_drop: {reason}"] = count
    if world.adversary is not None:
        adversary = world.adversary.stats
        for flavor, count in sorted(adversary.forged.items()):
            result.counters[f"forged_{flavor}"] = count
        result.counters["forged_admitted"] = adversary.admitted
        result.counters["replays"] = adversary.replays
    result.counters.update(world.watch_counts)
    if world.scenario is not None:
        result.counters["scenario_rounds"] = world.scenario.rounds
    if world.churn is not None:
        churn = world.churn.stats
        result.counters["transfers"] = churn.transfers
        result.counters["config_changes_committed"] = churn.changes_committed
        result.counters["config_changes_refused"] = churn.refused
    result.coverage = _coverage(world, result.counters)


def _txn_counts(events: list[dict[str, Any]]) -> dict[str, int]:
    """Completed transactions by the branch they took (coverage of the txn model)."""
    done = [e for e in events if e["f"] == "txn" and e["type"] == "ok"]
    took_then = sum(1 for e in done if e["value"]["succeeded"])
    return {"txn_then": took_then, "txn_else": len(done) - took_then}


#: Role changes a sweep reports even when no run saw them ("old->new", ``Role`` values).
ROLE_CHANGES = (
    "follower->pre-candidate",
    "pre-candidate->candidate",
    "pre-candidate->follower",
    "candidate->leader",
    "candidate->follower",
    "candidate->pre-candidate",
    "leader->follower",
    "follower->learner",
    "learner->follower",
)


def _coverage(world: _World, counters: dict[str, int]) -> dict[str, int]:
    """What this run exercised (``RunResult.coverage``), from the counters the world kept."""
    cluster, churn, adversary = world.cluster, world.churn, world.adversary
    kinds = cluster.sent_kinds
    cov = {
        "fault: drop": counters["dropped"],
        "fault: delay": counters["delayed"],
        "fault: dup": counters["duplicated"],
        "fault: partition": counters["partitions"],
        "fault: partition (message blocked)": counters["blocked"],
        "fault: crash": counters["crashes"],
        "fault: crash mid-operation": counters["mid_op_crashes"],
        "fault: crash during recovery": cluster.recovery_crashes,
        "fault: restart": counters["restarts"],
        "fault: clock": counters["clock_changes"],
        "fault: longdown": counters["long_downs"],
        "fault: adversary forged": sum(adversary.stats.forged.values()) if adversary else 0,
        "fault: adversary replay": adversary.stats.replays if adversary else 0,
        "role: elected leader": world.monitor.elections,
        "role: transfer (TimeoutNow sent)": kinds[TimeoutNow],
        "apply: on the ack that committed it (live nodes)": sum(
            node.driver.stats.entries_applied_on_ack
            for node in cluster.nodes.values()
            if node.driver is not None
        ),
        "snapshot: taken": counters["snapshots"],
        "snapshot: sent (InstallSnapshot chunk)": kinds[InstallSnapshot],
        "snapshot: installed": counters["snapshots_installed"],
        "snapshot: restored at restart": cluster.restored_from_snapshot,
        "storage: restart took log lines on the log's seal": cluster.loaded_on_seal,
        "membership: transfer requested": churn.stats.transfers if churn else 0,
        "membership: change committed": churn.stats.changes_committed if churn else 0,
        "membership: change refused": churn.stats.refused if churn else 0,
        "run: ended early, settled in the drain": 1 if world.ended_early_ms else 0,
        "run: window opened early, cluster serving": (
            1 if world.window_ms < world.options.fault_ms + SETTLE_MS else 0
        ),
        **{
            f"run: heartbeat every {ticks} tick(s)": int(cluster.heartbeat_ticks == ticks)
            for ticks in HEARTBEAT_TICKS_CHOICES
        },
        "client: indeterminate op": counters["info_ops"],
        "client: txn took then": counters["txn_then"],
        "client: txn took else": counters["txn_else"],
    }
    for change in ROLE_CHANGES:
        cov[f"role: {change}"] = 0
    for change, count in cluster.role_changes.items():
        cov[f"role: {change}"] = count
    for reason, count in cluster.gate_drops.items():
        cov[f"gate drop: {reason}"] = count
    return cov


def _digest(world: _World) -> str:
    h = hashlib.sha256(f"{world.trace.count}/{world.trace.digest}".encode())
    for node in world.cluster.nodes.values():
        if node.driver is not None:
            core = node.driver.core
            h.update(
                f"{node.node_id}:{core.term}:{core.commit_index}:{core.hash_at(core.last_index)}".encode()
            )
    h.update("".join(line + "\n" for line in world.recorder.lines()).encode())
    if world.machine_history is not None:
        h.update(repr(world.machine_history.operations).encode())
    return h.hexdigest()


def _final_checks(world: _World, result: RunResult) -> None:
    if world.adversary is not None and world.adversary.stats.admitted:
        raise SimViolation(
            f"peer gate: {world.adversary.stats.admitted} forged message(s) were stepped"
        )
    _check_liveness(world)
    cluster = world.cluster
    indexes = [r.index for r in world.monitor.receipts]
    final = {nid: _hashes_in_log(world, node, indexes) for nid, node in cluster.nodes.items()}
    world.monitor.check_receipts(final)
    world.monitor.leases.check_no_early_expiry()
    _check_final_logs(cluster)
    if world.watchers is not None:
        world.watch_counts = world.watchers.check(world.monitor.entries)
    if world.machine_history is not None:
        _check_machine_history(world, result)
        return
    ops = world.recorder.operations()
    result.ops = len(ops)
    checked = check_history(ops, steps_max=CHECK_STEPS_MAX)
    if checked.verdict is Verdict.NOT_LINEARIZABLE:
        lines = [op.describe() for key in checked.violations for op in key.counterexample]
        raise SimViolation("history is not linearizable:\n  " + "\n  ".join(lines))
    result.verdict = checked.verdict.value


def _check_machine_history(world: _World, result: RunResult) -> None:
    """``sim --machine``: the clients' history against the machine's ``model``, if any
    (without one, the run checks the replicas' agreement and liveness only)."""
    assert world.machine_history is not None
    ops = world.machine_history.operations
    result.ops = len(ops)
    model = getattr(load_factory(world.options.machine), "model", None)
    if not callable(model):
        result.verdict = "ok (no model: states compared)"
        return
    checked = check_model(ops, model, steps_max=CHECK_STEPS_MAX)
    if checked.verdict is ModelVerdict.NOT_LINEARIZABLE:
        lines = [op.describe() for op in checked.stuck]
        raise SimViolation(
            "history is not linearizable against the machine's model; no order explains:\n  "
            + "\n  ".join(lines)
        )
    result.verdict = checked.verdict.value


def _hashes_in_log(world: _World, node: SimNode, indexes: list[int]) -> dict[int, str | None]:
    """The node's hash at each of ``indexes``; a compacted index counts as held when the
    node's anchor (the chain value that covers it) is the committed one."""
    assert node.driver is not None
    core = node.driver.core
    anchor = core.anchor
    committed = world.monitor.committed
    held = committed.get(anchor.index) == anchor.hash
    return {
        index: (committed.get(index) if held else None)
        if index < anchor.index
        else core.hash_at(index)
        for index in indexes
    }


def _check_final_logs(cluster: Cluster) -> None:
    """The whole-log oracle of ``check.invariants`` over every final log, as a cross-check
    of the incremental checks (STYLE habit 11)."""
    logs = {
        nid: [
            (anchor.index, anchor.term, anchor.hash),
            *n.driver.core.positions_from(anchor.index + 1),
        ]
        for nid, n in cluster.nodes.items()
        if n.driver is not None
        for anchor in (n.driver.core.anchor,)
    }
    problems = log_matching(logs)
    if problems:
        raise SimViolation(problems[0])


def _check_liveness(world: _World) -> None:
    """After the quiet phase: one leader everyone follows, everything committed and applied."""
    problem = _liveness_problem(world)
    if problem is not None:
        raise SimViolation(problem)
    late = [msg for c in world.clients for msg in c.late_failures]
    if late:
        raise SimViolation("liveness: " + late[0])
    if not any(c.ops_ok for c in world.clients) and world.clients:
        raise SimViolation("liveness: no client operation ever succeeded")


def _serving(world: _World) -> bool:
    """Whether the cluster serves: every node up, following one leader in its term, and
    applied to within ``SERVING_LAG_ENTRIES`` of the leader's commit index."""
    cluster = world.cluster
    if not all(node.up for node in cluster.nodes.values()):
        return False
    leader = cluster.leader()
    if leader is None or leader.driver is None:
        return False
    lcore = leader.driver.core
    for node in cluster.nodes.values():
        if node.driver is None:
            return False
        core = node.driver.core
        if core.term != lcore.term:
            return False
        if core.role is not Role.LEADER and core.leader_id != leader.node_id:
            return False
        if core.applied + SERVING_LAG_ENTRIES < lcore.commit_index:
            return False
    return True


def _liveness_problem(world: _World, *, compare_replicas: bool = True) -> str | None:
    """What keeps the cluster from being settled now (None: settled): a node down, no
    single leader everyone follows, something unapplied, replicas that differ (unless
    ``compare_replicas`` is False), or a client still waiting for an answer."""
    cluster = world.cluster
    busy = [c.name for c in world.clients if not c.idle]
    if busy:
        return f"liveness: clients {busy} still wait for an answer at the end"
    down = [nid for nid, n in cluster.nodes.items() if not n.up]
    if down:
        return f"liveness: nodes {down} are still down after the quiet phase"
    leader = cluster.leader()
    if leader is None or leader.driver is None:
        return "liveness: no leader after the quiet phase"
    lcore = leader.driver.core
    for nid, node in cluster.nodes.items():
        assert node.driver is not None
        core = node.driver.core
        if core.term != lcore.term or (
            core.role is not Role.LEADER and core.leader_id != leader.node_id
        ):
            return (
                f"liveness: {nid} is at term {core.term} following {core.leader_id}, "
                f"leader is {leader.node_id} at term {lcore.term}"
            )
        if core.commit_index != lcore.last_index or core.applied != core.commit_index:
            return (
                f"liveness: {nid} has commit {core.commit_index} applied {core.applied}, "
                f"the leader's log ends at {lcore.last_index}"
            )
    if not compare_replicas:
        return None
    states = {nid: n.driver.machine.snapshot() for nid, n in cluster.nodes.items() if n.driver}
    if len(set(states.values())) != 1:
        return f"replicas differ after applying the same log: {sorted(states)}"
    return None


__all__ = ["ROLE_CHANGES", "RunResult", "SimulationFailed", "run_seed"]
