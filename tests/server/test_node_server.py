"""The server's driver scheduling: input never waits for a tick to be processed."""

from __future__ import annotations

import asyncio
from pathlib import Path

from resonetics.server.config import ServerConfig
from resonetics.server.node_server import NodeServer


def _one_node(tmp_path: Path) -> NodeServer:
    """A one-node cluster's server, not started (its ports are never opened)."""
    config = ServerConfig(
        node_id="n1",
        peers={"n1": "127.0.0.1:1"},
        clients={"n1": "127.0.0.1:2"},
        data_dir=tmp_path,
    )
    return NodeServer(config)


def flush_scheduled(server: NodeServer) -> bool:
    return server._flush_scheduled


def test_input_arriving_as_the_driver_loop_finishes_is_processed_without_a_tick(
    tmp_path: Path,
) -> None:
    """Regression: the flush task had returned but its done-callback had not yet run;
    input stepped in that window saw the task still set, scheduled nothing, and waited
    for the next tick (a tick-long p99 on sequential writes)."""

    async def scenario() -> None:
        server = _one_node(tmp_path)

        async def finished() -> None:
            return None

        task = asyncio.ensure_future(finished())
        await task
        server._flush_task = task  # the loop returned; its callback is still queued
        server.driver.core.campaign()  # input arrives now
        server._schedule_flush()
        assert not flush_scheduled(server)  # ...and is left behind by the guard
        assert server.driver.core.has_ready()
        server._flush_done(task)
        assert flush_scheduled(server)  # the callback picks it up
        for _ in range(10):
            await asyncio.sleep(0)
        assert not server.driver.core.has_ready()
        assert str(server.driver.core.role) == "leader"  # a one-node cluster elects itself
        server.driver.close()

    asyncio.run(scenario())


class _Writer:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return False


def test_answers_of_a_driver_step_leave_at_its_end_not_at_the_next_loop_turn(
    tmp_path: Path,
) -> None:
    """What a step answered is written when the step ends: at the loop's next turn,
    input read first (a second ack) went ahead of the answer on sequential writes."""

    async def scenario() -> None:
        server = _one_node(tmp_path)
        server.driver.core.campaign()
        server._start_flush()
        assert str(server.driver.core.role) == "leader"
        writer = _Writer()
        server.driver.submit(
            "c", "r1", "kv_set", {"k": "a", "v": 1}, lambda _: server._outbox.add(writer, b"ok")
        )
        server._start_flush()  # no loop turn in between
        assert writer.written == [b"ok"]
        server.driver.close()

    asyncio.run(scenario())
