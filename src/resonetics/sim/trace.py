"""The run's trace: the last events, for a readable report when a check fails.

Events are kept as tuples and rendered only when a report is printed, because a
run has tens of thousands of them and almost all runs pass. A digest of every
event (cheap: a CRC over a short key per event, folded in when read) lets the
determinism tests compare two whole runs, not only their tails.
"""

from __future__ import annotations

import zlib
from collections import deque
from typing import Any

from resonetics.raft.messages import AppendEntries, AppendEntriesResp, Message, kind_of

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
    kind = getattr(type(part), "__struct_config__", None)
    if kind is not None:
        return describe_message(part)
    return str(part)


class Trace:
    """A bounded ring of (time, what, details...) plus a digest of the whole run."""

    def __init__(self, events_max: int = TRACE_EVENTS_MAX) -> None:
        self._events: deque[tuple[Any, ...]] = deque(maxlen=events_max)
        #: Each event's digest key, not yet folded into ``_crc``: a running CRC over
        #: the keys one by one equals the CRC of their concatenation, so the keys are
        #: folded in one call when the digest is read, not once per event.
        self._keys: list[str] = []
        self._crc = 0
        self.count = 0

    @property
    def digest(self) -> int:
        """CRC-32 over every event's time, kind and string details, in order."""
        if self._keys:
            self._crc = zlib.crc32("".join(self._keys).encode(), self._crc)
            self._keys.clear()
        return self._crc

    def add(self, now_ms: int, what: str, *details: Any) -> None:
        self._events.append((now_ms, what, *details))
        self.count += 1
        # Most events carry one message and no string: skip the join (same key).
        if len(details) == 1:
            only = details[0]
            key = only if isinstance(only, str) else ""
        else:
            key = "|".join(d for d in details if isinstance(d, str))
        self._keys.append(f"{now_ms}{what}{key}")

    def lines(self) -> list[str]:
        """The kept events, rendered, oldest first."""
        out = []
        for now_ms, what, *details in self._events:
            rest = " ".join(_render(d) for d in details)
            out.append(f"{now_ms:>8} ms  {what:<10} {rest}".rstrip())
        return out


__all__ = ["TRACE_EVENTS_MAX", "Trace", "describe_message"]
