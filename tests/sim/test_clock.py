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


def test_run_until_runs_what_run_one_runs() -> None:
    """The run's loop (``run_until``) and ``run_one`` in a loop: same events, same
    order, same clock at the end, with nothing left or with later events left."""
    for last in (None, 300):
        one, until = EventQueue(), EventQueue()
        seen_one: list[int] = []
        seen_until: list[int] = []
        for queue, seen in ((one, seen_one), (until, seen_until)):
            queue.at(30, lambda q=queue, s=seen: q.after(5, lambda: s.append(q.now_ms)))
            queue.at(10, lambda q=queue, s=seen: s.append(q.now_ms))
            if last is not None:
                queue.at(last, lambda s=seen: s.append(-1))
        while one.run_one(100):
            pass
        assert until.run_until(100, pending_max=10)
        assert seen_until == seen_one == [10, 35]
        assert (until.now_ms, until.steps, len(until)) == (one.now_ms, one.steps, len(one))


def test_run_until_stops_right_after_a_storm_of_pending_events() -> None:
    queue = EventQueue()
    seen: list[int] = []

    def breed() -> None:
        seen.append(queue.now_ms)
        queue.after(1, breed)
        queue.after(1, breed)

    queue.at(0, breed)
    assert not queue.run_until(1_000, pending_max=8)
    assert len(queue) == 9
    assert len(seen) == queue.steps
