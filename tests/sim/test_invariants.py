"""Each simulator check catches a deliberately broken scenario (and passes a sound one)."""

from __future__ import annotations

import pytest

from resonetics.raft.entry import GENESIS, Entry, EntryType, make_entry
from resonetics.sim.invariants import Receipt, SafetyMonitor, SimViolation


def chain(terms: list[int], data: str = "x") -> list[Entry]:
    """Entries 1..n with the given terms, linked from GENESIS."""
    out: list[Entry] = []
    prev = GENESIS.hash
    for i, term in enumerate(terms, start=1):
        entry = make_entry(prev, term, i, EntryType.CLIENT_CMD, f"{data}{i}")
        out.append(entry)
        prev = entry.hash
    return out


def test_election_safety_two_leaders_in_one_term() -> None:
    monitor = SafetyMonitor()
    monitor.on_leader("n1", 3, {})
    monitor.on_leader("n1", 3, {})  # the same leader seen again is fine
    monitor.on_leader("n2", 4, {})
    with pytest.raises(SimViolation, match="election safety: term 3"):
        monitor.on_leader("n2", 3, {})


def test_log_matching_same_index_and_term_different_entry() -> None:
    monitor = SafetyMonitor()
    monitor.on_append("n1", GENESIS.hash, chain([1, 1]))
    monitor.on_append("n2", GENESIS.hash, chain([1, 1]))
    with pytest.raises(SimViolation, match="log matching"):
        monitor.on_append("n3", GENESIS.hash, chain([1, 1], data="y"))


def test_hash_chain_break_is_caught() -> None:
    monitor = SafetyMonitor()
    entries = chain([1, 1, 2])
    with pytest.raises(SimViolation, match="hash chain"):
        monitor.on_append("n1", GENESIS.hash, [entries[0], entries[2]])


def test_commit_index_never_decreases_on_a_live_node() -> None:
    monitor = SafetyMonitor()
    entries = chain([1, 1, 1])
    hashes = {e.index: e.hash for e in entries}
    monitor.on_commit("n1", 1, 3, dict(hashes))
    monitor.forget_commit("n2")
    with pytest.raises(SimViolation, match="went back from 3 to 2"):
        monitor.on_commit("n1", 1, 2, {2: hashes[2]})


def test_a_restarted_node_may_start_from_a_lower_commit_hint() -> None:
    monitor = SafetyMonitor()
    entries = chain([1, 1, 1])
    monitor.on_commit("n1", 1, 3, {e.index: e.hash for e in entries})
    monitor.on_restart("n1", 1)
    monitor.on_commit("n1", 1, 1, {1: entries[0].hash})
    assert monitor.commit_seen["n1"] == 1


def test_committed_entry_replaced_is_caught() -> None:
    monitor = SafetyMonitor()
    monitor.on_commit("n1", 1, 2, {e.index: e.hash for e in chain([1, 1])})
    with pytest.raises(SimViolation, match="committed entry changed"):
        monitor.on_commit("n2", 2, 2, {e.index: e.hash for e in chain([1, 2])})


def test_leader_completeness_new_leader_missing_a_committed_entry() -> None:
    monitor = SafetyMonitor()
    committed = chain([1, 1, 1])
    monitor.on_commit("n1", 1, 3, {e.index: e.hash for e in committed})
    assert monitor.completeness_probes(1) == []  # a leader of the same term: no claim
    assert monitor.completeness_probes(2) == [3]
    other = chain([1, 1, 2], data="z")
    with pytest.raises(SimViolation, match="leader completeness"):
        monitor.on_leader("n2", 2, {3: other[2].hash})
    monitor.on_leader("n3", 3, {3: committed[2].hash})


def test_state_machine_safety_different_entries_applied_at_one_index() -> None:
    monitor = SafetyMonitor()
    monitor.on_apply("n1", chain([1])[0])
    monitor.on_apply("n2", chain([1])[0])
    with pytest.raises(SimViolation, match="state machine safety: index 1"):
        monitor.on_apply("n3", chain([1], data="y")[0])


def test_double_vote_in_one_term_is_caught() -> None:
    monitor = SafetyMonitor()
    monitor.on_vote_sent("n1", 2, "n2")
    monitor.on_vote_sent("n1", 2, "n2")  # a repeated vote for the same candidate is fine
    monitor.on_vote_sent("n1", 3, "n3")
    with pytest.raises(SimViolation, match="double vote: n1"):
        monitor.on_vote_sent("n1", 2, "n3")


def test_term_going_back_across_a_restart_is_caught() -> None:
    monitor = SafetyMonitor()
    monitor.on_term_sent("n1", 5)
    monitor.on_restart("n1", 5)
    with pytest.raises(SimViolation, match="restarted at term 4 after sending term 5"):
        monitor.on_restart("n1", 4)


def test_acknowledged_write_lost() -> None:
    monitor = SafetyMonitor()
    entries = chain([1, 1])
    monitor.on_commit("n1", 1, 2, {e.index: e.hash for e in entries})
    monitor.receipts.append(Receipt("c1", 2, 1, entries[1].hash))
    monitor.check_receipts({"n1": {2: entries[1].hash}})
    with pytest.raises(SimViolation, match="not in the log of n2"):
        monitor.check_receipts({"n1": {2: entries[1].hash}, "n2": {2: None}})
    monitor.receipts.append(Receipt("c2", 3, 1, "f" * 64))
    with pytest.raises(SimViolation, match="acknowledged write lost: c2"):
        monitor.check_receipts({"n1": {2: entries[1].hash}})


def test_commit_unchanged_only_when_on_commit_would_do_nothing() -> None:
    """The per-step shortcut (``commit_unchanged``) may skip ``on_commit`` only when
    the full check would neither change the monitor nor raise."""
    entries = chain([1, 1])
    monitor = SafetyMonitor()
    monitor.on_commit("n1", 1, 2, {1: entries[0].hash, 2: entries[1].hash})
    assert monitor.commit_unchanged("n1", 1, 2, entries[1].hash)
    # A different hash at the commit index: the full check runs and catches it.
    forged = chain([1, 1], data="y")[1].hash
    assert not monitor.commit_unchanged("n1", 1, 2, forged)
    with pytest.raises(SimViolation, match="committed entry changed"):
        monitor.on_commit("n1", 1, 2, {2: forged})
    # Compacted (no hash), a moved commit, a new term, another node: the full path.
    assert not monitor.commit_unchanged("n1", 1, 2, None)
    assert not monitor.commit_unchanged("n1", 1, 3, entries[1].hash)
    assert not monitor.commit_unchanged("n1", 2, 2, entries[1].hash)
    assert not monitor.commit_unchanged("n2", 1, 2, entries[1].hash)
    # After a crash the node's commit is forgotten: a lower restart commit is checked.
    monitor.forget_commit("n1")
    assert not monitor.commit_unchanged("n1", 1, 2, entries[1].hash)
