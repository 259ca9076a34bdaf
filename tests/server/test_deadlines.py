"""Deadlines: requests expire in arrival order, exactly once, unless finished first."""

from __future__ import annotations

from resonetics.server.deadlines import Deadlines


def test_items_expire_oldest_first_once_their_deadline_passes() -> None:
    deadlines: Deadlines[str] = Deadlines(timeout_s=5.0)
    deadlines.add("a", now=0.0)
    deadlines.add("b", now=1.0)
    deadlines.add("c", now=2.0)
    assert deadlines.expire(now=4.9) == []
    assert deadlines.expire(now=6.0) == ["a", "b"]
    assert deadlines.expire(now=6.0) == []  # never twice
    assert len(deadlines) == 1
    assert deadlines.expire(now=100.0) == ["c"]


def test_a_discarded_item_never_expires_and_others_still_do() -> None:
    deadlines: Deadlines[str] = Deadlines(timeout_s=1.0)
    for i, name in enumerate(["a", "b", "c"]):
        deadlines.add(name, now=float(i))
    deadlines.discard("a")
    deadlines.discard("b")
    deadlines.discard("missing")  # finishing twice or never added is harmless
    assert deadlines.expire(now=10.0) == ["c"]
    assert len(deadlines) == 0
