"""The client's retry rules, without I/O: what to do after each answer (or none).

Theory of operation
-------------------
One operation is one ``RetryPolicy``. The caller sends attempts and tells the
policy what came back; the policy says what to do next, and the caller carries
it out over its own transport and clock (``resonetics.AsyncClient`` over TCP in
seconds, ``sim/client.py`` over the simulated network in virtual
milliseconds). The rules:

- ``OK``: done.
- ``SESSION_EXPIRED``: never retried (an earlier attempt may have been applied
  and the session can no longer tell); the caller forgets its session.
- ``NOT_LEADER``: follow the hint (the leader's id and address, when the node
  knows them) with the *same* request id; without a hint, pause and try
  another node.
- ``RATE_LIMITED``: retry the same node after a pause that doubles each time
  (with jitter), up to ``backoff_max``.
- ``TIMEOUT`` (leadership lost, entry overwritten: it may still commit) at
  once and ``UNAVAILABLE`` after a pause: retry with the same request id;
  after a TIMEOUT the write may have been applied.
- No answer (a lost connection, an attempt that timed out): the write may have
  been applied; retry (the caller reconnects, perhaps elsewhere).
- Anything else is a definite refusal: raise it.
- Past the deadline: give up, as *unknown* if any attempt may have been
  applied, else as *no effect*.

Retrying with the same request id is what makes this safe: the cluster's
session table applies a request id at most once.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from resonetics.wire import codes


class Action(enum.Enum):
    DONE = "done"
    #: Never retried: the caller forgets its session and reports the refusal.
    SESSION_EXPIRED = "session-expired"
    #: Go to the hinted leader (or, without a hint, another node), same request id.
    FOLLOW_LEADER = "follow-leader"
    #: Retry the same node after ``pause``.
    RETRY_SAME_NODE = "retry-same-node"
    #: Retry after ``pause``, same request id (the simulated client picks another node).
    RETRY = "retry"
    #: A definite refusal: report it, no retry.
    RAISE = "raise"


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    #: How long to wait before the next attempt (the caller's time unit).
    pause: float = 0.0
    #: NOT_LEADER's hint: the leader's id and client address, when the node knew them.
    leader: str | None = None
    leader_addr: str | None = None


class RetryPolicy:
    """The retry decisions of one operation (see the module docstring)."""

    def __init__(
        self,
        deadline: float,
        pause: Callable[[], float],
        backoff_max: float,
        jitter: Callable[[], float],
    ) -> None:
        """``deadline`` is absolute on the caller's clock; ``pause()`` gives the pause
        after a refusal; ``jitter()`` a number in [0, 1) for the rate-limit backoff."""
        self.deadline = deadline
        self._pause = pause
        self._backoff_max = backoff_max
        self._jitter = jitter
        #: True once an attempt may have been applied without a definite answer.
        self.maybe_applied = False
        self._rate_limited = 0

    def expired(self, now: float) -> bool:
        return now >= self.deadline

    def sent(self) -> None:
        """An attempt left on a live connection: it may reach a node and be applied."""
        self.maybe_applied = True

    def on_no_answer(self, *, pause: bool = True, reached: bool = True) -> Decision:
        """No answer came back (lost connection, attempt timed out).

        ``reached=False``: the attempt may never have left (a refused connection); a
        caller that reports each send with ``sent()`` passes it, so that a cluster no
        node of which answered is told apart from a write of unknown outcome.
        """
        if reached:
            self.maybe_applied = True
        return Decision(Action.RETRY, self._pause() if pause else 0.0)

    def on_answer(self, code: str, result: Any) -> Decision:
        if code == codes.OK:
            self._rate_limited = 0
            return Decision(Action.DONE)
        if code == codes.SESSION_EXPIRED:
            return Decision(Action.SESSION_EXPIRED)
        if code == codes.NOT_LEADER:
            hint = result if isinstance(result, dict) else {}
            leader, addr = hint.get("leader"), hint.get("leader_addr")
            leader = leader if isinstance(leader, str) else None
            addr = addr if isinstance(addr, str) else None
            return Decision(Action.FOLLOW_LEADER, 0.0 if leader else self._pause(), leader, addr)
        if code == codes.RATE_LIMITED:
            self._rate_limited += 1
            base = min(self._backoff_max, self._pause() * 2.0 ** (self._rate_limited - 1))
            return Decision(Action.RETRY_SAME_NODE, base * (0.5 + self._jitter() / 2))
        if code == codes.TIMEOUT:
            self.maybe_applied = True
            return Decision(Action.RETRY)
        if code == codes.UNAVAILABLE:
            return Decision(Action.RETRY, self._pause())
        return Decision(Action.RAISE)

    def outcome_unknown(self) -> bool:
        """At give-up: True if the operation may have been applied (indeterminate)."""
        return self.maybe_applied


__all__ = ["Action", "Decision", "RetryPolicy"]
