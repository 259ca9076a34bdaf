"""``resonetics.Node``: three members in one process (asyncio mode), thread mode, errors."""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from resonetics import Node, errors
from resonetics.localcluster import free_ports
from resonetics.server.config import ConfigError, ServerConfig

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
sys.path.insert(0, str(EXAMPLES))

from counter import Counter, OtherCounter  # noqa: E402

DEADLINE_S = 60.0


def _addresses(size: int) -> tuple[dict[str, str], dict[str, str]]:
    ports = free_ports(2 * size)
    peers = {f"n{i + 1}": f"127.0.0.1:{ports[i]}" for i in range(size)}
    clients = {f"n{i + 1}": f"127.0.0.1:{ports[size + i]}" for i in range(size)}
    return peers, clients


def _nodes(tmp_path: Path, size: int = 3, machine: Callable[[], Any] = Counter) -> list[Node]:
    peers, clients = _addresses(size)
    return [
        Node(
            node_id=node_id,
            machine=machine(),
            peers=peers,
            clients=clients,
            data_dir=tmp_path / "data",
            tick_ms=20,
        )
        for node_id in peers
    ]


async def _until(what: str, check: Callable[[], bool], timeout_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s}s: {what}")
        await asyncio.sleep(0.02)


def test_three_nodes_in_one_process_replicate_the_counter_and_survive_the_leader_stopping(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        nodes = _nodes(tmp_path)
        for node in nodes:
            await node.__aenter__()
        try:
            for node in nodes:
                await node.wait_ready(DEADLINE_S)
            leaders = {node.leader for node in nodes}
            assert len(leaders) == 1 and None not in leaders
            assert sum(node.is_leader for node in nodes) == 1
            # Commands from every member, whoever leads: each applied once.
            results = await asyncio.gather(
                *(node.acall("incr", by=i + 1) for i, node in enumerate(nodes) for _ in range(5))
            )
            assert all("receipt" in r for r in results)
            assert (await nodes[0].acall("value"))["value"] == 5 * (1 + 2 + 3)
            await _until(
                "every replica applied 30",
                lambda: all(n.read_local("value").value == 30 for n in nodes),
            )
            local = nodes[1].read_local("value")
            assert local.applied_index >= 1 and local.commit_index >= local.applied_index
            assert nodes[2].local.value == 30  # type: ignore[attr-defined]
            status = nodes[0].status()
            assert status["node"] == "n1" and status["applied_index"] >= local.applied_index

            leader = next(n for n in nodes if n.is_leader)
            await leader.aclose()
            await leader.aclose()  # idempotent
            survivors = [n for n in nodes if n is not leader]
            await _until(
                "a new leader",
                lambda: (
                    any(n.is_leader for n in survivors)
                    and all(n.leader not in (None, leader.node_id) for n in survivors)
                ),
            )
            for node in survivors:
                await node.acall("incr", by=10)
            assert (await survivors[0].acall("value"))["value"] == 50
            await _until(
                "survivors applied 50",
                lambda: all(n.read_local("value").value == 50 for n in survivors),
            )
        finally:
            for node in nodes:
                await node.aclose()

    asyncio.run(scenario())


def test_thread_mode_node_serves_a_blocking_program_and_stops_cleanly(tmp_path: Path) -> None:
    (node,) = _nodes(tmp_path, size=1)
    with node:
        node.wait_ready_blocking(DEADLINE_S)
        assert node.is_leader and node.leader == "n1"
        assert node.call("incr", by=4)["value"] == 4
        assert node.call("value")["value"] == 4
        assert node.read_local("value").value == 4
        status = node.status()
        assert status["role"] == "leader"
        assert status["machine"] == "counter"  # status names the machine the node serves
    assert not node.running
    node.stop()  # idempotent
    with pytest.raises(errors.NodeStateError, match="not running"):
        node.call("value")
    with pytest.raises(errors.NodeStateError, match="not running"):
        node.read_local("value")


def test_node_started_twice_is_refused(tmp_path: Path) -> None:
    (node,) = _nodes(tmp_path, size=1)
    with node, pytest.raises(errors.NodeStateError, match="already started"):
        node.start()


def test_stopping_a_node_never_started_is_refused(tmp_path: Path) -> None:
    (node,) = _nodes(tmp_path, size=1)
    with pytest.raises(errors.NodeStateError, match="before it was started"):
        node.stop()
    with pytest.raises(errors.NodeStateError, match="before it was started"):
        asyncio.run(node.aclose())


def test_port_in_use_is_a_clear_error_and_the_data_dir_is_released(tmp_path: Path) -> None:
    (node,) = _nodes(tmp_path, size=1)
    host, port = node.config.client_listen_address
    with socket.socket() as taken:
        taken.bind((host, port))
        taken.listen()
        with pytest.raises(errors.NodeStartFailed, match="already in use") as caught:
            node.start()
        assert str(port) in str(caught.value)
    assert not node.running
    # The data dir is free again: a new Node on it starts.
    again = Node(node.config, machine=Counter())
    with again:
        again.wait_ready_blocking(DEADLINE_S)


def test_blocking_call_in_asyncio_mode_is_refused_not_deadlocked(tmp_path: Path) -> None:
    async def scenario() -> None:
        (node,) = _nodes(tmp_path, size=1)
        async with node:
            await node.wait_ready(DEADLINE_S)
            with pytest.raises(errors.NodeStateError, match="acall"):
                node.call("value")
            assert (await node.acall("value"))["value"] == 0

    asyncio.run(scenario())


def test_read_local_of_a_command_or_unknown_op_is_refused(tmp_path: Path) -> None:
    (node,) = _nodes(tmp_path, size=1)
    with node:
        with pytest.raises(errors.BadRequest, match="not a query"):
            node.read_local("incr", by=1)
        with pytest.raises(errors.BadRequest, match="not a query"):
            node.read_local("nope")


def test_bad_settings_are_refused_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="tick_ms"):
        Node(node_id="n1", peers={"n1": "127.0.0.1:1"}, clients={"n1": "127.0.0.1:2"},
             data_dir=tmp_path, tick_ms="fast")  # fmt: skip
    with pytest.raises(ConfigError, match="unknown setting"):
        Node(node_id="n1", peers={"n1": "127.0.0.1:1"}, clients={"n1": "127.0.0.1:2"},
             data_dir=tmp_path, tick_msec=5)  # fmt: skip
    with pytest.raises(ConfigError, match="node_id"):
        Node()


def test_node_takes_a_server_config_or_a_toml_file(tmp_path: Path) -> None:
    peers, clients = _addresses(1)
    toml = tmp_path / "cluster.toml"
    toml.write_text(
        f'[cluster]\ndata_dir = "{tmp_path / "data"}"\ntick_ms = 20\n'
        f'[nodes]\nn1 = {{ peer = "{peers["n1"]}", client = "{clients["n1"]}" }}\n'
    )
    from_file = Node(toml, node_id="n1", machine=Counter())
    assert from_file.config.tick_ms == 20 and from_file.config.client_listen == clients["n1"]
    config = ServerConfig(node_id="n1", peers=peers, clients=clients, data_dir=tmp_path / "d")
    from_config = Node(config, machine=Counter(), snapshot_entries=50)
    assert from_config.config.snapshot_entries == 50


def test_a_data_dir_of_another_machine_is_refused_at_start(tmp_path: Path) -> None:
    (node,) = _nodes(tmp_path, size=1)
    with node:
        node.wait_ready_blocking(DEADLINE_S)
    other = Node(node.config, machine=OtherCounter())
    with pytest.raises(errors.MachineMismatch):
        other.start()
    assert not other.running


def test_node_runs_with_the_same_tls_and_cluster_key_options_as_serve(tmp_path: Path) -> None:
    from resonetics.security.certs import write_cluster_certs
    from resonetics.security.cluster_key import new_cluster_key, write_cluster_key

    peers, clients = _addresses(3)
    certs = write_cluster_certs(tmp_path / "certs", list(peers))
    key_path = tmp_path / "cluster.key"
    write_cluster_key(key_path, new_cluster_key())

    async def scenario() -> None:
        nodes = [
            Node(
                node_id=node_id,
                machine=Counter(),
                peers=peers,
                clients=clients,
                data_dir=tmp_path / "data",
                tick_ms=20,
                cluster_key=key_path,
                tls_ca=certs.ca,
                tls_cert=certs.nodes[node_id][0],
                tls_key=certs.nodes[node_id][1],
                tls_client_auth="required",
                client_tls=certs.client,
            )
            for node_id in peers
        ]
        for node in nodes:
            await node.__aenter__()
        try:
            for node in nodes:
                await node.wait_ready(DEADLINE_S)
            for node in nodes:
                await node.acall("incr", by=1)
            assert (await nodes[0].acall("value"))["value"] == 3
            status = nodes[0].status()
            assert status["peer_auth"]["refused_links"] == {}
            assert status["peer_auth"]["link_problems"] == {}
        finally:
            for node in nodes:
                await node.aclose()

    asyncio.run(scenario())


class _CallsFromApply(Counter):
    """A machine whose read calls back into its own node (the mistake the guard stops)."""

    node: Node | None = None

    def read(self, op: str, args: Any) -> Any:
        assert self.node is not None
        return self.node.call("value")


def test_call_from_the_node_own_loop_is_refused_not_deadlocked(tmp_path: Path) -> None:
    (node,) = _nodes(tmp_path, size=1, machine=_CallsFromApply)
    node.local.node = node  # type: ignore[attr-defined]
    with node:
        node.wait_ready_blocking(DEADLINE_S)
        # read_local runs the machine's read on the node's loop: its node.call is refused,
        # and the machine's exception becomes an error result, not a hung node.
        with pytest.raises(errors.BadRequest, match=r"NodeStateError.*own event loop"):
            node.read_local("value")
        assert node.call("incr", by=1)["value"] == 1  # still serving
