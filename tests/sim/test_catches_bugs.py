"""The simulator finds real bugs: break the system under test on purpose, watch it fail.

Each test plants one classic mistake in the shipped code (through
``monkeypatch``, undone after the test) and runs a seed known to expose it.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from resonetics.machine.replicated import ApplyResult, ReplicatedKV
from resonetics.raft.entry import Entry
from resonetics.raft.log import RaftLog
from resonetics.raft.messages import Message
from resonetics.raft.ready import HardState, Ready
from resonetics.runtime.driver import NodeDriver
from resonetics.runtime.outcome import OnDone
from resonetics.sim.faults import FaultSchedule
from resonetics.sim.network import NetworkProfile
from resonetics.sim.options import SimOptions, parse_faults
from resonetics.sim.runner import RunResult, run_seed
from resonetics.storage.node_storage import FileNodeStorage


def _first_failure(options: SimOptions, seeds: range) -> RunResult | None:
    """The first failing run among ``seeds`` (a planted bug shows up in some runs, not all)."""
    for seed in seeds:
        result = run_seed(seed, options)
        if not result.ok:
            return result
    return None


def test_storage_that_forgets_the_term_and_vote(monkeypatch: pytest.MonkeyPatch) -> None:
    def forget(self: FileNodeStorage, hard_state: HardState, last_applied: int) -> None:
        return None

    monkeypatch.setattr(FileNodeStorage, "save_hard_state", forget)
    # Without load()'s own check (a term below the log's), so the invariant is what catches it.
    monkeypatch.setattr(FileNodeStorage, "_check_term", lambda self, meta, parsed, snap: None)
    result = run_seed(0, SimOptions(faults=parse_faults("crash"), fault_ms=2_000))
    assert result.verdict == "violation"
    assert result.failure is not None and "after sending term" in result.failure


def test_storage_that_forgets_the_term_is_refused_at_restart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same bug with load()'s check on: the restarted node refuses its folder (its
    log holds a term above meta.json's) instead of voting again."""

    def forget(self: FileNodeStorage, hard_state: HardState, last_applied: int) -> None:
        return None

    monkeypatch.setattr(FileNodeStorage, "save_hard_state", forget)
    result = run_seed(0, SimOptions(faults=parse_faults("crash"), fault_ms=2_000))
    assert result.failure is not None and "is below term" in result.failure


def test_votes_granted_without_the_election_restriction(monkeypatch: pytest.MonkeyPatch) -> None:
    """Raft §5.4.1: a node votes (and pre-votes) only for a log at least as up to date as
    its own; without that, a node missing committed entries can become leader."""
    monkeypatch.setattr(RaftLog, "is_up_to_date", lambda self, term, index: True)
    result = run_seed(4, SimOptions(faults=parse_faults("crash"), fault_ms=3_000))
    assert result.verdict == "violation"
    assert result.failure is not None and "leader completeness" in result.failure


def test_driver_that_sends_before_persisting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Votes, acks and new terms must not leave before the fsync they depend on."""

    def everything_early(self: NodeDriver, rd: Ready) -> tuple[list[Message], list[Message]]:
        return list(rd.messages), []

    monkeypatch.setattr(NodeDriver, "_split_messages", everything_early)
    assert _first_failure(SimOptions(), range(20)) is not None


def test_log_appends_never_fsynced(monkeypatch: pytest.MonkeyPatch) -> None:
    """An entry acknowledged (or counted toward a quorum) before it is durable can be lost."""
    monkeypatch.setattr(FileNodeStorage, "sync", lambda self: None)
    result = _first_failure(SimOptions(faults=parse_faults("crash")), range(20))
    # Caught where it happens: a node restarts without an entry it acknowledged (the
    # durability promise of an ack), not only later as a lost client write.
    assert result is not None and result.verdict == "violation", result
    assert result.failure is not None and "acknowledged entry lost" in result.failure


def test_reads_served_without_read_index(monkeypatch: pytest.MonkeyPatch) -> None:
    def stale(
        self: NodeDriver, op: str, args: dict[str, Any], on_done: OnDone, *, lease: bool = False
    ) -> None:
        on_done(self.read_stale(op, args))

    monkeypatch.setattr(NodeDriver, "read", stale)
    options = SimOptions(faults=parse_faults("partition,delay"))
    failed = [r for r in (run_seed(seed, options) for seed in range(10)) if not r.ok]
    assert failed and all(r.verdict == "violation" for r in failed), failed
    # The linearizability checker catches it on its own, not only the lease referee
    # (a read answered by a node that is no longer leader).
    assert any("not linearizable" in (r.failure or "") for r in failed), [r.failure for r in failed]


def test_batch_results_handed_to_the_wrong_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each command of a CLIENT_BATCH entry must answer its own client."""
    original = ReplicatedKV.apply

    def crossed(self: ReplicatedKV, entry: Entry, *, answers: bool = True) -> ApplyResult:
        applied = original(self, entry, answers=answers)
        return msgspec.structs.replace(applied, parts=tuple(reversed(applied.parts)))

    monkeypatch.setattr(ReplicatedKV, "apply", crossed)
    options = SimOptions(fault_ms=3_000, clients=6, batch_writes=True)
    result = _first_failure(options, range(600, 610))
    assert result is not None and result.verdict == "violation"
    # Either a client got another's answer (a history no order explains) or a
    # session_open got a write's answer.
    assert result.failure is not None
    assert "not linearizable" in result.failure or "without a session" in result.failure


def test_a_partition_that_never_heals_fails_liveness(monkeypatch: pytest.MonkeyPatch) -> None:
    def half_quiet(self: FaultSchedule) -> None:
        self.quiet = True
        self.cluster.network.profile = NetworkProfile()
        self.cluster.network.blocked = {(a, b) for a in self.cluster.ids for b in self.cluster.ids}

    monkeypatch.setattr(FaultSchedule, "_go_quiet", half_quiet)
    result = run_seed(1, SimOptions(faults=frozenset(), fault_ms=1_000))
    assert result.failure is not None and "liveness" in result.failure


def test_a_crash_in_the_code_under_test_is_reported_with_seed_and_trace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = {"n": 0}
    original = NodeDriver.tick

    def flaky_tick(self: NodeDriver) -> None:
        calls["n"] += 1
        if calls["n"] == 500:
            raise RuntimeError("planted bug")
        original(self)

    monkeypatch.setattr(NodeDriver, "tick", flaky_tick)
    result = run_seed(4, SimOptions(fault_ms=1_000))
    assert result.verdict == "crash"
    report = result.report()
    assert "seed 4 FAILED" in report and "planted bug" in report
    assert "replay: resonetics sim --seed 4" in report
    assert 0 < len(result.trace) <= 200
    with pytest.raises(AssertionError, match="seed 4 FAILED"):
        result.raise_for_failure()
