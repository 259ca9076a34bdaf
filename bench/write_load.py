"""Pipelined puts for a few seconds: the load both cost benches (signing, auth) drive.

``inflight`` puts stay outstanding through ``AsyncClient``s (one per 64 in flight) for
``seconds`` after a 1 s warm-up; the result is writes per second over the measured window.
"""

from __future__ import annotations

import asyncio
import time

from resonetics.client import AsyncClient

#: Seconds of load before counting starts (connections, sessions, the leader's pace).
WARM_UP_S = 1.0
#: Puts in flight per client connection.
INFLIGHT_PER_CLIENT = 64


async def pipelined_puts(
    addresses: list[str], inflight: int, seconds: float, token: str | None = None
) -> float:
    """Writes per second with ``inflight`` puts outstanding for ``seconds``."""
    done = 0
    counting = False
    stop_at = time.monotonic() + WARM_UP_S + seconds

    async def worker(client: AsyncClient, w: int) -> None:
        nonlocal done
        i = 0
        while time.monotonic() < stop_at:
            await client.put(f"w{w}-{i % 100}", i)
            i += 1
            if counting:
                done += 1

    clients = [
        AsyncClient(addresses, timeout=30, token=token)
        for _ in range(max(1, inflight // INFLIGHT_PER_CLIENT))
    ]
    tasks = [asyncio.create_task(worker(clients[w % len(clients)], w)) for w in range(inflight)]
    await asyncio.sleep(WARM_UP_S)
    counting, started = True, time.monotonic()
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - started
    for c in clients:
        await c.close()
    return done / elapsed


__all__ = ["pipelined_puts"]
