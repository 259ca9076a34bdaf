"""What a client connection may cost (``server/admission.py``), without a socket."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from resonetics import limits
from resonetics.server import admission
from resonetics.server.admission import ClientAdmission, InputBudget, line_cap, overdue


def test_input_budget_refuses_growth_past_the_total_and_returns_what_closes() -> None:
    budget = InputBudget(total_max=100)
    assert budget.resize(0, 60) and budget.used == 60
    assert not budget.resize(0, 50)  # a second connection would pass the total
    assert budget.used == 60
    assert budget.resize(0, 40) and budget.used == 100
    assert budget.resize(60, 0) and budget.used == 40  # a connection closes: its bytes return
    assert budget.resize(40, 10) and budget.used == 10  # shrinking is always allowed


@settings(deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 80)), max_size=60))
def test_input_budget_never_exceeds_its_total(moves: list[tuple[int, int]]) -> None:
    """Property against a dumb oracle: a dict of what each connection holds."""
    budget = InputBudget(total_max=200)
    held = {i: 0 for i in range(5)}
    for conn, want in moves:
        if budget.resize(held[conn], want):
            held[conn] = want
        assert budget.used == sum(held.values()) <= 200


def test_slots_are_bounded_in_total_and_per_address_and_returned() -> None:
    slots = ClientAdmission(connections_max=3, per_ip_max=2)
    assert slots.admit("10.0.0.1") is None
    assert slots.admit("10.0.0.1") is None
    assert slots.admit("10.0.0.1") == admission.TOO_MANY_FROM_ADDRESS
    assert slots.admit("10.0.0.2") is None
    assert slots.admit("10.0.0.3") == admission.TOO_MANY_CONNECTIONS
    slots.release("10.0.0.1")
    assert slots.admit("10.0.0.3") is None


def test_a_connection_that_sent_no_valid_request_has_little_room() -> None:
    assert line_cap(established=False) == limits.UNESTABLISHED_LINE_BYTES_MAX
    assert line_cap(established=True) == limits.LINE_BYTES_MAX
    assert limits.UNESTABLISHED_LINE_BYTES_MAX < limits.LINE_BYTES_MAX


def test_deadlines_close_the_silent_the_slow_and_the_never_useful() -> None:
    t0 = 1000.0
    fresh = {"opened": t0, "last_line": t0, "partial_since": None, "established": False}
    assert overdue(t0 + 1, **fresh) is None  # type: ignore[arg-type]
    late = t0 + limits.UNESTABLISHED_IDLE_S + 1
    assert overdue(late, **fresh) == admission.NO_REQUEST_IN_TIME  # type: ignore[arg-type]
    served = {**fresh, "established": True}
    assert overdue(late, **served) is None  # type: ignore[arg-type]
    assert overdue(t0 + limits.CLIENT_IDLE_S + 1, **served) == admission.IDLE  # type: ignore[arg-type]
    slow = {**served, "partial_since": t0}
    assert overdue(t0 + limits.PARTIAL_LINE_S + 1, **slow) == admission.PARTIAL_LINE_TOO_SLOW  # type: ignore[arg-type]
