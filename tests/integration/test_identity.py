"""Real processes: one process per data dir, and a node never starts on another
cluster's or another node's folder (issue 13: a node started on another cluster's data
dir joined and served that state; two ``serve`` processes corrupted one log)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from resonetics.client import Client
from resonetics.localcluster import free_ports
from resonetics.security.cluster_key import load_cluster_key
from tests.integration.conftest import REFUSAL_TIMEOUT_S, one_line, running_cluster, serve_once


def test_second_process_on_a_data_dir_exits_naming_the_holder(tmp_path: Path) -> None:
    for cluster in running_cluster(tmp_path / "data", 1):
        holder = cluster.nodes["n1"].process
        assert holder is not None
        second = serve_once(cluster.data_dir, "n1", "--cluster-id", cluster.cluster_id_arg())
        assert second.returncode == 2, second.stderr
        line = one_line(second)
        assert "in use by pid" in line and f"pid {holder.pid} " in line
        # The holder was not disturbed and still says which cluster it belongs to.
        status = cluster.status("n1")
        assert status is not None and status["cluster_id"] == cluster.cluster_id_arg()


def test_node_refuses_data_dir_of_another_cluster_or_node_at_start(tmp_path: Path) -> None:
    for _ in running_cluster(tmp_path / "data", 1):
        pass  # founded, then stopped cleanly
    mine = load_cluster_key(tmp_path / "data" / "cluster.key").cluster_id
    other = "f" * 32 if mine != "f" * 32 else "e" * 32
    result = serve_once(tmp_path / "data", "n1", "--cluster-id", other)
    assert result.returncode == 2, result.stderr
    line = one_line(result)
    assert f"belongs to cluster {mine}, not {other}" in line
    # A folder copied under another node's name is refused the same way.
    (tmp_path / "data" / "n1").rename(tmp_path / "data" / "n2")
    result = serve_once(tmp_path / "data", "n2")
    assert result.returncode == 2, result.stderr
    assert "belongs to node n1, not n2" in one_line(result)
    # A typo in the id is a usage error naming the setting, not a traceback.
    result = serve_once(tmp_path / "data", "n9", "--cluster-id", "not-hex")
    assert result.returncode != 0 and "cluster id 'not-hex'" in one_line(result)


def test_cluster_key_of_another_cluster_is_refused_on_a_founded_data_dir(tmp_path: Path) -> None:
    """The operator's typo: the right data dir, another cluster's key file."""
    from resonetics.security.cluster_key import new_cluster_key, write_cluster_key

    for _ in running_cluster(tmp_path / "data", 1):
        pass  # founded with its own key, then stopped cleanly
    mine = load_cluster_key(tmp_path / "data" / "cluster.key").cluster_id
    other_key = tmp_path / "other.key"
    write_cluster_key(other_key, new_cluster_key())
    result = serve_once(tmp_path / "data", "n1", "--cluster-key", str(other_key))
    assert result.returncode == 2, result.stderr
    other = load_cluster_key(other_key).cluster_id
    assert f"belongs to cluster {mine}, not {other}" in one_line(result)
    # A --cluster-id that contradicts the key file is refused before anything is read.
    result = serve_once(
        tmp_path / "data", "n1", "--cluster-key", str(other_key), "--cluster-id", mine
    )
    assert result.returncode == 2, result.stderr
    assert "contradicts the cluster key file" in one_line(result)


def test_unauthenticated_peers_on_a_non_loopback_address_refuse_to_start(tmp_path: Path) -> None:
    peer, client = free_ports(2)
    command = [sys.executable, "-m", "resonetics", "serve", "--id", "n1"]
    command += ["--peers", f"n1=0.0.0.0:{peer}", "--clients", f"n1=127.0.0.1:{client}"]
    command += ["--data-dir", str(tmp_path)]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=REFUSAL_TIMEOUT_S, check=False
    )
    assert result.returncode == 2, result.stderr
    line = one_line(result)
    assert "not a loopback address" in line and "--insecure" in line
    assert not (tmp_path / "n1").exists()  # refused before the data dir was touched


def test_a_log_line_nested_deeper_than_python_allows_stops_the_start_naming_it(
    tmp_path: Path,
) -> None:
    """A line with a right CRC around JSON nested 100,000 deep (a hand edit, a tool gone
    wrong): ``serve`` exits 2 with one line naming the file, line and index, no traceback."""
    import zlib

    for _ in running_cluster(tmp_path / "data", 1):
        pass  # founded, then stopped cleanly
    log = tmp_path / "data" / "n1" / "log.jsonl"
    written = log.read_bytes().rstrip(b"\0")  # the lines, not the space allocated after them
    lines = written.splitlines()
    index = len(lines)  # GENESIS is index 0 on line 1: the next line is this index
    deep = b"[" * 100_000 + b"]" * 100_000
    body = b'{"term":1,"index":%d,"type":"CLIENT_CMD","data":%s,"hash":"x"}' % (index, deep)
    bad = body[:-1] + b',"crc":"%08x"}\n' % zlib.crc32(body)
    with log.open("r+b") as f:
        f.seek(len(written))
        f.write(bad + lines[-1] + b"\n")  # not the last line: corruption, not a torn tail
    mine = load_cluster_key(tmp_path / "data" / "cluster.key").cluster_id
    result = serve_once(tmp_path / "data", "n1", "--cluster-id", mine)
    assert result.returncode == 2, result.stderr
    line = one_line(result)
    assert "log.jsonl" in line and f"line {index + 1}" in line and "not a valid entry" in line


def _written_and_stopped(data_dir: Path, keys: int) -> Path:
    """A one-node cluster that wrote ``keys`` keys and stopped cleanly (meta.json then
    holds its commit index); the path of its log."""
    for cluster in running_cluster(data_dir, 1):
        with Client(cluster.addresses, timeout=10) as client:
            for i in range(keys):
                client.put(f"k{i}", i)
    return data_dir / "n1" / "log.jsonl"


def test_a_zeroed_sector_under_the_commit_index_stops_the_start_and_leaves_the_file(
    tmp_path: Path,
) -> None:
    """Zeros inside a committed line look like a crash's never-written sector, but
    meta.json's commit index says the line was synced: damage, refused in one line,
    the file untouched (the cut it would take would drop committed entries)."""
    log = _written_and_stopped(tmp_path / "data", 12)
    data = bytearray(log.read_bytes())
    lines = bytes(data).rstrip(b"\0").splitlines(keepends=True)
    start = sum(len(line) for line in lines[:6])  # the line of index 6 of 12+
    data[start + 8 : start + 48] = bytes(40)
    log.write_bytes(bytes(data))
    mine = load_cluster_key(tmp_path / "data" / "cluster.key").cluster_id
    result = serve_once(tmp_path / "data", "n1", "--cluster-id", mine)
    assert result.returncode == 2, result.stderr
    line = one_line(result)
    assert "log.jsonl" in line and "below the commit index" in line
    assert log.read_bytes() == bytes(data)


def test_an_unsynced_batch_with_a_hole_after_the_last_line_is_cut_and_the_node_serves(
    tmp_path: Path,
) -> None:
    """Past the commit index, the same shape is a crash before an fsync: bytes of a
    batch written in place, a sector of them never written, whole lines after it.
    The node cuts them, starts, and serves every committed key."""
    data_dir = tmp_path / "data"
    log = _written_and_stopped(data_dir, 5)
    data = log.read_bytes()
    lines = data.rstrip(b"\0")
    last = lines.splitlines(keepends=True)[-1]
    torn = bytes(40) + last[40:] + last  # a hole, then the rest of a line, then a whole one
    with log.open("r+b") as f:
        f.seek(len(lines))
        f.write(torn)
    for cluster in running_cluster(data_dir, 1):
        with Client(cluster.addresses, timeout=10) as client:
            assert [client.get(f"k{i}") for i in range(5)] == list(range(5))
    assert log.read_bytes().startswith(lines)
    assert torn not in log.read_bytes()
    cut = [
        line
        for line in (data_dir / "n1.log").read_text(errors="replace").splitlines()
        if "event=log_tail_cut" in line
    ]
    assert len(cut) == 1 and "never written" in cut[0] and "WARNING" in cut[0], cut


def test_a_byte_changed_under_the_logs_seal_still_stops_the_start_naming_the_line(
    tmp_path: Path,
) -> None:
    """A clean stop seals the whole log (``storage/log_seal.py``); a byte changed in a
    sealed line afterwards voids the seal, and ``serve`` refuses the corrupt line in one
    line naming file and line, as it does with no seal."""
    import json

    log = _written_and_stopped(tmp_path / "data", 5)
    seal = log.with_name("log.jsonl.seal")
    lines = log.read_bytes().rstrip(b"\0").splitlines(keepends=True)
    assert json.loads(seal.read_bytes())["bytes"] == sum(len(line) for line in lines)
    data = bytearray(log.read_bytes())
    data[sum(len(line) for line in lines[:3]) + 12] ^= 0x01  # inside line 4, lines after it
    log.write_bytes(bytes(data))
    mine = load_cluster_key(tmp_path / "data" / "cluster.key").cluster_id
    result = serve_once(tmp_path / "data", "n1", "--cluster-id", mine)
    assert result.returncode == 2, result.stderr
    line = one_line(result)
    assert "log.jsonl" in line and "line 4" in line


def test_a_garbage_deep_or_huge_seal_is_ignored_and_the_node_starts_with_its_data(
    tmp_path: Path,
) -> None:
    """What an operator's mistake or a stray tool can leave in ``log.jsonl.seal``: the
    node checks every line as without a seal and serves what it had."""
    data_dir = tmp_path / "data"
    log = _written_and_stopped(data_dir, 4)
    seal = log.with_name("log.jsonl.seal")
    for content in (
        b"[" * 200_000 + b"]" * 200_000,
        b'{"bytes": 10, "sha256": "' + b"0" * 64 + b'"}',
        b"\xff\xfe garbage" * 500_000,
    ):
        seal.write_bytes(content)
        for cluster in running_cluster(data_dir, 1):
            with Client(cluster.addresses, timeout=10) as client:
                assert [client.get(f"k{i}") for i in range(4)] == [0, 1, 2, 3]
