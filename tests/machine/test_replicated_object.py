"""``ReplicatedObject``: marked methods and typed fields make a StateMachine; bad
declarations are refused when the class is defined, naming the culprit."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from resonetics.errors import MachineError
from resonetics.machine.ops import load_factory
from resonetics.machine.replicated_object import ReplicatedObject, command, query
from resonetics.machine.served import ServedMachine
from resonetics.machine.structures import Counter
from resonetics.wire.machine_ops import op_table


class Notes(ReplicatedObject):
    name = "notes"
    notes: dict[str, str] = msgspec.field(default_factory=dict)
    written: int = 0
    last_at: int = 0

    @command(key_arg="key")
    def write(self, key: str, text: str, *, upper: bool = False) -> int:
        self.notes[key] = text.upper() if upper else text
        self.written += 1
        self.last_at = self.now_ms
        return self.index

    @query(name="read_note", key_arg="key")
    def read_one(self, key: str) -> str | None:
        return self.notes.get(key)


def test_marked_methods_become_declared_ops_with_generated_arg_structs() -> None:
    ops = {op.name: op for op in Notes.ops}
    assert set(ops) == {"write", "read_note"}
    assert ops["write"].kind == "command" and ops["read_note"].kind == "query"
    assert ops["write"].key_arg == "key"
    assert Notes.read_ops == frozenset({"read_note"})
    fields = {f.name: f for f in msgspec.structs.fields(ops["write"].args)}  # type: ignore[arg-type]
    assert fields["text"].type is str and fields["upper"].default is False
    # The node's op table takes the declaration as it is.
    assert set(op_table(Notes()).specs) >= {"write", "read_note"}


def test_command_sees_the_log_index_and_the_leader_stamped_time() -> None:
    notes = Notes()
    assert notes.apply(7, {"op": "write", "args": {"key": "a", "text": "x"}, "ts": 1234}) == 7
    assert notes.last_at == 1234 and notes.now_ms == 1234


def test_log_time_never_goes_backwards_when_a_new_leader_stamps_an_earlier_ts() -> None:
    notes = Notes()
    notes.apply(1, {"op": "write", "args": {"key": "a", "text": "x"}, "ts": 5000})
    notes.apply(2, {"op": "write", "args": {"key": "a", "text": "y"}, "ts": 4000})
    assert notes.now_ms == 5000 and notes.last_at == 5000


def test_query_dispatches_to_its_method_with_typed_args() -> None:
    notes = Notes()
    notes.apply(1, {"op": "write", "args": {"key": "a", "text": "x", "upper": True}, "ts": 1})
    assert notes.read("read_note", {"key": "a"}) == "X"
    assert notes.read("read_note", {"key": "b"}) is None


def test_snapshot_is_msgspec_json_of_the_fields_and_restore_rebuilds_them() -> None:
    notes = Notes()
    notes.apply(1, {"op": "write", "args": {"key": "b", "text": "x"}, "ts": 10})
    notes.apply(2, {"op": "write", "args": {"key": "a", "text": "y"}, "ts": 20})
    data = notes.snapshot()
    assert msgspec.json.decode(data) == {
        "now_ms": 20,
        "state": {"notes": {"b": "x", "a": "y"}, "written": 2, "last_at": 20},
    }
    copy = Notes()
    copy.restore(data)
    assert copy.snapshot() == data and copy.notes == {"b": "x", "a": "y"}


def test_instances_do_not_share_a_default_factory_field() -> None:
    a, b = Notes(), Notes()
    a.apply(1, {"op": "write", "args": {"key": "k", "text": "x"}, "ts": 1})
    assert b.notes == {}


def test_served_object_answers_a_bad_argument_with_an_error_result_not_a_crash() -> None:
    served = ServedMachine(Counter())
    result = served.apply(1, {"op": "incr", "args": {"by": "two"}, "ts": 1})
    assert result["ok"] is False and "incr" in result["message"]


def test_structures_load_by_factory_spec() -> None:
    lock = load_factory("resonetics.machine.structures:Lock")
    assert {op.name for op in lock.ops} == {"acquire", "release", "refresh", "holder"}


def _define(body: dict[str, Any], annotations: dict[str, Any] | None = None) -> type:
    namespace = dict(body)
    if annotations is not None:
        namespace["__annotations__"] = annotations
    return type("Bad", (ReplicatedObject,), namespace)


def test_untyped_command_argument_is_refused_naming_it() -> None:
    def put(self: Any, key) -> None:  # type: ignore[no-untyped-def]
        pass

    with pytest.raises(MachineError, match=r"Bad\.put: argument 'key' has no type annotation"):
        _define({"put": command(put)})


def test_variadic_command_argument_is_refused() -> None:
    def put(self: Any, *items: int) -> None:
        pass

    with pytest.raises(MachineError, match=r"Bad\.put: argument 'items'"):
        _define({"put": command(put)})


def test_op_named_like_a_node_op_is_refused() -> None:
    def status(self: Any) -> None:
        pass

    with pytest.raises(MachineError, match=r"op name 'status' is a name the node uses itself"):
        _define({"status": query(status)})


def test_op_replacing_a_machine_method_is_refused() -> None:
    def snapshot(self: Any) -> None:
        pass

    with pytest.raises(MachineError, match=r"op name 'snapshot'"):
        _define({"snapshot": command(snapshot)})


def test_mutable_default_field_is_refused_with_the_fix() -> None:
    with pytest.raises(MachineError, match=r"Bad\.items: mutable default \[\].*default_factory"):
        _define({"items": []}, {"items": list[int]})


def test_mutable_default_argument_is_refused() -> None:
    def put(self: Any, items: list[int] = []) -> None:  # noqa: B006 - the point of the test
        pass

    with pytest.raises(MachineError, match=r"Bad\.put: argument 'items': mutable default"):
        _define({"put": command(put)})


def test_set_field_is_refused_because_its_order_is_not_replicated() -> None:
    with pytest.raises(MachineError, match=r"Bad\.tags: unsupported type set"):
        _define({"tags": msgspec.field(default_factory=set)}, {"tags": set[str]})


def test_field_of_a_type_msgspec_cannot_encode_is_refused() -> None:
    with pytest.raises(MachineError, match=r"Bad\.lock: unsupported type"):
        _define({"lock": None}, {"lock": object})


def test_field_without_a_default_is_refused() -> None:
    with pytest.raises(MachineError, match=r"Bad\.value: a field needs a default"):
        _define({}, {"value": int})


def test_field_named_like_a_machine_attribute_is_refused() -> None:
    with pytest.raises(MachineError, match=r"Bad\.index: 'index' is a name the machine uses"):
        _define({"index": 0}, {"index": int})


def _gateway(op: str, args: Any) -> dict[str, Any]:
    """What the node's gateway makes of a request to the Lock (before anything is logged)."""
    from resonetics.machine.structures import Lock
    from resonetics.wire.client import validate_request
    from resonetics.wire.envelope import decode_envelope

    payload = {"client_id": "c", "request_id": "r1", "op": op, "args": args}
    line = msgspec.json.encode({"kind": "ClientRequest", "payload": payload, "t": 0, "v": 1})
    return validate_request(decode_envelope(line), op_table(Lock())).args


def test_gateway_checks_argument_types_from_the_method_signature_before_logging() -> None:
    from resonetics.errors import BadRequest

    assert _gateway("acquire", {"name": "db", "owner": "a"}) == {
        "name": "db",
        "owner": "a",
        "ttl_ms": 10_000,  # the signature's default, filled in before logging
    }
    with pytest.raises(BadRequest, match=r"args\.ttl_ms"):
        _gateway("acquire", {"name": "db", "owner": "a", "ttl_ms": "soon"})
    with pytest.raises(BadRequest, match=r"args\.ttl_ms"):
        _gateway("acquire", {"name": "db", "owner": "a", "ttl_ms": 0})  # below its bound
    with pytest.raises(BadRequest, match=r"args\.owner"):
        _gateway("acquire", {"name": "db"})
    with pytest.raises(BadRequest, match=r"args\.onwer"):
        _gateway("acquire", {"name": "db", "onwer": "a"})  # a misspelled argument


def test_async_op_is_refused() -> None:
    async def put(self: Any, key: str) -> None:
        pass

    with pytest.raises(MachineError, match=r"Bad\.put: an async method cannot be an op"):
        _define({"put": command(put)})


def test_field_with_a_msgspec_field_default_starts_at_that_default() -> None:
    cls = _define({"limit": msgspec.field(default=5)}, {"limit": int})
    assert cls().limit == 5  # type: ignore[attr-defined]
    with pytest.raises(MachineError, match=r"Bad\.limit: a field needs a default"):
        _define({"limit": msgspec.field()}, {"limit": int})


@pytest.mark.parametrize(
    "data",
    [
        b'{"now_ms": 1, "state": {"notes": {"a": 1}, "written": 0, "last_at": 0}}',  # wrong type
        b'{"now_ms": 1, "state": {"notes": {}, "written": 0, "last_at": 0, "x": 1}}',  # unknown
        b'{"now_ms": 1, "state": {"notes": {}}}',  # a field missing
        b"\x80\x04\x95pickle",  # not JSON at all (a pickle is never decoded)
    ],
)
def test_restore_refuses_a_snapshot_that_does_not_match_the_declared_fields(data: bytes) -> None:
    from resonetics.errors import StorageCorruption

    notes = Notes()
    notes.apply(1, {"op": "write", "args": {"key": "k", "text": "x"}, "ts": 5})
    before = notes.snapshot()
    with pytest.raises(StorageCorruption, match=r"Notes does not match its fields"):
        notes.restore(data)
    assert notes.snapshot() == before  # nothing half-restored
