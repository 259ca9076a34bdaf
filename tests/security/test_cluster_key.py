"""The cluster key file: made once, kept secret, every mistake named."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from resonetics.errors import BadClusterId
from resonetics.security.cluster_key import (
    ClusterKeyError,
    load_cluster_key,
    new_cluster_key,
    write_cluster_key,
)
from resonetics.storage.identity import check_cluster_id


def test_written_key_loads_back_and_is_private(tmp_path: Path) -> None:
    key = new_cluster_key()
    path = tmp_path / "cluster.key"
    write_cluster_key(path, key)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert load_cluster_key(path) == key
    assert key.secret.hex() not in repr(key)


def test_existing_key_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "cluster.key"
    write_cluster_key(path, new_cluster_key())
    with pytest.raises(ClusterKeyError, match="already exists"):
        write_cluster_key(path, new_cluster_key())


def test_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cluster.key"
    write_cluster_key(path, new_cluster_key())
    os.chmod(path, 0o644)
    with pytest.raises(ClusterKeyError, match="chmod 600"):
        load_cluster_key(path)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("cluster_id = 'abc'\nkey = 'AAAA'\n", "not a cluster id"),
        (f"cluster_id = '{'a' * 32}'\nkey = '!!'\n", "not base64"),
        (f"cluster_id = '{'a' * 32}'\nkey = 'AAAA'\n", "32 bytes"),
        (f"cluster_id = '{'a' * 32}'\n", "needs cluster_id and key"),
        ("cluster_id = [", "not a cluster key file"),
        (f"cluster_id = '{'a' * 32}'\nkey = 'AAAA'\ncolour = 1\n", "unknown setting"),
    ],
)
def test_malformed_key_file_is_named(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "cluster.key"
    path.write_text(text)
    os.chmod(path, 0o600)
    with pytest.raises(ClusterKeyError, match=needle):
        load_cluster_key(path)


def test_missing_key_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ClusterKeyError, match="no such file"):
        load_cluster_key(tmp_path / "nope.key")


def test_cluster_ids_are_128_random_bits_in_hex() -> None:
    ids = {new_cluster_key().cluster_id for _ in range(50)}
    assert len(ids) == 50
    for cluster_id in ids:
        assert check_cluster_id(cluster_id) == cluster_id
    with pytest.raises(BadClusterId):
        check_cluster_id("ABC")
