"""``resonetics verify``: verdicts, file:line problems, cross-node agreement, receipts, read-only."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

from click.testing import CliRunner, Result

from resonetics.cli import main
from resonetics.machine.replicated import ReplicatedKV
from resonetics.raft.entry import Entry, EntryType, genesis_entry, make_entry
from resonetics.raft.membership import Membership
from resonetics.raft.ready import HardState
from resonetics.storage.fs import OsFileSystem
from resonetics.storage.identity import NodeIdentity
from resonetics.storage.lock import DataDirLock
from resonetics.storage.log_file import encode_line
from resonetics.storage.meta_file import read_meta, write_meta
from resonetics.storage.node_storage import FileNodeStorage
from tests.storage.chain import chain, log_of, snapshot_at


def _node(path: Path, entries: list[Entry], commit: int, snapshot_index: int = 0) -> None:
    s = FileNodeStorage(OsFileSystem(), str(path))
    s.load()
    s.save_hard_state(HardState(term=2, vote="n1", commit=commit), commit)
    s.append(entries)
    s.sync()
    if snapshot_index:
        state = _replayed(entries[:snapshot_index])
        s.save_snapshot(snapshot_at(entries[snapshot_index - 1], state.snapshot()), snapshot_index)
    s.close()


def _replayed(entries: list[Entry]) -> ReplicatedKV:
    """The state a node holds after applying ``entries`` (from GENESIS)."""
    state = ReplicatedKV()
    for entry in entries:
        state.apply(entry)
    return state


def _verify(*args: str) -> Result:
    return CliRunner().invoke(main, ["verify", *args])


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def test_a_clean_node_passes_with_its_entry_count_and_last_hash(tmp_path: Path) -> None:
    entries = log_of(7)
    _node(tmp_path / "n1", entries, commit=7)
    result = _verify(str(tmp_path / "n1"))
    assert result.exit_code == 0, result.output
    assert "n1: OK" in result.output and "entries=7" in result.output
    assert entries[-1].hash in result.output
    assert "verdict: OK" in result.output


def test_a_corrupt_middle_line_fails_naming_file_line_and_index(tmp_path: Path) -> None:
    _node(tmp_path / "n1", log_of(6), commit=6)
    log = tmp_path / "n1" / "log.jsonl"
    data = bytearray(log.read_bytes())
    data[len(b"".join(encode_line(e) for e in [*log_of(2)])) + 300] ^= 0x02
    log.write_bytes(bytes(data))
    before = _digest(tmp_path)
    result = _verify(str(tmp_path / "n1"))
    assert result.exit_code == 1
    assert "log.jsonl:" in result.output and "CORRUPT" in result.output
    assert isinstance(result.exception, SystemExit), "a verdict, not a traceback"
    assert _digest(tmp_path) == before, "verify must not change a byte"


def test_a_torn_tail_is_a_note_and_is_left_in_place(tmp_path: Path) -> None:
    entries = log_of(4)
    _node(tmp_path / "n1", entries[:3], commit=3)
    log = tmp_path / "n1" / "log.jsonl"
    with log.open("ab") as f:
        f.write(encode_line(entries[3])[:-15])
    before = _digest(tmp_path)
    result = _verify(str(tmp_path / "n1"))
    assert result.exit_code == 0, result.output
    assert "torn tail" in result.output
    assert _digest(tmp_path) == before


def test_unreadable_meta_and_bad_snapshot_are_problems(tmp_path: Path) -> None:
    _node(tmp_path / "n1", log_of(6), commit=6, snapshot_index=3)
    (tmp_path / "n1" / "meta.json").write_text("{not json")
    snap = tmp_path / "n1" / "snapshot.json"
    snap.write_bytes(snap.read_bytes().replace(b'"format":2', b'"format":7', 1))
    result = _verify(str(tmp_path / "n1"))
    assert result.exit_code == 1
    assert "meta.json: unreadable" in result.output
    assert "snapshot.json: snapshot checksum mismatch" in result.output


def test_commit_beyond_the_log_is_a_problem(tmp_path: Path) -> None:
    _node(tmp_path / "n1", log_of(3), commit=3)
    meta = str(tmp_path / "n1" / "meta.json")
    record = read_meta(OsFileSystem(), meta)
    assert record is not None
    hs = HardState(term=record.hard_state.term, vote=record.hard_state.vote, commit=9)
    write_meta(OsFileSystem(), meta, replace(record, hard_state=hs))
    result = _verify(str(tmp_path / "n1"))
    assert result.exit_code == 1
    assert "commit_index 9 is beyond the last log index 3" in result.output


def test_a_data_dir_of_agreeing_nodes_passes(tmp_path: Path) -> None:
    entries = log_of(10)
    _node(tmp_path / "n1", entries, commit=10)
    _node(tmp_path / "n2", entries[:8], commit=8, snapshot_index=5)
    _node(tmp_path / "n3", entries, commit=9)
    result = _verify(str(tmp_path))
    assert result.exit_code == 0, result.output
    assert [line.split(":")[0] for line in result.output.splitlines() if ": OK " in line] == [
        "n1",
        "n2",
        "n3",
    ]
    assert "n1 and n2 agree on indexes 5..8" in result.output


def test_nodes_disagreeing_at_a_committed_index_fail(tmp_path: Path) -> None:
    entries = log_of(6)
    _node(tmp_path / "n1", entries, commit=6)
    _node(tmp_path / "n2", entries, commit=6)
    _node(tmp_path / "n3", entries[:3] + chain(entries[2], 3, tag="x"), commit=6)
    result = _verify(str(tmp_path))
    assert result.exit_code == 1
    assert "n3 diverges from the committed history at index 4" in result.output


def test_nodes_differing_only_past_commit_pass_with_a_note(tmp_path: Path) -> None:
    entries = log_of(6)
    _node(tmp_path / "n1", entries, commit=3)
    _node(tmp_path / "n2", entries[:3] + chain(entries[2], 3, term=2, tag="x"), commit=3)
    result = _verify(str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "differ from uncommitted index 4" in result.output


def test_a_receipt_held_by_the_history_passes(tmp_path: Path) -> None:
    entries = log_of(5)
    _node(tmp_path / "n1", entries, commit=5)
    e = entries[3]
    receipt = json.dumps({"index": e.index, "term": e.term, "hash": e.hash})
    result = _verify(str(tmp_path / "n1"), "--receipt", receipt)
    assert result.exit_code == 0, result.output
    assert "receipt: HELD" in result.output
    path = tmp_path / "receipt.json"
    path.write_text(receipt)
    assert _verify(str(tmp_path / "n1"), "--receipt", str(path)).exit_code == 0


def test_a_receipt_the_history_does_not_hold_fails(tmp_path: Path) -> None:
    entries = log_of(5)
    _node(tmp_path / "n1", entries, commit=5)
    forged = json.dumps({"index": 4, "term": 1, "hash": "0" * 64})
    result = _verify(str(tmp_path / "n1"), "--receipt", forged)
    assert result.exit_code == 1
    assert "DIFFERS at a committed index" in result.output
    beyond = json.dumps({"index": 40, "term": 1, "hash": "0" * 64})
    assert "n1: absent" in _verify(str(tmp_path / "n1"), "--receipt", beyond).output


def test_a_receipt_below_the_snapshot_is_reported_compacted(tmp_path: Path) -> None:
    entries = log_of(6)
    _node(tmp_path / "n1", entries, commit=6, snapshot_index=4)
    e = entries[1]
    receipt = json.dumps({"index": e.index, "term": e.term, "hash": e.hash})
    result = _verify(str(tmp_path / "n1"), "--receipt", receipt)
    assert "n1: compacted" in result.output
    assert result.exit_code == 1


def test_a_malformed_receipt_is_a_usage_error(tmp_path: Path) -> None:
    _node(tmp_path / "n1", log_of(2), commit=2)
    result = _verify(str(tmp_path / "n1"), "--receipt", '{"index": "x"}')
    assert result.exit_code == 2


def test_a_folder_without_nodes_fails(tmp_path: Path) -> None:
    result = _verify(str(tmp_path))
    assert result.exit_code == 1
    assert "no node folder" in result.output


# --- computed, not trusted: commit index, divergence, cluster, state ----------------------
A = "a" * 32
B = "b" * 32


def _member(
    path: Path,
    entries: list[Entry],
    *,
    cluster: str = A,
    commit_hint: int = 0,
    snapshot_index: int = 0,
    snapshot_state: bytes | None = None,
) -> None:
    """A node folder of ``cluster`` holding ``entries`` (built on its GENESIS)."""
    s = FileNodeStorage(OsFileSystem(), str(path), NodeIdentity(path.name, cluster))
    s.load()
    s.save_hard_state(HardState(term=2, vote="n1", commit=commit_hint), 0)
    s.append(entries)
    s.sync()
    if snapshot_index:
        data = snapshot_state or _replayed(entries[:snapshot_index]).snapshot()
        s.save_snapshot(snapshot_at(entries[snapshot_index - 1], data), snapshot_index)
    s.close()


def _history(count: int, cluster: str = A) -> list[Entry]:
    return chain(genesis_entry(cluster), count, term=2)


def test_verify_derives_commit_index_from_logs_not_meta(tmp_path: Path) -> None:
    entries = _history(10)
    for name in ("n1", "n2"):
        _member(tmp_path / name, entries, commit_hint=0)
    _member(tmp_path / "n3", entries[:3] + chain(entries[2], 7, term=2, tag="x"), commit_hint=0)
    result = _verify(str(tmp_path))
    assert "commit index 10 (derived from the logs" in result.output
    # Every hint says 0; a divergence inside the derived prefix is still a failure,
    # not an "uncommitted suffix".
    assert "n3 diverges from the committed history at index 4" in result.output
    assert "uncommitted index 4" not in result.output
    assert result.exit_code == 1


def test_verify_reports_divergent_node(tmp_path: Path) -> None:
    entries = _history(8)
    _member(tmp_path / "n1", entries, commit_hint=8)
    _member(tmp_path / "n2", entries[:6], commit_hint=6, snapshot_index=4)
    _member(tmp_path / "n3", entries[:5] + chain(entries[4], 1, term=2, tag="x"))
    result = _verify(str(tmp_path))
    assert result.exit_code == 1, result.output
    assert "commit index 6" in result.output
    assert "n3 diverges from the committed history at index 6" in result.output
    assert "n1 diverges" not in result.output and "n2 diverges" not in result.output


def test_verify_passes_agreeing_nodes_of_one_cluster_with_snapshots(tmp_path: Path) -> None:
    entries = _history(12)
    _member(tmp_path / "n1", entries, snapshot_index=5)
    _member(tmp_path / "n2", entries[:10], snapshot_index=9)
    _member(tmp_path / "n3", entries)
    result = _verify(str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "commit index 12" in result.output


def test_verify_reports_snapshot_state_that_history_does_not_imply(tmp_path: Path) -> None:
    entries = _history(8)
    forged = _replayed_from(entries[:5], A)
    forged.machine.apply(5, {"op": "kv_set", "args": {"k": "planted", "v": 1}})
    _member(tmp_path / "n1", entries)
    _member(tmp_path / "n2", entries, snapshot_index=5, snapshot_state=forged.snapshot())
    _member(tmp_path / "n3", entries, snapshot_index=6)
    result = _verify(str(tmp_path))
    assert result.exit_code == 1, result.output
    assert "n2: snapshot state at index 5" in result.output
    assert "is not what the history implies" in result.output
    assert "n3: snapshot state" not in result.output


def test_verify_reports_node_of_another_cluster(tmp_path: Path) -> None:
    _member(tmp_path / "n1", _history(5))
    _member(tmp_path / "n2", _history(5))
    _member(tmp_path / "n3", _history(5, cluster=B), cluster=B)
    result = _verify(str(tmp_path))
    assert result.exit_code == 1
    assert f"n3 belongs to another cluster ({B}, the others to {A})" in result.output


def test_verify_reports_a_snapshot_file_of_another_cluster(tmp_path: Path) -> None:
    """A snapshot.json copied from another cluster's node: the start refuses it, and
    verify says so without starting anything."""
    for name in ("n1", "n2", "n3"):
        _member(tmp_path / name, _history(8))
    _member(tmp_path / "other", _history(8, cluster=B), cluster=B, snapshot_index=6)
    copied = tmp_path / "n3" / "snapshot.json"
    copied.write_bytes((tmp_path / "other" / "snapshot.json").read_bytes())
    shutil.rmtree(tmp_path / "other")
    result = _verify(str(tmp_path))
    assert result.exit_code == 1, result.output
    assert f"{copied}: snapshot of cluster {B}, but meta.json names cluster {A}" in result.output


def test_verify_majority_is_of_the_newest_configurations_voters(tmp_path: Path) -> None:
    five = Membership(voters=("n1", "n2", "n3", "n4", "n5")).to_data()
    config = make_entry(genesis_entry(A).hash, 2, 1, EntryType.CONFIG, five)
    entries = [config, *chain(config, 9, term=2)]
    # Three folders of five voters: a majority of the configuration is 3, not 2 of 3.
    _member(tmp_path / "n1", entries)
    _member(tmp_path / "n2", entries)
    _member(tmp_path / "n3", entries[:4])
    result = _verify(str(tmp_path))
    assert "commit index 4 (derived from the logs: a majority of {n1, n2, n3, n4, n5}" in (
        result.output
    )
    assert result.exit_code == 0, result.output


def test_verify_reports_meta_term_below_the_logs_last_term(tmp_path: Path) -> None:
    _member(tmp_path / "n1", _history(3))
    meta = str(tmp_path / "n1" / "meta.json")
    record = read_meta(OsFileSystem(), meta)
    assert record is not None
    write_meta(OsFileSystem(), meta, replace(record, hard_state=HardState(term=1)))
    result = _verify(str(tmp_path / "n1"))
    assert result.exit_code == 1
    assert "current_term 1 is below the log's last term 2" in result.output


def test_verify_takes_no_lock_and_reads_beside_a_running_node(tmp_path: Path) -> None:
    _member(tmp_path / "n1", _history(3))
    with DataDirLock(str(tmp_path / "n1")):
        result = _verify(str(tmp_path / "n1"))
    assert result.exit_code == 0, result.output


def _replayed_from(entries: list[Entry], cluster: str) -> ReplicatedKV:
    state = ReplicatedKV()
    state.last_applied_hash = genesis_entry(cluster).hash
    for entry in entries:
        state.apply(entry)
    return state


def test_verify_notes_divergence_of_a_folder_outside_the_configuration(tmp_path: Path) -> None:
    three = Membership(voters=("n1", "n2", "n3")).to_data()
    config = make_entry(genesis_entry(A).hash, 2, 1, EntryType.CONFIG, three)
    entries = [config, *chain(config, 5, term=2)]
    for name in ("n1", "n2", "n3"):
        _member(tmp_path / name, entries)
    # A removed node's folder left behind, holding an old suffix nobody committed.
    _member(tmp_path / "n4", entries[:2] + chain(entries[1], 2, term=2, tag="old"))
    result = _verify(str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "note: n4 diverges from the committed history at index 3" in result.output
    assert "(not a member of the configuration)" in result.output


# --- state replay uses entries, never a compacted log's anchor ------------------------------
def _writes(count: int, cluster: str = A) -> list[Entry]:
    """``count`` CLIENT_CMD entries that each change the state (a ``kv_set`` apiece),
    so that replaying anything but the entry itself gives another state digest."""
    out: list[Entry] = []
    prev = genesis_entry(cluster)
    for index in range(1, count + 1):
        data = {
            "client_id": "c1",
            "request_id": f"r{index}",
            "op": "kv_set",
            "args": {"k": f"k{index}", "v": index},
            "ts": 1_000 + index,
        }
        prev = make_entry(prev.hash, 2, index, EntryType.CLIENT_CMD, data)
        out.append(prev)
    return out


def test_verify_replays_the_entry_not_a_compacted_folders_anchor(tmp_path: Path) -> None:
    """The layout a loaded cluster leaves: nodes snapshot at different indexes. n1's
    log starts with a SNAP_DUMMY anchor at 5 (the chain hash of entry 5, no data); the
    replay towards n1's and n3's snapshots must apply entry 5 from n2's log, not the
    anchor, or verify reports sound snapshots as not what the history implies."""
    entries = _writes(9)
    _member(tmp_path / "n1", entries, snapshot_index=5)
    _member(tmp_path / "n2", entries)
    _member(tmp_path / "n3", entries, snapshot_index=7)
    result = _verify(str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "is not what the history implies" not in result.output
    assert "not checked" not in result.output  # both snapshots were replayed from GENESIS


def test_verify_still_reports_a_planted_state_beside_a_compacted_folder(tmp_path: Path) -> None:
    entries = _writes(9)
    forged = _replayed_from(entries[:7], A)
    forged.machine.apply(7, {"op": "kv_set", "args": {"k": "planted", "v": 1}})
    _member(tmp_path / "n1", entries, snapshot_index=5)
    _member(tmp_path / "n2", entries)
    _member(tmp_path / "n3", entries, snapshot_index=7, snapshot_state=forged.snapshot())
    result = _verify(str(tmp_path))
    assert result.exit_code == 1, result.output
    assert "n3: snapshot state at index 7" in result.output
    assert "n1: snapshot state" not in result.output


def test_verify_never_replays_an_index_held_only_as_an_anchor(tmp_path: Path) -> None:
    """Entry 5 survives nowhere but as n2's and n3's anchors: n2's snapshot cannot be
    replayed from n1's at 4, so it is noted unchecked, not reported as wrong."""
    entries = _writes(8)
    _member(tmp_path / "n1", entries[:4], snapshot_index=4)
    _member(tmp_path / "n2", entries, snapshot_index=5)
    _member(tmp_path / "n3", entries, snapshot_index=5)
    result = _verify(str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "n2: snapshot at index 5 not checked" in result.output


def test_verify_replays_an_anchored_index_from_a_lagging_folders_entry(tmp_path: Path) -> None:
    """n1 lags (its log ends at 5) but still holds entry 5 itself, with the committed
    chain hash: the replay from its snapshot at 4 applies it, so n2's and n3's
    snapshots at 5 are checked — and a planted one is caught."""
    entries = _writes(8)
    forged = _replayed_from(entries[:5], A)
    forged.machine.apply(5, {"op": "kv_set", "args": {"k": "planted", "v": 1}})
    _member(tmp_path / "n1", entries[:5], snapshot_index=4)
    _member(tmp_path / "n2", entries, snapshot_index=5)
    _member(tmp_path / "n3", entries, snapshot_index=5, snapshot_state=forged.snapshot())
    result = _verify(str(tmp_path))
    assert result.exit_code == 1, result.output
    assert "n2: snapshot state" not in result.output
    assert "n2: snapshot at index 5 not checked" not in result.output
    assert "n3: snapshot state at index 5" in result.output
