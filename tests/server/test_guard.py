"""A handler's unexpected error closes that connection only; the node stays up."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from resonetics.localcluster import free_ports
from resonetics.server.config import ServerConfig
from resonetics.server.guard import HandlerGuard
from resonetics.server.node_server import NodeServer


def _request(op: str, req: str) -> bytes:
    payload = {"client_id": "c", "request_id": req, "op": op, "args": {}}
    return (
        json.dumps({"kind": "ClientRequest", "payload": payload, "t": 0, "v": 1}).encode() + b"\n"
    )


async def _ask(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, line: bytes) -> Any:
    writer.write(line)
    await writer.drain()
    answer = await asyncio.wait_for(reader.readline(), timeout=10)
    return json.loads(answer)["payload"]


def test_handler_bug_closes_only_that_connection_and_node_stays_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    port, peer_port = free_ports(2)
    original = NodeServer._on_line

    def buggy(self: NodeServer, line: bytes, conn: Any) -> None:
        if b"boom" in line:
            raise ZeroDivisionError("a bug in a handler")
        original(self, line, conn)

    monkeypatch.setattr(NodeServer, "_on_line", buggy)

    async def scenario() -> None:
        config = ServerConfig(
            node_id="n1",
            peers={"n1": f"127.0.0.1:{peer_port}"},
            clients={"n1": f"127.0.0.1:{port}"},
            data_dir=tmp_path,
        )
        server = NodeServer(config)
        await server.start()
        try:
            good_r, good_w = await asyncio.open_connection("127.0.0.1", port)
            assert (await _ask(good_r, good_w, _request("status", "s1")))["ok"] is True
            for attempt in range(3):
                bad_r, bad_w = await asyncio.open_connection("127.0.0.1", port)
                bad_w.write(_request("status", f"boom{attempt}"))
                await bad_w.drain()
                # The failing connection is closed (EOF) without taking anything else down.
                assert await asyncio.wait_for(bad_r.read(), timeout=10) == b""
                bad_w.close()
            status = await _ask(good_r, good_w, _request("status", "s2"))
            assert status["ok"] is True
            assert status["result"]["handler_errors"] == 3
            good_w.close()
        finally:
            server.stop()
            await server.shutdown()

    with caplog.at_level(logging.ERROR, logger="resonetics.server"):
        asyncio.run(scenario())
    tracebacks = [r for r in caplog.records if r.exc_info is not None]
    assert len(tracebacks) == 1  # the same bug three times: one traceback, then a count
    assert "ZeroDivisionError" in tracebacks[0].getMessage()


def test_guard_counts_every_error_and_logs_each_type_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    guard = HandlerGuard()

    def fails(exc: Exception) -> None:
        raise exc

    with caplog.at_level(logging.ERROR, logger="resonetics.server"):
        assert guard.run(lambda: None) is True
        assert guard.run(fails, KeyError("a")) is False
        assert guard.run(fails, KeyError("b")) is False
        assert guard.run(fails, RecursionError()) is False
    assert guard.errors == 3
    assert len([r for r in caplog.records if r.exc_info]) == 2
