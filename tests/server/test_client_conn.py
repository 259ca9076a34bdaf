"""Client connections on an in-process node: what a hostile client can cost it, bounded.

Deadlines are shortened through ``limits`` (read at each sweep), so the rules are
exercised in seconds; the real values are in ``limits.py`` and docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from resonetics import limits
from resonetics.localcluster import free_ports
from resonetics.server import admission
from resonetics.server.config import ServerConfig
from resonetics.server.node_server import NodeServer


def _request(op: str, req: str, args: dict[str, Any] | None = None) -> bytes:
    payload = {"client_id": "c", "request_id": req, "op": op, "args": args or {}}
    line = {"kind": "ClientRequest", "payload": payload, "t": 0, "v": 1, "id": req}
    return json.dumps(line).encode() + b"\n"


Scenario = Callable[[NodeServer, int], Awaitable[None]]


def _run(tmp_path: Path, scenario: Scenario, **config: Any) -> NodeServer:
    port, peer_port = free_ports(2)
    server_box: list[NodeServer] = []

    async def main() -> None:
        server = NodeServer(
            ServerConfig(
                node_id="n1",
                peers={"n1": f"127.0.0.1:{peer_port}"},
                clients={"n1": f"127.0.0.1:{port}"},
                data_dir=tmp_path,
                **config,
            )
        )
        server_box.append(server)
        await server.start()
        try:
            await scenario(server, port)
        finally:
            server.stop()
            await server.shutdown()

    asyncio.run(main())
    return server_box[0]


async def _until(what: str, check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Wait (yielding to the node's loop) until ``check()`` holds; fail naming ``what``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not check():
        assert loop.time() < deadline, f"timed out after {timeout_s}s waiting for {what}"
        await asyncio.sleep(0.01)


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    try:
        while await asyncio.wait_for(reader.read(65536), timeout=seconds):
            pass
    except TimeoutError:
        return False
    return True


def test_slowloris_line_is_closed_at_the_partial_line_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "PARTIAL_LINE_S", 0.5)
    monkeypatch.setattr(limits, "CLIENT_SWEEP_S", 0.1)

    async def scenario(server: NodeServer, port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_request("status", "s1"))  # served: the connection is established
        await reader.readline()
        for _ in range(3):
            writer.write(b"{")  # a byte at a time, never a newline
            await asyncio.sleep(0.2)
        assert await _closed_within(reader, 5.0)
        writer.close()

    server = _run(tmp_path, scenario)
    assert server.client_closes[admission.PARTIAL_LINE_TOO_SLOW] == 1


def test_connection_that_sends_no_valid_request_is_closed_at_its_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "UNESTABLISHED_IDLE_S", 0.5)
    monkeypatch.setattr(limits, "CLIENT_SWEEP_S", 0.1)

    async def scenario(server: NodeServer, port: int) -> None:
        idle_r, idle_w = await asyncio.open_connection("127.0.0.1", port)
        junk_r, junk_w = await asyncio.open_connection("127.0.0.1", port)
        served_r, served_w = await asyncio.open_connection("127.0.0.1", port)
        served_w.write(_request("status", "s1"))
        await served_r.readline()
        for _ in range(5):  # junk keeps a connection busy, not alive
            junk_w.write(b"not json\n")
            await asyncio.sleep(0.15)
        assert await _closed_within(idle_r, 5.0)
        assert await _closed_within(junk_r, 5.0)
        served_w.write(_request("status", "s2"))
        assert json.loads(await served_r.readline())["payload"]["ok"] is True
        for w in (idle_w, junk_w, served_w):
            w.close()

    server = _run(tmp_path, scenario)
    assert server.client_closes[admission.NO_REQUEST_IN_TIME] == 2


def test_unfinished_lines_across_connections_stay_within_the_input_budget(
    tmp_path: Path,
) -> None:
    async def scenario(server: NodeServer, port: int) -> None:
        server._input_budget.total_max = 300 * 1024  # small, to reach it with few sockets
        conns = []
        for _ in range(8):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(_request("status", "s"))
            await reader.readline()  # established: lines up to LINE_BYTES_MAX
            writer.write(b"x" * (100 * 1024))  # 100 KiB of a line, no newline
            conns.append((reader, writer))
        refused = [r for r, _ in conns if r.at_eof() or await _closed_within(r, 1.0)]
        assert len(refused) >= 5  # 3 fit; the others were refused, not buffered
        assert server._input_budget.used <= 300 * 1024
        for _, w in conns:
            w.close()
        await _until("every byte returned on close", lambda: server._input_budget.used == 0)

    server = _run(tmp_path, scenario)
    assert server.client_closes[admission.INPUT_BUDGET] >= 5


def test_junk_beyond_the_line_rate_stops_the_node_reading_that_connection(
    tmp_path: Path,
) -> None:
    async def scenario(server: NodeServer, port: int) -> None:
        junk_r, junk_w = await asyncio.open_connection("127.0.0.1", port)
        junk_w.write(b"junk\n" * 2000)  # far past the burst of 2 x 50 lines
        await _until(
            "the junk connection paused for its line rate",
            lambda: any("line rate" in c._paused_for for c in server._connections),
        )
        [conn] = [c for c in server._connections if not c.established]
        assert "line rate" in conn._paused_for
        answered = 0
        while answered < 150:
            line = await asyncio.wait_for(junk_r.readline(), timeout=5)
            answered += bool(line)
        # Another client is served meanwhile, at once.
        ok_r, ok_w = await asyncio.open_connection("127.0.0.1", port)
        ok_w.write(_request("status", "s1"))
        assert json.loads(await ok_r.readline())["payload"]["ok"] is True
        for w in (junk_w, ok_w):
            w.close()

    _run(tmp_path, scenario, rate_limit_rps=50.0, rate_limit_burst=50)


def test_junk_beyond_the_junk_rate_stops_reading_even_when_the_request_rate_is_high(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request budget is sized for one pipelining client (50,000/s by default); junk
    from a served connection still gets only the junk budget, then the node stops reading."""
    monkeypatch.setattr(limits, "JUNK_LINES_PER_S", 50.0)
    monkeypatch.setattr(limits, "JUNK_LINES_BURST", 50)

    async def scenario(server: NodeServer, port: int) -> None:
        junk_r, junk_w = await asyncio.open_connection("127.0.0.1", port)
        junk_w.write(_request("status", "s0"))
        await junk_r.readline()  # served: the high request and line rates apply
        junk_w.write(b"junk\n" * 2000)
        await asyncio.sleep(0.3)
        [conn] = [c for c in server._connections if c.established]
        assert "junk rate" in conn._paused_for and "line rate" not in conn._paused_for
        answered = 0
        while answered < 100:
            line = await asyncio.wait_for(junk_r.readline(), timeout=5)
            answered += bool(line)
        assert answered < 2000 and conn._pending  # the rest waits for the budget
        # Another client is served meanwhile, at once.
        ok_r, ok_w = await asyncio.open_connection("127.0.0.1", port)
        ok_w.write(_request("status", "s1"))
        assert json.loads(await ok_r.readline())["payload"]["ok"] is True
        for w in (junk_w, ok_w):
            w.close()

    _run(tmp_path, scenario)


def test_one_connection_never_exceeds_its_address_budget_whatever_the_connection_rate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The per-connection default equals the per-address budget, so one connection may use
    all of it; the address's budget, shared by every connection from it, still bounds it."""
    monkeypatch.setattr(limits, "IDENTITY_RATE_RPS_DEFAULT", 1.0)
    monkeypatch.setattr(limits, "IDENTITY_RATE_BURST_DEFAULT", 20)

    async def scenario(server: NodeServer, port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"".join(_request("status", f"s{i}") for i in range(60)))
        codes = [json.loads(await reader.readline())["payload"] for _ in range(60)]
        served = sum(1 for c in codes if c["ok"])
        assert 20 <= served <= 22  # the burst (and what refilled meanwhile), no more
        assert {c["code"] for c in codes if not c["ok"]} == {"RATE_LIMITED"}
        other_r, other_w = await asyncio.open_connection("127.0.0.1", port)
        other_w.write(_request("status", "again"))  # same address: the same, spent budget
        assert json.loads(await other_r.readline())["payload"]["code"] == "RATE_LIMITED"
        for w in (writer, other_w):
            w.close()

    server = _run(tmp_path, scenario)
    assert server.config.rate_limit_rps == limits.RATE_LIMIT_RPS_DEFAULT
    assert server.rate_limited >= 39


def test_requests_are_not_charged_to_the_junk_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "JUNK_LINES_PER_S", 1.0)
    monkeypatch.setattr(limits, "JUNK_LINES_BURST", 1)

    async def scenario(server: NodeServer, port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"".join(_request("status", f"s{i}") for i in range(300)))
        answers = [json.loads(await reader.readline()) for _ in range(300)]
        assert [a["id"] for a in answers] == [f"s{i}" for i in range(300)]  # in order, all
        assert all(a["payload"]["ok"] for a in answers)
        [conn] = list(server._connections)
        assert not conn._paused_for
        writer.close()

    _run(tmp_path, scenario)


def test_peer_messages_on_the_client_port_never_reach_the_core(tmp_path: Path) -> None:
    async def scenario(server: NodeServer, port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        forged = {"kind": "TimeoutNow", "src": "n2", "dst": "n1", "term": 99}
        writer.write(json.dumps({"kind": "TimeoutNow", "payload": forged, "t": 0, "v": 1}).encode())
        writer.write(b"\n")
        answer = json.loads(await reader.readline())["payload"]
        assert answer["code"] == "BAD_REQUEST"
        assert server.driver.core.term < 99
        writer.close()

    server = _run(tmp_path, scenario)
    assert server.peer_messages_refused == 1


def test_idle_flood_gives_way_to_a_new_client_but_served_clients_keep_their_slots(
    tmp_path: Path,
) -> None:
    async def scenario(server: NodeServer, port: int) -> None:
        server._admission.connections_max = 4
        served = []
        for i in range(2):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(_request("status", f"s{i}"))
            await reader.readline()
            served.append((reader, writer))
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        await _until("four connections accepted", lambda: len(server._connections) == 4)
        # Every slot is taken: a newcomer takes the oldest idle one's.
        new_r, new_w = await asyncio.open_connection("127.0.0.1", port)
        new_w.write(_request("status", "new"))
        assert json.loads(await new_r.readline())["payload"]["ok"] is True
        assert await _closed_within(idle[0][0], 2.0)
        # Served clients are never the ones evicted.
        for i, (reader, writer) in enumerate(served):
            writer.write(_request("status", f"again{i}"))
            assert json.loads(await reader.readline())["payload"]["ok"] is True
        for _, w in [*served, *idle, (new_r, new_w)]:
            w.close()

    server = _run(tmp_path, scenario)
    assert server.client_closes[admission.EVICTED] == 1
