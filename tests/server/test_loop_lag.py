"""Stalls of the event loop are counted, shown in ``status`` and logged as events."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from pathlib import Path

import pytest

from resonetics.localcluster import free_ports
from resonetics.server import events
from resonetics.server.config import ServerConfig
from resonetics.server.loop_lag import LoopLag
from resonetics.server.node_server import NodeServer
from resonetics.server.status import node_status


def test_the_threshold_is_a_third_of_the_shortest_election_timeout() -> None:
    assert LoopLag.for_timeouts(tick_ms=25, election_ticks=12).threshold_s == pytest.approx(0.1)
    assert LoopLag.for_timeouts(tick_ms=10, election_ticks=30).threshold_s == pytest.approx(0.1)


def test_a_wake_up_on_time_or_a_little_late_is_not_a_stall() -> None:
    lag = LoopLag(threshold_s=0.1)
    assert lag.observe(1.0, now=1.0, snapshot=False) is None
    assert lag.observe(1.1, now=1.2, snapshot=False) is None
    assert lag.status() == {"stalls": 0, "worst_stall_ms": 0, "stall_threshold_ms": 100}


def test_stalls_are_all_counted_and_logged_at_most_once_per_interval() -> None:
    lag = LoopLag(threshold_s=0.1, interval_s=5.0)
    first = lag.observe(9.75, now=10.0, snapshot=True)
    assert first == events.Event(events.LOOP_STALLED, {"late_ms": 250, "snapshot": True})
    assert lag.observe(10.6, now=11.0, snapshot=False) is None  # within the interval: held
    assert lag.observe(11.8, now=12.0, snapshot=False) is None
    later = lag.observe(15.35, now=15.5, snapshot=False)
    assert later == events.Event(
        events.LOOP_STALLED, {"late_ms": 150, "snapshot": False, "held_back": 2}
    )
    assert lag.status() == {"stalls": 4, "worst_stall_ms": 400, "stall_threshold_ms": 100}


def test_the_ticks_a_stall_made_the_ticker_miss_are_that_same_stall() -> None:
    """Woken 300 ms late, the ticker runs the ticks it missed back to back: each is late,
    and all of them are the one stall."""
    lag = LoopLag(threshold_s=0.1)
    assert lag.observe(1.00, now=1.30, snapshot=False) is not None
    for k in range(1, 30):
        assert lag.observe(1.00 + k * 0.01, now=1.30 + k * 0.0001, snapshot=False) is None
    assert lag.stalls == 1
    assert lag.observe(2.0, now=2.2, snapshot=False) is None  # a new stall, logged later
    assert lag.stalls == 2


def test_a_node_whose_loop_is_blocked_reports_the_stall(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A real node: the loop is held for 300 ms (three times the threshold at these
    ticks); the ticker sees it, ``status`` counts it, and a warning names it."""
    peer, client = free_ports(2)
    config = ServerConfig(
        node_id="n1",
        peers={"n1": f"127.0.0.1:{peer}"},
        clients={"n1": f"127.0.0.1:{client}"},
        data_dir=tmp_path,
        tick_ms=10,
        election_ticks=30,
    )

    async def scenario() -> None:
        server = NodeServer(config)
        await server.start()
        try:
            await asyncio.sleep(0.05)
            before = node_status(server)["loop"]["stalls"]  # 0 unless the host stalled us
            time.sleep(0.3)  # the loop cannot run: no tick, no heartbeat, no input
            async with asyncio.timeout(5):
                while server.loop_lag.stalls == before:
                    await asyncio.sleep(0.01)
            loop = node_status(server)["loop"]
            assert loop["stalls"] >= before + 1
            assert loop["worst_stall_ms"] >= 250
            assert len(node_status(server)["gc"]["collections"]) == 3
            assert server.collector._on_collection in gc.callbacks
        finally:
            await server.shutdown()
        assert server.collector._on_collection not in gc.callbacks  # no hook left behind

    with caplog.at_level(logging.WARNING, logger="resonetics.events"):
        asyncio.run(scenario())
    stalled = [r for r in caplog.records if "event=loop_stalled" in r.getMessage()]
    assert stalled, "no loop_stalled warning"
    assert all(r.levelno == logging.WARNING for r in stalled)
    assert "snapshot=false" in stalled[0].getMessage()


def test_a_stall_says_how_much_of_it_the_garbage_collector_took() -> None:
    """The collector's running total grew by 180 ms between two wake-ups: the stall
    between them names it; time collected between punctual wake-ups names nothing."""
    lag = LoopLag(threshold_s=0.1)
    assert lag.observe(1.0, now=1.0, snapshot=False, collector_s=0.5) is None
    assert lag.observe(1.01, now=1.01, snapshot=False, collector_s=0.504) is None
    stalled = lag.observe(1.02, now=1.25, snapshot=False, collector_s=0.684)
    assert stalled == events.Event(
        events.LOOP_STALLED, {"late_ms": 230, "snapshot": False, "gc_ms": 180}
    )
