"""Pure helpers of log replication: checking a batch, building the hints of §5.3.

Kept apart from the node so that each rule can be read (and tested) on its
own: a follower accepts a batch only if every entry links to the one before it
(``batch_links``); a rejecting follower says where its log diverges
(``rejection_hint``); the leader turns that into the next index to probe
(``next_index_from_hint``), skipping a whole term per round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from resonetics.raft.entry import Entry, entry_links
from resonetics.raft.log import RaftLog
from resonetics.raft.types import Index, Term


def batch_links(
    prev_index: Index, prev_term: Term, prev_hash: str, entries: Sequence[Entry]
) -> bool:
    """True when ``entries`` continue (prev_index, prev_term, prev_hash) as one chain."""
    for e in entries:
        if e.index != prev_index + 1 or e.term < prev_term or not entry_links(prev_hash, e):
            return False
        prev_index, prev_term, prev_hash = e.index, e.term, e.hash
    return True


@dataclass(frozen=True, slots=True)
class RejectionHint:
    conflict_index: Index
    conflict_term: Term


def rejection_hint(log: RaftLog, prev_index: Index, prev_term: Term) -> RejectionHint:
    """What a follower whose log does not match at ``prev_index`` tells the leader.

    * log too short: ``conflict_index = last_index + 1``, no term;
    * another term at ``prev_index``: that term and the first index of it here;
    * same term but another hash (a different history with equal terms, which
      Raft alone cannot produce): step back by one index, no term.
    """
    if prev_index > log.last_index:
        return RejectionHint(log.last_index + 1, 0)
    term = log.term_at(prev_index)
    assert term is not None  # prev_index >= commit >= anchor.index here
    if term == prev_term:
        return RejectionHint(prev_index, 0)
    return RejectionHint(log.first_index_of_term(term, prev_index), term)


def next_index_from_hint(log: RaftLog, conflict_index: Index, conflict_term: Term) -> Index:
    """The leader's next probe after a rejection (dissertation §5.3).

    If the leader holds ``conflict_term``, probe just past its last entry of that
    term (the follower's run of that term may match up to there); otherwise the
    whole term is absent from the leader and the probe jumps to its first index.
    """
    if conflict_term > 0:
        last_of_term = log.last_index_of_term(conflict_term)
        if last_of_term is not None:
            return last_of_term + 1
    return max(conflict_index, 1)


__all__ = ["RejectionHint", "batch_links", "next_index_from_hint", "rejection_hint"]
