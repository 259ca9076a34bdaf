"""How long a live node stalls while it takes a snapshot (not a test; prints one figure).

Starts a one-node cluster with ``--snapshot-entries N``, writes N keys (pipelined),
then keeps a reader issuing linearizable gets back to back while the write that
crosses the threshold triggers the snapshot, and prints the worst read latency seen
until the snapshot is recorded in the node's status.

    .venv/bin/python bench/snapshot_stall.py --keys 200000
"""

from __future__ import annotations

import argparse
import json
import socket
import tempfile
import threading
import time
from pathlib import Path

from resonetics.localcluster import LocalCluster

BATCH = 5000


def _request(i: int, op: str, key: str) -> bytes:
    args = {"k": key, "v": "x" * 40} if op == "kv_set" else {"k": key}
    payload = {"client_id": "bench", "request_id": f"r{i}", "op": op, "args": args}
    return (
        json.dumps({"kind": "ClientRequest", "payload": payload, "t": 0, "v": 1, "id": i}) + "\n"
    ).encode()


def _write(sock: socket.socket, reader: object, start: int, stop: int) -> None:
    for base in range(start, stop, BATCH):
        top = min(stop, base + BATCH)
        sock.sendall(b"".join(_request(i, "kv_set", f"key{i}") for i in range(base, top)))
        for _ in range(base, top):
            reader.readline()  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=200_000)
    keys = parser.parse_args().keys
    with tempfile.TemporaryDirectory() as tmp:
        extra = ["--snapshot-entries", str(keys), "--rate-limit", "0/s"]
        with LocalCluster(Path(tmp), size=1, log_level="warning", extra_args=extra) as cluster:
            leader, _ = cluster.wait_for_leader()
            host, _, port = cluster.nodes[leader].address.rpartition(":")
            sock = socket.create_connection((host, int(port)))
            stream = sock.makefile("rb")
            _write(sock, stream, 0, keys - 10)
            worst = [0.0]
            stop = threading.Event()

            def read_loop() -> None:
                conn = socket.create_connection((host, int(port)))
                lines = conn.makefile("rb")
                i = 10**9
                while not stop.is_set():
                    started = time.perf_counter()
                    conn.sendall(_request(i, "kv_get", "key1"))
                    lines.readline()
                    worst[0] = max(worst[0], time.perf_counter() - started)
                    i += 1

            thread = threading.Thread(target=read_loop)
            thread.start()
            _write(sock, stream, keys - 10, keys + 100)
            deadline = time.monotonic() + 30
            status = cluster.status(leader) or {}
            while time.monotonic() < deadline and not status.get("snapshot", {}).get("taken"):
                time.sleep(0.2)
                status = cluster.status(leader) or {}
            time.sleep(0.5)
            stop.set()
            thread.join()
    print(f"snapshot: {status.get('snapshot')}")
    print(f"worst linearizable read latency while it was taken: {worst[0] * 1000:.1f} ms")


if __name__ == "__main__":
    main()
