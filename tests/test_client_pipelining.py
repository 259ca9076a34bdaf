"""One AsyncClient, many calls in flight on one connection: against a scripted node.

The client writes the requests of one loop turn together and reads answers in
chunks; these tests hold it to what that must not change: every call gets the
answer whose ``id`` matches its request, whatever order the node answers in;
requests reach the node in the order they were sent; ``ack_below`` is always
the lowest seq still awaited; an unanswered attempt still times out.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from resonetics import errors, limits
from resonetics.client import AsyncClient
from resonetics.wire.client import ClientResponse, encode_response

#: What the scripted node does with the requests it has read: write answers (or not).
Answerer = Callable[[list[dict[str, Any]], asyncio.StreamWriter], Awaitable[None]]


def _answer(request: dict[str, Any], result: Any) -> bytes:
    return encode_response(ClientResponse(ok=True, code="OK", result=result), 0, request["id"])


def _result_for(request: dict[str, Any]) -> Any:
    payload = request["payload"]
    if payload["op"] == "session_open":
        return {"session": 7}
    return {"echo": payload["args"].get("k"), "seq": payload.get("seq")}


async def _node(answerer: Answerer, seen: list[dict[str, Any]], chunks: list[int]) -> Any:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buffer = b""
        while data := await reader.read(1 << 16):
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            requests = [json.loads(line) for line in lines]
            chunks.append(len(requests))
            seen.extend(requests)
            await answerer(requests, writer)

    return await asyncio.start_server(serve, "127.0.0.1", 0)


def _run(answerer: Answerer, scenario: Callable[[AsyncClient], Awaitable[None]]) -> Any:
    seen: list[dict[str, Any]] = []
    chunks: list[int] = []

    async def main() -> None:
        server = await _node(answerer, seen, chunks)
        port = server.sockets[0].getsockname()[1]
        client = AsyncClient(f"127.0.0.1:{port}", timeout=3.0)
        try:
            await scenario(client)
        finally:
            await client.close()
            server.close()
            await server.wait_closed()

    asyncio.run(main())
    return seen, chunks


def test_answers_in_any_order_reach_the_call_that_sent_the_request() -> None:
    async def reversed_answers(requests: list[dict[str, Any]], w: asyncio.StreamWriter) -> None:
        w.write(b"".join(_answer(r, _result_for(r)) for r in reversed(requests)))

    results: list[Any] = []

    async def scenario(client: AsyncClient) -> None:
        await client.call("kv_set", {"k": "first", "v": 0})  # opens the session
        calls = [client.call("kv_set", {"k": f"k{i}", "v": i}) for i in range(200)]
        results.extend(await asyncio.gather(*calls))

    seen, chunks = _run(reversed_answers, scenario)
    assert [r["echo"] for r in results] == [f"k{i}" for i in range(200)]
    # Sent in call order, each with a distinct, increasing seq.
    sets = [r["payload"] for r in seen if r["payload"]["op"] == "kv_set"][1:]
    assert [p["args"]["k"] for p in sets] == [f"k{i}" for i in range(200)]
    assert [p["seq"] for p in sets] == sorted({p["seq"] for p in sets})
    # The calls of one loop turn left together, not one write each.
    assert max(chunks) > 1 and len(chunks) < 200


def test_ack_below_is_the_lowest_seq_still_awaited() -> None:
    held: list[dict[str, Any]] = []

    async def hold_the_first(requests: list[dict[str, Any]], w: asyncio.StreamWriter) -> None:
        for r in requests:
            if r["payload"].get("args", {}).get("k") == "slow" and not held:
                held.append(r)  # answered only after the later calls returned
            else:
                w.write(_answer(r, _result_for(r)))
        if held and sum(1 for r in requests if r["payload"]["args"].get("k") == "last"):
            w.write(_answer(held[0], _result_for(held[0])))

    async def scenario(client: AsyncClient) -> None:
        await client.call("kv_set", {"k": "open", "v": 0})
        slow = asyncio.ensure_future(client.call("kv_set", {"k": "slow", "v": 1}))
        await asyncio.sleep(0.05)
        for i in range(5):
            await client.call("kv_set", {"k": f"k{i}", "v": i})
        await client.call("kv_set", {"k": "last", "v": 9})
        await slow
        await client.call("kv_set", {"k": "after", "v": 10})

    seen, _ = _run(hold_the_first, scenario)
    writes = {r["payload"]["args"]["k"]: r["payload"] for r in seen if "seq" in r["payload"]}
    slow_seq = writes["slow"]["seq"]
    assert all(writes[f"k{i}"]["ack_below"] == slow_seq for i in range(5))
    assert writes["last"]["ack_below"] == slow_seq
    assert writes["after"]["ack_below"] == writes["after"]["seq"]  # nothing older awaited


def test_an_unanswered_call_still_gives_up_at_its_deadline() -> None:
    async def never(requests: list[dict[str, Any]], w: asyncio.StreamWriter) -> None:
        for r in requests:
            if r["payload"]["op"] != "kv_get":
                w.write(_answer(r, _result_for(r)))

    async def scenario(client: AsyncClient) -> None:
        client.timeout = 0.5
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(errors.ClientError):
            await client.get("k")
        assert loop.time() - started < 2.0

    _run(never, scenario)


def test_each_unanswered_request_fails_at_its_own_deadline_on_a_shared_connection() -> None:
    """One timer per connection, set for the earliest deadline: a later request with an
    earlier deadline moves it, answered requests never fail afterwards, and nothing is
    left waiting once the calls are over."""

    async def silent_for_some(requests: list[dict[str, Any]], w: asyncio.StreamWriter) -> None:
        for r in requests:
            if not str(r["payload"]["args"].get("k", "")).startswith("silent"):
                w.write(_answer(r, _result_for(r)))

    failed_at: dict[str, float] = {}

    async def scenario(client: AsyncClient) -> None:
        loop = asyncio.get_running_loop()
        await client.get("connect")
        conn = client._conn
        assert conn is not None

        async def timed(key: str) -> None:
            try:
                await client.get(key)
            except errors.ClientError:
                failed_at[key] = loop.time() - started
            else:
                raise AssertionError(f"{key} was answered")

        started = loop.time()
        client.timeout = 0.8
        late = asyncio.create_task(timed("silent-late"))  # due at 0.8
        await asyncio.sleep(0.2)
        client.timeout = 0.3
        early = asyncio.create_task(timed("silent-early"))  # due at 0.5: the timer moves
        await asyncio.gather(*(client.get(f"k{i}") for i in range(50)))  # raise if not answered
        # Only the two silent requests still wait; the answered ones left no deadline.
        assert len(conn._deadlines) == 2 and conn._deadlines.keys() == conn._pending.keys()
        await asyncio.gather(late, early)
        # A timed-out attempt drops its connection (its other requests are retried on a
        # new one): nothing is left waiting on it, and no timer.
        assert conn._deadlines == {} and conn._pending == {}
        assert conn._timer is None

    _run(silent_for_some, scenario)
    assert 0.5 <= failed_at["silent-early"] < 0.75
    assert 0.8 <= failed_at["silent-late"] < 1.05
    assert failed_at["silent-early"] < failed_at["silent-late"]


def test_a_turn_of_many_calls_leaves_in_blocks_of_at_most_the_write_batch_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Blocks, not one write of everything: the node starts on the first block while the
    client encodes the rest (one connection no longer takes turns with the node)."""
    blocks: list[int] = []

    async def answer_all(requests: list[dict[str, Any]], w: asyncio.StreamWriter) -> None:
        w.write(b"".join(_answer(r, _result_for(r)) for r in requests))

    async def scenario(client: AsyncClient) -> None:
        await client.get("first")  # connects
        writer = client._conn._writer  # type: ignore[union-attr]
        real = writer.write

        def counting(data: bytes) -> None:
            blocks.append(data.count(b"\n"))
            real(data)

        monkeypatch.setattr(writer, "write", counting)
        await asyncio.gather(*(client.get(f"k{i}") for i in range(200)))

    _run(answer_all, scenario)
    limit = limits.CLIENT_WRITE_BATCH_REQUESTS_MAX
    assert sum(blocks) == 200
    assert max(blocks) == limit
    assert len(blocks) == -(-200 // limit)  # full blocks, then the rest at the turn's end
