"""Client requests: the op table, per-field validation, sizes, and responses."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from resonetics import limits
from resonetics.errors import (
    BadRequest,
    LineTooLong,
    NotLeader,
    RateLimited,
    Timeout,
    TooLarge,
    Unavailable,
)
from resonetics.wire import codes
from resonetics.wire.client import (
    ADMIN_OPS,
    LOGGED_OPS,
    MONITOR_OPS,
    OPS,
    READ_OPS,
    WATCH_OPS,
    WRITE_OPS,
    ClientRequest,
    ClientResponse,
    decode_response,
    encode_request,
    encode_response,
    error_response,
    ok_response,
    validate_request,
)
from resonetics.wire.envelope import decode_envelope, encode_envelope


def request(op: Any, args: Any = ..., *, kind: str = "ClientRequest", **head: Any) -> bytes:
    payload: dict[str, Any] = {"client_id": "c1", "request_id": "r1", "op": op}
    if args is not ...:
        payload["args"] = args
    payload.update(head)
    return encode_envelope(kind, {k: v for k, v in payload.items() if v is not ...}, 1)


def validate(data: bytes) -> ClientRequest:
    return validate_request(decode_envelope(data))


_SCAN_DEFAULTS: dict[str, Any] = {"after": None, "at_index": None, "meta": False}


@pytest.mark.parametrize(
    ("op", "args", "normalized"),
    [
        ("kv_set", {"k": "a", "v": {"x": [1, None]}}, {"k": "a", "v": {"x": [1, None]}}),
        ("kv_get", {"k": "a"}, {"k": "a", "consistency": "linearizable", "meta": False}),
        (
            "kv_get",
            {"k": "a", "consistency": "stale", "meta": True},
            {"k": "a", "consistency": "stale", "meta": True},
        ),
        ("kv_delete", {"k": "a"}, {"k": "a"}),
        ("kv_cas", {"k": "a", "expected": None, "v": 1}, {"k": "a", "expected": None, "v": 1}),
        (
            "kv_scan",
            {"prefix": ""},
            {"prefix": "", "limit": 1000, "consistency": "linearizable", **_SCAN_DEFAULTS},
        ),
        (
            "kv_scan",
            {"prefix": "a/", "limit": 5, "consistency": "lease"},
            {"prefix": "a/", "limit": 5, "consistency": "lease", **_SCAN_DEFAULTS},
        ),
        (
            "kv_scan",
            {"prefix": "a/", "after": "a/b", "at_index": 7, "meta": True},
            {
                "prefix": "a/",
                "limit": 1000,
                "consistency": "linearizable",
                "after": "a/b",
                "at_index": 7,
                "meta": True,
            },
        ),
        ("status", {}, {}),
        ("status", ..., {}),
    ],
)
def test_valid_requests_come_out_with_defaults_filled(
    op: str, args: Any, normalized: dict[str, Any]
) -> None:
    req = validate(request(op, args))
    assert req == ClientRequest(client_id="c1", request_id="r1", op=op, args=normalized)


def test_op_categories_cover_the_table() -> None:
    assert {"kv_set", "kv_delete", "kv_cas", "kv_txn"} == WRITE_OPS
    assert WRITE_OPS | {"session_open"} == LOGGED_OPS
    assert {"kv_get", "kv_scan"} == READ_OPS
    membership = {"member_add", "member_add_learner", "member_promote", "member_remove"}
    backup = {"backup_begin", "backup_chunk"}  # a backup holds every key: admin only
    assert {"leader_transfer"} | membership | backup == ADMIN_OPS
    assert {"status", "member_list", "chain_hash"} == MONITOR_OPS
    assert {"watch", "watch_cancel"} == WATCH_OPS
    assert set(OPS) == LOGGED_OPS | READ_OPS | ADMIN_OPS | MONITOR_OPS | WATCH_OPS


def test_every_key_op_names_the_argument_holding_its_key() -> None:
    """Authorization reads the key from ``key_arg``: a read or write op without one
    would be checked against nothing."""
    for spec in OPS.values():
        if spec.multi_key:  # kv_txn: every key inside its args is judged (authz._decide_txn)
            assert spec.key_arg is None and spec.category == "write", spec.name
        elif spec.category in ("read", "write") or spec.name == "watch":
            assert spec.key_arg in spec.args_type.__struct_fields__, spec.name
        else:  # admin, monitor, session: no key
            assert spec.key_arg is None, spec.name


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        (request("kv_set", kind="Hello"), "kind", "unknown kind 'Hello'"),
        (request("kv_nope", {}), "op", "unknown op 'kv_nope'; expected one of backup_begin"),
        (request("kv_set", {"k": 1, "v": 2}), "args.k", "must be a string, got int"),
        (request("kv_set", {"k": "a"}), "args.v", "missing required field"),
        (request("kv_set", {"k": "", "v": 1}), "args.k", "must be a non-empty string"),
        (request("kv_set", {"k": "a", "v": 1, "ttl": 3}), "args.ttl", "unknown field"),
        (request("kv_set", [1]), "args", "must be an object, got array"),
        (request("kv_cas", {"k": "a", "v": 1}), "args.expected", "missing required field"),
        (
            request("kv_get", {"k": "a", "consistency": "eventual"}),
            "args.consistency",
            "must be one of 'linearizable', 'lease' or 'stale'",
        ),
        (request("kv_scan", {"prefix": "", "limit": 0}), "args.limit", "must be an integer >= 1"),
        (
            request("kv_scan", {"prefix": "", "limit": limits.SCAN_LIMIT_MAX + 1}),
            "args.limit",
            f"<= {limits.SCAN_LIMIT_MAX}",
        ),
        (
            request("kv_scan", {"prefix": "", "limit": "9"}),
            "args.limit",
            "must be an integer, got str",
        ),
        (request("kv_scan", {"limit": 9}), "args.prefix", "missing required field"),
        (request("kv_get", {"k": "a"}, client_id=...), "client_id", "missing required field"),
        (request("kv_get", {"k": "a"}, request_id=...), "request_id", "missing required field"),
        (request(..., {"k": "a"}), "op", "missing required field"),
        (request("kv_get", {"k": "a"}, client_id=""), "client_id", "length >= 1"),
        (request("kv_get", {"k": "a"}, request_id=5), "request_id", "must be a string, got int"),
        (
            request("kv_get", {"k": "a"}, request_id="r" * (limits.REQUEST_ID_CHARS_MAX + 1)),
            "request_id",
            f"length <= {limits.REQUEST_ID_CHARS_MAX}",
        ),
        (
            request("kv_get", {"k": "a"}, client_id="c" * (limits.CLIENT_ID_CHARS_MAX + 1)),
            "client_id",
            f"length <= {limits.CLIENT_ID_CHARS_MAX}",
        ),
    ],
)
def test_bad_requests_name_the_field(data: bytes, field: str, reason: str) -> None:
    with pytest.raises(BadRequest) as info:
        validate(data)
    assert info.value.field == field
    assert reason in info.value.reason
    assert str(info.value).startswith(f"{field}: ")


def test_number_beyond_float_range_is_refused() -> None:
    data = request("kv_set", {"k": "a", "v": 0}).replace(b'"v":0', b'"v":1e400')
    with pytest.raises(BadRequest) as info:
        validate(data)
    assert (info.value.field, info.value.reason) == ("args.v", "number out of range")


def test_key_limit_is_in_utf8_bytes() -> None:
    at_limit = "é" * (limits.KEY_BYTES_MAX // 2)  # 2 bytes each
    assert validate(request("kv_get", {"k": at_limit})).args["k"] == at_limit
    with pytest.raises(TooLarge, match=r"args\.k"):
        validate(request("kv_get", {"k": at_limit + "x"}))
    with pytest.raises(TooLarge, match=r"args\.prefix"):
        validate(request("kv_scan", {"prefix": "x" * (limits.KEY_BYTES_MAX + 1)}))


def test_value_limit_is_in_encoded_bytes() -> None:
    fits = "x" * (limits.VALUE_BYTES_MAX - 2)  # plus two quotes
    validate(request("kv_set", {"k": "a", "v": fits}))
    with pytest.raises(TooLarge, match=r"args\.v") as info:
        validate(request("kv_set", {"k": "a", "v": fits + "x"}))
    assert info.value.code == codes.TOO_LARGE
    with pytest.raises(TooLarge):
        validate(request("kv_cas", {"k": "a", "expected": None, "v": fits + "x"}))


def test_request_and_response_round_trip() -> None:
    req = ClientRequest(client_id="c", request_id="r", op="kv_set", args={"k": "a", "v": 1})
    env = decode_envelope(encode_request(req, 5, id=3))
    assert env.id == 3 and validate_request(env) == req
    resp = ok_response({"ok": True}, dedup=True)
    line = encode_response(resp, 6, id=3)
    assert "message" not in json.loads(line)["payload"]
    assert decode_response(decode_envelope(line)) == resp


def test_response_decoding_refuses_other_kinds_and_bad_fields() -> None:
    with pytest.raises(BadRequest, match="kind"):
        decode_response(decode_envelope(encode_envelope("X", {}, 1)))
    with pytest.raises(BadRequest) as info:
        decode_response(decode_envelope(encode_envelope("ClientResponse", {"ok": 1}, 1)))
    assert info.value.field == "ok"


def test_error_responses_carry_code_message_and_data() -> None:
    bad = error_response(BadRequest("args.k", "must be a string, got int"))
    assert (bad.ok, bad.code) == (False, codes.BAD_REQUEST)
    assert bad.result == {"field": "args.k", "reason": "must be a string, got int"}
    assert bad.message == "args.k: must be a string, got int"
    nl = error_response(NotLeader("n2", "127.0.0.1:7002", term=4), node="n1")
    assert nl.code == codes.NOT_LEADER
    assert nl.result == {"term": 4, "node": "n1", "leader": "n2", "leader_addr": "127.0.0.1:7002"}
    assert error_response(NotLeader(term=2), node="n1").result == {"term": 2, "node": "n1"}
    for exc, code in [
        (TooLarge("x"), codes.TOO_LARGE),
        (Timeout("t"), codes.TIMEOUT),
        (Unavailable("u"), codes.UNAVAILABLE),
        (RateLimited("r"), codes.RATE_LIMITED),
    ]:
        resp = error_response(exc)
        assert (resp.ok, resp.code, resp.message) == (False, code, str(exc))
    assert isinstance(resp, ClientResponse)
    long = error_response(LineTooLong(100, 101))
    assert (long.code, long.result) == (codes.TOO_LARGE, {"limit_bytes": 100})


def test_values_that_grow_when_re_encoded_are_measured_after_encoding() -> None:
    # 5 bytes per element as sent, 19 once re-encoded: under the limit as text,
    # over it as stored.
    n = limits.VALUE_BYTES_MAX // 10
    data = request("kv_set", {"k": "a", "v": 0}).replace(
        b'"v":0', b'"v":[' + b",".join([b"9e15"] * n) + b"]"
    )
    with pytest.raises(TooLarge, match=r"args\.v"):
        validate(data)


@settings(deadline=None)  # a loaded CI box must not fail a test on time
@given(
    mantissa=st.integers(min_value=0, max_value=9),
    exponent=st.integers(min_value=-320, max_value=308),
    sep=st.sampled_from(["e", "E", "e+", "e-"]),
)
def test_float_re_encoding_grows_at_most_eightfold(mantissa: int, exponent: int, sep: str) -> None:
    """The bound that lets small writes skip re-encoding their value (see _check_sizes)."""
    text = f"{mantissa}{sep}{exponent}".replace("e--", "e-").replace("e+-", "e-")
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError:
        assume(False)  # out of float range: refused by the gateway anyway
    encoded = msgspec.json.encode(value)
    assert len(encoded) <= 8 * len(text)


@pytest.mark.parametrize(
    ("op", "args", "field"),
    [
        ("member_add", {"node": "n4"}, "args.address"),
        ("member_add", {"node": "n4", "address": "nohostport"}, "args.address"),
        ("member_promote", {"node": ""}, "args.node"),
        ("leader_transfer", {"target": "n2"}, "args.target"),
    ],
)
def test_membership_ops_name_the_bad_field(op: str, args: dict[str, object], field: str) -> None:
    payload = {"client_id": "c", "request_id": "1", "op": op, "args": args}
    env = decode_envelope(encode_envelope("ClientRequest", payload, 0))
    with pytest.raises(BadRequest) as info:
        validate_request(env)
    assert info.value.field == field


def test_member_add_request_validates() -> None:
    payload = {"client_id": "c", "request_id": "1", "op": "member_add"}
    payload["args"] = {"node": "n4", "address": "127.0.0.1:7004"}  # type: ignore[assignment]
    req = validate_request(decode_envelope(encode_envelope("ClientRequest", payload, 0)))
    assert req.args == {"node": "n4", "address": "127.0.0.1:7004", "client_address": None}


def test_session_fields_are_optional_and_carried_when_given() -> None:
    legacy = validate(request("kv_set", {"k": "a", "v": 1}))
    assert legacy.session_fields() is None
    args = {"k": "a", "v": 1}
    sequenced = validate(request("kv_set", args, session=3, seq=9, ack_below=7))
    assert sequenced.session_fields() == {"session": 3, "seq": 9, "ack_below": 7}
    assert validate(request("session_open", {})).op == "session_open"


@pytest.mark.parametrize(
    ("head", "field"),
    [
        ({"session": 3, "seq": 9}, "ack_below"),
        ({"seq": 9, "ack_below": 1}, "session"),
        ({"session": 3, "seq": 2, "ack_below": 3}, "ack_below"),
        ({"session": 0, "seq": 2, "ack_below": 1}, "session"),
        ({"session": 1, "seq": "2", "ack_below": 1}, "seq"),
        ({"session": 1, "seq": 2**60, "ack_below": 1}, "seq"),
    ],
)
def test_session_fields_go_together_and_ack_below_is_at_most_seq(
    head: dict[str, Any], field: str
) -> None:
    with pytest.raises(BadRequest) as caught:
        validate(request("kv_set", {"k": "a", "v": 1}, **head))
    assert caught.value.field == field
