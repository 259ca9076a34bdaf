"""Entry signatures: who created an entry, checked against a trust registry.

Theory of operation
-------------------
The hash chain (``raft/entry.py``) makes a log tamper-evident *relative to another
copy*: a node that rewrites its whole log consistently leaves a valid chain. A
signature pins each entry to its author. Every node holds an Ed25519 key
(``<node_dir>/node.key``, PKCS#8 PEM, mode 0600, made on first start unless
given); the **trust registry** is a TOML or JSON file mapping node ids to
public keys, written once by the operator and handed to auditors::

    [nodes]
    n1 = "ed25519:3q2+7w..."     # base64 of the 32 raw public-key bytes
    n2 = "ed25519:..."

The leader signs each entry it creates. The signature covers the entry's
**chain hash** (which already commits to term, index, type, data and the whole
history before it), under a domain-separation prefix so it can never be
replayed as a signature over anything else. It is stored *beside* the entry as
``author`` + ``sig`` and is **not** part of the hash input: adding signatures
changes no hash, so old logs, receipts and ``verify`` keep working, and an
unsigned entry simply verifies as ``UNSIGNED``.

What a signature proves: the holder of ``author``'s key vouched for this hash
(and hence for the history up to it). It does not prove the entry was
committed; the chain and a quorum of copies do that.

This module is pure helpers (keys, registry, sign, verify). The leader signs in
its append path (``raft/node.py`` with a ``Signer``); a node given the registry
(``--trust-registry``) checks every incoming entry before it is stepped
(``security/entry_check.py``); snapshots are signed under their own domain
(``security/snapshot_signing.py``).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import stat
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from resonetics.errors import ResoneticsError

#: Prefix of every signed message: a signature over an entry is never valid for anything else.
SIGNING_DOMAIN = b"resonetics/entry-signature/v1\n"
#: The file a node keeps its signing key in, inside its node folder.
NODE_KEY_FILE = "node.key"
PUBLIC_KEY_PREFIX = "ed25519:"
#: Bytes of an Ed25519 public key and signature.
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64


class SigningError(ResoneticsError):
    """A key or registry is unusable; the message names the file and what is wrong."""


class SignatureCheck(StrEnum):
    """The verdict on one entry's signature."""

    VALID = "VALID"
    UNSIGNED = "UNSIGNED"  # no author/sig stored (entries from before signing, or anchors)
    UNKNOWN_AUTHOR = "UNKNOWN_AUTHOR"  # the author is not in the registry
    BAD_SIGNATURE = "BAD_SIGNATURE"  # malformed, or not made by the author's key over this hash


@dataclass(frozen=True, slots=True)
class EntrySignature:
    """``author`` (a node id) and ``sig`` (hex of 64 bytes), stored beside an entry."""

    author: str
    sig: str


def signed_message(entry_hash: str) -> bytes:
    """The bytes signed for an entry: the domain prefix and the hex chain hash."""
    return SIGNING_DOMAIN + entry_hash.encode("ascii")


def sign_entry_hash(key: Ed25519PrivateKey, author: str, entry_hash: str) -> EntrySignature:
    return EntrySignature(author, key.sign(signed_message(entry_hash)).hex())


# --- keys -----------------------------------------------------------------------------
def load_or_create_node_key(node_dir: Path, key_path: Path | None = None) -> Ed25519PrivateKey:
    """The node's signing key: ``key_path`` if given, else ``<node_dir>/node.key``, made if absent.

    A key file readable by group or others is refused: a signing key anyone on
    the host can read proves nothing about who signed.
    """
    path = key_path or node_dir / NODE_KEY_FILE
    if not path.exists():
        if key_path is not None:
            raise SigningError(f"{path}: signing key not found")
        key = Ed25519PrivateKey.generate()
        write_private_key(path, key)
        return key
    return read_private_key(path)


def write_private_key(path: Path, key: Ed25519PrivateKey) -> None:
    """PKCS#8 PEM, created with mode 0600 (never world-readable, not even for an instant)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise SigningError(f"{path}: cannot create signing key ({exc.strerror})") from exc
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def read_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise SigningError(f"{path}: cannot read signing key ({exc.strerror})") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SigningError(f"{path}: signing key is accessible to others (chmod 600 it)")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningError(f"{path}: not a PEM private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(f"{path}: not an Ed25519 key")
    return key


def public_key_text(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """``ed25519:<base64>``: the form a trust registry holds."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return PUBLIC_KEY_PREFIX + base64.b64encode(raw).decode("ascii")


def parse_public_key(text: str, *, where: str) -> Ed25519PublicKey:
    if not text.startswith(PUBLIC_KEY_PREFIX):
        raise SigningError(f"{where}: expected '{PUBLIC_KEY_PREFIX}<base64>', got {text[:20]!r}")
    try:
        raw = base64.b64decode(text.removeprefix(PUBLIC_KEY_PREFIX), validate=True)
    except binascii.Error as exc:
        raise SigningError(f"{where}: public key is not base64 ({exc})") from exc
    if len(raw) != PUBLIC_KEY_BYTES:
        raise SigningError(f"{where}: public key must be {PUBLIC_KEY_BYTES} bytes, got {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


# --- the trust registry -----------------------------------------------------------------
class TrustRegistry:
    """Node id -> public key: whose signatures an auditor accepts."""

    def __init__(self, keys: dict[str, Ed25519PublicKey]) -> None:
        self._keys = dict(keys)

    @property
    def node_ids(self) -> list[str]:
        return sorted(self._keys)

    @classmethod
    def load(cls, path: Path) -> TrustRegistry:
        """A ``.json`` file, or TOML otherwise; keys under ``nodes`` or at the top level."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SigningError(f"{path}: cannot read trust registry ({exc.strerror})") from exc
        try:
            raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            raise SigningError(
                f"{path}: trust registry is not valid {path.suffix or 'TOML'} ({exc})"
            ) from exc
        table = raw.get("nodes", raw) if isinstance(raw, dict) else None
        if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
            raise SigningError(f"{path}: trust registry must map node ids to 'ed25519:...' strings")
        return cls(
            {node: parse_public_key(text, where=f"{path} [{node}]") for node, text in table.items()}
        )

    def to_toml(self) -> str:
        lines = ["# Resonetics trust registry: node id -> Ed25519 public key", "[nodes]"]
        lines += [
            f'{json.dumps(node)} = "{public_key_text(self._keys[node])}"' for node in self.node_ids
        ]
        return "\n".join(lines) + "\n"

    def verify(self, entry_hash: str, signature: EntrySignature | None) -> SignatureCheck:
        """Whether ``signature`` is ``signature.author``'s over ``entry_hash``."""
        if signature is None:
            return SignatureCheck.UNSIGNED
        return self.verify_message(signature.author, signature.sig, signed_message(entry_hash))

    def key_text(self, node: str) -> str | None:
        """``node``'s key as ``ed25519:<base64>``, or None when it is not registered."""
        public = self._keys.get(node)
        return None if public is None else public_key_text(public)

    def knows(self, node: str) -> bool:
        """Whether ``node`` has a key here (only registered nodes may author history)."""
        return node in self._keys

    def verify_message(self, author: str, sig_hex: str, message: bytes) -> SignatureCheck:
        """Whether ``sig_hex`` is ``author``'s signature over ``message`` (already
        domain-separated by the caller: entries and snapshots use different prefixes)."""
        public = self._keys.get(author)
        if public is None:
            return SignatureCheck.UNKNOWN_AUTHOR
        try:
            sig = bytes.fromhex(sig_hex)
        except ValueError:
            return SignatureCheck.BAD_SIGNATURE
        if len(sig) != SIGNATURE_BYTES:
            return SignatureCheck.BAD_SIGNATURE
        try:
            public.verify(sig, message)
        except InvalidSignature:
            return SignatureCheck.BAD_SIGNATURE
        return SignatureCheck.VALID


def registry_from_node_dirs(node_dirs: dict[str, Path]) -> TrustRegistry:
    """The registry of a set of node folders, making each node's key if it has none yet."""
    return TrustRegistry(
        {node: load_or_create_node_key(d).public_key() for node, d in node_dirs.items()}
    )


__all__ = [
    "NODE_KEY_FILE",
    "SIGNING_DOMAIN",
    "EntrySignature",
    "SignatureCheck",
    "SigningError",
    "TrustRegistry",
    "load_or_create_node_key",
    "parse_public_key",
    "public_key_text",
    "read_private_key",
    "registry_from_node_dirs",
    "sign_entry_hash",
    "signed_message",
    "write_private_key",
]
