"""The event queue orders by (virtual time, scheduling order) and never goes back."""

from __future__ import annotations

from resonetics.sim.clock import EventQueue


def test_events_run_in_time_order_then_in_scheduling_order() -> None:
    queue = EventQueue()
    seen: list[str] = []
    queue.at(20, lambda: seen.append("b"))
    queue.at(10, lambda: seen.append("a"))
    queue.at(20, lambda: seen.append("c"))
    while queue.run_one(100):
        pass
    assert seen == ["a", "b", "c"]
    assert queue.steps == 3


def test_an_event_scheduled_in_the_past_runs_now_and_time_never_goes_back() -> None:
    queue = EventQueue()
    times: list[int] = []
    queue.at(50, lambda: queue.at(10, lambda: times.append(queue.now_ms)))
    while queue.run_one(100):
        pass
    assert times == [50]


def test_run_one_stops_at_the_horizon() -> None:
    queue = EventQueue()
    seen: list[int] = []
    queue.at(10, lambda: seen.append(10))
    queue.at(200, lambda: seen.append(200))
    while queue.run_one(100):
        pass
    assert seen == [10]
    assert len(queue) == 1
