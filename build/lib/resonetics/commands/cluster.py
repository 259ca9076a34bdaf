"""``resonetics cluster up`` and ``resonetics demo``: a local cluster of real processes."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import click
from rich.console import Console

from resonetics.commands.preflight import check_can_listen, check_data_dir
from resonetics.commands.status import fetch_status, status_table
from resonetics.errors import ResoneticsError
from resonetics.localcluster import PEER_PORT_OFFSET, LocalCluster

#: ``--base-port``: room for nine nodes' client ports and their peer ports (+100).
BASE_PORT = click.IntRange(1, 65535 - PEER_PORT_OFFSET - 9)


def check_local_ports(local: LocalCluster, base_port: int | None) -> None:
    """Refuse, naming the node and port, if any port of the local cluster is taken.

    Without it a busy port shows up as a node that exits at once and a wait for a
    leader that never comes. (Free ports picked by the OS need no check.)
    """
    if base_port is None:
        return
    for node in local.nodes.values():
        for role, address in (("clients", node.address), ("peers", node.peer_address)):
            check_can_listen(address, what=f"{node.node_id} {role} (--base-port {base_port})")


@click.group()
def cluster() -> None:
    """Run a local cluster on loopback."""


@cluster.command()
@click.option("--nodes", type=click.IntRange(1, 9), default=3, show_default=True)
@click.option(
    "--base-port",
    type=BASE_PORT,
    default=7001,
    show_default=True,
    help="Clients on BASE..BASE+N-1, peers on BASE+100..BASE+100+N-1.",
)
@click.option(
    "--data-dir", type=click.Path(path_type=Path), default=Path("data"), show_default=True
)
@click.option("--tick-ms", type=click.IntRange(min=1), default=25, show_default=True)
@click.option(
    "--tls",
    "tls_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Generate a throwaway CA and certificates into DIR and run the cluster over mTLS.",
)
@click.option(
    "--http/--no-http",
    default=False,
    show_default=True,
    help="Serve HTTP (/metrics, /health, /ready, /v1/kv) on BASE_PORT+200+i (docs/http.md).",
)
def up(
    nodes: int, base_port: int, data_dir: Path, tick_ms: int, tls_dir: Path | None, http: bool
) -> None:
    """Start NODES `resonetics serve` processes in the foreground; Ctrl-C stops them all."""
    console = Console()
    check_data_dir(data_dir)
    local = LocalCluster(data_dir, size=nodes, base_port=base_port, tick_ms=tick_ms, http=http)
    check_local_ports(local, base_port)
    for node in local.nodes.values():
        if node.http_address:
            check_can_listen(node.http_address, what=f"{node.node_id} HTTP (--http)")
    tls_flags = ""
    if tls_dir is not None:
        from resonetics.security.certs import write_cluster_certs

        local.tls = write_cluster_certs(tls_dir, list(local.nodes))
        tls_flags = f" --tls-ca {tls_dir}/ca.pem --tls-cert {tls_dir}/client.pem --tls-key {tls_dir}/client.key"
        console.print(f"TLS: CA and certificates written to {tls_dir}")
    local.start()
    try:
        for node in local.nodes.values():
            console.print(
                f"{node.node_id}: clients on {node.address}, peers on {node.peer_address}"
                + (f", HTTP on {node.http_address}" if node.http_address else "")
                + f" (log: {data_dir}/{node.node_id}.log)"
            )
        console.print(f"peer links authenticated with the cluster key {local.cluster_key_path}")
        leader, _ = local.wait_for_leader()
        console.print(
            f"leader: {leader}; try: resonetics kv put hello world --cluster {','.join(local.addresses)}{tls_flags}"
        )
        console.print(
            f"admin ops (member, leader) need the admin token: add --token-file "
            f"{local.admin_token_path}  (policy: {local.policy_path})"
        )
        while any(n.running for n in local.nodes.values()):
            time.sleep(0.5)
        console.print("[red]every node has exited[/red]; see the node logs")
    except KeyboardInterrupt:
        console.print("stopping...")
    except ResoneticsError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        local.stop()


@click.command()
@click.option(
    "--data-dir", type=click.Path(path_type=Path), help="Keep data here (default: a temp dir)."
)
@click.option("--writes", type=int, default=300, show_default=True)
@click.option(
    "--base-port",
    type=BASE_PORT,
    default=None,
    help="Clients on BASE..BASE+2, peers on BASE+100..BASE+102 (default: free ports).",
)
def demo(data_dir: Path | None, writes: int, base_port: int | None) -> None:
    """Start a local 3-node cluster, write, kill the leader, and show nothing acknowledged is lost."""
    from resonetics.commands.demo_script import run_demo

    console = Console()
    try:
        check_local_ports(LocalCluster(Path("unused"), size=3, base_port=base_port), base_port)
    except ResoneticsError as exc:
        raise click.ClickException(str(exc)) from exc
    if data_dir is not None:
        check_data_dir(data_dir)
        ok = run_demo(console, data_dir, writes, base_port=base_port)
    else:
        with tempfile.TemporaryDirectory(prefix="resonetics-demo-") as tmp:
            ok = run_demo(console, Path(tmp), writes, base_port=base_port)
    if not ok:
        raise SystemExit(1)


__all__ = ["BASE_PORT", "check_local_ports", "cluster", "demo", "fetch_status", "status_table"]
