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
