"""--trust-registry and --snapshot-bytes-max: an operator's typo is a one-line error."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from resonetics.cli import main
from resonetics.security.signing import TrustRegistry, load_or_create_node_key
from resonetics.server.config import ConfigError, ServerConfig, apply_overrides
from resonetics.server.history_trust import history_trust
from tests.security.history_keys import KEYS


def config(tmp_path: Path, **changes: object) -> ServerConfig:
    base = ServerConfig(
        node_id="n1",
        peers={"n1": "127.0.0.1:7101"},
        clients={"n1": "127.0.0.1:7001"},
        data_dir=tmp_path,
    )
    return apply_overrides(base, changes, source="test")


def write_registry(path: Path, keys: dict[str, object]) -> Path:
    path.write_text(TrustRegistry(keys).to_toml())  # type: ignore[arg-type]
    return path


def test_a_registry_implies_signing_and_installs_the_gate(tmp_path: Path) -> None:
    key = load_or_create_node_key(tmp_path / "n1")
    reg = write_registry(tmp_path / "r.toml", {"n1": key.public_key()})
    trust = history_trust(config(tmp_path, trust_registry=str(reg)).validate(), key)
    assert trust.signer is not None and trust.message_filter is not None
    assert trust.snapshot_signer is not None


def test_registry_with_no_sign_entries_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--no-sign-entries"):
        config(tmp_path, trust_registry="r.toml", sign_entries=False).validate()


def test_registry_without_this_nodes_key_is_a_config_error(tmp_path: Path) -> None:
    key = load_or_create_node_key(tmp_path / "n1")
    reg = write_registry(tmp_path / "r.toml", {"n2": KEYS["n2"].public_key()})
    with pytest.raises(ConfigError, match="no key for this node 'n1'"):
        history_trust(config(tmp_path, trust_registry=str(reg)), key)


def test_registry_with_another_key_for_this_node_is_a_config_error(tmp_path: Path) -> None:
    key = load_or_create_node_key(tmp_path / "n1")
    reg = write_registry(tmp_path / "r.toml", {"n1": KEYS["n1"].public_key()})
    with pytest.raises(ConfigError, match="not the public half"):
        history_trust(config(tmp_path, trust_registry=str(reg)), key)


def test_snapshot_bytes_max_must_be_a_positive_integer(tmp_path: Path) -> None:
    assert config(tmp_path, snapshot_bytes_max=4096).validate().snapshot_bytes_max == 4096
    with pytest.raises(ConfigError, match="snapshot_bytes_max must be an integer"):
        config(tmp_path, snapshot_bytes_max="1G")
    with pytest.raises(ConfigError, match="snapshot_bytes_max: must be >= 1"):
        config(tmp_path, snapshot_bytes_max=0).validate()


def test_serve_with_an_unreadable_registry_exits_with_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "serve",
            "--id",
            "n1",
            "--peers",
            "n1=127.0.0.1:1",
            "--clients",
            "n1=127.0.0.1:2",
            "--data-dir",
            str(tmp_path),
            "--trust-registry",
            str(tmp_path / "missing.toml"),
        ],
    )
    assert result.exit_code == 2  # a wrong request: exit 2 (commands/failures.py)
    assert "cannot read trust registry" in result.output
    assert "Traceback" not in result.output
