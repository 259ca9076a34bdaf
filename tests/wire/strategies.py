"""Hypothesis strategies for wire values: JSON documents and every peer message."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from resonetics.raft.entry import Entry, EntryType
from resonetics.raft.messages import (
    AppendEntries,
    AppendEntriesResp,
    InstallSnapshot,
    InstallSnapshotResp,
    Message,
    PreVote,
    PreVoteResp,
    RequestVote,
    RequestVoteResp,
    TimeoutNow,
)

#: Strings msgspec can encode (no lone surrogates).
texts = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=20)
ints64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
naturals = st.integers(min_value=0, max_value=2**40)

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | ints64 | st.floats(allow_nan=False, allow_infinity=False) | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=12,
)

entries = st.builds(
    Entry,
    term=naturals,
    index=naturals,
    type=st.sampled_from(list(EntryType)),
    data=json_values,
    hash=texts,
)


def _msg(cls: type[Message], **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Message]:
    return st.builds(cls, src=texts, dst=texts, term=naturals, **fields)


_vote = {"candidate_id": texts, "last_log_index": naturals, "last_log_term": naturals}

messages: st.SearchStrategy[Message] = st.one_of(
    _msg(PreVote, **_vote),
    _msg(PreVoteResp, vote_granted=st.booleans()),
    _msg(RequestVote, transfer=st.booleans(), **_vote),
    _msg(RequestVoteResp, vote_granted=st.booleans()),
    _msg(
        AppendEntries,
        leader_id=texts,
        prev_log_index=naturals,
        prev_log_term=naturals,
        prev_log_hash=texts,
        entries=st.lists(entries, max_size=4),
        leader_commit=naturals,
        read_seq=naturals,
    ),
    _msg(
        AppendEntriesResp,
        success=st.booleans(),
        match_index=naturals,
        conflict_index=naturals,
        conflict_term=naturals,
        read_seq=naturals,
    ),
    _msg(
        InstallSnapshot,
        leader_id=texts,
        last_included_index=naturals,
        last_included_term=naturals,
        last_included_hash=texts,
        offset=naturals,
        data=texts,
        done=st.booleans(),
        checksum=texts,
        total_bytes=naturals,
    ),
    _msg(
        InstallSnapshotResp,
        success=st.booleans(),
        last_included_index=naturals,
        next_offset=naturals,
    ),
    _msg(TimeoutNow),
)
