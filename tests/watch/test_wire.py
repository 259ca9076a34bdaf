"""Watch requests at the gateway and in the authorization decision."""

from __future__ import annotations

from typing import Any

import pytest

from resonetics import limits
from resonetics.errors import BadRequest, TooLarge
from resonetics.security.authz import Grants, decide
from resonetics.wire.client import validate_request
from resonetics.wire.envelope import decode_envelope, encode_envelope
from resonetics.wire.watch import WatchEnd, WatchEvents, decode_watch_message


def _validate(args: Any, op: str = "watch") -> Any:
    payload = {"client_id": "c", "request_id": "r", "op": op, "args": args}
    return validate_request(decode_envelope(encode_envelope("ClientRequest", payload, 0, 1)))


def test_watch_args_default_to_now() -> None:
    assert _validate({"prefix": "a/"}).args == {"prefix": "a/", "from_index": None}


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({}, "args.prefix"),
        ({"prefix": None}, "args.prefix"),
        ({"prefix": "a", "from_index": 0}, "args.from_index"),
        ({"prefix": "a", "from_index": -5}, "args.from_index"),
        ({"prefix": "a", "from_index": 2**53 + 1}, "args.from_index"),
        ({"prefix": "a", "from_index": 1.5}, "args.from_index"),
        ({"prefix": "a", "from_index": True}, "args.from_index"),
        ({"prefix": "a", "limit": 5}, "args.limit"),
    ],
)
def test_bad_watch_args_name_the_field(args: dict[str, Any], field: str) -> None:
    with pytest.raises(BadRequest) as caught:
        _validate(args)
    assert caught.value.field == field


def test_a_watch_prefix_longer_than_a_key_is_too_large() -> None:
    with pytest.raises(TooLarge):
        _validate({"prefix": "p" * (limits.KEY_BYTES_MAX + 1)})


def test_watch_cancel_needs_the_watch_id() -> None:
    assert _validate({"watch": 3}, "watch_cancel").args == {"watch": 3}
    with pytest.raises(BadRequest):
        _validate({}, "watch_cancel")
    with pytest.raises(BadRequest):
        _validate({"watch": [1]}, "watch_cancel")


def test_watch_needs_a_read_grant_covering_the_whole_prefix() -> None:
    app = Grants(read=("app/",), write=("app/",))
    assert decide(app, "watch", {"prefix": "app/"}).allowed
    assert decide(app, "watch", {"prefix": "app/sub/"}).allowed
    refused = decide(app, "watch", {"prefix": "ap"})
    assert not refused.allowed and "no read grant covers prefix 'ap'" in refused.reason
    assert not decide(app, "watch", {"prefix": ""}).allowed


def test_a_write_only_grant_may_not_watch() -> None:
    writer = Grants(write=("",))
    assert not decide(writer, "watch", {"prefix": "x"}).allowed


def test_watch_cancel_is_allowed_to_anyone_since_it_ends_only_the_connections_own() -> None:
    assert decide(Grants(), "watch_cancel", {"watch": 1}).allowed


def test_stream_messages_decode_by_kind() -> None:
    event = {"index": 3, "term": 1, "hash": "h", "key": "k", "kind": "put", "value": 1}
    line = encode_envelope("WatchEvents", {"events": [event]}, 0, 9)
    decoded = decode_watch_message(decode_envelope(line.rstrip(b"\n")))
    assert isinstance(decoded, WatchEvents) and decoded.events[0].index == 3
    end = {"code": "WATCH_TOO_SLOW", "message": "m", "last_index": 4}
    decoded = decode_watch_message(decode_envelope(encode_envelope("WatchEnd", end, 0, 9)))
    assert isinstance(decoded, WatchEnd) and decoded.last_index == 4
    with pytest.raises(BadRequest):
        decode_watch_message(decode_envelope(encode_envelope("Nonsense", {}, 0, 9)))
    with pytest.raises(BadRequest):
        decode_watch_message(decode_envelope(encode_envelope("WatchEnd", {"code": 1}, 0, 9)))
