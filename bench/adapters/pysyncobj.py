"""PySyncObj: three ``bench/pso_node.py`` processes, in memory, no fsync.

Two variants: ``pysyncobj`` (its default, ``appendEntriesUseBatch=True``) and
``pysyncobj-nobatch`` (``appendEntriesUseBatch=False``, which sends each entry
as soon as it is proposed). The adapter pipelines requests on a few
connections to the leader's front end, matched by request id.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from pathlib import Path
from typing import cast

from bench.adapters.base import (
    RequestFailed,
    RunningSystem,
    SystemFailed,
    Target,
    fail_pending,
    spawn,
    stop_processes,
)
from resonetics.localcluster import free_ports

DURABILITY = "in memory, never fsyncs (no journal file)"
NODE_SCRIPT = Path(__file__).resolve().parent.parent / "pso_node.py"
LEADER_WAIT_S = 30.0


class _Lines(asyncio.Protocol):
    def __init__(self) -> None:
        self.pending: dict[int, asyncio.Future[bytes]] = {}
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            req_id, _, rest = line.partition(b" ")
            future = self.pending.pop(int(req_id), None)
            if future is not None and not future.done():
                future.set_result(rest)

    def connection_lost(self, exc: Exception | None) -> None:
        fail_pending(self.pending, f"connection lost: {exc}")


class PySyncObjAdapter:
    def __init__(self, protocol: _Lines) -> None:
        self._protocol = protocol
        self._ids = itertools.count(1)

    @classmethod
    async def open(cls, target: Target) -> PySyncObjAdapter:
        host, _, port = target.address.rpartition(":")
        _, protocol = await asyncio.get_running_loop().create_connection(_Lines, host, int(port))
        return cls(protocol)

    async def call(self, text: str) -> bytes:
        transport = self._protocol.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("connection closed")
        req_id = next(self._ids)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._protocol.pending[req_id] = future
        transport.write(f"{req_id} {text}\n".encode())
        answer = await future
        if not answer.startswith(b"OK"):
            raise RequestFailed(answer.decode(errors="replace"))
        return answer

    async def write(self, key: str, value: str) -> None:
        await self.call(f"S {key} {value}")

    async def read(self, key: str) -> None:
        await self.call(f"G {key}")

    async def close(self) -> None:
        if self._protocol.transport is not None:
            self._protocol.transport.close()


async def _is_leader(front: str) -> bool:
    try:
        adapter = await PySyncObjAdapter.open(Target("pysyncobj", front))
    except OSError:
        return False
    try:
        return (await asyncio.wait_for(adapter.call("L"), 2.0)).endswith(b"leader")
    except (OSError, TimeoutError, RequestFailed):
        return False
    finally:
        await adapter.close()


def _find_leader(fronts: list[str]) -> str:
    deadline = time.monotonic() + LEADER_WAIT_S
    while time.monotonic() < deadline:
        for front in fronts:
            if asyncio.run(_is_leader(front)):
                return front
        time.sleep(0.2)
    raise SystemFailed(f"pysyncobj: no leader within {LEADER_WAIT_S}s")


def start(workdir: Path, *, batch: bool) -> RunningSystem:
    """Start three nodes (raft ports + front-end ports) and find the leader's front end."""
    root = workdir / ("pysyncobj" if batch else "pysyncobj-nobatch")
    root.mkdir(parents=True, exist_ok=True)
    ports = free_ports(6)
    raft = [f"127.0.0.1:{p}" for p in ports[:3]]
    procs = []
    for i in range(3):
        cmd = [sys.executable, str(NODE_SCRIPT), "--self", raft[i], "--front", str(ports[3 + i])]
        cmd += ["--partners", ",".join(r for r in raft if r != raft[i])]
        procs.append(spawn([*cmd, *([] if batch else ["--no-batch"])], root / f"p{i}.log"))
    fronts = [f"127.0.0.1:{p}" for p in ports[3:]]
    try:
        leader = _find_leader(fronts)
    except SystemFailed:
        stop_processes(procs)
        raise
    name = "pysyncobj" if batch else "pysyncobj-nobatch"
    mode = "appendEntriesUseBatch=True (default)" if batch else "appendEntriesUseBatch=False"
    return RunningSystem(
        target=Target(name, leader, variant=mode),
        durability=DURABILITY,
        leader_pid=procs[fronts.index(leader)].pid,
        stop=lambda: stop_processes(procs),
        notes=[mode, "reads go through the log (@replicated get): linearizable"],
    )


__all__ = ["DURABILITY", "PySyncObjAdapter", "start"]
