"""The CI seed sweep: a fixed, bounded set of seeds over every fault type, 3 and 5 nodes.

Every run must pass all safety checks after every step, the liveness check after
its quiet phase, and a linearizable verdict on its client history. A failing
seed is a bug: fix it, then keep the seed in ``test_regressions.py``.
"""

from __future__ import annotations

import pytest

from resonetics.sim.options import SimOptions, parse_faults
from resonetics.sim.runner import run_seed

#: (fault kinds, nodes, seeds): the non-slow sweep, a few seconds in all.
QUICK = [
    ("all", 3, range(0, 6)),
    ("all", 5, range(0, 2)),
]
#: The full CI sweep (about a minute and a half on two cores).
FULL = [
    ("all", 3, range(6, 60)),
    ("all", 5, range(2, 20)),
    ("drop,delay,dup", 3, range(100, 108)),
    ("partition,clock", 3, range(200, 208)),
    ("crash", 3, range(300, 308)),
    ("crash,partition,delay", 5, range(400, 404)),
    ("drop,dup,clock,crash", 5, range(500, 504)),
]


def _cases(table: list[tuple[str, int, range]]) -> list[tuple[str, int, int]]:
    return [(faults, nodes, seed) for faults, nodes, seeds in table for seed in seeds]


def _run(faults: str, nodes: int, seed: int) -> None:
    result = run_seed(seed, SimOptions(nodes=nodes, faults=parse_faults(faults), fault_ms=3_000))
    result.raise_for_failure()
    assert result.verdict == "linearizable", result.report()
    assert result.elections >= 1
    assert result.ops > 0


@pytest.mark.parametrize(("faults", "nodes", "seed"), _cases(QUICK))
def test_quick_sweep(faults: str, nodes: int, seed: int) -> None:
    _run(faults, nodes, seed)


@pytest.mark.slow
@pytest.mark.parametrize(("faults", "nodes", "seed"), _cases(FULL))
def test_full_sweep(faults: str, nodes: int, seed: int) -> None:
    _run(faults, nodes, seed)


#: Writes proposed at each node's next input, so concurrent clients share CLIENT_BATCH
#: entries as on a loaded server (seeds × nodes × clients).
BATCHED = [(3, range(600, 616), 6), (5, range(700, 706), 8)]


@pytest.mark.parametrize(
    ("nodes", "seed", "clients"),
    [(nodes, seed, clients) for nodes, seeds, clients in BATCHED for seed in seeds],
)
def test_batched_writes_sweep(nodes: int, seed: int, clients: int) -> None:
    options = SimOptions(nodes=nodes, fault_ms=3_000, clients=clients, batch_writes=True)
    result = run_seed(seed, options)
    result.raise_for_failure()
    assert result.verdict == "linearizable", result.report()
    assert result.ops > 0
