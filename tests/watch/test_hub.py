"""The watch hub against a fake connection: order, filtering, bounds, cut and cancel."""

from __future__ import annotations

from typing import Any

import pytest

from resonetics import limits
from resonetics.check.watch_stream import check_stream, committed_changes
from resonetics.runtime.outcome import Outcome
from resonetics.server.watch import WatchHub
from resonetics.wire import codes
from resonetics.wire.envelope import decode_envelope
from resonetics.wire.watch import (
    WatchEnd,
    WatchEvent,
    WatchEvents,
    WatchProgress,
    decode_watch_message,
)
from tests.watch.logbuild import Log, replica


class FakeTransport:
    def __init__(self) -> None:
        self.buffered = 0

    def get_write_buffer_size(self) -> int:
        return self.buffered


class FakeConn:
    def __init__(self) -> None:
        self.transport = FakeTransport()
        self.closing = False

    def write(self, data: bytes) -> None:
        raise AssertionError("the hub writes through the sender")

    def is_closing(self) -> bool:
        return self.closing


class Sender:
    def __init__(self) -> None:
        self.sent: list[tuple[Any, bytes]] = []

    def add(self, writer: Any, data: bytes) -> None:
        self.sent.append((writer, data))

    def messages(self, conn: Any, wid: Any = None) -> list[Any]:
        out = []
        for writer, data in self.sent:
            env = decode_envelope(data.rstrip(b"\n"))
            if writer is conn and (wid is None or env.id == wid):
                out.append(decode_watch_message(env))
        return out


def events(messages: list[Any]) -> list[WatchEvent]:
    return [e for m in messages if isinstance(m, WatchEvents) for e in m.events]


class Setup:
    def __init__(self, **history_limits: int) -> None:
        self.log = Log()
        self.replicated, self.history = replica(**history_limits)
        self.sender = Sender()
        self.now = 0.0
        self.hub = WatchHub(self.history, self.sender, clock=lambda: self.now)
        self.answers: list[Outcome] = []

    def write(self, key: str, value: Any = 1) -> None:
        self.replicated.apply(self.log.cmd("kv_set", k=key, v=value))

    def watch(
        self, conn: Any, wid: Any, prefix: str = "", from_index: int | None = None
    ) -> Outcome:
        args: dict[str, Any] = {"prefix": prefix, "from_index": from_index}
        self.hub.handle("watch", wid, args, conn, self.answers.append)
        return self.answers[-1]


def test_events_arrive_in_log_order_filtered_by_prefix_and_check_against_the_log() -> None:
    s, conn = Setup(), FakeConn()
    s.write("a/1")
    s.write("b/1")
    s.replicated.apply(s.log.batch(("kv_set", {"k": "a/2", "v": 2}), ("kv_delete", {"k": "a/1"})))
    answer = s.watch(conn, 7, "a/", from_index=1)
    assert answer.ok and answer.result["oldest_index"] == 1
    s.write("a/3")
    s.hub.pump()
    got = events(s.sender.messages(conn, 7))
    assert [(e.index, e.key, e.kind) for e in got] == [
        (1, "a/1", "put"), (3, "a/2", "put"), (3, "a/1", "delete"), (4, "a/3", "put"),
    ]  # fmt: skip
    report = check_stream(
        got, committed_changes(s.log.entries), prefix="a/", from_index=1, through=4
    )
    assert report.ok, report.problems


def test_default_start_is_after_the_applied_index() -> None:
    s, conn = Setup(), FakeConn()
    s.write("a")
    answer = s.watch(conn, 1)
    assert answer.result["from_index"] == 2
    s.write("b")
    s.hub.pump()
    assert [e.key for e in events(s.sender.messages(conn))] == ["b"]


def test_from_index_older_than_the_history_is_refused_compacted_naming_the_oldest() -> None:
    s, conn = Setup(changes_max=2), FakeConn()
    for i in range(5):
        s.write(f"k{i}")
    answer = s.watch(conn, 1, from_index=2)
    assert answer.code == codes.COMPACTED
    assert answer.result == {"oldest_index": 4}
    assert len(s.hub) == 0
    assert s.watch(conn, 2, from_index=4).ok


def test_slow_watcher_is_cut_with_watch_too_slow_naming_the_last_index(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(limits, "WATCH_QUEUE_CHANGES_MAX", 5)
    s, conn = Setup(), FakeConn()
    s.watch(conn, 1)
    s.write("a")
    s.hub.pump()
    conn.transport.buffered = limits.WATCH_CONN_BUFFER_BYTES_MAX + 1  # the client reads no more
    for i in range(6):
        s.write(f"k{i}")
        s.hub.pump()
    ends = [m for m in s.sender.messages(conn) if isinstance(m, WatchEnd)]
    assert [(e.code, e.last_index) for e in ends] == [(codes.WATCH_TOO_SLOW, 1)]
    assert len(s.hub) == 0 and s.history.listener is None


def test_a_blocked_watcher_within_its_queue_resumes_without_loss() -> None:
    s, conn = Setup(), FakeConn()
    s.watch(conn, 1)
    conn.transport.buffered = limits.WATCH_CONN_BUFFER_BYTES_MAX
    for i in range(3):
        s.write(f"k{i}")
    s.hub.pump()
    assert events(s.sender.messages(conn)) == []
    conn.transport.buffered = 0
    s.now += limits.WATCH_RETRY_S
    s.hub.tick()
    assert [e.index for e in events(s.sender.messages(conn))] == [1, 2, 3]


def test_watcher_whose_position_the_ring_dropped_is_cut() -> None:
    s, conn = Setup(changes_max=3), FakeConn()
    s.watch(conn, 1)
    conn.transport.buffered = limits.WATCH_CONN_BUFFER_BYTES_MAX
    for i in range(6):
        s.write(f"k{i}")
    s.hub.pump()
    (end,) = [m for m in s.sender.messages(conn) if isinstance(m, WatchEnd)]
    assert (end.code, end.last_index, end.oldest_index) == (codes.WATCH_TOO_SLOW, 0, 4)


def test_a_snapshot_install_ends_watches_that_needed_older_history_with_compacted() -> None:
    s, conn = Setup(), FakeConn()
    leader_log, (leader, _) = s.log, replica()
    s.watch(conn, 1)
    conn.transport.buffered = limits.WATCH_CONN_BUFFER_BYTES_MAX
    for i in range(4):
        entry = leader_log.cmd("kv_set", k=f"k{i}", v=i)
        leader.apply(entry)
    s.replicated.restore(leader.snapshot())
    conn.transport.buffered = 0
    s.hub.pump()
    (end,) = [m for m in s.sender.messages(conn) if isinstance(m, WatchEnd)]
    assert (end.code, end.last_index, end.oldest_index) == (codes.COMPACTED, 0, 5)


def test_progress_notices_name_the_applied_index_and_hash() -> None:
    s, conn = Setup(), FakeConn()
    s.watch(conn, 1, prefix="nothing/")
    s.write("a")
    s.hub.pump()
    s.now += limits.WATCH_PROGRESS_INTERVAL_S
    s.hub.tick()
    (progress,) = [m for m in s.sender.messages(conn) if isinstance(m, WatchProgress)]
    assert (progress.index, progress.hash) == (1, s.log.entries[1].hash)


def test_cancel_ends_the_stream_and_only_the_connections_own() -> None:
    s, mine, other = Setup(), FakeConn(), FakeConn()
    s.watch(mine, "w")
    s.hub.handle("watch_cancel", 9, {"watch": "w"}, other, s.answers.append)
    assert s.answers[-1].result == {"cancelled": False}
    s.hub.handle("watch_cancel", 9, {"watch": "w"}, mine, s.answers.append)
    assert s.answers[-1].result == {"cancelled": True}
    (end,) = s.sender.messages(mine, "w")
    assert isinstance(end, WatchEnd) and end.code == codes.CANCELLED
    s.write("a")
    s.hub.pump()
    assert len(s.sender.messages(mine)) == 1


def test_recheck_ends_only_the_watches_the_refusal_names_with_its_code() -> None:
    """After a policy reload: a watch the policy no longer allows ends with the refusal's
    code and message; the others go on receiving changes."""
    s, mine, other = Setup(), FakeConn(), FakeConn()
    s.watch(mine, "all", "")
    s.watch(mine, "pub", "pub/")
    s.watch(other, "x", "")
    denied = Outcome(codes.FORBIDDEN, message="mine may read pub/ only")

    def refusal(conn: Any, prefix: str) -> Outcome | None:
        return denied if conn is mine and not prefix.startswith("pub/") else None

    assert s.hub.recheck(refusal) == 1
    (end,) = s.sender.messages(mine, "all")
    assert isinstance(end, WatchEnd) and (end.code, end.message) == (
        codes.FORBIDDEN,
        denied.message,
    )
    s.write("pub/1")
    s.hub.pump()
    assert [e.key for e in events(s.sender.messages(mine, "pub"))] == ["pub/1"]
    assert [e.key for e in events(s.sender.messages(other, "x"))] == ["pub/1"]
    assert len(s.sender.messages(mine, "all")) == 1  # nothing after its end
    assert s.hub.recheck(refusal) == 0 and len(s.hub) == 2


def test_watches_per_connection_are_bounded() -> None:
    s, conn = Setup(), FakeConn()
    for wid in range(limits.WATCHES_PER_CONNECTION_MAX):
        assert s.watch(conn, wid).ok
    refused = s.watch(conn, "one more")
    assert refused.code == codes.BAD_REQUEST and "limit" in refused.message
    assert len(s.hub) == limits.WATCHES_PER_CONNECTION_MAX
    s.hub.drop(conn)
    assert len(s.hub) == 0 and s.history.listener is None


def test_a_watch_needs_an_id_and_one_id_once_per_connection() -> None:
    s, conn = Setup(), FakeConn()
    assert s.watch(conn, None).code == codes.BAD_REQUEST
    assert s.watch(conn, 1).ok
    assert s.watch(conn, 1).code == codes.BAD_REQUEST


def test_large_backlogs_go_in_several_messages_of_whole_entries() -> None:
    s, conn = Setup(), FakeConn()
    s.watch(conn, 1)
    for i in range(40):
        s.replicated.apply(
            s.log.batch(*[("kv_set", {"k": f"k{i}/{j}", "v": "x" * 1000}) for j in range(5)])
        )
    s.hub.pump()
    messages = [m for m in s.sender.messages(conn) if isinstance(m, WatchEvents)]
    assert len(messages) > 1
    for m in messages:
        assert len(m.events) % 5 == 0
    assert [e.index for e in events(messages)] == sorted(i for i in range(1, 41) for _ in range(5))


def test_the_connection_bound_is_shared_by_all_its_watches() -> None:
    s, conn = Setup(), FakeConn()
    for wid in range(8):
        s.watch(conn, wid)
    for i in range(40):
        s.replicated.apply(
            s.log.batch(*[("kv_set", {"k": f"k{i}/{j}", "v": "x" * 5000}) for j in range(10)])
        )
    s.hub.pump()  # nothing flushed yet: the transport's buffer still reads 0
    sent = sum(len(data) for writer, data in s.sender.sent if writer is conn)
    assert sent <= limits.WATCH_CONN_BUFFER_BYTES_MAX + 2 * limits.WATCH_MESSAGE_BYTES


def test_a_node_serving_another_machine_refuses_watches_with_bad_request() -> None:
    answers: list[Outcome] = []
    hub = WatchHub(None, Sender())
    hub.handle("watch", 1, {"prefix": "", "from_index": None}, FakeConn(), answers.append)
    assert answers[0].code == codes.BAD_REQUEST and "no changes" in answers[0].message
    assert len(hub) == 0
