"""The ``Ready`` value: everything the core wants done, and in which order.

The runtime handles a ``Ready`` strictly in this order, then calls
``core.advance(ready)``:

1. ``snapshot``: if set, install it (state machine and storage) first.
2. ``truncate_from`` / ``entries``: cut the durable log so that its last index is
   ``truncate_from - 1`` (when set), then append ``entries`` and fsync once
   (group commit). ``hard_state``: if set, persist it (meta.json, atomically)
   when its ``term`` or ``vote`` differ from what is on disk; a change of
   ``commit`` alone may be persisted lazily.
3. ``messages``: send them, only after step 2 is durable: a vote or an ack must
   never leave the node before the term, vote or entries it depends on.
4. ``committed_entries``: apply them to the state machine, in order.
5. ``read_states``: serve each read once ``last_applied >= read.index``.

``advance(ready)`` tells the core that steps 1–2 are durable (so a leader may
count itself toward a quorum) and that ``committed_entries`` have been applied.

One permitted relaxation (dissertation §10.2.1): a *leader's* AppendEntries may
be sent before its own write of the same entries is durable, because the core
counts the leader toward a commit quorum only for entries ``advance()`` has
confirmed. Every other message (votes, acks, responses) waits for step 2.

And one reordering: committed entries that precede ``entries`` (they were made
durable here by an earlier Ready, and committed means durable on a majority)
may be applied before step 2, so their clients do not wait for this Ready's
fsync. Entries of this Ready's own batch are applied only after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from resonetics.raft.entry import Entry
from resonetics.raft.membership import Membership
from resonetics.raft.messages import Message
from resonetics.raft.types import Index, NodeId, Term


class Role(StrEnum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"
    LEARNER = "learner"


@dataclass(frozen=True, slots=True)
class HardState:
    """What must survive a crash (Figure 2 "persistent state", plus a commit hint)."""

    term: Term = 0
    vote: NodeId | None = None
    commit: Index = 0


@dataclass(frozen=True, slots=True)
class SoftState:
    """Volatile facts for status pages and client redirects."""

    role: Role
    leader: NodeId | None
    term: Term


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    last_included_index: Index
    last_included_term: Term
    last_included_hash: str
    membership: Membership
    #: Who took the snapshot and their Ed25519 signature over it (hex), or "" when
    #: unsigned; see ``security/snapshot_signing.py``. Not covered by the checksum.
    signer: str = ""
    sig: str = ""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A complete snapshot: its metadata and the state machine's serialized state."""

    meta: SnapshotMeta
    data: bytes


@dataclass(frozen=True, slots=True)
class ReadState:
    """A read registered with ``read_index(ctx)`` may be served once applied >= index."""

    ctx: object
    index: Index


@dataclass(slots=True)
class Ready:
    soft_state: SoftState
    hard_state: HardState | None = None
    snapshot: Snapshot | None = None
    truncate_from: Index | None = None
    entries: list[Entry] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    committed_entries: list[Entry] = field(default_factory=list)
    read_states: list[ReadState] = field(default_factory=list)
    #: Reads that can no longer be confirmed (leadership lost): fail or retry them.
    dropped_reads: list[object] = field(default_factory=list)

    def must_persist(self) -> bool:
        return (
            self.snapshot is not None
            or self.truncate_from is not None
            or bool(self.entries)
            or self.hard_state is not None
        )


__all__ = ["HardState", "ReadState", "Ready", "Role", "Snapshot", "SnapshotMeta", "SoftState"]
