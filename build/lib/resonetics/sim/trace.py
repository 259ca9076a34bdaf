"""The run's trace: the last events, for a readable report when a check fails.

Events are kept as tuples and rendered only when a report is printed, because a
run has tens of thousands of them and almost all runs pass. A digest of every
event (a CRC over a short key per event, folded in batches) lets the determinism
tests compare two whole runs, not only their tails; a sweep, which compares no
runs, keeps no digest (it cost about 5 % of a run).
"""

from __future__ import annotations

import zlib
from typing import Any

from resonetics.raft.messages import (
    MESSAGE_TYPES,
    AppendEntries,
    AppendEntriesResp,
    Message,
    kind_of,
)

#: What ``_render`` describes as a Raft message.
_MESSAGE_CLASSES = frozenset(MESSAGE_TYPES.values())

#: Events kept for the failure report.
TRACE_EVENTS_MAX = 200


def describe_message(msg: Message) -> str:
    """A one-line summary of a peer message."""
    text = f"{kind_of(msg)} {msg.src}->{msg.dst} t{msg.term}"
    if isinstance(msg, AppendEntries):
        text += (
            f" prev={msg.prev_log_index}/{msg.prev_log_term} n={len(msg.entries)}"
            f" commit={msg.leader_commit}"
        )
    elif isinstance(msg, AppendEntriesResp):
        text += f" ok={msg.success} match={msg.match_index}"
    elif hasattr(msg, "vote_granted"):
        text += f" granted={msg.vote_granted}"
    return text


def _render(part: Any) -> str:
    if isinstance(part, str):
        return part
    if type(part) in _MESSAGE_CLASSES:  # not any msgspec Struct: outcomes are Structs too
        return describe_message(part)
    return str(part)


#: Events held unfolded before their digest keys are computed in one batch: folding
#: per event cost more than the event itself (it is the hottest call of a run).
FOLD_EVENTS = 4_096


def _key(now_ms: int, what: str, details: tuple[Any, ...]) -> str:
    """One event's digest key: its time, kind and string details (the definition;
    ``_keys_text`` computes many at once)."""
    if len(details) == 1:
        only = details[0]
        return f"{now_ms}{what}{only}" if isinstance(only, str) else f"{now_ms}{what}"
    return f"{now_ms}{what}" + "|".join(d for d in details if isinstance(d, str))


def _keys_text(events: list[tuple[int, str, tuple[Any, ...]]]) -> str:
    """The concatenated digest keys of ``events`` (``_key`` of each, joined), in one pass.

    Writing the time costs more than the rest of a key and events come a few per
    virtual millisecond, so the text of the time is reused while it does not change
    (times are ints: equal times, equal text). Most events carry one message and no
    string: no join for them. ``tests/sim/test_trace.py`` holds this to ``_key``.
    """
    parts: list[str] = []
    append = parts.append
    last_ms: int | None = None
    last_text = ""
    for now_ms, what, details in events:
        if now_ms != last_ms:
            last_ms, last_text = now_ms, f"{now_ms}"
        append(last_text)
        append(what)
        if len(details) == 1:
            only = details[0]
            if isinstance(only, str):  # formatted as ``_key`` does (a str subclass may differ)
                append(only if type(only) is str else f"{only}")
        elif details:
            append("|".join([d for d in details if isinstance(d, str)]))
    return "".join(parts)


class Trace:
    """A bounded ring of (time, what, details...) plus a digest of the whole run."""

    def __init__(self, events_max: int = TRACE_EVENTS_MAX, *, digest: bool = True) -> None:
        self._events_max = events_max
        #: Whether events are folded into ``_crc`` (``digest``) or only counted.
        self._digesting = digest
        #: Events not folded into ``_crc`` yet, oldest first; after a fold, the last
        #: ``events_max`` folded ones stay at the front for the report (``_kept``).
        self._events: list[tuple[int, str, tuple[Any, ...]]] = []
        self._kept = 0
        self._folded = 0
        self._crc = 0

    @property
    def count(self) -> int:
        """Events added so far."""
        return self._folded + len(self._events) - self._kept

    @property
    def digest(self) -> int:
        """CRC-32 over every event's time, kind and string details, in order."""
        if not self._digesting:
            raise ValueError("this trace keeps no digest (made with digest=False)")
        self._fold()
        return self._crc

    def add(self, now_ms: int, what: str, *details: Any) -> None:
        events = self._events
        events.append((now_ms, what, details))
        if len(events) >= FOLD_EVENTS:
            self._fold()

    def _fold(self) -> None:
        """Fold the new events' keys into the CRC; keep only the last ``events_max``.

        A running CRC over the keys one by one equals the CRC of their
        concatenation, so one call per batch gives the per-event digest.
        """
        events, kept = self._events, self._kept
        if len(events) == kept:
            return
        new = len(events) - kept
        if self._digesting:
            self._crc = zlib.crc32(_keys_text(events[kept:]).encode(), self._crc)
        self._folded += new
        self._events = events[-self._events_max :] if self._events_max else []
        self._kept = len(self._events)

    def lines(self) -> list[str]:
        """The kept events (the last ``events_max``), rendered, oldest first."""
        out = []
        tail = self._events[-self._events_max :] if self._events_max else []
        for now_ms, what, details in tail:
            rest = " ".join(_render(d) for d in details)
            out.append(f"{now_ms:>8} ms  {what:<10} {rest}".rstrip())
        return out


__all__ = ["FOLD_EVENTS", "TRACE_EVENTS_MAX", "Trace", "describe_message"]
