"""What ``GET /ready`` answers (docs/http.md): may a load balancer send this node requests?

Theory of operation
-------------------
A node is *ready* when

1. it knows a leader now (it is the leader, or a leader's AppendEntries or
   InstallSnapshot reset its election timer this term), and
2. it has applied everything that was committed when it first heard from a
   leader after starting: the ``leader_commit`` of the first AppendEntries (or
   the last index of the first InstallSnapshot) it received, or, for a node that
   became leader before hearing from another, its own commit index then.

The second condition is latched: once met it stays met (a node that falls
behind later is still serving, just slower). The first is checked at every
request, so a follower cut off from its leader turns unready as soon as its
election timer clears the leader it knew, and ready again once a leader is
elected. ``/health`` is the weaker question: is the process serving at all.

``note(msg)`` is called for every peer message until the target is known,
then costs one attribute test per message.
"""

from __future__ import annotations

from dataclasses import dataclass

from resonetics.raft.messages import AppendEntries, InstallSnapshot, Message


@dataclass(frozen=True, slots=True)
class ReadyAnswer:
    """The verdict and, when not ready, why (sent as JSON with a 503)."""

    ready: bool
    reason: str = ""
    #: The commit index this node must apply before it is ready (None: not learned yet).
    target: int | None = None


class Readiness:
    """The latch and checks of ``/ready`` for one node."""

    def __init__(self) -> None:
        #: The commit index learned from the first leader heard after start.
        self.target: int | None = None
        self._caught_up = False

    def note(self, msg: Message) -> None:
        """A peer message was stepped: learn the target from the first leader's message."""
        if self.target is not None:
            return
        if isinstance(msg, AppendEntries):
            self.target = msg.leader_commit
        elif isinstance(msg, InstallSnapshot):
            self.target = msg.last_included_index

    def check(
        self, *, leader: str | None, is_leader: bool, commit: int, applied: int
    ) -> ReadyAnswer:
        """Ready or not, now; ``commit``/``applied`` are the node's own indexes."""
        if leader is None:
            return ReadyAnswer(False, "no leader known", self.target)
        if self.target is None:
            if not is_leader:
                return ReadyAnswer(False, "not heard from the leader yet")
            self.target = commit  # the leader's own committed index is the one to reach
        if not self._caught_up:
            if applied < self.target:
                return ReadyAnswer(
                    False, f"catching up: applied {applied} of {self.target}", self.target
                )
            self._caught_up = True
        return ReadyAnswer(True, "", self.target)


__all__ = ["ReadyAnswer", "Readiness"]
