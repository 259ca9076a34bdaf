"""``resonetics serve``: run one node until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import click

from resonetics.errors import ResoneticsError
from resonetics.server.config import (
    ConfigError,
    ServerConfig,
    apply_overrides,
    load_toml,
    parse_peers,
)


@click.command()
@click.option("--id", "node_id", required=True, help="This node's id, e.g. n1.")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="Cluster TOML file.")
@click.option("--peers", help="ID=HOST:PORT,... for every initial voter (this node included).")
@click.option("--listen", help="HOST:PORT to listen on (default: this node's peer address).")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Data dir (node uses DIR/ID).")
@click.option("--tick-ms", type=int, help="Milliseconds per Raft tick (default 25).")
@click.option("--election-ticks", type=int, help="Election timeout in ticks (default 12).")
@click.option("--heartbeat-ticks", type=int, help="Heartbeat interval in ticks (default 2).")
@click.option("--snapshot-entries", type=int, help="Entries between snapshots.")
@click.option("--join", help="ADDR,... of existing members to join through.")
@click.option("--log-level", default="info", show_default=True)
def serve(
    node_id: str,
    config_path: Path | None,
    peers: str | None,
    listen: str | None,
    data_dir: Path | None,
    tick_ms: int | None,
    election_ticks: int | None,
    heartbeat_ticks: int | None,
    snapshot_entries: int | None,
    join: str | None,
    log_level: str,
) -> None:
    """Run one node of a cluster (flags override the TOML file)."""
    try:
        config = _build_config(
            node_id,
            config_path,
            peers,
            {
                "listen": listen,
                "data_dir": data_dir,
                "tick_ms": tick_ms,
                "election_ticks": election_ticks,
                "heartbeat_ticks": heartbeat_ticks,
                "snapshot_entries": snapshot_entries,
                "join": tuple(join.split(",")) if join else None,
            },
        ).validate()
        _run(config, log_level)
    except ResoneticsError as exc:
        raise click.ClickException(str(exc)) from exc


def _build_config(
    node_id: str, config_path: Path | None, peers: str | None, flags: dict[str, object]
) -> ServerConfig:
    parsed = parse_peers(peers) if peers else None
    if config_path is not None:
        config = load_toml(config_path, node_id)
        if parsed is not None:
            config = replace(config, peers=parsed)
    elif parsed is not None:
        config = ServerConfig(node_id=node_id, peers=parsed, data_dir=Path("data"))
    else:
        raise ConfigError("give the cluster with --peers ID=HOST:PORT,... or --config FILE")
    return apply_overrides(config, flags, source="command line")


def _run(config: ServerConfig, log_level: str) -> None:
    from resonetics.server.logs import configure_logging
    from resonetics.server.node_server import NodeServer

    async def main() -> None:
        server = NodeServer(config)
        configure_logging(
            config.node_id,
            lambda: (server.driver.core.term, str(server.driver.core.role)),
            log_level,
        )
        await server.serve_forever()

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
