"""``kv_txn`` and the new ``kv_scan``/``kv_get`` args at the gateway: every bad input
is refused before anything is logged, naming its field."""

from __future__ import annotations

from typing import Any

import pytest

from resonetics import limits
from resonetics.errors import BadRequest, TooLarge
from resonetics.wire.client import validate_request
from resonetics.wire.envelope import decode_envelope, encode_envelope


def _validate(op: str, args: Any) -> dict[str, Any]:
    payload = {"client_id": "c1", "request_id": "r1", "op": op, "args": args}
    return validate_request(decode_envelope(encode_envelope("ClientRequest", payload, 1))).args


def _cmp(**over: Any) -> dict[str, Any]:
    return {"key": "a", "target": "value", "op": "==", "against": 1, **over}


def test_valid_txn_comes_out_as_plain_json_with_else_and_defaults() -> None:
    args = _validate(
        "kv_txn",
        {
            "compare": [{"key": "a", "target": "version", "against": 0}],
            "then": [{"type": "put", "key": "a", "value": None}],
            "else": [{"type": "get", "key": "a"}],
        },
    )
    assert args == {
        "compare": [{"key": "a", "target": "version", "op": "==", "against": 0}],
        "then": [{"type": "put", "key": "a", "value": None}],
        "else": [{"type": "get", "key": "a"}],
    }


@pytest.mark.parametrize(
    ("args", "field", "reason"),
    [
        ({"compare": [_cmp(target="colour")]}, "args.compare[0].target", "expected one of value"),
        ({"compare": [_cmp(), _cmp(), _cmp(op="<")]}, "args.compare[2].op", "allows ==, !="),
        ({"compare": [_cmp(target="exists", against=1)]}, "args.compare[0].against", "true or"),
        ({"compare": [_cmp(target="version", against=-1)]}, "args.compare[0].against", ">= 0"),
        ({"compare": [_cmp(target="mod_index", against="3")]}, "args.compare[0].against", ""),
        ({"compare": [_cmp(key="")]}, "args.compare[0].key", "non-empty"),
        ({"compare": [_cmp(key=3)]}, "args.compare[0].key", "must be a string"),
        ({"compare": [{"key": "a"}]}, "args.compare[0].target", "missing"),
        ({"compare": [_cmp(extra=1)]}, "args.compare[0].extra", "unknown field"),
        ({"then": [{"type": "nuke", "key": "a"}]}, "args.then[0].type", "expected one of put"),
        ({"then": [{"type": "put", "key": "a"}]}, "args.then[0].value", "needs a value"),
        ({"else": [{"type": "get", "key": "a", "value": 1}]}, "args.else[0].value", "only a put"),
        (
            {"then": [{"type": "put", "key": "a", "value": 1}, {"type": "delete", "key": "a"}]},
            "args.then[1].key",
            "written twice",
        ),
        ({"then": {"type": "get"}}, "args.then", "must be an array"),
        ({"otherwise": []}, "args.otherwise", "unknown field"),
        (
            {"compare": [_cmp()] * (limits.TXN_COMPARES_MAX + 1)},
            "args.compare",
            f"at most {limits.TXN_COMPARES_MAX} compares",
        ),
        (
            {"then": [{"type": "get", "key": "a"}] * (limits.TXN_OPS_MAX + 1)},
            "args.then",
            f"at most {limits.TXN_OPS_MAX} ops",
        ),
    ],
)
def test_bad_txn_is_refused_naming_the_field(args: Any, field: str, reason: str) -> None:
    with pytest.raises(BadRequest) as caught:
        _validate("kv_txn", args)
    assert caught.value.field == field
    assert reason in caught.value.reason


def test_txn_values_and_keys_have_the_store_limits() -> None:
    big = "x" * limits.VALUE_BYTES_MAX
    with pytest.raises(TooLarge, match=r"args.then\[0\].value"):
        _validate("kv_txn", {"then": [{"type": "put", "key": "a", "value": big}]})
    long_key = "k" * (limits.KEY_BYTES_MAX + 1)
    with pytest.raises(TooLarge, match=r"args.else\[0\].key"):
        _validate("kv_txn", {"else": [{"type": "get", "key": long_key}]})
    with pytest.raises(TooLarge, match=r"args.compare\[0\].against"):
        _validate("kv_txn", {"compare": [_cmp(against=big)]})


def test_txn_values_nested_too_deep_are_refused() -> None:
    deep: Any = 1
    for _ in range(limits.JSON_DEPTH_MAX + 1):
        deep = [deep]
    with pytest.raises(BadRequest) as caught:
        _validate("kv_txn", {"then": [{"type": "put", "key": "a", "value": deep}]})
    assert caught.value.field.startswith("args.then[0].value")


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"prefix": "a", "after": 3}, "args.after"),
        ({"prefix": "a", "at_index": -1}, "args.at_index"),
        ({"prefix": "a", "meta": "yes"}, "args.meta"),
        ({"prefix": "a", "cursor": "x"}, "args.cursor"),
    ],
)
def test_bad_scan_cursor_args_are_refused(args: dict[str, Any], field: str) -> None:
    with pytest.raises(BadRequest) as caught:
        _validate("kv_scan", args)
    assert caught.value.field == field


def test_scan_after_longer_than_a_key_is_too_large() -> None:
    with pytest.raises(TooLarge, match=r"args\.after"):
        _validate("kv_scan", {"prefix": "", "after": "k" * (limits.KEY_BYTES_MAX + 1)})
