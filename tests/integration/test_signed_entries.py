"""A cluster run with --sign-entries leaves a history every entry of which verifies by key."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from resonetics.cli import main
from resonetics.client import Client
from resonetics.localcluster import LocalCluster
from resonetics.security.signing import registry_from_node_dirs


def test_signed_cluster_history_verifies_against_the_trust_registry(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with LocalCluster(data, size=3, tick_ms=20, extra_args=["--sign-entries"]) as cluster:
        leader, _ = cluster.wait_for_leader(timeout_s=60)
        with Client(cluster.addresses, timeout=15) as client:
            for i in range(30):
                client.put(f"k{i}", i)
        cluster.kill_node(leader)  # the next leader signs its own term's entries
        cluster.wait_for_leader(timeout_s=60, exclude={leader})
        with Client(cluster.addresses, timeout=15) as client:
            client.put("after", 1)
        cluster.start_node(leader)
        cluster.wait_for_leader(timeout_s=60)
    registry = registry_from_node_dirs({n: data / n for n in ("n1", "n2", "n3")})
    keys = tmp_path / "registry.toml"
    keys.write_text(registry.to_toml(), encoding="utf-8")
    result = CliRunner().invoke(
        main, ["verify", str(data), "--keys", str(keys), "--require-signed"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("signatures n") == 3
    assert "valid=" in result.output and "unsigned" not in result.output
