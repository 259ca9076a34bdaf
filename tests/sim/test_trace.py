"""The trace's one-pass digest text is the concatenation of its per-event keys."""

from __future__ import annotations

import random
from enum import StrEnum
from typing import Any

from resonetics.sim.trace import _key, _keys_text


class _Code(StrEnum):
    OK = "ok"


class _Shouty(str):
    """A str subclass whose formatting differs from its text: ``_key`` formats one
    lone string detail, so the one-pass text must format it too."""

    def __format__(self, spec: str) -> str:
        return self.upper()


def test_digest_text_in_one_pass_is_every_events_key_in_order() -> None:
    rng = random.Random(7)
    message = object()
    choices: list[tuple[Any, ...]] = [
        (),
        (message,),
        ("n1",),
        (_Code.OK,),
        (_Shouty("quiet"),),
        ("n1", "why"),
        (message, "reason"),
        ("c1", 3, "-> n2"),
    ]
    events = []
    now = 0
    for _ in range(2_000):
        now += rng.choice((0, 0, 1, 7, 1_000))  # several events per millisecond, as in a run
        events.append((now, rng.choice(("send", "deliver", "crash")), rng.choice(choices)))
    assert _keys_text(events) == "".join(_key(*e) for e in events)
    assert _keys_text([]) == ""


def test_a_trace_renders_messages_as_messages_and_any_other_struct_as_itself() -> None:
    """Answers (``Outcome``) are msgspec Structs as messages are: the failure report
    must describe only Raft messages as messages, and print the rest as they are."""
    from resonetics.raft.messages import AppendEntriesResp
    from resonetics.runtime.outcome import Outcome
    from resonetics.sim.trace import Trace

    trace = Trace()
    ack = AppendEntriesResp(src="n2", dst="n1", term=3, success=True, match_index=7)
    trace.add(5, "deliver", ack)
    trace.add(6, "answer", "c1", Outcome("OK", {"ok": True}))
    lines = trace.lines()
    assert "AppendEntriesResp n2->n1 t3 ok=True match=7" in lines[0]
    assert "c1 Outcome(code='OK'" in lines[1]
