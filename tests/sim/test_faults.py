"""Each fault kind, switched on alone, is really injected, and the run still passes."""

from __future__ import annotations

import pytest

from resonetics.sim.options import FAULT_KINDS, SimOptions, parse_faults
from resonetics.sim.runner import run_seed

#: fault kind -> counters that must be positive when it is on.
EVIDENCE = {
    "drop": ("dropped",),
    "delay": ("delayed",),
    "dup": ("duplicated",),
    "partition": ("partitions", "blocked"),
    "crash": ("power_cuts", "restarts"),
    "clock": ("clock_changes",),
    "longdown": ("long_downs", "power_cuts", "snapshots_installed"),
}


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_fault_kind_alone_is_injected_and_survived(kind: str) -> None:
    result = run_seed(3, SimOptions(faults=frozenset({kind}), fault_ms=2_500))
    result.raise_for_failure()
    for counter in EVIDENCE[kind]:
        assert result.counters[counter] > 0, (kind, counter, result.counters)
    others = {c for k, cs in EVIDENCE.items() if k != kind for c in cs} - set(EVIDENCE[kind])
    quiet = {"delayed", "dropped", "duplicated", "power_cuts", "partitions"} & others
    assert all(result.counters[c] == 0 for c in quiet), result.counters


def test_no_faults_means_a_clean_network() -> None:
    result = run_seed(3, SimOptions(faults=frozenset(), fault_ms=1_000))
    result.raise_for_failure()
    assert result.counters["dropped"] == result.counters["blocked"] == 0
    assert result.elections == 1
    assert result.counters["info_ops"] == 0


def test_crashes_mid_operation_and_plain_crashes_both_happen() -> None:
    seen = {"mid_op_crashes": 0, "crashes": 0}
    for seed in range(10):
        result = run_seed(seed, SimOptions(faults=frozenset({"crash"}), fault_ms=3_000))
        result.raise_for_failure()
        for counter in seen:
            seen[counter] += result.counters[counter]
        if all(seen.values()):
            break
    assert all(seen.values()), seen


def test_parse_faults() -> None:
    assert parse_faults("all") == frozenset(FAULT_KINDS)
    assert parse_faults("none") == frozenset()
    assert parse_faults(" drop, dup ") == frozenset({"drop", "dup"})
    with pytest.raises(ValueError, match="bogus"):
        parse_faults("drop,bogus")
    with pytest.raises(ValueError, match="bogus"):
        SimOptions(faults=frozenset({"bogus"}))


def test_a_node_crashing_again_during_recovery_comes_back_and_the_run_passes() -> None:
    # Seed 0 arms a crash a few disk operations into a restart that fires while the node
    # recovers: the node is down again, restarts later (one restart more than the crashes
    # during recovery), and every check passes.
    result = run_seed(0, SimOptions(faults=parse_faults("crash")))
    result.raise_for_failure()
    assert result.coverage["fault: crash during recovery"] >= 1
    assert result.counters["restarts"] > result.coverage["fault: crash during recovery"]


def test_crashes_during_recovery_only_with_the_crash_fault() -> None:
    result = run_seed(0, SimOptions(faults=parse_faults("partition,longdown")))
    result.raise_for_failure()
    assert result.coverage["fault: crash during recovery"] == 0
