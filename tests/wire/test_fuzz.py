"""Fuzzing the gateway: whatever arrives, only typed errors come out (DESIGN §5)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from resonetics.errors import BadRequest, TooLarge
from resonetics.wire.client import validate_request
from resonetics.wire.envelope import Envelope, decode_envelope
from resonetics.wire.framing import LineBuffer
from resonetics.wire.peer import decode_hello, decode_peer
from tests.wire.strategies import json_values

_EXPECTED = (BadRequest, TooLarge)


def _assert_typed(exc: Exception) -> None:
    """A gateway error names its field (BadRequest) or its size (TooLarge), nothing else."""
    assert isinstance(exc, _EXPECTED), f"untyped error escaped: {exc!r}"
    if isinstance(exc, BadRequest):
        assert exc.field and exc.reason and str(exc) == f"{exc.field}: {exc.reason}"


def _through_every_decoder(data: bytes) -> None:
    try:
        env = decode_envelope(data)
    except _EXPECTED as exc:
        _assert_typed(exc)
        return
    decoders: tuple[Callable[[Envelope], object], ...] = (
        validate_request,
        decode_peer,
        decode_hello,
    )
    for decode in decoders:
        try:
            decode(env)
        except _EXPECTED as exc:
            _assert_typed(exc)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200))
def test_random_bytes_give_only_typed_errors(data: bytes) -> None:
    _through_every_decoder(data)
    for line in LineBuffer(64).feed(data[:64] + b"\n"):
        _through_every_decoder(line)


_ops = st.sampled_from(["kv_set", "kv_get", "kv_delete", "kv_cas", "kv_scan", "status", "x"])
_kinds = st.sampled_from(["ClientRequest", "AppendEntries", "Hello", "TimeoutNow", "", "?"])
_maybe = st.one_of(json_values, st.just(...))
_args = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "k": json_values,
            "v": json_values,
            "expected": json_values,
            "prefix": json_values,
            "limit": json_values,
            "consistency": json_values,
        },
    ),
)


@settings(max_examples=200, deadline=None)
@given(
    kind=st.one_of(_kinds, json_values),
    op=st.one_of(_ops, json_values),
    args=_args,
    cid=_maybe,
    rid=_maybe,
    t=_maybe,
    v=_maybe,
    payload_is_object=st.booleans(),
)
def test_random_json_requests_give_a_request_or_a_typed_error(
    kind: Any, op: Any, args: Any, cid: Any, rid: Any, t: Any, v: Any, payload_is_object: bool
) -> None:
    payload: Any = {"client_id": cid, "request_id": rid, "op": op, "args": args}
    payload = {k: x for k, x in payload.items() if x is not ...} if payload_is_object else args
    env: dict[str, Any] = {"kind": kind, "payload": payload, "t": t, "v": v}
    data = json.dumps({k: x for k, x in env.items() if x is not ...}).encode()
    _through_every_decoder(data)


def _wrap(value: Any, shells: list[bool]) -> Any:
    for as_list in shells:
        value = [value] if as_list else {"x": value}
    return value


@settings(max_examples=200, deadline=None)
@given(
    op=st.sampled_from(["kv_set", "kv_cas"]),
    inner=json_values,
    shells=st.lists(st.booleans(), max_size=120),
)
def test_values_of_any_depth_give_a_request_or_a_typed_error(
    op: str, inner: Any, shells: list[bool]
) -> None:
    """Around the depth limits (value 32, line 48) and far past them."""
    value = _wrap(inner, shells)
    args = {"k": "a", "v": value, "expected": value} if op == "kv_cas" else {"k": "a", "v": value}
    payload = {"client_id": "c", "request_id": "r", "op": op, "args": args}
    data = json.dumps({"kind": "ClientRequest", "payload": payload, "t": 0, "v": 1}).encode()
    _through_every_decoder(data)


_VALID_LINE = (
    b'{"kind":"ClientRequest","t":0,"v":1,"payload":{"client_id":"c","request_id":"r",'
    b'"op":"kv_set","args":{"k":"a","v":["x",{"y":1.5}]}}}'
)


@settings(max_examples=400, deadline=None)
@given(
    at=st.integers(min_value=0, max_value=len(_VALID_LINE)),
    cut=st.integers(min_value=0, max_value=8),
    junk=st.binary(max_size=12) | st.sampled_from([b"[" * 2000, b"{" * 2000, b"\xed\xa0\x80"]),
)
def test_mutated_valid_lines_give_a_request_or_a_typed_error(
    at: int, cut: int, junk: bytes
) -> None:
    """A valid request with bytes replaced anywhere (non-UTF-8, bracket storms, ...)."""
    _through_every_decoder(_VALID_LINE[:at] + junk + _VALID_LINE[at + cut :])
