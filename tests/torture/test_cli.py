"""``resonetics torture``: its refusals, and the summary it prints."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from resonetics.cli import main
from resonetics.commands.torture import describe
from resonetics.torture import TortureResult


def test_an_out_folder_holding_a_previous_run_is_refused(tmp_path: Path) -> None:
    """A refusal is exit 2 on one line; exit 1 stays "the run failed its checks"."""
    (tmp_path / "data" / "n1").mkdir(parents=True)
    result = CliRunner().invoke(main, ["torture", "--seed", "1", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "already holds node data" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_unknown_fault_kind_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["torture", "--faults", "kill,meteor"])
    assert result.exit_code == 2
    assert "meteor" in result.output


def test_the_summary_names_seed_ops_faults_leaders_and_verdict() -> None:
    summary = {
        "seed": 7,
        "ops": {"ok": 10, "fail": 2, "info": 1},
        "faults": {"kill": 1, "pause": 2},
        "leaders": [[1, "n1"], [2, "n2"]],
        "leader_changes": 1,
        "checker": {"verdict": "linearizable", "ops": 11, "elapsed_s": 0.1},
        "converged": {"applied_index": 5, "hash": "h"},
    }
    text = describe(TortureResult(False, summary, ["n2 exited on its own (exit code 1)"]))
    assert "seed 7: ops ok 10, failed 2, indeterminate 1" in text
    assert "kill x1, pause x2" in text
    assert "leader changes seen: 1" in text
    assert "checker: linearizable (11 ops" in text
    assert text.splitlines()[-2:] == [
        "verdict: FAIL",
        "  failure: n2 exited on its own (exit code 1)",
    ]
