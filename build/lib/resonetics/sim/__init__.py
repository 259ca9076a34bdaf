"""sim layer: a deterministic simulator of whole clusters (DESIGN §2, §6).

In the spirit of FoundationDB's simulation and TigerBeetle's VOPR: N nodes and a
few clients run in one process on a virtual clock, every chance drawn from one
seed, over a network that drops, delays, duplicates, reorders and partitions,
disks that lose unsynced bytes and tear writes, nodes that crash mid-operation
and restart, and timers that run slow or fast. The nodes are the shipped
``NodeDriver`` over ``FileNodeStorage`` on a ``MemoryFileSystem``. Raft's
safety properties are checked after every step, liveness after a quiet phase,
and the client history by the linearizability checker.

``run_seed(seed, SimOptions(...))`` runs one seed and returns a ``RunResult``;
``resonetics sim --seed N`` replays it from the command line.

Modules: ``clock`` (event queue), ``network`` (faulty network), ``faults``
(fault schedule), ``cluster`` (nodes, disks, hosts), ``observed`` (storage and
state machine observers), ``client`` (simulated clients), ``invariants``
(incremental safety checks), ``trace`` (the last events), ``runner`` (a run
and its verdict), ``options``.
"""

from resonetics.sim.invariants import SafetyMonitor, SimViolation
from resonetics.sim.options import FAULT_KINDS, SimOptions, parse_faults
from resonetics.sim.runner import RunResult, SimulationFailed, run_seed

__all__ = [
    "FAULT_KINDS",
    "RunResult",
    "SafetyMonitor",
    "SimOptions",
    "SimViolation",
    "SimulationFailed",
    "parse_faults",
    "run_seed",
]
