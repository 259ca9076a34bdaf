"""The HTTP port's door (server/http_door.py), on an in-process node: connection caps and the
first request's deadline, tried from raw sockets as an outsider would."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from resonetics.server.http_door import HEAD_TOO_SLOW, TOO_MANY_CONNECTIONS, TOO_MANY_FROM_ADDRESS
from resonetics.server.node_server import NodeServer
from tests.server.test_http_in_process import _request, _server

_HEALTH = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"


async def _open(address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = address.split(":")
    return await asyncio.open_connection(host, int(port))


async def _refused_with(address: str) -> tuple[int, dict[str, str]]:
    """What a newcomer the door refuses reads: the status and the JSON body, then EOF."""
    reader, writer = await _open(address)
    async with asyncio.timeout(5):
        raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Connection: close" in head
    return int(head.split()[1]), json.loads(body)


async def _served(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> int:
    """A keep-alive /health on an open connection: its status."""
    writer.write(_HEALTH)
    return await _response(reader)


async def _response(reader: asyncio.StreamReader) -> int:
    """One whole response (head and body) read from ``reader``: its status."""
    async with asyncio.timeout(5):
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
    return int(head.split()[1])


def _door_run(tmp_path: Path, scenario: object) -> None:
    async def run() -> None:
        server, address = _server(tmp_path)
        assert server.http is not None
        await server.start()
        try:
            await scenario(server, address)  # type: ignore[operator]
        finally:
            await server.shutdown()

    asyncio.run(run())


def test_connections_beyond_the_per_address_cap_get_a_503_naming_it_until_one_closes(
    tmp_path: Path,
) -> None:
    async def scenario(server: NodeServer, address: str) -> None:
        assert server.http is not None
        server.http.door.per_address_max = 2
        held = [await _open(address) for _ in range(2)]
        assert [await _served(*conn) for conn in held] == [200, 200]  # kept alive
        status, body = await _refused_with(address)
        assert (status, body["code"]) == (503, "UNAVAILABLE")
        assert "2 HTTP connections from your address" in body["message"]
        assert server.http.door.refused == {TOO_MANY_FROM_ADDRESS: 1}
        held[0][1].close()
        await held[0][1].wait_closed()
        async with asyncio.timeout(5):
            while server.http.door.open > 1:
                await asyncio.sleep(0.01)
        assert (await _request(address, "GET", "/health"))[0] == 200  # a slot again
        assert await _served(*held[1]) == 200  # the one held was never disturbed
        held[1][1].close()

    _door_run(tmp_path, scenario)


def test_connections_beyond_the_port_cap_are_refused_and_counted_in_status(
    tmp_path: Path,
) -> None:
    async def scenario(server: NodeServer, address: str) -> None:
        assert server.http is not None
        server.http.door.connections_max = 3
        held = [await _open(address) for _ in range(3)]
        for conn in held:
            assert await _served(*conn) == 200
        for _ in range(2):
            status, body = await _refused_with(address)
            assert status == 503 and "holds 3 connections" in body["message"]
        assert server.client_door_status()["http_refused"] == {TOO_MANY_CONNECTIONS: 2}
        for _, writer in held:
            writer.close()

    _door_run(tmp_path, scenario)


def test_a_first_request_head_not_finished_in_time_is_closed_and_a_prompt_one_is_served(
    tmp_path: Path,
) -> None:
    """Slow-loris: headers sent a byte at a time, never finished. The connection is closed
    at the deadline; one whose head arrives in parts but in time is served."""

    async def scenario(server: NodeServer, address: str) -> None:
        assert server.http is not None
        server.http.door.first_head_s = 1.5  # room for a loaded machine's scheduling
        reader, writer = await _open(address)
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # no blank line: never ends
        async with asyncio.timeout(5):
            assert await reader.read() == b""  # closed by the node
        writer.close()
        assert server.http.door.refused == {HEAD_TOO_SLOW: 1}
        assert server.http.door.open == 0
        reader, writer = await _open(address)
        for part in (b"GET /health HTTP/1.1\r", b"\nHost: x\r\n\r", b"\n"):  # split "\r\n\r\n"
            writer.write(part)
            await asyncio.sleep(0.05)
        assert await _response(reader) == 200
        await asyncio.sleep(1.6)  # past the deadline: a served connection stays
        assert await _served(reader, writer) == 200
        assert server.http.door.refused == {HEAD_TOO_SLOW: 1}
        writer.close()

    _door_run(tmp_path, scenario)
