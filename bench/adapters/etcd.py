"""etcd 3.4 (Debian's ``etcd-server``): three members on loopback, default durability.

This module starts the cluster (plain or with mutual TLS) and holds the
**gateway** client, the separately labelled ``etcd-gateway`` system: the v3
API's HTTP/JSON gateway (``/v3/kv/put``, ``/v3/kv/range`` with base64 keys and
values) over keep-alive HTTP/1.1 connections, one request in flight per
connection. The gateway's JSON work runs inside etcd and takes CPU etcd would
otherwise serve with, so it is never the headline: the ``etcd`` system is
driven over native gRPC by the Go generator (``bench/adapters/etcd_grpc.py``).

Reads are ``range`` without ``serializable`` in both: linearizable (a ReadIndex
round on the leader).
"""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.adapters.base import RunningSystem, SystemFailed, Target, spawn, stop_processes
from bench.adapters.http11 import HttpConnection
from resonetics.localcluster import free_ports
from resonetics.security.certs import ClusterTLS

DURABILITY = "fsync on (etcd default: WAL fsync per batch)"
ETCD_BINARY = "etcd"
LEADER_WAIT_S = 30.0
MEMBERS = ("e0", "e1", "e2")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


class EtcdAdapter:
    """One keep-alive gateway connection (one request at a time)."""

    def __init__(self, conn: HttpConnection) -> None:
        self._conn = conn

    @classmethod
    async def open(cls, target: Target) -> EtcdAdapter:
        return cls(await HttpConnection.open(target.address))

    async def write(self, key: str, value: str) -> None:
        body = json.dumps({"key": b64(key), "value": b64(value)}).encode()
        await self._conn.post("/v3/kv/put", body)

    async def read(self, key: str) -> None:
        await self._conn.post("/v3/kv/range", json.dumps({"key": b64(key)}).encode())

    async def close(self) -> None:
        self._conn.close()


def member_command(
    name: str, data: Path, client: int, peer: int, cluster: str, tls: ClusterTLS | None = None
) -> list[str]:
    """The ``etcd`` command line of one member; with ``tls``, mutual TLS on both ports."""
    scheme = "https" if tls is not None else "http"
    cmd = [
        ETCD_BINARY,
        f"--name={name}",
        f"--data-dir={data}",
        f"--listen-client-urls={scheme}://127.0.0.1:{client}",
        f"--advertise-client-urls={scheme}://127.0.0.1:{client}",
        f"--listen-peer-urls={scheme}://127.0.0.1:{peer}",
        f"--initial-advertise-peer-urls={scheme}://127.0.0.1:{peer}",
        f"--initial-cluster={cluster}",
        "--initial-cluster-state=new",
        "--initial-cluster-token=resonetics-bench",
        "--logger=zap",
        "--log-level=warn",
    ]
    if tls is not None:
        cert, key = tls.nodes[name]
        cmd += [
            f"--cert-file={cert}",
            f"--key-file={key}",
            f"--trusted-ca-file={tls.ca}",
            "--client-cert-auth",
            f"--peer-cert-file={cert}",
            f"--peer-key-file={key}",
            f"--peer-trusted-ca-file={tls.ca}",
            "--peer-client-cert-auth",
        ]
    return cmd


def client_files(tls: ClusterTLS | None) -> tuple[str, str, str] | None:
    """(CA, client certificate, client key) paths for a load generator, or None."""
    if tls is None or tls.client is None:
        return None
    client = tls.client
    if client.cert is None or client.key is None:
        return None
    return (str(tls.ca), str(client.cert), str(client.key))


def _ssl_context(files: tuple[str, str, str] | None) -> ssl.SSLContext | None:
    if files is None:
        return None
    ca, cert, key = files
    ctx = ssl.create_default_context(cafile=ca)
    ctx.load_cert_chain(cert, key)
    return ctx


def _status(address: str, files: tuple[str, str, str] | None) -> dict[str, Any] | None:
    scheme = "https" if files is not None else "http"
    try:
        req = urllib.request.Request(f"{scheme}://{address}/v3/maintenance/status", data=b"{}")
        with urllib.request.urlopen(req, timeout=2, context=_ssl_context(files)) as resp:
            status: dict[str, Any] = json.loads(resp.read())
            return status
    except (OSError, ValueError):
        return None


def _find_leader(clients: list[str], files: tuple[str, str, str] | None) -> str:
    deadline = time.monotonic() + LEADER_WAIT_S
    while time.monotonic() < deadline:
        for address in clients:
            st = _status(address, files)
            if (
                st
                and st.get("leader")
                and st.get("leader") == st.get("header", {}).get("member_id")
            ):
                return address
        time.sleep(0.2)
    raise SystemFailed(f"etcd: no leader within {LEADER_WAIT_S}s")


def start(workdir: Path, *, system: str = "etcd", tls: ClusterTLS | None = None) -> RunningSystem:
    """Start three members on free loopback ports and find the leader's client address.

    ``system`` names how the load reaches it: ``etcd``/``etcd-tls`` (gRPC, the Go
    generator) or ``etcd-gateway`` (the HTTP/JSON gateway, this module's adapter).
    """
    if shutil.which(ETCD_BINARY) is None:
        raise SystemFailed(
            "etcd: no `etcd` binary; run bench/setup.sh (apt-get install etcd-server)"
        )
    gateway = system == "etcd-gateway"
    if gateway and tls is not None:
        raise SystemFailed("etcd-gateway: the gateway row runs without TLS")
    if not gateway:
        from bench.adapters.etcd_grpc import generator_binary

        generator_binary()  # fail before starting members when it was not built
    root = workdir / system
    root.mkdir(parents=True, exist_ok=True)
    ports = free_ports(6)
    clients, peers = ports[:3], ports[3:]
    scheme = "https" if tls is not None else "http"
    cluster = ",".join(f"{m}={scheme}://127.0.0.1:{p}" for m, p in zip(MEMBERS, peers, strict=True))
    procs = [
        spawn(member_command(m, root / m, clients[i], peers[i], cluster, tls), root / f"{m}.log")
        for i, m in enumerate(MEMBERS)
    ]
    addresses = [f"127.0.0.1:{p}" for p in clients]
    files = client_files(tls)
    try:
        leader = _find_leader(addresses, files)
    except SystemFailed:
        stop_processes(procs)
        raise
    pid = procs[addresses.index(leader)].pid
    others = tuple(a for a in addresses if a != leader)
    if gateway:
        target = Target(system, leader, inflight_per_connection=1, others=others)
        notes = ["driven through the v3 HTTP/JSON gateway, keep-alive, 1 request per connection"]
    else:
        target = Target(system, leader, others=others, tls_files=files, generator="etcd_load")
        notes = [
            "driven over native gRPC (etcdserverpb.KV) by bench/etcd_load (Go), "
            "requests multiplexed over min(N, 4) connections"
            + ("; mutual TLS on client and peer ports" if tls is not None else "")
        ]
    return RunningSystem(
        target=target,
        durability=DURABILITY,
        leader_pid=pid,
        stop=lambda: stop_processes(procs),
        notes=notes,
    )


__all__ = ["DURABILITY", "EtcdAdapter", "client_files", "member_command", "start"]
