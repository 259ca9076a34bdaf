"""Real processes: the HTTP port's watch streams, scan cursors and transactions.

A watcher is an aiohttp ``ClientSession`` reading ``GET /v1/watch`` line by line, as
``curl -N`` would; its stream is checked against the committed history replayed from
the node's own log (``check/watch_stream.py``). Every wait is a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from resonetics import errors, limits
from resonetics.check.watch_stream import check_stream, committed_changes
from resonetics.client import AsyncClient
from resonetics.localcluster import LocalCluster
from resonetics.raft.entry import Receipt
from resonetics.security.authz import hash_token, parse_policy
from resonetics.security.policy_files import write_policy
from resonetics.storage.fs import OsFileSystem
from resonetics.storage.verify import verify_node
from resonetics.wire.watch import WatchEvent
from tests.integration.conftest import _assert_no_crash
from tests.integration.http_helpers import call

DEADLINE_S = 60.0
ALICE = "alice-token-for-http-watch-0123456789"
ROOT = "root-token-for-http-watch-01234567890"


def _start(cluster: LocalCluster) -> Iterator[LocalCluster]:
    cluster.start()
    try:
        cluster.wait_for_leader(timeout_s=60)
        yield cluster
    finally:
        cluster.stop()
        _assert_no_crash(cluster)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    root = tmp_path_factory.mktemp("http-watch")
    yield from _start(LocalCluster(root / "data", size=1, tick_ms=20, http=True))


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    root = tmp_path_factory.mktemp("http-watch-authz")
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
        root / "data",
        size=1,
        tick_ms=20,
        http=True,
        authorize=False,
        extra_args=["--policy", str(policy)],
    )
    yield from _start(cluster)


def _http(cluster: LocalCluster, node_id: str = "n1") -> str:
    address = cluster.nodes[node_id].http_address
    assert address is not None
    return address


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _line(resp: aiohttp.ClientResponse, deadline: float) -> dict[str, Any]:
    """The stream's next NDJSON object, or AssertionError at the deadline."""
    async with asyncio.timeout(max(0.1, deadline - time.monotonic())):
        raw = await resp.content.readline()
    assert raw.endswith(b"\n"), f"stream ended: {raw!r}"
    message: dict[str, Any] = json.loads(raw)
    return message


async def _until_line(
    resp: aiohttp.ClientResponse, match: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE_S
    while not match(message := await _line(resp, deadline)):
        pass
    return message


def _event(message: dict[str, Any]) -> WatchEvent:
    fields = {k: v for k, v in message.items() if k != "type"}
    return msgspec.convert(fields, WatchEvent)


def _watch_count(cluster: LocalCluster) -> int:
    status = cluster.status("n1")
    assert status is not None
    count: int = status["clients"]["watches"]["watches"]
    return count


def _until(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


# --- the stream ------------------------------------------------------------------------
def test_http_watch_sees_every_acknowledged_change_once_in_order_against_the_log(
    node: LocalCluster,
) -> None:
    address = _http(node)
    acked: list[tuple[str, Any, dict[str, Any]]] = []
    seen: list[WatchEvent] = []

    async def run() -> int:
        async with aiohttp.ClientSession() as session:
            url = f"http://{address}/v1/watch"
            async with session.get(url, params={"prefix": "hw/", "from_index": "1"}) as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"] == "application/x-ndjson"
                start = await _line(resp, time.monotonic() + DEADLINE_S)
                assert start["type"] == "start" and start["from_index"] == 1
                for i in range(30):
                    key = f"hw/{i % 7}"
                    async with session.put(f"http://{address}/v1/kv/{key}", json=i) as put:
                        acked.append((key, i, (await put.json())["receipt"]))
                    async with session.put(f"http://{address}/v1/kv/hx/{i}", json=i) as put:
                        assert put.status == 200  # outside the prefix: never delivered
                txn = {"then": [{"type": "put", "key": "hw/t1", "value": "a"},
                                {"type": "delete", "key": "hw/0"}]}  # fmt: skip
                async with session.post(f"http://{address}/v1/txn", json=txn) as posted:
                    receipt = (await posted.json())["receipt"]
                last = receipt["index"]
                # A progress notice says "complete through": every change up to it came.
                progress = 0
                while progress < last:
                    message = await _line(resp, time.monotonic() + DEADLINE_S)
                    if message["type"] == "event":
                        seen.append(_event(message))
                    elif message["type"] == "progress":
                        progress = message["index"]
                    else:
                        raise AssertionError(f"unexpected {message}")
                return progress

    through = asyncio.run(run())
    delivered = {(e.key, e.index): e for e in seen}
    for key, value, receipt in acked:
        event = delivered[(key, receipt["index"])]
        assert (event.value, event.hash, event.term) == (value, receipt["hash"], receipt["term"])
    assert [(e.key, e.kind) for e in seen[-2:]] == [("hw/t1", "put"), ("hw/0", "delete")]
    assert seen[-1].index == seen[-2].index  # one txn: one entry, both changes
    fs = OsFileSystem()
    report = verify_node(fs, str(node.data_dir / "n1"))
    assert report.anchor is not None
    committed = committed_changes([report.anchor, *report.entries])
    verdict = check_stream(seen, committed, prefix="hw/", from_index=1, through=through)
    assert verdict.ok, verdict.problems
    assert verdict.expected_events == len(acked) + 2


def test_http_watch_disconnect_frees_the_watch(node: LocalCluster) -> None:
    address = _http(node)
    _until("earlier streams to be dropped", lambda: _watch_count(node) == 0)

    async def run() -> None:
        session = aiohttp.ClientSession()
        responses = [
            await session.get(f"http://{address}/v1/watch", params={"prefix": f"d{i}/"})
            for i in range(3)
        ]
        for resp in responses:
            assert (await _line(resp, time.monotonic() + DEADLINE_S))["type"] == "start"
        assert await asyncio.to_thread(_watch_count, node) == 3
        await session.close()  # the client goes away without a word

    asyncio.run(run())
    _until(
        "the node to drop the streams of the closed connections", lambda: _watch_count(node) == 0
    )
    assert call(address, "GET", "/health").status == 200


@pytest.fixture
def compacting(tmp_path: Path) -> Iterator[LocalCluster]:
    cluster = LocalCluster(
        tmp_path / "data", size=1, tick_ms=20, http=True, extra_args=["--snapshot-entries", "50"]
    )
    yield from _start(cluster)


def test_http_watch_from_a_compacted_index_is_410_naming_the_oldest_index(
    compacting: LocalCluster,
) -> None:
    address = _http(compacting)
    for i in range(120):
        assert call(address, "PUT", f"/v1/kv/c/{i}", i).status == 200
    # A restarted node holds the changes replayed since its snapshot, no older ones.
    compacting.stop_node("n1")
    compacting.start_node("n1")
    compacting.wait_for_leader(timeout_s=60)
    gone = call(address, "GET", "/v1/watch?prefix=c/&from_index=1")
    assert gone.status == 410, gone.text
    body = gone.json
    assert body["code"] == "COMPACTED" and body["ok"] is False
    assert 1 < body["oldest_index"] <= 121
    assert "from_index: 1" in body["message"]

    async def resume() -> dict[str, Any]:
        async with aiohttp.ClientSession() as session:
            params = {"prefix": "c/", "from_index": str(body["oldest_index"])}
            async with session.get(f"http://{address}/v1/watch", params=params) as resp:
                assert resp.status == 200
                return await _until_line(resp, lambda m: m["type"] in ("event", "progress"))

    first = asyncio.run(resume())
    assert first["index"] >= body["oldest_index"]


# --- authorization -----------------------------------------------------------------------
@pytest.mark.parametrize("prefix", ["", "ap", "app", "other/"])
def test_http_watch_without_read_on_the_whole_prefix_is_403(
    guarded: LocalCluster, prefix: str
) -> None:
    reply = call(_http(guarded), "GET", f"/v1/watch?prefix={prefix}", headers=_bearer(ALICE))
    assert reply.status == 403 and reply.json["code"] == "FORBIDDEN", reply.text


def test_http_watch_anonymous_and_unknown_token_are_refused(guarded: LocalCluster) -> None:
    address = _http(guarded)
    assert call(address, "GET", "/v1/watch?prefix=app/").status == 403
    unknown = call(address, "GET", "/v1/watch?prefix=app/", headers=_bearer("nope" * 10))
    assert unknown.status == 401 and unknown.json["code"] == "UNAUTHENTICATED"


def test_http_watch_never_delivers_keys_outside_its_prefix(guarded: LocalCluster) -> None:
    address = _http(guarded)

    async def run() -> list[str]:
        async with aiohttp.ClientSession() as session:
            url = f"http://{address}/v1/watch"
            params = {"prefix": "app/"}
            async with session.get(url, params=params, headers=_bearer(ALICE)) as resp:
                assert resp.status == 200
                await _line(resp, time.monotonic() + DEADLINE_S)
                keys = ["apple", "app", "other/x", "app/one", "appx/y", "app/two", "app/end"]
                for key in keys:
                    put = call(address, "PUT", f"/v1/kv/{key}", 1, headers=_bearer(ROOT))
                    assert put.status == 200, put.text
                got: list[str] = []
                while "app/end" not in got:
                    message = await _until_line(resp, lambda m: m["type"] == "event")
                    got.append(message["key"])
                return got

    assert asyncio.run(run()) == ["app/one", "app/two", "app/end"]


# --- bad input and abuse ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("prefix=a&from_index=0", "from_index"),
        ("prefix=a&from_index=seven", "from_index"),
        ("prefix=a&since=7", "since"),
    ],
)
def test_http_watch_bad_parameters_are_400_naming_the_field(
    node: LocalCluster, query: str, field: str
) -> None:
    reply = call(_http(node), "GET", f"/v1/watch?{query}")
    assert reply.status == 400 and reply.json["code"] == "BAD_REQUEST", reply.text
    assert reply.json["message"].startswith(field), reply.text


def _raw_watch(address: str, prefix: str) -> tuple[socket.socket, int]:
    """A raw socket asking for a stream; its status code (the body stays unread)."""
    host, port = address.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=DEADLINE_S)
    sock.sendall(f"GET /v1/watch?prefix={prefix} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head = b""
    while b"\r\n" not in head:
        chunk = sock.recv(64)
        assert chunk, "closed before a status line"
        head += chunk
    return sock, int(head.split()[1])


def test_http_watch_flood_from_raw_sockets_is_bounded_and_the_node_serves_on(
    node: LocalCluster,
) -> None:
    address = _http(node)
    _until("earlier streams to be dropped", lambda: _watch_count(node) == 0)
    socks: list[socket.socket] = []
    statuses: list[int] = []
    try:
        for i in range(limits.HTTP_WATCHES_PER_ADDRESS_MAX + 16):
            sock, status = _raw_watch(address, f"flood{i}/")
            socks.append(sock)
            statuses.append(status)
        assert statuses.count(200) == limits.HTTP_WATCHES_PER_ADDRESS_MAX
        assert set(statuses[limits.HTTP_WATCHES_PER_ADDRESS_MAX :]) == {429}
        assert _watch_count(node) == limits.HTTP_WATCHES_PER_ADDRESS_MAX
        refused = call(address, "GET", "/v1/watch?prefix=x/")
        assert refused.status == 429 and refused.json["code"] == "TOO_MANY_WATCHES"
        assert "limit" in refused.json["message"]
        # The node serves on: health, a write, a read.
        assert call(address, "GET", "/health").status == 200
        assert call(address, "PUT", "/v1/kv/flood0/k", "v").status == 200
        assert call(address, "GET", "/v1/kv/flood0/k").json["value"] == "v"
        received = b""
        socks[0].settimeout(DEADLINE_S)
        while b'"key":"flood0/k"' not in received:
            chunk = socks[0].recv(4096)
            assert chunk, "the first stream closed"
            received += chunk
    finally:
        for sock in socks:
            sock.close()
    _until("every flooded stream to be dropped", lambda: _watch_count(node) == 0)
    sock, status = _raw_watch(address, "again/")  # the slots are free again
    sock.close()
    assert status == 200


def test_http_watch_as_server_sent_events_resumes_from_last_event_id(node: LocalCluster) -> None:
    address = _http(node)
    first = call(address, "PUT", "/v1/kv/sse/a", 1).json["receipt"]
    second = call(address, "PUT", "/v1/kv/sse/b", 2).json["receipt"]

    async def read(headers: dict[str, str]) -> list[str]:
        async with aiohttp.ClientSession() as session:
            url = f"http://{address}/v1/watch?prefix=sse/"
            async with session.get(url, headers=headers) as resp:
                assert resp.headers["Content-Type"] == "text/event-stream"
                lines: list[str] = []
                deadline = time.monotonic() + DEADLINE_S
                while not any(line.startswith("event: progress") for line in lines):
                    async with asyncio.timeout(max(0.1, deadline - time.monotonic())):
                        lines.append((await resp.content.readline()).decode().rstrip("\n"))
                return lines

    sse = {"Accept": "text/event-stream"}
    lines = asyncio.run(read({**sse, "Last-Event-ID": str(first["index"])}))
    data = [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
    events = [d for d in data if d["type"] == "event"]
    assert [(e["key"], e["index"]) for e in events] == [("sse/b", second["index"])]
    assert f"id: {second['index']}" in lines
    assert lines[0] == "event: start" and data[0]["from_index"] == first["index"] + 1


# --- resuming across a leader kill -----------------------------------------------------------
class _Follower:
    """An HTTP watcher that resumes on the next node, as a ``curl`` loop would: it counts an
    entry as received only once a later entry or a progress notice shows it whole, and
    resumes from the index after the last whole one (a half-received entry comes again)."""

    def __init__(self, addresses: list[str], prefix: str) -> None:
        self.addresses = addresses
        self.prefix = prefix
        self.seen: list[WatchEvent] = []
        self.through = 0
        self.resumes = 0

    async def run(self, session: aiohttp.ClientSession) -> None:
        for n in itertools.count():
            address = self.addresses[n % len(self.addresses)]
            params = {"prefix": self.prefix, "from_index": str(self.through + 1)}
            try:
                async with session.get(f"http://{address}/v1/watch", params=params) as resp:
                    if resp.status == 200:
                        await self._read(resp)
            except (aiohttp.ClientError, ConnectionError):
                pass
            self.resumes += 1
            await asyncio.sleep(0.1)  # the next node, after a breath (not a wait on a result)

    async def _read(self, resp: aiohttp.ClientResponse) -> None:
        pending: list[WatchEvent] = []
        while raw := await resp.content.readline():
            message = json.loads(raw)
            if message["type"] == "event":
                if pending and message["index"] != pending[0].index:
                    self._whole(pending)
                pending.append(_event(message))
            elif message["type"] == "progress":
                self._whole(pending)
                self.through = max(self.through, message["index"])
            elif message["type"] == "end":
                break
        # What is still pending may be half an entry: dropped, it comes again.

    def _whole(self, pending: list[WatchEvent]) -> None:
        if pending:
            self.seen += pending
            self.through = pending[-1].index
            pending.clear()


def _committed_from_logs(cluster: LocalCluster, through: int) -> list[Any]:
    fs = OsFileSystem()
    reports = [verify_node(fs, str(cluster.data_dir / n)) for n in cluster.nodes]
    best = max(reports, key=lambda r: r.last_index or 0)
    assert best.anchor is not None and (best.last_index or 0) >= through
    return committed_changes([best.anchor, *best.entries])


def test_http_watcher_resuming_across_a_leader_kill_sees_every_acknowledged_change_once(
    tmp_path: Path,
) -> None:
    cluster = LocalCluster(tmp_path / "data", size=3, tick_ms=20, http=True)
    cluster.start()
    try:
        leader, _ = cluster.wait_for_leader(timeout_s=60)
        http = {n: _http(cluster, n) for n in cluster.nodes}
        watcher = _Follower([http[leader]] + [a for n, a in http.items() if n != leader], "k/")
        acked = asyncio.run(_writes_across_kill(cluster, leader, watcher))
    finally:
        cluster.stop()
    for node_id in cluster.nodes:
        log = (cluster.data_dir / f"{node_id}.log").read_text(errors="replace")
        assert "Traceback" not in log, f"{node_id}:\n{log[-3000:]}"
    assert watcher.resumes >= 1
    delivered = {(e.key, e.index): e for e in watcher.seen}
    for key, value, receipt in acked:
        event = delivered.get((key, receipt.index))
        assert event is not None, f"acknowledged {key} at {receipt.index} never delivered"
        assert (event.value, event.hash) == (value, receipt.hash)
    committed = _committed_from_logs(cluster, watcher.through)
    verdict = check_stream(
        watcher.seen, committed, prefix="k/", from_index=1, through=watcher.through
    )
    assert verdict.ok, verdict.problems


async def _writes_across_kill(
    cluster: LocalCluster, leader: str, watcher: _Follower
) -> list[tuple[str, int, Receipt]]:
    acked: list[tuple[str, int, Receipt]] = []

    async def write(first: int, count: int, client: AsyncClient) -> None:
        for i in range(first, first + count):
            with contextlib.suppress(errors.Timeout):  # indeterminate: the log decides
                acked.append((f"k/{i}", i, await client.put(f"k/{i}", i)))

    async def reached(index: int) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while watcher.through < index:
            assert time.monotonic() < deadline, f"watcher at {watcher.through}, not {index}"
            await asyncio.sleep(0.02)

    async with (
        aiohttp.ClientSession() as session,
        AsyncClient(cluster.addresses, timeout=30) as writer,
    ):
        task = asyncio.create_task(watcher.run(session))
        try:
            await write(0, 30, writer)
            await reached(max(r.index for _, _, r in acked))
            resumes = watcher.resumes
            await asyncio.to_thread(cluster.kill_node, leader)
            await write(30, 30, writer)
            await reached(max(r.index for _, _, r in acked))
            assert watcher.resumes > resumes, "the stream moved to another node"
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    return acked


def test_http_txn_reaching_outside_the_role_is_403_and_writes_nothing(
    guarded: LocalCluster,
) -> None:
    address = _http(guarded)
    sneaky = {
        "compare": [{"key": "app/x", "target": "exists", "against": False}],
        "then": [{"type": "put", "key": "app/x", "value": 1}],
        "else": [{"type": "put", "key": "other/stolen", "value": 1}],
    }
    reply = call(address, "POST", "/v1/txn", sneaky, headers=_bearer(ALICE))
    assert reply.status == 403 and reply.json["code"] == "FORBIDDEN", reply.text
    assert call(address, "GET", "/v1/kv/app/x", headers=_bearer(ROOT)).status == 404
    allowed = {"then": [{"type": "put", "key": "app/mine", "value": 1}]}
    assert call(address, "POST", "/v1/txn", allowed, headers=_bearer(ALICE)).status == 200
