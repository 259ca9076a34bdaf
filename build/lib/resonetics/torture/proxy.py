"""A fault-injecting TCP proxy for every ordered peer link (A -> B).

Theory of operation
-------------------
Peer links are outbound only (``server/peers.py``): node A reaches B by dialing
the address of B in A's ``--peers`` list, and everything on that connection
flows A -> B (B answers over its own link to A). So one proxy per ordered pair
controls exactly one direction of Raft traffic, which makes every partition
shape a set of ordered pairs to cut:

* cut ``(A, B)``: close the live connections and refuse new ones (accept, then
  close at once, as a dead route would look to the dialer);
* a one-way cut is cutting ``(A, B)`` and leaving ``(B, A)`` alone;
* a delay holds every chunk for ``delay_s`` before forwarding it, in order.

Clients never go through a proxy; they dial the nodes' real addresses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from resonetics.localcluster import free_ports

log = logging.getLogger("resonetics.torture.proxy")

#: Bytes read from one side per chunk.
CHUNK_BYTES = 64 * 1024
#: How long dialing the target node may take before the proxy gives up on it, seconds.
CONNECT_TIMEOUT_S = 2.0

#: How long stopping waits for connections to wind down, seconds.
STOP_TIMEOUT_S = 2.0

Pair = tuple[str, str]


class LinkProxy:
    """Forwards one ordered link ``src -> dst``: listens on ``port``, dials ``target``."""

    def __init__(self, src: str, dst: str, port: int, target: str) -> None:
        self.src = src
        self.dst = dst
        self.port = port
        self.target = target
        self.cut = False
        self.delay_s = 0.0
        #: Connections accepted, refused ones included: zero after a run means the
        #: node never dialed this proxy, i.e. its link went around the fault injector.
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._on_accept, "127.0.0.1", self.port, reuse_address=True
        )

    async def stop(self) -> None:
        """Close the listener and every connection, then let the pumps finish.

        Aborting the transports ends each pump by itself; cancelling the
        handler tasks instead would trip asyncio's stream server, which reads
        the result of the (cancelled) handler task and logs a traceback.
        """
        if self._server is not None:
            self._server.close()
        self.drop_connections()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=STOP_TIMEOUT_S)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), STOP_TIMEOUT_S)

    def is_cut(self) -> bool:
        return self.cut

    def set_cut(self, cut: bool) -> None:
        self.cut = cut
        if cut:
            self.drop_connections()

    def drop_connections(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _on_accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.cut:
            writer.transport.abort()
            return
        host, _, port = self.target.rpartition(":")
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(host, int(port)), CONNECT_TIMEOUT_S
            )
        except (OSError, TimeoutError):
            writer.transport.abort()
            return
        if self.is_cut():  # cut while we were dialing
            up_writer.transport.abort()
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._pump_both(reader, writer, up_reader, up_writer)
        finally:
            self._tasks.discard(task)
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()

    async def _pump_both(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        forward = asyncio.ensure_future(self._pump(reader, up_writer, delayed=True))
        backward = asyncio.ensure_future(self._pump(up_reader, writer, delayed=False))
        try:
            await asyncio.wait({forward, backward}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (forward, backward):
                t.cancel()
            for t in (forward, backward):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, delayed: bool
    ) -> None:
        """Copy until EOF; with a delay, hold each chunk ``delay_s`` (order is kept)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(maxsize=256)

        async def deliver() -> None:
            while True:
                due, chunk = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(chunk)
                await writer.drain()

        sender = asyncio.ensure_future(deliver())
        try:
            while not sender.done():
                chunk = await reader.read(CHUNK_BYTES)
                if not chunk:
                    return
                delay = self.delay_s if delayed else 0.0
                await queue.put((loop.time() + delay, chunk))
        except (OSError, ConnectionError):
            return
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender


class ProxyMesh:
    """One ``LinkProxy`` per ordered pair of nodes, and partition shapes over them."""

    def __init__(self, addresses: dict[str, str]) -> None:
        self.addresses = dict(addresses)
        ids = sorted(addresses)
        pairs = [(a, b) for a in ids for b in ids if a != b]
        ports = free_ports(len(pairs))
        self.links: dict[Pair, LinkProxy] = {
            (a, b): LinkProxy(a, b, port, addresses[b])
            for (a, b), port in zip(pairs, ports, strict=True)
        }

    def routes(self) -> dict[str, dict[str, str]]:
        """node -> {peer: proxy address}: what ``LocalCluster.peer_routes`` wants."""
        routes: dict[str, dict[str, str]] = {a: {} for a in self.addresses}
        for (a, b), link in self.links.items():
            routes[a][b] = link.address
        return routes

    async def start(self) -> None:
        for link in self.links.values():
            await link.start()

    async def stop(self) -> None:
        for link in self.links.values():
            await link.stop()

    def cut(self, pairs: Iterable[Pair]) -> None:
        for pair in pairs:
            self.links[pair].set_cut(True)

    def delay(self, pairs: Iterable[Pair], delay_s: float) -> None:
        for pair in pairs:
            self.links[pair].delay_s = delay_s

    def heal(self) -> None:
        """Every link open and undelayed."""
        for link in self.links.values():
            link.set_cut(False)
            link.delay_s = 0.0

    def unused(self) -> list[Pair]:
        """Links whose proxy never saw a connection (traffic that bypassed the mesh)."""
        return sorted(pair for pair, link in self.links.items() if link.accepted == 0)

    def cut_pairs(self) -> list[Pair]:
        return sorted(pair for pair, link in self.links.items() if link.cut)


def split_pairs(groups: list[set[str]]) -> list[Pair]:
    """Ordered pairs to cut so that two nodes talk only when some group holds both.

    Two disjoint groups give a clean split; groups that share a node give a
    bridge (the shared node talks to both sides, the sides not to each other).
    """
    members = sorted(set().union(*groups))
    return [
        (a, b)
        for a in members
        for b in members
        if a != b and not any(a in g and b in g for g in groups)
    ]


__all__ = ["LinkProxy", "Pair", "ProxyMesh", "split_pairs"]
