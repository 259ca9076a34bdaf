"""HTTP watch streams of an in-process node: a client that reads nothing is bounded
and cut, and shutdown ends every stream with a reason."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest

from resonetics import limits
from resonetics.server.http_watch import WatchRoutes
from resonetics.server.node_server import NodeServer
from resonetics.wire import codes
from tests.server.test_http_in_process import _request, _server, _until_leader

VALUE = "v" * 200_000


def _routes(server: NodeServer) -> WatchRoutes:
    assert server.http is not None
    for route in server.http.app.router.routes():
        owner = getattr(route.handler, "__self__", None)
        if isinstance(owner, WatchRoutes):
            return owner
    raise AssertionError("no /v1/watch route")


async def _open_stream(address: str, prefix: str) -> asyncio.StreamWriter:
    """A stream whose client reads its status line and nothing more (a tiny receive buffer)."""
    host, port = address.split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(f"GET /v1/watch?prefix={prefix} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    status = await reader.readuntil(b"\r\n")
    assert status.split()[1] == b"200", status
    writer.transport.pause_reading()  # from here on the client reads nothing
    return writer  # held by the caller: a collected writer closes its connection


def test_http_watch_of_a_client_that_reads_nothing_is_bounded_and_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "WATCH_QUEUE_BYTES_MAX", 2 << 20)
    monkeypatch.setattr(limits, "HTTP_WATCH_WRITE_STALL_S", 1.0)

    async def scenario() -> None:
        server, address = _server(tmp_path)
        await server.start()
        try:
            await _until_leader(server)
            routes = _routes(server)
            stream = await _open_stream(address, "big/")
            held = []
            for i in range(200):
                status, _ = await _request(address, "PUT", f"/v1/kv/big/{i}", VALUE)
                assert status == 200
                held.append(routes.held_bytes())
                if server.watches.ended[codes.WATCH_TOO_SLOW]:
                    break
            assert server.watches.ended[codes.WATCH_TOO_SLOW] == 1, "the slow watcher was cut"
            # Never more than the connection's bound and one message (whole entries).
            assert max(held) <= limits.WATCH_CONN_BUFFER_BYTES_MAX + 2 * len(VALUE)
            async with asyncio.timeout(30):
                while len(routes) or routes.stalled != 1:
                    await asyncio.sleep(0.05)
            assert len(server.watches) == 0 and routes.held_bytes() == 0
            assert (await _request(address, "GET", "/health"))[0] == 200
            stream.close()
        finally:
            await server.shutdown()

    asyncio.run(scenario())


def test_shutdown_ends_every_http_watch_stream_with_unavailable(tmp_path: Path) -> None:
    async def scenario() -> None:
        server, address = _server(tmp_path)
        await server.start()
        await _until_leader(server)
        host, port = address.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /v1/watch?prefix=s/ HTTP/1.1\r\nHost: x\r\n\r\n")
        async with asyncio.timeout(20):
            while b'"type":"start"' not in await reader.readline():
                pass
            await server.shutdown()
            rest = await reader.read()
        writer.close()
        ends = [json.loads(line) for line in rest.splitlines() if b'"type":"end"' in line]
        assert [e["code"] for e in ends] == [codes.UNAVAILABLE], rest
        assert rest.endswith(b"0\r\n\r\n"), "the chunked body was ended, not cut"

    asyncio.run(scenario())
