"""etcd 3.4 (Debian's ``etcd-server``): three members on loopback, default durability.

Driven through its v3 API's HTTP/JSON gateway (``/v3/kv/put``, ``/v3/kv/range``
with base64 keys and values) over keep-alive HTTP/1.1 connections, one request
in flight per connection, so N in flight means N connections. Reads are
``range`` without ``serializable``: linearizable (a ReadIndex round on the
leader). We chose the gateway over gRPC because Debian ships no Go load tool
and the gateway needs no generated stubs; its JSON cost is on etcd's side.
"""

from __future__ import annotations

import base64
import json
import shutil
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.adapters.base import RunningSystem, SystemFailed, Target, spawn, stop_processes
from bench.adapters.http11 import HttpConnection
from resonetics.localcluster import free_ports

DURABILITY = "fsync on (etcd default: WAL fsync per batch)"
ETCD_BINARY = "etcd"
LEADER_WAIT_S = 30.0


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


def _command(name: str, data: Path, client: int, peer: int, cluster: str) -> list[str]:
    return [
        ETCD_BINARY,
        f"--name={name}",
        f"--data-dir={data}",
        f"--listen-client-urls=http://127.0.0.1:{client}",
        f"--advertise-client-urls=http://127.0.0.1:{client}",
        f"--listen-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-cluster={cluster}",
        "--initial-cluster-state=new",
        "--initial-cluster-token=resonetics-bench",
        "--logger=zap",
        "--log-level=warn",
    ]


def _status(address: str) -> dict[str, Any] | None:
    try:
        req = urllib.request.Request(f"http://{address}/v3/maintenance/status", data=b"{}")
        with urllib.request.urlopen(req, timeout=2) as resp:
            status: dict[str, Any] = json.loads(resp.read())
            return status
    except (OSError, ValueError):
        return None


def _find_leader(clients: list[str]) -> str:
    deadline = time.monotonic() + LEADER_WAIT_S
    while time.monotonic() < deadline:
        for address in clients:
            st = _status(address)
            if (
                st
                and st.get("leader")
                and st.get("leader") == st.get("header", {}).get("member_id")
            ):
                return address
        time.sleep(0.2)
    raise SystemFailed(f"etcd: no leader within {LEADER_WAIT_S}s")


def start(workdir: Path) -> RunningSystem:
    """Start three etcd members on free loopback ports and find the leader's client URL."""
    if shutil.which(ETCD_BINARY) is None:
        raise SystemFailed(
            "etcd: no `etcd` binary; run bench/setup.sh (apt-get install etcd-server)"
        )
    root = workdir / "etcd"
    root.mkdir(parents=True, exist_ok=True)
    ports = free_ports(6)
    clients, peers = ports[:3], ports[3:]
    cluster = ",".join(f"e{i}=http://127.0.0.1:{p}" for i, p in enumerate(peers))
    procs = [
        spawn(_command(f"e{i}", root / f"e{i}", clients[i], peers[i], cluster), root / f"e{i}.log")
        for i in range(3)
    ]
    addresses = [f"127.0.0.1:{p}" for p in clients]
    try:
        leader = _find_leader(addresses)
    except SystemFailed:
        stop_processes(procs)
        raise
    pid = procs[addresses.index(leader)].pid
    return RunningSystem(
        target=Target("etcd", leader, inflight_per_connection=1),
        durability=DURABILITY,
        leader_pid=pid,
        stop=lambda: stop_processes(procs),
        notes=["driven through the v3 HTTP/JSON gateway, keep-alive, 1 request per connection"],
    )


__all__ = ["DURABILITY", "EtcdAdapter", "start"]
