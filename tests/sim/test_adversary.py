"""The simulator's adversary: forged peer messages never reach the core; replays are harmless.

The gate under test is the one the server's peer listener runs
(``runtime/peer_gate.py``); the planted-bug tests switch it off and watch the
referees fail, so a passing sweep means something.
"""

from __future__ import annotations

import pytest

from resonetics.raft.messages import Message
from resonetics.runtime import peer_gate
from resonetics.sim.adversary import Adversary
from resonetics.sim.options import SimOptions
from resonetics.sim.runner import RunResult, run_seed

ADVERSARY = SimOptions(adversary=True, fault_ms=3_000)


def _open_gate(me: str, members: object, authenticated: str | None, msg: Message) -> None:
    return None


def _first_failure(options: SimOptions, seeds: range) -> RunResult | None:
    for seed in seeds:
        result = run_seed(seed, options)
        if not result.ok:
            return result
    return None


@pytest.mark.parametrize("seed", range(8))
def test_forged_peer_messages_are_dropped_and_history_stays_linearizable(seed: int) -> None:
    result = run_seed(seed, ADVERSARY)
    result.raise_for_failure()
    forged = sum(
        v for k, v in result.counters.items() if k.startswith("forged_") and k != "forged_admitted"
    )
    assert forged > 20, result.counters
    assert result.counters["forged_admitted"] == 0
    assert result.counters["replays"] > 0
    assert result.counters.get(f"gate_drop: {peer_gate.NOT_AUTHENTICATED}", 0) > 0
    assert result.counters.get(f"gate_drop: {peer_gate.SRC_MISMATCH}", 0) > 0
    assert result.counters.get(f"gate_drop: {peer_gate.NOT_A_MEMBER}", 0) > 0


def test_adversary_with_churn_and_batching_keeps_every_invariant() -> None:
    options = SimOptions(adversary=True, membership_churn=True, batch_writes=True, fault_ms=3_000)
    for seed in range(3):
        run_seed(seed, options).raise_for_failure()


def test_adversary_run_replays_exactly() -> None:
    assert run_seed(5, ADVERSARY).digest == run_seed(5, ADVERSARY).digest


def test_open_gate_is_caught_by_the_forged_message_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(peer_gate, "refusal", _open_gate)
    result = run_seed(0, ADVERSARY)
    assert result.verdict == "violation"
    assert result.failure is not None and "forged message(s) were stepped" in result.failure


def test_open_gate_lets_forged_history_break_the_safety_invariants(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without its own count, the damage forged messages do is still caught by the
    invariants and the linearizability check: the adversary's messages are dangerous."""
    monkeypatch.setattr(peer_gate, "refusal", _open_gate)
    monkeypatch.setattr(Adversary, "fail_fast", False)
    real_strike = Adversary._strike

    def strike_uncounted(self: Adversary) -> None:
        real_strike(self)
        self.stats.admitted = 0

    monkeypatch.setattr(Adversary, "_strike", strike_uncounted)
    failure = _first_failure(ADVERSARY, range(6))
    assert failure is not None, "forged messages stepped by every node went unnoticed"
    assert failure.verdict in ("violation", "crash")
