"""Transactions in the linearizability checker: the keys a txn ties are one object.

Each history is small enough to judge by hand; the checker must agree.
"""

from __future__ import annotations

from typing import Any

import pytest

from resonetics.check.history import HistoryRecorder, parse_history
from resonetics.check.linearizability import Verdict, check_history
from resonetics.check.txn_model import groups
from resonetics.errors import HistoryError


def _spec(
    compare: list[list[Any]], then: list[list[Any]], otherwise: list[list[Any]] | None = None
) -> dict[str, Any]:
    return {"compare": compare, "then": then, "else": otherwise or []}


def _outcome(succeeded: bool, reads: list[list[Any]] | None = None) -> dict[str, Any]:
    return {"succeeded": succeeded, "reads": reads or []}


def _verdict(rec: HistoryRecorder) -> Verdict:
    return check_history(rec.operations()).verdict


MOVE = _spec([["a", "value", "==", 1]], [["put", "a", 2], ["put", "b", 2]], [["get", "a", None]])


def test_txn_that_took_then_when_its_compare_held_is_linearizable() -> None:
    rec = HistoryRecorder()
    rec.ok(rec.invoke(0, "set", "a", 1))
    rec.ok(rec.invoke(0, "txn", "a", MOVE), _outcome(True))
    rec.ok(rec.invoke(1, "get", "b"), 2)
    rec.ok(rec.invoke(1, "get", "a"), 2)
    assert _verdict(rec) is Verdict.LINEARIZABLE


def test_txn_that_took_then_when_its_compare_failed_is_caught() -> None:
    """What a store that ignores compares would report (planted: txn-ignores-compares)."""
    rec = HistoryRecorder()
    rec.ok(rec.invoke(0, "set", "a", 5))
    rec.ok(rec.invoke(0, "txn", "a", MOVE), _outcome(True))
    assert _verdict(rec) is Verdict.NOT_LINEARIZABLE


def test_txn_seen_half_applied_is_caught() -> None:
    """While the txn runs, a reader sees its write to b and then a without it: the txn
    did not take effect at one instant. Checked per key, each read alone is fine."""
    rec = HistoryRecorder()
    rec.ok(rec.invoke(0, "set", "a", 1))
    txn = rec.invoke(0, "txn", "a", MOVE)
    rec.ok(rec.invoke(1, "get", "b"), 2)
    rec.ok(rec.invoke(1, "get", "a"), 1)
    rec.ok(txn, _outcome(True))
    assert _verdict(rec) is Verdict.NOT_LINEARIZABLE
    atomic = HistoryRecorder()
    atomic.ok(atomic.invoke(0, "set", "a", 1))
    txn = atomic.invoke(0, "txn", "a", MOVE)
    atomic.ok(atomic.invoke(1, "get", "a"), 1)
    atomic.ok(atomic.invoke(1, "get", "b"), 2)
    atomic.ok(txn, _outcome(True))
    assert _verdict(atomic) is Verdict.LINEARIZABLE


def test_else_branch_reads_must_match_the_state() -> None:
    rec = HistoryRecorder()
    rec.ok(rec.invoke(0, "set", "a", 7))
    rec.ok(rec.invoke(0, "txn", "a", MOVE), _outcome(False))  # else: get a ... but no read
    assert _verdict(rec) is Verdict.NOT_LINEARIZABLE
    good = HistoryRecorder()
    good.ok(good.invoke(0, "set", "a", 7))
    good.ok(good.invoke(0, "txn", "a", MOVE), _outcome(False, [["a", 7, 1]]))
    assert _verdict(good) is Verdict.LINEARIZABLE


def test_versions_count_writes_in_the_model() -> None:
    """Two sets make version 2: a txn that saw version 1 after both returned is caught."""
    at_two = _spec([["a", "version", "==", 2]], [["put", "a", 9]], [["get", "a", None]])
    rec = HistoryRecorder()
    rec.ok(rec.invoke(0, "set", "a", 1))
    rec.ok(rec.invoke(0, "set", "a", 2))
    rec.ok(rec.invoke(0, "txn", "a", at_two), _outcome(True))
    assert _verdict(rec) is Verdict.LINEARIZABLE
    bad = HistoryRecorder()
    bad.ok(bad.invoke(0, "set", "a", 1))
    bad.ok(bad.invoke(0, "set", "a", 2))
    bad.ok(bad.invoke(0, "txn", "a", at_two), _outcome(False, [["a", 2, 1]]))
    assert _verdict(bad) is Verdict.NOT_LINEARIZABLE  # version 1 was read; it is 2


def test_a_delete_resets_the_version() -> None:
    fresh = _spec([["a", "version", "==", 1]], [["get", "a", None]], [])
    rec = HistoryRecorder()
    rec.ok(rec.invoke(0, "set", "a", 1))
    rec.ok(rec.invoke(0, "set", "a", 2))
    rec.ok(rec.invoke(0, "delete", "a"), deleted=True)
    rec.ok(rec.invoke(0, "set", "a", 3))
    rec.ok(rec.invoke(0, "txn", "a", fresh), _outcome(True, [["a", 3, 1]]))
    assert _verdict(rec) is Verdict.LINEARIZABLE


def test_a_pending_txn_may_or_may_not_have_applied() -> None:
    rec = HistoryRecorder()
    rec.ok(rec.invoke(0, "set", "a", 1))
    rec.info(rec.invoke(0, "txn", "a", MOVE))
    rec.ok(rec.invoke(1, "get", "b"), 2)
    rec.ok(rec.invoke(1, "get", "a"), 2)
    assert _verdict(rec) is Verdict.LINEARIZABLE
    never = HistoryRecorder()
    never.ok(never.invoke(0, "set", "a", 1))
    never.info(never.invoke(0, "txn", "a", MOVE))
    never.ok(never.invoke(1, "get", "b"), None)
    assert _verdict(never) is Verdict.LINEARIZABLE


def test_txns_tie_keys_into_groups_and_other_keys_stay_alone() -> None:
    rec = HistoryRecorder()
    rec.ok(rec.invoke(0, "txn", "a", MOVE), _outcome(False, [["a", None, 0]]))
    other = _spec([["c", "exists", "==", False]], [["put", "d", 1]])
    rec.ok(rec.invoke(0, "txn", "c", other), _outcome(True))
    rec.ok(rec.invoke(0, "set", "z", 1))
    ops = rec.operations()
    assert sorted(groups(ops)) == [["a", "b"], ["c", "d"]]
    result = check_history(ops)
    assert result.verdict is Verdict.LINEARIZABLE
    assert sorted(str(r.key) for r in result.keys) == ["a+b", "c+d", "z"]


@pytest.mark.parametrize(
    "line",
    [
        '{"process": 0, "type": "invoke", "f": "txn", "key": "a", "value": [1, 2]}',
        '{"process": 0, "type": "invoke", "f": "txn", "key": "a", "value": '
        '{"compare": [["a", "colour", "==", 1]], "then": [], "else": []}}',
        '{"process": 0, "type": "invoke", "f": "txn", "key": "a", "value": '
        '{"compare": [], "then": [["nuke", "a", 1]], "else": []}}',
    ],
)
def test_malformed_txn_events_are_refused_naming_the_line(line: str) -> None:
    with pytest.raises(HistoryError, match="txn"):
        parse_history([line])
