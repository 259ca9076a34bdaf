"""A job queue with exactly-once acknowledgements, on the ready-made replicated ``Queue``.

    PYTHONPATH=examples resonetics serve --machine job_queue:make ...   (every node)
    python examples/job_queue.py 127.0.0.1:7001,127.0.0.1:7002 10

``take`` hands a worker the oldest available job for ``visibility_ms`` of log
time; a worker that dies (or is too slow) never acknowledges, and the job comes
back to the next ``take`` once that time has passed. ``ack(job, attempt)``
counts only for the attempt that holds the job, and the client's retries reuse
their request id, so each job is acknowledged exactly once even across a
leader crash. The work itself should be idempotent or recorded with the ack: a
job whose worker died after doing the work is done again (at-least-once
processing, exactly-once acknowledgement).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from resonetics import Client
from resonetics.machine.structures import Queue


def make() -> Queue:
    """The factory ``serve --machine job_queue:make`` calls."""
    return Queue()


def put(client: Client, payload: Any) -> int:
    """Enqueue ``payload``; its job id."""
    return int(client.call("put", payload=payload)["value"])


def work_one(
    client: Client, worker: str, handle: Callable[[Any], None], visibility_ms: int = 5_000
) -> int | None:
    """Take one job, run ``handle`` on its payload, acknowledge it: the job id if this
    worker's acknowledgement counted, None if there was no job (or it was lost)."""
    job = client.call("take", worker=worker, visibility_ms=visibility_ms)["value"]
    if job is None:
        return None
    handle(job["payload"])
    acked = client.call("ack", job=job["id"], attempt=job["attempt"])["value"]
    return int(job["id"]) if acked else None


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: job_queue.py ADDR[,ADDR...] JOBS", file=sys.stderr)
        return 2
    addresses, jobs = argv[0].split(","), int(argv[1])
    with Client(addresses, timeout=15) as client:
        for i in range(jobs):
            put(client, {"n": i})
        done = 0
        while work_one(client, "worker-1", lambda payload: None) is not None:
            done += 1
        print(f"{done} job(s) acknowledged; queue: {client.call('stats')['value']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
