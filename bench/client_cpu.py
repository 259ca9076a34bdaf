"""Client CPU per call of one ``AsyncClient`` against a node that answers at once (not a test).

``python -m bench.client_cpu [--calls 60000] [--inflight 256] [--reps 3]`` starts a scripted
node in a child process (every request answered OK with a 100-character value, no Raft, no
disk) and sends ``kv_get`` calls with N in flight through one ``AsyncClient``; it prints this
process's CPU per call. Only the library's own cost is measured, so an A/B of two trees on a
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

RESULT = {"ok": True, "value": "v" * 100, "found": True}

class Node(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.lines = transport, LineBuffer()

    def data_received(self, data):
        answer = ClientResponse(ok=True, code="OK", result=RESULT)
        out = [encode_response(answer, 0, decode_envelope(l).id) for l in self.lines.feed(data)]
        self.transport.write(b"".join(out))

async def main():
    loop = asyncio.get_running_loop()
    await loop.create_server(Node, "127.0.0.1", int(sys.argv[1]))
    await asyncio.Event().wait()

uvloop.run(main())
"""


async def _run(address: str, calls: int, inflight: int) -> None:
    from resonetics.client import AsyncClient

    client = AsyncClient(address, timeout=60)
    await client.get("warm")

    async def lane(first: int) -> None:
        for i in range(first, calls, inflight):
            await client.get(f"k{i % 1000}")

    started, cpu0 = time.perf_counter(), os.times()
    await asyncio.gather(*(lane(i) for i in range(inflight)))
    wall, cpu1 = time.perf_counter() - started, os.times()
    await client.close()
    cpu = cpu1.user + cpu1.system - cpu0.user - cpu0.system
    print(f"client CPU per get {cpu * 1e6 / calls:.1f} us; {calls / wall:,.0f} gets/s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--calls", type=int, default=60_000)
    parser.add_argument("--inflight", type=int, default=256)
    parser.add_argument("--reps", type=int, default=3)
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
            uvloop.run(_run(f"127.0.0.1:{port}", args.calls, args.inflight))
    finally:
        node.kill()
        node.wait()


if __name__ == "__main__":
    main()
