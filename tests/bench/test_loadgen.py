"""The load generator against an in-process fake system (no sockets, no timing assertions)."""

from __future__ import annotations

import asyncio

import pytest
from bench.loadgen import RawRun, connections_for, run_load, split_concurrency
from bench.workload import MIX_READ_FRACTION, OpChooser, parse_workloads


class FakeAdapter:
    """Records what it is asked; answers after one event-loop turn; tracks in-flight peak."""

    inflight = 0
    peak = 0
    opened = 0

    def __init__(self, fail: bool = False) -> None:
        self.writes: list[tuple[str, str]] = []
        self.reads: list[str] = []
        self.fail = fail
        self.closed = False

    async def _op(self) -> None:
        FakeAdapter.inflight += 1
        FakeAdapter.peak = max(FakeAdapter.peak, FakeAdapter.inflight)
        try:
            await asyncio.sleep(0.0005)
            if self.fail:
                raise ConnectionResetError("fake system is down")
        finally:
            FakeAdapter.inflight -= 1

    async def write(self, key: str, value: str) -> None:
        self.writes.append((key, value))
        await self._op()

    async def read(self, key: str) -> None:
        self.reads.append(key)
        await self._op()

    async def close(self) -> None:
        self.closed = True


def _run(
    workload: str, n: int, per_conn: int = 0, fail: bool = False
) -> tuple[RawRun, list[FakeAdapter]]:
    FakeAdapter.peak = FakeAdapter.inflight = 0
    made: list[FakeAdapter] = []

    async def factory() -> FakeAdapter:
        made.append(FakeAdapter(fail))
        return made[-1]

    raw = asyncio.run(
        run_load(
            factory, parse_workloads(workload)[0], n, 0.15, 0.05, inflight_per_connection=per_conn
        )
    )
    return raw, made


def test_keeps_exactly_n_in_flight_and_closes_connections() -> None:
    raw, made = _run("write", 16)
    assert FakeAdapter.peak == 16
    assert raw.ok > 0
    assert raw.errors == 0
    assert len(raw.latencies_s) == raw.ok
    assert all(a.closed for a in made)
    assert len(made) == connections_for(16, 0)


def test_one_connection_per_request_when_not_pipelined() -> None:
    _, made = _run("read", 8, per_conn=1)
    assert len(made) == 8
    assert all(a.reads and not a.writes for a in made)


def test_writes_carry_100_byte_values() -> None:
    _, made = _run("write", 2)
    values = {v for a in made for _, v in a.writes}
    assert values
    assert all(len(v.encode()) == 100 for v in values)


def test_failures_are_counted_not_raised() -> None:
    raw, _ = _run("write", 4, fail=True)
    assert raw.ok == 0
    assert raw.errors > 0
    assert raw.first_error is not None
    assert "fake system is down" in raw.first_error


def test_mix_is_mostly_reads() -> None:
    import random

    chooser = OpChooser("mix", random.Random(7))
    writes = sum(chooser.next()[0] for _ in range(10_000))
    assert abs(writes / 10_000 - (1 - MIX_READ_FRACTION)) < 0.02


def test_bad_arguments_are_refused() -> None:
    async def factory() -> FakeAdapter:
        return FakeAdapter()

    with pytest.raises(ValueError):
        asyncio.run(run_load(factory, "write", 0, 1.0, 0.0))
    with pytest.raises(ValueError):
        parse_workloads("write,delete")


@pytest.mark.parametrize(
    ("n", "procs", "expected"), [(256, 2, [128, 128]), (5, 2, [3, 2]), (1, 4, [1])]
)
def test_split_concurrency(n: int, procs: int, expected: list[int]) -> None:
    assert split_concurrency(n, procs) == expected
    assert sum(split_concurrency(n, procs)) == n


def test_merge_adds_counts() -> None:
    a = RawRun(ok=2, errors=1, latencies_s=[0.1, 0.2], cpu_s=1.0, window_s=4.0)
    a.merge(RawRun(ok=3, latencies_s=[0.3], first_error="x", cpu_s=0.5, window_s=4.0))
    assert (a.ok, a.errors, len(a.latencies_s), a.cpu_s, a.first_error) == (5, 1, 3, 1.5, "x")


def test_fixed_connection_count_is_honoured() -> None:
    """The library-client row runs N requests through exactly one connection."""
    made: list[FakeAdapter] = []

    async def factory() -> FakeAdapter:
        made.append(FakeAdapter())
        return made[-1]

    raw = asyncio.run(run_load(factory, "write", 64, 0.1, 0.02, connections=1))
    assert len(made) == 1 and raw.ok > 0
    assert raw.cpu_s >= 0.0
