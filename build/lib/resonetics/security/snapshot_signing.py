"""Snapshot signatures: the node that took a snapshot vouches for it.

A snapshot replaces a follower's whole state, so with a trust registry a follower
installs only one signed by a registered node. The signature covers a
domain-separated digest of what identifies the snapshot::

    b"resonetics/snapshot-signature/v1\\n" + "<index>\\n<term>\\n<chain hash>\\n<checksum>"

where ``checksum`` is the SHA-256 (hex) of the streamed payload (membership line and
state bytes, ``raft/snapshot.py``), the same value every ``InstallSnapshot`` chunk
carries. So a follower can check the signature on the *first* chunk, before it
spools a byte, and the core's checksum check on the last chunk then binds the bytes
it assembled to what was signed. The prefix differs from the entry signatures'
(``signing.SIGNING_DOMAIN``): neither kind of signature is ever valid as the other.

The signature names who *took* the snapshot, not who streams it: a follower that
installed it and later leads sends it on unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from resonetics.raft.ready import Snapshot, SnapshotMeta
from resonetics.raft.snapshot import checksum_of, encode_payload
from resonetics.raft.types import Index, Term
from resonetics.security.signing import SignatureCheck, TrustRegistry

#: Prefix of every signed snapshot digest (never valid for an entry or anything else).
SNAPSHOT_SIGNING_DOMAIN = b"resonetics/snapshot-signature/v1\n"

#: Returns ``snapshot`` signed by the node that took it (the runtime calls it once per take).
SnapshotSigner = Callable[[Snapshot], Snapshot]


def snapshot_message(index: Index, term: Term, hash_: str, checksum: str) -> bytes:
    """The bytes signed for a snapshot (see the module docstring)."""
    return SNAPSHOT_SIGNING_DOMAIN + f"{index}\n{term}\n{hash_}\n{checksum}".encode()


def payload_checksum(snapshot: Snapshot) -> str:
    """The streamed payload's checksum, as ``InstallSnapshot.checksum`` carries it."""
    return checksum_of(encode_payload(snapshot))


def sign_snapshot(key: Ed25519PrivateKey, signer: str, snapshot: Snapshot) -> Snapshot:
    meta = snapshot.meta
    message = snapshot_message(
        meta.last_included_index,
        meta.last_included_term,
        meta.last_included_hash,
        payload_checksum(snapshot),
    )
    signed: SnapshotMeta = replace(meta, signer=signer, sig=key.sign(message).hex())
    return Snapshot(signed, snapshot.data)


def snapshot_signer(key: Ed25519PrivateKey, node_id: str) -> SnapshotSigner:
    def sign(snapshot: Snapshot) -> Snapshot:
        return sign_snapshot(key, node_id, snapshot)

    return sign


def verify_snapshot_signature(
    registry: TrustRegistry,
    *,
    index: Index,
    term: Term,
    hash_: str,
    checksum: str,
    signer: str,
    sig: str,
) -> SignatureCheck:
    """The verdict on a snapshot's signature (``UNSIGNED`` when it carries none)."""
    if not signer and not sig:
        return SignatureCheck.UNSIGNED
    return registry.verify_message(signer, sig, snapshot_message(index, term, hash_, checksum))


def verify_snapshot(registry: TrustRegistry, snapshot: Snapshot) -> SignatureCheck:
    """The verdict on a whole snapshot (``verify --keys`` on ``snapshot.json``)."""
    meta = snapshot.meta
    return verify_snapshot_signature(
        registry,
        index=meta.last_included_index,
        term=meta.last_included_term,
        hash_=meta.last_included_hash,
        checksum=payload_checksum(snapshot),
        signer=meta.signer,
        sig=meta.sig,
    )


__all__ = [
    "SNAPSHOT_SIGNING_DOMAIN",
    "SnapshotSigner",
    "payload_checksum",
    "sign_snapshot",
    "snapshot_message",
    "snapshot_signer",
    "verify_snapshot",
    "verify_snapshot_signature",
]
