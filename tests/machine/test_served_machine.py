"""A machine that declares its ops: op table, validation, dispatch, authorization, adapter."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import pytest

from resonetics import StateMachine
from resonetics.commands.call import parse_args
from resonetics.errors import BadRequest, MachineError, MachineMismatch, TooLarge
from resonetics.machine.kv import KeyValueStore
from resonetics.machine.ops import MachineOp, command, load_factory, query
from resonetics.machine.replicated import ReplicatedKV
from resonetics.machine.served import ServedMachine
from resonetics.raft.config import RaftConfig
from resonetics.raft.messages import Message
from resonetics.runtime.dispatch import Routed, dispatch, route
from resonetics.runtime.driver import NodeDriver
from resonetics.runtime.outcome import Outcome
from resonetics.security.authz import Grants, decide
from resonetics.server.machine_record import check_machine_record
from resonetics.storage.memory import MemoryNodeStorage
from resonetics.wire import codes
from resonetics.wire.client import OPS, validate_request
from resonetics.wire.envelope import decode_envelope
from resonetics.wire.machine_ops import op_table


class PutArgs(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    n: int = 1


class Tally(StateMachine):
    """Counts per key; ``boom`` raises (a machine bug), ``odd`` returns a set (not JSON)."""

    name: ClassVar[str] = "tally"
    ops: ClassVar[tuple[MachineOp, ...]] = (
        command("add", PutArgs, key_arg="key"),
        command("reset"),
        command("boom"),
        query("count", key_arg="key"),
        query("total"),
    )

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def apply(self, index: int, command: Any) -> Any:
        op, args = command["op"], command["args"]
        if op == "add":
            self.counts[args["key"]] = self.counts.get(args["key"], 0) + args["n"]
            return self.counts[args["key"]]
        if op == "reset":
            self.counts.clear()
            return None
        raise RuntimeError("boom")

    def read(self, op: str, args: Mapping[str, Any]) -> Any:
        if op == "count":
            return self.counts.get(args["key"], 0)
        return sum(self.counts.values())

    def snapshot(self) -> bytes:
        return msgspec.json.encode(self.counts, order="sorted")

    def restore(self, data: bytes) -> None:
        self.counts = msgspec.json.decode(data, type=dict[str, int])


def _line(op: str, args: Any) -> bytes:
    payload = {"client_id": "c", "request_id": "r1", "op": op, "args": args}
    return json.dumps({"kind": "ClientRequest", "payload": payload, "t": 0, "v": 1}).encode()


def _validate(op: str, args: Any) -> dict[str, Any]:
    return validate_request(decode_envelope(_line(op, args)), op_table(Tally())).args


def test_op_table_of_a_declared_machine_routes_commands_to_the_log_and_queries_to_reads() -> None:
    table = op_table(Tally())
    assert table.machine == "tally"
    assert route("add", ops=table) is Routed.WRITE
    assert route("reset", ops=table) is Routed.WRITE
    assert route("session_open", ops=table) is Routed.WRITE
    assert route("count", ops=table) is Routed.READ
    assert route("kv_set", ops=table) is Routed.REFUSED  # not this machine's op
    assert {"status", "member_add", "leader_transfer"} <= set(table.specs)


def test_key_value_store_declares_its_ops_and_gets_the_wire_table() -> None:
    table = op_table(KeyValueStore())
    assert table.machine == "kv"
    assert dict(table.specs) == OPS  # the same specs: the kv store is one machine among others


def test_validation_checks_machine_args_against_the_declared_struct() -> None:
    assert _validate("add", {"key": "a", "n": 2}) == {"key": "a", "n": 2}
    assert _validate("add", {"key": "a"}) == {"key": "a", "n": 1}  # defaults filled in
    assert _validate("reset", {"anything": [1, 2]}) == {"anything": [1, 2]}  # no struct: any
    assert _validate("total", {"consistency": "lease"}) == {"consistency": "lease"}
    with pytest.raises(BadRequest, match=r"args\.n: must be an integer, got str"):
        _validate("add", {"key": "a", "n": "2"})
    with pytest.raises(BadRequest, match=r"args\.key: missing required field"):
        _validate("add", {"n": 2})
    with pytest.raises(BadRequest, match=r"args\.nn: unknown field"):
        _validate("add", {"key": "a", "nn": 2})
    with pytest.raises(BadRequest, match=r"args\.consistency"):
        _validate("total", {"consistency": "eventual"})
    with pytest.raises(BadRequest, match=r"^args: "):
        _validate("reset", [1, 2])


def test_unknown_op_is_refused_naming_the_op_and_the_machine_ops() -> None:
    with pytest.raises(BadRequest) as refused:
        _validate("kv_set", {"k": "a", "v": 1})
    text = str(refused.value)
    assert "unknown op 'kv_set' of machine 'tally'" in text
    assert "add" in text and "count" in text and "total" in text


def test_machine_op_args_are_bounded_like_key_value_args() -> None:
    with pytest.raises(BadRequest, match=r"args: nested deeper"):
        _validate("reset", {"x": json.loads("[" * 40 + "]" * 40)})
    with pytest.raises(TooLarge, match=r"args\.key"):
        _validate("add", {"key": "k" * 5000})


def test_authorization_of_machine_ops_commands_need_write_queries_need_read() -> None:
    specs = op_table(Tally()).specs
    writer = Grants(write=("a/",), read=())
    reader = Grants(read=("a/",))
    assert decide(writer, "add", {"key": "a/1", "n": 1}, specs).allowed
    assert not decide(writer, "add", {"key": "b/1", "n": 1}, specs).allowed
    assert not decide(reader, "add", {"key": "a/1", "n": 1}, specs).allowed
    assert decide(reader, "count", {"key": "a/1"}, specs).allowed
    assert not decide(writer, "count", {"key": "a/1"}, specs).allowed


def test_authorization_of_a_keyless_machine_op_is_on_the_key_op_name() -> None:
    specs = op_table(Tally()).specs
    only_reset = Grants(write=("op:reset",))
    assert decide(only_reset, "reset", {}, specs).allowed
    assert not decide(only_reset, "boom", {}, specs).allowed
    denied = decide(Grants(write=("app/",)), "reset", {}, specs)
    assert not denied.allowed and "'op:reset'" in denied.reason
    assert decide(Grants(read=("",)), "total", {}, specs).allowed
    assert not decide(Grants(read=("app/",)), "total", {}, specs).allowed


class _Host:
    def now_ms(self) -> int:
        return 1_000

    def send(self, msg: Message) -> None:
        pass

    def flush(self) -> None:
        pass


def _leader(machine: StateMachine) -> NodeDriver:
    node = NodeDriver(
        RaftConfig(node_id="n1", initial_voters=("n1",)),
        MemoryNodeStorage(),
        _Host(),
        random.Random(1),
        machine=ReplicatedKV(ServedMachine(machine)),
    )
    node.core.campaign()
    node.process_ready()
    return node


def _run(node: NodeDriver, op: str, args: dict[str, Any], rid: str = "r1") -> Outcome:
    answers: list[Outcome] = []
    request = {"client_id": "c", "request_id": rid, "op": op, "args": args}
    dispatch(node, request, answers.append, ops=op_table(Tally()))
    for _ in range(5):
        node.process_ready()
        if answers:
            break
    assert len(answers) == 1, answers
    return answers[0]


def test_dispatch_of_a_declared_machine_applies_commands_once_and_serves_queries() -> None:
    node = _leader(Tally())
    first = _run(node, "add", {"key": "a", "n": 2})
    assert first.code == codes.OK and first.result["value"] == 2 and "receipt" in first.result
    again = _run(node, "add", {"key": "a", "n": 2})  # a retry: same request id
    assert again.dedup and again.result["value"] == 2
    assert _run(node, "add", {"key": "a", "n": 3}, "r2").result["value"] == 5
    assert _run(node, "count", {"key": "a"}).result == {"value": 5}
    stale = _run(node, "total", {"consistency": "stale"}).result
    assert stale["value"] == 5 and stale["applied_index"] >= 3


def test_a_machine_that_raises_gets_an_error_result_not_a_stopped_node() -> None:
    node = _leader(Tally())
    boom = _run(node, "boom", {})
    assert boom.code == codes.OK
    assert boom.result["ok"] is False and "RuntimeError: boom" in boom.result["message"]
    assert _run(node, "add", {"key": "a", "n": 1}, "r2").result["value"] == 1  # serving


def test_served_machine_result_that_is_not_json_is_an_error_result() -> None:
    class Odd(Tally):
        def read(self, op: str, args: Mapping[str, Any]) -> Any:
            return object()

    served = ServedMachine(Odd())
    assert served.read("total", {})["ok"] is False
    assert served.apply(1, {"op": "count", "args": {}})["ok"] is False  # a query, not logged


def test_served_machine_snapshot_restores_through_the_replicated_format() -> None:
    one = ReplicatedKV(ServedMachine(Tally()))
    node = _leader(Tally())
    _run(node, "add", {"key": "a", "n": 4})
    data = node.machine.snapshot()
    one.restore(data)
    assert one.read("count", {"key": "a"}) == {"value": 4}
    assert one.snapshot() == data  # byte-identical on a replica in the same state
    head, machine = data.split(b"\n", 1)  # a JSON line, then the machine's bytes as they are
    assert b"pickle" not in data and json.loads(head)["machine_bytes"] == len(machine) > 0
    assert machine == node.machine.machine.snapshot()


def test_load_factory_refuses_what_is_not_a_machine() -> None:
    with pytest.raises(MachineError, match=r"expected package\.module:factory"):
        load_factory("no colon")
    with pytest.raises(MachineError, match="cannot import 'no_such_module_xyz'"):
        load_factory("no_such_module_xyz:make")
    with pytest.raises(MachineError, match="has no 'nope'"):
        load_factory("json:nope")
    with pytest.raises(MachineError, match=r"returned dict, not a resonetics\.StateMachine"):
        load_factory("builtins:dict")
    assert isinstance(load_factory("resonetics.machine.kv:KeyValueStore"), KeyValueStore)


def test_a_machine_may_not_declare_an_op_the_node_serves_itself() -> None:
    class Sneaky(Tally):
        ops: ClassVar[tuple[MachineOp, ...]] = (command("member_add"),)

    with pytest.raises(MachineError, match="'member_add' is a name the node uses itself"):
        op_table(Sneaky())
    with pytest.raises(MachineError, match="op name 'Bad-Name'"):
        command("Bad-Name")


def test_data_dir_founded_by_another_machine_is_refused(tmp_path: Path) -> None:
    check_machine_record(tmp_path, "tally")
    check_machine_record(tmp_path, "tally")  # the same machine: accepted again
    with pytest.raises(MachineMismatch, match="holds the state of machine 'tally'"):
        check_machine_record(tmp_path, "kv")
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "log.jsonl").write_text("")
    with pytest.raises(MachineMismatch, match="machine 'kv'"):
        check_machine_record(legacy, "tally")  # a dir from before records: the kv store's


def test_call_cli_parses_args_as_json_or_strings() -> None:
    assert parse_args(("by=2", "name=alice", "tags=[1]", "id:=7")) == {
        "by": 2,
        "name": "alice",
        "tags": [1],
        "id": "7",
    }
