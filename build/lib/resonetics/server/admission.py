"""What a client connection may cost the node: slots, buffered input, time (pure).

Theory of operation
-------------------
The client listener (``server/client_conn.py``) asks this module three
questions; each answer is a plain value, so the rules are tested without a
socket (``tests/server/test_admission.py``).

* **May it connect?** ``ClientAdmission.admit(ip)``: at most
  ``connections_max`` client connections at once and ``per_ip_max`` from one
  source address. Peers have their own listener and their own slots
  (``limits.PEER_CONNECTIONS_MAX``), so a client flood never takes the
  cluster's own links.
* **May it buffer this much?** ``InputBudget.resize(held, want)``: the bytes of
  unfinished lines across *all* client connections stay under
  ``limits.CLIENT_INPUT_BUDGET_BYTES``, and one connection holds at most
  ``limits.UNESTABLISHED_LINE_BYTES_MAX`` until it has sent one valid request
  (then up to ``limits.LINE_BYTES_MAX``). Complete lines are handled at once
  and never count; buffers are returned when the connection closes.
* **Who gives way when the slots are full?** The oldest connection that has not
  yet sent a valid request (from the same address, when the per-address limit
  is the one reached): an idle flood can hold slots only until newcomers
  arrive, while connections that have been served are never evicted.
* **Has it overstayed?** ``overdue(...)``: a connection that has not sent a
  valid request within ``limits.UNESTABLISHED_IDLE_S``, whose unfinished line
  is older than ``limits.PARTIAL_LINE_S`` (a slow-loris), or that has been
  silent for ``limits.CLIENT_IDLE_S`` is closed by the listener's sweep.

Rejected alternative: a per-connection ``asyncio.StreamReader`` with a line
limit. It buffers up to twice its limit before pausing and keeps its buffer
after a failed read, so 300 connections sending 4 MiB without a newline held
over a gigabyte; there is no global budget to share.
"""

from __future__ import annotations

from dataclasses import dataclass

from resonetics import limits
from resonetics.security.ratelimit import ConnectionLimiter

#: Why a connection is refused or closed (a fixed set: counted by reason in ``status``).
TOO_MANY_CONNECTIONS = "too many client connections"
TOO_MANY_FROM_ADDRESS = "too many connections from one address"
NO_REQUEST_IN_TIME = "no valid request in time"
PARTIAL_LINE_TOO_SLOW = "a line not finished in time"
IDLE = "idle"
INPUT_BUDGET = "input budget exhausted"
LINE_TOO_LONG = "line too long"
EVICTED = "evicted for a new connection before its first request"
AUTH_FAILURES = "too many failed Auth lines"


@dataclass(slots=True)
class InputBudget:
    """Bytes of unfinished lines held across all client connections."""

    total_max: int = limits.CLIENT_INPUT_BUDGET_BYTES
    # Invariant: 0 <= used <= total_max.
    used: int = 0

    def resize(self, held: int, want: int) -> bool:
        """Let a connection holding ``held`` bytes hold ``want``; False: over budget."""
        grown = self.used - held + want
        if want > held and grown > self.total_max:
            return False
        self.used = grown
        assert self.used >= 0, "input budget released more than was held"
        return True


class ClientAdmission:
    """Client connection slots: in total and per source address."""

    def __init__(
        self,
        connections_max: int = limits.CONNECTIONS_MAX,
        per_ip_max: int = limits.CONNECTIONS_PER_IP_MAX,
    ) -> None:
        self.connections_max = connections_max
        self._per_ip = ConnectionLimiter(per_ip_max)
        self.open = 0

    def admit(self, ip: str) -> str | None:
        """None if a connection from ``ip`` takes a slot now, else why not."""
        if self.open >= self.connections_max:
            return TOO_MANY_CONNECTIONS
        if not self._per_ip.try_acquire(ip):
            return TOO_MANY_FROM_ADDRESS
        self.open += 1
        return None

    def release(self, ip: str) -> None:
        self._per_ip.release(ip)
        self.open -= 1


def line_cap(established: bool) -> int:
    """The longest unfinished line a connection may hold."""
    return limits.LINE_BYTES_MAX if established else limits.UNESTABLISHED_LINE_BYTES_MAX


def overdue(
    now: float,
    *,
    opened: float,
    last_line: float,
    partial_since: float | None,
    established: bool,
) -> str | None:
    """Why a connection must be closed now (None: it may stay)."""
    if partial_since is not None and now - partial_since > limits.PARTIAL_LINE_S:
        return PARTIAL_LINE_TOO_SLOW
    if not established and now - opened > limits.UNESTABLISHED_IDLE_S:
        return NO_REQUEST_IN_TIME
    if now - last_line > limits.CLIENT_IDLE_S:
        return IDLE
    return None


__all__ = [
    "IDLE",
    "AUTH_FAILURES",
    "EVICTED",
    "INPUT_BUDGET",
    "LINE_TOO_LONG",
    "NO_REQUEST_IN_TIME",
    "PARTIAL_LINE_TOO_SLOW",
    "TOO_MANY_CONNECTIONS",
    "TOO_MANY_FROM_ADDRESS",
    "ClientAdmission",
    "InputBudget",
    "line_cap",
    "overdue",
]
