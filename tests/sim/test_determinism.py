"""A run is a function of (seed, options): same inputs, same run, bit for bit."""

from __future__ import annotations

from resonetics.sim.options import SimOptions
from resonetics.sim.runner import run_seed
from resonetics.sim.trace import Trace

SHORT = SimOptions(fault_ms=1_500, quiet_ms=4_500)


def test_same_seed_gives_an_identical_run() -> None:
    first, second = run_seed(11, SHORT), run_seed(11, SHORT)
    assert first.ok and second.ok
    assert first.digest == second.digest
    assert (first.steps, first.messages, first.ops, first.counters) == (
        second.steps,
        second.messages,
        second.ops,
        second.counters,
    )


def test_different_seeds_give_different_runs() -> None:
    digests = {run_seed(seed, SHORT).digest for seed in (1, 2, 3)}
    assert len(digests) == 3


def test_options_are_part_of_the_run() -> None:
    three = run_seed(5, SHORT)
    five = run_seed(5, SimOptions(nodes=5, fault_ms=1_500, quiet_ms=4_500))
    assert three.digest != five.digest


def test_trace_keeps_only_the_last_events_but_digests_all() -> None:
    a, b = Trace(events_max=3), Trace(events_max=3)
    for i in range(10):
        a.add(i, "tick", "n1")
        b.add(i, "tick", "n1" if i else "n2")
    assert len(a.lines()) == 3
    assert a.lines()[0].split()[0] == "7"
    assert a.lines() == b.lines()
    assert a.digest != b.digest
