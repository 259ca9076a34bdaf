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
