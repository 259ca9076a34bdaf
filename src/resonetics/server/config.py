"""A node's settings: from command-line flags or a TOML file (``--config cluster.toml``).

The TOML file describes the whole cluster, so one file serves every node::

    [cluster]
    data_dir = "data"          # each node uses <data_dir>/<node_id>/
    tick_ms = 25
    election_ticks = 12        # election timeout: 12..24 ticks
    heartbeat_ticks = 2
    snapshot_entries = 10000

    [nodes]
    n1 = "127.0.0.1:7001"
    n2 = "127.0.0.1:7002"
    n3 = "127.0.0.1:7003"
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from resonetics import limits
from resonetics.errors import ResoneticsError
from resonetics.raft.config import RaftConfig


class ConfigError(ResoneticsError):
    """The node's configuration is unusable; the message says which setting and why."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    node_id: str
    #: node id -> "host:port" for every initial voter (this node included, unless joining).
    peers: dict[str, str]
    data_dir: Path
    listen: str = ""
    tick_ms: int = 25
    election_ticks: int = 12
    heartbeat_ticks: int = 2
    snapshot_entries: int = limits.SNAPSHOT_ENTRIES_DEFAULT
    #: How long a client request may wait for its outcome before TIMEOUT, seconds.
    request_timeout_s: float = 5.0
    #: Addresses of existing members to join through (empty: not joining).
    join: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def node_dir(self) -> Path:
        return self.data_dir / self.node_id

    @property
    def listen_address(self) -> tuple[str, int]:
        return parse_address(self.listen or self.peers[self.node_id], what="listen")

    def raft_config(self) -> RaftConfig:
        voters = () if self.join else tuple(sorted(self.peers))
        return RaftConfig(
            node_id=self.node_id,
            initial_voters=voters,
            election_ticks=self.election_ticks,
            heartbeat_ticks=self.heartbeat_ticks,
        )

    def validate(self) -> ServerConfig:
        if not self.node_id:
            raise ConfigError("--id: a node id is required")
        if self.node_id not in self.peers and not self.listen:
            raise ConfigError(
                f"--id {self.node_id}: not in the peer list ({', '.join(sorted(self.peers))}) "
                "and no --listen address given"
            )
        for node, address in self.peers.items():
            parse_address(address, what=f"peer {node}")
        if self.tick_ms < 1:
            raise ConfigError(f"tick_ms: must be >= 1, got {self.tick_ms}")
        if not 1 <= self.heartbeat_ticks < self.election_ticks:
            raise ConfigError("heartbeat_ticks must be >= 1 and below election_ticks")
        return self


def parse_address(address: str, *, what: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{what}: {address!r} is not HOST:PORT")
    return host, int(port)


def parse_peers(text: str) -> dict[str, str]:
    """``n1=127.0.0.1:7001,n2=...`` -> {"n1": "127.0.0.1:7001", ...}."""
    peers: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        node, sep, address = item.partition("=")
        if not sep or not node:
            raise ConfigError(f"--peers: {item!r} is not ID=HOST:PORT")
        parse_address(address, what=f"--peers {node}")
        peers[node] = address
    return peers


def load_toml(path: Path, node_id: str) -> ServerConfig:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    cluster = raw.get("cluster", {})
    nodes = raw.get("nodes", {})
    if not isinstance(nodes, dict) or not all(isinstance(v, str) for v in nodes.values()):
        raise ConfigError(f"{path}: [nodes] must map node ids to 'HOST:PORT' strings")
    base = ServerConfig(node_id=node_id, peers=dict(nodes), data_dir=Path("data"))
    return apply_overrides(base, cluster, source=str(path))


_INT_KEYS = ("tick_ms", "election_ticks", "heartbeat_ticks", "snapshot_entries")


def apply_overrides(config: ServerConfig, values: dict[str, Any], *, source: str) -> ServerConfig:
    """Apply settings from a TOML table or flags, checking each one's type."""
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        if key in _INT_KEYS:
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"{source}: {key} must be an integer, got {value!r}")
            changes[key] = value
        elif key == "data_dir":
            changes[key] = Path(str(value))
        elif key == "request_timeout_s":
            changes[key] = float(value)
        elif key in ("listen",):
            changes[key] = str(value)
        elif key == "join":
            changes[key] = tuple(value)
        else:
            raise ConfigError(f"{source}: unknown setting {key!r}")
    return replace(config, **changes)


__all__ = [
    "ConfigError",
    "ServerConfig",
    "apply_overrides",
    "load_toml",
    "parse_address",
    "parse_peers",
]
