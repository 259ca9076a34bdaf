"""One TaskGroup owns a node's tasks; one shutdown path; no task outlives the node.

Every way a node stops (``stop()``, SIGTERM, a failing ticker, link or driver
loop) goes through ``NodeServer._close`` and ends with no task of the node left
running, within a bound, and a failure ends with ``NodeFailed`` naming what failed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from resonetics.errors import InvariantViolation, NodeFailed
from resonetics.localcluster import free_ports
from resonetics.server import peers
from resonetics.server.config import ServerConfig
from resonetics.server.node_server import NodeServer

#: How long any shutdown below may take, seconds (the grace periods are 0.5 s each).
SHUTDOWN_BOUND_S = 5.0


def _request(op: str, req: str, args: dict[str, Any] | None = None) -> bytes:
    payload = {"client_id": "c", "request_id": req, "op": op, "args": args or {}}
    line = {"kind": "ClientRequest", "payload": payload, "t": 0, "v": 1, "id": req}
    return json.dumps(line).encode() + b"\n"


async def _ask(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, line: bytes) -> Any:
    writer.write(line)
    await writer.drain()
    return json.loads(await asyncio.wait_for(reader.readline(), timeout=10))["payload"]


def _cluster(tmp_path: Path, ids: tuple[str, ...], **extra: Any) -> list[ServerConfig]:
    ports = free_ports(2 * len(ids))  # distinct: two kernel picks can repeat a port
    peer_ports = dict(zip(ids, ports[: len(ids)], strict=True))
    client_ports = dict(zip(ids, ports[len(ids) :], strict=True))
    return [
        ServerConfig(
            node_id=i,
            peers={j: f"127.0.0.1:{peer_ports[j]}" for j in ids},
            clients={j: f"127.0.0.1:{client_ports[j]}" for j in ids},
            data_dir=tmp_path,
            **extra,
        )
        for i in ids
    ]


def _others(mine: set[asyncio.Task[Any]]) -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if t not in mine and not t.done()}


async def _wait_for(condition: Any, what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def test_shutdown_leaves_no_task_running_and_ends_within_a_bound(tmp_path: Path) -> None:
    """Two in-process nodes with peer links both ways, client connections, an
    unauthenticated peer connection and snapshots: after shutdown only the test's
    own task is left, and each shutdown took less than the bound."""

    async def scenario() -> None:
        mine = {t for t in asyncio.all_tasks()}
        a_cfg, b_cfg = _cluster(tmp_path, ("a", "b"), snapshot_entries=2)
        a, b = NodeServer(a_cfg), NodeServer(b_cfg)
        await a.start()
        await b.start()
        await _wait_for(
            lambda: a.links["b"].connected and b.links["a"].connected, "links both ways"
        )
        await _wait_for(lambda: a.driver.core.leader_id is not None, "a leader")
        leader = a if a.driver.core.is_leader else b
        host, port = leader.config.client_listen_address
        reader, writer = await asyncio.open_connection(host, port)
        for i in range(6):  # past snapshot_entries: the snapshot task runs too
            answer = await _ask(reader, writer, _request("kv_set", f"w{i}", {"k": "k", "v": i}))
            assert answer["ok"] is True, answer
        idle_reader, idle_writer = await asyncio.open_connection(host, port)
        p_host, p_port = leader.config.peer_listen_address
        stranger_r, stranger_w = await asyncio.open_connection(p_host, p_port)
        assert _others(mine), "the nodes run tasks of their own"
        for node in (a, b):
            started = time.monotonic()
            await node.shutdown()
            took = time.monotonic() - started
            assert took < SHUTDOWN_BOUND_S, f"{node.config.node_id} took {took:.2f}s to stop"
        left = _others(mine)
        assert not left, f"tasks outlived the nodes: {sorted(t.get_name() for t in left)}"
        assert await asyncio.wait_for(reader.read(), timeout=5) == b""  # closed by the node
        assert await asyncio.wait_for(idle_reader.read(), timeout=5) == b""
        for w in (writer, idle_writer, stranger_w):
            w.close()
        del stranger_r

    asyncio.run(scenario())


async def _serve_until_failure(server: NodeServer) -> tuple[NodeFailed, float]:
    started = time.monotonic()
    with pytest.raises(NodeFailed) as failed:
        await asyncio.wait_for(server.serve_forever(install_signals=False), SHUTDOWN_BOUND_S * 3)
    return failed.value, time.monotonic() - started


def _assert_stopped_cleanly(config: ServerConfig) -> None:
    """The data dir was released: another node object can take it at once."""
    again = NodeServer(config)
    again.driver.close()
    again.data_dir_lock.release()


def test_ticker_exception_stops_the_node_with_a_clear_log_line_and_node_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (config,) = _cluster(tmp_path, ("n1",))

    async def scenario() -> None:
        mine = {t for t in asyncio.all_tasks()}
        server = NodeServer(config)

        def broken_tick() -> None:
            raise ZeroDivisionError("tick")

        monkeypatch.setattr(server.driver, "tick", broken_tick)
        failed, took = await _serve_until_failure(server)
        assert failed.part == "ticker" and isinstance(failed.cause, ZeroDivisionError)
        assert "node n1 stopped: ticker failed" in str(failed)
        assert took < SHUTDOWN_BOUND_S
        assert not _others(mine)

    with caplog.at_level(logging.CRITICAL, logger="resonetics.server"):
        asyncio.run(scenario())
    assert any("ticker failed" in r.getMessage() for r in caplog.records)
    _assert_stopped_cleanly(config)


def test_link_exception_stops_the_node_instead_of_hanging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    config, _ = _cluster(tmp_path, ("n1", "n2"))

    def broken_parse(address: str, *, what: str) -> tuple[str, int]:
        raise RuntimeError(f"bug while dialing {what}")

    monkeypatch.setattr(peers, "parse_address", broken_parse)

    async def scenario() -> None:
        mine = {t for t in asyncio.all_tasks()}
        failed, took = await _serve_until_failure(NodeServer(config))
        assert failed.part == "peer link to n2" and isinstance(failed.cause, RuntimeError)
        assert took < SHUTDOWN_BOUND_S
        assert not _others(mine)

    with caplog.at_level(logging.CRITICAL, logger="resonetics.server"):
        asyncio.run(scenario())
    assert any("peer link to n2 failed" in r.getMessage() for r in caplog.records)
    _assert_stopped_cleanly(config)


def test_driver_failure_takes_the_same_shutdown_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (config,) = _cluster(tmp_path, ("n1",))

    async def scenario() -> None:
        mine = {t for t in asyncio.all_tasks()}
        server = NodeServer(config)

        def broken(*args: Any) -> bool:
            raise InvariantViolation("planted")

        monkeypatch.setattr(server.executor, "run_now", broken)
        failed, took = await _serve_until_failure(server)
        assert failed.part == "driver loop" and isinstance(failed.cause, InvariantViolation)
        assert took < SHUTDOWN_BOUND_S
        assert not _others(mine)

    asyncio.run(scenario())
    _assert_stopped_cleanly(config)


def test_sigterm_stops_the_node_through_the_one_shutdown_path(tmp_path: Path) -> None:
    (config,) = _cluster(tmp_path, ("n1",))

    async def scenario() -> None:
        mine = {t for t in asyncio.all_tasks()}
        server = NodeServer(config)
        serving = asyncio.create_task(server.serve_forever(install_signals=True))
        mine.add(serving)
        await _wait_for(lambda: server.driver.core.is_leader, "the one node to lead")
        started = time.monotonic()
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(serving, SHUTDOWN_BOUND_S)  # returns: no failure
        assert time.monotonic() - started < SHUTDOWN_BOUND_S
        assert not _others(mine)
        # The handlers are removed with the node: a later SIGTERM is not swallowed.
        assert signal.getsignal(signal.SIGTERM) is not None

    asyncio.run(scenario())
    _assert_stopped_cleanly(config)


def test_failed_start_raises_and_releases_the_data_dir(tmp_path: Path) -> None:
    (config,) = _cluster(tmp_path, ("n1",))
    host, port = config.client_listen_address

    async def scenario() -> None:
        mine = {t for t in asyncio.all_tasks()}
        with socket.socket() as taken:
            taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
            taken.bind((host, port))
            taken.listen()
            server = NodeServer(config)
            with pytest.raises(OSError):
                await server.start()
        assert not _others(mine)

    asyncio.run(scenario())
    _assert_stopped_cleanly(config)


def test_stop_before_and_after_shutdown_is_harmless(tmp_path: Path) -> None:
    (config,) = _cluster(tmp_path, ("n1",))

    async def scenario() -> None:
        server = NodeServer(config)
        await server.start()
        server.stop()
        server.stop()
        await asyncio.wait_for(server.shutdown(), SHUTDOWN_BOUND_S)
        server.stop()
        await server.shutdown()  # already stopped: returns at once

    asyncio.run(scenario())


def test_serve_exits_non_zero_with_one_line_naming_the_failed_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator's view: ``resonetics serve`` whose ticker fails ends, exit 1, one line."""
    from resonetics.commands import failures
    from resonetics.runtime.driver import NodeDriver
    from tests.commands.helpers import run

    def broken_tick(self: NodeDriver) -> None:
        raise ZeroDivisionError("tick")

    monkeypatch.setattr(NodeDriver, "tick", broken_tick)
    peer, client = free_ports(2)
    started = time.monotonic()
    result = run(
        "serve",
        "--id",
        "n1",
        "--peers",
        f"n1=127.0.0.1:{peer}",
        "--clients",
        f"n1=127.0.0.1:{client}",
        "--data-dir",
        str(tmp_path),
    )
    assert time.monotonic() - started < SHUTDOWN_BOUND_S * 3
    assert result.exit_code == failures.EXIT_BUG, result.output
    # The node's log carries the traceback; the command's own verdict is its last line.
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("error: node n1 stopped: ticker failed: ZeroDivisionError")
    )


def test_bug_in_one_inbound_peer_connection_closes_it_without_stopping_the_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anyone who reaches the peer port can send bytes: a bug their bytes trigger in
    reading closes that connection and is counted, the node serves on."""
    from resonetics.server import peer_listener

    def broken_decode(env: Any) -> Any:
        raise RecursionError("planted")

    monkeypatch.setattr(peer_listener, "decode_hello", broken_decode)
    (config,) = _cluster(tmp_path, ("n1",))

    async def scenario() -> None:
        server = NodeServer(config)
        await server.start()
        try:
            host, port = config.peer_listen_address
            reader, writer = await asyncio.open_connection(host, port)
            await reader.readline()  # the challenge
            writer.write(b'{"kind": "Hello", "payload": {}, "t": 0, "v": 1}\n')
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), timeout=10) == b""  # closed
            writer.close()
            assert server.peer_listener.dropped[peer_listener.HANDLER_ERROR] == 1
            c_host, c_port = config.client_listen_address
            c_reader, c_writer = await asyncio.open_connection(c_host, c_port)
            assert (await _ask(c_reader, c_writer, _request("status", "s")))["ok"] is True
            c_writer.close()
            assert server._fatal is None
        finally:
            await server.shutdown()

    asyncio.run(scenario())


def test_bug_reading_an_authenticated_peer_line_closes_that_link_and_the_node_serves_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the handshake each line is handled as it arrives (``_PeerLines``): a bug
    there closes that link and is counted, as in the handshake; links come back and
    the cluster goes on committing."""
    from resonetics.server import peer_listener

    async def scenario() -> None:
        a_cfg, b_cfg = _cluster(tmp_path, ("a", "b"))
        a, b = NodeServer(a_cfg), NodeServer(b_cfg)
        await a.start()
        await b.start()
        try:
            await _wait_for(lambda: a.driver.core.leader_id is not None, "a leader")
            real = peer_listener.decode_peer
            broken = {"left": 2}

            def decode_twice_broken(env: Any) -> Any:
                if broken["left"]:
                    broken["left"] -= 1
                    raise RecursionError("planted")
                return real(env)

            monkeypatch.setattr(peer_listener, "decode_peer", decode_twice_broken)

            def counted() -> bool:
                errors = peer_listener.HANDLER_ERROR
                return a.peer_listener.dropped[errors] + b.peer_listener.dropped[errors] == 2

            await _wait_for(counted, "both broken lines counted")
            leader = a if a.driver.core.is_leader else b
            host, port = leader.config.client_listen_address
            reader, writer = await asyncio.open_connection(host, port)
            answer = await _ask(reader, writer, _request("kv_set", "w", {"k": "k", "v": 1}))
            assert answer["ok"] is True, answer
            writer.close()
            assert a._fatal is None and b._fatal is None
        finally:
            await a.shutdown()
            await b.shutdown()

    asyncio.run(scenario())


def test_core_failure_on_a_delivered_peer_message_stops_the_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broken invariant in the core while stepping an authenticated peer's message
    is the node's bug, not the peer's: the node stops, in order, naming the driver."""
    a_cfg, b_cfg = _cluster(tmp_path, ("a", "b"))

    async def scenario() -> None:
        mine = {t for t in asyncio.all_tasks()}
        a, b = NodeServer(a_cfg), NodeServer(b_cfg)

        def broken_step(msg: Any) -> None:
            raise InvariantViolation("planted in step")

        monkeypatch.setattr(a.driver, "step", broken_step)
        serving = asyncio.create_task(a.serve_forever(install_signals=False))
        mine.add(serving)
        await b.start()  # b campaigns and sends to a
        with pytest.raises(NodeFailed) as failed:
            await asyncio.wait_for(serving, SHUTDOWN_BOUND_S * 3)
        assert failed.value.part == "driver loop"
        await b.shutdown()
        assert not _others(mine)

    asyncio.run(scenario())
