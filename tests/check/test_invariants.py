"""Raft safety properties over plain data (Raft paper, Figure 3)."""

from __future__ import annotations

from resonetics.check.invariants import election_safety, log_matching, state_machine_safety


def _log(*terms: int, start: int = 1, tag: str = "") -> list[tuple[int, int, str]]:
    """Entries with the given terms from ``start``; hashes derive from the prefix, as a chain."""
    out: list[tuple[int, int, str]] = []
    chain = tag
    for offset, term in enumerate(terms):
        chain = f"{chain}/{term}"
        out.append((start + offset, term, chain))
    return out


def test_election_safety_holds_with_one_leader_per_term() -> None:
    assert election_safety({1: ["n1"], 2: ["n2", "n2"], 3: []}) == []


def test_election_safety_names_the_term_with_two_leaders() -> None:
    assert election_safety({1: ["n1"], 4: {"n3", "n1"}}) == [
        "election safety: term 4 has leaders n1, n3"
    ]


def test_log_matching_holds_for_a_prefix_and_a_diverging_uncommitted_tail() -> None:
    logs = {
        "n1": _log(1, 1, 2, 3),
        "n2": _log(1, 1, 2),
        "n3": [*_log(1, 1, 4, 4)[:2], (3, 4, "x"), (4, 4, "y")],  # diverged after index 2
    }
    assert log_matching(logs) == []


def test_log_matching_compares_only_the_indexes_compacted_logs_share() -> None:
    full = _log(1, 1, 2, 2, 3)
    assert log_matching({"n1": full, "n2": full[3:]}) == []


def test_log_matching_reports_entries_that_differ_below_an_agreed_one() -> None:
    logs = {"n1": _log(1, 2, 2), "n2": [(1, 1, "other"), *_log(1, 2, 2)[1:]]}
    [violation] = log_matching(logs)
    assert "n1 and n2 share index 3 in term 2 but differ at index 1" in violation


def test_log_matching_reports_same_index_and_term_with_different_hashes() -> None:
    logs = {"n1": _log(1, 1, tag="a"), "n2": _log(1, 1, tag="b")}
    assert len(log_matching(logs)) == 2


def test_log_matching_reports_gaps_and_falling_terms_within_one_log() -> None:
    assert log_matching({"n1": [(1, 1, "a"), (3, 1, "b"), (4, 0, "c")]}) == [
        "log of n1: index 3 follows index 1",
        "log of n1: term falls from 1 to 0 at 4",
    ]


def test_state_machine_safety_holds_when_nodes_apply_the_same_entries() -> None:
    applied = {
        "n1": [(1, "h1"), (2, "h2"), (3, "h3")],
        "n2": [(1, "h1"), (2, "h2")],
        "n3": [(3, "h3")],  # installed a snapshot up to 2, then applied 3
    }
    assert state_machine_safety(applied) == []


def test_state_machine_safety_reports_different_entries_at_one_index() -> None:
    applied = {"n1": [(1, "h1"), (2, "h2")], "n2": [(1, "h1"), (2, "evil")]}
    assert state_machine_safety(applied) == [
        "state machine safety: index 2 applied as h2 on n1 but as evil on n2"
    ]


def test_state_machine_safety_reports_an_entry_applied_twice() -> None:
    assert state_machine_safety({"n1": [(1, "h1"), (2, "h2"), (2, "h2")]}) == [
        "n1 applied index 2 after index 2"
    ]
