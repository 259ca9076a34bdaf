"""What one simulated run is made of: everything but the seed.

A run is reproducible bit for bit from ``(seed, SimOptions)``; the options name
which fault kinds are switched on and how long the faulty and quiet phases
last. Probabilities and durations inside a fault kind are drawn from the seed
(``faults.py``), so a sweep over seeds also sweeps over fault intensities.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from resonetics import planted

#: Every fault kind the simulator can inject, as named on the command line.
FAULT_KINDS: tuple[str, ...] = (
    "drop",
    "delay",
    "dup",
    "partition",
    "crash",
    "clock",
    "longdown",
)
#: Targeted fault scenarios (``sim/scenarios.py`` implements them).
SCENARIOS: tuple[str, ...] = ("figure8", "revote")
#: Timer speed range for the "clock" fault (multiples of the base tick period).
CLOCK_FACTOR_MIN = 0.7
CLOCK_FACTOR_MAX = 1.5
#: The largest difference in tick rate the "clock" fault makes between two nodes: the
#: simulated nodes' lease is sized for it, as a server's is for LEASE_CLOCK_DRIFT_MAX.
CLOCK_DRIFT_MAX = 1 - CLOCK_FACTOR_MIN / CLOCK_FACTOR_MAX

#: Heartbeat periods (ticks) a run draws from when its options leave it at 0: every
#: second tick, the server's default (``server/config.py``), and every third, a leader
#: whose followers come closer to their election timeout, so delays and losses start
#: more elections. (The old draw, every tick or every second, caught as many planted
#: bugs in all, and every tick costs about a fifth more CPU per seed than every second:
#: docs/benchmarks.md.)
HEARTBEAT_TICKS_CHOICES: tuple[int, ...] = (2, 3)

#: The quiet phase must hold the settle time, a window of client operations that must
#: all succeed, and the clients' drain time (see ``runner.py``).
QUIET_MS_MIN = 4_500


@dataclass(frozen=True, slots=True)
class SimOptions:
    """The knobs of a run; the defaults are the CI sweep's."""

    nodes: int = 3
    faults: frozenset[str] = field(default_factory=lambda: frozenset(FAULT_KINDS))
    #: Length of the faulty phase (virtual milliseconds).
    fault_ms: int = 4_000
    #: Length of the quiet phase that follows: no faults, liveness is checked at its end.
    quiet_ms: int = 5_000
    clients: int = 3
    #: Clients that only read (every consistency), besides ``clients``.
    readers: int = 0
    #: Watchers following change streams (``sim/watchers.py``), checked at the end.
    watchers: int = 0
    #: Clients that grant leases, attach keys, keep some alive and let some expire
    #: (``sim/lease_client.py``), besides ``clients``.
    lease_clients: int = 0
    keys: int = 3
    #: Base tick period of a node's timer (virtual milliseconds).
    tick_ms: int = 10
    election_ticks: int = 10
    #: Ticks between a leader's heartbeats; 0: drawn from the seed among
    #: ``HEARTBEAT_TICKS_CHOICES``, so a sweep runs both the server's default and a
    #: slower leader (a heartbeat round is most of a calm run's events).
    heartbeat_ticks: int = 0
    #: Applied entries between snapshots (0: never), entries kept behind one, and the
    #: InstallSnapshot chunk size: small, so compaction and chunked transfer happen often.
    snapshot_entries: int = 16
    snapshot_trailing: int = 2
    snapshot_chunk_bytes: int = 512
    #: Mix leadership transfers and voter removals/re-adds into the faulty phase
    #: (``sim/membership.py``); every node is a voter again in the quiet phase.
    membership_churn: bool = False
    #: Propose client writes at the node's next input instead of at once, so that
    #: writes from several clients share CLIENT_BATCH entries, as on a loaded server.
    batch_writes: bool = False
    #: An attacker on the network during the faulty phase: forged peer messages from
    #: strangers, spoofing members and a removed node, and replays (``sim/adversary.py``).
    adversary: bool = False
    #: Entries per AppendEntries at most (0: the shipped limit). At 1, a new leader's
    #: NOOP travels apart from the older entries before it, so a follower can ack those
    #: alone: the partial replication Raft's Figure 8 needs.
    append_entries_max: int = 0
    #: With ``membership_churn``: the churn only transfers leadership, and during each
    #: transfer the target's messages to the old leader are held back for a while (a
    #: one-way partition), so the old leader hears of the new term late and must stop
    #: serving lease reads on its own.
    transfer_lag: bool = False
    #: A targeted fault scenario run beside the fault schedule (``sim/scenarios.py``),
    #: by name ("figure8"); "" for none.
    scenario: str = ""
    #: A planted bug switched on for the run (``planted.py``), by name; "" for none.
    plant: str = ""
    #: ``package.module:factory`` of the machine the nodes replicate (``sim --machine``);
    #: "" for the key-value store.
    machine: str = ""

    def __post_init__(self) -> None:
        if self.plant:
            planted.parse(self.plant)  # ValueError naming the known bugs
        if self.scenario and self.scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {self.scenario!r}; known: {', '.join(SCENARIOS)}")
        if self.append_entries_max < 0:
            raise ValueError("append_entries_max must be >= 0")
        unknown = sorted(self.faults - set(FAULT_KINDS))
        if unknown:
            raise ValueError(f"unknown fault kind(s): {', '.join(unknown)}")
        if self.nodes < 1:
            raise ValueError("need at least one node")
        if self.machine and self.readers:
            raise ValueError("readers issue key-value reads: not with a machine (use clients)")
        if not 0 <= self.heartbeat_ticks < self.election_ticks:
            raise ValueError("heartbeat_ticks must be 0 (drawn) or 1 up to election_ticks - 1")
        if self.quiet_ms < QUIET_MS_MIN:
            raise ValueError(f"the quiet phase needs at least {QUIET_MS_MIN} ms")

    def describe(self) -> str:
        faults = ",".join(k for k in FAULT_KINDS if k in self.faults) or "none"
        return (
            f"nodes={self.nodes} faults={faults} fault_ms={self.fault_ms} "
            f"quiet_ms={self.quiet_ms} clients={self.clients} keys={self.keys} "
            f"snapshot_entries={self.snapshot_entries}"
            + (f" heartbeat_ticks={self.heartbeat_ticks}" if self.heartbeat_ticks else "")
            + (" churn" if self.membership_churn else "")
            + (" batch_writes" if self.batch_writes else "")
            + (" adversary" if self.adversary else "")
            + (f" append_entries_max={self.append_entries_max}" if self.append_entries_max else "")
            + (f" readers={self.readers}" if self.readers else "")
            + (f" watchers={self.watchers}" if self.watchers else "")
            + (" transfer_lag" if self.transfer_lag else "")
            + (f" scenario={self.scenario}" if self.scenario else "")
            + (f" plant={self.plant}" if self.plant else "")
            + (f" machine={self.machine}" if self.machine else "")
        )


def heartbeat_ticks_for(seed: int, options: SimOptions) -> int:
    """The leaders' heartbeat period seed ``seed`` runs with: the options', or drawn."""
    if options.heartbeat_ticks:
        return options.heartbeat_ticks
    return random.Random(f"{seed}/heartbeat").choice(HEARTBEAT_TICKS_CHOICES)


def parse_faults(text: str) -> frozenset[str]:
    """``"drop,delay"`` / ``"all"`` / ``"none"`` -> a set of fault kinds."""
    text = text.strip().lower()
    if text == "all":
        return frozenset(FAULT_KINDS)
    if text in ("none", ""):
        return frozenset()
    kinds = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(kinds - set(FAULT_KINDS))
    if unknown:
        raise ValueError(f"unknown fault kind(s): {', '.join(unknown)}")
    return kinds


__all__ = [
    "CLOCK_DRIFT_MAX",
    "CLOCK_FACTOR_MAX",
    "CLOCK_FACTOR_MIN",
    "FAULT_KINDS",
    "HEARTBEAT_TICKS_CHOICES",
    "QUIET_MS_MIN",
    "SCENARIOS",
    "SimOptions",
    "heartbeat_ticks_for",
    "parse_faults",
]
