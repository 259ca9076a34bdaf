"""The end-of-run checks of a torture run; each failure is one line naming what broke.

* the history is linearizable (a final read of every key is in it, so every
  acknowledged write is checked against the final state too);
* the healed cluster converged: every node reported the same applied index
  and chain hash;
* offline, ``verify`` finds every node folder sound and the nodes agree on
  the chain hash at every index they share, and all end at the same index;
* every peer link went through its proxy (else the network faults were void);
* no node crashed on its own: no unexpected exit, no unclean shutdown, no
  ``Traceback`` in a node's log.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resonetics.check.history import HistoryRecorder
from resonetics.check.linearizability import CheckResult, Verdict, check_history
from resonetics.storage.fs import OsFileSystem
from resonetics.storage.verify import ClusterReport, verify_path


@dataclass
class CheckReport:
    failures: list[str] = field(default_factory=list)
    checker: dict[str, Any] = field(default_factory=dict)
    verify: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures


def run_checks(
    *,
    history: HistoryRecorder,
    data_dir: Path,
    node_ids: list[str],
    crashes: list[dict[str, Any]],
    exit_codes: dict[str, int | None],
    converged: dict[str, Any] | None,
    time_limit_s: float,
    unused_links: Sequence[tuple[str, str]] = (),
) -> CheckReport:
    report = CheckReport()
    for src, dst in unused_links:
        # Every fault on the network relies on the links going through the proxies.
        report.failures.append(f"link {src}->{dst} never went through its proxy")
    _check_linearizable(report, history, time_limit_s)
    if converged is None:
        report.failures.append("the healed cluster did not converge on one applied index and hash")
    _check_verify(report, data_dir, len(node_ids))
    _check_no_crash(report, data_dir, node_ids, crashes, exit_codes)
    return report


def _check_linearizable(report: CheckReport, history: HistoryRecorder, limit_s: float) -> None:
    started = time.monotonic()
    ops = history.operations()
    result = check_history(ops, deadline_s=limit_s)
    elapsed = time.monotonic() - started
    report.checker = _checker_json(result, elapsed)
    if result.verdict is not Verdict.LINEARIZABLE:
        report.failures.append(f"history: {result.verdict.value}")
        for key in result.violations:
            lines = "; ".join(op.describe().strip() for op in key.counterexample)
            report.failures.append(f"key {key.key!r} cannot be linearized: {lines}")


def _checker_json(result: CheckResult, elapsed_s: float) -> dict[str, Any]:
    return {
        "verdict": result.verdict.value,
        "ops": result.ops,
        "elapsed_s": round(elapsed_s, 3),
        "keys": {str(k.key): {"verdict": k.verdict.value, "ops": k.ops, "steps": k.steps}
                 for k in result.keys},
    }  # fmt: skip


def _check_verify(report: CheckReport, data_dir: Path, nodes: int) -> None:
    fs = OsFileSystem()
    try:
        cluster = verify_path(fs, str(data_dir))
    finally:
        fs.close()
    report.verify = _verify_json(cluster)
    for problem in cluster.problems:
        report.failures.append(f"verify: {problem}")
    for node in cluster.nodes:
        for node_problem in node.problems:
            report.failures.append(f"verify {node.name}: {node_problem}")
    if len(cluster.nodes) != nodes:
        report.failures.append(f"verify: found {len(cluster.nodes)} node folders, expected {nodes}")
    ends = {(n.last_index, n.last_hash) for n in cluster.nodes}
    if len(ends) > 1:
        report.failures.append(f"verify: nodes end at different (index, hash): {sorted(ends)}")


def _verify_json(cluster: ClusterReport) -> dict[str, Any]:
    return {
        "ok": cluster.ok,
        "nodes": {
            n.name: {"last_index": n.last_index, "last_hash": n.last_hash, "commit": n.commit}
            for n in cluster.nodes
        },
        "problems": list(cluster.problems),
        "commit_index": cluster.commit_index,
    }


def _check_no_crash(
    report: CheckReport,
    data_dir: Path,
    node_ids: list[str],
    crashes: list[dict[str, Any]],
    exit_codes: dict[str, int | None],
) -> None:
    for crash in crashes:
        report.failures.append(
            f"{crash['node']} exited on its own (exit code {crash['exit_code']})"
        )
    for node_id, code in sorted(exit_codes.items()):
        if code != 0:
            report.failures.append(f"{node_id} did not shut down cleanly (exit code {code})")
    for node_id in node_ids:
        log_path = data_dir / f"{node_id}.log"
        text = log_path.read_text(errors="replace") if log_path.exists() else ""
        if "Traceback" in text:
            report.failures.append(f"{node_id}: a Traceback in {log_path}")


__all__ = ["CheckReport", "run_checks"]
