"""Exactly-once client sessions (Raft dissertation §6.3).

Theory of operation
-------------------
A client may retry a request whose outcome it never heard (a TIMEOUT, a lost
connection, a new leader). Each client command therefore carries
``(client_id, request_id)``, and the replicated state remembers, per client,
the result of every recent request: a retry that reaches the log again is
answered with the *original* result and not re-applied.

The table is part of the replicated state, so everything about it must be
deterministic. It is bounded in two ways and expires by *log* time:

* per client, at most ``results_per_client_max`` results (oldest evicted):
  a client must not have more requests than that outstanding at once;
* at most ``clients_max`` clients (least recently used evicted);
* a session idle for more than ``expiry_ms`` of log time is dropped. Log time
  is the largest ``ts`` the leaders stamped on client entries so far (a
  maximum, so a new leader whose clock is behind cannot move it backwards);
  no replica ever reads its own clock.

Because sessions are touched in log-time order, their ``last_ms`` values are
non-decreasing in LRU order, so expiry only ever looks at the front.

A retry that arrives after its result was evicted or its session expired is
applied again; the bounds are chosen so that this takes a client that broke
the rules above or was gone for a day.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from resonetics import limits
from resonetics.errors import invariant


@dataclass(slots=True)
class _Session:
    last_ms: int
    #: request_id -> result, oldest first.
    results: OrderedDict[str, Any] = field(default_factory=OrderedDict)


class SessionData(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """One session in a snapshot: ``[client_id, last_ms, [[request_id, result], ...]]``."""

    client_id: str
    last_ms: int
    results: list[tuple[str, Any]]


class SessionTableData(msgspec.Struct, frozen=True, kw_only=True):
    """The table in a snapshot; ``clients`` in LRU order (least recently used first)."""

    now_ms: int
    clients: list[SessionData]


_NOT_FOUND: Final = object()


class SessionTable:
    """client_id -> {request_id -> result}, bounded, expired by log time."""

    def __init__(
        self,
        *,
        results_per_client_max: int = limits.SESSION_RESULTS_PER_CLIENT_MAX,
        clients_max: int = limits.SESSION_CLIENTS_MAX,
        expiry_ms: int = limits.SESSION_EXPIRY_MS,
    ) -> None:
        self.results_per_client_max = results_per_client_max
        self.clients_max = clients_max
        self.expiry_ms = expiry_ms
        # Invariant: last_ms is non-decreasing along this order, and <= self._now_ms.
        self._clients: OrderedDict[str, _Session] = OrderedDict()
        self._now_ms = 0

    def __len__(self) -> int:
        return len(self._clients)

    @property
    def now_ms(self) -> int:
        """Log time: the largest entry timestamp applied so far."""
        return self._now_ms

    def clients(self) -> list[str]:
        """Client ids, least recently used first."""
        return list(self._clients)

    def lookup(self, client_id: str, request_id: str) -> tuple[bool, Any]:
        """(found, result) — a pure read: it never changes LRU order (leaders call it
        before proposing, outside the log, where a change would diverge replicas)."""
        session = self._clients.get(client_id)
        if session is None:
            return False, None
        result = session.results.get(request_id, _NOT_FOUND)
        if result is _NOT_FOUND:
            return False, None
        return True, result

    def advance(self, ts_ms: int) -> list[str]:
        """Move log time to ``max(now, ts_ms)`` and drop expired sessions; returns them."""
        self._now_ms = max(self._now_ms, ts_ms)
        expired: list[str] = []
        while self._clients:
            client_id, session = next(iter(self._clients.items()))
            if self._now_ms - session.last_ms <= self.expiry_ms:
                break
            del self._clients[client_id]
            expired.append(client_id)
        return expired

    def touch(self, client_id: str) -> None:
        """Mark the client as used now (during apply only)."""
        session = self._clients.get(client_id)
        if session is not None:
            session.last_ms = self._now_ms
            self._clients.move_to_end(client_id)

    def record(self, client_id: str, request_id: str, result: Any) -> None:
        """Remember ``result`` for a request applied now, evicting beyond the bounds."""
        session = self._clients.get(client_id)
        if session is None:
            session = self._clients[client_id] = _Session(self._now_ms)
        invariant(request_id not in session.results, "request %r applied twice", request_id)
        session.results[request_id] = result
        self.touch(client_id)
        while len(session.results) > self.results_per_client_max:
            session.results.popitem(last=False)
        while len(self._clients) > self.clients_max:
            self._clients.popitem(last=False)

    # --- snapshot ------------------------------------------------------------------------
    def to_data(self) -> SessionTableData:
        return SessionTableData(
            now_ms=self._now_ms,
            clients=[
                SessionData(client_id=cid, last_ms=s.last_ms, results=list(s.results.items()))
                for cid, s in self._clients.items()
            ],
        )

    def load_data(self, data: SessionTableData) -> None:
        """Replace the table with ``data`` (as produced by ``to_data``)."""
        self._now_ms = data.now_ms
        self._clients = OrderedDict(
            (s.client_id, _Session(s.last_ms, OrderedDict(s.results))) for s in data.clients
        )


__all__ = ["SessionData", "SessionTable", "SessionTableData"]
