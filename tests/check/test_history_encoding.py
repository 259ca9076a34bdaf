"""The recorder's lines and ``canonical`` are ``json.dumps`` text, with the encoders
built once (``check/history.py``): same bytes, because the simulator's digest and the
checker's comparisons depend on them."""

from __future__ import annotations

import json
from typing import Any

from resonetics.check.history import HistoryRecorder, canonical

VALUES: list[Any] = [
    0,
    -3,
    2.5,
    'é\u2028"x',
    True,
    [1, [2, "b"]],
    {"b": 1, "a": {"d": None, "c": [3.0]}},
    {"compare": [["k1", "value", "==", 4]], "then": [], "else": [["get", "k1", None]]},
]


def test_canonical_is_sorted_compact_json_dumps() -> None:
    for value in VALUES:
        assert canonical(value) == json.dumps(value, sort_keys=True, separators=(",", ":"))
    assert canonical(None) is None


def test_recorder_lines_are_sorted_json_dumps_of_each_event() -> None:
    recorder = HistoryRecorder(clock=lambda: 1.5)
    for process, value in enumerate(VALUES):
        handle = recorder.invoke(process, "set", f"k{process}", value)
        recorder.ok(handle)
    recorder.ok(recorder.invoke(99, "cas", "k", [1, 2]), success=False)
    lines = list(recorder.lines())
    assert lines == [json.dumps(e, sort_keys=True) for e in recorder.events()]
    assert len(lines) == 2 * len(VALUES) + 2
