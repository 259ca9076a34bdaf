"""``resonetics check``: verdicts, exit codes, and clear messages on bad input."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from resonetics.commands.check import check
from tests.check.transcript import jsonl

GOOD = """
0 invoke set 1 key=a
0 ok     set 1 key=a
1 invoke get key=a
1 ok     get 1 key=a
1 invoke set 5 key=b
1 ok     set 5 key=b
"""
STALE = (
    GOOD
    + """
0 invoke set 2 key=a
0 ok     set 2 key=a
2 invoke get key=a
2 ok     get 1 key=a
"""
)


def _run(tmp_path: Path, text: str, *args: str) -> tuple[int, str]:
    path = tmp_path / "history.jsonl"
    path.write_text(text)
    result = CliRunner().invoke(check, [str(path), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result.exit_code, result.output


def test_linearizable_history_exits_0_with_a_per_key_summary(tmp_path: Path) -> None:
    code, out = _run(tmp_path, jsonl(GOOD))
    assert code == 0
    assert "key 'a': linearizable (2 ops" in out
    assert "key 'b': linearizable (1 ops" in out
    assert "LINEARIZABLE: 3 ops on 2 keys" in out


def test_violation_exits_1_and_prints_the_minimal_counterexample(tmp_path: Path) -> None:
    code, out = _run(tmp_path, jsonl(STALE))
    assert code == 1
    assert "NOT LINEARIZABLE: 5 ops on 2 keys" in out
    assert "key 'a': these 3 operation(s) cannot be ordered" in out
    lines = [line.strip() for line in out.splitlines() if line.startswith("  ")]
    assert [line.split(maxsplit=2)[2] for line in lines] == ["set 1", "set 2", "get -> 1"]
    assert lines[-1].startswith("[9..10] p2")


def test_json_output_carries_verdicts_and_counterexample(tmp_path: Path) -> None:
    code, out = _run(tmp_path, jsonl(STALE), "--json")
    assert code == 1
    report = json.loads(out)
    assert report["verdict"] == "not linearizable"
    assert report["ops"] == 5
    by_key = {k["key"]: k for k in report["keys"]}
    assert by_key["b"]["verdict"] == "linearizable"
    example = by_key["a"]["counterexample"]
    assert [(op["f"], op["call_line"], op["return_line"]) for op in example] == [
        ("set", 1, 2),
        ("set", 7, 8),
        ("get", 9, 10),
    ]
    assert example[-1]["output"] == 1


def test_exhausted_budget_exits_2_as_unknown(tmp_path: Path) -> None:
    code, out = _run(tmp_path, jsonl(STALE), "--steps-max", "1")
    assert code == 2
    assert "UNKNOWN" in out
    assert "ran out of budget" in out


def test_malformed_input_exits_2_with_the_line_and_no_traceback(tmp_path: Path) -> None:
    code, out = _run(tmp_path, jsonl(GOOD) + "{oops\n")
    assert code == 2
    assert "line 7: not JSON" in out
    assert "Traceback" not in out
    code, out = _run(tmp_path, jsonl(GOOD) + "{oops\n", "--json")
    assert code == 2
    assert json.loads(out)["verdict"] == "invalid"


def test_missing_file_exits_2_with_a_message(tmp_path: Path) -> None:
    result = CliRunner().invoke(check, [str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 2
    assert "No such file" in result.output


def test_check_is_registered_on_the_resonetics_command(tmp_path: Path) -> None:
    from resonetics.cli import main

    path = tmp_path / "history.jsonl"
    path.write_text(jsonl(GOOD))
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 0
    assert "LINEARIZABLE" in result.output
