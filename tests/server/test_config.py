"""A node's settings from TOML and flags: every value checked, every mistake named."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from resonetics.server.config import (
    ConfigError,
    ServerConfig,
    apply_overrides,
    load_toml,
    parse_peers,
)

_ONE_NODE = '[nodes]\nn1 = { peer = "127.0.0.1:7101", client = "127.0.0.1:7001" }\n'


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
n1 = { peer = "127.0.0.1:7101", client = "127.0.0.1:7001" }
n2 = { peer = "127.0.0.1:7102", client = "127.0.0.1:7002" }
n3 = { peer = "127.0.0.1:7103", client = "127.0.0.1:7003" }
""",
    )
    config = load_toml(path, "n2").validate()
    assert config.snapshot_entries == 500 and config.snapshot_bytes == 1_048_576
    assert config.tick_ms == 10 and config.node_dir == Path("d") / "n2"
    assert config.peer_listen_address == ("127.0.0.1", 7102)
    assert config.client_listen_address == ("127.0.0.1", 7002)
    assert config.clients["n3"] == "127.0.0.1:7003"
    assert config.raft_config().initial_voters == ("n1", "n2", "n3")
    assert 0 < config.raft_config().lease_ticks < config.election_ticks


def test_flags_override_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, f"[cluster]\nsnapshot_entries = 5\n{_ONE_NODE}")
    config = apply_overrides(load_toml(path, "n1"), {"snapshot_entries": 7}, source="flags")
    assert config.snapshot_entries == 7


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (f'[cluster]\nsnapshot_bytes = "big"\n{_ONE_NODE}', "snapshot_bytes"),
        (f"[cluster]\nfavourite_colour = 1\n{_ONE_NODE}", "favourite_colour"),
        ("[cluster\n", "not valid TOML"),
        ("[nodes]\nn1 = 7\n", "[nodes]"),
        # The one-address form of older versions: peers and clients need separate ports now.
        ('[nodes]\nn1 = "127.0.0.1:7001"\n', "separate ports"),
        ('[nodes]\nn1 = { peer = "127.0.0.1:1", cleint = "127.0.0.1:2" }\n', "[nodes] n1"),
        ('[nodes]\nn1 = { peer = "127.0.0.1", client = "127.0.0.1:2" }\n', "n1.peer"),
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


def _config(**changes: object) -> ServerConfig:
    base = ServerConfig(
        node_id="n1",
        peers={"n1": "10.0.0.1:7101"},
        clients={"n1": "10.0.0.1:7001"},
        data_dir=Path("d"),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_non_loopback_peer_address_without_authentication_refuses_to_start() -> None:
    with pytest.raises(ConfigError) as info:
        _config().validate()
    message = str(info.value)
    assert "--listen-peer 10.0.0.1:7101" in message and "--cluster-key" in message
    assert "--insecure" in message


def test_insecure_flag_or_a_cluster_key_lets_a_non_loopback_node_start(tmp_path: Path) -> None:
    _config(insecure=True).validate()
    _config(cluster_key=tmp_path / "cluster.key").validate()


def test_loopback_peers_need_no_authentication_setting() -> None:
    _config(peers={"n1": "127.0.0.1:7101"}, clients={"n1": "127.0.0.1:7001"}).validate()
    _config(peers={"n1": "localhost:7101"}, clients={"n1": "localhost:7001"}).validate()


def test_peers_and_clients_on_one_port_are_refused() -> None:
    with pytest.raises(ConfigError, match="separate ports"):
        _config(peers={"n1": "127.0.0.1:7001"}, clients={"n1": "127.0.0.1:7001"}).validate()


def test_a_node_without_a_client_address_is_told_how_to_give_one() -> None:
    with pytest.raises(ConfigError, match="--listen-client"):
        _config(clients={}, insecure=True).validate()


def test_cluster_key_named_in_the_toml_is_found_beside_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, f'[cluster]\ncluster_key = "cluster.key"\n{_ONE_NODE}')
    assert load_toml(path, "n1").cluster_key == tmp_path / "cluster.key"
