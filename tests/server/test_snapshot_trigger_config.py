"""The snapshot trigger's operator settings, and the log entries kept behind a snapshot:
from TOML, flags and ``Node``, to the trigger and the log file, and every typo refused
with the key and the range it must be in."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from resonetics import Node, limits
from resonetics.localcluster import free_ports
from resonetics.server.config import ConfigError, build_config, load_toml
from resonetics.storage.fs import OsFileSystem
from resonetics.storage.verify import verify_node
from tests.commands.helpers import one_line_error, run

_ONE_NODE = '[nodes]\nn1 = { peer = "127.0.0.1:7101", client = "127.0.0.1:7001" }\n'
_PEERS = {"n1": "127.0.0.1:7101"}
_CLIENTS = {"n1": "127.0.0.1:7001"}


def _toml(tmp_path: Path, cluster: str) -> Path:
    path = tmp_path / "cluster.toml"
    path.write_text(f"[cluster]\n{cluster}\n{_ONE_NODE}", encoding="utf-8")
    return path


def test_snapshot_trigger_defaults_are_the_limits() -> None:
    config = build_config("n1", peers=_PEERS, clients=_CLIENTS).validate()
    assert config.snapshot_log_ratio == limits.SNAPSHOT_LOG_RATIO_DEFAULT
    assert config.snapshot_floor_bytes == limits.SNAPSHOT_LOG_BYTES_FLOOR_DEFAULT
    assert config.snapshot_entries == limits.SNAPSHOT_ENTRIES_DEFAULT
    assert config.log_retain_entries == limits.SNAPSHOT_TRAILING_ENTRIES


def test_snapshot_trigger_settings_from_toml_and_flags(tmp_path: Path) -> None:
    path = _toml(
        tmp_path, "snapshot_log_ratio = 2\nsnapshot_floor_bytes = 65536\nlog_retain_entries = 7"
    )
    from_file = load_toml(path, "n1").validate()
    assert from_file.snapshot_log_ratio == 2.0 and from_file.snapshot_floor_bytes == 65536
    assert from_file.log_retain_entries == 7
    flags = {
        "snapshot_log_ratio": 0.5,
        "snapshot_floor_bytes": 0,
        "snapshot_entries": 100,
        "log_retain_entries": 1_000_000,
    }
    both = build_config("n1", config_path=path, settings=flags).validate()
    assert both.snapshot_log_ratio == 0.5 and both.snapshot_floor_bytes == 0
    assert both.snapshot_entries == 100 and both.log_retain_entries == 1_000_000


@pytest.mark.parametrize(
    ("cluster", "needle"),
    [
        ("snapshot_log_ratio = 0", "snapshot_log_ratio (--snapshot-log-ratio): must be > 0"),
        ("snapshot_log_ratio = -1.5", "must be > 0 and <= 100, got -1.5"),
        ("snapshot_log_ratio = nan", "snapshot_log_ratio"),
        ("snapshot_log_ratio = inf", "snapshot_log_ratio"),
        ("snapshot_log_ratio = 1000", "must be > 0 and <= 100, got 1000.0"),
        ('snapshot_log_ratio = "1"', "snapshot_log_ratio must be a number"),
        ("snapshot_log_ratio = true", "snapshot_log_ratio must be a number"),
        (
            "snapshot_floor_bytes = -1",
            "snapshot_floor_bytes (--snapshot-floor-bytes): must be >= 0",
        ),
        ("snapshot_floor_bytes = 2147483648", f"<= {limits.SNAPSHOT_LOG_BYTES_SETTING_MAX}"),
        ("snapshot_floor_bytes = 1.5", "snapshot_floor_bytes must be an integer"),
        ("snapshot_entries = -5", "snapshot_entries (--snapshot-entries): must be >= 0"),
        ("snapshot_entries = 100000000", f"<= {limits.SNAPSHOT_ENTRIES_SETTING_MAX}"),
        ("snapshot_bytes = -1", "snapshot_bytes (--snapshot-bytes): must be >= 0"),
        ("snapshot_ratio = 1.0", "unknown setting 'snapshot_ratio'"),
        ("log_retain_entries = -1", "log_retain_entries (--log-retain-entries): must be >= 0"),
        ("log_retain_entries = 20000000", f"<= {limits.LOG_RETAIN_ENTRIES_SETTING_MAX}"),
        ("log_retain_entries = 1.5", "log_retain_entries must be an integer"),
        ('log_retain_entries = "all"', "log_retain_entries must be an integer"),
        ("log_retain = 5", "unknown setting 'log_retain'"),
    ],
)
def test_snapshot_trigger_typo_in_toml_refused_naming_the_key_and_range(
    tmp_path: Path, cluster: str, needle: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_toml(_toml(tmp_path, cluster), "n1").validate()
    assert needle in str(refused.value)


@pytest.mark.parametrize(
    ("flag", "value", "needle"),
    [
        ("--snapshot-log-ratio", "0", "snapshot_log_ratio (--snapshot-log-ratio): must be > 0"),
        ("--snapshot-log-ratio", "101", "must be > 0 and <= 100, got 101.0"),
        ("--snapshot-log-ratio", "nan", "snapshot_log_ratio"),
        ("--snapshot-log-ratio", "lots", "--snapshot-log-ratio"),
        ("--snapshot-floor-bytes", "-1", "snapshot_floor_bytes (--snapshot-floor-bytes)"),
        ("--snapshot-floor-bytes", "4MiB", "--snapshot-floor-bytes"),
        ("--snapshot-entries", "-1", "snapshot_entries (--snapshot-entries): must be >= 0"),
        ("--log-retain-entries", "-3", "log_retain_entries (--log-retain-entries): must be >= 0"),
        ("--log-retain-entries", "lots", "--log-retain-entries"),
    ],
)
def test_snapshot_trigger_typo_on_the_command_line_refused_in_one_line(
    tmp_path: Path, flag: str, value: str, needle: str
) -> None:
    result = run(
        "serve", "--id", "n1", "--peers", "n1=127.0.0.1:7101", "--clients",
        "n1=127.0.0.1:7001", "--data-dir", str(tmp_path), flag, value,
    )  # fmt: skip
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    if value in ("lots", "4MiB"):  # click's own refusal of a non-number, naming the flag
        assert needle in result.stderr
    else:
        assert needle in one_line_error(result)
    assert not (tmp_path / "n1").exists()  # refused before anything was created


def test_snapshot_trigger_typo_through_node_refused_before_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"snapshot_log_ratio \(--snapshot-log-ratio\)"):
        Node(node_id="n1", peers=_PEERS, clients=_CLIENTS, data_dir=tmp_path, snapshot_log_ratio=0)


def _one_node(tmp_path: Path, **settings: float) -> Node:
    """A one-node cluster on free loopback ports, its folder under ``tmp_path``/data."""
    peer, client = (f"127.0.0.1:{p}" for p in free_ports(2))
    return Node(
        node_id="n1",
        peers={"n1": peer},
        clients={"n1": client},
        data_dir=tmp_path / "data",
        tick_ms=20,
        **settings,
    )


def _snapshots_after_writes(tmp_path: Path, **settings: float) -> int:
    """Snapshots a one-node cluster took after 200 writes of about 300 log bytes each."""

    async def scenario() -> int:
        node = _one_node(tmp_path, **settings)
        async with node:
            await node.wait_ready(60)
            for i in range(200):
                await node.acall("kv_set", k=f"key-{i:04d}", v="v" * 200)
            deadline = time.monotonic() + 10
            while True:
                taken = int(node.status()["snapshot"]["taken"])
                if taken or time.monotonic() > deadline or "snapshot_floor_bytes" not in settings:
                    return taken
                await asyncio.sleep(0.05)

    return asyncio.run(scenario())


def test_snapshot_floor_setting_reaches_the_trigger(tmp_path: Path) -> None:
    """About 60 KB of log: under the default 4 MiB floor no snapshot; with a 4 KiB floor
    (ratio 1: the next once the log outgrows the last snapshot) at least one."""
    assert _snapshots_after_writes(tmp_path / "default") == 0
    assert _snapshots_after_writes(tmp_path / "small", snapshot_floor_bytes=4096) >= 1


def test_log_retain_setting_reaches_the_core_and_the_log_file(tmp_path: Path) -> None:
    """A node that took a snapshot (at about 100 entries: ``snapshot_entries``) keeps
    ``log_retain_entries`` (30) entries behind it in memory (``status``: the log's first
    index), and its log.jsonl holds at least those (it drops older lines only once that
    pays for copying the kept ones)."""

    async def scenario() -> dict[str, int]:
        node = _one_node(tmp_path, snapshot_entries=100, log_retain_entries=30)
        async with node:
            await node.wait_ready(60)
            for i in range(150):
                await node.acall("kv_set", k=f"key-{i:04d}", v="v")
            deadline = time.monotonic() + 10
            while not node.status()["snapshot"]["taken"] and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            snapshot = node.status()["snapshot"]
            return {"index": snapshot["index"], "first": snapshot["log_first_index"]}

    seen = asyncio.run(scenario())
    assert seen["index"] >= 100
    assert seen["first"] == seen["index"] - 30 + 1
    report = verify_node(OsFileSystem(), str(tmp_path / "data" / "n1"))
    assert report.ok, report.problems
    assert report.snapshot is not None and report.anchor is not None
    assert report.anchor.index <= report.snapshot.meta.last_included_index - 30


@pytest.mark.parametrize(
    ("value", "needle"),
    [("-5", "log_retain_entries (--log-retain-entries): must be >= 0"), ("lots", "lots")],
)
def test_a_bad_log_retain_setting_stops_a_real_serve_process_in_one_line(
    tmp_path: Path, value: str, needle: str
) -> None:
    """As an operator meets it: a process, exit 2, one line on stderr, nothing created."""
    command = [sys.executable, "-m", "resonetics", "serve", "--id", "n1", "--peers"]
    command += ["n1=127.0.0.1:7101", "--clients", "n1=127.0.0.1:7001"]
    command += ["--data-dir", str(tmp_path), "--log-retain-entries", value]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and needle in done.stderr
    if value == "-5":  # click's own usage error for a non-number spans a few lines
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "n1").exists()
