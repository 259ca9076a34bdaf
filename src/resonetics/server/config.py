"""A node's settings: from command-line flags or a TOML file (``--config cluster.toml``).

The TOML file describes the whole cluster, so one file serves every node::

    [cluster]
    data_dir = "data"          # each node uses <data_dir>/<node_id>/
    tick_ms = 25
    election_ticks = 12        # election timeout: 12..24 ticks
    heartbeat_ticks = 2
    snapshot_entries = 10000      # a snapshot every N applied entries...
    snapshot_bytes = 0            # ...or every N bytes of log, whichever comes first (0: off)
    # Optional: TLS with mutual authentication (all three paths, or none for plain TCP).
    # tls_ca = "certs/ca.pem"
    # tls_cert = "certs/n1.pem"    # per node: use --tls-cert/--tls-key flags to override
    # tls_key = "certs/n1.key"
    # tls_client_auth = "required" # or "optional": clients may connect without a cert
    # rate_limit_rps = 5000        # client requests per second per connection (0: off)
    # rate_limit_burst = 10000
    # connections_per_ip_max = 512
    # policy = "policy.toml"       # who may do what (docs/security.md); none: nobody is admin

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
from resonetics.raft.config import RaftConfig, lease_ticks_for
from resonetics.security.tls import CLIENT_AUTH_CHOICES, ClientAuth, TLSConfig


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
    #: Approximate log bytes since the last snapshot that also trigger one (0: off).
    snapshot_bytes: int = 0
    #: How long a client request may wait for its outcome before TIMEOUT, seconds.
    request_timeout_s: float = 5.0
    #: Addresses of existing members to join through (empty: not joining).
    join: tuple[str, ...] = ()
    #: TLS material (security/tls.py); all None: plain TCP.
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_auth: ClientAuth = "required"
    #: Client requests per second per connection (0: no limit), and the burst above it.
    rate_limit_rps: float = limits.RATE_LIMIT_RPS_DEFAULT
    rate_limit_burst: int = limits.RATE_LIMIT_BURST_DEFAULT
    connections_per_ip_max: int = limits.CONNECTIONS_PER_IP_MAX
    #: The node's Ed25519 entry-signing key; None: <node_dir>/node.key, made on first start.
    signing_key: Path | None = None
    #: Sign every entry this node creates as leader with its key (``verify --keys`` checks).
    sign_entries: bool = False
    #: Authorization policy (security/authz.py); None: every client reads and writes
    #: every key and nobody is admin. Read at start: a change takes effect on restart.
    policy: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def tls(self) -> TLSConfig | None:
        """The node's TLS material, or None for a plain-TCP node."""
        return TLSConfig.from_paths(self.tls_ca, self.tls_cert, self.tls_key)

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
            # Lease reads are opt-in per request (consistency "lease"); the lease
            # length assumes tick rates differ by at most LEASE_CLOCK_DRIFT_MAX.
            lease_ticks=lease_ticks_for(self.election_ticks),
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
        self._validate_security()
        return self

    def _validate_security(self) -> None:
        tls = self.tls()
        if tls is not None and tls.cert is None:
            raise ConfigError("--tls-cert: a TLS node needs its certificate (and --tls-key)")
        if self.tls_client_auth not in CLIENT_AUTH_CHOICES:
            raise ConfigError(
                f"tls_client_auth: must be required or optional, not {self.tls_client_auth!r}"
            )
        if self.rate_limit_rps < 0 or self.rate_limit_burst < 1:
            raise ConfigError("rate_limit_rps must be >= 0 and rate_limit_burst >= 1")
        if self.connections_per_ip_max < 1:
            raise ConfigError("connections_per_ip_max must be >= 1")


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


_INT_KEYS = (
    "tick_ms",
    "election_ticks",
    "heartbeat_ticks",
    "snapshot_entries",
    "snapshot_bytes",
    "rate_limit_burst",
    "connections_per_ip_max",
)
_PATH_KEYS = ("data_dir", "tls_ca", "tls_cert", "tls_key", "signing_key", "policy")


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
        elif key in _PATH_KEYS:
            changes[key] = Path(str(value))
        elif key in ("request_timeout_s", "rate_limit_rps"):
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ConfigError(f"{source}: {key} must be a number, got {value!r}")
            changes[key] = float(value)
        elif key in ("listen", "tls_client_auth"):
            changes[key] = str(value)
        elif key == "join":
            changes[key] = tuple(value)
        elif key == "sign_entries":
            if not isinstance(value, bool):
                raise ConfigError(f"{source}: {key} must be true or false, got {value!r}")
            changes[key] = value
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
