"""The hash chain (DESIGN §4): each hash covers the previous hash and the entry."""

from resonetics.raft.entry import GENESIS, EntryType, entry_links, make_entry


def test_chain_hash_links_each_entry_to_the_one_before() -> None:
    first = make_entry(GENESIS.hash, 1, 1, EntryType.NOOP, None)
    second = make_entry(first.hash, 1, 2, EntryType.CLIENT_CMD, {"op": "kv_set"})
    assert entry_links(GENESIS.hash, first)
    assert entry_links(first.hash, second)
    assert not entry_links(GENESIS.hash, second)


def test_chain_hash_changes_when_any_field_changes() -> None:
    base = make_entry(GENESIS.hash, 1, 1, EntryType.CLIENT_CMD, {"k": "a"})
    variants = [
        make_entry(GENESIS.hash, 2, 1, EntryType.CLIENT_CMD, {"k": "a"}),
        make_entry(GENESIS.hash, 1, 2, EntryType.CLIENT_CMD, {"k": "a"}),
        make_entry(GENESIS.hash, 1, 1, EntryType.NOOP, {"k": "a"}),
        make_entry(GENESIS.hash, 1, 1, EntryType.CLIENT_CMD, {"k": "b"}),
        make_entry("f" * 64, 1, 1, EntryType.CLIENT_CMD, {"k": "a"}),
    ]
    assert all(v.hash != base.hash for v in variants)


def test_chain_hash_ignores_key_order_of_data() -> None:
    a = make_entry(GENESIS.hash, 1, 1, EntryType.CLIENT_CMD, {"x": 1, "y": 2})
    b = make_entry(GENESIS.hash, 1, 1, EntryType.CLIENT_CMD, {"y": 2, "x": 1})
    assert a.hash == b.hash
