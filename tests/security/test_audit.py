"""Signed entries: the leader signs what it creates; ``verify --keys`` checks every signature."""

from __future__ import annotations

import random

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from resonetics.raft.config import RaftConfig
from resonetics.raft.entry import GENESIS, Entry, EntryType, Signer, make_entry, signed
from resonetics.raft.node import RaftNode
from resonetics.raft.ready import Role
from resonetics.security.audit import audit_entries
from resonetics.security.signing import SignatureCheck, TrustRegistry, sign_entry_hash

KEYS = {node: Ed25519PrivateKey.generate() for node in ("n1", "n2")}
REGISTRY = TrustRegistry({node: key.public_key() for node, key in KEYS.items()})


def signer_for(node: str) -> Signer:
    return lambda h: (node, sign_entry_hash(KEYS[node], node, h).sig)


def _chain(n: int, term: int = 1, author: str = "n1") -> list[Entry]:
    out, prev = [], GENESIS.hash
    for i in range(1, n + 1):
        entry = signed(
            make_entry(prev, term, i, EntryType.CLIENT_CMD, {"i": i}), signer_for(author)
        )
        prev = entry.hash
        out.append(entry)
    return out


def test_a_signature_does_not_change_the_chain_hash() -> None:
    plain = make_entry(GENESIS.hash, 1, 1, EntryType.NOOP, None)
    sig = signed(plain, signer_for("n1"))
    assert sig.hash == plain.hash and sig.author == "n1" and isinstance(sig.sig, str)


def test_a_single_node_leader_signs_every_entry_it_creates() -> None:
    config = RaftConfig(node_id="n1", initial_voters=("n1",))
    node = RaftNode(config, random.Random(1), signer=signer_for("n1"))
    node.campaign()
    while node.has_ready():
        node.advance(node.ready())
    assert node.role is Role.LEADER
    node.propose({"op": "x"})
    entries = node.entries_from(1)
    assert [e.type for e in entries] == [EntryType.NOOP, EntryType.CLIENT_CMD]
    audit = audit_entries(entries, REGISTRY, require_signed=True)
    assert audit.counts[SignatureCheck.VALID] == 2 and not audit.problems


def test_a_forged_signature_unknown_author_and_unsigned_entries_are_reported() -> None:
    entries = _chain(4)
    forged = msgspec.structs.replace(entries[1], sig="00" * 64)
    stranger = signed(entries[2], lambda h: ("n9", "ab" * 64))
    unsigned = make_entry(entries[2].hash, 1, 4, EntryType.CLIENT_CMD, {"i": 4})
    audit = audit_entries([entries[0], forged, stranger, unsigned], REGISTRY)
    assert audit.counts[SignatureCheck.VALID] == 1
    assert audit.counts[SignatureCheck.BAD_SIGNATURE] == 1
    assert audit.counts[SignatureCheck.UNKNOWN_AUTHOR] == 1
    assert audit.counts[SignatureCheck.UNSIGNED] == 1
    assert any("BAD_SIGNATURE" in p and "index 2" in p for p in audit.problems)
    assert any("UNKNOWN_AUTHOR" in p and "index 3" in p for p in audit.problems)
    assert not any("UNSIGNED" in p for p in audit.problems)
    strict = audit_entries([unsigned], REGISTRY, require_signed=True)
    assert any("UNSIGNED" in p for p in strict.problems)


def test_two_authors_in_one_term_are_two_leaders() -> None:
    first = _chain(2, author="n1")
    other = signed(make_entry(first[-1].hash, 1, 3, EntryType.CLIENT_CMD, {}), signer_for("n2"))
    audit = audit_entries([*first, other], REGISTRY)
    assert any("two leaders in one term" in p for p in audit.problems)
    next_term = signed(make_entry(first[-1].hash, 2, 3, EntryType.NOOP, None), signer_for("n2"))
    assert not audit_entries([*first, next_term], REGISTRY).problems
