"""The flood bench's pure helpers: /proc parsing, spreads, elections, junk lines, targets."""

from __future__ import annotations

import json

import pytest
from bench.flood_metrics import (
    check_targets,
    elections_seen,
    junk_lines,
    latency_ms,
    leaders_seen,
    parse_status_kb,
    spread,
)

STATUS = "Name:\tpython\nVmPeak:\t  300000 kB\nVmRSS:\t   55012 kB\nThreads:\t4\n"


def test_parse_status_reads_vmrss_in_kb() -> None:
    assert parse_status_kb(STATUS) == 55012
    assert parse_status_kb(STATUS, "VmPeak") == 300000


def test_parse_status_without_the_field_is_none() -> None:
    """A zombie has no VmRSS line: an absent sample, not an error."""
    assert parse_status_kb("Name:\tpython\nState:\tZ (zombie)\n") is None


def test_parse_status_refuses_a_garbled_value_or_unit() -> None:
    with pytest.raises(ValueError, match="VmRSS"):
        parse_status_kb("VmRSS:\t lots kB\n")
    with pytest.raises(ValueError, match="unit"):
        parse_status_kb("VmRSS:\t 12 MB\n")


def test_spread_is_nearest_rank() -> None:
    s = spread([0.3, 0.1, 0.2, 0.4])
    assert (s.count, s.min_s, s.p50_s, s.max_s) == (4, 0.1, 0.2, 0.4)
    assert spread([]).count == 0
    assert spread([]).p50_s is None


def test_latency_ms_of_a_hundred_values() -> None:
    figures = latency_ms([i / 1000 for i in range(1, 101)])  # 1..100 ms
    assert figures == {"count": 100, "p50_ms": 50.0, "p99_ms": 99.0, "max_ms": 100.0}
    assert latency_ms([])["p99_ms"] is None


def test_elections_are_the_rise_of_the_highest_term() -> None:
    polls = [{"n1": 3, "n2": 3}, {"n1": 3}, {}, {"n1": 4, "n2": 3}, {"n2": 5, "n3": 4}]
    assert elections_seen(polls) == 2
    assert elections_seen([{"n1": 7}] * 5) == 0
    assert elections_seen([]) == 0


def test_leaders_seen_lists_each_term_leader_pair_once() -> None:
    polls = [{"n1": (1, "n1"), "n2": (1, None)}, {"n1": (2, "n3"), "n2": (1, "n1")}]
    assert leaders_seen(polls) == [(1, "n1"), (2, "n3")]


def test_junk_lines_are_one_line_each_and_never_a_valid_request() -> None:
    lines = junk_lines()
    assert len(lines) >= 10
    for line in lines:
        assert line.endswith(b"\n")
        assert line.count(b"\n") == 1
    ops = []
    for line in lines:
        try:
            doc = json.loads(line)
        except ValueError:
            continue  # invalid JSON (or invalid UTF-8): junk by construction
        if isinstance(doc, dict) and isinstance(doc.get("payload"), dict):
            ops.append(doc["payload"].get("op"))
    known = {"kv_set", "kv_get"}
    # The lines naming a known op carry a wrong-typed field instead.
    assert sum(1 for op in ops if op in known) == 3
    assert "no_such_op" in ops


def test_targets_only_for_what_was_measured() -> None:
    scenarios = {
        "partial": {
            "rss": {"peak_mb": 1280.0, "after_close_mb": 120.0},
            "clients_during": {"served_within_1s": 0},
            "clients_after": {"served_within_1s": 20},
        }
    }
    met = {t.name: t.ok for t in check_targets(scenarios)}
    assert met == {
        "partial: peak RSS < 300 MB": False,
        "partial: RSS < 150 MB 30 s after close": True,
        "partial: 20/20 new clients within 1 s (flood held)": False,
        "partial: 20/20 new clients within 1 s (after close)": True,
    }
    junk = {"junk": {"elections": 0, "client": {"p99_ms": 150.0}}, "idle": {"elections": 2}}
    assert {t.name: t.ok for t in check_targets(junk)} == {
        "junk: 0 elections": True,
        "junk: client p99 < 100 ms": False,
        "idle: 0 elections": False,
    }


def test_flock_tells_connections_the_node_closed_from_those_it_held() -> None:
    """The instrument itself: against a listener that closes every second connection at
    once, the flock counts those as closed by the node (quickly) and the rest as held."""
    import asyncio

    from bench.flood_conns import Flock, slowloris

    async def scenario() -> tuple[dict[str, object], list[dict[str, object]]]:
        accepted = 0
        held: list[asyncio.StreamWriter] = []

        async def on_conn(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            nonlocal accepted
            accepted += 1
            if accepted % 2 == 0:
                w.close()
            else:
                held.append(w)

        server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        flock = Flock(f"127.0.0.1:{port}", ["127.0.0.1", "127.0.0.2"])
        try:
            await flock.open_many(10)
            # Until the flock has seen the node's five closes (deadline: a loaded machine).
            deadline = asyncio.get_running_loop().time() + 10.0
            summary = flock.summary(hold_end=flock.now())
            while summary["closed_by_node"] < 5 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.02)
                summary = flock.summary(hold_end=flock.now())
        finally:
            await flock.close_all()
        # The 11th connection is held, the 12th closed at once.
        loris = [await slowloris(f"127.0.0.1:{port}", cap_s=1.5) for _ in range(2)]
        for w in held:
            w.close()
        server.close()
        await server.wait_closed()
        return summary, loris

    summary, loris = asyncio.run(scenario())
    assert summary["connected"] == 10
    assert summary["closed_by_node"] == 5
    assert summary["closed_by_node_within_1s_of_open"] == 5
    assert summary["still_open_at_end"] == 5
    assert loris[0]["still_open_at_cap"] is True
    assert 1 <= loris[0]["bytes_sent"] <= 2  # one byte a second for 1.5 s
    assert loris[1]["still_open_at_cap"] is False
    assert loris[1]["closed_by_node_after_s"] is not None
