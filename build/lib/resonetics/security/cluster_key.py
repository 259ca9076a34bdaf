"""The cluster key file: a cluster's id and the shared secret its nodes prove they hold.

Theory of operation
-------------------
Without TLS, a peer link is authenticated by challenge–response over a secret
every node of the cluster holds (``security/peer_auth.py``). That secret lives
in a small TOML file made once, when the cluster is created (``resonetics
init``, or ``resonetics cluster up`` for a local cluster), and copied to every
node::

    # Resonetics cluster key. Secret: every node of the cluster needs a copy, nobody else.
    cluster_id = "3f9c…"          # 128 random bits, 32 hex digits
    key = "base64 of 32 random bytes"

The file also carries the cluster id, so the same act that makes the secret
makes the identity (DESIGN §7): a node given the file bootstraps with that id,
and one started on another cluster's file cannot complete a handshake with
this cluster. Like the node's signing key, the file must not be readable by
group or others: a key file others can read is refused at start, since anyone
who reads it can act as a peer.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path

from resonetics.errors import BadClusterId, ResoneticsError
from resonetics.storage.identity import check_cluster_id, new_cluster_id

#: Bytes of secret in a cluster key.
CLUSTER_KEY_BYTES = 32


class ClusterKeyError(ResoneticsError):
    """A cluster key file is missing, unreadable, malformed or readable by others."""


@dataclass(frozen=True, slots=True)
class ClusterKey:
    cluster_id: str
    secret: bytes = b""

    def __repr__(self) -> str:  # never print the secret, not even in a traceback
        return f"ClusterKey(cluster_id={self.cluster_id!r}, secret=<{len(self.secret)} bytes>)"


def new_cluster_key() -> ClusterKey:
    """A fresh cluster: a random 128-bit id and a random 256-bit secret."""
    return ClusterKey(new_cluster_id(), secrets.token_bytes(CLUSTER_KEY_BYTES))


def write_cluster_key(path: Path, key: ClusterKey) -> None:
    """Write ``key`` to a new file readable by its owner only; refuses to overwrite."""
    text = (
        "# Resonetics cluster key. Secret: every node of the cluster needs a copy, nobody else.\n"
        f'cluster_id = "{key.cluster_id}"\n'
        f'key = "{base64.b64encode(key.secret).decode("ascii")}"\n'
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ClusterKeyError(f"{path}: already exists; not overwriting a cluster key") from None
    except OSError as exc:
        raise ClusterKeyError(f"{path}: cannot create ({exc.strerror})") from None
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())


def load_cluster_key(path: Path) -> ClusterKey:
    """Read and check a cluster key file; every problem is one ``ClusterKeyError`` line."""
    try:
        mode = path.stat().st_mode
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ClusterKeyError(f"--cluster-key {path}: no such file") from None
    except OSError as exc:
        raise ClusterKeyError(f"--cluster-key {path}: cannot read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ClusterKeyError(f"--cluster-key {path}: not a cluster key file ({exc})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ClusterKeyError(
            f"--cluster-key {path}: readable by others (mode {stat.S_IMODE(mode):o}); "
            f"anyone who can read it can act as a node. Run: chmod 600 {path}"
        )
    unknown = set(raw) - {"cluster_id", "key"}
    if unknown:
        raise ClusterKeyError(f"--cluster-key {path}: unknown setting {sorted(unknown)[0]!r}")
    cluster_id, secret_text = raw.get("cluster_id"), raw.get("key")
    if not isinstance(cluster_id, str) or not isinstance(secret_text, str):
        raise ClusterKeyError(f"--cluster-key {path}: needs cluster_id and key strings")
    try:
        check_cluster_id(cluster_id)  # the one rule for ids (storage/identity.py)
    except BadClusterId as exc:
        raise ClusterKeyError(
            f"--cluster-key {path}: cluster_id {cluster_id!r} is not a cluster id ({exc.reason})"
        ) from None
    try:
        secret = base64.b64decode(secret_text, validate=True)
    except (binascii.Error, ValueError):
        raise ClusterKeyError(f"--cluster-key {path}: key is not base64") from None
    if len(secret) != CLUSTER_KEY_BYTES:
        raise ClusterKeyError(
            f"--cluster-key {path}: key must be {CLUSTER_KEY_BYTES} bytes, got {len(secret)}"
        )
    return ClusterKey(cluster_id, secret)


__all__ = [
    "CLUSTER_KEY_BYTES",
    "ClusterKey",
    "ClusterKeyError",
    "load_cluster_key",
    "new_cluster_key",
    "write_cluster_key",
]
