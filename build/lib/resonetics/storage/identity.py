"""Who a node folder belongs to: a node id within a cluster id.

Theory of operation
-------------------
A cluster id is made once, when a cluster is founded: 128 random bits written
as 32 lowercase hex digits. Every node of the cluster keeps it, with its own
node id, in ``meta.json``, and the cluster id seeds the GENESIS entry
(``raft/entry.py``), so two clusters' hash chains never agree at any index.

At start a node compares the identity it was given with the one its folder
holds: another node id or another cluster id is ``IdentityMismatch``. A node
started with no cluster id adopts the one on disk; a fresh folder with no
cluster id is refused (``ClusterIdRequired``), since guessing would found a
cluster of one.

The founders of a cluster given no id compute the same one from their initial
peers map (``founding_cluster_id``): deterministic, so they agree without
talking, but not secret and not unique across two clusters founded with the
same peers map; ``cluster up`` and a cluster key file supply a random one.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from resonetics.errors import BadClusterId

#: A cluster id is this many random bits.
CLUSTER_ID_BITS = 128
CLUSTER_ID_HEX_CHARS = CLUSTER_ID_BITS // 4
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    """The node a folder belongs to; ``cluster_id`` None: adopt the one on disk.

    ``founding_id`` is the cluster id a *fresh* folder gets when ``cluster_id``
    is None (a founder of a new cluster, see ``founding_cluster_id``); an
    existing folder ignores it.
    """

    node_id: str
    cluster_id: str | None = None
    founding_id: str | None = None


def new_cluster_id() -> str:
    """A fresh random cluster id (128 bits from ``secrets``)."""
    return secrets.token_hex(CLUSTER_ID_BITS // 8)


def check_cluster_id(text: str) -> str:
    """``text`` when it is a well-formed cluster id, else ``BadClusterId`` saying why."""
    if len(text) != CLUSTER_ID_HEX_CHARS:
        raise BadClusterId(text, f"must be {CLUSTER_ID_HEX_CHARS} hex digits, got {len(text)}")
    if not set(text) <= _HEX:
        raise BadClusterId(text, "must be lowercase hex digits 0-9a-f")
    return text


def founding_cluster_id(peers: Mapping[str, str]) -> str:
    """The id every founder of a cluster computes from its initial peers map.

    sha256 over the sorted ``id=address`` pairs, cut to 128 bits. Used only when
    a node founds a new cluster and no id was given.
    """
    text = "\n".join(f"{node}={peers[node]}" for node in sorted(peers))
    return hashlib.sha256(b"resonetics-cluster\n" + text.encode()).hexdigest()[
        :CLUSTER_ID_HEX_CHARS
    ]


__all__ = [
    "CLUSTER_ID_BITS",
    "CLUSTER_ID_HEX_CHARS",
    "NodeIdentity",
    "check_cluster_id",
    "founding_cluster_id",
    "new_cluster_id",
]
