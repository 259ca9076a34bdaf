"""Node and cluster identity on disk: a folder serves only its own node of its own cluster;
meta.json format 2 (identity, checksum, a term never below the log's); the data dir lock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from resonetics.errors import (
    BadClusterId,
    ClusterIdRequired,
    DataDirLocked,
    IdentityMismatch,
    StorageCorruption,
)
from resonetics.raft.entry import (
    GENESIS,
    Entry,
    chain_hash,
    genesis_cluster,
    genesis_entry,
    is_genesis,
)
from resonetics.raft.ready import HardState
from resonetics.storage.fs import MemoryFileSystem, atomic_write
from resonetics.storage.identity import (
    NodeIdentity,
    check_cluster_id,
    founding_cluster_id,
    new_cluster_id,
)
from resonetics.storage.lock import DataDirLock
from resonetics.storage.log_file import encode_line
from resonetics.storage.memory import MemoryNodeStorage
from resonetics.storage.meta_file import MetaRecord, write_meta
from resonetics.storage.node_storage import FileNodeStorage
from resonetics.storage.snapshot_file import decode_snapshot_file, encode_snapshot
from tests.storage.chain import chain, snapshot_at

DIR = "/data/n1"
META = DIR + "/meta.json"
LOG = DIR + "/log.jsonl"
SNAP = DIR + "/snapshot.json"
A = "a" * 32
B = "b" * 32


def _started(fs: MemoryFileSystem, identity: NodeIdentity | None, entries: int = 3) -> None:
    s = FileNodeStorage(fs, DIR, identity)
    state = s.load()
    s.save_hard_state(HardState(term=2, vote="n1", commit=entries), entries)
    s.append(chain(state.anchor, entries, term=2))
    s.sync()
    s.close()


def _snapshotted(identity: NodeIdentity | None, entries: int, at: int) -> MemoryFileSystem:
    """A folder of ``identity`` (None: an anonymous folder) holding ``entries`` entries
    and a snapshot at ``at``."""
    fs = MemoryFileSystem()
    _started(fs, identity, entries)
    s = FileNodeStorage(fs, DIR, identity)
    held = s.load().entries
    s.save_snapshot(snapshot_at(held[at - 1], data=repr(identity).encode()), at)
    s.close()
    return fs


def test_a_snapshot_file_names_the_cluster_of_the_node_that_wrote_it() -> None:
    fs = _snapshotted(NodeIdentity("n1", A), 6, 4)
    assert decode_snapshot_file(fs.read(SNAP), SNAP).cluster == A
    anonymous = _snapshotted(None, 6, 4)  # the simulator's and unit tests' folders
    assert decode_snapshot_file(anonymous.read(SNAP), SNAP).cluster == ""


def test_a_snapshot_of_another_cluster_copied_into_a_folder_is_refused_and_left_as_found() -> None:
    """Without the cluster in the file, a copied snapshot.json whose entry the log does
    not hold passed for an install a crash cut short: the node dropped its log and served
    the other cluster's state."""
    ours = MemoryFileSystem()
    _started(ours, NodeIdentity("n1", A), 6)
    theirs = _snapshotted(NodeIdentity("n1", B), 10, 8)
    atomic_write(ours, SNAP, theirs.read(SNAP))
    before = {name: ours.read(f"{DIR}/{name}") for name in ours.listdir(DIR)}
    with pytest.raises(StorageCorruption) as err:
        FileNodeStorage(ours, DIR, NodeIdentity("n1", A)).load()
    assert err.value.path == SNAP
    assert f"snapshot of cluster {B}, but meta.json names cluster {A}" in str(err.value)
    assert "\n" not in str(err.value)
    assert {name: ours.read(f"{DIR}/{name}") for name in ours.listdir(DIR)} == before


def test_a_snapshot_of_the_same_cluster_or_naming_none_is_still_taken() -> None:
    """Another node's snapshot of the same cluster is that cluster's committed state (the
    node starts from it, as after an install); a file that names no cluster (written before
    files named one) is judged as before."""
    for source in (
        _snapshotted(NodeIdentity("n2", A), 10, 8).read(SNAP),
        encode_snapshot(
            decode_snapshot_file(
                _snapshotted(NodeIdentity("n1", B), 10, 8).read(SNAP), SNAP
            ).snapshot
        ),
    ):
        ours = MemoryFileSystem()
        _started(ours, NodeIdentity("n1", A), 6)
        atomic_write(ours, SNAP, source)
        state = FileNodeStorage(ours, DIR, NodeIdentity("n1", A)).load()
        assert state.snapshot is not None and state.anchor.index == 8 and state.entries == []


def test_two_clusters_chains_never_agree() -> None:
    a, b = genesis_entry(A), genesis_entry(B)
    assert a.hash != b.hash != GENESIS.hash
    # Even the very same entries, appended to each, hash differently at every index.
    for ea, eb in zip(chain(a, 50), chain(b, 50), strict=True):
        assert (ea.index, ea.term, ea.data) == (eb.index, eb.term, eb.data)
        assert ea.hash != eb.hash


def test_genesis_names_its_cluster_and_the_anonymous_one_stays() -> None:
    assert genesis_entry("") == GENESIS and GENESIS.data is None
    assert genesis_cluster(genesis_entry(A)) == A and genesis_cluster(GENESIS) == ""
    assert is_genesis(genesis_entry(A)) and is_genesis(GENESIS)
    forged = Entry(term=0, index=0, type=GENESIS.type, data={"cluster": A}, hash="0" * 64)
    assert not is_genesis(forged), "a GENESIS whose hash is not its own is no anchor"


def test_fresh_folder_gets_the_identity_and_the_clusters_genesis() -> None:
    fs = MemoryFileSystem()
    s = FileNodeStorage(fs, DIR, NodeIdentity("n1", A))
    assert s.load().anchor == genesis_entry(A)
    meta = json.loads(fs.read(META))
    assert (meta["format"], meta["node_id"], meta["cluster_id"]) == (2, "n1", A)


def test_node_refuses_data_dir_of_another_cluster() -> None:
    fs = MemoryFileSystem()
    _started(fs, NodeIdentity("n1", A))
    with pytest.raises(IdentityMismatch) as err:
        FileNodeStorage(fs, DIR, NodeIdentity("n1", B)).load()
    assert (err.value.what, err.value.expected, err.value.found) == ("cluster", B, A)
    assert META in str(err.value) and "\n" not in str(err.value)


def test_node_refuses_data_dir_of_another_node_id() -> None:
    fs = MemoryFileSystem()
    _started(fs, NodeIdentity("n1", A))
    with pytest.raises(IdentityMismatch) as err:
        FileNodeStorage(fs, DIR, NodeIdentity("n2", A)).load()
    assert (err.value.what, err.value.expected, err.value.found) == ("node", "n2", "n1")


def test_node_given_no_cluster_id_adopts_the_one_on_disk() -> None:
    fs = MemoryFileSystem()
    _started(fs, NodeIdentity("n1", A))
    s = FileNodeStorage(fs, DIR, NodeIdentity("n1", None, founding_id=B))
    assert s.load().last_index == 3
    assert s.identity == NodeIdentity("n1", A)


def test_new_node_without_a_cluster_id_is_refused() -> None:
    with pytest.raises(ClusterIdRequired, match="give --cluster-id or --cluster-key"):
        FileNodeStorage(MemoryFileSystem(), DIR, NodeIdentity("n1", None)).load()


def test_founders_derive_one_cluster_id_from_the_same_peers_map() -> None:
    peers = {"n2": "h:2", "n1": "h:1", "n3": "h:3"}
    same = founding_cluster_id(dict(sorted(peers.items())))
    assert founding_cluster_id(peers) == same
    assert check_cluster_id(same) == same
    assert founding_cluster_id({**peers, "n3": "h:4"}) != same
    fs = MemoryFileSystem()
    s = FileNodeStorage(fs, DIR, NodeIdentity("n1", None, founding_id=same))
    assert s.load().anchor == genesis_entry(same)


def test_cluster_ids_are_128_random_bits_and_typos_are_refused() -> None:
    made = new_cluster_id()
    assert check_cluster_id(made) == made and made != new_cluster_id()
    for bad in ("", "abc", A.upper(), A[:-1] + "g", A + "0"):
        with pytest.raises(BadClusterId):
            check_cluster_id(bad)


def test_meta_with_term_below_last_log_term_refuses_to_start() -> None:
    fs = MemoryFileSystem()
    s = FileNodeStorage(fs, DIR, NodeIdentity("n1", A))
    state = s.load()
    s.save_hard_state(HardState(term=5, vote="n2"), 0)
    s.append(chain(state.anchor, 3, term=5))
    s.sync()
    s.close()
    # The attack: rewrite meta.json whole, with a valid checksum, at term 4 and no vote.
    write_meta(fs, META, MetaRecord(HardState(term=4), 0, node_id="n1", cluster_id=A))
    with pytest.raises(StorageCorruption, match="current_term 4 is below term 5"):
        FileNodeStorage(fs, DIR, NodeIdentity("n1", A)).load()


def test_hand_edited_meta_fails_checksum() -> None:
    fs = MemoryFileSystem()
    _started(fs, NodeIdentity("n1", A))
    # Same term, vote erased: the double vote the term check alone cannot see.
    edited = fs.read(META).replace(b'"voted_for":"n1"', b'"voted_for":null')
    assert edited != fs.read(META)
    atomic_write(fs, META, edited)
    with pytest.raises(StorageCorruption, match="checksum mismatch") as err:
        FileNodeStorage(fs, DIR, NodeIdentity("n1", A)).load()
    assert err.value.path == META


def test_format_1_meta_is_refused_as_made_by_an_older_version() -> None:
    fs = MemoryFileSystem()
    fs.mkdir("/data")
    fs.mkdir(DIR)
    atomic_write(
        fs, LOG, encode_line(GENESIS) + b"".join(encode_line(e) for e in chain(GENESIS, 2))
    )
    atomic_write(
        fs,
        META,
        b'{"format":1,"current_term":1,"voted_for":null,"commit_index":0,"last_applied":0}',
    )
    with pytest.raises(StorageCorruption, match="older version"):
        FileNodeStorage(fs, DIR, NodeIdentity("n1", A)).load()


def test_genesis_of_another_cluster_than_meta_names_is_corruption() -> None:
    fs = MemoryFileSystem()
    _started(fs, NodeIdentity("n1", A))
    other = genesis_entry(B)
    entries = chain(other, 3, term=2)
    atomic_write(fs, LOG, b"".join(encode_line(e) for e in [other, *entries]))
    with pytest.raises(StorageCorruption, match="GENESIS anchor is of cluster"):
        FileNodeStorage(fs, DIR, NodeIdentity("n1", A)).load()


def test_a_genesis_line_with_a_forged_hash_is_corruption() -> None:
    fs = MemoryFileSystem()
    _started(fs, NodeIdentity("n1", A))
    data = fs.read(LOG)
    assert genesis_entry(A).hash.encode() in data
    forged = Entry(
        term=0, index=0, type=GENESIS.type, data={"cluster": B}, hash=genesis_entry(A).hash
    )
    rest = data.split(b"\n", 1)[1]
    atomic_write(fs, LOG, encode_line(forged) + rest)
    with pytest.raises(StorageCorruption, match="GENESIS anchor differs"):
        FileNodeStorage(fs, DIR, NodeIdentity("n1", A)).load()


def test_memory_twin_starts_at_the_clusters_genesis() -> None:
    assert MemoryNodeStorage(NodeIdentity("n1", A)).load().anchor == genesis_entry(A)
    assert MemoryNodeStorage().load().anchor == GENESIS


def test_chain_hash_is_unchanged_for_the_anonymous_genesis() -> None:
    """Logs and receipts of the pure core and simulator keep their hashes."""
    assert GENESIS.hash == chain_hash("0" * 64, 0, 0, GENESIS.type, None)


def test_second_lock_on_a_data_dir_fails_naming_the_holder(tmp_path: Path) -> None:
    first = DataDirLock(str(tmp_path / "n1")).acquire()
    with pytest.raises(DataDirLocked) as err:
        DataDirLock(str(tmp_path / "n1")).acquire()
    assert "pid " in err.value.holder and str(tmp_path / "n1") in str(err.value)
    first.release()
    again = DataDirLock(str(tmp_path / "n1")).acquire()
    assert again.held
    again.release()
