"""Session table: bounded per client and in clients, expired by log time only."""

from __future__ import annotations

import gc
import io

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from resonetics.machine.sessions import SessionTable, SessionTableData, Verdict


def table(**kw: int) -> SessionTable:
    return SessionTable(**{"results_per_client_max": 3, "clients_max": 2, "expiry_ms": 100, **kw})


def test_lookup_finds_recorded_results_and_never_touches_lru() -> None:
    t = table()
    t.record("a", "r1", {"x": 1})
    t.record("b", "r1", None)
    assert t.lookup("a", "r1") == (True, {"x": 1})
    assert t.lookup("b", "r1") == (True, None)
    assert t.lookup("a", "r2") == (False, None)
    assert t.lookup("zz", "r1") == (False, None)
    assert t.clients() == ["a", "b"]  # lookup of "a" did not make it most recent


def test_oldest_results_of_a_client_are_evicted_first() -> None:
    t = table()
    for i in range(5):
        t.record("a", f"r{i}", i)
    assert [t.lookup("a", f"r{i}")[0] for i in range(5)] == [False, False, True, True, True]


def test_least_recently_used_client_is_evicted() -> None:
    t = table()
    t.record("a", "r1", 1)
    t.record("b", "r1", 1)
    t.touch("a")
    t.record("c", "r1", 1)
    assert t.clients() == ["a", "c"]


def test_sessions_expire_by_log_time_and_log_time_never_goes_back() -> None:
    t = table()
    t.advance(1000)
    t.record("a", "r1", 1)
    t.advance(1050)
    t.record("b", "r1", 1)
    assert t.advance(500) == [] and t.now_ms == 1050  # a leader with a slow clock
    assert t.advance(1100) == []  # exactly expiry_ms idle: kept
    assert t.advance(1101) == ["a"]
    assert t.clients() == ["b"]
    assert t.advance(10_000) == ["b"] and len(t) == 0


def test_table_survives_its_snapshot_form_exactly() -> None:
    t = table()
    t.advance(7)
    t.record("a", "r1", {"ok": True})
    t.record("b", "r2", [1])
    t.record("a", "r3", "x")
    data = msgspec.json.decode(msgspec.json.encode(t.to_data()), type=SessionTableData)
    u = table()
    u.load_data(data)
    assert u.to_data() == t.to_data()
    assert u.clients() == ["b", "a"] and u.now_ms == 7
    assert u.lookup("a", "r1") == (True, {"ok": True})


_steps = st.lists(
    st.tuples(
        st.sampled_from(["record", "touch", "advance"]),
        st.sampled_from(["a", "b", "c", "d"]),
        st.integers(0, 5),  # request number
        st.integers(-50, 120),  # log-time step (leaders' clocks may go back)
    ),
    max_size=60,
)


def test_remembered_results_add_nothing_the_cyclic_collector_tracks() -> None:
    """A result lives until evicted, long enough to reach the collector's oldest
    generation: a tracked one per write made a full collection (a pause that walks the
    whole heap) every few tens of thousands of writes. Results are kept encoded."""
    t = SessionTable()
    t.record("c", "r0", {"ok": True, "receipt": {"index": 0, "term": 1, "hash": "h"}})
    gc.collect()
    before = len(gc.get_objects())
    for i in range(1, 2_001):
        receipt = {"index": i, "term": 1, "hash": "h" * 64}
        t.record("c", f"r{i}", {"ok": True, "receipt": receipt}, digest="d")
    gc.collect()
    assert len(gc.get_objects()) - before < 100
    assert t.lookup("c", "r2000") == (True, {"ok": True, "receipt": receipt})
    assert t.check("c", "r2000", "d", None) == Verdict("OK", {"ok": True, "receipt": receipt})


@settings(max_examples=150, deadline=None)
@given(steps=_steps)
def test_bounds_and_lru_order_hold_after_any_sequence(
    steps: list[tuple[str, str, int, int]],
) -> None:
    t, ts, applied = table(), 0, set[tuple[str, str]]()
    for action, cid, n, step in steps:
        ts += step
        if action == "advance":
            t.advance(ts)
        elif action == "touch":
            t.touch(cid)
        elif (cid, f"r{n}") not in applied and not t.lookup(cid, f"r{n}")[0]:
            t.record(cid, f"r{n}", n)
            applied.add((cid, f"r{n}"))
        data = t.to_data()
        lasts = [s.last_ms for s in data.clients]
        assert lasts == sorted(lasts)  # LRU order is log-time order
        assert all(t.now_ms - last <= t.expiry_ms for last in lasts) or action != "advance"
        assert len(data.clients) <= t.clients_max
        assert all(len(s.results) <= t.results_per_client_max for s in data.clients)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("record"), st.integers(1, 40)),
            st.tuples(st.just("ack"), st.integers(1, 45)),
            st.tuples(st.just("snapshot"), st.just(0)),
        ),
        max_size=60,
    )
)
def test_acknowledge_and_eviction_drop_exactly_the_seqs_a_scan_would(
    steps: list[tuple[str, int]],
) -> None:
    """The seq heap is an index, not a rule: whatever order seqs are applied in (retries
    land late), an ack drops exactly the results below it, an eviction the smallest seq,
    and a snapshot restores the same table."""
    t = SessionTable(results_per_client_max=8, clients_max=4, expiry_ms=10**9)
    sid = t.open("c")
    held: dict[int, int] = {}  # the model: seq -> result
    mark = 1
    for action, n in steps:
        if action == "record":
            if n in held or n < mark:
                continue  # check() refuses these before record is reached
            t.record("c", f"r{n}", n, seq=n)
            held[n] = n
            if len(held) > 8:
                smallest = min(held)
                del held[smallest]
                mark = max(mark, smallest + 1)
        elif action == "ack":
            t.acknowledge("c", sid, n)
            if n > mark:
                mark = n
                held = {k: v for k, v in held.items() if k >= n}
        else:
            restored = SessionTable(results_per_client_max=8, clients_max=4, expiry_ms=10**9)
            restored.load_data(t.to_data())
            t = restored
        data = t.to_data().clients[0]
        assert {r[0]: msgspec.json.decode(r[2]) for r in data.results} == held
        assert data.acked_below == mark


_SORTED = msgspec.json.Encoder(order="sorted")


@settings(max_examples=200, deadline=None)
@given(
    writes=st.lists(st.tuples(st.integers(0, 12), st.integers(0, 400)), max_size=80),
    slice_clients=st.integers(1, 5),
    later=st.lists(
        st.tuples(st.sampled_from(["record", "ack", "open", "expire"]), st.integers(0, 15)),
        max_size=12,
    ),
)
def test_the_table_written_a_slice_of_clients_at_a_time_is_its_snapshot_at_the_first_step(
    writes: list[tuple[int, int]], slice_clients: int, later: list[tuple[str, int]]
) -> None:
    """``snapshot_steps`` writes exactly what encoding ``to_data`` gives, a slice of
    clients per step, and nothing done to the table after its first step leaks in:
    results recorded or evicted, acknowledgements, sessions replaced, clients dropped
    or expired (the results dicts it holds are copied before they change)."""
    t = SessionTable(results_per_client_max=4, clients_max=10, expiry_ms=1_000)
    sids: dict[str, int] = {}
    for n, (client, value) in enumerate(writes):
        cid = f"c{client}"
        if client % 3 == 0:  # a sequenced client
            sid = sids.get(cid) or sids.setdefault(cid, t.open(cid))
            if t.holds(cid, n + 1) or t.check(cid, "r", "d", {"session": sid, "seq": n + 1}):
                continue  # evicted meanwhile (the session is gone or replaced)
            t.record(cid, f"r{n}", {"ok": True, "v": value}, digest=f"d{n}", seq=n + 1)
        elif cid not in sids:
            t.record(cid, f"r{n}", {"ok": True, "v": value}, digest=f"d{n}")
    expected = _SORTED.encode(t.to_data())
    out = io.BytesIO()
    steps = t.snapshot_steps(out, _SORTED, slice_clients)
    next(steps)  # the table is fixed here
    assert out.getvalue() == b""  # nothing written yet: the caller writes first
    for n, (action, client) in enumerate(later):
        cid = f"c{client}"
        if action == "record" and cid not in sids:
            t.record(cid, f"late{n}", {"ok": False}, digest="x")
        elif action == "ack" and cid in sids:
            t.acknowledge(cid, sids[cid], 10_000)
        elif action == "open":
            sids[cid] = t.open(cid)
        elif action == "expire":
            t.advance(t.now_ms + 2_000)
    turns = sum(1 for _ in steps)
    assert out.getvalue() == expected
    slices = -(-len(msgspec.json.decode(expected)["clients"]) // slice_clients)
    assert turns == max(0, slices - 1)  # a step between two slices


def test_a_request_digest_is_the_blake2b_128_of_its_canonical_request() -> None:
    """Digests are kept in snapshots and compared with retries across versions: the
    value must stay BLAKE2b-128 of the canonical ``[request_id, op, args]``, whatever
    way it is computed (pinned here for one request)."""
    import hashlib

    from resonetics.machine.sessions import request_digest

    args = {"v": [1, {"b": 2, "a": "é"}], "k": "key"}
    canonical = b'["r1","kv_set",{"k":"key","v":[1,{"a":"\xc3\xa9","b":2}]}]'
    assert (
        request_digest("r1", "kv_set", args)
        == hashlib.blake2b(canonical, digest_size=16).hexdigest()
    )
    assert request_digest("r1", "kv_set", args) == "9e58ffb3c876e1e51f438a398427c212"
    assert request_digest("r2", "kv_set", args) != request_digest("r1", "kv_set", args)
