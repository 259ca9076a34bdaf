"""ReplicatedKV: exactly-once apply, receipts, contiguity, deterministic snapshots."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resonetics import limits
from resonetics.errors import InvariantViolation, StorageCorruption
from resonetics.machine.base import StateMachine
from resonetics.machine.kv import KeyValueStore
from resonetics.machine.replicated import ReplicatedKV, receipt_of
from resonetics.machine.sessions import SessionTable
from resonetics.raft.entry import GENESIS, Entry, EntryType, Receipt, make_entry
from resonetics.raft.packing import canonical, packed, unpacked
from tests.older_formats import older_state_doc


class Log:
    """Builds a hash-chained sequence of entries, as a leader would."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.prev = GENESIS.hash

    def add(self, type_: EntryType, data: Any = None, term: int = 1) -> Entry:
        entry = make_entry(self.prev, term, len(self.entries) + 1, type_, data)
        self.entries.append(entry)
        self.prev = entry.hash
        return entry

    def cmd(self, cid: str, rid: str, op: str, args: dict[str, Any], ts: int = 0) -> Entry:
        data = {"client_id": cid, "request_id": rid, "op": op, "args": args, "ts": ts}
        return self.add(EntryType.CLIENT_CMD, data)


def test_write_result_carries_receipt_of_its_entry() -> None:
    log, kv = Log(), ReplicatedKV()
    e = log.cmd("c", "r1", "kv_set", {"k": "a", "v": 1})
    applied = kv.apply(e)
    assert applied.result == {"ok": True, "receipt": {"index": 1, "term": 1, "hash": e.hash}}
    assert (applied.dedup, applied.client_id, applied.request_id) == (False, "c", "r1")
    assert receipt_of(e) == applied.result["receipt"]


def test_reads_through_the_log_get_no_receipt() -> None:
    log, kv = Log(), ReplicatedKV()
    kv.apply(log.cmd("c", "r1", "kv_set", {"k": "a", "v": 1}))
    got = kv.apply(log.cmd("c", "r2", "kv_get", {"k": "a", "consistency": "linearizable"}))
    assert got.result == {"ok": True, "value": 1, "found": True}
    scan = kv.apply(log.cmd("c", "r3", "kv_scan", {"prefix": "", "limit": 5}))
    assert scan.result == {"ok": True, "items": [["a", 1]], "more": False, "next": None, "index": 3}


def test_duplicate_request_returns_original_result_and_is_not_reapplied() -> None:
    log, kv = Log(), ReplicatedKV()
    first = kv.apply(log.cmd("c", "r1", "kv_cas", {"k": "a", "expected": None, "v": 1}))
    kv.apply(log.cmd("other", "r1", "kv_set", {"k": "a", "v": 2}))
    again = kv.apply(log.cmd("c", "r1", "kv_cas", {"k": "a", "expected": None, "v": 1}))
    assert again.dedup and again.result == first.result
    assert again.result["receipt"]["index"] == 1  # the original entry's receipt
    assert kv.read("kv_get", {"k": "a"})["value"] == 2  # the retry did not re-apply
    assert kv.session_result("c", "r1") == first.result
    assert kv.session_result("c", "nope") is None


def test_dedup_survives_snapshot_and_restore() -> None:
    log, kv = Log(), ReplicatedKV()
    first = kv.apply(log.cmd("c", "r1", "kv_set", {"k": "a", "v": 1}))
    kv.apply(log.cmd("c", "r2", "kv_set", {"k": "a", "v": 2}))
    other = ReplicatedKV()
    other.restore(kv.snapshot())
    assert other.last_applied == 2 and other.last_applied_hash == log.entries[-1].hash
    again = other.apply(log.cmd("c", "r1", "kv_set", {"k": "a", "v": 1}))
    assert again.dedup and again.result == first.result
    assert other.read("kv_get", {"k": "a"})["value"] == 2


def test_non_client_entries_change_nothing_but_advance_last_applied() -> None:
    log, kv = Log(), ReplicatedKV()
    kv.apply(log.cmd("c", "r1", "kv_set", {"k": "a", "v": 1}))
    machine_before, sessions_before = kv.machine.snapshot(), kv.sessions.to_data()
    for type_ in (EntryType.NOOP, EntryType.CONFIG):
        applied = kv.apply(log.add(type_, {"voters": ["n1"]}))
        assert applied.result is None and not applied.dedup
    assert kv.last_applied == 3
    assert kv.read("kv_scan", {"prefix": "", "limit": 9})["items"] == [["a", 1]]
    assert kv.machine.snapshot() == machine_before
    assert kv.sessions.to_data() == sessions_before


def test_skipping_or_repeating_an_index_is_an_invariant_violation() -> None:
    log, kv = Log(), ReplicatedKV()
    e1 = log.add(EntryType.NOOP)
    log.add(EntryType.NOOP)
    e3 = log.add(EntryType.NOOP)
    kv.apply(e1)
    with pytest.raises(InvariantViolation):
        kv.apply(e1)
    with pytest.raises(InvariantViolation):
        kv.apply(e3)


def test_anchor_at_last_applied_is_accepted_as_a_no_op() -> None:
    kv = ReplicatedKV()
    assert (kv.last_applied, kv.last_applied_term, kv.last_applied_hash) == (0, 0, GENESIS.hash)
    assert kv.apply(GENESIS).index == 0 and kv.last_applied == 0
    dummy = Entry(term=3, index=0, type=EntryType.SNAP_DUMMY, hash="h")
    kv.apply(dummy)
    assert kv.last_applied == 0


def test_malformed_command_gives_error_result_and_is_still_applied() -> None:
    log, kv = Log(), ReplicatedKV()
    applied = kv.apply(log.add(EntryType.CLIENT_CMD, {"op": "kv_set"}))
    assert applied.result["ok"] is False and applied.result["code"] == "BAD_REQUEST"
    assert kv.last_applied == 1 and len(kv.sessions) == 0


def test_sessions_expire_by_log_time_during_apply() -> None:
    log, kv = Log(), ReplicatedKV()
    kv.apply(log.cmd("c", "r1", "kv_set", {"k": "a", "v": 1}, ts=1_000))
    kv.apply(log.cmd("d", "r1", "kv_set", {"k": "b", "v": 1}, ts=1_000 + limits.SESSION_EXPIRY_MS))
    assert kv.session_result("c", "r1") is not None
    kv.apply(log.cmd("d", "r2", "kv_get", {"k": "b"}, ts=1_001 + limits.SESSION_EXPIRY_MS))
    assert kv.session_result("c", "r1") is None
    assert kv.sessions.clients() == ["d"]


_SORTED = msgspec.json.Encoder(order="sorted")


def _with_head(snapshot: bytes, **changes: Any) -> bytes:
    head, machine = snapshot.split(b"\n", 1)
    doc = msgspec.json.decode(head)
    doc.update(changes)
    return _SORTED.encode(doc) + b"\n" + machine


def test_restore_refuses_garbage() -> None:
    with pytest.raises(StorageCorruption):
        ReplicatedKV().restore(b"\x00garbage")
    with pytest.raises(StorageCorruption):
        ReplicatedKV().restore(b"\x00garbage\nmore")
    good = ReplicatedKV().snapshot()
    with pytest.raises(StorageCorruption, match="unknown replicated-state format 99"):
        ReplicatedKV().restore(_with_head(good, format=99))
    with pytest.raises(StorageCorruption, match="unknown replicated-state format 99"):
        ReplicatedKV().restore(_SORTED.encode(older_state_doc(good, 99)))
    with pytest.raises(StorageCorruption, match=r"unreadable.*unknown field `extra`"):
        ReplicatedKV().restore(_with_head(good, extra=1))


def test_a_head_nested_deeper_than_python_allows_is_refused_as_corruption() -> None:
    """A forged state (its head's session table) nested 300,000 deep: the decoder's
    recursion limit becomes a refusal naming the state, not a crash."""
    head = (
        b'{"format":3,"last_applied":1,"last_applied_hash":"x","last_applied_term":1,'
        b'"machine_bytes":0,"sessions":{"now_ms":0,"clients":['
    )
    deep = head + b"[" * 300_000 + b"]" * 300_000 + b"]}}\n"
    with pytest.raises(StorageCorruption, match="replicated state unreadable: maximum recursion"):
        ReplicatedKV().restore(deep)


def test_the_state_is_a_json_line_then_the_machines_bytes_as_they_are() -> None:
    """Format 3: no base64 inside the state (the snapshot file encodes it once)."""
    log, kv = Log(), ReplicatedKV()
    kv.apply(log.cmd("c", "r1", "kv_set", {"k": "a", "v": "x" * 300}))
    data = kv.snapshot()
    head, machine = data.split(b"\n", 1)
    assert machine == kv.machine.snapshot()
    doc = msgspec.json.decode(head)
    assert (doc["format"], doc["machine_bytes"], doc["last_applied"]) == (3, len(machine), 1)
    assert list(doc) == sorted(doc)  # canonical: the same bytes on every replica


@pytest.mark.parametrize("cut", [-1, 1])
def test_a_state_whose_machine_bytes_differ_from_its_head_is_refused(cut: int) -> None:
    log, kv = Log(), ReplicatedKV()
    kv.apply(log.cmd("c", "r1", "kv_set", {"k": "a", "v": 1}))
    data = kv.snapshot()
    bad = data[:-1] if cut < 0 else data + b" "
    other = ReplicatedKV()
    before = other.state_digest()
    n = len(kv.machine.snapshot())
    with pytest.raises(StorageCorruption, match=f"is {n + cut} bytes, its header says {n}"):
        other.restore(bad)
    assert other.state_digest() == before


def test_a_format_2_state_restores_to_the_same_state_as_format_3() -> None:
    """What a release before format 3 wrote (its snapshot files, a leader's InstallSnapshot
    during a rolling upgrade) still restores."""
    _, kv = _with_results(clients=3, per_client=4)
    old = _SORTED.encode(older_state_doc(kv.snapshot()))
    assert b"\n" not in old
    other = ReplicatedKV()
    other.restore(old)
    assert other.state_digest() == kv.state_digest()
    assert other.snapshot() == kv.snapshot()


def test_a_machine_without_restore_steps_gets_its_bytes_back_even_when_not_json() -> None:
    """An embedder's ``restore`` is given ``bytes``, whatever they hold: a newline or
    bytes that are not UTF-8 (the store alone is given a view, without a copy)."""
    state = b"\x00\xff\nnot json\n"

    class Blob(StateMachine):
        def __init__(self) -> None:
            self.got: list[object] = []

        def apply(self, index: int, command: Any) -> Any:
            return {"ok": True}

        def snapshot(self) -> bytes:
            return state

        def restore(self, data: bytes) -> None:
            self.got.append(data)

        def read(self, op: str, args: Any) -> Any:
            return None

    data = ReplicatedKV(Blob()).snapshot()
    assert data.endswith(b"\n" + state)
    other = Blob()
    ReplicatedKV(other).restore(data)
    assert other.got == [state] and type(other.got[0]) is bytes


class Counter(StateMachine):
    """An embedder's machine: counts applies; gets dedup from ReplicatedKV."""

    def __init__(self) -> None:
        self.total = 0

    def apply(self, index: int, command: Any) -> Any:
        self.total += command["args"]["n"]
        return {"total": self.total}

    def snapshot(self) -> bytes:
        return str(self.total).encode()

    def restore(self, data: bytes) -> None:
        self.total = int(data)


def test_any_state_machine_gets_sessions_and_receipts() -> None:
    log, kv = Log(), ReplicatedKV(Counter())
    first = kv.apply(log.cmd("c", "r1", "add", {"n": 5}))
    assert first.result == {"total": 5, "receipt": receipt_of(log.entries[0])}
    assert kv.apply(log.cmd("c", "r1", "add", {"n": 5})).dedup
    restored = ReplicatedKV(Counter())
    restored.restore(kv.snapshot())
    assert isinstance(restored.machine, Counter) and restored.machine.total == 5


# --- determinism across replicas -----------------------------------------------------------
_cids = st.sampled_from(["c1", "c2", "c3", "c4"])
_rids = st.sampled_from(["r1", "r2", "r3", "r4", "r5"])
_cmd = st.tuples(
    _cids,
    _rids,
    st.sampled_from(["kv_set", "kv_delete", "kv_cas", "kv_get"]),
    st.sampled_from(["a", "b", "c"]),
    st.integers(0, 3),
    st.integers(0, 400),  # ts step
)


def _build(cmds: list[tuple[str, str, str, str, int, int]]) -> Log:
    log, ts = Log(), 0
    for i, (cid, rid, op, k, v, step) in enumerate(cmds):
        ts += step
        if i % 7 == 3:
            log.add(EntryType.NOOP, term=1 + i // 10)
        args = {"k": k, "v": v, "expected": None if v == 0 else v - 1}
        args = {
            key: args[key]
            for key in {
                "kv_set": ["k", "v"],
                "kv_delete": ["k"],
                "kv_cas": ["k", "expected", "v"],
                "kv_get": ["k"],
            }[op]
        }
        log.cmd(cid, rid, op, args, ts=ts)
    return log


def _replica() -> ReplicatedKV:
    return ReplicatedKV(
        sessions=SessionTable(results_per_client_max=2, clients_max=3, expiry_ms=500)
    )


@settings(max_examples=80, deadline=None)
@given(cmds=st.lists(_cmd, max_size=40), cut=st.integers(0, 60))
def test_replicas_fed_the_same_entries_have_identical_snapshots_and_results(
    cmds: list[tuple[str, str, str, str, int, int]], cut: int
) -> None:
    log = _build(cmds)
    a, b = _replica(), _replica()
    results_a = [a.apply(e) for e in log.entries]
    # b restarts from a snapshot taken part way through, then catches up.
    cut = min(cut, len(log.entries))
    for e in log.entries[:cut]:
        b.apply(e)
    c = _replica()
    c.restore(b.snapshot())
    results_c = [c.apply(e) for e in log.entries[cut:]]
    assert a.snapshot() == c.snapshot()
    assert results_a[cut:] == results_c
    for x in results_a:
        assert x.index == results_a.index(x) + 1


def _command(cid: str, rid: str, op: str, args: dict[str, Any], ts: int = 0) -> dict[str, Any]:
    return {"client_id": cid, "request_id": rid, "op": op, "args": args, "ts": ts}


def test_a_batch_applies_its_commands_in_order_each_with_its_own_result() -> None:
    log, kv = Log(), ReplicatedKV()
    batch = log.add(
        EntryType.CLIENT_BATCH,
        [
            _command("a", "1", "kv_set", {"k": "x", "v": 1}),
            _command("b", "1", "kv_cas", {"k": "x", "expected": 1, "v": 2}),
            _command("c", "1", "kv_cas", {"k": "x", "expected": 1, "v": 3}),  # sees 2: fails
            _command("a", "1", "kv_set", {"k": "x", "v": 1}),  # a retry inside the batch
        ],
    )
    applied = kv.apply(batch)
    receipt = {"index": 1, "term": 1, "hash": batch.hash}
    assert [p.result for p in applied.parts] == [
        {"ok": True, "receipt": receipt},
        {"ok": True, "swapped": True, "value": 2, "receipt": receipt},
        {"ok": True, "swapped": False, "value": 2, "receipt": receipt},
        {"ok": True, "receipt": receipt},
    ]
    assert [p.dedup for p in applied.parts] == [False, False, False, True]
    assert [(p.client_id, p.request_id) for p in applied.parts][:2] == [("a", "1"), ("b", "1")]
    assert kv.read("kv_get", {"k": "x"}) == {"ok": True, "value": 2, "found": True}
    assert kv.last_applied == 1


def test_a_batch_and_the_same_commands_one_per_entry_reach_the_same_state() -> None:
    commands = [
        _command(f"c{i % 3}", str(i), "kv_set", {"k": f"k{i % 4}", "v": i}) for i in range(9)
    ]
    one_by_one, batched = Log(), Log()
    a, b = ReplicatedKV(), ReplicatedKV()
    for data in commands:
        a.apply(one_by_one.add(EntryType.CLIENT_CMD, data))
    b.apply(batched.add(EntryType.CLIENT_BATCH, commands))
    for key in ("k0", "k1", "k2", "k3"):
        assert a.read("kv_get", {"k": key}) == b.read("kv_get", {"k": key})

    def requests(kv: ReplicatedKV) -> list[tuple[str, list[str]]]:
        return [
            (c.client_id, [item[0] for item in c.results]) for c in kv.sessions.to_data().clients
        ]

    assert requests(a) == requests(b)  # the same requests remembered (receipts differ)


def test_the_writes_of_a_batch_share_the_encoding_of_ok_but_never_a_result_object() -> None:
    """Most writes of a batch return ``{"ok": true}``: the session table keeps one
    encoding of it per entry, which must be that result's own; each client still gets
    a result of its own (one mutated by its caller changes no other)."""

    class OkAsOne(KeyValueStore):
        """A machine whose op ``one`` returns ``{"ok": 1}``: equal to ``{"ok": True}``
        in Python, not in JSON; it must not get the shared encoding."""

        def apply(self, index: int, command: Any) -> Any:
            return {"ok": 1} if command["op"] == "one" else super().apply(index, command)

    log, kv = Log(), ReplicatedKV(OkAsOne())
    batch = log.add(
        EntryType.CLIENT_BATCH,
        [
            _command("a", "1", "kv_set", {"k": "x", "v": 1}),
            _command("b", "1", "kv_set", {"k": "y", "v": 2}),
            _command("c", "1", "one", {}),
            _command("d", "1", "kv_cas", {"k": "x", "expected": 1, "v": 3}),
        ],
    )
    parts = kv.apply(batch).parts
    receipt = receipt_of(batch)
    assert parts[0].result == parts[1].result == {"ok": True, "receipt": receipt}
    assert parts[0].result is not parts[1].result
    parts[0].result["mine"] = True
    assert "mine" not in parts[1].result
    kept = {
        c.client_id: msgspec.json.decode(c.results[0][2]) for c in kv.sessions.to_data().clients
    }
    assert kept["a"] == kept["b"] == {"ok": True, "receipt": receipt}
    assert kept["c"] == {"ok": 1, "receipt": receipt} and type(kept["c"]["ok"]) is int
    assert kept["d"] == {"ok": True, "swapped": True, "value": 3, "receipt": receipt}
    # What a retry gets back is what the first answer said.
    again = kv.apply(log.add(EntryType.CLIENT_BATCH, [_command("c", "1", "one", {})]))
    assert again.parts[0].dedup
    assert again.parts[0].result == kept["c"] and type(again.parts[0].result["ok"]) is int


def test_a_malformed_command_in_a_batch_fails_alone_on_every_replica() -> None:
    log = Log()
    batch = log.add(
        EntryType.CLIENT_BATCH,
        [_command("a", "1", "kv_set", {"k": "x", "v": 1}), {"not": "a command"}],
    )
    first, second = ReplicatedKV(), ReplicatedKV()
    results = [first.apply(batch), second.apply(batch)]
    for applied in results:
        assert applied.parts[0].result["ok"] is True
        assert applied.parts[1].result["ok"] is False
        assert "bad command" in applied.parts[1].result["message"]
    assert first.snapshot() == second.snapshot()


def test_wrapped_machine_sees_the_leader_stamped_ts_of_each_command() -> None:
    """Log time for TTLs: the machine gets the entry's ``ts``, the same on every replica."""
    from resonetics.machine.structures import Counter

    seen: list[int] = []

    class Stamped(Counter):
        def apply(self, index: int, command: Any) -> Any:
            seen.append(command["ts"])
            return super().apply(index, command)

    replicated = ReplicatedKV(Stamped())
    replicated.apply(Log().cmd("c", "r1", "incr", {"by": 1}, ts=4242))
    assert seen == [4242]


def test_receipt_of_is_the_receipt_of_the_entry() -> None:
    """The apply path builds the receipt dict directly; it must be exactly what
    ``Receipt.of(entry).to_data()`` gives (same keys, same order, same values) and
    round-trip through ``Receipt.from_data``."""
    entry = make_entry(GENESIS.hash, 3, 1, EntryType.CLIENT_CMD, {"op": "kv_set"})
    data = receipt_of(entry)
    assert data == Receipt.of(entry).to_data()
    assert list(data) == list(Receipt.of(entry).to_data())
    assert Receipt.from_data(data) == Receipt(1, 3, entry.hash)


# --- packed data (a restart applies client entries as loaded: raft/packing.py) ---------------
_any_json = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)
#: A command, or something that only looks like one: fields missing, of the wrong type.
_maybe_command = st.fixed_dictionaries(
    {},
    optional={
        "client_id": st.sampled_from(["c1", "c2"]) | _any_json,
        "request_id": st.sampled_from(["r1", "r2", "r3"]) | _any_json,
        "op": st.sampled_from(["kv_set", "kv_delete", "session_open", "nope"]) | _any_json,
        "args": st.fixed_dictionaries({"k": st.sampled_from(["a", "b"]), "v": _any_json})
        | _any_json,
        "ts": st.integers(0, 1000) | _any_json,
        "session": st.integers(0, 3) | st.none(),
        "seq": st.integers(0, 5) | st.none(),
        "ack_below": st.integers(0, 5) | st.none(),
    },
)


@settings(max_examples=150, deadline=None)
@given(
    items=st.lists(
        st.tuples(st.booleans(), st.lists(_maybe_command, min_size=1, max_size=4) | _any_json),
        max_size=12,
    )
)
def test_a_packed_entry_applies_exactly_like_the_decoded_one(
    items: list[tuple[bool, Any]],
) -> None:
    """Whatever a client entry holds (valid commands, wrong types, a batch that is no list),
    a replica that applies it packed (the leader, a restarted node) answers and ends
    exactly like one that applies it decoded from the same bytes (a follower: the
    AppendEntries carries them verbatim): packed data decodes straight into commands,
    and what does not fit goes the decoded way."""
    log = Log()
    for batch, data in items:
        if batch:
            log.add(EntryType.CLIENT_BATCH, data)
        else:
            log.add(EntryType.CLIENT_CMD, data[0] if isinstance(data, list) and data else data)
    decoded, from_packed = ReplicatedKV(), ReplicatedKV()
    for entry in log.entries:
        assert from_packed.apply(packed(entry)) == decoded.apply(unpacked(packed(entry)))
    assert from_packed.snapshot() == decoded.snapshot()


def test_every_replica_reads_a_commands_keys_in_one_order() -> None:
    """A client may send a command's keys in any order. The leader proposes it packed
    (``raft.packing.canonical``), so the leader, a follower and a restarted node all
    decode it from the same bytes: a machine that iterates a dict cannot diverge."""
    seen: dict[str, list[str]] = {}

    class KeyOrder(StateMachine):
        def __init__(self, name: str) -> None:
            self.name = name

        def apply(self, index: int, command: Any) -> Any:
            seen[self.name] = list(command["args"])
            return {"ok": True}

        def snapshot(self) -> bytes:
            return b""

        def restore(self, data: bytes) -> None:
            pass

    data = {"ts": 1, "op": "put", "client_id": "c", "request_id": "r", "args": {"z": 1, "a": 2}}
    leader_entry = make_entry(GENESIS.hash, 1, 1, EntryType.CLIENT_CMD, canonical(data))
    wire = msgspec.json.decode(msgspec.json.encode(leader_entry), type=Entry)  # a follower
    ReplicatedKV(KeyOrder("leader")).apply(leader_entry)
    ReplicatedKV(KeyOrder("follower")).apply(wire)
    ReplicatedKV(KeyOrder("client order")).apply(
        make_entry(GENESIS.hash, 1, 1, EntryType.CLIENT_CMD, data)
    )
    assert wire.hash == leader_entry.hash
    assert seen["leader"] == seen["follower"] == ["a", "z"]
    assert seen["client order"] == ["z", "a"]  # what the leader used to apply


def _with_results(clients: int, per_client: int) -> tuple[Log, ReplicatedKV]:
    log, kv = Log(), ReplicatedKV()
    for c in range(clients):
        for r in range(per_client):
            kv.apply(log.cmd(f"c{c}", f"r{r}", "kv_set", {"k": f"k{c}", "v": r}))
    return log, kv


def test_a_restore_takes_each_remembered_result_as_the_bytes_the_snapshot_holds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Format 2: no result is decoded and encoded again (that was nearly all of a
    restore at the table's bound), and the copy is the same table, byte accounting and
    all."""
    from resonetics.machine import sessions

    _, kv = _with_results(clients=5, per_client=3)

    def never(*_: object) -> None:
        raise AssertionError("a format-2 result was encoded again")

    monkeypatch.setattr(sessions, "_stored", never)
    other = ReplicatedKV()
    other.restore(kv.snapshot())
    assert other.state_digest() == kv.state_digest()
    assert other.sessions.bytes == kv.sessions.bytes
    assert other.session_result("c3", "r1") == kv.session_result("c3", "r1")


def test_a_format_1_snapshot_whose_results_have_no_digest_still_restores() -> None:
    _, kv = _with_results(clients=2, per_client=2)
    doc = older_state_doc(kv.snapshot(), 1)
    for client in doc["sessions"]["clients"]:
        client[2] = [[key, result] for key, _digest, result in client[2]]
    old = msgspec.json.Encoder(order="sorted").encode(doc)
    other = ReplicatedKV()
    other.restore(old)
    assert other.session_result("c1", "r0") == kv.session_result("c1", "r0")
    assert other.sessions.bytes == kv.sessions.bytes


def test_a_session_table_unreadable_past_its_first_slice_names_where(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from resonetics.machine import sessions

    monkeypatch.setattr(sessions, "SNAPSHOT_SLICE_CLIENTS", 2)
    _, kv = _with_results(clients=5, per_client=1)
    doc = msgspec.json.decode(kv.snapshot().split(b"\n", 1)[0])
    doc["sessions"]["clients"][3][1] = "not a time"
    bad = _with_head(kv.snapshot(), sessions=doc["sessions"])
    other = ReplicatedKV()
    before = other.state_digest()
    with pytest.raises(
        StorageCorruption, match=r"session table: clients unreadable in 2-3: .* at `\$\[1\]\[1\]`"
    ):
        other.restore(bad)
    assert other.state_digest() == before, "nothing was replaced"


def test_a_format_2_machine_field_that_is_not_base64_is_refused_as_corruption() -> None:
    doc = older_state_doc(ReplicatedKV().snapshot())
    doc["machine"] = "not*base64"
    with pytest.raises(StorageCorruption, match="machine"):
        ReplicatedKV().restore(msgspec.json.Encoder(order="sorted").encode(doc))
    doc["machine"] = 5
    with pytest.raises(StorageCorruption, match="machine is not a base64 string"):
        ReplicatedKV().restore(msgspec.json.Encoder(order="sorted").encode(doc))


_ANSWER_OPS = st.sampled_from(["kv_set", "kv_cas", "kv_delete", "kv_get", "session_open", "bad"])


@st.composite
def _answerable_command(draw: st.DrawFn) -> dict[str, Any]:
    op = draw(_ANSWER_OPS)
    cid = draw(st.sampled_from(["a", "b", "c"]))
    rid = str(draw(st.integers(0, 6)))  # reused: dedup hits and mismatches
    key = draw(st.sampled_from(["x", "y"]))
    args: dict[str, Any] = {
        "kv_set": {"k": key, "v": draw(st.integers(0, 3))},
        "kv_cas": {"k": key, "expected": draw(st.none() | st.integers(0, 3)), "v": 9},
        "kv_delete": {"k": key},
        "kv_get": {"k": key},
        "session_open": {},
        "bad": {"k": 5},
    }[op]
    command = _command(cid, rid, "kv_set" if op == "bad" else op, args, ts=draw(st.integers(0, 9)))
    if op != "session_open" and draw(st.booleans()):
        seq = draw(st.integers(1, 6))
        command |= {"session": draw(st.integers(1, 3)), "seq": seq, "ack_below": seq}
    return command


@settings(max_examples=200, deadline=None)
@given(entries=st.lists(st.lists(_answerable_command(), min_size=1, max_size=5), max_size=12))
def test_applying_with_nobody_waiting_reaches_the_same_state(
    entries: list[list[dict[str, Any]]],
) -> None:
    """``apply(answers=False)`` (a follower, a replay) builds no results but must leave
    exactly the state that answering leaves: session table and machine, byte for byte."""
    log, answered, unanswered = Log(), ReplicatedKV(), ReplicatedKV()
    for commands in entries:
        entry = (
            log.add(EntryType.CLIENT_CMD, commands[0])
            if len(commands) == 1
            else log.add(EntryType.CLIENT_BATCH, commands)
        )
        full = answered.apply(entry)
        bare = unanswered.apply(entry, answers=False)
        assert (bare.index, bare.result, bare.parts) == (entry.index, None, ())
        assert full.index == entry.index
        assert answered.snapshot() == unanswered.snapshot()
