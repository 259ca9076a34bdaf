"""Peer messages exchanged by Raft cores (DESIGN §5, Raft paper Figure 2).

Every message names its sender (``src``), its addressee (``dst``) and the
sender's ``term``; field names follow the paper in snake_case. The structs are
frozen and carry their wire ``kind`` as a msgspec tag, so ``wire/`` can decode
any of them from the envelope's ``kind`` and ``payload`` and validate the
field types in the same pass.

Extensions beyond Figure 2, each with the reason it exists:

* ``prev_log_hash`` (AppendEntries): the chain hash at ``prev_log_index``; a
  follower whose hash differs rejects the batch even if the terms agree, so a
  follower's log can never splice onto a different history.
* ``conflict_index`` / ``conflict_term`` (AppendEntriesResp): fast
  backtracking (dissertation §5.3), the leader skips a whole term per round trip.
* ``read_seq`` (AppendEntries and its response): the ReadIndex round the
  message confirms leadership for (dissertation §6.4); one heartbeat round
  serves every read registered before it.
* ``pre_vote`` rounds use separate kinds (``PreVote``/``PreVoteResp``) so a
  log or a trace says plainly which one happened.
"""

from __future__ import annotations

from typing import TypeAlias

import msgspec

from resonetics.raft.entry import Entry
from resonetics.raft.types import Index, NodeId, Term


class _Msg(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    src: NodeId
    dst: NodeId
    term: Term


class PreVote(_Msg, frozen=True, kw_only=True, tag="PreVote"):
    """Would you vote for me at ``term`` (= my term + 1)? Changes no state on the receiver."""

    candidate_id: NodeId
    last_log_index: Index
    last_log_term: Term


class PreVoteResp(_Msg, frozen=True, kw_only=True, tag="PreVoteResp"):
    vote_granted: bool


class RequestVote(_Msg, frozen=True, kw_only=True, tag="RequestVote"):
    candidate_id: NodeId
    last_log_index: Index
    last_log_term: Term
    #: Set by a candidate started through TimeoutNow: a leadership transfer
    #: must not be blocked by the receivers' leader stickiness.
    transfer: bool = False


class RequestVoteResp(_Msg, frozen=True, kw_only=True, tag="RequestVoteResp"):
    vote_granted: bool


class AppendEntries(_Msg, frozen=True, kw_only=True, tag="AppendEntries"):
    leader_id: NodeId
    prev_log_index: Index
    prev_log_term: Term
    prev_log_hash: str
    entries: list[Entry] = msgspec.field(default_factory=list)
    leader_commit: Index
    read_seq: int = 0


class AppendEntriesResp(_Msg, frozen=True, kw_only=True, tag="AppendEntriesResp"):
    success: bool
    #: On success: prev_log_index + len(entries) of the request being answered
    #: (never the follower's whole log length). On failure: a hint, the
    #: follower's last index.
    match_index: Index
    conflict_index: Index = 0
    conflict_term: Term = 0
    read_seq: int = 0


class InstallSnapshot(_Msg, frozen=True, kw_only=True, tag="InstallSnapshot"):
    leader_id: NodeId
    last_included_index: Index
    last_included_term: Term
    last_included_hash: str
    #: Byte offset of this chunk within the whole snapshot.
    offset: int
    #: The chunk, base64-encoded.
    data: str
    done: bool
    #: sha256 hex of the whole snapshot; checked by the receiver before install.
    checksum: str
    total_bytes: int
    #: The node that took the snapshot and its signature over (index, term, hash,
    #: checksum), hex; "" when the snapshot is unsigned (security/snapshot_signing.py).
    signer: str = ""
    sig: str = ""


class InstallSnapshotResp(_Msg, frozen=True, kw_only=True, tag="InstallSnapshotResp"):
    success: bool
    last_included_index: Index
    #: The offset the follower expects next (resume point after a lost chunk).
    next_offset: int


class TimeoutNow(_Msg, frozen=True, kw_only=True, tag="TimeoutNow"):
    """Leadership transfer: start an election now (dissertation §3.10)."""


class ReadIndex(_Msg, frozen=True, kw_only=True, tag="ReadIndex"):
    """A follower asks the leader for a read index on behalf of its client (§6.4.1)."""

    #: The follower's own handle for the read, echoed in the response.
    read_id: int


class ReadIndexResp(_Msg, frozen=True, kw_only=True, tag="ReadIndexResp"):
    """The leader confirmed its leadership for the read: serve once applied >= ``index``."""

    read_id: int
    index: Index


Message: TypeAlias = (
    PreVote
    | PreVoteResp
    | RequestVote
    | RequestVoteResp
    | AppendEntries
    | AppendEntriesResp
    | InstallSnapshot
    | InstallSnapshotResp
    | TimeoutNow
    | ReadIndex
    | ReadIndexResp
)

#: kind name -> struct type, for the wire decoder.
MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.__struct_config__.tag: cls  # type: ignore[misc]
    for cls in (
        PreVote,
        PreVoteResp,
        RequestVote,
        RequestVoteResp,
        AppendEntries,
        AppendEntriesResp,
        InstallSnapshot,
        InstallSnapshotResp,
        TimeoutNow,
        ReadIndex,
        ReadIndexResp,
    )
}


def kind_of(msg: Message) -> str:
    """The wire kind of a message (its msgspec tag)."""
    tag = type(msg).__struct_config__.tag
    assert isinstance(tag, str)
    return tag


__all__ = [
    "MESSAGE_TYPES",
    "AppendEntries",
    "AppendEntriesResp",
    "InstallSnapshot",
    "InstallSnapshotResp",
    "Message",
    "PreVote",
    "PreVoteResp",
    "ReadIndex",
    "ReadIndexResp",
    "RequestVote",
    "RequestVoteResp",
    "TimeoutNow",
    "kind_of",
]
