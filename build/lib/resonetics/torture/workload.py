"""Concurrent clients that record a Jepsen-style history against a real cluster.

Theory of operation
-------------------
Each *logical client* runs one operation at a time over its own connection,
sends each request exactly **once** (never a retry under the same
``request_id``: a retry would turn a definite rejection into an unknown), and
records what it learned:

* ``OK`` -> ``ok``; ``NOT_LEADER`` / ``BAD_REQUEST`` -> ``fail`` (the node
  refused it before proposing, so it certainly did not take effect);
* anything else (``TIMEOUT``, ``UNAVAILABLE``, a lost connection, no answer in
  ``op_timeout_s``) -> ``info``: the outcome is unknown, the op stays pending
  forever, and the logical client goes on under a new process id.

Values written are unique (``<process>.<counter>``), which keeps the checker's
search small. Clients follow ``NOT_LEADER`` hints by node id, mapped to the
node's *real* address (a node's own peer list names proxies).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import msgspec

from resonetics import limits
from resonetics.check.history import HistoryRecorder, OpHandle, OpKind
from resonetics.errors import ResoneticsError
from resonetics.wire import codes
from resonetics.wire.client import decode_response
from resonetics.wire.envelope import decode_envelope, encode_envelope

#: Codes that mean "certainly not applied" for a write.
DEFINITE_FAILURES = frozenset({codes.NOT_LEADER, codes.BAD_REQUEST})


@dataclass
class WorkloadStats:
    """Counts for the run summary."""

    ok: int = 0
    fail: int = 0
    info: int = 0
    by_code: Counter[str] = field(default_factory=Counter)
    leaders_seen: set[tuple[int, str]] = field(default_factory=set)


class NodeConnection:
    """One request at a time over one TCP connection to one node."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._ids = itertools.count(1)

    @property
    def is_open(self) -> bool:
        return self._writer is not None

    async def open(self, timeout_s: float) -> None:
        """Connect if not connected. A failure here means nothing was sent."""
        if self._writer is None:
            host, _, port = self.address.rpartition(":")
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(host, int(port), limit=limits.LINE_BYTES_MAX), timeout_s
            )

    async def request(
        self, payload: dict[str, Any], timeout_s: float
    ) -> tuple[str, dict[str, Any]]:
        """Send one ``ClientRequest``; return (code, result). Raises one of ``NO_ANSWER``."""
        async with asyncio.timeout(timeout_s):
            await self.open(timeout_s)
            assert self._reader is not None and self._writer is not None
            req_id = next(self._ids)
            self._writer.write(
                encode_envelope("ClientRequest", payload, int(time.time() * 1000), req_id)
            )
            while True:
                line = await self._reader.readuntil(b"\n")
                env = decode_envelope(line)
                if env.id == req_id:
                    response = decode_response(env)
                    result = response.result
                    return response.code, result if isinstance(result, dict) else {}

    def close(self) -> None:
        if self._writer is not None:
            self._writer.transport.abort()
        self._reader = self._writer = None


@dataclass
class WorkloadOptions:
    keys: int = 5
    clients: int = 10
    op_timeout_s: float = 3.0
    #: Pause between one client's operations, seconds (uniform 0..this).
    think_s: float = 0.02
    #: Pause after an op that did not succeed (no leader, node down), seconds (uniform 0..this).
    backoff_s: float = 0.1


class Workload:
    """Random set/get/delete/cas on a few keys from many logical clients."""

    def __init__(
        self,
        addresses: dict[str, str],
        recorder: HistoryRecorder,
        rng: random.Random,
        options: WorkloadOptions,
    ) -> None:
        self.addresses = dict(addresses)
        self.recorder = recorder
        self.options = options
        self.stats = WorkloadStats()
        self._rng = random.Random(rng.random())
        self._process_ids = itertools.count(0)
        self._values = itertools.count(1)
        #: key -> values recently written to it, so that a cas often expects a live value.
        self._recent: dict[str, deque[str]] = {}
        self._stopping = asyncio.Event()

    def key(self, i: int) -> str:
        return f"k{i}"

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for i in range(self.options.clients):
                group.create_task(self._client(i, random.Random(self._rng.random())))

    def stop(self) -> None:
        self._stopping.set()

    async def _client(self, index: int, rng: random.Random) -> None:
        process = next(self._process_ids)
        target = self._random_node(rng)
        conn = NodeConnection(self.addresses[target])
        client_id = f"torture-{index}-{rng.getrandbits(32):08x}"
        request_ids = itertools.count(1)
        try:
            while not self._stopping.is_set():
                f, key, value, args = self._choose(rng)
                handle = self.recorder.invoke(process, f, key, value)
                payload = {
                    "client_id": client_id,
                    "request_id": f"{client_id}-{next(request_ids)}",
                    "op": _WIRE_OPS[f],
                    "args": args,
                }
                outcome, hint = await self._attempt(conn, payload, handle)
                if outcome == "info":
                    process = next(self._process_ids)
                if hint != conn.address:
                    conn.close()
                    conn = NodeConnection(hint)
                pause = self.options.think_s if outcome == "ok" else self.options.backoff_s
                await asyncio.sleep(rng.uniform(0, pause))
        finally:
            conn.close()

    async def _attempt(
        self, conn: NodeConnection, payload: dict[str, Any], handle: OpHandle
    ) -> tuple[str, str]:
        """Run one op, record its completion; return (outcome, address to use next)."""
        try:
            await conn.open(self.options.op_timeout_s)
        except NO_ANSWER as exc:
            # Never connected, so never sent: certainly not applied.
            self.stats.by_code[f"connect: {type(exc).__name__}"] += 1
            self.recorder.fail(handle)
            self.stats.fail += 1
            conn.close()
            return "fail", self.addresses[self._random_node(self._rng)]
        try:
            code, result = await conn.request(payload, self.options.op_timeout_s)
        except NO_ANSWER as exc:
            self.stats.by_code[type(exc).__name__] += 1
            self.recorder.info(handle)
            self.stats.info += 1
            conn.close()
            return "info", self.addresses[self._random_node(self._rng)]
        self.stats.by_code[code] += 1
        if code == codes.OK:
            self._record_ok(handle, result)
            return "ok", conn.address
        if code in DEFINITE_FAILURES:
            self.recorder.fail(handle)
            self.stats.fail += 1
            return "fail", self._follow_hint(code, result, conn.address)
        self.recorder.info(handle)
        self.stats.info += 1
        return "info", conn.address

    def _record_ok(self, handle: OpHandle, result: dict[str, Any]) -> None:
        self.stats.ok += 1
        if handle.f == "get":
            self.recorder.ok(handle, result.get("value"))
        elif handle.f == "cas":
            self.recorder.ok(handle, success=bool(result.get("swapped")))
        elif handle.f == "delete":
            self.recorder.ok(handle, deleted=bool(result.get("deleted")))
        else:
            self.recorder.ok(handle)

    def _follow_hint(self, code: str, result: dict[str, Any], current: str) -> str:
        leader = result.get("leader")
        term = result.get("term")
        if isinstance(leader, str) and isinstance(term, int):
            self.stats.leaders_seen.add((term, leader))
        if code == codes.NOT_LEADER:
            if isinstance(leader, str) and leader in self.addresses:
                return self.addresses[leader]
            return self.addresses[self._random_node(self._rng)]
        return current

    def _random_node(self, rng: random.Random) -> str:
        return rng.choice(sorted(self.addresses))

    def _choose(self, rng: random.Random) -> tuple[OpKind, str, Any, dict[str, Any]]:
        key = self.key(rng.randrange(self.options.keys))
        roll = rng.random()
        if roll < 0.35:
            return "get", key, None, {"k": key}
        value = f"{next(self._values)}"
        recent = self._recent.setdefault(key, deque(maxlen=3))
        if roll < 0.65:
            recent.append(value)
            return "set", key, value, {"k": key, "v": value}
        if roll < 0.75 or not recent:
            return "delete", key, None, {"k": key}
        expected = rng.choice(list(recent))
        recent.append(value)
        return "cas", key, [expected, value], {"k": key, "expected": expected, "v": value}

    async def final_reads(self, deadline_s: float) -> dict[str, Any]:
        """Read every key until each read succeeds (recorded in the history)."""
        values: dict[str, Any] = {}
        rng = random.Random(self._rng.random())
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline_s
        for i in range(self.options.keys):
            key = self.key(i)
            process = next(self._process_ids)
            conn = NodeConnection(self.addresses[self._random_node(rng)])
            try:
                while key not in values and loop.time() < end:
                    values_got = await self._final_read(conn, process, key)
                    if values_got is not None:
                        values[key] = values_got[0]
                        break
                    process = next(self._process_ids)
                    conn.close()
                    conn = NodeConnection(self.addresses[self._random_node(rng)])
                    await asyncio.sleep(0.1)
            finally:
                conn.close()
        return values

    async def _final_read(self, conn: NodeConnection, process: int, key: str) -> tuple[Any] | None:
        handle = self.recorder.invoke(process, "get", key)
        payload = {
            "client_id": "torture-final",
            "request_id": f"final-{process}",
            "op": "kv_get",
            "args": {"k": key},
        }
        with contextlib.suppress(*NO_ANSWER):
            code, result = await conn.request(payload, self.options.op_timeout_s)
            if code == codes.OK:
                self.recorder.ok(handle, result.get("value"))
                return (result.get("value"),)
        self.recorder.info(handle)
        return None


#: What a lost connection, a stalled node or a garbled answer raise: no definite answer.
NO_ANSWER = (
    OSError,
    TimeoutError,
    ValueError,
    asyncio.IncompleteReadError,
    asyncio.LimitOverrunError,
    ResoneticsError,
    msgspec.MsgspecError,
)

_WIRE_OPS: dict[str, str] = {
    "get": "kv_get",
    "set": "kv_set",
    "delete": "kv_delete",
    "cas": "kv_cas",
}

__all__ = ["NO_ANSWER", "NodeConnection", "Workload", "WorkloadOptions", "WorkloadStats"]
