"""The key-value store against a plain dict oracle, and every op's result shape."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resonetics import limits
from resonetics.errors import BadRequest, StorageCorruption
from resonetics.machine.kv import KeyValueStore, json_equal
from resonetics.steps import run_to_end

_keys = st.text(alphabet="ab/é", min_size=1, max_size=4)
_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.text("xy", max_size=2),
    st.lists(st.integers(0, 2), max_size=2),
)
_ops = st.one_of(
    st.tuples(st.just("kv_set"), st.fixed_dictionaries({"k": _keys, "v": _values})),
    st.tuples(st.just("kv_get"), st.fixed_dictionaries({"k": _keys})),
    st.tuples(st.just("kv_delete"), st.fixed_dictionaries({"k": _keys})),
    st.tuples(
        st.just("kv_cas"), st.fixed_dictionaries({"k": _keys, "expected": _values, "v": _values})
    ),
    st.tuples(
        st.just("kv_scan"),
        st.fixed_dictionaries(
            {"prefix": st.text(alphabet="ab/é", max_size=2), "limit": st.integers(1, 5)},
            optional={"after": _keys, "meta": st.booleans()},
        ),
    ),
    st.tuples(st.just("kv_get"), st.fixed_dictionaries({"k": _keys, "meta": st.just(True)})),
)


def _write(meta: dict[str, list[int]], k: str, index: int) -> None:
    """The oracle's bookkeeping of one write: [create_index, mod_index, version]."""
    old = meta.get(k)
    meta[k] = [index, index, 1] if old is None else [old[0], index, old[1 + 1] + 1]


def oracle(
    model: dict[str, Any], op: str, args: dict[str, Any], meta: dict[str, list[int]], index: int
) -> dict[str, Any]:
    """The obvious implementation, one branch per op."""
    k = args.get("k", "")
    if op == "kv_set":
        model[k] = args["v"]
        _write(meta, k, index)
        return {"ok": True}
    if op == "kv_get":
        found = {"ok": True, "value": model.get(k), "found": k in model}
        if args.get("meta"):
            c, m, v = meta.get(k, [0, 0, 0])
            found.update(create_index=c, mod_index=m, version=v)
        return found
    if op == "kv_delete":
        meta.pop(k, None)
        return {"ok": True, "deleted": model.pop(k, ...) is not ...}
    if op == "kv_cas":
        exp = args["expected"]
        ok = k not in model if exp is None else k in model and json_equal(model[k], exp)
        if ok:
            model[k] = args["v"]
            _write(meta, k, index)
        return {"ok": True, "swapped": ok, "value": model.get(k)}
    after = args.get("after")
    matching = sorted(
        x for x in model if x.startswith(args["prefix"]) and (after is None or x > after)
    )
    page = matching[: args["limit"]]
    if args.get("meta"):
        items = [[x, model[x], *meta[x]] for x in page]
    else:
        items = [[x, model[x]] for x in page]
    more = len(matching) > args["limit"]
    last_write = max((m[1] for m in meta.values()), default=0)
    return {
        "ok": True,
        "items": items,
        "more": more,
        "next": page[-1] if more else None,
        "index": max(index, last_write),
    }


@settings(max_examples=150, deadline=None)
@given(ops=st.lists(_ops, max_size=40))
def test_store_matches_dict_oracle(ops: list[tuple[str, dict[str, Any]]]) -> None:
    store, model, meta = KeyValueStore(), dict[str, Any](), dict[str, list[int]]()
    for index, (op, args) in enumerate(ops, start=1):
        assert store.apply(index, {"op": op, "args": args}) == oracle(model, op, args, meta, index)
        assert store.items() == sorted(model.items())
    restored = KeyValueStore()
    restored.restore(store.snapshot())
    assert restored.items() == store.items()
    assert restored.snapshot() == store.snapshot()


def test_result_shapes() -> None:
    s = KeyValueStore()
    assert s.set("a", {"n": 1}) == {"ok": True}
    assert s.get("a") == {"ok": True, "value": {"n": 1}, "found": True}
    assert s.get("b") == {"ok": True, "value": None, "found": False}
    assert s.cas("a", {"n": 2}, 5) == {"ok": True, "swapped": False, "value": {"n": 1}}
    assert s.cas("a", {"n": 1}, 5) == {"ok": True, "swapped": True, "value": 5}
    assert s.cas("b", None, 7) == {"ok": True, "swapped": True, "value": 7}
    assert s.cas("b", None, 8) == {"ok": True, "swapped": False, "value": 7}
    assert s.delete("a") == {"ok": True, "deleted": True}
    assert s.delete("a") == {"ok": True, "deleted": False}
    assert s.scan("", 10) == {
        "ok": True,
        "items": [["b", 7]],
        "more": False,
        "next": None,
        "index": 0,
    }


def test_cas_compares_json_values_not_python_values() -> None:
    s = KeyValueStore()
    s.set("a", True)
    assert s.cas("a", 1, "x")["swapped"] is False
    s.set("f", 1.0)
    assert s.cas("f", 1, "x")["swapped"] is False
    s.set("d", {"x": 1, "y": 2})
    assert s.cas("d", {"y": 2, "x": 1}, "x")["swapped"] is True


def test_scan_walks_prefix_in_key_order_with_limit_and_more() -> None:
    s = KeyValueStore()
    for k in ["b/2", "a/1", "b/1", "b/10", "c", "b"]:
        s.set(k, k)
    assert s.scan("b/", 2) == {
        "ok": True,
        "items": [["b/1", "b/1"], ["b/10", "b/10"]],
        "more": True,
        "next": "b/10",
        "index": 0,
    }
    assert s.scan("b/", 3)["more"] is False
    assert s.scan("z", 3) == {"ok": True, "items": [], "more": False, "next": None, "index": 0}


def test_direct_reads_serve_read_ops_only() -> None:
    s = KeyValueStore()
    s.set("a", 1)
    assert s.read("kv_get", {"k": "a"})["value"] == 1
    assert s.read("kv_scan", {"prefix": "", "limit": 1})["items"] == [["a", 1]]
    with pytest.raises(BadRequest):
        s.read("kv_set", {"k": "a", "v": 2})
    assert s.get("a")["value"] == 1


@pytest.mark.parametrize(
    "command",
    [
        {"op": "kv_zap", "args": {}},
        {"op": "kv_set", "args": {}},
        {"args": {}},
        "not a dict",
        {"op": "kv_get", "args": None},
        {"op": "kv_set", "args": {"k": 1, "v": 1}},
        {"op": "kv_scan", "args": {"prefix": 1, "limit": 1}},
        {"op": "kv_scan", "args": {"prefix": "", "limit": True}},
    ],
)
def test_bad_commands_give_an_error_result_and_change_nothing(command: Any) -> None:
    s = KeyValueStore()
    s.set("a", 1)
    before = s.snapshot()
    result = s.apply(1, command)
    assert result["ok"] is False and result["code"] == "BAD_REQUEST"
    assert s.snapshot() == before


def test_restore_refuses_garbage() -> None:
    with pytest.raises(StorageCorruption):
        KeyValueStore().restore(b"{nope")
    with pytest.raises(StorageCorruption, match="format"):
        KeyValueStore().restore(b'{"format": 9, "items": []}')
    # A value nested deeper than the interpreter allows (states are not bounded before
    # decoding as network lines are): a RecursionError inside msgspec, named, not raised.
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(StorageCorruption, match="unreadable"):
        KeyValueStore().restore(b'{"format": 3, "items": [["k", ' + deep + b", 1, 1, 1]]}")


def test_a_row_unreadable_past_the_first_slice_is_named_and_nothing_is_replaced() -> None:
    s = KeyValueStore()
    for i in range(10):
        s.set(f"k{i}", i)
    doc = msgspec.json.decode(s.snapshot())
    doc["items"][7][2] = "not an index"
    bad = msgspec.json.encode(doc)
    target = KeyValueStore()
    target.set("kept", 1)
    before = target.snapshot()
    with pytest.raises(StorageCorruption, match=r"rows unreadable in 4-7: .* at `\$\[3\]\[2\]`"):
        run_to_end(target.restore_steps(bad, slice_items=4))
    assert target.snapshot() == before


def test_scans_agree_with_a_sorted_model_across_thousands_of_keys() -> None:
    """Enough keys, inserted and deleted in random order, that the sorted key index
    spans many of its inner lists: every page of every prefix, continued with
    ``after``, is the model's, and a snapshot restores the same order."""
    import random

    rng = random.Random(19)
    s = KeyValueStore()
    model: dict[str, int] = {}
    for i in range(12_000):
        k = f"{rng.choice('abc')}/{rng.randrange(10**6):06d}"
        if i % 5 == 4 and model:
            gone = rng.choice(sorted(model)) if i % 25 == 4 else k
            s.delete(gone)
            model.pop(gone, None)
        else:
            s.set(k, i)
            model[k] = i
    assert s.items() == sorted(model.items())
    for prefix in ("", "a/", "b/0", "c/9", "d"):
        expected = [[k, v] for k, v in sorted(model.items()) if k.startswith(prefix)]
        pages: list[list[Any]] = []
        after = None
        while True:
            page = s.scan(prefix, 997, after=after)
            pages.extend(page["items"])
            assert page["more"] == (len(pages) < len(expected))
            if not page["more"]:
                break
            after = page["next"]
        assert pages == expected
    restored = KeyValueStore()
    restored.restore(s.snapshot())
    assert restored.items() == s.items()
    assert restored.scan("b/", 50) == s.scan("b/", 50)


def test_a_scan_page_ends_at_its_byte_bound_and_the_next_page_goes_on() -> None:
    """Values of 200 KiB: a page stops at the first item that reaches
    ``SCAN_BYTES_MAX``, says ``more`` and ``next``, and the next page starts after it."""
    s = KeyValueStore()
    value = "v" * (200 << 10)
    for i in range(12):
        s.set(f"k{i:02d}", value)
    first = s.scan("", 1000)
    assert first["more"] is True and first["next"] == first["items"][-1][0]
    held = sum(len(k) + len(v) + 2 for k, v in first["items"])
    assert held >= limits.SCAN_BYTES_MAX > held - len(value) - 6
    second = s.scan("", 1000, after=first["next"])
    keys = [k for k, _ in first["items"] + second["items"]]
    assert keys == [f"k{i:02d}" for i in range(12)] and second["more"] is False
    one = s.scan("", 1)  # the item limit still ends a page first when it is smaller
    assert len(one["items"]) == 1 and one["more"] is True
