"""Keys, a registry and signed entries for the history-signature tests."""

from __future__ import annotations

from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from resonetics.raft.entry import GENESIS, Entry, EntryType, make_entry, signed
from resonetics.security.signing import TrustRegistry, sign_entry_hash

IDS = ("n1", "n2", "n3")
#: Deterministic keys (Ed25519 from fixed seeds) so failures reproduce.
KEYS = {n: Ed25519PrivateKey.from_private_bytes(bytes([i + 1]) * 32) for i, n in enumerate(IDS)}
EVIL = Ed25519PrivateKey.from_private_bytes(b"\x66" * 32)
REGISTRY = TrustRegistry({n: k.public_key() for n, k in KEYS.items()})


def signer_of(node: str, key: Ed25519PrivateKey | None = None) -> Callable[[str], tuple[str, str]]:
    k = key or KEYS[node]

    def sign(entry_hash: str) -> tuple[str, str]:
        return node, sign_entry_hash(k, node, entry_hash).sig

    return sign


def chain(terms_and_authors: list[tuple[int, str | None]], prev: Entry = GENESIS) -> list[Entry]:
    """Entries after ``prev``, one per (term, author); author None leaves it unsigned."""
    out: list[Entry] = []
    for term, author in terms_and_authors:
        entry = make_entry(prev.hash, term, prev.index + 1, EntryType.NOOP, None)
        if author is not None:
            entry = signed(entry, signer_of(author, KEYS.get(author, EVIL)))
        out.append(entry)
        prev = entry
    return out
