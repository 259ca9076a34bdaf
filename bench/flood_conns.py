"""The flood bench's instruments: many raw client connections, samplers and probes.

Everything here talks to a node only through its client port, as an outsider
would: raw asyncio connections (bound to a chosen loopback source address) that
send nothing, half a line, junk or one byte a second, and watch for the node
closing them; a sampler of the node process's RSS and open descriptors from
``/proc``; a ``status`` poller on one persistent connection per node; and
batches of new well-behaved ``resonetics.Client``s. Every connection and task
opened here is closed by its owner (``Flock.close_all``, ``finally`` blocks).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bench.flood_metrics import junk_lines, parse_status_kb, spread
from resonetics.client import Client


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


@dataclass
class ConnRecord:
    """What happened to one flood connection (times in seconds since the flock's start)."""

    source: str
    opened_at: float | None = None
    connect_error: str | None = None
    sent: int = 0
    sent_done_at: float | None = None
    received: int = 0
    #: When the node closed it (EOF or reset seen), None if it was still open when we closed it.
    closed_by_node_at: float | None = None
    close_kind: str | None = None


@dataclass
class _Live:
    record: ConnRecord
    writer: asyncio.StreamWriter
    watcher: asyncio.Task[None]


@dataclass
class Flock:
    """Many raw connections to one address, spread round-robin over source addresses."""

    address: str
    sources: list[str]
    connect_timeout_s: float = 10.0
    connecting_max: int = 64
    started: float = field(default_factory=time.monotonic)
    records: list[ConnRecord] = field(default_factory=list)
    _live: list[_Live] = field(default_factory=list)

    def now(self) -> float:
        return time.monotonic() - self.started

    async def open_many(self, count: int) -> list[asyncio.StreamWriter | None]:
        """Open ``count`` connections (at most ``connecting_max`` connecting at once, so the
        listen backlog is not what is measured). Returns each one's writer, None if it failed."""
        gate = asyncio.Semaphore(self.connecting_max)

        async def one(i: int) -> asyncio.StreamWriter | None:
            async with gate:
                return await self.open_one(self.sources[i % len(self.sources)])

        return list(await asyncio.gather(*(one(i) for i in range(count))))

    async def open_one(self, source: str) -> asyncio.StreamWriter | None:
        rec = ConnRecord(source)
        self.records.append(rec)
        host, port = split_address(self.address)
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, local_addr=(source, 0)),
                self.connect_timeout_s,
            )
        except (OSError, TimeoutError) as exc:
            rec.connect_error = type(exc).__name__ + (
                f" errno={exc.errno}" if isinstance(exc, OSError) and exc.errno else ""
            )
            return None
        rec.opened_at = self.now()
        watcher = asyncio.create_task(self._watch(reader, rec))
        self._live.append(_Live(rec, writer, watcher))
        return writer

    def record_of(self, writer: asyncio.StreamWriter) -> ConnRecord:
        for live in self._live:
            if live.writer is writer:
                return live.record
        raise KeyError("not a connection of this flock")

    async def _watch(self, reader: asyncio.StreamReader, rec: ConnRecord) -> None:
        """Read (and count) whatever the node answers, until it closes the connection."""
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    rec.close_kind = "eof"
                    break
                rec.received += len(data)
        except OSError as exc:
            rec.close_kind = type(exc).__name__
        rec.closed_by_node_at = self.now()

    def open_count(self) -> int:
        return sum(1 for live in self._live if live.record.closed_by_node_at is None)

    async def close_all(self) -> None:
        """Close every connection from our side (stopping the watchers first)."""
        for live in self._live:
            live.watcher.cancel()
        for live in self._live:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await live.watcher
            live.writer.transport.abort()
        self._live.clear()
        await asyncio.sleep(0)

    def summary(self, *, hold_end: float | None = None) -> dict[str, Any]:
        """Counts and close times of the flock (``closed_by_node``: before we closed it)."""
        opened = [r for r in self.records if r.opened_at is not None]
        closed = [r for r in opened if r.closed_by_node_at is not None]
        errors: dict[str, int] = {}
        for r in self.records:
            if r.connect_error is not None:
                errors[r.connect_error] = errors.get(r.connect_error, 0) + 1
        after_open = [
            r.closed_by_node_at - r.opened_at
            for r in closed
            if r.opened_at is not None and r.closed_by_node_at is not None
        ]
        quick = sum(1 for d in after_open if d < 1.0)
        out: dict[str, Any] = {
            "attempted": len(self.records),
            "connected": len(opened),
            "connect_errors": errors,
            "closed_by_node": len(closed),
            "closed_by_node_within_1s_of_open": quick,
            "close_after_open_s": spread(after_open).to_dict(),
            "close_kinds": _count(r.close_kind for r in closed),
            "bytes_answered": sum(r.received for r in opened),
        }
        if hold_end is not None:
            out["still_open_at_end"] = len(opened) - len(closed)
        return out


def _count(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        key = str(item)
        out[key] = out.get(key, 0) + 1
    return out


async def send_partial(
    writer: asyncio.StreamWriter, rec: ConnRecord, total: int, chunk: bytes, now: Any
) -> None:
    """``total`` bytes with no newline, a chunk at a time, waiting for the socket to drain
    after each chunk: the node's reading pace, not our buffers, sets the rate."""
    try:
        while rec.sent < total and rec.closed_by_node_at is None:
            piece = chunk[: total - rec.sent]
            writer.write(piece)
            await writer.drain()
            rec.sent += len(piece)
        rec.sent_done_at = now()
    except OSError:
        pass  # the node closed it mid-line: the watcher records when


# --- the node process ----------------------------------------------------------------------
@dataclass
class Sample:
    t: float
    rss_kb: int | None
    fds: int | None


@dataclass
class ProcSampler:
    """Samples a process's VmRSS and open descriptors every ``interval_s`` (from /proc)."""

    pid: int
    started: float
    interval_s: float = 0.5
    samples: list[Sample] = field(default_factory=list)
    exited_at: float | None = None

    def sample(self) -> Sample:
        t = time.monotonic() - self.started
        try:
            with open(f"/proc/{self.pid}/status", encoding="ascii") as f:
                rss = parse_status_kb(f.read())
            fds: int | None = len(os.listdir(f"/proc/{self.pid}/fd"))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            rss, fds = None, None
        s = Sample(round(t, 2), rss, fds)
        self.samples.append(s)
        if rss is None and self.exited_at is None:
            self.exited_at = t
        return s

    async def run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval_s)

    def peak_mb(self, since: float = 0.0, until: float = float("inf")) -> float | None:
        kbs = [s.rss_kb for s in self.samples if s.rss_kb is not None and since <= s.t <= until]
        return round(max(kbs) / 1024, 1) if kbs else None

    def peak_fds(self) -> int | None:
        fds = [s.fds for s in self.samples if s.fds is not None]
        return max(fds) if fds else None

    def series(self) -> list[list[float | int | None]]:
        return [[s.t, s.rss_kb, s.fds] for s in self.samples]


# --- status polling ----------------------------------------------------------------------
_STATUS = (
    b'{"kind":"ClientRequest","id":1,"t":0,"v":1,"payload":'
    b'{"client_id":"flood-poller","request_id":"p","op":"status","args":{}}}\n'
)


@dataclass
class StatusPoller:
    """Each node's term and leader, asked every ``interval_s`` on one connection per node.

    A node that does not answer within the interval is absent from that poll (and its
    connection is reopened), so a slow node shows as gaps, not as a stalled poller.
    """

    addresses: dict[str, str]
    interval_s: float = 0.2
    polls: list[dict[str, tuple[int, str | None]]] = field(default_factory=list)
    missed: dict[str, int] = field(default_factory=dict)
    _conns: dict[str, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = field(
        default_factory=dict
    )

    async def _ask(self, node: str) -> tuple[int, str | None] | None:
        try:
            if node not in self._conns:
                host, port = split_address(self.addresses[node])
                self._conns[node] = await asyncio.open_connection(host, port)
            reader, writer = self._conns[node]
            writer.write(_STATUS)
            line = await reader.readline()
            result = json.loads(line)["payload"]["result"]
            return int(result["term"]), result.get("leader")
        except (OSError, ValueError, KeyError, TypeError, asyncio.CancelledError):
            self._drop(node)
            raise_if_cancelled()
            return None

    def _drop(self, node: str) -> None:
        conn = self._conns.pop(node, None)
        if conn is not None:
            conn[1].transport.abort()

    async def poll_once(self) -> dict[str, tuple[int, str | None]]:
        poll: dict[str, tuple[int, str | None]] = {}

        async def one(node: str) -> None:
            try:
                answer = await asyncio.wait_for(self._ask(node), self.interval_s * 5)
            except TimeoutError:
                self._drop(node)
                answer = None
            if answer is None:
                self.missed[node] = self.missed.get(node, 0) + 1
            else:
                poll[node] = answer

        await asyncio.gather(*(one(n) for n in self.addresses))
        self.polls.append(poll)
        return poll

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            await self.poll_once()
            await asyncio.sleep(max(0.0, self.interval_s - (time.monotonic() - started)))

    def close(self) -> None:
        for node in list(self._conns):
            self._drop(node)


def raise_if_cancelled() -> None:
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


# --- well-behaved clients ------------------------------------------------------------------
def one_client(addresses: list[str], i: int, timeout_s: float) -> dict[str, Any]:
    """A new ``resonetics.Client`` (its own connection): one put then one get, timed."""
    started = time.perf_counter()
    client = Client(addresses, timeout=timeout_s)
    error: str | None = None
    try:
        key = f"flood-probe-{os.getpid()}-{i}-{time.monotonic_ns()}"
        client.put(key, i)
        put_s = time.perf_counter() - started
        ok = client.get(key) == i
        if not ok:
            error = "get returned another value"
    except Exception as exc:  # any failure is a figure here, not a crash of the bench
        error = f"{type(exc).__name__}: {exc}"[:200]
        put_s = None
        ok = False
    finally:
        with contextlib.suppress(Exception):
            client.close()
    total = time.perf_counter() - started
    return {
        "ok": ok,
        "latency_s": round(total, 4),
        "put_s": None if put_s is None else round(put_s, 4),
        "error": error,
    }


async def new_clients(addresses: list[str], count: int, timeout_s: float) -> dict[str, Any]:
    """``count`` new clients started together, each in its own thread and connection."""
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=count) as pool:
        results = await asyncio.gather(
            *(loop.run_in_executor(pool, one_client, addresses, i, timeout_s) for i in range(count))
        )
    served = [r for r in results if r["ok"]]
    return {
        "count": count,
        "served": len(served),
        "served_within_1s": sum(1 for r in served if r["latency_s"] <= 1.0),
        "latencies_s": [r["latency_s"] for r in results],
        "errors": _count(r["error"] for r in results if r["error"]),
    }


# --- junk ----------------------------------------------------------------------------------
_CODE = re.compile(rb'"code":\s*"([A-Z_]+)"')


async def junk_flood(address: str, connections: int, seconds: float) -> dict[str, Any]:
    """Junk lines on ``connections`` connections as fast as the node takes them."""
    host, port = split_address(address)
    batch = b"".join(junk_lines()) * 64
    per_batch = len(junk_lines()) * 64
    sent = [0] * connections
    answered = [0] * connections
    codes: dict[str, int] = {}
    closed: list[float | None] = [None] * connections
    started = time.monotonic()
    stop_at = started + seconds

    async def reader_loop(i: int, reader: asyncio.StreamReader) -> None:
        tail = b""
        while True:
            data = await reader.read(1 << 16)
            if not data:
                closed[i] = round(time.monotonic() - started, 3)
                return
            answered[i] += data.count(b"\n")
            data = tail + data
            cut = data.rfind(b"\n") + 1
            for code in _CODE.findall(data[:cut]):
                key = code.decode()
                codes[key] = codes.get(key, 0) + 1
            tail = data[cut:][-4096:]

    async def one(i: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        watcher = asyncio.create_task(reader_loop(i, reader))
        try:
            while time.monotonic() < stop_at and not watcher.done():
                writer.write(batch)
                await writer.drain()
                sent[i] += per_batch
            await _quiet(lambda: answered[i], watcher)  # let the last answers arrive
        except OSError:
            pass
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher
            writer.transport.abort()

    await asyncio.gather(*(one(i) for i in range(connections)))
    return {
        "connections": connections,
        "seconds": seconds,
        "lines_sent": sum(sent),
        "lines_answered": sum(answered),
        "answer_codes": dict(sorted(codes.items())),
        "closed_by_node_at_s": closed,
    }


async def _quiet(
    count: Callable[[], int], watcher: asyncio.Task[None], cap_s: float = 10.0
) -> None:
    """Wait until ``count`` has not grown for a second (or ``cap_s``, or the node closed)."""
    stop_at = time.monotonic() + cap_s
    last = -1
    while count() != last and time.monotonic() < stop_at and not watcher.done():
        last = count()
        await asyncio.sleep(1.0)


def junk_worker(address: str, connections: int, seconds: float, out: Any) -> None:
    """Entry point of the junk process (its own interpreter, so its CPU is not the probe's)."""
    out.put(asyncio.run(junk_flood(address, connections, seconds)))


async def slowloris(address: str, cap_s: float, byte: bytes = b"{") -> dict[str, Any]:
    """One connection sending one byte a second, never a newline: when does the node close it?"""
    host, port = split_address(address)
    reader, writer = await asyncio.open_connection(host, port)
    started = time.monotonic()
    sent = 0
    closed_at: float | None = None
    try:
        while time.monotonic() - started < cap_s:
            try:
                writer.write(byte)
                await writer.drain()
                sent += 1
                data = await asyncio.wait_for(reader.read(4096), 1.0)
            except TimeoutError:
                continue
            except OSError:
                data = b""
            if not data:
                closed_at = time.monotonic() - started
                break
    finally:
        writer.transport.abort()
    return {
        "cap_s": cap_s,
        "bytes_sent": sent,
        "closed_by_node_after_s": None if closed_at is None else round(closed_at, 2),
        "still_open_at_cap": closed_at is None,
    }


__all__ = [
    "ConnRecord",
    "Flock",
    "ProcSampler",
    "StatusPoller",
    "junk_flood",
    "junk_worker",
    "new_clients",
    "send_partial",
    "slowloris",
    "split_address",
]
