"""Client CPU per call of one ``AsyncClient`` against a node that answers at once (not a test).

``python -m bench.client_cpu [--calls 60000] [--inflight 256] [--reps 3] [--op get|put]``
starts a scripted node in a child process (no Raft, no disk: a ``session_open`` is answered
with a session, anything else OK with a 100-character value and a write's receipt) and sends
``kv_get`` calls (or ``kv_set`` of 100-character values, which go through the client's
session: sequence numbers and acknowledgements) with N in flight through one
``AsyncClient``; it prints this process's CPU per call. Only the library's own cost is measured, so an A/B of two trees on a
loaded machine compares this figure rather than the rate.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time

_NODE = r"""
import asyncio, sys
import uvloop
from resonetics.wire.client import ClientResponse, encode_response
from resonetics.wire.envelope import decode_envelope
from resonetics.wire.framing import LineBuffer

RESULT = {"ok": True, "value": "v" * 100, "found": True,
          "receipt": {"index": 123456, "term": 3, "hash": "ab" * 32}}
SESSION = {"session": 7}

class Node(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.lines = transport, LineBuffer()

    def data_received(self, data):
        out = []
        for line in self.lines.feed(data):
            env = decode_envelope(line)
            opened = b'"session_open"' in bytes(env.payload)
            answer = ClientResponse(ok=True, code="OK", result=SESSION if opened else RESULT)
            out.append(encode_response(answer, 0, env.id))
        self.transport.write(b"".join(out))

async def main():
    loop = asyncio.get_running_loop()
    await loop.create_server(Node, "127.0.0.1", int(sys.argv[1]))
    await asyncio.Event().wait()

uvloop.run(main())
"""


async def _run(address: str, calls: int, inflight: int, op: str) -> None:
    from resonetics.client import AsyncClient

    client = AsyncClient(address, timeout=60)
    await client.get("warm")

    value = "v" * 100

    async def lane(first: int) -> None:
        for i in range(first, calls, inflight):
            if op == "put":
                await client.put(f"k{i % 1000}", value)
            else:
                await client.get(f"k{i % 1000}")

    started, cpu0 = time.perf_counter(), os.times()
    await asyncio.gather(*(lane(i) for i in range(inflight)))
    wall, cpu1 = time.perf_counter() - started, os.times()
    await client.close()
    cpu = cpu1.user + cpu1.system - cpu0.user - cpu0.system
    print(
        f"client CPU per {op} {cpu * 1e6 / calls:.1f} us; {calls / wall:,.0f} {op}s/s", flush=True
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--calls", type=int, default=60_000)
    parser.add_argument("--inflight", type=int, default=256)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--op", choices=("get", "put"), default="get")
    args = parser.parse_args()
    if args.calls < 1 or args.inflight < 1 or args.reps < 1:
        parser.error("--calls, --inflight and --reps must be >= 1")
    import uvloop

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    node = subprocess.Popen([sys.executable, "-c", _NODE, str(port)])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the scripted node did not start") from None
                time.sleep(0.05)
        for _ in range(args.reps):
            uvloop.run(_run(f"127.0.0.1:{port}", args.calls, args.inflight, args.op))
    finally:
        node.kill()
        node.wait()


if __name__ == "__main__":
    main()
