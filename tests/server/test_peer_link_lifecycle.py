"""A peer link's pump leaves nothing behind: no pending helper, no unread exception."""

from __future__ import annotations

import asyncio
import gc
import socket
import struct
from typing import Any

import pytest

from resonetics.security.peer_auth import PeerCredentials
from resonetics.server.peers import PeerLink, end_helpers


def _link() -> PeerLink:
    creds = PeerCredentials("a", "0" * 32, None, tls=False)
    return PeerLink(creds, "b", "127.0.0.1:1", "127.0.0.1:2")


async def _connected_pair(
    on_peer: Any,
) -> tuple[asyncio.Server, asyncio.StreamReader, asyncio.StreamWriter]:
    server = await asyncio.start_server(on_peer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    return server, reader, writer


def test_peer_reset_during_pump_leaves_no_unretrieved_exception() -> None:
    async def scenario() -> list[dict[str, Any]]:
        problems: list[dict[str, Any]] = []
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: problems.append(ctx))

        async def reset(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            sock = w.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            await asyncio.sleep(0.05)
            w.transport.abort()  # RST, not FIN

        server, reader, writer = await _connected_pair(reset)
        lost = False
        try:
            await asyncio.wait_for(_link()._pump(reader, writer), 5)
        except ConnectionError:
            lost = True  # the traceback (and the pump's frame) is not kept alive
        assert lost
        writer.close()
        server.close()
        await server.wait_closed()
        gc.collect()
        await asyncio.sleep(0)
        return problems

    assert asyncio.run(scenario()) == []


def test_cancelled_pump_leaves_no_pending_waiter() -> None:
    async def scenario() -> set[asyncio.Task[Any]]:
        mine = asyncio.all_tasks()

        async def silent(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await asyncio.sleep(10)

        server, reader, writer = await _connected_pair(silent)
        pump = asyncio.create_task(_link()._pump(reader, writer))
        await asyncio.sleep(0.05)  # idle: waiting on its wake-up event
        pump.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pump
        writer.close()
        server.close()
        left = {t for t in asyncio.all_tasks() - mine if not t.done()}
        for t in left:  # the server's own handler task
            t.cancel()
        return {t for t in left if "silent" not in repr(t.get_coro())}

    assert asyncio.run(scenario()) == set()


def test_link_stopped_while_ending_its_pump_leaves_no_unretrieved_exception() -> None:
    """``stop`` may cancel the link while the pump's cleanup waits for its helpers
    (seen on a loaded machine: the read helper's reset was logged as never retrieved)."""

    async def scenario() -> list[dict[str, Any]]:
        problems: list[dict[str, Any]] = []
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: problems.append(ctx))

        async def reset() -> None:
            raise ConnectionResetError("peer closed the connection")

        read = asyncio.ensure_future(reset())
        await asyncio.sleep(0)
        assert read.done()
        idle = asyncio.ensure_future(asyncio.sleep(10))
        ending = asyncio.ensure_future(end_helpers([read, idle]))
        await asyncio.sleep(0)  # the cleanup now waits for the idle helper
        ending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await ending
        await asyncio.sleep(0)
        assert idle.cancelled()
        del read, idle, ending
        gc.collect()
        await asyncio.sleep(0)
        return problems

    assert asyncio.run(scenario()) == []
