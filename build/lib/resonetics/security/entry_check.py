"""Followers enforce entry and snapshot signatures against a trust registry.

Theory of operation
-------------------
With ``--trust-registry`` every node holds the public keys of the cluster's nodes
(``signing.TrustRegistry``) and every leader signs what it creates. A follower then
checks each ``AppendEntries`` *before* it is stepped (``check_append``):

* the sender is a registered node and names itself as the leader (``leader_id == src``);
* every entry is signed (``author``/``sig``), and the signature verifies under the
  registry key of its author over the entry's chain hash. The core then checks that
  each hash is the chain hash of the entry's content (``raft/replication.batch_links``),
  so a valid signature vouches for the content too;
* an entry of the message's term was authored by the message's sender: only that
  term's leader creates entries in it (Raft §5.2); an entry of a later term than the
  message's is impossible;
* an entry of an older term was authored by a registered node, and by the same node
  as every other entry of that term this node has seen (one leader per term), as far
  as this node's log and this message show. Snapshot anchors never travel as entries.

A message with any bad entry is dropped whole: the core never sees its term, so a
forgery cannot depose the real leader or make this node vote. ``InstallSnapshot``
chunks must carry the signature of a registered node over the snapshot
(``snapshot_signing``); the verdict is cached per stream, so a stream costs one
signature check, not one per chunk.

What this does not cover (see docs/threat-model.md): messages without entries
(heartbeats, votes, responses) carry no signature; authenticating the peer link is
the job of the peer listener. A node whose key is stolen can sign entries for terms
it leads, as any leader can.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from resonetics import limits
from resonetics.raft.entry import Entry, EntryType
from resonetics.raft.messages import AppendEntries, InstallSnapshot, Message
from resonetics.raft.types import Term
from resonetics.security.audit import signature_of
from resonetics.security.signing import SignatureCheck, TrustRegistry
from resonetics.security.snapshot_signing import verify_snapshot_signature

# Reasons a message is refused (counter keys and log text).
UNREGISTERED_SENDER = "unregistered_sender"
LEADER_ID_MISMATCH = "leader_id_mismatch"
ANCHOR_AS_ENTRY = "anchor_as_entry"
ENTRY_FROM_LATER_TERM = "entry_from_later_term"
UNSIGNED_ENTRY = "unsigned_entry"
ENTRY_UNKNOWN_AUTHOR = "entry_unknown_author"
ENTRY_BAD_SIGNATURE = "entry_bad_signature"
ENTRY_NOT_BY_TERMS_LEADER = "entry_not_by_terms_leader"
TWO_AUTHORS_IN_ONE_TERM = "two_authors_in_one_term"
UNSIGNED_SNAPSHOT = "unsigned_snapshot"
SNAPSHOT_UNKNOWN_SIGNER = "snapshot_unknown_signer"
SNAPSHOT_BAD_SIGNATURE = "snapshot_bad_signature"

_ANCHORS = frozenset({EntryType.GENESIS, EntryType.SNAP_DUMMY})
_ENTRY_VERDICTS = {
    SignatureCheck.UNSIGNED: UNSIGNED_ENTRY,
    SignatureCheck.UNKNOWN_AUTHOR: ENTRY_UNKNOWN_AUTHOR,
    SignatureCheck.BAD_SIGNATURE: ENTRY_BAD_SIGNATURE,
}
_SNAPSHOT_VERDICTS = {
    SignatureCheck.UNSIGNED: UNSIGNED_SNAPSHOT,
    SignatureCheck.UNKNOWN_AUTHOR: SNAPSHOT_UNKNOWN_SIGNER,
    SignatureCheck.BAD_SIGNATURE: SNAPSHOT_BAD_SIGNATURE,
}


def check_append(
    msg: AppendEntries, registry: TrustRegistry, authors: Mapping[Term, str]
) -> str | None:
    """Why ``msg`` must be dropped, or None; ``authors`` is term -> the author seen."""
    if msg.leader_id != msg.src:
        return LEADER_ID_MISMATCH
    if not registry.knows(msg.src):
        return UNREGISTERED_SENDER
    seen: dict[Term, str] = {}
    # Cheap structural rules first, so a forged batch costs no signature checks.
    for entry in msg.entries:
        reason = _entry_shape(entry, msg, authors, seen)
        if reason is not None:
            return reason
    for entry in msg.entries:
        verdict = registry.verify(entry.hash, signature_of(entry))
        if verdict is not SignatureCheck.VALID:
            return _ENTRY_VERDICTS[verdict]
    return None


def _entry_shape(
    entry: Entry, msg: AppendEntries, authors: Mapping[Term, str], seen: dict[Term, str]
) -> str | None:
    if entry.type in _ANCHORS:
        return ANCHOR_AS_ENTRY
    if entry.term > msg.term:
        return ENTRY_FROM_LATER_TERM
    signature = signature_of(entry)
    if signature is None:
        return UNSIGNED_ENTRY
    author = signature.author
    if entry.term == msg.term and author != msg.src:
        return ENTRY_NOT_BY_TERMS_LEADER
    earlier = seen.setdefault(entry.term, authors.get(entry.term, author))
    if earlier != author:
        return TWO_AUTHORS_IN_ONE_TERM
    return None


def check_snapshot_signature(msg: InstallSnapshot, registry: TrustRegistry) -> str | None:
    """Why this chunk's snapshot must not be installed, or None."""
    if msg.leader_id != msg.src:
        return LEADER_ID_MISMATCH
    if not registry.knows(msg.src):
        return UNREGISTERED_SENDER
    verdict = verify_snapshot_signature(
        registry,
        index=msg.last_included_index,
        term=msg.last_included_term,
        hash_=msg.last_included_hash,
        checksum=msg.checksum,
        signer=msg.signer,
        sig=msg.sig,
    )
    return None if verdict is SignatureCheck.VALID else _SNAPSHOT_VERDICTS[verdict]


class EntryGate:
    """``runtime.message_gate.MessageFilter`` over a trust registry (see the module doc)."""

    def __init__(self, registry: TrustRegistry) -> None:
        self.registry = registry
        #: term -> the node that authored this node's entries of that term, newest
        #: terms kept (at most ``limits.TRUST_TERMS_REMEMBERED_MAX``).
        self.authors: dict[Term, str] = {}
        #: The last snapshot stream whose signature verified (index, term, hash, checksum, signer, sig).
        self._snapshot_ok: tuple[object, ...] | None = None

    def check(self, msg: Message) -> str | None:
        if isinstance(msg, AppendEntries):
            return check_append(msg, self.registry, self.authors)
        if isinstance(msg, InstallSnapshot):
            key = (
                msg.src,
                msg.last_included_index,
                msg.last_included_term,
                msg.last_included_hash,
                msg.checksum,
                msg.signer,
                msg.sig,
            )
            if key == self._snapshot_ok:
                return None
            reason = check_snapshot_signature(msg, self.registry)
            if reason is None:
                self._snapshot_ok = key
            return reason
        return None

    def remember(self, entries: Sequence[Entry]) -> None:
        """Note the authors of entries in this node's log (unsigned ones name nobody)."""
        for entry in entries:
            if isinstance(entry.author, str):
                self.authors.setdefault(entry.term, entry.author)
        excess = len(self.authors) - limits.TRUST_TERMS_REMEMBERED_MAX
        if excess > 0:
            for term in sorted(self.authors)[:excess]:
                del self.authors[term]


__all__ = [
    "ANCHOR_AS_ENTRY",
    "ENTRY_BAD_SIGNATURE",
    "ENTRY_FROM_LATER_TERM",
    "ENTRY_NOT_BY_TERMS_LEADER",
    "ENTRY_UNKNOWN_AUTHOR",
    "LEADER_ID_MISMATCH",
    "SNAPSHOT_BAD_SIGNATURE",
    "SNAPSHOT_UNKNOWN_SIGNER",
    "TWO_AUTHORS_IN_ONE_TERM",
    "UNREGISTERED_SENDER",
    "UNSIGNED_ENTRY",
    "UNSIGNED_SNAPSHOT",
    "EntryGate",
    "check_append",
    "check_snapshot_signature",
]
