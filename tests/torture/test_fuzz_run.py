"""A short fuzz run against a real 3-node cluster (``make fuzz`` runs the long one)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from resonetics.torture.fuzz import SUMMARY_FILE, FuzzOptions, run_fuzz

pytestmark = pytest.mark.slow


def test_fuzz_short_run_keeps_every_node_up(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run_fuzz(FuzzOptions(out=tmp_path, seed=20_000, client_lines=20_000, peer_lines=5_000))
    assert result.client_lines == 20_000
    assert result.peer_lines == 5_000
    assert result.node_exits == {"n1": None, "n2": None, "n3": None}
    assert sum(result.handler_errors.values()) == 0
    assert result.final_client == "ok"
    assert result.verify_ok, result.verify_problems
    assert result.unexpected_answers == 0, result.unexpected_samples
    assert result.unanswered_lines == 0
    assert set(result.peer_modes) == {"stranger_raw", "stranger_hello", "member", "non_member"}
    assert result.passed
    # Every oversize line closed its connection, and nothing else did but too many failed
    # Auth lines on one connection (the node's last answer there says so).
    assert result.mutations["oversize"] >= 1
    assert result.closed_after_oversize == result.mutations["oversize"]
    closes = result.closed_after_oversize + result.closed_after_auth_failures
    assert result.closed_by_node == closes, result.close_samples
    assert (tmp_path / SUMMARY_FILE).exists()
    assert time.monotonic() - started < 60
