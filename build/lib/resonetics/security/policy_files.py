"""Writing policy and token files: atomically, readable by their owner only.

Kept apart from ``security/authz.py`` (which only reads) so that the node's
decision code does no writing at all. Used by ``resonetics auth`` and by
``LocalCluster``, which makes a policy and an admin token for a local cluster.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Final

from resonetics.security.authz import (
    IdentityEntry,
    Policy,
    Role,
    hash_token,
    new_token,
    parse_policy,
    render_policy,
)

#: The roles ``auth init`` and a local cluster start from.
STARTER_ROLES: Final = {
    "admin": Role("admin", read=("",), write=("",), admin=True, monitor=True),
    "readwrite": Role("readwrite", read=("",), write=("",), monitor=True),
    "monitor": Role("monitor", monitor=True),
}


def starter_policy(
    admin_name: str, token: str, *, anonymous: tuple[str, ...] = (), source: str = ""
) -> Policy:
    """The starter roles, one admin identity holding ``token``, ``anonymous`` roles."""
    admin = IdentityEntry(admin_name, ("admin",), hash_token(token))
    return Policy(dict(STARTER_ROLES), {admin_name: admin}, anonymous, source=source)


def write_policy(path: Path, policy: Policy) -> None:
    """Write ``policy`` atomically (mode 0600); it is re-parsed first, so it always loads."""
    text = render_policy(policy)
    parse_policy(tomllib.loads(text), source=str(path))
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_token_file(path: Path, token: str) -> None:
    """The token on one line, readable by its owner only (0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)  # O_CREAT's mode does not apply to a file that already existed


def local_cluster_policy(directory: Path) -> tuple[Path, Path]:
    """A policy for a local cluster in ``directory``: ``policy.toml`` and ``admin.token``.

    Anonymous clients read, write and monitor (the no-set-up experience of
    ``cluster up``); membership and leadership need the admin token. Files that
    already exist are kept, so a restarted cluster keeps its token.
    """
    policy_path, token_path = directory / "policy.toml", directory / "admin.token"
    if policy_path.exists() and token_path.exists():
        return policy_path, token_path
    directory.mkdir(parents=True, exist_ok=True)
    token = new_token()
    write_token_file(token_path, token)
    write_policy(policy_path, starter_policy("admin", token, anonymous=("readwrite",)))
    return policy_path, token_path


__all__ = [
    "STARTER_ROLES",
    "local_cluster_policy",
    "starter_policy",
    "write_policy",
    "write_token_file",
]
