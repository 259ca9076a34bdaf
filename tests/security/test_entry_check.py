"""The rules a follower with a trust registry applies to AppendEntries and snapshots."""

from __future__ import annotations

from dataclasses import replace

import msgspec
import pytest

from resonetics.raft.entry import GENESIS, Entry
from resonetics.raft.membership import Membership
from resonetics.raft.messages import AppendEntries, InstallSnapshot
from resonetics.raft.ready import Snapshot, SnapshotMeta
from resonetics.raft.snapshot import OutgoingSnapshot, SnapshotSend
from resonetics.security import entry_check as ec
from resonetics.security.audit import audit_snapshot
from resonetics.security.entry_check import EntryGate, check_append
from resonetics.security.signing import SignatureCheck, sign_entry_hash
from resonetics.security.snapshot_signing import (
    sign_snapshot,
    snapshot_message,
    verify_snapshot,
)
from tests.security.history_keys import EVIL, KEYS, REGISTRY, chain


def append(
    src: str, term: int, entries: list[Entry], leader_id: str | None = None
) -> AppendEntries:
    return AppendEntries(
        src=src,
        dst="n2",
        term=term,
        leader_id=leader_id or src,
        prev_log_index=GENESIS.index,
        prev_log_term=GENESIS.term,
        prev_log_hash=GENESIS.hash,
        entries=entries,
        leader_commit=0,
    )


def test_entries_signed_by_the_terms_leader_pass() -> None:
    assert check_append(append("n1", 2, chain([(1, "n3"), (2, "n1")])), REGISTRY, {}) is None


def test_heartbeat_from_a_registered_leader_passes() -> None:
    assert check_append(append("n1", 5, []), REGISTRY, {}) is None


def test_follower_refuses_entry_not_signed_by_the_terms_leader() -> None:
    msg = append("n1", 2, chain([(2, "n3")]))
    assert check_append(msg, REGISTRY, {}) == ec.ENTRY_NOT_BY_TERMS_LEADER


def test_follower_refuses_unsigned_entries_when_a_registry_is_configured() -> None:
    msg = append("n1", 2, chain([(2, "n1"), (2, None)]))
    assert check_append(msg, REGISTRY, {}) == ec.UNSIGNED_ENTRY


def test_append_from_an_unregistered_sender_is_refused_even_without_entries() -> None:
    assert check_append(append("evil", 9, []), REGISTRY, {}) == ec.UNREGISTERED_SENDER


def test_entry_of_an_older_term_by_an_unregistered_author_is_refused() -> None:
    msg = append("n1", 3, chain([(2, "evil"), (3, "n1")]))
    assert check_append(msg, REGISTRY, {}) == ec.ENTRY_UNKNOWN_AUTHOR


def test_entry_whose_signature_does_not_verify_is_refused() -> None:
    good = chain([(2, "n1")])[0]
    # n1's name on a signature made with another key.
    forged = msgspec.structs.replace(good, sig=sign_entry_hash(EVIL, "n1", good.hash).sig)
    assert check_append(append("n1", 2, [forged]), REGISTRY, {}) == ec.ENTRY_BAD_SIGNATURE
    garbled = msgspec.structs.replace(good, sig="zz")
    assert check_append(append("n1", 2, [garbled]), REGISTRY, {}) == ec.ENTRY_BAD_SIGNATURE


def test_two_authors_of_one_term_are_refused_against_the_log_and_within_a_message() -> None:
    older = append("n1", 3, chain([(2, "n2"), (3, "n1")]))
    assert check_append(older, REGISTRY, {2: "n3"}) == ec.TWO_AUTHORS_IN_ONE_TERM
    mixed = append("n1", 3, chain([(2, "n2"), (2, "n3")]))
    assert check_append(mixed, REGISTRY, {}) == ec.TWO_AUTHORS_IN_ONE_TERM


def test_entry_from_a_later_term_than_the_message_is_refused() -> None:
    assert check_append(append("n1", 2, chain([(3, "n1")])), REGISTRY, {}) == (
        ec.ENTRY_FROM_LATER_TERM
    )


def test_leader_id_other_than_the_sender_is_refused() -> None:
    msg = append("n1", 2, chain([(2, "n1")]), leader_id="n3")
    assert check_append(msg, REGISTRY, {}) == ec.LEADER_ID_MISMATCH


def test_gate_remembers_the_author_of_each_term_from_the_log() -> None:
    gate = EntryGate(REGISTRY)
    gate.remember(chain([(4, "n3")]))
    assert gate.check(append("n1", 5, chain([(4, "n2"), (5, "n1")]))) == ec.TWO_AUTHORS_IN_ONE_TERM
    assert gate.check(append("n1", 5, chain([(4, "n3"), (5, "n1")]))) is None


# --- snapshots --------------------------------------------------------------------------
META = SnapshotMeta(40, 3, "ab" * 32, Membership(voters=("n1", "n2", "n3")))
SNAP = Snapshot(META, b"state bytes")


def chunks(snapshot: Snapshot, src: str = "n1") -> list[InstallSnapshot]:
    send = SnapshotSend(OutgoingSnapshot.of(snapshot), chunk_bytes=8, window=100)
    return send.next_chunks(src, "n2", 5)


def test_a_signed_snapshot_streams_with_its_signature_and_passes_the_gate() -> None:
    signed = sign_snapshot(KEYS["n3"], "n3", SNAP)
    assert verify_snapshot(REGISTRY, signed) is SignatureCheck.VALID
    gate = EntryGate(REGISTRY)
    sent = chunks(signed)
    assert len(sent) > 1 and all(c.signer == "n3" and c.sig == signed.meta.sig for c in sent)
    assert all(gate.check(c) is None for c in sent)


def test_unsigned_snapshot_is_refused_by_the_gate() -> None:
    assert EntryGate(REGISTRY).check(chunks(SNAP)[0]) == ec.UNSIGNED_SNAPSHOT


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"last_included_index": 41}, ec.SNAPSHOT_BAD_SIGNATURE),
        ({"checksum": "00" * 32}, ec.SNAPSHOT_BAD_SIGNATURE),
        ({"signer": "n2"}, ec.SNAPSHOT_BAD_SIGNATURE),
        ({"signer": "evil"}, ec.SNAPSHOT_UNKNOWN_SIGNER),
        ({"src": "evil", "leader_id": "evil"}, ec.UNREGISTERED_SENDER),
    ],
)
def test_snapshot_chunk_that_does_not_match_its_signature_is_refused(
    change: dict[str, object], reason: str
) -> None:
    first = chunks(sign_snapshot(KEYS["n1"], "n1", SNAP))[0]
    assert EntryGate(REGISTRY).check(msgspec.structs.replace(first, **change)) == reason


def test_an_entry_signature_is_never_valid_as_a_snapshot_signature() -> None:
    """Domain separation: the same key signing the same hex under the entry prefix."""
    message = snapshot_message(40, 3, "ab" * 32, "cd" * 32)
    entry_sig = sign_entry_hash(KEYS["n1"], "n1", "ab" * 32).sig
    assert REGISTRY.verify_message("n1", entry_sig, message) is SignatureCheck.BAD_SIGNATURE


def test_verify_keys_audits_the_snapshot_signature() -> None:
    signed = sign_snapshot(KEYS["n1"], "n1", SNAP)
    assert audit_snapshot(signed, REGISTRY) == (SignatureCheck.VALID, None)
    tampered = Snapshot(signed.meta, b"other state")
    verdict, problem = audit_snapshot(tampered, REGISTRY)
    assert verdict is SignatureCheck.BAD_SIGNATURE and problem and "does not verify" in problem
    assert audit_snapshot(SNAP, REGISTRY)[1] is None
    assert (
        audit_snapshot(SNAP, REGISTRY, require_signed=True)[1] == "snapshot at index 40: unsigned"
    )
    relabeled = Snapshot(replace(signed.meta, signer="evil"), signed.data)
    assert audit_snapshot(relabeled, REGISTRY)[0] is SignatureCheck.UNKNOWN_AUTHOR
