"""Typed proxies (``resonetics.proxies``): ``counter.incr(by=2)`` over a real node."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

import resonetics
from resonetics import AsyncClient, Client, Node, errors
from resonetics.errors import MachineError
from resonetics.localcluster import free_ports
from resonetics.machine.kv import KeyValueStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from counter import Counter


class CounterOps(Protocol):
    def incr(self, *, by: int = 1) -> int: ...
    def value(self, *, consistency: str = "linearizable") -> int: ...


class AsyncCounterOps(Protocol):
    async def incr(self, *, by: int = 1) -> int: ...
    async def value(self, *, consistency: str = "linearizable") -> int: ...


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    peer, client = (f"127.0.0.1:{p}" for p in free_ports(2))
    running = Node(
        node_id="n1",
        machine=Counter(),
        peers={"n1": peer},
        clients={"n1": client},
        data_dir=tmp_path_factory.mktemp("proxy") / "data",
        tick_ms=20,
    )
    with running:
        running.wait_ready_blocking(60)
        yield running


def _address(node: Node) -> str:
    return node.config.client_listen


def test_sync_proxy_calls_declared_ops_and_returns_their_value(node: Node) -> None:
    with Client(_address(node)) as client:
        counter = client.proxy(Counter)
        before = counter.value()
        assert counter.incr(by=2) == before + 2
        assert counter.incr() == before + 3  # the args struct's default
        assert counter.value(consistency="stale") == before + 3
        assert resonetics.proxy(client, Counter()).value() == before + 3  # an instance too


def test_async_proxy_calls_are_coroutines(node: Node) -> None:
    async def scenario() -> None:
        async with AsyncClient(_address(node)) as client:
            counter = client.proxy(Counter)
            before = await counter.value()
            assert await counter.incr(by=5) == before + 5

    asyncio.run(scenario())


def test_typed_proxy_follows_its_protocol(node: Node) -> None:
    with Client(_address(node)) as client:
        counter: CounterOps = client.proxy(Counter, CounterOps)
        before = counter.value()
        assert counter.incr(by=1) == before + 1

    async def scenario() -> None:
        async with AsyncClient(_address(node)) as client:
            typed: AsyncCounterOps = resonetics.proxy(client, Counter, AsyncCounterOps)
            assert await typed.incr(by=1) == before + 2

    asyncio.run(scenario())


def test_proxy_refuses_bad_args_before_sending(node: Node) -> None:
    with Client(_address(node)) as client:
        counter = client.proxy(Counter)
        before = counter.value()
        with pytest.raises(errors.BadRequest, match=r"args.bz.*not an argument of 'incr'"):
            counter.incr(bz=2)
        with pytest.raises(errors.BadRequest, match="incr"):
            counter.incr(by="two")
        with pytest.raises(errors.BadRequest, match="consistency"):
            counter.value(consistency="eventually")
        assert counter.value() == before  # nothing was applied


def test_unknown_op_is_an_attribute_error_naming_the_declared_ops(node: Node) -> None:
    with Client(_address(node)) as client:
        counter = client.proxy(Counter)
        with pytest.raises(AttributeError, match=r"no op 'decr'.*incr, value"):
            counter.decr()
        assert dir(counter) == ["incr", "value"]


def test_protocol_naming_an_undeclared_op_or_the_wrong_kind_is_refused(node: Node) -> None:
    class Wrong(Protocol):
        def decr(self) -> int: ...

    with Client(_address(node)) as client:
        with pytest.raises(MachineError, match="declares no op 'decr'"):
            client.proxy(Counter, Wrong)
        with pytest.raises(MachineError, match="must be def"):
            client.proxy(Counter, AsyncCounterOps)
        with pytest.raises(MachineError, match=r"not a resonetics\.StateMachine"):
            resonetics.proxy(client, dict)  # type: ignore[call-overload]


def test_kv_proxy_on_a_counter_node_gets_the_nodes_refusal(node: Node) -> None:
    """The proxy checks args, the node checks the op: a proxy for the wrong machine fails
    with the node's BadRequest naming its machine, never a silent success."""
    with Client(_address(node), timeout=5) as client:
        kv: Any = client.proxy(KeyValueStore)
        with pytest.raises(errors.BadRequest, match="counter"):
            kv.kv_get(k="a")
