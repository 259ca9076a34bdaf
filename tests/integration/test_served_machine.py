"""``serve --machine``: a user's state machine on real processes (the counter example)."""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from resonetics import errors
from resonetics.client import Client
from resonetics.localcluster import LocalCluster

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def on_examples_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nodes (child processes) import ``counter`` from examples/."""
    paths = [str(EXAMPLES), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))


@pytest.fixture
def counter3(tmp_path: Path, on_examples_path: None) -> Iterator[LocalCluster]:
    cluster = LocalCluster(
        tmp_path / "data",
        size=3,
        tick_ms=20,
        extra_args=["--machine", "counter:make", "--snapshot-entries", "20"],
    )
    cluster.start()
    try:
        cluster.wait_for_leader(timeout_s=60)
        yield cluster
    finally:
        cluster.stop()
        for node_id in cluster.nodes:
            log = (cluster.data_dir / f"{node_id}.log").read_text(errors="replace")
            assert "Traceback" not in log, f"{node_id} crashed:\n{log[-3000:]}"


def _increments(client: Client, stop: threading.Event) -> tuple[int, int]:
    """(acknowledged, indeterminate) ``incr by=2`` calls until ``stop``."""
    acked = unknown = 0
    while not stop.is_set():
        try:
            client.call("incr", by=2)
            acked += 1
        except (errors.Timeout, errors.Unavailable):
            unknown += 1
    return acked, unknown


def test_served_counter_increments_exactly_once_across_a_leader_kill(
    counter3: LocalCluster,
) -> None:
    leader, _ = counter3.wait_for_leader()
    stop = threading.Event()
    clients = [Client(counter3.addresses, timeout=15) for _ in range(3)]
    try:
        first = clients[0].call("incr", by=2)
        assert first["value"] == 2 and set(first["receipt"]) == {"index", "term", "hash"}
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(_increments, clients[w], stop) for w in (1, 2)]
            counter3.wait_until(
                "20 increments", lambda: clients[0].call("value")["value"] >= 42, 60
            )
            counter3.kill_node(leader)
            counter3.wait_for_leader(exclude={leader})
            seen = clients[0].call("value")["value"]
            counter3.wait_until(
                "increments under the new leader",
                lambda: clients[0].call("value")["value"] >= seen + 20,
                60,
            )
            stop.set()
            results = [f.result() for f in futures]
        counter3.start_node(leader)
        final = clients[0].call("value")["value"]
    finally:
        stop.set()
        for c in clients:
            c.close()
    acked = 1 + sum(r[0] for r in results)
    unknown = sum(r[1] for r in results)
    # Every acknowledged increment counted once; a retry (same request id) never twice.
    assert 2 * acked <= final <= 2 * (acked + unknown), (acked, unknown, final)


def test_served_query_after_read_index_sees_every_acknowledged_command(
    counter3: LocalCluster,
) -> None:
    with Client(counter3.addresses, timeout=15) as writer:
        for _ in range(5):
            writer.call("incr", {"by": 3})
    # Another client, through every node: a linearizable query reflects all five.
    for address in counter3.addresses:
        with Client([address], timeout=15) as reader:
            assert reader.call("value")["value"] == 15
            stale = reader.call("value", consistency="stale")
            assert stale["value"] <= 15 and "applied_index" in stale


def test_served_counter_snapshot_and_restart_restores_the_count(counter3: LocalCluster) -> None:
    with Client(counter3.addresses, timeout=15) as client:
        for _ in range(50):
            client.call("incr")
    counter3.wait_until(
        "a snapshot on every node",
        lambda: all((counter3.data_dir / n / "snapshot.json").exists() for n in counter3.nodes),
        60,
    )
    counter3.stop()
    # verify checks the logs and snapshots of a served machine's data dir (its state
    # is the machine's own: noted, not replayed as key-value state).
    verified = subprocess.run(
        [sys.executable, "-m", "resonetics", "verify", str(counter3.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    counter3.start()
    counter3.wait_for_leader(timeout_s=60)
    with Client(counter3.addresses, timeout=15) as client:
        assert client.call("value")["value"] == 50
        assert client.call("incr", by=1)["value"] == 51


def test_served_machine_refuses_an_unknown_op_naming_the_machine_ops(
    counter3: LocalCluster,
) -> None:
    with Client(counter3.addresses, timeout=15) as client:
        with pytest.raises(errors.BadRequest) as refused:
            client.call("kv_set", k="a", v=1)
        message = str(refused.value)
        assert "unknown op 'kv_set' of machine 'counter'" in message
        assert "incr" in message and "value" in message
        with pytest.raises(errors.BadRequest, match=r"args\.by"):
            client.call("incr", by="two")
        with pytest.raises(errors.BadRequest, match=r"args\.bye"):
            client.call("incr", bye=2)  # a misspelled argument is refused, not defaulted
        assert client.call("value")["value"] == 0


def _serve(tmp_path: Path, machine: str) -> subprocess.CompletedProcess[str]:
    """``serve`` one node on a fresh port (exits at once when the machine is refused)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "resonetics",
            "serve",
            "--id",
            "n1",
            "--peers",
            "n1=127.0.0.1:1",
            "--clients",
            "n1=127.0.0.1:2",
            "--data-dir",
            str(tmp_path / "data"),
            "--machine",
            machine,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        ("no_such_module_xyz:make", "cannot import 'no_such_module_xyz'"),
        ("counter:nothing", "has no 'nothing'"),
        ("counter:not_a_machine", "returned dict, not a resonetics.StateMachine"),
        ("counter", "expected package.module:factory"),
    ],
)
def test_serve_with_a_bad_machine_factory_is_refused_in_one_line(
    tmp_path: Path, on_examples_path: None, spec: str, said: str
) -> None:
    done = _serve(tmp_path, spec)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert said in lines[0] and "Traceback" not in done.stderr


def test_data_dir_founded_by_another_machine_is_refused(
    tmp_path: Path, on_examples_path: None
) -> None:
    cluster = LocalCluster(
        tmp_path / "data", size=1, tick_ms=20, extra_args=["--machine", "counter:make"]
    )
    for _ in running_cluster_with(cluster):
        with Client(cluster.addresses, timeout=15) as client:
            client.call("incr", by=5)
    cluster.extra_args = ["--machine", "counter:make_other"]
    done = subprocess.run(
        cluster.command("n1"), capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2, done.stderr
    assert "holds the state of machine 'counter'" in done.stderr
    assert "this node runs 'other-counter'" in done.stderr
    # Nor may the key-value store (no --machine) take it over.
    cluster.extra_args = []
    done = subprocess.run(
        cluster.command("n1"), capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2 and "this node runs 'kv'" in done.stderr, done.stderr


def running_cluster_with(cluster: LocalCluster) -> Iterator[LocalCluster]:
    cluster.start()
    try:
        cluster.wait_for_leader(timeout_s=60)
        yield cluster
    finally:
        cluster.stop()


def test_call_command_sends_a_machine_op_and_prints_the_answer(counter3: LocalCluster) -> None:
    def call(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "resonetics", "call", *args]
        cluster = ["--cluster", ",".join(counter3.addresses)]
        return subprocess.run(
            command + cluster, capture_output=True, text=True, timeout=60, check=False
        )

    done = call("incr", "--arg", "by=4")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["value"] == 4
    done = call("value", "--consistency", "lease")
    assert done.returncode == 0 and json.loads(done.stdout) == {"value": 4}, done.stderr
    done = call("decr")
    assert done.returncode == 2 and "unknown op 'decr' of machine 'counter'" in done.stderr
