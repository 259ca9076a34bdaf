"""Wiring a node's signing key and trust registry into its driver.

One function the server calls when it builds its ``NodeDriver``: with
``--sign-entries`` the node signs the entries and snapshots it creates; with
``--trust-registry`` it also does so (signing is implied) and checks every
incoming AppendEntries and InstallSnapshot against the registry
(``security.entry_check.EntryGate``). The registry must hold this node's own key:
a node whose signatures its peers would refuse is a configuration error, said at
start-up in one line rather than discovered as a cluster that never commits.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from resonetics.raft.entry import Signer
from resonetics.runtime.message_gate import MessageFilter
from resonetics.security.entry_check import EntryGate
from resonetics.security.signing import TrustRegistry, public_key_text, sign_entry_hash
from resonetics.security.snapshot_signing import SnapshotSigner, snapshot_signer
from resonetics.server.config import ConfigError, ServerConfig


@dataclass(frozen=True, slots=True)
class HistoryTrust:
    """What the driver is given: ``NodeDriver(signer=..., message_filter=..., snapshot_signer=...)``."""

    signer: Signer | None = None
    message_filter: MessageFilter | None = None
    snapshot_signer: SnapshotSigner | None = None


def entry_signer(node_id: str, key: Ed25519PrivateKey) -> Signer:
    def sign(entry_hash: str) -> tuple[str, str]:
        return node_id, sign_entry_hash(key, node_id, entry_hash).sig

    return sign


def history_trust(config: ServerConfig, key: Ed25519PrivateKey) -> HistoryTrust:
    """The signing and checking a node does, from its config (``ConfigError`` if inconsistent)."""
    if not config.signs_entries:
        return HistoryTrust()
    node = config.node_id
    gate: EntryGate | None = None
    if config.trust_registry is not None:
        gate = EntryGate(load_registry(config, key))
    return HistoryTrust(entry_signer(node, key), gate, snapshot_signer(key, node))


def load_registry(config: ServerConfig, key: Ed25519PrivateKey) -> TrustRegistry:
    """The registry ``--trust-registry`` names, which must hold this node's own key (at
    start, and on every SIGHUP: a reload that would drop it is refused)."""
    path, node = config.trust_registry, config.node_id
    assert path is not None
    registry = TrustRegistry.load(path)
    own = registry.key_text(node)
    if own is None:
        raise ConfigError(f"--trust-registry {path}: has no key for this node {node!r}")
    if own != public_key_text(key):
        raise ConfigError(
            f"--trust-registry {path}: the key for {node!r} is not the "
            "public half of this node's signing key (see 'entry signing key' in its log)"
        )
    return registry


__all__ = ["HistoryTrust", "entry_signer", "history_trust", "load_registry"]
