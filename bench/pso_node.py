"""One PySyncObj node with a tiny TCP line front end, for the benchmark.

Run as ``python bench/pso_node.py --self 127.0.0.1:P --partners A,B --front F
[--no-batch]``. Durability: PySyncObj keeps its log in memory here and never
fsyncs (no journal file), which is its default.

Front-end protocol, one request per line, answers may come out of order::

    <id> S <key> <value>   -> <id> OK
    <id> G <key>           -> <id> OK <value>
    <id> I <by>            -> <id> OK <new value>   (the replicated counter)
    <id> L                 -> <id> OK leader|follower

Both ``set`` and ``get`` are ``@replicated`` methods, so a read goes through
the log and is linearizable (PySyncObj has no ReadIndex or lease read); the
comparison with etcd and Resonetics linearizable reads is then like for like.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any, cast

from pysyncobj import SyncObj, SyncObjConf, replicated  # type: ignore[import-untyped]

_LEADER_STATE = 2  # pysyncobj's _RAFT_STATE.LEADER


class BenchKV(SyncObj):  # type: ignore[misc]  # pysyncobj ships no type hints
    def __init__(self, self_addr: str, partners: list[str], conf: SyncObjConf) -> None:
        super().__init__(self_addr, partners, conf=conf)
        self._data: dict[str, str] = {}
        self._count = 0

    @replicated  # type: ignore[untyped-decorator]
    def set(self, key: str, value: str) -> None:
        self._data[key] = value

    @replicated  # type: ignore[untyped-decorator]
    def get(self, key: str) -> str | None:
        return self._data.get(key)

    @replicated  # type: ignore[untyped-decorator]
    def incr(self, by: int) -> int:
        """The counter of bench/counter_vs_pysyncobj.py (examples/counter.py's twin)."""
        self._count += by
        return self._count


class FrontEnd(asyncio.Protocol):
    def __init__(self, kv: BenchKV, loop: asyncio.AbstractEventLoop) -> None:
        self.kv = kv
        self.loop = loop
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            self._handle(line.decode().split(" ", 3))

    def _reply(self, text: str) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(text.encode() + b"\n")

    def _callback(self, req_id: str) -> Any:
        def done(result: Any, error: Any) -> None:  # called on the SyncObj thread
            text = f"{req_id} OK {result or ''}" if error == 0 else f"{req_id} ERR {error}"
            self.loop.call_soon_threadsafe(self._reply, text)

        return done

    def _handle(self, parts: list[str]) -> None:
        req_id, op = parts[0], parts[1]
        if op == "S":
            self.kv.set(parts[2], parts[3], callback=self._callback(req_id))
        elif op == "G":
            self.kv.get(parts[2], callback=self._callback(req_id))
        elif op == "I":
            self.kv.incr(int(parts[2]), callback=self._callback(req_id))
        else:
            role = "leader" if self.kv.getStatus()["state"] == _LEADER_STATE else "follower"
            self._reply(f"{req_id} OK {role}")


async def serve(args: argparse.Namespace) -> None:
    conf = SyncObjConf(appendEntriesUseBatch=not args.no_batch, dynamicMembershipChange=False)
    kv = BenchKV(args.self_addr, [p for p in args.partners.split(",") if p], conf)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: FrontEnd(kv, loop), "127.0.0.1", args.front)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--self", dest="self_addr", required=True)
    parser.add_argument("--partners", required=True)
    parser.add_argument("--front", type=int, required=True)
    parser.add_argument("--no-batch", action="store_true")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
