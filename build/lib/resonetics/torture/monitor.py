"""Watches a running cluster: who leads (for the summary and the nemesis), who died on its own.

The monitor asks every node for its ``status`` twice a second over short-lived
requests with a short timeout (a paused node just does not answer). A node
process that exits while the nemesis has not killed it is a crash: it is
recorded with its exit code, and the run fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from resonetics.localcluster import LocalCluster
from resonetics.torture.workload import NO_ANSWER, NodeConnection
from resonetics.wire import codes

#: Seconds between two rounds of status requests.
POLL_INTERVAL_S = 0.5
#: How long one status request may take, seconds.
STATUS_TIMEOUT_S = 1.0


@dataclass
class Monitor:
    cluster: LocalCluster
    #: Nodes the nemesis stopped on purpose right now; their exit is not a crash.
    expected_down: Callable[[], set[str]]
    leaders: list[tuple[int, str]] = field(default_factory=list)
    crashes: list[dict[str, Any]] = field(default_factory=list)
    statuses: dict[str, dict[str, Any]] = field(default_factory=dict)
    _current: str | None = None

    @property
    def leader(self) -> str | None:
        return self._current

    async def run(self) -> None:
        while True:
            self.check_processes()
            await asyncio.gather(*(self._poll(n) for n in sorted(self.cluster.nodes)))
            await asyncio.sleep(POLL_INTERVAL_S)

    def check_processes(self) -> None:
        """Record every node that exited without the nemesis killing it."""
        down = self.expected_down()
        for node_id, node in self.cluster.nodes.items():
            if node_id in down or node.process is None:
                continue
            code = node.process.poll()
            if code is not None and not any(c["node"] == node_id for c in self.crashes):
                self.crashes.append({"node": node_id, "exit_code": code, "time": time.monotonic()})

    async def _poll(self, node_id: str) -> None:
        status = await fetch_status(self.cluster.nodes[node_id].address)
        if status is None:
            self.statuses.pop(node_id, None)
            return
        self.statuses[node_id] = status
        if status.get("role") == "leader":
            seen = (int(status.get("term", 0)), node_id)
            if seen not in self.leaders:
                self.leaders.append(seen)
            self._current = node_id
        elif self._current == node_id:
            self._current = None


async def fetch_status(address: str) -> dict[str, Any] | None:
    """One node's ``status``, or None if it does not answer in time."""
    conn = NodeConnection(address)
    payload = {"client_id": "torture-monitor", "request_id": "status", "op": "status", "args": {}}
    try:
        with contextlib.suppress(*NO_ANSWER):
            code, result = await conn.request(payload, STATUS_TIMEOUT_S)
            return result if code == codes.OK else None
        return None
    finally:
        conn.close()


__all__ = ["Monitor", "fetch_status"]
