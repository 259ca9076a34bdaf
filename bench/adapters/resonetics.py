"""Resonetics: a local cluster of ``resonetics serve`` processes, fsync on (the default).

The adapter speaks the client protocol directly (``wire`` codec over a raw
asyncio protocol) instead of going through ``AsyncClient``: that keeps the
generator's cost per request small and lets many requests share one
connection, matched by envelope ``id``. Reads are ``kv_get`` with
``consistency="linearizable"`` (ReadIndex on the leader).
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from pathlib import Path
from typing import Any, cast

from bench.adapters.base import RequestFailed, RunningSystem, SystemFailed, Target, fail_pending
from resonetics.wire.client import NOT_LEADER, decode_response
from resonetics.wire.envelope import decode_envelope, encode_envelope
from resonetics.wire.framing import LineBuffer

DURABILITY = "fsync on every log append batch (default)"
LEADER_WAIT_S = 30.0
#: Pause after failing to reach a node before the next request tries another, seconds.
RECONNECT_PAUSE_S = 0.05


class _Lines(asyncio.Protocol):
    """Receives response lines and hands each to the future waiting on its id."""

    def __init__(self) -> None:
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.buffer = LineBuffer()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        for line in self.buffer.feed(data):
            env = decode_envelope(line)
            future = self.pending.pop(env.id, None) if isinstance(env.id, int) else None
            if future is not None and not future.done():
                future.set_result(decode_response(env))

    def connection_lost(self, exc: Exception | None) -> None:
        fail_pending(self.pending, f"connection lost: {exc}")


async def _connect(address: str) -> _Lines:
    host, _, port = address.rpartition(":")
    _, protocol = await asyncio.get_running_loop().create_connection(_Lines, host, int(port))
    return protocol


class ResoneticsAdapter:
    """One pipelined connection to the leader; follows the leader when it moves.

    A request answered ``NOT_LEADER`` (or cut by a lost connection) counts as
    an error, and the connection moves to the hinted leader, else to the next
    node, so the run measures the cluster through an election instead of
    failing every later request.
    """

    def __init__(self, protocol: _Lines, addresses: list[str]) -> None:
        self._protocol = protocol
        self._addresses = addresses
        self._next_address = 1
        self._lock = asyncio.Lock()
        self._ids = itertools.count(1)
        self._client_id = uuid.uuid4().hex

    @classmethod
    async def open(cls, target: Target) -> ResoneticsAdapter:
        return cls(await _connect(target.address), [target.address, *target.others])

    async def _move(self, stale: _Lines, hint: str | None) -> None:
        async with self._lock:
            if self._protocol is not stale:
                return  # another request already moved this connection
            if stale.transport is not None:
                stale.transport.close()
            address = hint or self._addresses[self._next_address % len(self._addresses)]
            self._next_address += 1
            try:
                self._protocol = await _connect(address)
            except OSError:
                await asyncio.sleep(RECONNECT_PAUSE_S)  # the next request tries the next node

    async def _call(self, op: str, args: dict[str, Any]) -> None:
        protocol = self._protocol
        transport = protocol.transport
        if transport is None or transport.is_closing():
            await self._move(protocol, None)
            raise ConnectionResetError("connection closed")
        req_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        protocol.pending[req_id] = future
        payload = {"client_id": self._client_id, "request_id": str(req_id), "op": op, "args": args}
        transport.write(encode_envelope("ClientRequest", payload, int(time.time() * 1000), req_id))
        try:
            response = await future
        except ConnectionError:
            await self._move(protocol, None)
            raise
        if not response.ok:
            if response.code == NOT_LEADER:
                hint = (
                    response.result.get("leader_addr")
                    if isinstance(response.result, dict)
                    else None
                )
                await self._move(protocol, hint)
            raise RequestFailed(f"{response.code}: {response.message}")

    async def write(self, key: str, value: str) -> None:
        await self._call("kv_set", {"k": key, "v": value})

    async def read(self, key: str) -> None:
        await self._call("kv_get", {"k": key, "consistency": "linearizable"})

    async def close(self) -> None:
        if self._protocol.transport is not None:
            self._protocol.transport.close()


def start(workdir: Path, tick_ms: int = 25) -> RunningSystem:
    """Start three nodes on free loopback ports and wait for a leader."""
    from resonetics.localcluster import LocalCluster

    cluster = LocalCluster(workdir / "resonetics", size=3, tick_ms=tick_ms, log_level="warning")
    cluster.start()
    try:
        leader_id, _ = cluster.wait_for_leader(LEADER_WAIT_S)
    except Exception as exc:
        cluster.stop()
        raise SystemFailed(f"resonetics: no leader ({exc}); logs in {cluster.data_dir}") from exc
    leader = cluster.nodes[leader_id]
    pid = leader.process.pid if leader.process is not None else None
    return RunningSystem(
        target=Target(
            "resonetics",
            leader.address,
            others=tuple(a for a in cluster.addresses if a != leader.address),
        ),
        durability=DURABILITY,
        leader_pid=pid,
        stop=cluster.stop,
    )


__all__ = ["DURABILITY", "ResoneticsAdapter", "start"]
