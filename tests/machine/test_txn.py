"""The key-value store's per-key versions, transactions and scan cursors (issue 18)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resonetics import limits
from resonetics.check import txn_model
from resonetics.check.history import Operation, canonical
from resonetics.errors import StorageCorruption
from resonetics.machine.kv import SCAN_CHANGED, KeyValueStore
from resonetics.steps import run_to_end as drain


def _apply(s: KeyValueStore, index: int, op: str, **args: Any) -> dict[str, Any]:
    return s.apply(index, {"op": op, "args": args})


def _txn(
    s: KeyValueStore,
    index: int,
    compare: list[dict[str, Any]],
    then: list[dict[str, Any]],
    otherwise: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return _apply(s, index, "kv_txn", compare=compare, then=then, **{"else": otherwise or []})


def _meta(s: KeyValueStore, k: str) -> tuple[int, int, int]:
    got = s.get(k, meta=True)
    return got["create_index"], got["mod_index"], got["version"]


# --- versions ---------------------------------------------------------------------------
def test_versions_count_writes_since_creation_and_a_delete_resets_them() -> None:
    s = KeyValueStore()
    _apply(s, 3, "kv_set", k="a", v=1)
    assert _meta(s, "a") == (3, 3, 1)
    _apply(s, 5, "kv_set", k="a", v=2)
    _apply(s, 6, "kv_cas", k="a", expected=2, v=3)
    assert _meta(s, "a") == (3, 6, 3)
    _apply(s, 7, "kv_cas", k="a", expected=99, v=4)  # no swap: no write
    assert _meta(s, "a") == (3, 6, 3)
    _apply(s, 8, "kv_delete", k="a")
    assert _meta(s, "a") == (0, 0, 0)
    _apply(s, 9, "kv_set", k="a", v=5)
    assert _meta(s, "a") == (9, 9, 1)


def test_get_without_meta_keeps_its_old_shape() -> None:
    s = KeyValueStore()
    _apply(s, 1, "kv_set", k="a", v=1)
    assert s.read("kv_get", {"k": "a"}) == {"ok": True, "value": 1, "found": True}
    assert s.read("kv_get", {"k": "a", "meta": True}) == {
        "ok": True,
        "value": 1,
        "found": True,
        "create_index": 1,
        "mod_index": 1,
        "version": 1,
    }


# --- transactions -----------------------------------------------------------------------
def test_txn_runs_then_when_every_compare_holds() -> None:
    s = KeyValueStore()
    _apply(s, 1, "kv_set", k="a", v=1)
    result = _txn(
        s,
        2,
        [
            {"key": "a", "target": "value", "op": "==", "against": 1},
            {"key": "a", "target": "version", "op": "==", "against": 1},
            {"key": "b", "target": "exists", "op": "==", "against": False},
        ],
        [{"type": "put", "key": "a", "value": 2}, {"type": "put", "key": "b", "value": "x"}],
        [{"type": "delete", "key": "a"}],
    )
    assert result == {
        "ok": True,
        "succeeded": True,
        "responses": [
            {"type": "put", "key": "a", "index": 2, "version": 2},
            {"type": "put", "key": "b", "index": 2, "version": 1},
        ],
    }
    assert s.items() == [("a", 2), ("b", "x")]


def test_txn_runs_else_when_any_compare_fails_and_then_changes_nothing() -> None:
    s = KeyValueStore()
    _apply(s, 1, "kv_set", k="a", v=1)
    result = _txn(
        s,
        2,
        [
            {"key": "a", "target": "value", "op": "==", "against": 1},
            {"key": "a", "target": "mod_index", "op": ">", "against": 1},
        ],
        [{"type": "put", "key": "a", "value": 2}],
        [{"type": "get", "key": "a"}],
    )
    assert result["succeeded"] is False
    assert result["responses"] == [
        {
            "type": "get",
            "key": "a",
            "value": 1,
            "found": True,
            "create_index": 1,
            "mod_index": 1,
            "version": 1,
        }
    ]
    assert s.items() == [("a", 1)]


def test_txn_writes_all_carry_the_entry_index_and_a_get_sees_earlier_writes() -> None:
    s = KeyValueStore()
    result = _txn(
        s,
        7,
        [],
        [
            {"type": "put", "key": "x", "value": 1},
            {"type": "delete", "key": "missing"},
            {"type": "get", "key": "x"},
        ],
    )
    put, delete, get = result["responses"]
    assert put["index"] == 7 and delete == {
        "type": "delete",
        "key": "missing",
        "deleted": False,
        "index": 7,
    }
    assert get["value"] == 1 and get["mod_index"] == 7


@pytest.mark.parametrize(
    ("target", "op", "against", "holds"),
    [
        ("value", "==", None, False),  # an absent key has no value, not null
        ("value", "!=", 1, True),
        ("exists", "==", False, True),
        ("exists", "!=", False, False),
        ("version", "==", 0, True),
        ("create_index", "<", 1, True),
        ("mod_index", ">", 0, False),
    ],
)
def test_compares_on_an_absent_key(target: str, op: str, against: Any, holds: bool) -> None:
    s = KeyValueStore()
    compare = [{"key": "nope", "target": target, "op": op, "against": against}]
    assert _txn(s, 1, compare, [])["succeeded"] is holds


def test_value_compares_are_json_compares() -> None:
    s = KeyValueStore()
    _apply(s, 1, "kv_set", k="a", v=True)
    compare = [{"key": "a", "target": "value", "op": "==", "against": 1}]
    assert _txn(s, 2, compare, [])["succeeded"] is False


@pytest.mark.parametrize(
    "args",
    [
        {"compare": [], "then": [{"type": "put", "key": "a", "value": 1}, {"type": "nuke"}]},
        {"compare": [{"key": "a", "target": "colour"}], "then": []},
        {"compare": [{"key": "a", "target": "value", "op": "<", "against": 1}], "then": []},
        {"compare": [], "then": [{"type": "put", "key": "a"}, {"type": "put", "key": "a"}]},
        {"compare": "no", "then": []},
        {"compare": [], "then": [{"type": "put", "key": 5, "value": 1}]},
    ],
)
def test_malformed_txn_in_the_log_applies_nothing(args: dict[str, Any]) -> None:
    """A txn the gateway would refuse (a leader that bypassed it): every replica
    answers BAD_REQUEST and no op of it is applied, not even the well-formed first."""
    s = KeyValueStore()
    _apply(s, 1, "kv_set", k="z", v=0)
    before = s.snapshot()
    result = s.apply(2, {"op": "kv_txn", "args": args})
    assert result["ok"] is False and result["code"] == "BAD_REQUEST"
    assert s.snapshot() == before


# --- scan cursors -----------------------------------------------------------------------
def _fill(s: KeyValueStore, n: int, first_index: int = 1) -> None:
    for i in range(n):
        _apply(s, first_index + i, "kv_set", k=f"p/{i:03}", v=i)


def test_scan_pages_cover_every_key_once_in_order() -> None:
    s = KeyValueStore()
    _fill(s, 25)
    _apply(s, 26, "kv_set", k="q", v="outside")
    seen: list[str] = []
    after = None
    while True:
        page = s.scan("p/", 7, after=after)
        seen += [k for k, _ in page["items"]]
        if not page["more"]:
            assert page["next"] is None
            break
        after = page["next"]
        assert after == seen[-1]
    assert seen == [f"p/{i:03}" for i in range(25)]


def test_scan_after_a_key_before_the_prefix_starts_at_the_prefix() -> None:
    s = KeyValueStore()
    _fill(s, 3)
    assert [k for k, _ in s.scan("p/", 10, after="a")["items"]] == ["p/000", "p/001", "p/002"]


def test_consistent_scan_serves_pages_when_nothing_in_range_changed() -> None:
    s = KeyValueStore()
    _fill(s, 10)
    first = s.scan("p/", 4)
    _apply(s, 11, "kv_set", k="other", v=1)  # outside the prefix
    _apply(s, 12, "kv_set", k="p/000", v="changed")  # on a page already served
    second = s.scan("p/", 4, after=first["next"], at_index=first["index"])
    assert second["ok"] is True and second["items"][0][0] == "p/004"


def test_consistent_scan_refuses_a_page_with_a_key_written_after_its_index() -> None:
    s = KeyValueStore()
    _fill(s, 10)
    first = s.scan("p/", 4)
    _apply(s, 11, "kv_set", k="p/006", v="changed")
    refused = s.scan("p/", 4, after=first["next"], at_index=first["index"])
    assert refused["ok"] is False and refused["code"] == SCAN_CHANGED
    assert refused["key"] == "p/006"


def test_consistent_scan_refuses_a_page_whose_range_lost_a_key() -> None:
    """A delete leaves no record to compare: the store remembers recent deletes."""
    s = KeyValueStore()
    _fill(s, 10)
    first = s.scan("p/", 4)
    _apply(s, 11, "kv_delete", k="p/005")
    refused = s.scan("p/", 4, after=first["next"], at_index=first["index"])
    assert refused["code"] == SCAN_CHANGED and refused["key"] == "p/005"
    # The page after it does not cover p/005: nothing to refuse there.
    later = s.scan("p/", 4, after="p/007", at_index=first["index"])
    assert later["ok"] is True


def test_consistent_scan_refuses_when_old_deletes_are_forgotten() -> None:
    s = KeyValueStore()
    _fill(s, 3)
    first = s.scan("p/", 1)
    index = 100
    for i in range(limits.SCAN_TOMBSTONES_MAX + 1):
        _apply(s, index, "kv_set", k=f"t/{i}", v=i)
        _apply(s, index + 1, "kv_delete", k=f"t/{i}")
        index += 2
    refused = s.scan("p/", 1, after=first["next"], at_index=first["index"])
    assert refused["code"] == SCAN_CHANGED and "no longer remembered" in refused["message"]


def test_consistent_scan_refuses_a_state_behind_its_index() -> None:
    s = KeyValueStore()
    _fill(s, 3)
    refused = s.scan("p/", 1, at_index=50)
    assert refused["code"] == SCAN_CHANGED and "behind" in refused["message"]


# --- snapshots --------------------------------------------------------------------------
def test_snapshot_carries_versions_index_and_remembered_deletes() -> None:
    s = KeyValueStore()
    _fill(s, 5)
    _apply(s, 6, "kv_set", k="p/001", v="again")
    _apply(s, 7, "kv_delete", k="p/003")
    restored = KeyValueStore()
    restored.restore(s.snapshot())
    assert restored.snapshot() == s.snapshot()
    assert _meta(restored, "p/001") == (2, 6, 2)
    assert restored.index == 7
    # The restored store refuses the same consistent page the original would.
    assert restored.scan("p/", 10, at_index=5) == s.scan("p/", 10, at_index=5)


def test_snapshot_steps_give_the_same_bytes_as_snapshot() -> None:
    s = KeyValueStore()
    _fill(s, 9)
    _apply(s, 10, "kv_delete", k="p/004")
    assert drain(s.snapshot_steps(slice_items=2)) == s.snapshot()


def test_format_1_snapshot_is_refused_naming_the_upgrade_path() -> None:
    """Format 1 has no versions; guessing them would make replicas disagree."""
    old = msgspec.json.encode({"format": 1, "items": [["a", 1]]})
    with pytest.raises(StorageCorruption, match=r"format 1.*kv scan --all"):
        KeyValueStore().restore(old)


def test_txn_gets_past_the_read_budget_answer_omitted_not_their_value() -> None:
    """128 gets of 256 KiB values would make a 32 MiB answer (and session entry)."""
    s = KeyValueStore()
    big = "x" * (limits.VALUE_BYTES_MAX - 2)
    for i in range(6):
        _apply(s, i + 1, "kv_set", k=f"big/{i}", v=big)
    result = _txn(s, 10, [], [{"type": "get", "key": f"big/{i}"} for i in range(6)])
    kept = [r for r in result["responses"] if not r.get("omitted")]
    omitted = [r for r in result["responses"] if r.get("omitted")]
    assert len(kept) == limits.TXN_READ_BYTES_MAX // limits.VALUE_BYTES_MAX
    assert omitted and all(r["value"] is None and r["found"] and r["version"] == 1 for r in omitted)


# --- the store against the checker's model (a second, independent implementation) --------
_KEYS = ("a", "b", "c")
_small = st.integers(0, 3)
_compare = st.one_of(
    st.tuples(st.sampled_from(_KEYS), st.just("value"), st.sampled_from(["==", "!="]), _small),
    st.tuples(
        st.sampled_from(_KEYS), st.just("exists"), st.sampled_from(["==", "!="]), st.booleans()
    ),
    st.tuples(
        st.sampled_from(_KEYS), st.just("version"), st.sampled_from(["==", "!=", "<", ">"]), _small
    ),
)
_branch_op = st.one_of(
    st.tuples(st.just("put"), st.sampled_from(_KEYS), _small),
    st.tuples(st.just("delete"), st.sampled_from(_KEYS), st.none()),
    st.tuples(st.just("get"), st.sampled_from(_KEYS), st.none()),
)


def _unique_writes(ops: list[tuple[str, str, Any]]) -> list[tuple[str, str, Any]]:
    """A branch may write a key once (the gateway refuses more): keep the first write."""
    written: set[str] = set()
    kept = []
    for kind, key, value in ops:
        if kind != "get":
            if key in written:
                continue
            written.add(key)
        kept.append((kind, key, value))
    return kept


_step = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(_KEYS), _small),
    st.tuples(st.just("delete"), st.sampled_from(_KEYS), st.none()),
    st.tuples(
        st.just("txn"),
        st.lists(_compare, max_size=3),
        st.tuples(
            st.lists(_branch_op, max_size=4).map(_unique_writes),
            st.lists(_branch_op, max_size=4).map(_unique_writes),
        ),
    ),
)


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(_step, max_size=25))
def test_store_txns_match_the_checkers_model(steps: list[Any]) -> None:
    """The store and ``check/txn_model.py`` agree on every branch, read and version."""
    store = KeyValueStore()
    slots = {k: i for i, k in enumerate(_KEYS)}
    state: tuple[Any, ...] = tuple((None, 0) for _ in _KEYS)
    for index, step in enumerate(steps, start=1):
        if step[0] == "set":
            _apply(store, index, "kv_set", k=step[1], v=step[2])
            op = _op("set", step[1], step[2])
        elif step[0] == "delete":
            _apply(store, index, "kv_delete", k=step[1])
            op = _op("delete", step[1], None)
        else:
            compare, (then, otherwise) = step[1], step[2]
            spec = {
                "compare": [list(c) for c in compare],
                "then": [list(o) for o in then],
                "else": [list(o) for o in otherwise],
            }
            got = _txn(
                store,
                index,
                [dict(zip(("key", "target", "op", "against"), c, strict=True)) for c in compare],
                [_wire(o) for o in then],
                [_wire(o) for o in otherwise],
            )
            reads = [
                [r["key"], r["value"], r["version"]] for r in got["responses"] if r["type"] == "get"
            ]
            op = _op("txn", "a", spec, output={"succeeded": got["succeeded"], "reads": reads})
        legal, state = txn_model.apply(state, txn_model.digest(op, slots))
        assert legal, (step, store.snapshot())
    for key in _KEYS:
        rec = store.record(key)
        want = state[slots[key]]
        have = (None, 0) if rec is None else (canonical(rec.value), rec.version)
        assert have == want, key


def _wire(op: tuple[str, str, Any]) -> dict[str, Any]:
    kind, key, value = op
    return {"type": kind, "key": key, **({"value": value} if kind == "put" else {})}


def _op(f: str, key: str, value: Any, output: Any = None) -> Operation:
    return Operation(0, 0, f, key, 1, 2.0, input=value, output=output)  # type: ignore[arg-type]
