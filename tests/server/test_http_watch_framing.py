"""The HTTP stream's reframing of the hub's envelope lines: NDJSON lines, SSE messages
whose ids mean "complete through", and the buffer the hub's bound is checked against."""

from __future__ import annotations

import json
from typing import Any

import pytest

from resonetics.server.http_watch import _StreamConn
from resonetics.wire import codes
from resonetics.wire.envelope import encode_envelope
from resonetics.wire.watch import (
    END_KIND,
    EVENTS_KIND,
    PROGRESS_KIND,
    WatchEnd,
    WatchEvent,
    WatchProgress,
)


class FakeSocket:
    def __init__(self, buffered: int = 0) -> None:
        self.buffered = buffered
        self.closing = False

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return self.closing


def _event(index: int, key: str, value: Any = 1) -> WatchEvent:
    return WatchEvent(index=index, term=2, hash=f"h{index}", key=key, kind="put", value=value)


def _hub_lines() -> bytes:
    """Two entries in one message (the second a txn of two changes), a progress, an end."""
    events = encode_envelope(
        EVENTS_KIND, {"events": [_event(3, "a/1"), _event(5, "a/2"), _event(5, "a/3")]}, 0, 1
    )
    progress = encode_envelope(PROGRESS_KIND, WatchProgress(index=6, term=2, hash="h6"), 0, 1)
    end = encode_envelope(
        END_KIND, WatchEnd(code=codes.WATCH_TOO_SLOW, message="slow", last_index=6), 0, 1
    )
    return events + progress + end  # the outbox joins what it holds for one connection


def test_ndjson_lines_carry_a_type_and_the_event_fields() -> None:
    conn = _StreamConn(FakeSocket(), sse=False)
    conn.start({"from_index": 1, "oldest_index": 1, "applied_index": 2})
    conn.write(_hub_lines())
    lines = [json.loads(line) for line in conn.drain().splitlines()]
    assert [m["type"] for m in lines] == ["start", "event", "event", "event", "progress", "end"]
    assert lines[1] == {"type": "event", "index": 3, "term": 2, "hash": "h3", "key": "a/1",
                        "kind": "put", "value": 1}  # fmt: skip
    assert lines[4] == {"type": "progress", "index": 6, "term": 2, "hash": "h6"}
    assert lines[5] == {"type": "end", "code": "WATCH_TOO_SLOW", "message": "slow",
                        "last_index": 6}  # fmt: skip
    assert conn.ended is not None and conn.ended.code == codes.WATCH_TOO_SLOW


def test_sse_ids_only_mark_whole_entries() -> None:
    conn = _StreamConn(FakeSocket(), sse=True)
    conn.write(_hub_lines())
    messages = conn.drain().decode().split("\n\n")[:-1]
    ids = [next((f[4:] for f in m.split("\n") if f.startswith("id: ")), None) for m in messages]
    # a/1 completes entry 3; a/2 is half of entry 5 (no id); a/3 completes it.
    assert ids == ["3", None, "5", "6", None]
    assert all(m.split("\n")[-1].startswith("data: {") for m in messages)


@pytest.mark.parametrize("socket_bytes", [0, 5000])
def test_the_buffer_the_hub_sees_is_pending_frames_plus_the_socket(socket_bytes: int) -> None:
    sock = FakeSocket(socket_bytes)
    conn = _StreamConn(sock, sse=False)
    conn.write(_hub_lines())
    pending = conn.get_write_buffer_size() - socket_bytes
    assert pending > 0
    assert len(conn.drain()) == pending
    assert conn.get_write_buffer_size() == socket_bytes
    sock.closing = True
    assert conn.is_closing() and conn.get_write_buffer_size() == 0


def test_a_cancel_at_shutdown_is_reported_unavailable() -> None:
    conn = _StreamConn(FakeSocket(), sse=False)
    conn.stopping = True
    conn.write(
        encode_envelope(END_KIND, WatchEnd(code=codes.CANCELLED, message="x", last_index=9), 0, 1)
    )
    end = json.loads(conn.drain())
    assert (end["code"], end["last_index"]) == (codes.UNAVAILABLE, 9)


def test_nothing_is_taken_after_the_stream_closed() -> None:
    conn = _StreamConn(FakeSocket(), sse=False)
    conn.closed = True
    conn.write(_hub_lines())
    assert conn.drain() == b"" and conn.is_closing()
