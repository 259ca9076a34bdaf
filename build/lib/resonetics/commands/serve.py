"""``resonetics serve``: run one node until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import click

from resonetics.errors import NodeFailed, ResoneticsError, StorageError
from resonetics.security.ratelimit import parse_rate
from resonetics.security.tls import CLIENT_AUTH_CHOICES
from resonetics.server.config import ServerConfig, build_config, parse_peers


@click.command()
@click.option("--id", "node_id", required=True, help="This node's id, e.g. n1.")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="Cluster TOML file.")
@click.option(
    "--peers", help="ID=HOST:PORT,...: the PEER address of every initial voter (this one too)."
)
@click.option(
    "--clients", help="ID=HOST:PORT,...: where each initial voter serves clients (hints)."
)
@click.option("--listen-peer", help="HOST:PORT for peers (default: this node's --peers entry).")
@click.option(
    "--listen-client", help="HOST:PORT for clients (default: this node's --clients entry)."
)
@click.option(
    "--cluster-key",
    type=click.Path(path_type=Path),
    help="Cluster key file (resonetics init): the cluster id and the secret peers prove.",
)
@click.option(
    "--insecure",
    is_flag=True,
    default=None,
    help="Accept unauthenticated peers on a non-loopback address (no TLS, no cluster key).",
)
@click.option("--data-dir", type=click.Path(path_type=Path), help="Data dir (node uses DIR/ID).")
@click.option("--tick-ms", type=int, help="Milliseconds per Raft tick (default 25).")
@click.option("--election-ticks", type=int, help="Election timeout in ticks (default 12).")
@click.option("--heartbeat-ticks", type=int, help="Heartbeat interval in ticks (default 2).")
@click.option("--snapshot-entries", type=int, help="Max entries between snapshots (default 50000).")
@click.option("--snapshot-bytes", type=int, help="Log bytes between snapshots (default 0: off).")
@click.option(
    "--snapshot-log-ratio",
    type=float,
    help="Snapshot once the log since the last one is this many times its size "
    "(default 1.0; > 0, <= 100).",
)
@click.option(
    "--snapshot-floor-bytes",
    type=int,
    help="Log bytes below which the ratio rule never snapshots (default 4 MiB; 0..1 GiB).",
)
@click.option(
    "--log-retain-entries",
    type=int,
    help="Log entries kept behind each snapshot, in memory and on disk: a follower lagging "
    "by fewer catches up from them (default 1000; 0..10,000,000).",
)
@click.option(
    "--join",
    help="ADDR,... of existing members: start with no voters and wait to be added "
    "(resonetics member add ID HOST:PORT --cluster ADDR).",
)
@click.option("--tls-cert", type=click.Path(path_type=Path), help="This node's certificate (PEM).")
@click.option("--tls-key", type=click.Path(path_type=Path), help="This node's private key (PEM).")
@click.option("--tls-ca", type=click.Path(path_type=Path), help="The cluster CA certificate (PEM).")
@click.option(
    "--tls-crl",
    type=click.Path(path_type=Path),
    help="The CA's certificate revocation list (PEM): revoked node and client certificates "
    "are refused; re-read with the certificates on SIGHUP.",
)
@click.option(
    "--tls-client-auth",
    type=click.Choice(CLIENT_AUTH_CHOICES),
    help="Client certificates on a TLS node: required (default) or optional.",
)
@click.option("--rate-limit", help="Client requests per connection, N/s (default 50000/s; 0: off).")
@click.option("--rate-limit-burst", type=int, help="Requests allowed in a burst (default 100000).")
@click.option(
    "--connections-per-ip", type=int, help="Open connections per source IP (default 512)."
)
@click.option(
    "--signing-key",
    type=click.Path(path_type=Path),
    help="Ed25519 entry-signing key (default: DATA_DIR/ID/node.key, made on first start).",
)
@click.option(
    "--sign-entries/--no-sign-entries",
    default=None,
    help="Sign each entry this node creates as leader with its key (default: off).",
)
@click.option(
    "--trust-registry",
    type=click.Path(path_type=Path),
    help="Trust registry (TOML, [nodes] ID = 'ed25519:...'): sign entries and snapshots, "
    "and refuse entries and snapshots from peers not signed by a registered node.",
)
@click.option(
    "--snapshot-bytes-max",
    type=int,
    default=None,
    help="Refuse an incoming snapshot stream declared larger than this (bytes; default 1 GiB).",
)
@click.option(
    "--cluster-id",
    help="The cluster's id (32 hex digits; default: the data dir's, or derived from the peers "
    "when founding a new cluster).",
)
@click.option(
    "--policy",
    type=click.Path(path_type=Path),
    help="Authorization policy TOML (resonetics auth init); default: no admin at all.",
)
@click.option(
    "--machine",
    help="The state machine to serve, package.module:factory (default: the key-value store); "
    "every node of the cluster must serve the same one.",
)
@click.option(
    "--listen-http",
    help="HOST:PORT to serve HTTP on: /metrics, /health, /ready, /v1/kv (docs/http.md); "
    "default: off. Not on loopback: needs TLS or --insecure.",
)
@click.option(
    "--http-addresses",
    help="ID=HOST:PORT,... every node's HTTP address (followers redirect writes to the leader's).",
)
@click.option("--log-level", default="info", show_default=True)
@click.option(
    "--log-format",
    type=click.Choice(("text", "json")),
    help="Log lines as text (default) or one JSON object per line, for log shippers.",
)
def serve(
    node_id: str,
    config_path: Path | None,
    peers: str | None,
    clients: str | None,
    listen_peer: str | None,
    listen_client: str | None,
    cluster_key: Path | None,
    insecure: bool | None,
    data_dir: Path | None,
    tick_ms: int | None,
    election_ticks: int | None,
    heartbeat_ticks: int | None,
    snapshot_entries: int | None,
    snapshot_bytes: int | None,
    snapshot_log_ratio: float | None,
    snapshot_floor_bytes: int | None,
    log_retain_entries: int | None,
    join: str | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_ca: Path | None,
    tls_crl: Path | None,
    tls_client_auth: str | None,
    rate_limit: str | None,
    rate_limit_burst: int | None,
    connections_per_ip: int | None,
    signing_key: Path | None,
    sign_entries: bool | None,
    trust_registry: Path | None,
    snapshot_bytes_max: int | None,
    cluster_id: str | None,
    policy: Path | None,
    machine: str | None,
    listen_http: str | None,
    http_addresses: str | None,
    log_level: str,
    log_format: str | None,
) -> None:
    """Run one node of a cluster (flags override the TOML file)."""
    try:
        config = _build_config(
            node_id,
            config_path,
            peers,
            clients,
            {
                "listen_peer": listen_peer,
                "listen_client": listen_client,
                "cluster_key": cluster_key,
                "insecure": insecure,
                "data_dir": data_dir,
                "tick_ms": tick_ms,
                "election_ticks": election_ticks,
                "heartbeat_ticks": heartbeat_ticks,
                "snapshot_entries": snapshot_entries,
                "snapshot_bytes": snapshot_bytes,
                "snapshot_log_ratio": snapshot_log_ratio,
                "snapshot_floor_bytes": snapshot_floor_bytes,
                "log_retain_entries": log_retain_entries,
                "join": tuple(join.split(",")) if join else None,
                "tls_cert": tls_cert,
                "tls_key": tls_key,
                "tls_ca": tls_ca,
                "tls_crl": tls_crl,
                "tls_client_auth": tls_client_auth,
                "rate_limit_rps": parse_rate(rate_limit) if rate_limit is not None else None,
                "rate_limit_burst": rate_limit_burst,
                "connections_per_ip_max": connections_per_ip,
                "signing_key": signing_key,
                "sign_entries": sign_entries,
                "trust_registry": trust_registry,
                "snapshot_bytes_max": snapshot_bytes_max,
                "cluster_id": cluster_id,
                "policy": policy,
                "machine": machine,
                "log_format": log_format,
                "listen_http": listen_http,
            },
            http_addresses,
        ).validate()
        _run(config, log_level)
    except NodeFailed:
        raise  # stopped while serving: exit 70, one line (commands/failures.py)
    except StorageError as exc:
        # Another node's or cluster's folder, a locked or corrupt one: refused, one line.
        raise StartRefused(str(exc)) from exc
    except ResoneticsError as exc:
        raise click.ClickException(str(exc)) from exc


class StartRefused(click.ClickException):
    """The node's data dir cannot be used: exit status 2, the reason on one line."""

    exit_code = 2


def _build_config(
    node_id: str,
    config_path: Path | None,
    peers: str | None,
    clients: str | None,
    flags: dict[str, object],
    http_addresses: str | None = None,
) -> ServerConfig:
    config = build_config(
        node_id,
        config_path=config_path,
        peers=parse_peers(peers) if peers else None,
        clients=parse_peers(clients, flag="--clients") if clients else None,
        settings=flags,
    )
    if http_addresses:
        config = replace(
            config, http_addresses=parse_peers(http_addresses, flag="--http-addresses")
        )
    return config


def _run(config: ServerConfig, log_level: str) -> None:
    from resonetics.commands.preflight import check_data_dir
    from resonetics.server.logs import configure_logging
    from resonetics.server.node_server import NodeServer

    async def main() -> None:
        server = NodeServer(config)
        configure_logging(
            config.node_id,
            lambda: (server.driver.core.term, str(server.driver.core.role)),
            log_level,
            config.log_format,
        )
        await server.serve_forever()

    check_data_dir(config.node_dir)  # a file or unwritable dir: one line, not a traceback
    if config.http_listen:
        from resonetics.commands.preflight import check_can_listen

        check_can_listen(config.http_listen, what="--listen-http")
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(main())


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop where it is installed (about twice as fast on loopback), else asyncio's."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is optional on some platforms
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory
