"""CPU of a one-shot ``resonetics kv get`` process, end to end (issue 19: <= 150 ms).

Run: ``PYTHONPATH=src .venv/bin/python bench/cli_startup.py [RUNS]``

Starts a stand-in node on loopback that answers every request with a found value
(so no cluster's CPU is mixed in), then runs ``python -m resonetics kv get k
--cluster ADDR`` RUNS times and prints, per run, the child's CPU seconds (user +
sys, from ``resource.getrusage(RUSAGE_CHILDREN)``) and wall seconds, with the
median and minimum of each, beside a bare ``python -c pass`` and ``import click``
measured in the same run. On a loaded machine the CPU figures are the ones to
read; wall time includes waiting for a core. Not a test: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time


def _stand_in() -> tuple[socket.socket, str]:
    server = socket.create_server(("127.0.0.1", 0))

    def serve_one(conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as lines:
            for line in lines:
                env = json.loads(line)
                reply = {
                    "kind": "ClientResponse",
                    "payload": {"ok": True, "code": "OK", "result": {"found": True, "value": "v"}},
                    "t": 0,
                    "v": 1,
                    "id": env.get("id"),
                }
                conn.sendall(json.dumps(reply).encode() + b"\n")

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=serve_one, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return server, f"127.0.0.1:{server.getsockname()[1]}"


def _run(argv: list[str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def _report(label: str, argv: list[str], runs: int) -> None:
    samples = [_run(argv) for _ in range(runs)]
    cpu = [s[0] for s in samples]
    wall = [s[1] for s in samples]
    print(
        f"{label:<24} cpu median {statistics.median(cpu) * 1e3:6.0f} ms  min {min(cpu) * 1e3:6.0f}"
        f"   wall median {statistics.median(wall) * 1e3:6.0f} ms  min {min(wall) * 1e3:6.0f}"
    )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cli_startup",
        description="CPU and wall time of a one-shot `resonetics kv get` against a stand-in node.",
    )
    parser.add_argument("runs", nargs="?", type=int, default=10, help="runs of each command")
    runs = parser.parse_args(argv).runs
    server, address = _stand_in()
    py = sys.executable
    try:
        _report("python -c pass", [py, "-c", "pass"], runs)
        _report("python -c 'import click'", [py, "-c", "import click"], runs)
        _report(
            "resonetics kv get",
            [py, "-m", "resonetics", "kv", "get", "k", "--cluster", address],
            runs,
        )
    finally:
        server.close()
    print(f"load average {os.getloadavg()[0]:.1f}, {runs} runs each")


if __name__ == "__main__":
    main(sys.argv[1:])
