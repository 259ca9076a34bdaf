"""Sessions with honest bounds (Raft dissertation §6.3): what is discarded is refused, never
applied again; a reused request id is refused; every replica discards the same results."""

from __future__ import annotations

from collections import Counter
from typing import Any

import msgspec
from hypothesis import example, given, settings
from hypothesis import strategies as st

from resonetics import limits
from resonetics.machine.kv import KeyValueStore
from resonetics.machine.replicated import ApplyResult, ReplicatedKV
from resonetics.machine.sessions import SessionTable, SessionTableData
from resonetics.raft.entry import GENESIS, Entry, EntryType, make_entry


class Log:
    """A hash-chained sequence of entries, as a leader would propose them."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.prev = GENESIS.hash

    def add(self, type_: EntryType, data: Any) -> Entry:
        entry = make_entry(self.prev, 1, len(self.entries) + 1, type_, data)
        self.entries.append(entry)
        self.prev = entry.hash
        return entry


def command(
    cid: str, rid: str, op: str, args: dict[str, Any], *, ts: int = 0, **session: int
) -> dict[str, Any]:
    return {"client_id": cid, "request_id": rid, "op": op, "args": args, "ts": ts, **session}


class Replica:
    """One replica fed through a shared log (so several replicas see the same entries)."""

    def __init__(self, log: Log, kv: ReplicatedKV | None = None) -> None:
        self.log, self.kv = log, kv or ReplicatedKV()

    def run(self, data: dict[str, Any]) -> ApplyResult:
        return self.kv.apply(self.log.add(EntryType.CLIENT_CMD, data))

    def open(self, cid: str, ts: int = 0) -> int:
        result = self.run(command(cid, f"open-{cid}", "session_open", {}, ts=ts)).result
        return int(result["session"])

    def put(
        self, cid: str, sid: int, seq: int, k: str, v: Any, *, ack: int | None = None, ts: int = 0
    ) -> ApplyResult:
        args = {"k": k, "v": v}
        fields = {"session": sid, "seq": seq, "ack_below": seq if ack is None else ack}
        return self.run(command(cid, f"{cid}-{seq}", "kv_set", args, ts=ts, **fields))

    def value(self, k: str) -> Any:
        return self.kv.read("kv_get", {"k": k})["value"]


def test_retry_with_another_payload_is_refused() -> None:
    r = Replica(Log())
    # Legacy requests (no session fields) are checked as well as sequenced ones.
    first = r.run(command("old", "r1", "kv_set", {"k": "a", "v": 1}))
    reused = r.run(command("old", "r1", "kv_set", {"k": "a", "v": 2}))
    assert first.code == "OK" and reused.code == "BAD_REQUEST" and not reused.dedup
    assert reused.result["field"] == "request_id" and "another request" in reused.message
    assert r.value("a") == 1
    sid = r.open("c")
    r.put("c", sid, 1, "b", "x")
    again = r.put("c", sid, 1, "b", "y")
    assert again.code == "BAD_REQUEST" and r.value("b") == "x"
    # The same payload again is a dedup hit with the original result.
    same = r.put("c", sid, 1, "b", "x")
    assert same.code == "OK" and same.dedup
    # The leader's check before proposing answers the same way, from applied state.
    pre = r.kv.precheck(command("c", "c-1", "kv_set", {"k": "b", "v": "y"}, session=sid, seq=1))
    assert pre is not None and pre.code == "BAD_REQUEST"
    hit = r.kv.precheck(command("c", "c-1", "kv_set", {"k": "b", "v": "x"}, session=sid, seq=1))
    assert hit is not None and hit.code == "OK" and hit.result == same.result


def test_acknowledged_result_is_discarded_and_a_late_retry_is_session_expired() -> None:
    r = Replica(Log())
    sid = r.open("c")
    r.put("c", sid, 1, "a", "first")
    r.put("c", sid, 2, "a", "second", ack=2)  # the client has seq 1's answer
    (session,) = r.kv.sessions.to_data().clients
    assert [item[0] for item in session.results] == [2] and session.acked_below == 2
    late = r.put("c", sid, 1, "a", "first", ack=1)
    assert late.code == "SESSION_EXPIRED" and not late.dedup
    assert "below the session's window" in late.message
    assert r.value("a") == "second"
    # Before proposing, a node never answers SESSION_EXPIRED (it may lag the log).
    stale = command("c", "c-1", "kv_set", {"k": "a", "v": "first"}, session=sid, seq=1)
    assert r.kv.precheck(stale) is None


def test_request_older_than_the_session_window_is_never_applied_again() -> None:
    r = Replica(Log())
    sid = r.open("c")
    r.put("c", sid, 1, "a", "old")
    newer = limits.SESSION_RESULTS_PER_CLIENT_MAX + 5
    for seq in range(2, newer + 2):  # a client that never acknowledges seq 1
        r.put("c", sid, seq, f"k{seq}", seq, ack=1)
    r.put("c", sid, newer + 2, "a", "new", ack=1)
    (session,) = r.kv.sessions.to_data().clients
    assert len(session.results) == limits.SESSION_RESULTS_PER_CLIENT_MAX
    assert session.acked_below > 1
    before = r.kv.machine.snapshot()
    retry = r.put("c", sid, 1, "a", "old", ack=1)
    assert retry.code == "SESSION_EXPIRED"
    assert r.kv.machine.snapshot() == before and r.value("a") == "new"


def test_expired_session_request_is_refused_not_reapplied() -> None:
    table = SessionTable(results_per_client_max=4, clients_max=2, expiry_ms=100)
    r = Replica(Log(), ReplicatedKV(sessions=table))
    sid = r.open("c", ts=0)
    r.put("c", sid, 1, "a", 1, ts=0)
    r.run(command("x", "x1", "kv_set", {"k": "a", "v": 2}, ts=500))  # expires "c"
    assert "c" not in r.kv.sessions.clients()
    retry = r.put("c", sid, 1, "a", 1, ts=500)
    assert retry.code == "SESSION_EXPIRED" and r.value("a") == 2
    # A new session does not revive the old one's requests.
    r.open("c", ts=500)
    assert r.put("c", sid, 1, "a", 1, ts=500).code == "SESSION_EXPIRED" and r.value("a") == 2
    # Evicted by the clients bound: the same answer.
    sid_d = r.open("d", ts=500)
    r.put("d", sid_d, 1, "b", "d", ts=500)
    r.open("e", ts=500)
    r.open("f", ts=500)
    assert "d" not in r.kv.sessions.clients()
    assert r.put("d", sid_d, 1, "b", "again", ts=500).code == "SESSION_EXPIRED"
    assert r.value("b") == "d"


def test_a_legacy_request_is_refused_for_a_client_holding_a_sequenced_session() -> None:
    r = Replica(Log())
    r.open("c")
    legacy = r.run(command("c", "r1", "kv_set", {"k": "a", "v": 1}))
    assert legacy.code == "SESSION_EXPIRED" and r.value("a") is None


def _scripted_log() -> Log:
    """Opens, writes with acks, retries, a reused id, a batch and an expiry."""
    log = Log()
    scratch = Replica(log)
    s1, s2 = scratch.open("c1"), scratch.open("c2", ts=5)
    for seq in range(1, 9):
        scratch.put("c1", s1, seq, f"k{seq % 3}", seq, ack=max(1, seq - 2), ts=seq * 10)
        scratch.put("c2", s2, seq, f"k{seq % 2}", -seq, ack=1, ts=seq * 10)
    scratch.put("c1", s1, 3, "k0", 3, ack=3, ts=100)  # a retry below the window
    scratch.put("c2", s2, 8, "k0", "other", ack=8, ts=100)  # a reused id
    batch = [
        command("c1", "c1-9", "kv_set", {"k": "z", "v": 9}, ts=110, session=s1, seq=9, ack_below=9),
        command("c3", "legacy", "kv_delete", {"k": "k1"}, ts=120),
    ]
    log.add(EntryType.CLIENT_BATCH, batch)
    log.add(EntryType.CLIENT_CMD, command("c4", "late", "kv_set", {"k": "y", "v": 0}, ts=10**9))
    return log


def test_session_table_is_identical_on_every_replica_after_acks() -> None:
    log = _scripted_log()
    replicas = [ReplicatedKV() for _ in range(3)]
    results = [[kv.apply(e) for e in log.entries] for kv in replicas[:2]]
    assert results[0] == results[1]
    # The third restarts from a snapshot taken part way, then catches up.
    cut = len(log.entries) // 2
    for e in log.entries[:cut]:
        replicas[2].apply(e)
    restored = ReplicatedKV()
    restored.restore(replicas[2].snapshot())
    for e in log.entries[cut:]:
        restored.apply(e)
    replicas[2] = restored
    tables = [kv.sessions.to_data() for kv in replicas]
    assert tables[0] == tables[1] == tables[2]
    assert len({kv.snapshot() for kv in replicas}) == 1
    assert len({kv.sessions.bytes for kv in replicas}) == 1
    assert [c.client_id for c in tables[0].clients] == ["c4"]  # log time moved on a day


def test_a_format_1_session_table_still_restores() -> None:
    old = b'{"now_ms":7,"clients":[["c",7,[["r1",{"ok":true}]]]]}'
    table = SessionTable()
    table.load_data(msgspec.json.decode(old, type=SessionTableData))
    assert table.lookup("c", "r1") == (True, {"ok": True})
    # No digest was stored: the old answer stands for any payload.
    assert table.check("c", "r1", "any-digest", None) is not None


def test_table_bytes_stay_within_their_budget() -> None:
    table = SessionTable(bytes_per_client_max=2_000, table_bytes_max=10_000)
    for i in range(200):
        table.record(f"c{i % 7}", f"r{i}", {"value": "x" * 300}, digest="d")
        assert table.bytes <= 10_000
        per_client = [
            sum(len(msgspec.json.encode(item[2])) for item in s.results)
            for s in table.to_data().clients
        ]
        assert all(size <= 2_000 for size in per_client)


# --- the dumb model: "each request is applied at most once" --------------------------------
class CountingStore(KeyValueStore):
    """Counts how often each key is written: every request writes its own token key."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: Counter[str] = Counter()

    def apply(self, index: int, command: Any) -> dict[str, Any]:
        self.writes[command["args"]["k"]] += 1
        return super().apply(index, command)


_action = st.one_of(
    st.tuples(st.just("open"), st.integers(0, 2)),
    st.tuples(st.just("new"), st.integers(0, 2), st.booleans()),
    st.tuples(st.just("retry"), st.integers(0, 2), st.integers(0, 30), st.booleans()),
    st.tuples(st.just("time"), st.integers(0, 80)),
)


@settings(max_examples=200, deadline=None)
@given(actions=st.lists(_action, max_size=80))
def test_sequenced_requests_are_applied_at_most_once_against_a_dumb_model(
    actions: list[tuple[Any, ...]],
) -> None:
    table = SessionTable(results_per_client_max=3, clients_max=2, expiry_ms=100)
    store = CountingStore()
    r = Replica(Log(), ReplicatedKV(store, sessions=table))
    ts = 0
    session: dict[int, int] = {}  # the model's client -> its current session id
    next_seq: dict[int, int] = {}
    sent: dict[int, list[tuple[int, int, Any]]] = {0: [], 1: [], 2: []}  # (sid, seq, result)
    outstanding: dict[int, set[int]] = {0: set(), 1: set(), 2: set()}
    for action in actions:
        kind, c = action[0], action[1]
        cid = f"c{c}"
        if kind == "time":
            ts += c
            continue
        if kind == "open" or (kind == "new" and c not in session):
            session[c], next_seq[c] = r.open(cid, ts=ts), 1
            outstanding[c] = set()
            continue
        if kind == "new":
            seq = next_seq[c]
            next_seq[c] += 1
            outstanding[c].add(seq)
            ack = min(outstanding[c])
            sid = session[c]
            got = r.put(cid, sid, seq, f"{cid}/{sid}/{seq}", seq, ack=ack, ts=ts)
            if got.code == "SESSION_EXPIRED":  # only if the session is gone
                assert cid not in table.clients()
                del session[c]
            else:
                assert got.code == "OK" and not got.dedup
            sent[c].append((sid, seq, got.result))
            if action[2]:  # the call returned: no longer awaited
                outstanding[c].discard(seq)
            continue
        if not sent[c]:
            continue
        sid, seq, original = sent[c][action[2] % len(sent[c])]
        value = seq if not action[3] else "tampered"
        ack = min(outstanding[c] | {seq}) if sid == session.get(c) else seq
        got = r.put(cid, sid, seq, f"{cid}/{sid}/{seq}", value, ack=ack, ts=ts)
        if got.code == "OK":
            assert got.dedup and got.result == original and not action[3]
        else:
            assert got.code in ("SESSION_EXPIRED", "BAD_REQUEST")
    assert all(n == 1 for n in store.writes.values())  # applied at most once, each


_field = st.one_of(
    st.none(), st.booleans(), st.integers(-1, 6), st.sampled_from(["a", "b", "1", "r1", "r2"])
)


_HIT = {"client_id": "a", "request_id": "a-1", "op": "kv_set", "args": {"k": "x", "v": 1}}


@settings(max_examples=200, deadline=None)
@example(held=[("a", 1, True)], asked={**_HIT, "session": 1, "seq": 1, "ack_below": 1})
@example(held=[("a", 1, True)], asked={**_HIT, "session": 1, "seq": 1, "args": {"k": "y"}})
@example(held=[("b", 1, False)], asked={**_HIT, "client_id": "b", "request_id": "r1"})
@given(
    held=st.lists(st.tuples(st.sampled_from(["a", "b"]), st.integers(1, 5), st.booleans())),
    asked=st.fixed_dictionaries(
        {"op": st.sampled_from(["kv_set", "session_open"]) | _field},
        optional={
            "client_id": st.sampled_from(["a", "b", "c"]) | _field,
            "request_id": _field,
            "args": st.fixed_dictionaries({"k": st.just("x"), "v": st.integers(0, 2)}) | _field,
            "session": _field,
            "seq": _field,
            "ack_below": _field,
        },
    ),
)
def test_the_leaders_quick_look_before_proposing_answers_as_the_full_check(
    held: list[tuple[str, int, bool]], asked: dict[str, Any]
) -> None:
    """A leader skips converting and hashing a request when no result is remembered under
    its key: whatever the request holds (wrong types, missing fields, another session),
    the answer is the full check's."""
    r = Replica(Log())
    sessions: dict[str, int] = {}
    for cid, seq, sequenced in held:
        if sequenced:
            sid = sessions.setdefault(cid, r.open(cid))
            r.put(cid, sid, seq, "x", seq % 3)
        else:
            r.run(command(f"legacy-{cid}", f"r{seq % 3}", "kv_set", {"k": "x", "v": seq % 3}))
    if isinstance(asked.get("client_id"), str) and asked.get("client_id", "").startswith("b"):
        asked["client_id"] = "legacy-b"  # some asks of legacy clients too
    assert r.kv.precheck(asked) == r.kv._precheck_held(asked)


def test_the_leaders_quick_look_still_answers_what_is_remembered() -> None:
    r = Replica(Log())
    sid = r.open("a")
    r.put("a", sid, 1, "x", 1)
    r.run(command("old", "r1", "kv_set", {"k": "y", "v": 1}))
    same = {**_HIT, "session": sid, "seq": 1, "ack_below": 1}
    again = r.kv.precheck(same)
    assert again is not None and again.code == "OK"
    reused = r.kv.precheck({**same, "args": {"k": "x", "v": 2}})
    assert reused is not None and reused.code == "BAD_REQUEST"
    legacy = r.kv.precheck(command("old", "r1", "kv_set", {"k": "y", "v": 1}))
    assert legacy is not None and legacy.code == "OK"
    assert r.kv.precheck({**same, "seq": 2}) is None  # nothing remembered under seq 2
