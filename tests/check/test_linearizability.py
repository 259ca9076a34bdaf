"""The checker on hand-made histories: each test is one way a store can go wrong (or not)."""

from __future__ import annotations

import pytest

from resonetics.check.linearizability import Verdict, check_history, search
from tests.check.transcript import ops

LIN = Verdict.LINEARIZABLE
NOT = Verdict.NOT_LINEARIZABLE


def verdict(text: str) -> Verdict:
    return check_history(ops(text)).verdict


def test_sequential_writes_and_reads_are_linearizable() -> None:
    assert (
        verdict("""
        0 invoke get
        0 ok     get null
        0 invoke set 1
        0 ok     set 1
        1 invoke get
        1 ok     get 1
        1 invoke delete
        1 ok     delete
        0 invoke get
        0 ok     get null
        """)
        is LIN
    )


def test_stale_read_after_a_newer_write_completed_is_a_violation() -> None:
    assert (
        verdict("""
        0 invoke set 1
        0 ok     set 1
        0 invoke set 2
        0 ok     set 2
        1 invoke get
        1 ok     get 1
        """)
        is NOT
    )


def test_lost_acknowledged_write_is_a_violation() -> None:
    assert (
        verdict("""
        0 invoke set 1
        0 ok     set 1
        1 invoke get
        1 ok     get null
        """)
        is NOT
    )


def test_cas_applied_twice_is_a_violation() -> None:
    # Two concurrent cas 0->1 cannot both succeed: after one, the register holds 1.
    assert (
        verdict("""
        0 invoke set 0
        0 ok     set 0
        1 invoke cas [0,1]
        2 invoke cas [0,1]
        1 ok     cas [0,1]
        2 ok     cas [0,1]
        """)
        is NOT
    )


def test_one_of_two_concurrent_cas_failing_is_linearizable() -> None:
    assert (
        verdict("""
        0 invoke set 0
        0 ok     set 0
        1 invoke cas [0,1]
        2 invoke cas [0,1]
        1 ok     cas [0,1]
        2 ok     cas [0,1] success=false
        """)
        is LIN
    )


def test_read_of_a_value_never_written_is_a_violation() -> None:
    assert (
        verdict("""
        0 invoke set 1
        0 ok     set 1
        1 invoke get
        1 ok     get 7
        """)
        is NOT
    )


def test_indeterminate_write_may_have_happened() -> None:
    assert (
        verdict("""
        0 invoke set 1
        0 info   set 1
        1 invoke get
        1 ok     get 1
        """)
        is LIN
    )


def test_indeterminate_write_may_not_have_happened() -> None:
    assert (
        verdict("""
        0 invoke set 1
        0 info   set 1
        1 invoke get
        1 ok     get null
        """)
        is LIN
    )


def test_indeterminate_write_cannot_happen_and_then_unhappen() -> None:
    assert (
        verdict("""
        0 invoke set 1
        0 info   set 1
        1 invoke get
        1 ok     get 1
        1 invoke get
        1 ok     get null
        """)
        is NOT
    )


def test_indeterminate_write_cannot_take_effect_before_its_invoke() -> None:
    assert (
        verdict("""
        1 invoke get
        1 ok     get 1
        0 invoke set 1
        0 info   set 1
        """)
        is NOT
    )


def test_invoke_never_completed_counts_as_indeterminate() -> None:
    assert (
        verdict("""
        0 invoke set 1
        1 invoke get
        1 ok     get 1
        """)
        is LIN
    )


def test_concurrent_ops_are_fine_in_some_order() -> None:
    # The get overlaps both writes: it may see 2 (order set1, set2, get) even though
    # set 2 was invoked after set 1 completed, and the later read of 1 is impossible.
    assert (
        verdict("""
        2 invoke get
        0 invoke set 1
        0 ok     set 1
        1 invoke set 2
        2 ok     get 2
        1 ok     set 2
        """)
        is LIN
    )
    assert (
        verdict("""
        0 invoke set 1
        1 invoke set 2
        2 invoke get
        2 ok     get 1
        3 invoke get
        3 ok     get 2
        0 ok     set 1
        1 ok     set 2
        2 invoke get
        2 ok     get 2
        """)
        is LIN
    )


def test_concurrent_reads_cannot_see_two_writes_in_opposite_orders() -> None:
    # p2 sees 1 then 2; p3 sees 2 then 1, all after both writes completed.
    assert (
        verdict("""
        0 invoke set 1
        1 invoke set 2
        0 ok     set 1
        1 ok     set 2
        2 invoke get
        2 ok     get 1
        3 invoke get
        3 ok     get 2
        """)
        is NOT
    )


def test_failed_write_is_ignored() -> None:
    assert (
        verdict("""
        0 invoke set 1
        0 fail   set 1
        1 invoke get
        1 ok     get null
        """)
        is LIN
    )
    assert (
        verdict("""
        0 invoke set 1
        0 fail   set 1
        1 invoke get
        1 ok     get 1
        """)
        is NOT
    )


def test_cas_reporting_no_success_constrains_the_order() -> None:
    ok_history = """
        0 invoke set 1
        0 ok     set 1
        1 invoke cas [2,3]
        1 ok     cas [2,3] success=false
        1 invoke get
        1 ok     get 1
        """
    assert verdict(ok_history) is LIN
    # The register certainly held 1, so a cas expecting 1 cannot have observed another value.
    assert (
        verdict("""
        0 invoke set 1
        0 ok     set 1
        1 invoke cas [1,3]
        1 ok     cas [1,3] success=false
        """)
        is NOT
    )


def test_cas_expecting_null_means_only_if_absent() -> None:
    assert (
        verdict("""
        0 invoke cas [null,5]
        0 ok     cas [null,5]
        0 invoke get
        0 ok     get 5
        """)
        is LIN
    )
    assert (
        verdict("""
        0 invoke set 1
        0 ok     set 1
        0 invoke cas [null,5]
        0 ok     cas [null,5]
        """)
        is NOT
    )


def test_indeterminate_cas_applies_only_if_it_would_succeed() -> None:
    base = """
        0 invoke set 1
        0 ok     set 1
        1 invoke cas [{expected},2]
        1 info   cas [{expected},2]
        2 invoke get
        2 ok     get 2
        """
    assert verdict(base.format(expected=1)) is LIN
    assert verdict(base.format(expected=3)) is NOT


def test_delete_flags_constrain_what_was_there() -> None:
    assert (
        verdict("""
        0 invoke delete
        0 ok     delete deleted=false
        """)
        is LIN
    )
    assert (
        verdict("""
        0 invoke delete
        0 ok     delete deleted=true
        """)
        is NOT
    )
    assert (
        verdict("""
        0 invoke set 1
        0 ok     set 1
        0 invoke delete
        0 ok     delete deleted=true
        0 invoke get
        0 ok     get null
        """)
        is LIN
    )


def test_values_compare_by_canonical_json() -> None:
    assert (
        verdict("""
        0 invoke set {"a":1,"b":[1,2]}
        0 ok     set {"a":1,"b":[1,2]}
        1 invoke get
        1 ok     get {"b":[1,2],"a":1}
        """)
        is LIN
    )
    assert (
        verdict("""
        0 invoke set 1
        0 ok     set 1
        1 invoke get
        1 ok     get "1"
        """)
        is NOT
    )


def test_pending_reads_and_nemesis_events_are_ignored() -> None:
    assert (
        verdict("""
        0 invoke set 1
        0 ok     set 1
        nemesis partition
        1 invoke get
        1 info   get
        2 invoke get
        2 ok     get 1
        """)
        is LIN
    )


def test_keys_are_checked_independently() -> None:
    result = check_history(
        ops("""
        0 invoke set 1 key=a
        0 ok     set 1 key=a
        1 invoke set 1 key=b
        1 ok     set 1 key=b
        0 invoke get key=a
        0 ok     get 1 key=a
        1 invoke get key=b
        1 ok     get 2 key=b
        """)
    )
    assert result.verdict is NOT
    assert {k.key: k.verdict for k in result.keys} == {"a": LIN, "b": NOT}
    assert [k.key for k in result.violations] == ["b"]
    assert result.ops == 4


def test_spent_budget_gives_unknown_never_a_pass() -> None:
    history = ops("""
        0 invoke set 1
        1 invoke set 2
        2 invoke get
        0 ok     set 1
        1 ok     set 2
        2 ok     get 1
        """)
    assert search(history, steps_max=2).verdict is Verdict.UNKNOWN
    assert check_history(history, steps_max=2).verdict is Verdict.UNKNOWN
    assert check_history(history).verdict is LIN


def test_deadline_already_passed_leaves_keys_unknown() -> None:
    history = ops("""
        0 invoke set 1
        0 ok     set 1
        """)
    result = check_history(history, deadline_s=-1.0)
    assert result.verdict is Verdict.UNKNOWN
    assert result.keys[0].steps == 0


@pytest.mark.parametrize("text", ["", "nemesis start", "0 invoke set 1\n0 info set 1"])
def test_histories_without_completed_ops_are_linearizable(text: str) -> None:
    assert verdict(text) is LIN


def test_search_past_its_deadline_answers_unknown() -> None:
    from tests.check.register_sim import simulate

    # This history needs ~350k steps; a deadline already passed stops the search
    # at its first look at the clock, after 2**16 steps.
    history = simulate(7, ops=4000, clients=6, keys=("hot",)).operations()
    result = search(history, deadline=0.0)
    assert result.verdict is Verdict.UNKNOWN
    assert result.steps == 1 << 16
