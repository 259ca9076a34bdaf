"""The cluster id setting (TOML ``cluster_id``, ``--cluster-id``) and the identity a node
server gives its storage; the effective id in ``status``."""

from __future__ import annotations

from pathlib import Path

import pytest

from resonetics.errors import IdentityMismatch
from resonetics.server.config import ConfigError, ServerConfig, apply_overrides, load_toml
from resonetics.server.node_server import NodeServer
from resonetics.server.status import node_status
from resonetics.storage.identity import NodeIdentity, founding_cluster_id
from resonetics.storage.lock import DataDirLock

A = "a" * 32


def _config(tmp_path: Path, **changes: object) -> ServerConfig:
    base = ServerConfig(
        node_id="n1", peers={"n1": "127.0.0.1:1"}, clients={"n1": "127.0.0.1:2"}, data_dir=tmp_path
    )
    return apply_overrides(base, dict(changes), source="test")


def test_cluster_id_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        f'[cluster]\ncluster_id = "{A}"\n[nodes]\nn1 = {{ peer = "127.0.0.1:7101", client = "127.0.0.1:7001" }}\n'
    )
    assert load_toml(path, "n1").cluster_id == A


def test_a_mistyped_cluster_id_is_a_config_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cluster id 'A-typo'"):
        _config(tmp_path, cluster_id="A-typo")


def test_founders_given_no_id_found_with_the_peers_maps_id(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert config.identity() == NodeIdentity("n1", None, founding_cluster_id(config.peers))
    joining = _config(tmp_path, join=("127.0.0.1:2",))
    assert joining.identity().founding_id is None, "a joiner must be told its cluster"


def test_node_server_reports_its_cluster_and_frees_the_lock_when_refused(tmp_path: Path) -> None:
    server = NodeServer(_config(tmp_path, cluster_id=A))
    assert server.cluster_id == A and node_status(server)["cluster_id"] == A
    server.driver.close()
    server.data_dir_lock.release()
    with pytest.raises(IdentityMismatch):
        NodeServer(_config(tmp_path, cluster_id="b" * 32))
    # The refused start released the folder: the right node starts again at once.
    with DataDirLock(str(tmp_path / "n1")):
        pass
    again = NodeServer(_config(tmp_path))
    assert again.cluster_id == A, "no id given: the folder's is adopted"
    again.driver.close()
    again.data_dir_lock.release()
