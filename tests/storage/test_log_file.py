"""log.jsonl lines: checksummed JSON, verified on read, chain-checked."""

from __future__ import annotations

import gc
import json
import zlib

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resonetics.errors import StorageCorruption
from resonetics.raft.entry import GENESIS, Entry, EntryType, make_entry
from resonetics.raft.packing import unpacked
from resonetics.storage.log_file import LineError, decode_line, encode_line, parse_log
from tests.storage.chain import chain, log_of, plain

PATH = "/d/log.jsonl"
_SORTED = msgspec.json.Encoder(order="sorted")


def _file(entries_count: int) -> bytes:
    return b"".join(encode_line(e) for e in [GENESIS, *log_of(entries_count)])


def test_a_line_is_plain_json_with_the_entry_fields_and_a_crc() -> None:
    entry = log_of(1)[0]
    line = encode_line(entry)
    assert line.endswith(b"\n")
    doc = json.loads(line)
    assert set(doc) == {"term", "index", "type", "data", "hash", "crc"}
    assert (doc["index"], doc["hash"]) == (1, entry.hash)
    assert decode_line(line[:-1]) == entry


def _old_style_line(entry: Entry) -> bytes:
    """``entry``'s line as written before lines sorted their keys: data in the order
    the leader's dict had."""
    body = msgspec.json.encode(entry)
    return body[:-1] + b',"crc":"%08x"}\n' % zlib.crc32(body)


def test_a_loaded_client_entry_keeps_its_lines_canonical_bytes() -> None:
    """Lines are written with sorted keys, so a client entry's data on disk is the
    chain's canonical JSON: a restart keeps it packed as those very bytes (no dicts
    built, no second encode for the chain) and decodes other entries as before."""
    cmd = make_entry(
        GENESIS.hash, 1, 1, EntryType.CLIENT_CMD, {"op": "x", "args": {"b": 1, "a": 2}}
    )
    cfg = make_entry(cmd.hash, 1, 2, EntryType.CONFIG, {"voters": ["n1"]})
    line = encode_line(cmd)
    assert b'"data":{"args":{"a":2,"b":1},"op":"x"}' in line
    parsed = parse_log(encode_line(GENESIS) + line + encode_line(cfg), PATH)
    loaded = parsed.entries[1]
    assert type(loaded.data) is msgspec.Raw
    assert bytes(loaded.data) == _SORTED.encode(cmd.data)
    assert unpacked(loaded) == cmd and loaded.hash == cmd.hash
    assert parsed.entries[2] == cfg  # not a client entry: decoded


def test_a_line_written_with_unsorted_keys_still_loads_with_canonical_bytes() -> None:
    """A log written before lines sorted their keys holds client data in the leader's
    dict order. Its chain still links (over the canonical encoding), and the entry is
    kept with the canonical bytes, so what a leader sends from it links anywhere."""
    data = {"op": "kv_set", "client_id": "c", "args": {"v": 1, "k": "x"}}
    entries = [make_entry(GENESIS.hash, 1, 1, EntryType.CLIENT_CMD, data)]
    entries.append(make_entry(entries[0].hash, 1, 2, EntryType.CLIENT_CMD, data))
    old = b"".join(_old_style_line(e) for e in [GENESIS, *entries])
    assert b'"data":{"op":"kv_set"' in old
    parsed = parse_log(old, PATH)
    assert plain(parsed.entries) == [GENESIS, *entries]
    for loaded in parsed.entries[1:]:
        assert bytes(loaded.data) == _SORTED.encode(data)
    forged = msgspec.structs.replace(entries[1], data={**data, "op": "kv_delete"})
    with pytest.raises(StorageCorruption, match="hash chain") as info:
        parse_log(b"".join(_old_style_line(e) for e in [GENESIS, entries[0], forged]), PATH)
    assert info.value.line == 3


@pytest.mark.parametrize("cut", [1, 5, 20, 60])
def test_a_truncated_line_fails_its_check(cut: int) -> None:
    line = encode_line(log_of(1)[0])[:-1]
    with pytest.raises(LineError):
        decode_line(line[:-cut])


def test_a_flipped_byte_fails_the_checksum() -> None:
    line = bytearray(encode_line(log_of(1)[0])[:-1])
    line[10] ^= 0x01
    with pytest.raises(LineError, match="checksum"):
        decode_line(bytes(line))


def test_a_clean_file_parses_whole() -> None:
    parsed = parse_log(_file(5), PATH)
    assert [e.index for e in parsed.entries] == [0, 1, 2, 3, 4, 5]
    assert parsed.torn is None
    assert parsed.valid_end == len(_file(5))


def test_a_torn_last_line_is_reported_as_a_tail_to_cut() -> None:
    data = _file(5)
    torn = data[:-7]
    parsed = parse_log(torn, PATH)
    assert parsed.torn is not None and parsed.torn_line == 6
    assert [e.index for e in parsed.entries] == [0, 1, 2, 3, 4]
    assert parsed.valid_end == len(_file(4))


def test_a_last_line_with_a_bad_checksum_is_a_tail_to_cut() -> None:
    data = bytearray(_file(3))
    data[-30] ^= 0x01
    parsed = parse_log(bytes(data), PATH)
    assert parsed.torn is not None and len(parsed.entries) == 3


def test_a_bad_line_before_the_end_is_corruption_naming_line_and_index() -> None:
    data = bytearray(_file(5))
    start = len(_file(2))
    data[start + 12] ^= 0x01  # inside the line of index 3 (line 4)
    with pytest.raises(StorageCorruption) as info:
        parse_log(bytes(data), PATH)
    assert (info.value.path, info.value.line, info.value.index) == (PATH, 4, 3)


ZEROS = bytes(4096)  # space allocated ahead of the lines (FileSystem.allocate)


def test_zeros_after_the_last_line_are_allocated_space_not_a_torn_tail() -> None:
    parsed = parse_log(_file(5) + ZEROS, PATH)
    assert [e.index for e in parsed.entries] == [0, 1, 2, 3, 4, 5]
    assert parsed.torn is None
    assert parsed.valid_end == len(_file(5)) and parsed.size == len(_file(5)) + len(ZEROS)


def test_a_torn_last_line_before_allocated_zeros_is_a_tail_to_cut() -> None:
    data = _file(5)
    parsed = parse_log(data[:-7] + ZEROS, PATH)
    assert parsed.torn is not None and parsed.torn_line == 6
    assert parsed.valid_end == len(_file(4))
    bad_crc = bytearray(data)
    bad_crc[-30] ^= 0x01  # a whole last line, newline and all, then zeros
    parsed = parse_log(bytes(bad_crc) + ZEROS, PATH)
    assert parsed.torn is not None and parsed.torn_line == 6 and len(parsed.entries) == 5


def test_a_line_with_a_sector_never_written_is_torn_and_cut_with_all_after_it() -> None:
    """A crash with a batch written in place may leave any of its pages on disk: a
    line holding zeros (never written) with whole lines after it. None of it was
    synced (an fsync covers the whole batch), so it is a tail to cut, not damage."""
    data = bytearray(_file(8) + ZEROS)
    start = len(_file(4))  # the line of index 5 (line 6), and whole lines 7..9 after it
    data[start + 10 : start + 60] = bytes(50)
    parsed = parse_log(bytes(data), PATH)
    assert parsed.torn is not None and "never written" in parsed.torn
    assert parsed.torn_line == 6
    assert [e.index for e in parsed.entries] == [0, 1, 2, 3, 4]
    assert parsed.valid_end == start


def test_a_bad_line_without_zeros_before_more_lines_is_still_corruption() -> None:
    """Only a zero byte marks a sector never written: a flipped byte in the middle is
    damage, even when allocated zeros follow the lines."""
    data = bytearray(_file(5) + ZEROS)
    data[len(_file(2)) + 12] ^= 0x01
    with pytest.raises(StorageCorruption) as info:
        parse_log(bytes(data), PATH)
    assert (info.value.line, info.value.index) == (4, 3)


def test_an_entry_that_does_not_link_is_corruption_even_when_last() -> None:
    entries = log_of(4)
    forged = chain(entries[2], 1, tag="forged")[0]
    other = chain(log_of(3, term=9)[-1], 1)[0]
    data = b"".join(encode_line(e) for e in [GENESIS, *entries[:3], forged])
    assert unpacked(parse_log(data, PATH).entries[-1]) == forged
    bad = b"".join(encode_line(e) for e in [GENESIS, *entries[:3], other])
    with pytest.raises(StorageCorruption, match="hash chain") as info:
        parse_log(bad, PATH)
    assert info.value.line == 5


def test_an_index_gap_is_corruption() -> None:
    entries = log_of(5)
    data = b"".join(encode_line(e) for e in [GENESIS, *entries[:2], *entries[3:]])
    with pytest.raises(StorageCorruption, match="does not follow"):
        parse_log(data, PATH)


def test_the_first_line_must_be_an_anchor() -> None:
    data = b"".join(encode_line(e) for e in log_of(3))
    with pytest.raises(StorageCorruption, match="anchor") as info:
        parse_log(data, PATH)
    assert info.value.line == 1


def test_a_line_with_a_valid_crc_but_no_entry_inside_is_corruption_not_a_torn_tail() -> None:
    body = b'{"term":1,"index":1,"type":"BOGUS","data":null,"hash":"x"}'
    line = body[:-1] + b',"crc":"%08x"}\n' % zlib.crc32(body)
    with pytest.raises(StorageCorruption, match="not a valid entry") as info:
        parse_log(encode_line(GENESIS) + line, PATH)
    assert info.value.line == 2


@pytest.mark.parametrize(("field", "value"), [("term", 1), ("index", 2)])
def test_a_line_with_a_negative_term_or_index_is_corruption_named_at_its_line(
    field: str, value: int
) -> None:
    """Refused by the line decoder itself (``_LogLine``'s constraints), so the check
    costs no pass of its own over a million lines; the line is still named."""
    entries = [GENESIS, *log_of(3)]
    was, now = f'"{field}":{value}'.encode(), f'"{field}":-{value}'.encode()
    body = _SORTED.encode(entries[2]).replace(was, now)
    assert now in body
    forged = body[:-1] + b',"crc":"%08x"}\n' % zlib.crc32(body)
    lines = [encode_line(e) for e in entries]
    lines[2] = forged
    with pytest.raises(StorageCorruption, match=f"not a valid entry.*>= 0.*{field}") as info:
        parse_log(b"".join(lines), PATH)
    assert info.value.line == 3
    with pytest.raises(LineError, match="negative term or index"):
        decode_line(forged[:-1])


def test_offsets_point_at_each_line() -> None:
    data = _file(4)
    parsed = parse_log(data, PATH)
    for entry, offset in zip(parsed.entries, parsed.offsets, strict=True):
        end = data.index(b"\n", offset)
        assert decode_line(data[offset:end]) == unpacked(entry)


@pytest.mark.parametrize("kind", ["hash", "term", "index", "anchor_type"])
def test_the_fast_chain_check_names_the_line_and_index_of_a_break_mid_log(kind: str) -> None:
    """parse_log checks the chain in one tight loop (storage/log_file._first_unlinked);
    a break found there is still reported by the plain rules, naming line and index."""
    entries = log_of(400)
    k = 250  # entries[k] is on line k + 2 (GENESIS is line 1)
    e = entries[k]
    if kind == "hash":
        bad = chain(entries[k - 1], 1, tag="forged")[0]
        bad = type(e)(term=e.term, index=e.index, type=e.type, data=bad.data, hash=e.hash)
    elif kind == "term":
        entries = [*log_of(k, term=2), *chain(log_of(k, term=2)[-1], 150, term=2)]
        bad = chain(entries[k - 1], 1, term=1)[0]
    elif kind == "index":
        bad = chain(entries[k], 1)[0]  # index k + 2 where k + 1 belongs
    else:
        bad = type(e)(term=e.term, index=e.index, type=GENESIS.type, data=None, hash=e.hash)
    data = b"".join(encode_line(x) for x in [GENESIS, *entries[:k], bad, *entries[k + 1 :]])
    with pytest.raises(StorageCorruption) as info:
        parse_log(data, PATH)
    assert info.value.line == k + 2
    assert info.value.index == bad.index
    assert info.value.path == PATH


def test_the_fast_chain_check_accepts_what_the_plain_rules_accept() -> None:
    """A long clean log parses whole, with the offset of every line (the oracle: the
    file's own line starts)."""
    entries = log_of(1000)
    data = b"".join(encode_line(e) for e in [GENESIS, *entries])
    parsed = parse_log(data, PATH)
    assert plain(parsed.entries) == [GENESIS, *entries]
    starts = [0, *[i + 1 for i, b in enumerate(data) if b == ord("\n")][:-1]]
    assert parsed.offsets == starts
    assert parsed.valid_end == len(data)


def test_parse_log_leaves_the_garbage_collector_as_it_found_it() -> None:
    """The parse pauses cyclic collection (log_file._gc_paused) and restores it,
    even when it raises."""
    good = b"".join(encode_line(e) for e in [GENESIS, *log_of(3)])
    bad = b"".join(encode_line(e) for e in log_of(3))
    assert gc.isenabled()
    parse_log(good, PATH)
    assert gc.isenabled()
    with pytest.raises(StorageCorruption):
        parse_log(bad, PATH)
    assert gc.isenabled()
    gc.disable()
    try:
        parse_log(good, PATH)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_valid_crc_around_a_bad_entry_deep_in_the_file_is_named_by_line_and_index() -> None:
    """The whole-file decode fails; the line-by-line fallback names the line."""
    entries = log_of(300)
    body = b'{"term":1,"index":201,"type":"BOGUS","data":null,"hash":"x"}'
    bogus = body[:-1] + b',"crc":"%08x"}\n' % zlib.crc32(body)
    head = b"".join(encode_line(e) for e in [GENESIS, *entries[:200]])
    tail = b"".join(encode_line(e) for e in entries[201:])
    with pytest.raises(StorageCorruption, match="not a valid entry") as info:
        parse_log(head + bogus + tail, PATH)
    assert (info.value.line, info.value.index) == (202, 201)


def _parse_line_by_line(data: bytes) -> tuple[str, object]:
    """What ``parse_log`` must say of ``data``, from ``decode_line`` on each line: the
    good entries, the torn line and where the good lines end; or the corrupt line."""
    lines = data.split(b"\n")
    partial = lines.pop()
    good = []
    for lineno, line in enumerate(lines, start=1):
        try:
            good.append(decode_line(line))
        except LineError:
            if lineno == len(lines) and not partial:
                return "torn", (good, lineno, sum(len(x) + 1 for x in lines[: lineno - 1]))
            return "corrupt", lineno
    torn_line = len(lines) + 1 if partial else None
    return "ok" if torn_line is None else "torn", (good, torn_line, len(data) - len(partial))


@settings(max_examples=300, deadline=None)
@given(
    count=st.integers(min_value=0, max_value=12),
    damage=st.lists(
        st.tuples(
            st.sampled_from(["flip", "flip-near-end", "cut", "drop", "newline"]),
            st.integers(0, 10**6),
        ),
        max_size=3,
    ),
)
def test_parse_log_agrees_with_checking_each_line_on_its_own(
    count: int, damage: list[tuple[str, int]]
) -> None:
    """The in-place CRC scan and the whole-file decode find exactly what checking and
    decoding every line by itself finds: the same entries, torn line and valid end,
    or corruption on the same line, whatever bytes are flipped, cut or dropped."""
    data = bytearray(_file(count))
    for kind, where in damage:
        if not data:
            break
        at = where % len(data)
        if kind == "flip":
            data[at] ^= 1 << (where % 8)
        elif kind == "flip-near-end":  # the CRC digits and the closing '"}' of a line
            ends = [i for i, byte in enumerate(data) if byte == ord("\n")] or [len(data)]
            end = ends[where % len(ends)]
            data[max(0, end - 1 - where % 12)] ^= 1 << (where % 7)
        elif kind == "cut":
            del data[at:]
        elif kind == "drop":
            del data[at]
        else:
            data[at] = ord("\n")
    expected_kind, expected = _parse_line_by_line(bytes(data))
    try:
        parsed = parse_log(bytes(data), PATH)
    except StorageCorruption as exc:
        if expected_kind == "corrupt":
            assert exc.line == expected
        else:  # the lines decode, but their chain or anchor is broken
            good = expected[0]  # type: ignore[index]
            assert exc.line is not None and exc.line <= len(good)
        return
    assert expected_kind != "corrupt", f"line {expected} is bad, parse_log took it"
    good, torn_line, valid_end = expected  # type: ignore[misc]
    assert plain(parsed.entries) == good
    assert parsed.torn_line == torn_line
    assert parsed.valid_end == valid_end
    assert len(parsed.offsets) == len(good)


def test_a_valid_crc_around_nesting_deeper_than_the_interpreter_allows_is_corruption() -> None:
    """Nothing bounds a file's depth before it is decoded (network lines are bounded):
    msgspec gives up with a RecursionError, which must name the line, not crash."""
    deep = b"[" * 100_000 + b"]" * 100_000
    body = b'{"term":1,"index":1,"type":"CLIENT_CMD","data":' + deep + b',"hash":"x"}'
    line = body[:-1] + b',"crc":"%08x"}\n' % zlib.crc32(body)
    with pytest.raises(StorageCorruption, match="not a valid entry") as info:
        parse_log(encode_line(GENESIS) + line + encode_line(GENESIS), PATH)
    assert (info.value.line, info.value.index) == (2, 1)
