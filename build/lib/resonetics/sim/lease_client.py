"""A simulated lease user: grant, attach keys, keep alive for a while, then let it expire.

Each round a client grants a lease (TTL 1-1.6 virtual s), puts a key under
it (``lease/<client>/<n>``), sends keep-alives every third of the TTL for a
random number of rounds (sometimes none), then stops and waits past the TTL:
the leader must expire it. A round may instead revoke its lease. Every
acknowledged grant and keep-alive is reported to ``LeaseMonitor`` as a promise
(its send time plus the TTL); the monitor checks no lease ends before its
promise and every replica ends the same leases at the same index.

Requests follow NOT_LEADER hints and are retried on another node after a
timeout, like ``SimClient``'s; a keep-alive that is not acknowledged is simply
not a promise.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from typing import Any

from resonetics.runtime.outcome import Outcome
from resonetics.sim.cluster import Cluster
from resonetics.wire import codes

#: Virtual ms a lease client waits for an answer before trying another node.
ATTEMPT_TIMEOUT_MS = 150
#: The shortest TTL the machine grants (limits.LEASE_TTL_MS_MIN) up to 1.6 s of virtual time.
TTL_MS = (1000, 1600)


class LeaseClient:
    """One simulated lease user (see the module docstring)."""

    def __init__(self, name: str, cluster: Cluster, rng: random.Random, stop_ms: int) -> None:
        self.name = name
        self.cluster = cluster
        self.rng = rng
        self.stop_ms = stop_ms
        self._ids = itertools.count(1)
        self._hint: str | None = None
        self._round = 0
        self.granted = 0
        self.kept = 0

    def start(self, delay_ms: int) -> None:
        self.cluster.queue.after(delay_ms, self._next_round)

    def _now(self) -> int:
        return self.cluster.queue.now_ms

    def _send(
        self, op: str, args: dict[str, Any], done: Callable[[Outcome, int, int], None]
    ) -> None:
        """Send until answered (or the run's end); ``done(outcome, sent_ms, first_ms)``:
        when the answered attempt and the first attempt were sent (a retried grant may
        have been applied from its first attempt)."""
        request_id = f"{self.name}-{next(self._ids)}"
        request = {"client_id": self.name, "request_id": request_id, "op": op, "args": args}
        state: dict[str, Any] = {"answered": False, "first": self._now()}

        def attempt(target: str) -> None:
            if state["answered"] or self._now() >= self.stop_ms:
                return
            sent = self._now()
            net, cluster = self.cluster.network, self.cluster

            def reply(outcome: Outcome) -> None:
                net.send(target, self.name, outcome, lambda: on_answer(target, outcome, sent))

            net.send(
                self.name, target, request, lambda: cluster.client_request(target, request, reply)
            )
            cluster.queue.after(ATTEMPT_TIMEOUT_MS, lambda: retry(sent))
            state["last"] = sent

        def retry(sent: int) -> None:
            if not state["answered"] and state.get("last") == sent:
                attempt(self.rng.choice(self.cluster.ids))

        def on_answer(target: str, outcome: Outcome, sent: int) -> None:
            if state["answered"] or state.get("last") != sent:
                return
            if outcome.code == codes.NOT_LEADER:
                hint = outcome.result.get("leader") if isinstance(outcome.result, dict) else None
                self._hint = hint if isinstance(hint, str) else None
                nxt = self._hint or self.rng.choice(self.cluster.ids)
                self.cluster.queue.after(10, lambda: attempt(nxt))
                state["last"] = -1
                return
            if outcome.code in (codes.TIMEOUT, codes.UNAVAILABLE, codes.RATE_LIMITED):
                self.cluster.queue.after(20, lambda: attempt(self.rng.choice(self.cluster.ids)))
                state["last"] = -1
                return
            state["answered"] = True
            self._hint = target
            done(outcome, sent, int(state["first"]))

        attempt(self._hint or self.rng.choice(self.cluster.ids))

    def _next_round(self) -> None:
        if self._now() >= self.stop_ms:
            return
        ttl = self.rng.randint(*TTL_MS)
        keepalives = self.rng.choice((0, 1, 3, 6))
        self._round += 1
        key = f"lease/{self.name}/{self._round}"

        def granted(outcome: Outcome, sent: int, first: int) -> None:
            result = outcome.result if isinstance(outcome.result, dict) else {}
            if not outcome.ok or not result.get("ok"):
                self.cluster.queue.after(50, self._next_round)
                return
            lease_id = int(result["id"])
            self.granted += 1
            self.cluster.monitor.leases.promise(lease_id, first + ttl)
            self._send("kv_set", {"k": key, "v": self._round, "lease": lease_id}, _ignore)
            self._keep(lease_id, ttl, keepalives)

        self._send("lease_grant", {"ttl_ms": ttl}, granted)

    def _keep(self, lease_id: int, ttl: int, left: int) -> None:
        if left == 0 or self._now() >= self.stop_ms:
            if self.rng.random() < 0.2:
                self.cluster.monitor.leases.revoked.add(lease_id)
                self._send("lease_revoke", {"id": lease_id}, _ignore)
            # Let it expire: the next round starts after the TTL has run out.
            self.cluster.queue.after(ttl + self.rng.randint(0, ttl), self._next_round)
            return

        def acked(outcome: Outcome, sent: int, first: int) -> None:
            if outcome.ok:
                self.kept += 1
                self.cluster.monitor.leases.promise(lease_id, sent + ttl)
                self._keep(lease_id, ttl, left - 1)
            else:  # LEASE_NOT_FOUND: it ended (late keep-alive); start over
                self.cluster.queue.after(ttl, self._next_round)

        def send() -> None:
            self._send("lease_keepalive", {"id": lease_id}, acked)

        self.cluster.queue.after(ttl // 3, send)


def _ignore(outcome: Outcome, sent: int, first: int) -> None:
    """An answer the round does not wait for (the key's put, a revoke)."""


__all__ = ["LeaseClient"]
