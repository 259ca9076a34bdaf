"""Operator events: elections, leader changes, step-downs, membership, own removal.

Theory of operation
-------------------
The Raft core stays free of I/O and of logging: it only changes its state. After
each run of the driver loop the node server hands ``NodeWatch.observe`` a
``CoreView`` (term, role, leader, configuration, last vote count) and logs the
events that the difference from the previous view implies. The diff is a pure
function, so each event's rule is tested without a cluster.

Several role changes may happen between two observations (a follower that
times out, wins and leads within one loop turn); the rules below are written on
the before/after pair, not on every intermediate step, and say what the pair
proves: a node that is leader in a higher term than we last saw won an
election in that term; a leader that is not leader any more stepped down, and
why follows from the term (higher term seen), the configuration (removed) or
neither (CheckQuorum: same term, no leader).

Every event is one log line at INFO, ``event=NAME key=value ...`` in text, and
one JSON object with the same fields under ``--log-format json``
(``server/logs.py``). The names and field keys are stable: log shippers and
alert rules may match on them.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from resonetics import limits
from resonetics.raft.membership import Membership
from resonetics.raft.node import RaftNode
from resonetics.raft.ready import Role
from resonetics.runtime.snapshots import SnapshotStats

log = logging.getLogger("resonetics.events")

#: Stable event names (``event=`` in text lines, ``"event"`` in JSON lines).
ELECTION_STARTED = "election_started"
ELECTION_WON = "election_won"
ELECTION_LOST = "election_lost"
LEADER_CHANGED = "leader_changed"
STEPPED_DOWN = "stepped_down"
MEMBERSHIP_CHANGED = "membership_changed"
REMOVED = "removed"
SNAPSHOT_TAKEN = "snapshot_taken"
SNAPSHOT_INSTALLED = "snapshot_installed"
PEER_LINK_UP = "peer_link_up"
PEER_LINK_DOWN = "peer_link_down"
#: The event loop could not run for a good part of an election timeout (``server/loop_lag.py``).
LOOP_STALLED = "loop_stalled"
#: The log's tail was cut at start: a crash before an fsync (``storage/log_file.py``).
LOG_TAIL_CUT = "log_tail_cut"

FieldValue = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Event:
    """One thing an operator wants to know happened, with its data."""

    name: str
    fields: dict[str, FieldValue] = field(default_factory=dict)


def format_fields(fields: dict[str, FieldValue]) -> str:
    """``k=v k=v``: a value with spaces, quotes or '=' is JSON-quoted so lines split cleanly."""
    parts = []
    for key, value in fields.items():
        text = (
            "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        )
        if text == "" or any(c in text for c in ' "=\n\t'):
            text = json.dumps(text)
        parts.append(f"{key}={text}")
    return " ".join(parts)


def emit(
    event: Event,
    logger: logging.Logger = log,
    ring: EventRing | None = None,
    *,
    level: int = logging.INFO,
) -> None:
    """Log ``event`` (at INFO unless ``level`` says otherwise): ``event=NAME fields`` (the
    JSON formatter reads the extras), and keep it in ``ring`` (the node's recent events,
    for the dashboard) when given."""
    text = format_fields({"event": event.name, **event.fields})
    logger.log(level, "%s", text, extra={"event": event.name, "event_fields": event.fields})
    if ring is not None:
        ring.add(event)


class EventRing:
    """The node's most recent events, numbered, for ``GET /v1/events?after=SEQ``.

    Bounded (``limits.DASHBOARD_EVENTS_MAX``): the oldest are forgotten, and a reader
    whose ``after`` is older than the oldest kept sees the gap (``first_seq``). The
    numbering restarts with the process; a reader that sees ``seq`` go down re-reads.
    """

    def __init__(self, size: int = limits.DASHBOARD_EVENTS_MAX) -> None:
        self._events: deque[dict[str, Any]] = deque(maxlen=size)
        self.seq = 0

    def add(self, event: Event) -> None:
        self.seq += 1
        self._events.append(
            {"seq": self.seq, "time": time.time(), "event": event.name, "fields": event.fields}
        )

    def since(self, after: int) -> list[dict[str, Any]]:
        """The events numbered above ``after``, oldest first."""
        return [e for e in self._events if e["seq"] > after]

    @property
    def first_seq(self) -> int:
        """The oldest event still kept (``seq + 1`` when none is)."""
        return self._events[0]["seq"] if self._events else self.seq + 1


@dataclass(frozen=True, slots=True)
class CoreView:
    """What the watch compares between two looks at the core."""

    term: int
    role: Role
    leader: str | None
    membership: Membership
    #: The core's last vote count: (term, voter -> granted).
    tally: tuple[int, dict[str, bool]]
    #: Snapshots taken and installed so far, and the last one's index, size and time.
    snapshots: SnapshotStats = field(default_factory=SnapshotStats)


def core_view(core: RaftNode, snapshots: SnapshotStats | None = None) -> CoreView:
    """The core's current state (and the driver's snapshot counts) as the watch compares it."""
    stats = replace(snapshots) if snapshots is not None else SnapshotStats()
    return CoreView(core.term, core.role, core.leader_id, core.membership, core.last_tally, stats)


def _config_text(m: Membership) -> str:
    text = "voters=" + ",".join(sorted(m.voters))
    if m.learners:
        text += ";learners=" + ",".join(sorted(m.learners))
    if m.voters_outgoing:
        text += ";outgoing=" + ",".join(sorted(m.voters_outgoing))
    return text


def _votes(view: CoreView) -> dict[str, FieldValue]:
    term, votes = view.tally
    if term != view.term:
        return {}
    granted = sorted(v for v, ok in votes.items() if ok)
    rejected = sorted(v for v, ok in votes.items() if not ok)
    voters = len(set(view.membership.voters) | set(view.membership.voters_outgoing))
    return {
        "votes": f"{len(granted)}/{voters}",
        "granted": ",".join(granted),
        "rejected": ",".join(rejected),
    }


_CAMPAIGNING = (Role.CANDIDATE,)


def diff(
    me: str, before: CoreView, after: CoreView, known_leader: str | None = None
) -> list[Event]:
    """The events that going from ``before`` to ``after`` proves (see the module docstring).

    ``known_leader``: the last leader this node knew of, for ``leader_changed``'s
    ``old`` when ``before`` had none (followers forget the leader when its term ends).
    """
    events: list[Event] = []
    events += _election_events(before, after)
    if before.role is Role.LEADER and after.role is not Role.LEADER:
        events.append(_step_down(me, before, after))
    if before.membership != after.membership:
        events.append(
            Event(
                MEMBERSHIP_CHANGED,
                {
                    "old": _config_text(before.membership),
                    "new": _config_text(after.membership),
                    "term": after.term,
                },
            )
        )
        if _incoming(me, before.membership) and not _incoming(me, after.membership):
            events.append(
                Event(REMOVED, {"term": after.term, "config": _config_text(after.membership)})
            )
    events += _snapshot_events(before, after)
    if after.leader is not None and after.leader != before.leader:
        events.append(
            Event(
                LEADER_CHANGED,
                {"old": before.leader or known_leader, "new": after.leader, "term": after.term},
            )
        )
    return events


def _incoming(me: str, m: Membership) -> bool:
    """Whether ``me`` is in the configuration being moved to (voters or learners).

    A removed node often never sees the final configuration (the leader stops
    replicating to it once that is appended), but it does see the joint one in which
    it is only an outgoing voter: that is when it learns it is being removed.
    """
    return me in m.voters or me in m.learners


def _snapshot_events(before: CoreView, after: CoreView) -> list[Event]:
    b, a = before.snapshots, after.snapshots
    events: list[Event] = []
    if a.taken > b.taken:
        events.append(
            Event(
                SNAPSHOT_TAKEN,
                {
                    "index": a.last_index,
                    "bytes": a.last_bytes,
                    "duration_ms": round(a.last_seconds * 1000, 1),
                },
            )
        )
    if a.installed > b.installed:
        fields: dict[str, FieldValue] = {"index": a.last_index, "bytes": a.last_bytes}
        events.append(Event(SNAPSHOT_INSTALLED, {"from": after.leader, **fields}))
    return events


def _election_events(before: CoreView, after: CoreView) -> list[Event]:
    events: list[Event] = []
    if before.role in _CAMPAIGNING and (
        after.role not in (Role.CANDIDATE, Role.LEADER) or after.term > before.term
    ):
        events.append(Event(ELECTION_LOST, {"term": before.term, **_lost_reason(before, after)}))
    won = after.role is Role.LEADER and (before.role is not Role.LEADER or after.term > before.term)
    if (after.role in _CAMPAIGNING or won) and (
        before.role not in _CAMPAIGNING or after.term > before.term
    ):
        # Started (and perhaps already won) since the last look.
        events.append(Event(ELECTION_STARTED, {"term": after.term}))
    if won:
        events.append(Event(ELECTION_WON, {"term": after.term, **_votes(after)}))
    return events


def _lost_reason(before: CoreView, after: CoreView) -> dict[str, FieldValue]:
    if after.term > before.term and after.role in _CAMPAIGNING:
        return {"reason": "timed out; campaigning again", **_votes(before)}
    if after.term > before.term:
        return {"reason": "higher term seen", "new_term": after.term}
    if after.leader is not None:
        return {"reason": "another leader", "leader": after.leader}
    return {"reason": "votes refused", **_votes(before)}


def _step_down(me: str, before: CoreView, after: CoreView) -> Event:
    if me not in after.membership.members():
        reason = "removed"
    elif after.term > before.term:
        reason = "higher term seen"
    elif not after.membership.is_voter(me):
        reason = "demoted to learner"
    else:
        reason = "CheckQuorum lost"  # same term, no leader: no quorum heard within a timeout
    return Event(STEPPED_DOWN, {"term": before.term, "new_term": after.term, "reason": reason})


class NodeWatch:
    """Logs the events between successive views of one node's core."""

    def __init__(self, me: str, first: CoreView, ring: EventRing | None = None) -> None:
        self.me = me
        #: Where events are kept as well as logged (the dashboard's feed); None: only logged.
        self.ring = ring
        self._last = first
        self._known_leader = first.leader
        self._key: tuple[object, ...] | None = None

    def observe_core(self, core: RaftNode, snapshots: SnapshotStats) -> list[Event]:
        """``observe`` for a live node, called after every driver run: a cheap look at
        what could have changed first (the core replaces its membership and tally
        objects when they change, so identity compares them), the full view only then."""
        key = (
            core.term,
            core.role,
            core.leader_id,
            core.membership,
            core.last_tally,
            snapshots.taken,
            snapshots.installed,
        )
        if key == self._key:
            return []
        self._key = key
        return self.observe(core_view(core, snapshots))

    def observe(self, view: CoreView) -> list[Event]:
        """Log and return the events since the last view."""
        if view == self._last:
            return []
        events = diff(self.me, self._last, view, self._known_leader)
        self._last = view
        self._known_leader = view.leader or self._known_leader
        for event in events:
            emit(event, ring=self.ring)
        return events


class Throttle:
    """At most one line per ``interval_s`` for one repeating condition; counts the rest.

    A dead peer's link fails to reconnect every couple of seconds for as long as
    it is dead: its first failure is logged, then one line per interval saying
    how many were held back.
    """

    def __init__(self, interval_s: float = limits.PEER_LINK_DOWN_LOG_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._next = float("-inf")
        self.suppressed = 0

    def allow(self, now: float) -> int | None:
        """None: hold this line back. Else the number held back since the last one."""
        if now < self._next:
            self.suppressed += 1
            return None
        held, self.suppressed = self.suppressed, 0
        self._next = now + self.interval_s
        return held

    def reset(self) -> None:
        """The condition ended (link back up): the next occurrence is logged at once."""
        self._next = float("-inf")
        self.suppressed = 0


__all__ = [
    "CoreView",
    "Event",
    "EventRing",
    "NodeWatch",
    "Throttle",
    "core_view",
    "diff",
    "emit",
    "format_fields",
]
