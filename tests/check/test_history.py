"""Reading, validating, pairing and recording histories."""

from __future__ import annotations

import itertools
import json
import math
import threading
from pathlib import Path

import pytest

from resonetics.check.history import (
    HistoryRecorder,
    load_history,
    parse_events,
    parse_history,
)
from resonetics.check.linearizability import Verdict, check_history
from resonetics.errors import HistoryError
from tests.check.transcript import jsonl, ops


def test_invoke_and_ok_pair_into_one_completed_operation() -> None:
    [op] = ops("""
        0 invoke get
        0 ok     get [1,{"x":2}]
        """)
    assert (op.process, op.f, op.key, op.call, op.ret) == (0, "get", "k", 1, 2)
    assert op.output == [1, {"x": 2}]
    assert not op.pending


def test_cas_carries_expected_and_new_and_success_defaults_to_true() -> None:
    done, refused = ops("""
        0 invoke cas [null,1]
        0 ok     cas [null,1]
        1 invoke cas [2,3]
        1 ok     cas [2,3] success=false
        """)
    assert done.input == [None, 1] and done.success is True
    assert refused.success is False


def test_fail_is_dropped_and_info_or_unfinished_stay_pending() -> None:
    history = ops("""
        0 invoke set 1
        0 fail   set 1
        1 invoke set 2
        1 info   set 2
        2 invoke delete
        """)
    assert [(op.f, op.input) for op in history] == [("set", 2), ("delete", None)]
    assert all(op.pending and math.isinf(op.ret) for op in history)
    assert [op.id for op in history] == [0, 1]


def test_non_client_events_and_blank_lines_are_skipped() -> None:
    text = '\n{"process": "nemesis", "type": "info", "f": "kill"}\n\n' + jsonl(
        "0 invoke set 1\n0 ok set 1"
    )
    assert len(parse_events(text.splitlines())) == 2


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"process": 0, "type": "done", "f": "set", "key": "k"}', "type must be"),
        ('{"process": 0, "type": "invoke", "f": "incr", "key": "k"}', "f must be"),
        ('{"process": 0, "type": "invoke", "f": "get", "key": [1]}', "key must be"),
        ('{"process": 0, "type": "invoke", "f": "get", "key": "k", "time": "x"}', "time must"),
        ('{"process": 0, "type": "invoke", "f": "cas", "key": "k", "value": 1}', "[expected, new]"),
        (
            '{"process": 0, "type": "ok", "f": "cas", "key": "k", "value": [1,2], "success": 1}',
            "success must",
        ),
    ],
)
def test_malformed_lines_are_named_by_number(line: str, reason: str) -> None:
    text = jsonl("0 invoke set 1\n0 ok set 1") + line + "\n"
    with pytest.raises(HistoryError, match=reason) as caught:
        parse_events(text.splitlines(), source="h.jsonl")
    assert caught.value.line == 3
    assert str(caught.value).startswith("h.jsonl, line 3: ")


@pytest.mark.parametrize(
    ("text", "reason", "line"),
    [
        ("0 invoke set 1\n0 invoke set 2", "before its last operation completed", 2),
        ("0 ok set 1", "never invoked", 1),
        ("0 invoke set 1\n0 ok get", "does not match the invoke on line 1", 2),
        ("0 invoke set 1 key=a\n0 ok set 1 key=b", "does not match", 2),
    ],
)
def test_pairing_errors_name_the_line(text: str, reason: str, line: int) -> None:
    with pytest.raises(HistoryError, match=reason) as caught:
        parse_history(jsonl(text).splitlines())
    assert caught.value.line == line


def test_a_process_may_invoke_again_after_an_info() -> None:
    history = ops("""
        0 invoke set 1
        0 info   set 1
        0 invoke set 2
        0 ok     set 2
        """)
    assert [op.pending for op in history] == [True, False]


def test_load_history_reports_missing_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="No such file"):
        load_history(tmp_path / "absent.jsonl")
    binary = tmp_path / "bin.jsonl"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(HistoryError, match="UTF-8"):
        load_history(binary)


def test_recorder_dump_round_trips_through_the_parser(tmp_path: Path) -> None:
    ticks = itertools.count()
    recorder = HistoryRecorder(clock=lambda: float(next(ticks)))
    write = recorder.invoke(0, "set", "k", {"v": 1})
    cas = recorder.invoke(1, "cas", "k", ({"v": 1}, 2))
    recorder.ok(write)
    recorder.ok(cas, success=True)
    read = recorder.invoke(0, "get", "k")
    recorder.ok(read, 2)
    gone = recorder.invoke(2, "delete", "k")
    recorder.ok(gone, deleted=True)
    lost = recorder.invoke(3, "set", "k", 9)
    recorder.info(lost)
    dropped = recorder.invoke(4, "set", "k", 10)
    recorder.fail(dropped)
    path = tmp_path / "h.jsonl"
    recorder.dump(path)
    lines = path.read_text().splitlines()
    assert [json.loads(line)["time"] for line in lines] == [float(i) for i in range(12)]
    history = load_history(path)
    assert history == recorder.operations() == parse_history(recorder.lines())
    assert [op.f for op in history] == ["set", "cas", "get", "delete", "set"]
    assert history[1].input == [{"v": 1}, 2]
    assert history[3].deleted is True
    assert history[4].pending
    assert check_history(history).verdict is Verdict.LINEARIZABLE


def test_recorder_rejects_unknown_ops_and_bad_cas_values() -> None:
    recorder = HistoryRecorder()
    with pytest.raises(ValueError, match="unknown operation"):
        recorder.invoke(0, "incr", "k")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expected, new"):
        recorder.invoke(0, "cas", "k", 1)
    assert recorder.events() == []


def test_recorder_from_many_threads_over_a_locked_register_is_linearizable() -> None:
    """Clever code against a dumb oracle: a dict behind a lock is a linearizable register."""
    recorder = HistoryRecorder()
    register: dict[str, int] = {}
    lock = threading.Lock()

    def worker(process: int) -> None:
        for i in range(150):
            key = f"k{i % 3}"
            if i % 2:
                handle = recorder.invoke(process, "set", key, process * 1000 + i)
                with lock:
                    register[key] = handle.value
                recorder.ok(handle)
            else:
                handle = recorder.invoke(process, "get", key)
                with lock:
                    seen = register.get(key)
                recorder.ok(handle, seen)

    threads = [threading.Thread(target=worker, args=(p,)) for p in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    history = parse_history(recorder.dumps().splitlines())
    assert len(history) == 6 * 150
    result = check_history(history)
    assert result.verdict is Verdict.LINEARIZABLE
    assert sorted(k.key for k in result.keys) == ["k0", "k1", "k2"]
