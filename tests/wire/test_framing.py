"""LineBuffer: complete lines out, oversize and slow-loris lines cut early."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resonetics.errors import LineTooLong, TooLarge
from resonetics.wire.framing import LineBuffer


def test_lines_split_across_feeds_are_joined() -> None:
    buf = LineBuffer(100)
    assert buf.feed(b'{"a"') == []
    assert buf.pending_bytes == 4
    assert buf.feed(b":1}\n{") == [b'{"a":1}']
    assert buf.feed(b"}\n\n\r\nx\r\n") == [b"{}", b"x"]
    assert buf.pending_bytes == 0


def test_partial_line_over_limit_is_refused_before_the_newline_arrives() -> None:
    buf = LineBuffer(10)
    buf.feed(b"x" * 10)
    with pytest.raises(LineTooLong) as info:
        buf.feed(b"y")
    assert info.value.limit_bytes == 10 and info.value.seen_bytes == 11
    assert isinstance(info.value, TooLarge) and info.value.code == "TOO_LARGE"
    assert buf.pending_bytes == 0  # nothing of the oversize line is kept


def test_complete_line_over_limit_in_one_chunk_is_refused() -> None:
    with pytest.raises(LineTooLong):
        LineBuffer(4).feed(b"ok\n12345\n")


def test_line_exactly_at_limit_is_accepted() -> None:
    assert LineBuffer(5).feed(b"12345\n") == [b"12345"]


def test_buffer_stays_poisoned_after_overflow() -> None:
    buf = LineBuffer(3)
    with pytest.raises(LineTooLong):
        buf.feed(b"abcd")
    with pytest.raises(LineTooLong):
        buf.feed(b"\n")


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_line_bytes"):
        LineBuffer(0)


@settings(deadline=None)  # a loaded CI box must not fail a test on time
@given(
    lines=st.lists(
        st.binary(min_size=1, max_size=30)
        .map(lambda b: b.replace(b"\n", b""))
        .filter(lambda b: b and not b.endswith(b"\r")),
        max_size=10,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=10),
)
def test_any_chunking_yields_the_same_lines(lines: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(x + b"\n" for x in lines)
    points = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    buf = LineBuffer(64)
    out: list[bytes] = []
    for a, b in itertools.pairwise(points):
        out.extend(buf.feed(stream[a:b]))
    assert out == lines
