"""The end-of-run checks fail for each kind of trouble, and pass for a clean run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from resonetics.check.history import HistoryRecorder
from resonetics.raft.entry import GENESIS, Entry, EntryType, make_entry
from resonetics.raft.ready import HardState
from resonetics.storage.fs import OsFileSystem
from resonetics.storage.node_storage import FileNodeStorage
from resonetics.torture.checks import CheckReport, run_checks


def _write_node(data_dir: Path, node_id: str, entries: int, tag: str = "") -> None:
    prev: Entry = GENESIS
    chain = []
    for index in range(1, entries + 1):
        prev = make_entry(prev.hash, 1, index, EntryType.CLIENT_CMD, {"k": f"{tag}{index}"})
        chain.append(prev)
    fs = OsFileSystem()
    storage = FileNodeStorage(fs, str(data_dir / node_id))
    storage.load()
    storage.append(chain)
    storage.sync()
    storage.save_hard_state(HardState(1, None, entries), entries)
    storage.close()
    fs.close()
    (data_dir / f"{node_id}.log").write_text("n: listening\n")


def _good_history() -> HistoryRecorder:
    recorder = HistoryRecorder()
    recorder.ok(recorder.invoke(0, "set", "k", "1"))
    recorder.info(recorder.invoke(0, "set", "k", "2"))
    recorder.ok(recorder.invoke(1, "get", "k"), "2")
    return recorder


def _check(data_dir: Path, history: HistoryRecorder, **overrides: Any) -> CheckReport:
    args: dict[str, Any] = {
        "history": history,
        "data_dir": data_dir,
        "node_ids": ["n1", "n2"],
        "crashes": [],
        "exit_codes": {"n1": 0, "n2": 0},
        "converged": {"applied_index": 3, "hash": "x"},
        "time_limit_s": 30.0,
    }
    args.update(overrides)
    return run_checks(**args)


def test_a_clean_run_passes(tmp_path: Path) -> None:
    for node in ("n1", "n2"):
        _write_node(tmp_path, node, 3)
    report = _check(tmp_path, _good_history())
    assert report.ok, report.failures
    assert report.checker["verdict"] == "linearizable"


def test_a_stale_read_fails_the_run_with_the_counterexample(tmp_path: Path) -> None:
    for node in ("n1", "n2"):
        _write_node(tmp_path, node, 3)
    recorder = HistoryRecorder()
    recorder.ok(recorder.invoke(0, "set", "k", "1"))
    recorder.ok(recorder.invoke(0, "set", "k", "2"))
    recorder.ok(recorder.invoke(1, "get", "k"), "1")
    report = _check(tmp_path, recorder)
    assert not report.ok
    assert report.failures[0] == "history: not linearizable"
    assert "cannot be linearized" in report.failures[1]


def test_nodes_that_diverge_or_end_apart_fail_the_run(tmp_path: Path) -> None:
    _write_node(tmp_path, "n1", 3)
    _write_node(tmp_path, "n2", 4, tag="other")
    report = _check(tmp_path, _good_history())
    assert any("disagree at committed index" in f for f in report.failures)
    assert any("different (index, hash)" in f for f in report.failures)


def test_crashes_unclean_exits_tracebacks_bypassed_proxies_and_no_convergence_each_fail(
    tmp_path: Path,
) -> None:
    for node in ("n1", "n2"):
        _write_node(tmp_path, node, 3)
    (tmp_path / "n2.log").write_text("Traceback (most recent call last):\n  boom\n")
    report = _check(
        tmp_path,
        _good_history(),
        crashes=[{"node": "n1", "exit_code": 1, "time": 0.0}],
        exit_codes={"n1": 0, "n2": -9},
        converged=None,
        unused_links=[("n1", "n2")],
    )
    text = "\n".join(report.failures)
    assert "n1 exited on its own (exit code 1)" in text
    assert "n2 did not shut down cleanly (exit code -9)" in text
    assert "n2: a Traceback" in text
    assert "did not converge" in text
    assert "link n1->n2 never went through its proxy" in text
