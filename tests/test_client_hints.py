"""The client follows NOT_LEADER hints only to addresses it was given or the configuration names.

A node that was misled, or an impostor answering at a node's address, names an
address of its choosing as the leader; before, the client dialled it and sent it
its requests (and accepted its receipts). Played here by fake nodes on loopback.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from resonetics import errors
from resonetics.client import AsyncClient

Answer = Callable[[dict[str, Any]], dict[str, Any]]


async def _fake_node(answer: Answer, seen: list[str]) -> tuple[asyncio.Server, str]:
    """A node that answers every request with ``answer(payload)``; ``seen`` gets each op."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            env = json.loads(line)
            seen.append(env["payload"].get("op", env["kind"]))
            reply = {"kind": "ClientResponse", "payload": answer(env["payload"]), "t": 0, "v": 1}
            if "id" in env:
                reply["id"] = env["id"]
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"127.0.0.1:{port}"


def _not_leader(leader_addr: str) -> Answer:
    def answer(payload: dict[str, Any]) -> dict[str, Any]:
        if payload.get("op") == "member_list":
            return {"ok": True, "code": "OK", "result": {"addresses": {"n1": "127.0.0.1:1"}}}
        hint = {"term": 3, "node": "n1", "leader": "n2", "leader_addr": leader_addr}
        return {"ok": False, "code": "NOT_LEADER", "result": hint, "message": "not the leader"}

    return answer


def _run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())


def test_hint_to_an_address_outside_the_configuration_is_not_followed() -> None:
    async def scenario() -> None:
        stolen: list[str] = []
        attacker, attacker_addr = await _fake_node(
            lambda p: {"ok": True, "code": "OK", "result": {"receipt": None}}, stolen
        )
        asked: list[str] = []
        node, node_addr = await _fake_node(_not_leader(attacker_addr), asked)
        async with attacker, node:
            client = AsyncClient([node_addr], timeout=1.5)
            with pytest.raises((errors.Timeout, errors.Unavailable)):
                await client.get("k")
            await client.close()
        assert stolen == [], "the client dialled the hinted stranger"
        assert client.hints_ignored > 0
        assert asked.count("member_list") == 1  # looked up once, not on every hint

    _run(scenario)


def test_hint_to_a_member_the_configuration_names_is_followed() -> None:
    async def scenario() -> None:
        served: list[str] = []
        leader, leader_addr = await _fake_node(
            lambda p: {"ok": True, "code": "OK", "result": {"value": 7}}, served
        )

        def follower(payload: dict[str, Any]) -> dict[str, Any]:
            if payload.get("op") == "member_list":
                result = {"addresses": {"n1": "x", "n2": leader_addr}}
                return {"ok": True, "code": "OK", "result": result}
            return _not_leader(leader_addr)(payload)

        node, node_addr = await _fake_node(follower, [])
        async with leader, node:
            client = AsyncClient([node_addr], timeout=5)
            assert await client.get("k") == 7
            await client.close()
        assert served == ["kv_get"]
        assert client.hints_ignored == 0

    _run(scenario)


def _view(node: str, leader: str | None, addresses: dict[str, str]) -> Answer:
    """A node whose ``member_list`` answers with its own view: ``leader`` as it knows it."""

    def answer(payload: dict[str, Any]) -> dict[str, Any]:
        view = {"node": node, "leader": leader, "term": 0 if leader is None else 2}
        view |= {"voters": sorted(addresses) if leader else ["n1"], "addresses": addresses}
        return {"ok": True, "code": "OK", "result": view}

    return answer


def test_member_list_from_a_node_that_knows_no_leader_asks_the_others_for_one() -> None:
    """A node just started (term 0) may hold a configuration many entries old: a member
    list it answers is followed by one from a node that names a leader, then the leader."""

    async def scenario() -> None:
        asked_leader: list[str] = []
        members = {"n1": "127.0.0.1:1", "n3": "127.0.0.1:1"}
        leader, members["n2"] = await _fake_node(_view("n2", "n2", members), asked_leader)
        fresh, fresh_addr = await _fake_node(_view("n4", None, {}), [])
        follower, follower_addr = await _fake_node(_view("n3", "n2", members), [])
        async with leader, fresh, follower:
            client = AsyncClient([fresh_addr, follower_addr], timeout=5)
            view = await client.member_list()
            await client.close()
        assert (view["node"], view["leader"]) == ("n2", "n2")
        assert view["voters"] == ["n1", "n2", "n3"]
        assert asked_leader == ["member_list"]

    _run(scenario)


def test_member_list_when_no_node_knows_a_leader_is_the_first_nodes_view() -> None:
    async def scenario() -> None:
        first, first_addr = await _fake_node(_view("n1", None, {}), [])
        other_seen: list[str] = []
        other, other_addr = await _fake_node(_view("n2", None, {}), other_seen)
        dead = "127.0.0.1:1"  # nothing listens: skipped, not waited on for the timeout
        async with first, other:
            client = AsyncClient([first_addr, dead, other_addr], timeout=5)
            view = await client.member_list()
            await client.close()
        assert (view["node"], view["leader"]) == ("n1", None)
        assert other_seen == ["member_list"]

    _run(scenario)


def test_an_answer_that_is_not_an_object_is_a_clear_error_not_a_crash() -> None:
    """A node (or whoever answers at its address) that answers a member list or a status
    with a list or a string: the first answer is refused naming the op and the node; a
    malformed view from another node asked for a leader is skipped."""

    def odd(payload: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "code": "OK", "result": ["not", "a", "view"]}

    async def scenario() -> None:
        liar, liar_addr = await _fake_node(odd, [])
        fresh, fresh_addr = await _fake_node(_view("n4", None, {}), [])
        async with liar, fresh:
            client = AsyncClient([liar_addr], timeout=2)
            with pytest.raises(errors.ClientError, match=r"member_list: .* answered a list"):
                await client.member_list()
            with pytest.raises(errors.ClientError, match=r"status: .* answered a list"):
                await client.status()
            with pytest.raises(errors.ClientError, match=r"status: .* answered a list"):
                await client.status(liar_addr)
            await client.close()
            client = AsyncClient([fresh_addr, liar_addr], timeout=2)
            view = await client.member_list()  # the liar's answer skipped: n4's own view
            await client.close()
        assert (view["node"], view["leader"]) == ("n4", None)

    _run(scenario)
