"""A node's settings: from command-line flags or a TOML file (``--config cluster.toml``).

The TOML file describes the whole cluster, so one file serves every node::

    [cluster]
    cluster_key = "cluster.key"   # from `resonetics init`: the cluster id and peer secret
    data_dir = "data"          # each node uses <data_dir>/<node_id>/
    tick_ms = 25
    election_ticks = 12        # election timeout: 12..24 ticks
    heartbeat_ticks = 2
    snapshot_entries = 50000      # a snapshot at least every N applied entries...
    snapshot_bytes = 0            # ...or every N bytes of log, whichever comes first (0: off)
    # snapshot_log_ratio = 1.0     # ...or once the log since the last snapshot is this many
    #                              # times that snapshot's size (0 < ratio <= 100)...
    # snapshot_floor_bytes = 4194304  # ...but never below this many log bytes (0..1 GiB)
    # log_retain_entries = 1000    # log entries kept behind each snapshot, in memory and on
    #                              # disk: a follower lagging by fewer catches up from them
    # Optional: TLS with mutual authentication (all three paths, or none for plain TCP).
    # tls_ca = "certs/ca.pem"
    # tls_cert = "certs/n1.pem"    # per node: use --tls-cert/--tls-key flags to override
    # tls_key = "certs/n1.key"
    # tls_client_auth = "required" # or "optional": clients may connect without a cert
    # tls_crl = "certs/ca.crl"     # the CA's revocation list; re-read on SIGHUP
    # rate_limit_rps = 50000       # client requests per second per connection (0: off)
    # rate_limit_burst = 100000
    # connections_per_ip_max = 512
    # trust_registry = "registry.toml"  # node id -> Ed25519 key: sign, and check peers' entries
    # snapshot_bytes_max = 1073741824   # refuse an incoming snapshot stream declared larger
    # cluster_id = "<32 hex>"      # default: the cluster key's, the data dir's, or derived
    #                              # from [nodes] when founding a new cluster
    # policy = "policy.toml"       # who may do what (docs/security.md); none: nobody is admin
    # machine = "counter:make"     # the state machine to serve (docs/machines.md); none: kv
    # log_format = "json"          # one JSON object per log line (default "text")
    # HTTP (docs/http.md) is off unless a node has an `http` address (or --listen-http).

    [nodes]   # each node: where peers reach it (Raft) and where clients do
    n1 = { peer = "127.0.0.1:7101", client = "127.0.0.1:7001" }
    n2 = { peer = "127.0.0.1:7102", client = "127.0.0.1:7002" }
    n3 = { peer = "127.0.0.1:7103", client = "127.0.0.1:7003" }

Peers and clients use separate listeners (DESIGN §7), as etcd's peer and
client URLs do: a node listens for peers on its ``peer`` address
(``--listen-peer`` overrides) and for clients on its ``client`` address
(``--listen-client``). Peer links are authenticated by TLS or the cluster key;
a node whose peer address is not on loopback refuses to start with neither,
unless the operator says ``--insecure``.
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from resonetics import addresses, limits
from resonetics.errors import BadAddress, BadClusterId, ResoneticsError
from resonetics.raft.config import RaftConfig, lease_ticks_for
from resonetics.security.tls import CLIENT_AUTH_CHOICES, ClientAuth, TLSConfig
from resonetics.storage.identity import NodeIdentity, check_cluster_id, founding_cluster_id


class ConfigError(ResoneticsError):
    """The node's configuration is unusable; the message says which setting and why."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    node_id: str
    #: node id -> peer "host:port" of every initial voter (this node included, unless joining).
    peers: dict[str, str]
    data_dir: Path
    #: node id -> client "host:port" of the initial voters (NOT_LEADER hints, member list).
    clients: dict[str, str] = field(default_factory=dict)
    #: Where to listen for peers / clients (default: this node's entry in peers / clients).
    listen_peer: str = ""
    listen_client: str = ""
    #: The cluster key file (``resonetics init``): the cluster id and the peer secret.
    cluster_key: Path | None = None
    #: Run with unauthenticated peers on a non-loopback address (no TLS, no cluster key).
    insecure: bool = False
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
    #: The CA's certificate revocation list (PEM): revoked certificates are refused.
    tls_crl: Path | None = None
    tls_client_auth: ClientAuth = "required"
    #: Client requests per second per connection (0: no limit), and the burst above it.
    rate_limit_rps: float = limits.RATE_LIMIT_RPS_DEFAULT
    rate_limit_burst: int = limits.RATE_LIMIT_BURST_DEFAULT
    connections_per_ip_max: int = limits.CONNECTIONS_PER_IP_MAX
    #: The node's Ed25519 entry-signing key; None: <node_dir>/node.key, made on first start.
    signing_key: Path | None = None
    #: Sign every entry this node creates as leader with its key (``verify --keys`` checks).
    #: None: not set (on when a trust registry is given, off otherwise).
    sign_entries: bool | None = None
    #: The trust registry (``[nodes] n1 = "ed25519:..."``): with it this node signs what it
    #: creates and refuses entries and snapshots not signed by a registered node.
    trust_registry: Path | None = None
    #: An incoming snapshot stream declared larger than this is refused (bytes).
    snapshot_bytes_max: int = limits.SNAPSHOT_BYTES_MAX
    #: The cluster this node belongs to (32 hex digits); None: the cluster key's, the one
    #: in its data dir, or, for a founder of a new cluster, one derived from the peers map.
    cluster_id: str | None = None
    #: Authorization policy (security/authz.py); None: every client reads and writes
    #: every key and nobody is admin. Read at start: a change takes effect on restart.
    policy: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: The state machine to serve, ``package.module:factory`` (``serve --machine``);
    #: "" serves the key-value store. Every node of a cluster must serve the same one.
    machine: str = ""
    #: Log lines as ``text`` (one readable line each) or ``json`` (one object per line,
    #: for log shippers; ``server/logs.py``).
    log_format: str = "text"
    #: Where to serve HTTP (``/metrics``, ``/health``, ``/ready``, ``/v1/kv``; docs/http.md);
    #: "" and no entry in ``http_addresses``: no HTTP listener at all.
    listen_http: str = ""
    #: node id -> HTTP "host:port" of the nodes that serve HTTP (redirects to the leader).
    http_addresses: dict[str, str] = field(default_factory=dict)
    #: The ratio rule of the snapshot trigger (``runtime/snapshots.snapshot_due``): a
    #: snapshot once the log since the last one holds this many times its bytes...
    snapshot_log_ratio: float = limits.SNAPSHOT_LOG_RATIO_DEFAULT
    #: ...and at least this many log bytes (a tiny state is not rewritten every few writes).
    snapshot_floor_bytes: int = limits.SNAPSHOT_LOG_BYTES_FLOOR_DEFAULT
    #: Log entries kept behind each snapshot, in memory and in log.jsonl (see ``limits``).
    log_retain_entries: int = limits.SNAPSHOT_TRAILING_ENTRIES

    def tls(self) -> TLSConfig | None:
        """The node's TLS material, or None for a plain-TCP node."""
        return TLSConfig.from_paths(self.tls_ca, self.tls_cert, self.tls_key, self.tls_crl)

    @property
    def node_dir(self) -> Path:
        return self.data_dir / self.node_id

    @property
    def peer_listen(self) -> str:
        """The peer address this node listens on (and tells a joining node's leader)."""
        return self.listen_peer or self.peers.get(self.node_id, "")

    @property
    def client_listen(self) -> str:
        return self.listen_client or self.clients.get(self.node_id, "")

    @property
    def http_listen(self) -> str:
        """The HTTP address this node listens on ("" when HTTP is off)."""
        return self.listen_http or self.http_addresses.get(self.node_id, "")

    @property
    def http_listen_address(self) -> tuple[str, int] | None:
        return parse_address(self.http_listen, what="--listen-http") if self.http_listen else None

    @property
    def peer_listen_address(self) -> tuple[str, int]:
        return parse_address(self.peer_listen, what="--listen-peer")

    @property
    def client_listen_address(self) -> tuple[str, int]:
        return parse_address(self.client_listen, what="--listen-client")

    def peers_authenticated(self) -> bool:
        """Whether peer links prove who is on the other end (TLS or a cluster key)."""
        return self.cluster_key is not None or self.tls() is not None

    def identity(self) -> NodeIdentity:
        """Who this node's folder must belong to. A founder of a new cluster (not
        joining) given no cluster id founds it with the id every founder derives
        from the same peers map (``founding_cluster_id``)."""
        founding = founding_cluster_id(self.peers) if not self.join and self.peers else None
        return NodeIdentity(self.node_id, self.cluster_id, founding)

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
        if not self.peer_listen:
            raise ConfigError(
                f"--id {self.node_id}: not in the peer list ({', '.join(sorted(self.peers))}) "
                "and no --listen-peer address given"
            )
        if not self.client_listen:
            raise ConfigError(
                f"--id {self.node_id}: no client address; give --listen-client HOST:PORT, "
                f"--clients {self.node_id}=HOST:PORT,... or [nodes] {self.node_id} = "
                '{ peer = "...", client = "..." }'
            )
        for node, address in self.peers.items():
            parse_address(address, what=f"peer {node}")
        for node, address in self.clients.items():
            parse_address(address, what=f"client address of {node}")
        self._validate_addresses()
        if self.peer_listen_address == self.client_listen_address:
            raise ConfigError(
                f"--listen-peer and --listen-client are both {self.peer_listen}: peers and "
                "clients need separate ports"
            )
        if self.tick_ms < 1:
            raise ConfigError(f"tick_ms: must be >= 1, got {self.tick_ms}")
        if not 1 <= self.heartbeat_ticks < self.election_ticks:
            raise ConfigError("heartbeat_ticks must be >= 1 and below election_ticks")
        self._validate_security()
        return self

    def _validate_addresses(self) -> None:
        """--listen-peer, --listen-client and --join, checked before anything starts."""
        if self.listen_peer:
            parse_address(self.listen_peer, what="--listen-peer")
        if self.listen_client:
            parse_address(self.listen_client, what="--listen-client")
        for address in self.join:
            parse_address(address, what="--join")

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
        host = self.peer_listen_address[0]
        if not self.peers_authenticated() and not self.insecure and not is_loopback(host):
            raise ConfigError(
                f"--listen-peer {self.peer_listen}: not a loopback address, and peers would "
                "not be authenticated: give --cluster-key FILE (made by `resonetics init`) or "
                "TLS (--tls-ca/--tls-cert/--tls-key); --insecure accepts any peer on trust"
            )
        if self.trust_registry is not None and self.sign_entries is False:
            raise ConfigError(
                "--no-sign-entries: a node with a trust registry refuses unsigned entries, "
                "so it must sign its own (drop --no-sign-entries or --trust-registry)"
            )
        if self.snapshot_bytes_max < 1:
            raise ConfigError(f"snapshot_bytes_max: must be >= 1, got {self.snapshot_bytes_max}")
        self._validate_snapshot_trigger()
        self._validate_http()

    def _validate_snapshot_trigger(self) -> None:
        """The snapshot trigger's settings, each named with its flag and allowed range: a
        typo must not start a node that never snapshots or rewrites its state per write."""
        ratio_max = limits.SNAPSHOT_LOG_RATIO_MAX
        bytes_max = limits.SNAPSHOT_LOG_BYTES_SETTING_MAX
        entries_max = limits.SNAPSHOT_ENTRIES_SETTING_MAX
        if not 0 < self.snapshot_log_ratio <= ratio_max:  # also refuses NaN
            raise ConfigError(
                f"snapshot_log_ratio (--snapshot-log-ratio): must be > 0 and <= {ratio_max:g}, "
                f"got {self.snapshot_log_ratio!r}"
            )
        for key, value, limit in (
            ("snapshot_floor_bytes", self.snapshot_floor_bytes, bytes_max),
            ("snapshot_bytes", self.snapshot_bytes, bytes_max),
            ("snapshot_entries", self.snapshot_entries, entries_max),
            ("log_retain_entries", self.log_retain_entries, limits.LOG_RETAIN_ENTRIES_SETTING_MAX),
        ):
            if not 0 <= value <= limit:
                flag = "--" + key.replace("_", "-")
                raise ConfigError(f"{key} ({flag}): must be >= 0 and <= {limit}, got {value!r}")

    def _validate_http(self) -> None:
        """The HTTP port carries tokens and data: plain HTTP only on loopback, as for peers."""
        for node, address in self.http_addresses.items():
            parse_address(address, what=f"HTTP address of {node}")
        listen = self.http_listen_address
        if listen is None:
            return
        if listen in (self.peer_listen_address, self.client_listen_address):
            raise ConfigError(
                f"--listen-http {self.http_listen}: already the peer or client address; "
                "HTTP needs its own port"
            )
        if self.tls() is None and not self.insecure and not is_loopback(listen[0]):
            raise ConfigError(
                f"--listen-http {self.http_listen}: not a loopback address, and HTTP would "
                "be plain text (tokens and data readable on the network): give TLS "
                "(--tls-ca/--tls-cert/--tls-key) or listen on 127.0.0.1; --insecure "
                "serves plain HTTP anyway"
            )

    @property
    def signs_entries(self) -> bool:
        """Whether this node signs the entries and snapshots it creates."""
        return bool(self.sign_entries) or self.trust_registry is not None


def is_loopback(host: str) -> bool:
    """Whether ``host`` can only be reached from this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_address(address: str, *, what: str) -> tuple[str, int]:
    """The one address rule (``addresses.py``), refused as a ``ConfigError`` for the node."""
    try:
        return addresses.parse_address(address, what=what)
    except BadAddress as exc:
        raise ConfigError(str(exc)) from None


def parse_peers(text: str, *, flag: str = "--peers") -> dict[str, str]:
    """``n1=127.0.0.1:7001,n2=...`` -> {"n1": "127.0.0.1:7001", ...}."""
    peers: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        node, sep, address = item.partition("=")
        if not sep or not node:
            raise ConfigError(f"{flag}: {item!r} is not ID=HOST:PORT")
        parse_address(address, what=f"{flag} {node}")
        peers[node] = address
    return peers


def load_toml(path: Path, node_id: str) -> ServerConfig:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML (not UTF-8 text: {exc.reason})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    cluster = raw.get("cluster", {})
    if not isinstance(cluster, dict):
        raise ConfigError(f"{path}: [cluster] must be a table")
    peers, clients = parse_nodes_table(raw.get("nodes", {}), source=str(path))
    base = ServerConfig(
        node_id=node_id,
        peers=peers,
        clients=clients,
        data_dir=Path("data"),
        http_addresses=parse_http_addresses(raw.get("nodes", {}), source=str(path)),
    )
    config = apply_overrides(base, cluster, source=str(path))
    if config.cluster_key is not None and not config.cluster_key.is_absolute():
        # A key named in the file is found beside the file, wherever the node is started.
        config = replace(config, cluster_key=path.parent / config.cluster_key)
    return config


def parse_nodes_table(nodes: object, *, source: str) -> tuple[dict[str, str], dict[str, str]]:
    """``[nodes] n1 = { peer = "H:P", client = "H:P" }`` -> (peer map, client map)."""
    if not isinstance(nodes, dict):
        raise ConfigError(f"{source}: [nodes] must be a table")
    peers: dict[str, str] = {}
    clients: dict[str, str] = {}
    for node, entry in nodes.items():
        if (
            not isinstance(entry, dict)
            or set(entry) - {"peer", "client", "http"}
            or "peer" not in entry
        ):
            raise ConfigError(
                f"{source}: [nodes] {node} must be "
                '{ peer = "HOST:PORT", client = "HOST:PORT" } (peers and clients use '
                f"separate ports), got {entry!r}"
            )
        for role, table in (("peer", peers), ("client", clients)):
            if role in entry:
                address = entry[role]
                if not isinstance(address, str):
                    raise ConfigError(f"{source}: [nodes] {node}.{role} must be a string")
                parse_address(address, what=f"{source}: [nodes] {node}.{role}")
                table[node] = address
    return peers, clients


#: The values of ``log_format`` (``--log-format``).
LOG_FORMATS = ("text", "json")


def parse_http_addresses(nodes: object, *, source: str) -> dict[str, str]:
    """``[nodes] n1 = { ..., http = "H:P" }`` -> {"n1": "H:P"} (nodes without one: no HTTP).

    Called after ``parse_nodes_table``, which has checked the table's shape.
    """
    found: dict[str, str] = {}
    for node, entry in (nodes if isinstance(nodes, dict) else {}).items():
        address = entry.get("http") if isinstance(entry, dict) else None
        if address is None:
            continue
        if not isinstance(address, str):
            raise ConfigError(f"{source}: [nodes] {node}.http must be a string")
        parse_address(address, what=f"{source}: [nodes] {node}.http")
        found[node] = address
    return found


_INT_KEYS = (
    "tick_ms",
    "election_ticks",
    "heartbeat_ticks",
    "snapshot_entries",
    "snapshot_bytes",
    "rate_limit_burst",
    "connections_per_ip_max",
    "snapshot_bytes_max",
    "snapshot_floor_bytes",
    "log_retain_entries",
)
_PATH_KEYS = (
    "data_dir",
    "tls_ca",
    "tls_cert",
    "tls_key",
    "tls_crl",
    "signing_key",
    "cluster_key",
    "trust_registry",
    "policy",
)


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
        elif key in ("request_timeout_s", "rate_limit_rps", "snapshot_log_ratio"):
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ConfigError(f"{source}: {key} must be a number, got {value!r}")
            changes[key] = float(value)
        elif key in ("listen_peer", "listen_client", "tls_client_auth", "listen_http"):
            changes[key] = str(value)
        elif key == "machine":
            if not isinstance(value, str):
                raise ConfigError(f"{source}: machine must be a string, got {value!r}")
            changes[key] = value
        elif key == "log_format":
            if value not in LOG_FORMATS:
                raise ConfigError(f"{source}: log_format must be text or json, got {value!r}")
            changes[key] = value
        elif key == "join":
            changes[key] = tuple(value)
        elif key == "cluster_id":
            try:
                changes[key] = check_cluster_id(str(value))
            except BadClusterId as exc:
                raise ConfigError(f"{source}: {exc}") from None
        elif key in ("sign_entries", "insecure"):
            if not isinstance(value, bool):
                raise ConfigError(f"{source}: {key} must be true or false, got {value!r}")
            changes[key] = value
        else:
            raise ConfigError(f"{source}: unknown setting {key!r}")
    return replace(config, **changes)


def build_config(
    node_id: str,
    *,
    config_path: Path | None = None,
    peers: dict[str, str] | None = None,
    clients: dict[str, str] | None = None,
    settings: dict[str, Any] | None = None,
    source: str = "command line",
) -> ServerConfig:
    """The one way a node's settings are assembled (``serve`` flags and ``resonetics.Node``).

    The TOML file (if any) first, then ``peers``/``clients`` replacing its maps, then
    ``settings`` (the same keys as the file's ``[cluster]`` table, each type-checked by
    ``apply_overrides``; None values are ignored). Not validated: callers do that last.
    """
    values = settings or {}
    if config_path is not None:
        config = load_toml(config_path, node_id)
        if peers is not None:
            config = replace(config, peers=dict(peers))
    elif peers is not None:
        config = ServerConfig(node_id=node_id, peers=dict(peers), data_dir=Path("data"))
    elif values.get("join"):
        # A joining node learns the members and their addresses from the log the
        # leader replicates to it, once an operator has run ``member add``.
        config = ServerConfig(node_id=node_id, peers={}, data_dir=Path("data"))
    else:
        raise ConfigError(
            "give the cluster with --peers ID=HOST:PORT,... or --config FILE (or --join ADDR,...)"
        )
    if clients is not None:
        config = replace(config, clients=dict(clients))
    return apply_overrides(config, values, source=source)


__all__ = [
    "ConfigError",
    "ServerConfig",
    "apply_overrides",
    "build_config",
    "is_loopback",
    "parse_nodes_table",
    "load_toml",
    "parse_address",
    "parse_http_addresses",
    "parse_peers",
]
