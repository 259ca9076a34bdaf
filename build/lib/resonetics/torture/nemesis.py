"""The nemesis: faults injected into a running cluster on a schedule drawn from the seed.

Theory of operation
-------------------
The schedule is a sequence of rounds; each round is a shuffled permutation of
the enabled fault kinds, so even a short run meets every kind. One fault is
active at a time: start it, hold it for a while, undo it, stay quiet for a
while. Every random draw comes from one ``random.Random(seed)`` and the draws
do not depend on what the cluster does, so a seed always gives the same fault
sequence (the processes' own timing is, of course, not replayable). When a
fault prefers the leader as its victim, the victim is still drawn at random
first and only then replaced by the current leader, to keep the draws fixed.

Every start and end goes to the fault log (``nemesis.jsonl``) with the same
monotonic clock as the history, so the two can be read side by side.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from resonetics.localcluster import LocalCluster
from resonetics.torture.corrupt import TEAR_KINDS, tear_tail
from resonetics.torture.proxy import Pair, ProxyMesh, split_pairs

#: Faults on processes and faults on the network: one of each may be active together.
PROCESS_FAULTS: frozenset[str] = frozenset({"kill", "pause", "corrupt"})
FAULT_KINDS: tuple[str, ...] = (
    "kill",
    "pause",
    "isolate",
    "majority",
    "bridge",
    "one_way",
    "delay",
    "corrupt",
)


@dataclass
class NemesisOptions:
    faults: tuple[str, ...] = FAULT_KINDS
    hold_s: tuple[float, float] = (2.0, 5.0)
    quiet_s: tuple[float, float] = (1.0, 3.0)
    delay_s: tuple[float, float] = (0.02, 0.2)
    #: Chance that a fault gets a partner of the other family (process / network) at once.
    overlap_p: float = 0.3


@dataclass
class Nemesis:
    cluster: LocalCluster
    mesh: ProxyMesh
    rng: random.Random
    options: NemesisOptions
    #: The node currently believed to lead (from the monitor), or None.
    leader: Callable[[], str | None] = lambda: None
    log: list[dict[str, Any]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    #: Nodes the nemesis stopped on purpose (killed and not yet restarted).
    down: set[str] = field(default_factory=set)
    paused: set[str] = field(default_factory=set)

    @property
    def node_ids(self) -> list[str]:
        return sorted(self.cluster.nodes)

    async def run(self) -> None:
        """Inject faults until cancelled; always leaves the cluster healed."""
        try:
            while True:
                kinds = list(self.options.faults)
                self.rng.shuffle(kinds)
                for kind in kinds:
                    await asyncio.sleep(self.rng.uniform(*self.options.quiet_s))
                    hold = self.rng.uniform(*self.options.hold_s)
                    undos = [self._start(kind)]
                    partner = self._partner(kind)
                    if partner is not None:
                        undos.append(self._start(partner))
                    try:
                        await asyncio.sleep(hold)
                    finally:
                        for undo in reversed(undos):
                            undo()
        finally:
            self.heal_all()

    def heal_all(self) -> None:
        """Heal the network, resume paused nodes, restart killed ones."""
        self.mesh.heal()
        for node in sorted(self.paused):
            self._resume(node)
        for node in sorted(self.down):
            self._restart(node)
        self.record("heal_all", "end")

    def record(self, fault: str, phase: str, **details: Any) -> None:
        self.log.append({"time": time.monotonic(), "fault": fault, "phase": phase, **details})

    def _partner(self, kind: str) -> str | None:
        """A fault of the other family to run alongside ``kind``, drawn from the seed."""
        overlap = self.rng.random() < self.options.overlap_p
        family = kind in PROCESS_FAULTS
        others = sorted(k for k in self.options.faults if (k in PROCESS_FAULTS) != family)
        pick = self.rng.choice(others) if others else None
        return pick if overlap else None

    # --- one fault ------------------------------------------------------------------------
    def _start(self, kind: str) -> Callable[[], None]:
        self.counts[kind] += 1
        victim = self.rng.choice(self.node_ids)
        if self.rng.random() < 0.5:
            victim = self.leader() or victim
        starters: dict[str, Callable[[str], Callable[[], None]]] = {
            "kill": self._kill,
            "pause": self._pause,
            "isolate": self._isolate,
            "majority": self._majority,
            "bridge": self._bridge,
            "one_way": self._one_way,
            "delay": self._delay,
            "corrupt": self._corrupt,
        }
        return starters[kind](victim)

    def _kill(self, victim: str) -> Callable[[], None]:
        self.down.add(victim)
        self.cluster.kill_node(victim)
        self.record("kill", "start", nodes=[victim])

        def undo() -> None:
            self._restart(victim)
            self.record("kill", "end", nodes=[victim])

        return undo

    def _corrupt(self, victim: str) -> Callable[[], None]:
        kind = self.rng.choice(TEAR_KINDS)
        seed = self.rng.random()
        self.down.add(victim)
        self.cluster.kill_node(victim)
        log_path = self.cluster.data_dir / victim / "log.jsonl"
        tear = tear_tail(log_path, kind, random.Random(seed))
        self.record(
            "corrupt", "start", nodes=[victim], tear=kind, size_before=tear.size_before,
            bytes_added=tear.bytes_added,
        )  # fmt: skip

        def undo() -> None:
            self._restart(victim)
            self.record("corrupt", "end", nodes=[victim])

        return undo

    def _pause(self, victim: str) -> Callable[[], None]:
        self.paused.add(victim)
        self.cluster.signal_node(victim, signal.SIGSTOP)
        self.record("pause", "start", nodes=[victim])

        def undo() -> None:
            self._resume(victim)
            self.record("pause", "end", nodes=[victim])

        return undo

    def _isolate(self, victim: str) -> Callable[[], None]:
        others = {n for n in self.node_ids if n != victim}
        return self._cut("isolate", split_pairs([{victim}, others]), nodes=[victim])

    def _majority(self, victim: str) -> Callable[[], None]:
        ids = self.node_ids
        self.rng.shuffle(ids)
        minority = set(ids[: len(ids) // 2])
        majority = set(ids) - minority
        pairs = split_pairs([minority, majority])
        return self._cut("majority", pairs, minority=sorted(minority), majority=sorted(majority))

    def _bridge(self, victim: str) -> Callable[[], None]:
        others = [n for n in self.node_ids if n != victim]
        self.rng.shuffle(others)
        half = len(others) // 2
        left, right = {victim, *others[:half]}, {victim, *others[half:]}
        pairs = split_pairs([left, right])
        return self._cut("bridge", pairs, bridge=victim, sides=[sorted(left), sorted(right)])

    def _one_way(self, victim: str) -> Callable[[], None]:
        others = [n for n in self.node_ids if n != victim]
        inbound = self.rng.random() < 0.5
        if self.rng.random() < 0.5:  # one link only
            others = [self.rng.choice(others)]
        pairs: list[Pair] = [(o, victim) if inbound else (victim, o) for o in others]
        return self._cut("one_way", pairs, nodes=[victim], inbound=inbound)

    def _cut(self, kind: str, pairs: list[Pair], **details: Any) -> Callable[[], None]:
        self.mesh.cut(pairs)
        self.record(kind, "start", pairs=[list(p) for p in pairs], **details)

        def undo() -> None:
            self.mesh.heal()
            self.record(kind, "end")

        return undo

    def _delay(self, victim: str) -> Callable[[], None]:
        delay_s = self.rng.uniform(*self.options.delay_s)
        pairs = sorted(self.mesh.links)
        if self.rng.random() < 0.5:  # only the links touching one node
            pairs = [p for p in pairs if victim in p]
        self.mesh.delay(pairs, delay_s)
        self.record("delay", "start", delay_s=round(delay_s, 3), pairs=[list(p) for p in pairs])

        def undo() -> None:
            self.mesh.heal()
            self.record("delay", "end")

        return undo

    # --- process control --------------------------------------------------------------------
    def _restart(self, node: str) -> None:
        self.cluster.start_node(node)
        self.down.discard(node)

    def _resume(self, node: str) -> None:
        self.cluster.signal_node(node, signal.SIGCONT)
        self.paused.discard(node)


__all__ = ["FAULT_KINDS", "PROCESS_FAULTS", "Nemesis", "NemesisOptions"]
