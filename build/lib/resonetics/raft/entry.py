"""Log entries and the hash chain.

Theory of operation
-------------------
Every entry carries ``hash = sha256(prev_hash || canonical(term, index, type, data))``
(hex). Two logs that agree on the hash at index N therefore agree on every entry
up to N, which is what lets an auditor compare nodes by a single value and what
lets a follower refuse an AppendEntries batch that does not link to its own
history (``prev_log_hash``).

The log always begins with an *anchor* entry whose term and hash are known:
a GENESIS entry at index 0 for a fresh log, or a
``SNAP_DUMMY`` at the last index covered by a snapshot once the log has been
compacted. The anchor is never applied; it only carries the chain forward.

The GENESIS entry's data names the cluster (``{"cluster": <id>}``), so its hash,
and with it every chain hash after it, differs between clusters: two clusters'
logs never agree at any index, and a node started on another cluster's data dir
cannot pass its history off as this cluster's. ``GENESIS`` (no cluster id,
``data`` null) is the anchor of the pure core, the simulator and unit tests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import msgspec

from resonetics.raft.types import Index, Term


class EntryType(StrEnum):
    """What an entry means to the state machine (DESIGN §4)."""

    GENESIS = "GENESIS"
    NOOP = "NOOP"
    CLIENT_CMD = "CLIENT_CMD"
    #: Several client commands proposed together: ``data`` is a list of commands.
    CLIENT_BATCH = "CLIENT_BATCH"
    CONFIG = "CONFIG"
    SNAP_DUMMY = "SNAP_DUMMY"


class Entry(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One log entry. ``data`` is any JSON value; its meaning depends on ``type``.

    ``gc=False``: the cyclic collector never tracks an entry (an entry's fields are
    JSON values and strings, which cannot lead back to it), so a long log costs the
    collector nothing beyond its data. A client entry's ``data`` is normally a
    ``msgspec.Raw`` of its canonical JSON (``raft/packing.py``).

    ``author`` and ``sig`` are the signature of the leader that created the entry over
    its chain hash (when entry signing is on). They are *not* hashed: the chain is the
    same with or without them, so receipts and old logs stay valid, and anyone holding
    the trust registry can check who vouched for each entry (``verify --keys``).
    """

    term: Term
    index: Index
    type: EntryType
    data: Any = None
    hash: str
    # UNSET (not None) so that unsigned entries encode exactly as before: msgspec
    # leaves UNSET fields out of the JSON entirely.
    author: str | msgspec.UnsetType = msgspec.UNSET
    sig: str | msgspec.UnsetType = msgspec.UNSET


_ENCODER = msgspec.json.Encoder(order="sorted")

#: The chain value "before" the genesis entry.
ZERO_HASH = "0" * 64


def canonical_body(term: Term, index: Index, type_: EntryType, data: Any) -> bytes:
    """The canonical encoding hashed into the chain (sorted keys, no whitespace)."""
    return _ENCODER.encode([term, index, str(type_), data])


def chain_hash(prev_hash: str, term: Term, index: Index, type_: EntryType, data: Any) -> str:
    """Hash of an entry given the hash of the entry before it."""
    h = hashlib.sha256(prev_hash.encode("ascii"))
    h.update(b"\n")
    h.update(canonical_body(term, index, type_, data))
    return h.hexdigest()


def snap_dummy(index: Index, term: Term, hash_: str) -> Entry:
    """The anchor a log compacted at ``index`` starts with: the entry it stands for's
    index, term and chain hash, no data (a snapshot's last included entry, or the last
    one dropped before entries kept behind a snapshot)."""
    return Entry(term=term, index=index, type=EntryType.SNAP_DUMMY, data=None, hash=hash_)


def make_entry(prev_hash: str, term: Term, index: Index, type_: EntryType, data: Any) -> Entry:
    """Build an entry linked to ``prev_hash``."""
    return Entry(
        term=term,
        index=index,
        type=type_,
        data=data,
        hash=chain_hash(prev_hash, term, index, type_, data),
    )


@dataclass(frozen=True, slots=True)
class Receipt:
    """Where a committed entry sits in the history: its index, term and chain hash.

    Every committed write returns one; anyone holding a node's log can check it
    (``resonetics verify --receipt``), because the hash pins all history before it.
    """

    index: Index
    term: Term
    hash: str

    @classmethod
    def of(cls, entry: Entry) -> Receipt:
        return cls(entry.index, entry.term, entry.hash)

    @classmethod
    def from_data(cls, data: Any) -> Receipt:
        """From the ``{"index", "term", "hash"}`` object of a write's result."""
        return msgspec.convert(data, type=cls)

    def to_data(self) -> dict[str, Any]:
        return {"index": self.index, "term": self.term, "hash": self.hash}


#: Signs a chain hash for the node that creates an entry: hash -> (author, signature hex).
#: Ed25519 signatures are deterministic, so a signer keeps the core deterministic.
Signer = Callable[[str], tuple[str, str]]


def signed(entry: Entry, signer: Signer) -> Entry:
    """``entry`` with its creator's signature over its chain hash."""
    author, sig = signer(entry.hash)
    return msgspec.structs.replace(entry, author=author, sig=sig)


def entry_links(prev_hash: str, entry: Entry) -> bool:
    """True when ``entry.hash`` is the chain hash of ``entry`` after ``prev_hash``."""
    return entry.hash == chain_hash(prev_hash, entry.term, entry.index, entry.type, entry.data)


def genesis_entry(cluster_id: str = "") -> Entry:
    """The anchor at index 0 of every fresh log of the cluster ``cluster_id``.

    An empty id gives the anonymous genesis (``data`` null) that logs written
    before cluster ids existed, the simulator and the unit tests use.
    """
    data = {"cluster": cluster_id} if cluster_id else None
    return make_entry(ZERO_HASH, 0, 0, EntryType.GENESIS, data)


GENESIS: Entry = genesis_entry()


def is_genesis(entry: Entry) -> bool:
    """True for a well-formed GENESIS anchor of some cluster (its hash checked)."""
    return (
        entry.type is EntryType.GENESIS
        and entry.index == 0
        and entry.term == 0
        and genesis_cluster(entry) is not None
        and entry == genesis_entry(genesis_cluster(entry) or "")
    )


def genesis_cluster(entry: Entry) -> str | None:
    """The cluster id a GENESIS anchor names ("" for the anonymous one), or None
    when ``entry`` is not a GENESIS entry of the expected shape."""
    if entry.type is not EntryType.GENESIS:
        return None
    if entry.data is None:
        return ""
    if isinstance(entry.data, dict) and set(entry.data) == {"cluster"}:
        cluster = entry.data["cluster"]
        return cluster if isinstance(cluster, str) and cluster else None
    return None


__all__ = [
    "GENESIS",
    "ZERO_HASH",
    "Entry",
    "EntryType",
    "Receipt",
    "Signer",
    "canonical_body",
    "chain_hash",
    "entry_links",
    "genesis_cluster",
    "genesis_entry",
    "is_genesis",
    "make_entry",
    "signed",
    "snap_dummy",
]
