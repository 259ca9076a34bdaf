"""A cluster of real ``resonetics serve`` processes on loopback.

Used by ``resonetics cluster up``, ``resonetics demo``, the integration tests
and the fault-injection harness. Each node is an OS process running the
shipped server; the cluster object only starts, signals and watches them.

Every node gets two loopback ports: ``address`` for clients and
``peer_address`` for the other nodes. The cluster makes a cluster key
(``<data_dir>/cluster.key``, as ``resonetics init`` does) on first start and
gives it to every node, so peer links are authenticated with no set-up.
Unless told otherwise (``authorize=False``), the cluster writes an
authorization policy and an admin token into its data dir
(``policy.toml``, ``admin.token``; ``security/policy_files.py``) and starts
every node with ``--policy``: anonymous clients read, write and see status as
before, and membership and leadership changes need ``admin_token``.
"""

from __future__ import annotations

import contextlib
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from resonetics.client import Client
from resonetics.errors import ResoneticsError
from resonetics.security.certs import ClusterTLS
from resonetics.security.cluster_key import (
    load_cluster_key,
    new_cluster_key,
    write_cluster_key,
)
from resonetics.security.policy_files import local_cluster_policy
from resonetics.storage.identity import check_cluster_id, new_cluster_id

#: With a fixed ``base_port``, node i serves clients on base_port + i and peers on
#: base_port + PEER_PORT_OFFSET + i.
PEER_PORT_OFFSET = 100
#: With a fixed ``base_port`` and ``http=True``, node i serves HTTP on base_port + HTTP_PORT_OFFSET + i.
HTTP_PORT_OFFSET = 200
#: The file in a local cluster's data dir holding its cluster id (without a cluster key).
CLUSTER_ID_FILE = "CLUSTER_ID"
#: How many of each node's last log lines ``LocalCluster.describe`` quotes.
DESCRIBE_LOG_LINES = 12
#: How long ``describe`` waits for one node's status, seconds (a paused node never answers).
DESCRIBE_STATUS_TIMEOUT_S = 1.0
#: How long ``status`` waits for a running node's answer, seconds: generous, because a
#: node on a loaded 2-core machine can be descheduled for a second or more, and a
#: single status read in a test must not fail for that.
STATUS_TIMEOUT_S = 5.0
#: Pause between two looks at a condition in ``wait_until``/``holds``, seconds.
POLL_INTERVAL_S = 0.05

_T = TypeVar("_T")


class ClusterError(ResoneticsError):
    """The local cluster did not reach the state asked for in time."""


class ClusterTimeout(ClusterError):
    """A condition on the cluster did not come true before its deadline.

    The message names the condition, the last error seen while checking it, and
    what every node was doing at the deadline (``LocalCluster.describe``), so a
    failed wait says what the cluster did instead.
    """

    def __init__(self, what: str, timeout_s: float, last_error: str | None, state: str) -> None:
        self.what = what
        self.timeout_s = timeout_s
        self.last_error = last_error
        self.state = state
        detail = f" (last error: {last_error})" if last_error else ""
        super().__init__(f"timed out after {timeout_s:g}s waiting for {what}{detail}\n{state}")


class ClusterChanged(ClusterError):
    """A condition that had to hold for a while stopped holding (``LocalCluster.holds``)."""

    def __init__(self, what: str, after_s: float, state: str) -> None:
        self.what = what
        self.after_s = after_s
        self.state = state
        super().__init__(f"{what} stopped holding after {after_s:.2f}s\n{state}")


#: Ports ``free_ports`` has handed out in this process: never handed out twice, since a
#: port released by the probe stays unbound until the node it is for starts listening,
#: and a second probe in that window would get it again (two nodes, one port).
_HANDED_OUT: set[int] = set()
#: Where ports are drawn from: below Linux's default ephemeral range (32768-60999), so
#: the source port of some outgoing connection cannot take a port between the probe
#: and the node's bind.
_PORT_RANGE = (20000, 32767)
_PICKS_MAX = 10_000


def free_ports(count: int) -> list[int]:
    """Ports free on loopback right now, none handed out before by this process.

    Each is bound to check it is free and released for the node that will listen on it.
    Drawn at random from a range outside the kernel's ephemeral ports (see _PORT_RANGE),
    falling back to the kernel's choice if that range is exhausted.
    """
    picker = random.SystemRandom()
    sockets: list[socket.socket] = []
    try:
        for _ in range(_PICKS_MAX):
            if len(sockets) == count:
                break
            port = picker.randint(*_PORT_RANGE)
            if port in _HANDED_OUT:
                continue
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            _HANDED_OUT.add(port)
            sockets.append(s)
        while len(sockets) < count:  # the range is crowded: let the kernel choose
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            if s.getsockname()[1] in _HANDED_OUT:
                s.close()
                continue
            _HANDED_OUT.add(s.getsockname()[1])
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass
class LocalNode:
    node_id: str
    #: Where the node serves clients.
    address: str
    #: Where the other nodes reach it (its peer listener).
    peer_address: str
    process: subprocess.Popen[bytes] | None = None
    log_file: IO[bytes] | None = None
    #: Where the node serves HTTP (``LocalCluster(http=True)``); None: no HTTP.
    http_address: str | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class LocalCluster:
    data_dir: Path
    size: int = 3
    base_port: int | None = None
    tick_ms: int = 25
    extra_args: list[str] = field(default_factory=list)
    #: TLS files for every node and the status probe; None: plain TCP.
    tls: ClusterTLS | None = None
    log_level: str = "info"
    nodes: dict[str, LocalNode] = field(default_factory=dict)
    #: node id -> {peer id: the address that node dials to reach that peer}. Lets peer
    #: links go through a proxy (the fault-injection harness); a node or peer missing
    #: here dials the peer's own address. A node always listens on its own address.
    peer_routes: dict[str, dict[str, str]] = field(default_factory=dict)
    #: Nodes started with ``--listen-*``/``--join`` (outside the initial configuration).
    joiners: set[str] = field(default_factory=set)
    #: Give every node the cluster key (``<data_dir>/cluster.key``, made on first start).
    use_cluster_key: bool = True
    #: Every node's ``--cluster-id``; None: the cluster key's, or read from (or made into)
    #: DATA_DIR/CLUSTER_ID when the cluster runs without a key.
    cluster_id: str | None = None
    #: Write policy.toml + admin.token into data_dir and start nodes with --policy.
    authorize: bool = True
    #: Serve HTTP on every node (``--listen-http``, docs/http.md) on another loopback port.
    http: bool = False

    def __post_init__(self) -> None:
        if self.base_port:
            ports = [self.base_port + i for i in range(self.size)]
            peer_ports = [self.base_port + PEER_PORT_OFFSET + i for i in range(self.size)]
        else:
            both = free_ports(2 * self.size)
            ports, peer_ports = both[: self.size], both[self.size :]
        for i, (port, peer_port) in enumerate(zip(ports, peer_ports, strict=True), start=1):
            self.nodes[f"n{i}"] = LocalNode(f"n{i}", f"127.0.0.1:{port}", f"127.0.0.1:{peer_port}")
        if self.http:
            http_ports = (
                [self.base_port + HTTP_PORT_OFFSET + i for i in range(self.size)]
                if self.base_port
                else free_ports(self.size)
            )
            for node, http_port in zip(self.nodes.values(), http_ports, strict=True):
                node.http_address = f"127.0.0.1:{http_port}"

    @property
    def http_args(self) -> list[str]:
        """``--http-addresses`` naming every node's HTTP address (followers redirect writes)."""
        known = [f"{n.node_id}={n.http_address}" for n in self.nodes.values() if n.http_address]
        return ["--http-addresses", ",".join(known)] if known else []

    @property
    def cluster_key_path(self) -> Path:
        return self.data_dir / "cluster.key"

    @property
    def addresses(self) -> list[str]:
        return [node.address for node in self.nodes.values()]

    @property
    def peer_addresses(self) -> dict[str, str]:
        return {n.node_id: n.peer_address for n in self.nodes.values()}

    @property
    def clients_arg(self) -> str:
        return ",".join(
            f"{n.node_id}={n.address}" for n in self.nodes.values() if n.node_id not in self.joiners
        )

    def peers_arg_for(self, node_id: str) -> str:
        """The ``--peers`` value for one node: its own peer address, and its routes to the others."""
        routes = self.peer_routes.get(node_id, {})
        return ",".join(
            f"{n.node_id}="
            f"{n.peer_address if n.node_id == node_id else routes.get(n.node_id, n.peer_address)}"
            for n in self.nodes.values()
            if n.node_id not in self.joiners  # joiners are learned from the log
        )

    def _ensure_cluster_key(self) -> None:
        """Make the cluster key on first start, as ``resonetics init`` would."""
        if self.use_cluster_key and not self.cluster_key_path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            write_cluster_key(self.cluster_key_path, new_cluster_key())

    def cluster_id_arg(self) -> str:
        """The cluster's id, kept in DATA_DIR/CLUSTER_ID so a restart finds the same one
        (joiners need it too: their log must start at the cluster's GENESIS)."""
        if self.cluster_id is None and self.use_cluster_key:
            self._ensure_cluster_key()
            self.cluster_id = load_cluster_key(self.cluster_key_path).cluster_id
        if self.cluster_id is None:
            path = self.data_dir / CLUSTER_ID_FILE
            if path.exists():
                self.cluster_id = check_cluster_id(path.read_text().strip())
            else:
                self.cluster_id = new_cluster_id()
                self.data_dir.mkdir(parents=True, exist_ok=True)
                path.write_text(self.cluster_id + "\n")
        return self.cluster_id

    def command(self, node_id: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "resonetics",
            "serve",
            "--id",
            node_id,
            *self._membership_args(node_id),
            "--cluster-id",
            self.cluster_id_arg(),
            "--data-dir",
            str(self.data_dir),
            "--tick-ms",
            str(self.tick_ms),
            "--log-level",
            self.log_level,
            *(self.tls.serve_args(node_id) if self.tls is not None else []),
            *(["--cluster-key", str(self.cluster_key_path)] if self.use_cluster_key else []),
            *(["--policy", str(self.policy_path)] if self.authorize else []),
            *self._http_args_for(node_id),
            *self.extra_args,
        ]

    def _http_args_for(self, node_id: str) -> list[str]:
        address = self.nodes[node_id].http_address
        return ["--listen-http", address, *self.http_args] if address else []

    def _membership_args(self, node_id: str) -> list[str]:
        if node_id not in self.joiners:
            return ["--peers", self.peers_arg_for(node_id), "--clients", self.clients_arg]
        node = self.nodes[node_id]
        founders = [n.address for i, n in self.nodes.items() if i not in self.joiners]
        return [
            "--listen-peer",
            node.peer_address,
            "--listen-client",
            node.address,
            "--join",
            ",".join(founders),
        ]

    def add_node(self, node_id: str, *, start: bool = True) -> LocalNode:
        """A new node outside the configuration (``serve --join``), on a free port.

        It only becomes a member once someone runs ``member add`` for it; the
        founders keep their ``--peers`` (the configuration in the log wins over it).
        """
        if node_id in self.nodes:
            raise ClusterError(f"{node_id} already exists")
        port, peer_port = free_ports(2)
        node = LocalNode(node_id, f"127.0.0.1:{port}", f"127.0.0.1:{peer_port}")
        self.nodes[node_id] = node
        self.joiners.add(node_id)
        if start:
            self.start_node(node_id)
        return node

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._ensure_cluster_key()
        for node_id in self.nodes:
            self.start_node(node_id)

    @property
    def policy_path(self) -> Path:
        return self.data_dir / "policy.toml"

    @property
    def admin_token_path(self) -> Path:
        return self.data_dir / "admin.token"

    @property
    def admin_token(self) -> str | None:
        """The token of the policy's ``admin`` identity (None: not an authorizing cluster)."""
        if not self.authorize:
            return None
        self._write_policy()
        return self.admin_token_path.read_text(encoding="utf-8").strip()

    def admin_client(self, timeout: float = 10.0, **kwargs: Any) -> Client:
        """A client that acts as the cluster's admin (membership, leadership)."""
        client_tls = self.tls.client if self.tls is not None else None
        return Client(
            self.addresses, timeout=timeout, tls=client_tls, token=self.admin_token, **kwargs
        )

    def _write_policy(self) -> None:
        if self.authorize:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            local_cluster_policy(self.data_dir)

    def start_node(self, node_id: str) -> None:
        node = self.nodes[node_id]
        if node.running:
            return
        self._write_policy()
        if node.log_file is None:
            node.log_file = open(self.data_dir / f"{node_id}.log", "ab")  # noqa: SIM115
        node.process = subprocess.Popen(
            self.command(node_id),
            stdout=node.log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def signal_node(self, node_id: str, sig: signal.Signals) -> None:
        node = self.nodes[node_id]
        if node.process is not None and node.process.poll() is None:
            node.process.send_signal(sig)

    def kill_node(self, node_id: str) -> None:
        """SIGKILL: the process dies at once, mid-write if it was writing."""
        node = self.nodes[node_id]
        if node.process is not None:
            self.signal_node(node_id, signal.SIGKILL)
            node.process.wait(timeout=10)

    def stop_node(self, node_id: str, timeout_s: float = 10.0) -> int | None:
        """SIGTERM and wait: a graceful shutdown. Returns the exit code."""
        if self.nodes[node_id].process is None:
            return None
        self._terminate(node_id)
        return self._reap(node_id, timeout_s)

    def _terminate(self, node_id: str) -> None:
        """Ask a node to shut down gracefully (waking it first if it was paused)."""
        self.signal_node(node_id, signal.SIGCONT)
        self.signal_node(node_id, signal.SIGTERM)

    def _reap(self, node_id: str, timeout_s: float) -> int | None:
        """Wait for a terminated node to exit; SIGKILL it past ``timeout_s``."""
        process = self.nodes[node_id].process
        if process is None:
            return None
        try:
            return process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait(timeout=10)

    def stop(self) -> None:
        """Stop every node: all are told at once, then each is waited for. (One at a
        time, the last ones would hold elections while the first shut down: CPU a
        loaded machine does not have, and seconds per test.)"""
        for node_id in self.nodes:
            with contextlib.suppress(Exception):
                self._terminate(node_id)
        for node_id in self.nodes:
            with contextlib.suppress(Exception):
                self._reap(node_id, 10.0)
        for node in self.nodes.values():
            if node.log_file is not None:
                node.log_file.close()
                node.log_file = None

    def exit_codes(self) -> dict[str, int | None]:
        return {n.node_id: (n.process.poll() if n.process else None) for n in self.nodes.values()}

    def status(self, node_id: str, timeout_s: float = STATUS_TIMEOUT_S) -> dict[str, Any] | None:
        node = self.nodes[node_id]
        if not node.running:
            return None
        try:
            client_tls = self.tls.client if self.tls is not None else None
            with Client([node.address], timeout=timeout_s, tls=client_tls) as client:
                return client.status(node.address)
        except (ResoneticsError, OSError, TimeoutError):
            return None

    def log_tail(self, node_id: str, lines: int = DESCRIBE_LOG_LINES) -> list[str]:
        """The last ``lines`` lines of a node's log file (none if it never started)."""
        path = self.data_dir / f"{node_id}.log"
        if not path.exists():
            return []
        return path.read_text(errors="replace").splitlines()[-lines:]

    def describe(self, log_lines: int = DESCRIBE_LOG_LINES) -> str:
        """What every node is doing now: process state, status summary, last log lines.

        Quoted by every failed wait (``ClusterTimeout``) and attached to failed
        integration tests, so a failure names what the cluster did.
        """
        out: list[str] = []
        for node_id, node in self.nodes.items():
            if node.process is None:
                state = "not started"
            elif (code := node.process.poll()) is not None:
                state = f"exited with code {code}"
            else:
                st = self.status(node_id, timeout_s=DESCRIBE_STATUS_TIMEOUT_S)
                state = "running, status unanswered" if st is None else _summary(st)
            out.append(f"--- {node_id}: {state}")
            out.extend(f"    | {line}" for line in self.log_tail(node_id, log_lines))
        return "\n".join(out)

    def wait_until(
        self,
        what: str,
        check: Callable[[], _T | None],
        timeout_s: float = 30.0,
        interval_s: float = POLL_INTERVAL_S,
    ) -> _T:
        """Call ``check`` until it returns something truthy, and return that.

        A ``ResoneticsError`` or ``OSError`` raised by ``check`` (a node briefly
        unreachable, an election in progress) counts as "not yet". At the
        deadline, raises ``ClusterTimeout`` naming ``what``, the last error and
        what every node was doing. Tests wait with this, never with a sleep.
        """
        deadline = time.monotonic() + timeout_s
        last_error: str | None = None
        while True:
            try:
                result = check()
                if result:
                    return result
            except (ResoneticsError, OSError) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            if time.monotonic() >= deadline:
                raise ClusterTimeout(what, timeout_s, last_error, self.describe())
            time.sleep(interval_s)

    def holds(
        self, what: str, check: Callable[[], bool], for_s: float, interval_s: float = 0.1
    ) -> None:
        """Check that ``check`` stays true for ``for_s`` seconds (a negative claim:
        "nothing moved"), looking every ``interval_s``; raises ``ClusterChanged`` the
        first time it is false, with what every node was doing."""
        started = time.monotonic()
        while True:
            if not check():
                raise ClusterChanged(what, time.monotonic() - started, self.describe())
            if time.monotonic() - started >= for_s:
                return
            time.sleep(interval_s)

    def leader_now(self, exclude: set[str] | None = None) -> tuple[str, dict[str, Any]] | None:
        """A running node (not in ``exclude``) that reports itself leader now, or None."""
        for node_id, node in self.nodes.items():
            if (exclude and node_id in exclude) or not node.running:
                continue
            st = self.status(node_id)
            if st is not None and st.get("role") == "leader":
                return node_id, st
        return None

    def wait_for_leader(
        self, timeout_s: float = 30.0, exclude: set[str] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Wait until a running node (not in ``exclude``) reports itself leader."""
        what = "a leader" + (f" other than {sorted(exclude)}" if exclude else "")
        return self.wait_until(what, lambda: self.leader_now(exclude), timeout_s)

    def settled(self) -> tuple[str, dict[str, Any]] | None:
        """The leader and its status if every running node names it in its term now."""
        found = self.leader_now()
        if found is None:
            return None
        leader, status = found
        for node_id, node in self.nodes.items():
            if not node.running:
                continue
            view = status if node_id == leader else self.status(node_id)
            if view is None or (view["leader"], view["term"]) != (leader, status["term"]):
                return None
        return found

    def wait_until_settled(self, timeout_s: float = 30.0) -> tuple[str, dict[str, Any]]:
        """Wait until every running node names the same leader in the same term.

        A node that has not yet heard the new leader still reports the old term;
        a test that reads one node's status right after ``wait_for_leader`` can
        see that. Returns the leader and the leader's status.
        """
        return self.wait_until(
            "every running node to name one leader in one term", self.settled, timeout_s
        )

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _summary(st: dict[str, Any]) -> str:
    """One line of a node's status: who it thinks leads, and how far its log got."""
    keys = ("role", "term", "leader", "last_index", "commit_index", "applied_index")
    return " ".join(f"{k}={st.get(k)}" for k in keys)


__all__ = [
    "PEER_PORT_OFFSET",
    "ClusterChanged",
    "ClusterError",
    "ClusterTimeout",
    "LocalCluster",
    "LocalNode",
    "free_ports",
]
