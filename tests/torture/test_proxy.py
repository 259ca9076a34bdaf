"""The fault-injecting proxy: partition shapes, and one link's forward / cut / delay / heal."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from resonetics.localcluster import free_ports
from resonetics.torture.proxy import LinkProxy, ProxyMesh, split_pairs


def test_a_clean_split_cuts_every_pair_across_the_sides_in_both_directions() -> None:
    pairs = split_pairs([{"n1"}, {"n2", "n3"}])
    assert sorted(pairs) == [("n1", "n2"), ("n1", "n3"), ("n2", "n1"), ("n3", "n1")]


def test_a_bridge_node_keeps_both_sides_while_the_sides_are_cut_apart() -> None:
    pairs = set(split_pairs([{"n1", "n2", "n3"}, {"n3", "n4", "n5"}]))
    assert not any("n3" in pair for pair in pairs)
    assert ("n1", "n4") in pairs and ("n5", "n2") in pairs
    assert ("n1", "n2") not in pairs and ("n4", "n5") not in pairs
    assert len(pairs) == 8


def test_the_mesh_gives_every_node_a_distinct_proxy_per_peer() -> None:
    mesh = ProxyMesh({"n1": "127.0.0.1:1", "n2": "127.0.0.1:2", "n3": "127.0.0.1:3"})
    routes = mesh.routes()
    assert sorted(routes["n1"]) == ["n2", "n3"]
    addresses = [a for r in routes.values() for a in r.values()]
    assert len(set(addresses)) == 6
    assert mesh.links[("n1", "n2")].target == "127.0.0.1:2"


@asynccontextmanager
async def _sink() -> AsyncIterator[tuple[str, asyncio.Queue[bytes]]]:
    """A server that collects every byte sent to it (like a node reading a peer link)."""
    received: asyncio.Queue[bytes] = asyncio.Queue()

    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(1024):
            await received.put(chunk)
        writer.close()

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}", received
    finally:
        server.close()


async def _dial(proxy: LinkProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", proxy.port)


async def _closed(reader: asyncio.StreamReader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), 2.0) == b""
    except ConnectionError:
        return True


def test_a_link_forwards_then_a_cut_closes_it_and_refuses_new_ones_until_healed() -> None:
    async def scenario() -> None:
        async with _sink() as (target, received):
            proxy = LinkProxy("n1", "n2", free_ports(1)[0], target)
            await proxy.start()
            try:
                reader, writer = await _dial(proxy)
                writer.write(b"hello\n")
                assert await asyncio.wait_for(received.get(), 2.0) == b"hello\n"
                proxy.set_cut(True)
                assert await _closed(reader)
                reader2, _ = await _dial(proxy)
                assert await _closed(reader2)
                proxy.set_cut(False)
                _reader3, writer3 = await _dial(proxy)
                writer3.write(b"again\n")
                assert await asyncio.wait_for(received.get(), 2.0) == b"again\n"
                writer3.close()
            finally:
                await proxy.stop()

    asyncio.run(scenario())


def test_a_delayed_link_holds_bytes_and_keeps_their_order() -> None:
    async def scenario() -> None:
        async with _sink() as (target, received):
            proxy = LinkProxy("n1", "n2", free_ports(1)[0], target)
            proxy.delay_s = 0.3
            await proxy.start()
            try:
                loop = asyncio.get_running_loop()
                _, writer = await _dial(proxy)
                sent_at = loop.time()
                writer.write(b"a")
                await writer.drain()
                await asyncio.sleep(0.05)
                writer.write(b"b")
                got = b""
                while got != b"ab":
                    got += await asyncio.wait_for(received.get(), 2.0)
                # A lower bound only (it holds however loaded the machine is).
                assert loop.time() - sent_at >= 0.3
                writer.close()
            finally:
                await proxy.stop()

    asyncio.run(scenario())


def test_a_link_to_a_dead_node_closes_the_dialer() -> None:
    async def scenario() -> None:
        proxy = LinkProxy("n1", "n2", free_ports(1)[0], f"127.0.0.1:{free_ports(1)[0]}")
        await proxy.start()
        try:
            reader, _ = await _dial(proxy)
            assert await _closed(reader)
        finally:
            await proxy.stop()

    asyncio.run(scenario())


def test_stopping_with_live_connections_ends_them_without_asyncio_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Regression: cancelling the stream server's handler tasks made asyncio log
    # "Exception in callback ... CancelledError" for every live connection.
    async def scenario() -> None:
        async with _sink() as (target, received):
            proxy = LinkProxy("n1", "n2", free_ports(1)[0], target)
            await proxy.start()
            reader, writer = await _dial(proxy)
            writer.write(b"x")
            assert await asyncio.wait_for(received.get(), 2.0) == b"x"
            await proxy.stop()
            assert await _closed(reader)
            writer.close()

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        asyncio.run(scenario())
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
