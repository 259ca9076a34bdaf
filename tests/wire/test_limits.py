"""Every wire limit (limits.py) gives its documented error and nothing else (docs/protocol.md)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resonetics import limits
from resonetics.errors import BadRequest, TooLarge
from resonetics.raft.entry import GENESIS, Entry, EntryType, chain_hash
from resonetics.raft.messages import AppendEntries, InstallSnapshot
from resonetics.raft.packing import unpacked
from resonetics.wire.client import ClientRequest, validate_request
from resonetics.wire.envelope import decode_envelope, encode_envelope
from resonetics.wire.peer import decode_peer, encode_peer
from resonetics.wire.shape import (
    _NOT_BRACKET,
    _SQUARE,
    bracket_skeleton,
    nesting_depth,
    outside_strings,
    value_shape,
)
from tests.wire.strategies import json_values


def _line(op: str, args_json: str) -> bytes:
    payload = f'{{"client_id":"c","request_id":"r","op":"{op}","args":{args_json}}}'
    return f'{{"kind":"ClientRequest","t":0,"v":1,"payload":{payload}}}'.encode()


def _validate(line: bytes) -> ClientRequest:
    return validate_request(decode_envelope(line))


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


# --- nesting -------------------------------------------------------------------------
def test_value_nested_past_depth_limit_is_bad_request() -> None:
    at_limit = _validate(_line("kv_set", f'{{"k":"a","v":{_nested(limits.JSON_DEPTH_MAX)}}}'))
    assert _depth(at_limit.args["v"]) == limits.JSON_DEPTH_MAX
    over = limits.JSON_DEPTH_MAX + 1
    with pytest.raises(BadRequest) as err:
        _validate(_line("kv_set", f'{{"k":"a","v":{_nested(over)}}}'))
    assert str(err.value) == f"args.v: nested deeper than {limits.JSON_DEPTH_MAX} levels"
    with pytest.raises(BadRequest) as err:
        _validate(_line("kv_cas", f'{{"k":"a","expected":{_nested(over)},"v":1}}'))
    assert err.value.field == "args.expected"
    objects = '{"a":' * over + "1" + "}" * over
    with pytest.raises(BadRequest, match=r"args\.v: nested deeper"):
        _validate(_line("kv_set", f'{{"k":"a","v":{objects}}}'))


@pytest.mark.parametrize("depth", [980, 100_000])
def test_value_nested_far_past_the_limit_is_refused_before_decoding(depth: int) -> None:
    """980 levels crashed a leader (hashing), 100,000 the decoder: neither decodes now."""
    with pytest.raises(BadRequest) as err:
        _validate(_line("kv_set", f'{{"k":"a","v":{_nested(depth)}}}'))
    assert err.value.field == "line"
    assert f"nested deeper than {limits.LINE_DEPTH_MAX} levels" in err.value.reason


def test_unclosed_brackets_are_refused_without_recursion() -> None:
    with pytest.raises(BadRequest, match="line: nested deeper"):
        decode_envelope(b'{"kind":"x","payload":' + b"[" * 100_000)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = json.dumps("[" * 5000 + '\\"{' * 100)
    req = _validate(_line("kv_set", f'{{"k":"a","v":{text}}}'))
    assert req.args["v"].startswith("[[[")


@settings(max_examples=300, deadline=None)
@given(value=json_values, junk=st.text(alphabet='[]{}"\\', max_size=8))
def test_nesting_depth_scan_is_exact_on_json_and_never_below_on_junk(value: Any, junk: str) -> None:
    text = json.dumps(value).encode()
    assert nesting_depth(text, cap=10_000) == _depth(value)
    assert value_shape(value, depth_max=10_000, items_max=10_000)[0] == _depth(value)
    # Not JSON: the scan may overestimate, never under (unclosed openers count).
    broken = text + junk.encode()
    assert nesting_depth(broken, cap=10_000) >= _depth(value)


def test_wide_value_is_bad_request() -> None:
    wide = "[" + ",".join(["0"] * (limits.JSON_ITEMS_MAX + 1)) + "]"
    with pytest.raises(BadRequest) as err:
        _validate(_line("kv_set", f'{{"k":"a","v":{wide}}}'))
    assert err.value.field == "args.v" and str(limits.JSON_ITEMS_MAX) in err.value.reason


# --- bytes and numbers ------------------------------------------------------------------
def test_non_utf8_line_is_bad_request_naming_the_byte() -> None:
    line = _line("kv_set", '{"k":"a","v":"XY"}')
    at = line.index(b"XY")
    with pytest.raises(BadRequest) as err:
        _validate(line.replace(b"XY", b"\xff\xfe"))
    assert str(err.value) == f"line: not valid UTF-8 (byte {at})"
    # A surrogate encoded in UTF-8 bytes (ED A0 80) is not UTF-8 either.
    with pytest.raises(BadRequest, match=f"line: not valid UTF-8 \\(byte {at}\\)"):
        _validate(line.replace(b"XY", b"\xed\xa0\x80"))


def test_lone_surrogate_escape_is_bad_request() -> None:
    with pytest.raises(BadRequest) as err:
        _validate(_line("kv_set", '{"k":"a","v":"\\ud800"}'))
    assert err.value.field == "line"


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400", "-1e999"])
def test_non_finite_number_is_bad_request(number: str) -> None:
    """inf would be stored as null by the encoder: a leader and its followers would differ."""
    with pytest.raises(BadRequest):
        _validate(_line("kv_set", f'{{"k":"a","v":{number}}}'))


def test_big_integer_round_trips_exactly_and_a_huge_one_is_bad_request() -> None:
    big = "9" * 4000
    req = _validate(_line("kv_set", f'{{"k":"a","v":{big}}}'))
    assert str(req.args["v"]) == big
    with pytest.raises(BadRequest) as err:
        _validate(_line("kv_set", f'{{"k":"a","v":{"9" * 5000}}}'))
    assert err.value.field == "args.v"


def test_duplicate_keys_keep_the_last_value_on_every_replica() -> None:
    """Harmless for determinism: the decoded value (last wins) is what the log carries."""
    req = _validate(_line("kv_set", '{"k":"a","v":{"x":1,"x":2}}'))
    assert req.args["v"] == {"x": 2}


# --- sizes ------------------------------------------------------------------------------
def test_oversized_expected_is_too_large() -> None:
    huge = json.dumps("x" * 13_000_000)
    with pytest.raises(TooLarge) as err:
        _validate(_line("kv_cas", f'{{"k":"a","expected":{huge},"v":1}}'))
    assert str(err.value) == (
        "args.expected: 13.0 MB (13000002 bytes) encoded, over the 256 KiB limit"
    )


def test_command_that_cannot_be_replicated_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A command whose entry would not fit in one AppendEntries is refused (TOO_LARGE)."""
    value = json.dumps("x" * 10_000)
    line = _line("kv_set", f'{{"k":"a","v":{value}}}')
    _validate(line)  # within every limit
    monkeypatch.setattr(limits, "COMMAND_BYTES_MAX", 5_000)
    with pytest.raises(TooLarge, match=r"payload: 10\.1 kB .* over the 5000 bytes limit"):
        _validate(line)


def test_largest_accepted_command_fits_in_one_append_entries() -> None:
    """A value and an expected at their limits, with key and ids at theirs, is one entry
    that one AppendEntries carries; so is a full CLIENT_BATCH at the worst re-encoding."""
    largest = (
        limits.VALUE_BYTES_MAX
        + limits.EXPECTED_BYTES_MAX
        + limits.KEY_BYTES_MAX
        + 4 * (limits.CLIENT_ID_CHARS_MAX + limits.REQUEST_ID_CHARS_MAX)
        + 256
    )
    assert largest <= limits.COMMAND_BYTES_MAX
    one = limits.COMMAND_BYTES_MAX + limits.COMMAND_OVERHEAD_BYTES + limits.ENTRY_OVERHEAD_BYTES
    assert one <= limits.APPEND_BYTES_MAX
    batch = (
        limits.BATCH_PAYLOAD_BYTES_MAX * limits.REENCODE_GROWTH_MAX
        + limits.BATCH_COMMANDS_MAX * limits.COMMAND_OVERHEAD_BYTES
        + limits.ENTRY_OVERHEAD_BYTES
    )
    assert batch <= limits.APPEND_BYTES_MAX
    assert limits.APPEND_BYTES_MAX * 2 <= limits.LINE_BYTES_MAX  # framing has room to spare


def test_deepest_accepted_value_hashes_and_travels_in_an_append_entries() -> None:
    """The deepest value a client may send, inside a CLIENT_BATCH entry inside an
    AppendEntries line, stays within LINE_DEPTH_MAX and encodes and decodes again."""
    value: Any = []
    for _ in range(limits.JSON_DEPTH_MAX - 1):
        value = [value]
    data = [{"client_id": "c", "request_id": "r", "op": "kv_set", "args": {"k": "a", "v": value}}]
    entry = Entry(
        term=1,
        index=1,
        type=EntryType.CLIENT_BATCH,
        data=data,
        hash=chain_hash(GENESIS.hash, 1, 1, EntryType.CLIENT_BATCH, data),
    )
    msg = AppendEntries(
        src="n1",
        dst="n2",
        term=1,
        leader_id="n1",
        prev_log_index=0,
        prev_log_term=0,
        prev_log_hash=GENESIS.hash,
        entries=[entry],
        leader_commit=0,
    )
    line = encode_peer(msg, 0)
    assert nesting_depth(line, cap=limits.LINE_DEPTH_MAX) <= limits.LINE_DEPTH_MAX
    got = decode_peer(decode_envelope(line))
    assert isinstance(got, AppendEntries)
    assert [unpacked(e) for e in got.entries] == [entry]


# --- peer messages -----------------------------------------------------------------------
def _append(entries: int) -> bytes:
    entry = {"term": 1, "index": 1, "type": "NOOP", "hash": "h"}
    payload = {
        "src": "n1",
        "dst": "n2",
        "term": 1,
        "leader_id": "n1",
        "prev_log_index": 0,
        "prev_log_term": 0,
        "prev_log_hash": "h",
        "entries": [entry] * entries,
        "leader_commit": 0,
    }
    return encode_envelope("AppendEntries", payload, 0)


def test_append_entries_with_more_entries_than_a_leader_sends_is_bad_request() -> None:
    decode_peer(decode_envelope(_append(limits.PEER_ENTRIES_MAX)))
    with pytest.raises(BadRequest) as err:
        decode_peer(decode_envelope(_append(limits.PEER_ENTRIES_MAX + 1)))
    assert err.value.field == "payload.entries"


def test_oversized_snapshot_chunk_and_long_node_id_are_bad_request() -> None:
    chunk = InstallSnapshot(
        src="n1",
        dst="n2",
        term=1,
        leader_id="n1",
        last_included_index=1,
        last_included_term=1,
        last_included_hash="h",
        offset=0,
        data="A" * (limits.SNAPSHOT_CHUNK_CHARS_MAX + 4),
        done=False,
        checksum="c",
        total_bytes=1,
    )
    with pytest.raises(BadRequest) as err:
        decode_peer(decode_envelope(encode_peer(chunk, 0)))
    assert err.value.field == "payload.data"
    long_id = encode_peer(
        AppendEntries(
            src="n" * (limits.NODE_ID_CHARS_MAX + 1),
            dst="n2",
            term=1,
            leader_id="n1",
            prev_log_index=0,
            prev_log_term=0,
            prev_log_hash="h",
            leader_commit=0,
        ),
        0,
    )
    with pytest.raises(BadRequest) as err:
        decode_peer(decode_envelope(long_id))
    assert err.value.field == "payload.src"


def _depth_a_decoder_reaches(text: str) -> int:
    """The deepest a JSON decoder gets on ``text`` before it finishes or stops at an error
    (a backslash or an unmatched closer outside a string): a byte-by-byte reference."""
    in_string = escaped = False
    depth = deepest = 0
    for c in text:
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == "\\":
            break
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in "]}":
            if depth == 0:
                break
            depth -= 1
    return deepest


@settings(max_examples=2000, deadline=None)
@given(text=st.text(alphabet='[]{}"\\a', max_size=40))
def test_nesting_depth_never_below_what_a_decoder_reaches_on_any_text(text: str) -> None:
    """Strings are removed without a regex now (escape pairs, then a split on quotes):
    on junk full of backslashes and quotes the scan still never underestimates."""
    assert nesting_depth(text.encode(), cap=10_000) >= _depth_a_decoder_reaches(text)


@settings(max_examples=300, deadline=None)
@given(value=json_values)
def test_strings_removed_are_exactly_the_json_strings(value: Any) -> None:
    text = json.dumps(value).encode()
    string = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # the regex it replaced
    assert outside_strings(text) == string.sub(b"", text)


@settings(max_examples=3000, deadline=None)
@given(text=st.text(alphabet='[]{}"\\a', max_size=60))
def test_bracket_skeleton_is_exactly_the_brackets_outside_strings(text: str) -> None:
    """The cheap skeleton (quotes kept, adjacent pairs dropped) equals the plain one on
    any text: JSON, unbalanced quotes, stray backslashes."""
    raw = text.encode()
    assert bracket_skeleton(raw) == outside_strings(raw).translate(_SQUARE, _NOT_BRACKET)


def test_a_long_line_with_brackets_in_its_strings_is_scanned_not_refused() -> None:
    """A line past the counted length, thousands of brackets in strings and real
    nesting just under the limit: accepted; one level more: refused."""
    inner = (
        "[" * (limits.JSON_DEPTH_MAX - 1)
        + '"'
        + "{[" * 2100
        + '"'
        + "]" * (limits.JSON_DEPTH_MAX - 1)
    )
    assert len(inner) > 2 * 2048  # past the length cleared by a count
    req = _validate(_line("kv_set", f'{{"k":"a","v":{inner}}}'))
    value = req.args["v"]
    for _ in range(limits.JSON_DEPTH_MAX - 1):
        value = value[0]
    assert value == "{[" * 2100
    deeper = (
        "[" * (limits.LINE_DEPTH_MAX + 1)
        + '"'
        + "{[" * 2100
        + '"'
        + "]" * (limits.LINE_DEPTH_MAX + 1)
    )
    with pytest.raises(BadRequest, match="line: nested deeper"):
        _validate(_line("kv_set", f'{{"k":"a","v":{deeper}}}'))
