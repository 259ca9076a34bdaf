"""Resonetics: a local cluster of ``resonetics serve`` processes, fsync on (the default).

The adapter speaks the client protocol directly (``wire`` codec over a raw
asyncio protocol) instead of going through ``AsyncClient``: that keeps the
generator's cost per request small and lets many requests share one
connection, matched by envelope ``id``. Reads are ``kv_get`` with
``consistency="linearizable"`` (ReadIndex on the leader).

Variants, each its own labelled system so one run can table them side by side:
``resonetics-tls`` (mutual TLS on client and peer links, certificates from
``security/certs.py``), ``resonetics-signed`` (a trust registry on every node:
the leader signs each entry, followers check every signature) and
``resonetics-client`` (the library: one ``AsyncClient``, one connection,
carrying all N requests, as a user with one client runs it).
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
import time
import uuid
from pathlib import Path
from typing import Any, cast

from bench.adapters.base import RequestFailed, RunningSystem, SystemFailed, Target, fail_pending
from resonetics.client import AsyncClient
from resonetics.security.certs import ClusterTLS
from resonetics.security.tls import TLSConfig, client_context
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


def tls_config(files: tuple[str, str, str] | None) -> TLSConfig | None:
    """The client TLS setting for a target's (CA, certificate, key) paths."""
    if files is None:
        return None
    ca, cert, key = files
    return TLSConfig(Path(ca), Path(cert), Path(key))


async def _connect(address: str, context: ssl.SSLContext | None = None) -> _Lines:
    host, _, port = address.rpartition(":")
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(_Lines, host, int(port), ssl=context)
    return protocol


class ResoneticsAdapter:
    """One pipelined connection to the leader; follows the leader when it moves.

    A request answered ``NOT_LEADER`` (or cut by a lost connection) counts as
    an error, and the connection moves to the hinted leader, else to the next
    node, so the run measures the cluster through an election instead of
    failing every later request.
    """

    def __init__(
        self, protocol: _Lines, addresses: list[str], context: ssl.SSLContext | None = None
    ) -> None:
        self._protocol = protocol
        self._context = context
        self._addresses = addresses
        self._next_address = 1
        self._lock = asyncio.Lock()
        self._ids = itertools.count(1)
        self._client_id = uuid.uuid4().hex

    @classmethod
    async def open(cls, target: Target) -> ResoneticsAdapter:
        config = tls_config(target.tls_files)
        context = client_context(config) if config is not None else None
        protocol = await _connect(target.address, context)
        return cls(protocol, [target.address, *target.others], context)

    async def _move(self, stale: _Lines, hint: str | None) -> None:
        async with self._lock:
            if self._protocol is not stale:
                return  # another request already moved this connection
            if stale.transport is not None:
                stale.transport.close()
            address = hint or self._addresses[self._next_address % len(self._addresses)]
            self._next_address += 1
            try:
                self._protocol = await _connect(address, self._context)
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


class LibraryClientAdapter:
    """The library as users run it: one ``AsyncClient`` (one connection) for all N requests."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    @classmethod
    async def open(cls, target: Target) -> LibraryClientAdapter:
        addresses = [target.address, *target.others]
        return cls(AsyncClient(addresses, timeout=30, tls=tls_config(target.tls_files)))

    async def write(self, key: str, value: str) -> None:
        await self._client.put(key, value)

    async def read(self, key: str) -> None:
        await self._client.get(key, consistency="linearizable")

    async def close(self) -> None:
        await self._client.close()


NODE_IDS = ("n1", "n2", "n3")

#: What each variant adds to the plain cluster, for the report's notes.
VARIANT_NOTES = {
    "resonetics": "raw client protocol, requests pipelined over min(N, 4) connections",
    "resonetics-tls": "mutual TLS on client and peer links; raw protocol as `resonetics`",
    "resonetics-signed": "trust registry on every node: leader signs each entry (Ed25519), "
    "followers check every signature; raw protocol as `resonetics`",
    "resonetics-client": "the library: one AsyncClient (one connection) carries all N requests",
}


def cluster_extra_args(workdir: Path, signed: bool) -> list[str]:
    """``serve`` flags for the signed variant (a registry of the nodes' own keys), else none."""
    if not signed:
        return []
    from resonetics.security.signing import load_or_create_node_key, registry_from_node_dirs

    data = workdir / "data"
    for node in NODE_IDS:
        load_or_create_node_key(data / node)
    registry = workdir / "registry.toml"
    registry.write_text(registry_from_node_dirs({n: data / n for n in NODE_IDS}).to_toml())
    return ["--trust-registry", str(registry)]


def start(
    workdir: Path, tick_ms: int = 25, *, system: str = "resonetics", tls: ClusterTLS | None = None
) -> RunningSystem:
    """Start three nodes on free loopback ports and wait for a leader."""
    from resonetics.localcluster import LocalCluster

    if system not in VARIANT_NOTES:
        raise SystemFailed(f"unknown Resonetics variant {system!r}")
    root = workdir / system
    root.mkdir(parents=True, exist_ok=True)
    extra = cluster_extra_args(root, signed=system == "resonetics-signed")
    cluster = LocalCluster(
        root / "data", size=3, tick_ms=tick_ms, log_level="warning", extra_args=extra, tls=tls
    )
    cluster.start()
    try:
        leader_id, _ = cluster.wait_for_leader(LEADER_WAIT_S)
    except Exception as exc:
        cluster.stop()
        raise SystemFailed(f"resonetics: no leader ({exc}); logs in {cluster.data_dir}") from exc
    leader = cluster.nodes[leader_id]
    pid = leader.process.pid if leader.process is not None else None
    files = None
    if tls is not None and tls.client is not None and tls.client.cert and tls.client.key:
        files = (str(tls.ca), str(tls.client.cert), str(tls.client.key))
    return RunningSystem(
        target=Target(
            system,
            leader.address,
            others=tuple(a for a in cluster.addresses if a != leader.address),
            tls_files=files,
            connections=1 if system == "resonetics-client" else 0,
        ),
        durability=DURABILITY,
        leader_pid=pid,
        stop=cluster.stop,
        notes=[VARIANT_NOTES[system]],
    )


__all__ = [
    "DURABILITY",
    "NODE_IDS",
    "VARIANT_NOTES",
    "LibraryClientAdapter",
    "ResoneticsAdapter",
    "cluster_extra_args",
    "start",
    "tls_config",
]
