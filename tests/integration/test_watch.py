"""Real processes: watch streams across a leader kill, compaction, authorization, abuse.

Every wait is a deadline (``wait_until`` or an async loop with one); the streams are
checked against the committed history read from the nodes' own logs afterwards
(``check/watch_stream.py``), so "no gap, no duplicate, no reorder, hashes match" is
proven from the log, not from what the test happened to write.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from resonetics import errors, limits
from resonetics.check.watch_stream import check_stream, committed_changes
from resonetics.client import AsyncClient, Client
from resonetics.localcluster import LocalCluster
from resonetics.raft.entry import Receipt
from resonetics.security.authz import hash_token, parse_policy
from resonetics.security.policy_files import write_policy
from resonetics.storage.fs import OsFileSystem
from resonetics.storage.verify import verify_node
from resonetics.watch import WatchStream
from resonetics.wire.watch import WatchEvent
from tests.integration.conftest import _assert_no_crash

DEADLINE_S = 60.0


async def _until(what: str, check: Callable[[], bool], timeout_s: float = DEADLINE_S) -> None:
    """Wait for ``check`` with a deadline (polling the event loop, never a blind sleep)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def _committed(cluster: LocalCluster, through: int) -> list[Any]:
    """The committed changes, replayed from the longest log that reaches ``through``."""
    fs = OsFileSystem()
    reports = [verify_node(fs, str(cluster.data_dir / n)) for n in cluster.nodes]
    best = max(reports, key=lambda r: r.last_index or 0)
    assert best.anchor is not None and (best.last_index or 0) >= through
    return committed_changes([best.anchor, *best.entries])


async def _consume(stream: WatchStream, into: list[WatchEvent]) -> None:
    async for event in stream:
        into.append(event)


def test_watcher_across_leader_kill_sees_every_acknowledged_change_once_in_order(
    tmp_path: Path,
) -> None:
    cluster = LocalCluster(tmp_path / "data", size=3, tick_ms=20)
    cluster.start()
    try:
        leader, _ = cluster.wait_for_leader(timeout_s=60)
        asyncio.run(_across_kill(cluster, leader))
    finally:
        cluster.stop()
    _assert_no_crash_except_killed(cluster)


async def _across_kill(cluster: LocalCluster, leader: str) -> None:
    # The watcher dials the leader first, so the kill takes its node away mid-stream.
    leader_first = [cluster.nodes[leader].address] + [
        a for a in cluster.addresses if a != cluster.nodes[leader].address
    ]
    acked: list[tuple[str, int, Receipt]] = []
    seen: list[WatchEvent] = []
    async with (
        AsyncClient(leader_first, timeout=30) as watcher,
        AsyncClient(cluster.addresses, timeout=30) as writer,
    ):
        stream = watcher.watch("w/", from_index=1)
        consumer = asyncio.create_task(_consume(stream, seen))
        await writer.put("other/0", 0)  # outside the prefix: never delivered

        sent = 0

        async def write(n: int) -> None:
            nonlocal sent
            for _ in range(n):
                sent += 1
                key = f"w/{sent}"
                # A Timeout is indeterminate: the log decides whether it is delivered.
                with contextlib.suppress(errors.Timeout):
                    acked.append((key, sent, await writer.put(key, sent)))

        await write(40)
        await _until("the watcher to see the first writes", lambda: len(seen) >= 20)
        assert stream.address == cluster.nodes[leader].address
        await asyncio.to_thread(cluster.kill_node, leader)
        await write(40)
        last = max(r.index for _, _, r in acked)
        await _until("the watcher to reach the last write", lambda: (stream.through or 0) >= last)
        assert stream.resumes >= 1 and stream.address != cluster.nodes[leader].address
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
        await stream.aclose()
    delivered = {(e.key, e.index): e for e in seen}
    for key, value, receipt in acked:
        event = delivered.get((key, receipt.index))
        assert event is not None, f"acknowledged {key} at {receipt.index} never delivered"
        assert (event.value, event.hash, event.term) == (value, receipt.hash, receipt.term)
    through = stream.through or 0
    report = check_stream(
        seen, _committed(cluster, through), prefix="w/", from_index=1, through=through
    )
    assert report.ok, report.problems
    assert report.expected_events >= len(acked)


def _assert_no_crash_except_killed(cluster: LocalCluster) -> None:
    for node_id in cluster.nodes:
        log = (cluster.data_dir / f"{node_id}.log").read_text(errors="replace")
        assert "Traceback" not in log, f"{node_id} crashed:\n{log[-3000:]}"


@pytest.fixture
def compacting_node(tmp_path: Path) -> Iterator[LocalCluster]:
    cluster = LocalCluster(
        tmp_path / "data", size=1, tick_ms=20, extra_args=["--snapshot-entries", "50"]
    )
    cluster.start()
    try:
        cluster.wait_for_leader(timeout_s=60)
        yield cluster
    finally:
        cluster.stop()
        _assert_no_crash(cluster)


def test_watch_from_before_the_snapshot_after_a_restart_is_compacted(
    compacting_node: LocalCluster,
) -> None:
    cluster = compacting_node
    with Client(cluster.addresses, timeout=30) as client:
        for i in range(300):
            client.put(f"c/{i}", i)
        # A restarted node holds the changes replayed since its snapshot, no older ones.
        cluster.stop_node("n1")
        cluster.start_node("n1")
        cluster.wait_for_leader(timeout_s=60)
        with pytest.raises(errors.Compacted) as caught:
            next(client.watch("c/", from_index=1))
        oldest = caught.value.oldest_index
        assert 1 < oldest <= client.put("c/after", 1).index
        assert caught.value.from_index == 1
        stream = client.watch("c/", from_index=oldest)
        first = next(stream)
        assert first.index >= oldest
        stream.close()
        # Starting over: the state and its index from one node, then watch from there.
        state = client.call("kv_scan", {"prefix": "c/", "limit": 1000, "consistency": "stale"})
        assert len(state["items"]) == 301
        stream = client.watch("c/", from_index=state["applied_index"] + 1)
        receipt = client.put("c/next", 2)
        event = next(stream)
        assert (event.key, event.index, event.hash) == ("c/next", receipt.index, receipt.hash)
        stream.close()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    root = tmp_path_factory.mktemp("watch-authz")
    raw = {
        "roles": {
            "app": {"read": ["app/"], "write": ["app/"]},
            "all": {"read": [""], "write": [""]},
            "monitor": {"monitor": True},
        },
        "anonymous": {"roles": ["monitor"]},
        "identities": {
            "alice": {"roles": ["app"], "token_sha256": hash_token(ALICE)},
            "root": {"roles": ["all"], "token_sha256": hash_token(ROOT)},
        },
    }
    policy = root / "policy.toml"
    write_policy(policy, parse_policy(raw, source=str(policy)))
    cluster = LocalCluster(
        root / "data", size=1, tick_ms=20, authorize=False, extra_args=["--policy", str(policy)]
    )
    cluster.start()
    try:
        cluster.wait_for_leader(timeout_s=60)
        yield cluster
    finally:
        cluster.stop()
        _assert_no_crash(cluster)


ALICE = "alice-token-for-watch-tests-0123456789"
ROOT = "root-token-for-watch-tests-01234567890"


def test_watch_on_a_prefix_outside_the_role_is_forbidden(guarded: LocalCluster) -> None:
    with Client(guarded.addresses, timeout=10, token=ALICE) as alice:
        for prefix in ("", "ap", "other/", "app"):  # "app" would reach "apple/..."
            with pytest.raises(errors.Forbidden):
                next(alice.watch(prefix))


def test_watch_on_an_allowed_prefix_never_delivers_keys_outside_it(guarded: LocalCluster) -> None:
    with (
        Client(guarded.addresses, timeout=10, token=ALICE) as alice,
        Client(guarded.addresses, timeout=10, token=ROOT) as root,
    ):
        stream = alice.watch("app/")
        first = root.put("app/first", 0)
        got = [next(stream)]
        assert got[0].index == first.index
        for key in ("apple", "app", "other/x", "app/second", "appx/y", "app/third"):
            root.put(key, 1)
        got += [next(stream), next(stream)]
        stream.close()
    assert [e.key for e in got] == ["app/first", "app/second", "app/third"]


def test_an_anonymous_watch_under_a_policy_without_anonymous_reads_is_forbidden(
    guarded: LocalCluster,
) -> None:
    with Client(guarded.addresses, timeout=10) as anonymous, pytest.raises(errors.Forbidden):
        next(anonymous.watch("app/"))


# --- raw sockets -------------------------------------------------------------------------
def _line(op: str, args: dict[str, Any], req_id: Any) -> bytes:
    payload = {"client_id": "raw", "request_id": f"raw-{req_id}", "op": op, "args": args}
    return (
        json.dumps(
            {"kind": "ClientRequest", "payload": payload, "t": 0, "v": 1, "id": req_id}
        ).encode()
        + b"\n"
    )


class Raw:
    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=20)
        self.stream = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self) -> dict[str, Any]:
        line = self.stream.readline()
        assert line, "connection closed"
        message: dict[str, Any] = json.loads(line)
        return message

    def read_until(self, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        while not match(message := self.read()):
            pass
        return message

    def close(self) -> None:
        self.stream.close()
        self.sock.close()


def _response(req_id: Any) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m["kind"] == "ClientResponse" and m.get("id") == req_id


def test_watch_flood_on_one_connection_is_bounded_and_the_node_serves_on(
    single_node: LocalCluster,
) -> None:
    raw = Raw(single_node.addresses[0])
    try:
        count = limits.WATCHES_PER_CONNECTION_MAX + 20
        raw.send(b"".join(_line("watch", {"prefix": f"f{i}/"}, i) for i in range(count)))
        answers = [raw.read_until(_response(i)) for i in range(count)]
        opened = [a for a in answers if a["payload"]["ok"]]
        refused = [a for a in answers if not a["payload"]["ok"]]
        assert len(opened) == limits.WATCHES_PER_CONNECTION_MAX
        assert {a["payload"]["code"] for a in refused} == {"BAD_REQUEST"}
        assert "limit" in refused[0]["payload"]["message"]
        # Cancelling one frees a slot; the stream ends with CANCELLED before the answer.
        raw.send(_line("watch_cancel", {"watch": 0}, "c0"))
        end = raw.read_until(lambda m: m["kind"] == "WatchEnd")
        assert (end["id"], end["payload"]["code"]) == (0, "CANCELLED")
        assert raw.read_until(_response("c0"))["payload"]["result"] == {"cancelled": True}
        raw.send(_line("watch", {"prefix": "f0/"}, "again"))
        assert raw.read_until(_response("again"))["payload"]["ok"]
        with Client(single_node.addresses, timeout=10) as client:
            receipt = client.put("f0/x", 1)
            assert client.get("f0/x") == 1
        events = raw.read_until(lambda m: m["kind"] == "WatchEvents")
        assert events["id"] == "again"
        assert events["payload"]["events"][0]["index"] == receipt.index
        assert events["payload"]["events"][0]["hash"] == receipt.hash
    finally:
        raw.close()
    status = single_node.status("n1")
    assert status is not None and status["role"] == "leader"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({}, "args.prefix"),
        ({"prefix": 3}, "args.prefix"),
        ({"prefix": "a", "from_index": 0}, "args.from_index"),
        ({"prefix": "a", "from_index": "7"}, "args.from_index"),
        ({"prefix": "a", "since": 7}, "args.since"),
    ],
)
def test_bad_watch_args_are_bad_request_naming_the_field(
    single_node: LocalCluster, args: dict[str, Any], field: str
) -> None:
    raw = Raw(single_node.addresses[0])
    try:
        raw.send(_line("watch", args, 1))
        answer = raw.read_until(_response(1))
        assert answer["payload"]["code"] == "BAD_REQUEST"
        assert answer["payload"]["result"]["field"] == field
    finally:
        raw.close()


def test_a_watch_without_an_envelope_id_is_refused(single_node: LocalCluster) -> None:
    raw = Raw(single_node.addresses[0])
    try:
        line = json.loads(_line("watch", {"prefix": ""}, 1))
        del line["id"]
        raw.send(json.dumps(line).encode() + b"\n")
        answer = raw.read()
        assert answer["payload"]["code"] == "BAD_REQUEST"
        assert answer["payload"]["message"].startswith("id")
    finally:
        raw.close()


def test_cancel_of_an_unknown_watch_says_so(single_node: LocalCluster) -> None:
    raw = Raw(single_node.addresses[0])
    try:
        raw.send(_line("watch_cancel", {"watch": "nope"}, 1))
        assert raw.read_until(_response(1))["payload"]["result"] == {"cancelled": False}
    finally:
        raw.close()


def test_a_follower_serves_a_gap_free_stream(cluster3: LocalCluster) -> None:
    leader, _ = cluster3.wait_for_leader()
    follower = next(n for n in cluster3.nodes if n != leader)
    with (
        Client([cluster3.nodes[follower].address], timeout=20) as watcher,
        Client(cluster3.addresses, timeout=20) as writer,
    ):
        stream = watcher.watch("f/", from_index=1)
        receipts = [writer.put(f"f/{i}", i) for i in range(30)]
        got = [next(stream) for _ in receipts]
        stream.close()
    assert [(e.index, e.hash) for e in got] == [(r.index, r.hash) for r in receipts]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "resonetics", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_kv_watch_prints_events_from_an_index_and_stops_after_count(
    single_node: LocalCluster,
) -> None:
    address = single_node.addresses[0]
    with Client(single_node.addresses, timeout=10) as client:
        first = client.put("cli/a", 1)
        client.put("elsewhere", 0)
        client.delete("cli/a")
    out = _cli("kv", "watch", "cli/", "--from", str(first.index), "--count", "2", "--json",
               "--cluster", address)  # fmt: skip
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(e["key"], e["kind"]) for e in events] == [("cli/a", "put"), ("cli/a", "delete")]
    assert events[0]["index"] == first.index and events[0]["hash"] == first.hash
    plain = _cli("kv", "watch", "cli/", "--from", str(first.index), "--count", "1",
                 "--cluster", address)  # fmt: skip
    assert plain.stdout == f"{first.index}\tput\tcli/a\t1\n"


def test_cli_kv_watch_with_a_typo_in_from_is_a_usage_error(single_node: LocalCluster) -> None:
    out = _cli("kv", "watch", "x/", "--from", "0", "--cluster", single_node.addresses[0])
    assert out.returncode == 2 and "Traceback" not in out.stderr
