"""``resonetics verify``: verdicts, file:line problems, cross-node agreement, receipts, read-only."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from dataclasses import replace

from click.testing import CliRunner, Result

from resonetics.cli import main
from resonetics.machine.replicated import ReplicatedKV
from resonetics.raft.entry import Entry
from resonetics.raft.ready import HardState
from resonetics.storage.fs import OsFileSystem
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
    assert "torn last line" in result.output
    assert _digest(tmp_path) == before


def test_unreadable_meta_and_bad_snapshot_are_problems(tmp_path: Path) -> None:
    _node(tmp_path / "n1", log_of(6), commit=6, snapshot_index=3)
    (tmp_path / "n1" / "meta.json").write_text("{not json")
    snap = tmp_path / "n1" / "snapshot.json"
    snap.write_bytes(snap.read_bytes().replace(b'"format":1', b'"format":7'))
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
