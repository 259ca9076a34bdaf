"""The waits real-process tests use: deadlines, and errors that say what the cluster did."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from resonetics import errors
from resonetics.localcluster import ClusterChanged, ClusterTimeout, LocalCluster, free_ports


def _cluster(tmp_path: Path) -> LocalCluster:
    cluster = LocalCluster(tmp_path / "data", size=2)
    cluster.data_dir.mkdir(parents=True)
    return cluster


def test_wait_until_returns_the_first_truthy_answer(tmp_path: Path) -> None:
    answers = iter([None, 0, {}, "third time"])
    assert _cluster(tmp_path).wait_until("an answer", lambda: next(answers), 5.0, 0.0) == (
        "third time"
    )


def test_wait_until_treats_a_cluster_error_as_not_yet(tmp_path: Path) -> None:
    calls = []

    def flaky() -> bool:
        calls.append(1)
        if len(calls) < 3:
            raise errors.Unavailable("electing")
        return True

    assert _cluster(tmp_path).wait_until("a leader", flaky, 5.0, 0.0) is True
    assert len(calls) == 3


def test_timeout_names_the_condition_the_last_error_and_every_node(tmp_path: Path) -> None:
    cluster = _cluster(tmp_path)
    (cluster.data_dir / "n1.log").write_text("\n".join(f"line {i}" for i in range(100)) + "\n")
    n2 = cluster.nodes["n2"]
    n2.process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    n2.process.wait(timeout=30)

    def never() -> bool:
        raise errors.Timeout("no answer from n1")

    with pytest.raises(ClusterTimeout) as caught:
        cluster.wait_until("n1 to lead", never, timeout_s=0.2)
    message = str(caught.value)
    assert "timed out after 0.2s waiting for n1 to lead" in message
    assert "last error: Timeout: no answer from n1" in message
    assert "--- n1: not started" in message and "line 99" in message and "line 80" not in message
    assert "--- n2: exited with code 3" in message
    assert caught.value.what == "n1 to lead" and caught.value.timeout_s == 0.2


def test_an_assertion_inside_a_check_fails_at_once(tmp_path: Path) -> None:
    """A check that sees something wrong (not merely "not yet") must not be retried."""

    def wrong() -> bool:
        raise AssertionError("split brain: two leaders in term 4")

    with pytest.raises(AssertionError, match="split brain"):
        _cluster(tmp_path).wait_until("one leader", wrong, timeout_s=30.0)


def test_holds_fails_the_first_time_the_claim_breaks(tmp_path: Path) -> None:
    cluster = _cluster(tmp_path)
    cluster.holds("a constant", lambda: True, for_s=0.05, interval_s=0.01)
    looks = iter([True, True, False])
    with pytest.raises(ClusterChanged, match="the term below 1000000 stopped holding"):
        cluster.holds("the term below 1000000", lambda: next(looks), for_s=30.0, interval_s=0.0)


def test_starting_a_node_loads_no_simulator_harness_fuzzer_or_checker() -> None:
    """Every real-process test starts nodes: ``resonetics serve`` imports the server only
    (the other commands' modules cost about a second of CPU per process)."""
    code = (
        "import sys, click; from resonetics.cli import main; "
        "main.get_command(click.Context(main), 'serve'); "
        "print(sorted(m for m in sys.modules if m.startswith(("
        "'resonetics.sim', 'resonetics.torture', 'resonetics.check', 'resonetics.commands.bench'"
        "))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout


def test_free_ports_never_hands_out_a_port_twice_in_one_process() -> None:
    """Regression: a torture run's proxies were given a port a node had been given but
    had not bound yet (two probes, one port), so the node could not start."""
    first = free_ports(64)
    second = free_ports(64)
    assert len(set(first)) == 64 and len(set(second)) == 64
    assert not set(first) & set(second)
    # Outside the kernel's default ephemeral range, so outgoing connections cannot take one.
    assert all(20000 <= port <= 32767 for port in first + second)
