"""Pure helpers of the flood bench (``bench/flood.py``): parsing, summaries, targets.

Kept free of sockets and processes so each can be checked by a unit test
(``tests/bench/test_flood_metrics.py``). Percentiles are nearest-rank
(``bench.stats.percentile``): every figure is one that was observed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bench.stats import percentile

KIB = 1024
MIB = 1024 * 1024


def parse_status_kb(text: str, field: str = "VmRSS") -> int | None:
    """The value in kB of ``field`` in a ``/proc/<pid>/status`` text (None: not there).

    The kernel writes ``VmRSS:\\t   55012 kB``; a zombie or kernel thread has no
    ``VmRSS`` line at all, which is not an error here but an absent sample.
    """
    prefix = field + ":"
    for line in text.splitlines():
        if line.startswith(prefix):
            parts = line[len(prefix) :].split()
            if not parts or not parts[0].isdigit():
                raise ValueError(f"{field}: unexpected value {line!r}")
            unit = parts[1] if len(parts) > 1 else "kB"
            if unit != "kB":
                raise ValueError(f"{field}: unexpected unit {unit!r}")
            return int(parts[0])
    return None


@dataclass(frozen=True, slots=True)
class Spread:
    """Count and nearest-rank quantiles of a set of durations, in seconds."""

    count: int
    min_s: float | None
    p50_s: float | None
    p99_s: float | None
    max_s: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def spread(values_s: Iterable[float]) -> Spread:
    """The spread of some durations (an empty set gives count 0 and no quantiles)."""
    ordered = sorted(values_s)
    if not ordered:
        return Spread(0, None, None, None, None)
    return Spread(
        len(ordered),
        round(ordered[0], 4),
        round(percentile(ordered, 50), 4),
        round(percentile(ordered, 99), 4),
        round(ordered[-1], 4),
    )


def latency_ms(values_s: Sequence[float]) -> dict[str, float | int | None]:
    """p50 / p99 / max in milliseconds of some latencies given in seconds."""
    ordered = sorted(values_s)
    if not ordered:
        return {"count": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "count": len(ordered),
        "p50_ms": round(percentile(ordered, 50) * 1000, 2),
        "p99_ms": round(percentile(ordered, 99) * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


def elections_seen(polls: Sequence[Mapping[str, int]]) -> int:
    """How many terms began between the first poll and the last, from every node's term.

    Each poll maps node id -> the term its ``status`` reported (a node that did not
    answer is simply absent). A term begins only through an election attempt, so the
    rise of the highest term seen is the number of elections started (won or not);
    the nodes' terms can only grow, so a later lower value is a stale answer, ignored.
    """
    highest = [max(p.values()) for p in polls if p]
    if not highest:
        return 0
    return max(highest) - highest[0]


def leaders_seen(polls: Sequence[Mapping[str, tuple[int, str | None]]]) -> list[tuple[int, str]]:
    """The distinct (term, leader) pairs reported, in order of first sighting."""
    seen: list[tuple[int, str]] = []
    for poll in polls:
        for term, leader in poll.values():
            if leader is not None and (term, leader) not in seen:
                seen.append((term, leader))
    return sorted(seen)


def junk_lines() -> list[bytes]:
    """One round of junk client lines: invalid JSON, wrong types, unknown kinds and ops.

    Every line ends with exactly one newline and holds no other, so the node sees
    each as one complete line to refuse. None of them is a valid request: each
    must be answered with an error and change no state.
    """

    def request(op: Any, args: Any, **extra: Any) -> dict[str, Any]:
        payload = {"client_id": "junk", "request_id": "junk-1", "op": op, "args": args}
        payload.update(extra)
        return {"kind": "ClientRequest", "id": 1, "t": 0, "v": 1, "payload": payload}

    docs: list[Any] = [
        request("no_such_op", {}),  # valid JSON, unknown op
        request("kv_set", {"k": 5, "v": 1}),  # wrong type: key
        request(7, {}),  # wrong type: op
        request("kv_get", "not-an-object"),  # wrong type: args
        request("kv_set", {"k": "a", "v": 1}, client_id=["x"]),  # wrong type: client_id
        {"kind": "NoSuchKind", "id": 2, "t": 0, "v": 1, "payload": {}},  # unknown kind
        {"kind": "ClientRequest", "id": 3, "t": "yesterday", "v": "one", "payload": 9},
        [1, 2, 3],  # JSON but not an object
    ]
    lines = [json.dumps(d, separators=(",", ":")).encode() for d in docs]
    lines += [b"not json at all", b'{"kind": "ClientRequest", "payload": {', b"\xff\xfe\x00"]
    return [line + b"\n" for line in lines]


@dataclass(frozen=True, slots=True)
class Target:
    """One of issue 14's targets, the figure measured for it and whether it is met."""

    name: str
    measured: Any
    ok: bool | None  # None: not measured in this run

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _get(tree: Mapping[str, Any], *path: str) -> Any:
    node: Any = tree
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def check_targets(scenarios: Mapping[str, Any]) -> list[Target]:
    """Issue 14's "Targets" against a run's results (only the scenarios that ran)."""
    out: list[Target] = []
    peak = _get(scenarios, "partial", "rss", "peak_mb")
    after = _get(scenarios, "partial", "rss", "after_close_mb")
    served = _get(scenarios, "partial", "clients_during", "served_within_1s")
    after_served = _get(scenarios, "partial", "clients_after", "served_within_1s")
    elections = _get(scenarios, "junk", "elections")
    p99 = _get(scenarios, "junk", "client", "p99_ms")
    rows: list[tuple[str, Any, bool | None]] = [
        ("partial: peak RSS < 300 MB", peak, None if peak is None else peak < 300),
        ("partial: RSS < 150 MB 30 s after close", after, None if after is None else after < 150),
        ("partial: 20/20 new clients within 1 s (flood held)", served, _twenty(served)),
        (
            "partial: 20/20 new clients within 1 s (after close)",
            after_served,
            _twenty(after_served),
        ),
        ("junk: 0 elections", elections, None if elections is None else elections == 0),
        ("junk: client p99 < 100 ms", p99, None if p99 is None else p99 < 100),
    ]
    idle_served = _get(scenarios, "idle", "clients_during", "served_within_1s")
    if idle_served is not None:
        rows.append(
            ("idle: 20/20 new clients within 1 s (idle held)", idle_served, _twenty(idle_served))
        )
    for name in ("partial", "idle", "slowloris"):
        seen = _get(scenarios, name, "elections")
        if seen is not None:  # item 4: a flood on client connections causes no election
            rows.append((f"{name}: 0 elections", seen, seen == 0))
    for name, measured, ok in rows:
        if measured is not None:
            out.append(Target(name, measured, ok))
    return out


def _twenty(served: Any) -> bool | None:
    return None if served is None else served == 20


__all__ = [
    "KIB",
    "MIB",
    "Spread",
    "Target",
    "check_targets",
    "elections_seen",
    "junk_lines",
    "latency_ms",
    "leaders_seen",
    "parse_status_kb",
    "spread",
]
