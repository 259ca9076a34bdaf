"""A node's settings from TOML and flags: every value checked, every mistake named."""

from __future__ import annotations

from pathlib import Path

import pytest

from resonetics.server.config import ConfigError, apply_overrides, load_toml, parse_peers


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cluster.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_toml_sets_the_snapshot_policy_and_timing(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
[cluster]
data_dir = "d"
tick_ms = 10
snapshot_entries = 500
snapshot_bytes = 1048576

[nodes]
n1 = "127.0.0.1:7001"
n2 = "127.0.0.1:7002"
n3 = "127.0.0.1:7003"
""",
    )
    config = load_toml(path, "n2").validate()
    assert config.snapshot_entries == 500 and config.snapshot_bytes == 1_048_576
    assert config.tick_ms == 10 and config.node_dir == Path("d") / "n2"
    assert config.listen_address == ("127.0.0.1", 7002)
    assert config.raft_config().initial_voters == ("n1", "n2", "n3")
    assert 0 < config.raft_config().lease_ticks < config.election_ticks


def test_flags_override_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, '[cluster]\nsnapshot_entries = 5\n[nodes]\nn1 = "127.0.0.1:7001"\n')
    config = apply_overrides(load_toml(path, "n1"), {"snapshot_entries": 7}, source="flags")
    assert config.snapshot_entries == 7


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[cluster]\nsnapshot_bytes = "big"\n[nodes]\nn1 = "127.0.0.1:1"\n', "snapshot_bytes"),
        ('[cluster]\nfavourite_colour = 1\n[nodes]\nn1 = "127.0.0.1:1"\n', "favourite_colour"),
        ("[cluster\n", "not valid TOML"),
        ("[nodes]\nn1 = 7\n", "[nodes]"),
    ],
)
def test_bad_settings_name_the_setting(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_toml(_write(tmp_path, text), "n1")
    assert needle in str(info.value)


def test_peer_lists_are_checked() -> None:
    assert parse_peers("n1=127.0.0.1:7001, n2=h:7002") == {"n1": "127.0.0.1:7001", "n2": "h:7002"}
    for bad in ("n1", "n1=nohost", "=h:1", "n1=h:99999"):
        with pytest.raises(ConfigError):
            parse_peers(bad)
