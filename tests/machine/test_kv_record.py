"""The per-key ``Record``: small and untracked by the GC, and the snapshot it is written
to unchanged (format 3, byte for byte)."""

from __future__ import annotations

import gc
import sys

from resonetics.machine.kv import KeyValueStore, Record
from resonetics.steps import run_to_end as drain

#: A store's snapshot after the writes of ``_store`` as the named-tuple record wrote it.
_FORMAT_3_BYTES = (
    b'{"forgotten":0,"format":3,"index":5,"items":[["a",3,1,3,2],["c",null,5,5,1]],'
    b'"lease_last_id":0,"leases":[],"log_time":0,"tombstones":[[4,"b"]]}'
)


def _store() -> KeyValueStore:
    store = KeyValueStore()
    store.apply(1, {"op": "kv_set", "args": {"k": "a", "v": {"x": [1, 2]}}})
    store.apply(2, {"op": "kv_set", "args": {"k": "b", "v": "two"}})
    store.apply(3, {"op": "kv_set", "args": {"k": "a", "v": 3}})
    store.apply(4, {"op": "kv_delete", "args": {"k": "b"}})
    store.apply(5, {"op": "kv_set", "args": {"k": "c", "v": None}})
    return store


def test_snapshot_format_3_bytes_unchanged_by_the_record_class() -> None:
    store = _store()
    assert store.snapshot() == _FORMAT_3_BYTES
    assert drain(store.snapshot_steps(slice_items=1)) == _FORMAT_3_BYTES
    again = KeyValueStore()
    again.restore(_FORMAT_3_BYTES)
    assert again.snapshot() == _FORMAT_3_BYTES
    assert again.record("a") == Record(3, 1, 3, 2)


def test_record_is_untracked_by_the_gc_and_48_bytes() -> None:
    record = _store().record("a")
    assert record is not None
    assert not gc.is_tracked(record)
    assert sys.getsizeof(record) == 48
    assert record.meta() == {"create_index": 1, "mod_index": 3, "version": 2}


def test_scan_with_meta_rows_are_the_record_fields_in_order() -> None:
    store = _store()
    page = store.apply(6, {"op": "kv_scan", "args": {"prefix": "", "meta": True, "limit": 10}})
    assert page["items"] == [["a", 3, 1, 3, 2], ["c", None, 5, 5, 1]]
