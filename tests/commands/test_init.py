"""``resonetics init``: a new cluster key, private, never overwritten."""

from __future__ import annotations

import os
from pathlib import Path

from click.testing import CliRunner

from resonetics.cli import main
from resonetics.security.cluster_key import load_cluster_key


def test_init_writes_a_private_cluster_key_naming_its_cluster(tmp_path: Path) -> None:
    out = tmp_path / "cluster.key"
    result = CliRunner().invoke(main, ["init", "--out", str(out)])
    assert result.exit_code == 0, result.output
    key = load_cluster_key(out)
    assert f"cluster {key.cluster_id}" in result.output
    assert os.stat(out).st_mode & 0o777 == 0o600


def test_init_never_overwrites_a_key(tmp_path: Path) -> None:
    out = tmp_path / "cluster.key"
    assert CliRunner().invoke(main, ["init", "--out", str(out)]).exit_code == 0
    before = out.read_bytes()
    again = CliRunner().invoke(main, ["init", "--out", str(out)])
    assert again.exit_code == 2
    assert "already exists" in again.output and "Traceback" not in again.output
    assert out.read_bytes() == before
