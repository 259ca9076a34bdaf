"""The HTTP port of an in-process node: request budgets, a handler bug, the shutdown path."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from resonetics import limits
from resonetics.localcluster import free_ports
from resonetics.server.config import ServerConfig
from resonetics.server.node_server import NodeServer


def _server(tmp_path: Path) -> tuple[NodeServer, str]:
    peer, client, http = free_ports(3)
    config = ServerConfig(
        node_id="n1",
        peers={"n1": f"127.0.0.1:{peer}"},
        clients={"n1": f"127.0.0.1:{client}"},
        data_dir=tmp_path,
        tick_ms=10,
        listen_http=f"127.0.0.1:{http}",
    )
    return NodeServer(config), f"127.0.0.1:{http}"


async def _request(address: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    host, port = address.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    data = b"" if body is None else json.dumps(body).encode()
    writer.write(
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        f"Content-Length: {len(data)}\r\n\r\n".encode()
        + data
    )
    raw = await reader.read()
    writer.close()
    head, _, text = raw.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    return status, json.loads(text) if text.startswith((b"{", b"[")) else text


async def _until_leader(server: NodeServer) -> None:
    async with asyncio.timeout(20):
        while not server.driver.core.is_leader:
            await asyncio.sleep(0.01)


def test_http_requests_share_the_identity_request_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "IDENTITY_RATE_RPS_DEFAULT", 0.001)
    monkeypatch.setattr(limits, "IDENTITY_RATE_BURST_DEFAULT", 2)

    async def scenario() -> None:
        server, address = _server(tmp_path)
        await server.start()
        try:
            await _until_leader(server)
            got = [(await _request(address, "GET", "/v1/kv/k"))[0] for _ in range(3)]
            assert got == [404, 404, 429]
            assert server.rate_limited == 1
            status, body = await _request(address, "PUT", "/v1/kv/k", 1)
            assert (status, body["code"]) == (429, "RATE_LIMITED")
        finally:
            await server.shutdown()

    asyncio.run(scenario())


def test_a_bug_in_an_http_handler_is_a_counted_500_and_the_node_serves_on(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        server, address = _server(tmp_path)
        assert server.http is not None

        async def broken(request: web.Request) -> web.Response:
            raise RuntimeError("a bug")

        server.http.add_route("GET", "/broken", broken)
        await server.start()
        try:
            status, body = await _request(address, "GET", "/broken")
            assert (status, body["code"]) == (500, "INTERNAL")
            assert "a bug" not in json.dumps(body), "no internals to the client"
            assert server.http.handler_errors == 1
            assert (await _request(address, "GET", "/health"))[0] == 200
        finally:
            await server.shutdown()

    asyncio.run(scenario())


def test_shutdown_answers_a_waiting_http_write_and_closes_the_port(tmp_path: Path) -> None:
    async def scenario() -> None:
        server, address = _server(tmp_path)
        await server.start()
        await _until_leader(server)
        assert (await _request(address, "PUT", "/v1/kv/a", 1))[0] == 200
        await server.shutdown()
        host, port = address.split(":")
        with pytest.raises(OSError):
            await asyncio.open_connection(host, int(port))

    asyncio.run(scenario())
