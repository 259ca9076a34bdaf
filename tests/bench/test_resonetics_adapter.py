"""The Resonetics adapter against fake nodes on loopback speaking the wire protocol."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from bench.adapters.base import RequestFailed, Target
from bench.adapters.resonetics import ResoneticsAdapter

from resonetics.wire.client import ClientResponse, encode_response
from resonetics.wire.envelope import decode_envelope


async def _fake_node(answer: ClientResponse, seen: list[str]) -> tuple[asyncio.Server, str]:
    """A node that answers every request line with ``answer``, recording each op."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            env = decode_envelope(line)
            seen.append(msgspec.json.decode(env.payload)["op"])
            writer.write(encode_response(answer, 0, env.id))
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"127.0.0.1:{port}"


async def _follow() -> tuple[list[str], list[str], str]:
    follower_seen: list[str] = []
    leader_seen: list[str] = []
    leader, leader_addr = await _fake_node(ClientResponse(ok=True, code="OK"), leader_seen)
    not_leader = ClientResponse(
        ok=False, code="NOT_LEADER", result={"term": 2, "leader_addr": leader_addr}, message="no"
    )
    follower, follower_addr = await _fake_node(not_leader, follower_seen)
    async with leader, follower:
        adapter = await ResoneticsAdapter.open(Target("resonetics", follower_addr))
        try:
            with pytest.raises(RequestFailed) as failed:
                await adapter.write("k", "v")
            await adapter.write("k", "v")
            await adapter.read("k")
        finally:
            await adapter.close()
    return follower_seen, leader_seen, str(failed.value)


def test_not_leader_counts_as_failure_then_moves_to_the_hinted_leader() -> None:
    follower_seen, leader_seen, failure = asyncio.run(_follow())
    assert failure.startswith("NOT_LEADER")
    assert follower_seen == ["kv_set"]
    assert leader_seen == ["kv_set", "kv_get"]
