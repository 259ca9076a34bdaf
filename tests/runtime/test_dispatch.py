"""Request dispatch (runtime/dispatch.py): one routing for the server and the simulator."""

from __future__ import annotations

import random
from typing import Any

from resonetics.raft.config import RaftConfig
from resonetics.raft.messages import Message
from resonetics.runtime.dispatch import Routed, dispatch, route
from resonetics.runtime.driver import NodeDriver
from resonetics.runtime.outcome import OnDone, Outcome
from resonetics.storage.memory import MemoryNodeStorage
from resonetics.wire import codes


class _Host:
    def now_ms(self) -> int:
        return 1_000

    def send(self, msg: Message) -> None:
        pass

    def flush(self) -> None:
        pass


def _leader() -> NodeDriver:
    node = NodeDriver(
        RaftConfig(node_id="n1", initial_voters=("n1",)),
        MemoryNodeStorage(),
        _Host(),
        random.Random(1),
    )
    node.core.campaign()
    node.process_ready()
    return node


def _request(op: str, args: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"client_id": "c", "request_id": "r1", "op": op, "args": args, **extra}


def test_ops_are_routed_by_the_op_table() -> None:
    assert route("kv_set") is Routed.WRITE
    assert route("session_open") is Routed.WRITE
    assert route("kv_get") is Routed.READ
    assert route("status") is Routed.REFUSED
    assert route("status", {"status": lambda a, d: None}) is Routed.HOST


def test_a_write_carries_its_session_fields_into_the_log() -> None:
    node = _leader()
    opened: list[Outcome] = []
    dispatch(node, _request("session_open", {}), opened.append)
    node.process_ready()
    session = opened[0].result["session"]
    answers: list[Outcome] = []
    request = _request("kv_set", {"k": "a", "v": 1}, session=session, seq=1, ack_below=1)
    assert dispatch(node, request, answers.append) is Routed.WRITE
    node.process_ready()
    assert [a.code for a in answers] == [codes.OK]
    entry = node.core.entry_at(node.core.last_index)
    assert entry is not None and entry.data["seq"] == 1 and entry.data["session"] == session


def test_a_partial_session_is_a_legacy_write() -> None:
    node = _leader()
    answers: list[Outcome] = []
    dispatch(node, _request("kv_set", {"k": "a", "v": 1}, session=5), answers.append)
    node.process_ready()
    assert [a.code for a in answers] == [codes.OK]
    entry = node.core.entry_at(node.core.last_index)
    assert entry is not None and "session" not in entry.data


def test_a_stale_read_goes_to_the_hosts_reader_and_the_callers_args_are_untouched() -> None:
    node = _leader()
    args = {"k": "a", "consistency": "stale"}
    seen: list[tuple[str, dict[str, Any]]] = []

    def stale(op: str, read_args: dict[str, Any]) -> Outcome:
        seen.append((op, read_args))
        return Outcome(codes.OK, {})

    answers: list[Outcome] = []
    dispatch(node, _request("kv_get", args), answers.append, stale_read=stale)
    assert seen == [("kv_get", {"k": "a"})]
    assert args == {"k": "a", "consistency": "stale"}
    assert [a.code for a in answers] == [codes.OK]


def test_a_linearizable_read_waits_for_read_index() -> None:
    node = _leader()
    answers: list[Outcome] = []
    dispatch(node, _request("kv_get", {"k": "a"}), answers.append)
    assert answers == []
    node.process_ready()
    assert [a.code for a in answers] == [codes.OK]


def test_a_host_op_goes_to_the_host_and_an_unknown_op_is_a_bad_request() -> None:
    node = _leader()
    answers: list[Outcome] = []

    def status(args: dict[str, Any], on_done: OnDone) -> None:
        on_done(Outcome(codes.OK, {"status": True}))

    dispatch(node, _request("status", {}), answers.append, host_ops={"status": status})
    dispatch(node, _request("launch", {}), answers.append)
    assert answers[0].result == {"status": True}
    assert answers[1].code == codes.BAD_REQUEST and "launch" in (answers[1].message or "")
