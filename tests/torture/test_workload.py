"""The recording client: each kind of answer becomes the right history event."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

from resonetics.check.history import HistoryRecorder
from resonetics.localcluster import free_ports
from resonetics.torture.workload import Workload, WorkloadOptions
from resonetics.wire.envelope import decode_envelope

# What the scripted node does with each request it receives, in order.
SCRIPT: list[tuple[str, dict[str, Any]] | str] = [
    ("OK", {"value": "1", "swapped": True, "deleted": True}),
    ("NOT_LEADER", {"term": 3, "node": "n1", "leader": "n2"}),
    ("OK", {"value": None, "swapped": False, "deleted": False}),
    ("TIMEOUT", {}),
    ("BAD_REQUEST", {}),
    "close",
    ("UNAVAILABLE", {}),
    ("NOT_LEADER", {"term": 4, "node": "n2", "leader": "n3"}),  # n3 is down: connect fails
    ("OK", {"value": "2", "swapped": True, "deleted": True}),
]
EXPECTED = ["ok", "fail", "ok", "info", "fail", "info", "info", "fail", "fail", "ok"]


async def _scripted_node(
    script: list[tuple[str, dict[str, Any]] | str], seen: list[str], name: str, done: asyncio.Event
) -> asyncio.Server:
    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            env = decode_envelope(line)
            seen.append(name)
            if not script:
                done.set()
                await asyncio.sleep(3600)
            action = script.pop(0)
            if isinstance(action, str):  # "close": drop the connection without an answer
                writer.transport.abort()
                return
            code, result = action
            payload = {"ok": code == "OK", "code": code, "result": result}
            out = {"kind": "ClientResponse", "payload": payload, "t": 0, "v": 1, "id": env.id}
            writer.write(json.dumps(out).encode() + b"\n")

    return await asyncio.start_server(on_conn, "127.0.0.1", 0)


def test_answers_become_ok_fail_or_info_and_info_moves_to_a_new_process() -> None:
    async def scenario() -> tuple[list[dict[str, Any]], list[str]]:
        script = list(SCRIPT)
        seen: list[str] = []
        done = asyncio.Event()
        n1 = await _scripted_node(script, seen, "n1", done)
        n2 = await _scripted_node(script, seen, "n2", done)
        addresses = {
            "n1": f"127.0.0.1:{n1.sockets[0].getsockname()[1]}",
            "n2": f"127.0.0.1:{n2.sockets[0].getsockname()[1]}",
            "n3": f"127.0.0.1:{free_ports(1)[0]}",
        }
        recorder = HistoryRecorder()
        options = WorkloadOptions(clients=1, op_timeout_s=2.0, think_s=0.0)
        workload = Workload(addresses, recorder, random.Random(1), options)
        task = asyncio.create_task(workload.run())
        await asyncio.wait_for(done.wait(), 30)
        workload.stop()
        await asyncio.wait_for(task, 10)
        n1.close()
        n2.close()
        return recorder.events(), seen

    events, seen = asyncio.run(scenario())
    completions = [e for e in events if e["type"] != "invoke"]
    assert [e["type"] for e in completions][: len(EXPECTED)] == EXPECTED
    invokes = [e for e in events if e["type"] == "invoke"]
    for before, completion, after in zip(invokes, completions, invokes[1:], strict=False):
        moved = after["process"] != before["process"]
        assert moved == (completion["type"] == "info"), (before, completion, after)
    # The NOT_LEADER hint naming n2 sends the next request to n2.
    assert seen[1] == "n1" and seen[2] == "n2"
