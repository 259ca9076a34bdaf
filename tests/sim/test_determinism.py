"""A run is a function of (seed, options): same inputs, same run, bit for bit."""

from __future__ import annotations

import zlib

import pytest

from resonetics.sim.options import SimOptions
from resonetics.sim.runner import run_seed
from resonetics.sim.trace import FOLD_EVENTS, Trace

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


def test_a_run_without_its_digest_is_the_same_run() -> None:
    """Sweeps skip the digest (``digest=False``): that changes what is reported, not the run."""
    full, bare = run_seed(11, SHORT), run_seed(11, SHORT, digest=False)
    assert full.digest and bare.digest == ""
    assert (full.steps, full.messages, full.ops, full.verdict, full.counters) == (
        bare.steps,
        bare.messages,
        bare.ops,
        bare.verdict,
        bare.counters,
    )


def test_a_trace_without_a_digest_keeps_its_tail_and_refuses_a_digest() -> None:
    trace = Trace(events_max=3, digest=False)
    for i in range(FOLD_EVENTS + 5):
        trace.add(i, "tick", "n1")
    assert trace.count == FOLD_EVENTS + 5
    assert [line.split()[0] for line in trace.lines()] == [str(FOLD_EVENTS + i) for i in (2, 3, 4)]
    with pytest.raises(ValueError, match="no digest"):
        _ = trace.digest


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


def test_trace_digest_folded_in_batches_is_the_crc_of_every_event() -> None:
    """Events are folded into the digest in batches (``FOLD_EVENTS``); the digest is
    still the CRC of every event's key in order, and the report keeps the last ones."""
    trace = Trace(events_max=5)
    keys = []
    for i in range(2 * FOLD_EVENTS + 7):
        if i % 3:
            trace.add(i, "send", object())
            keys.append(f"{i}send")
        else:
            trace.add(i, "crash", "n1", f"why{i}")
            keys.append(f"{i}crashn1|why{i}")
    assert trace.count == len(keys)
    assert trace.digest == zlib.crc32("".join(keys).encode())
    lines = trace.lines()
    assert len(lines) == 5
    assert lines[-1].split()[0] == str(len(keys) - 1)
    trace.add(10**6, "tick", "n2")
    assert trace.count == len(keys) + 1
    assert trace.lines()[-1].split()[0] == str(10**6)
