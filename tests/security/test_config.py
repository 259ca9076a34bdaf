"""Security settings in the node's configuration: TOML keys, flags, validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from resonetics.security.tls import TLSConfig
from resonetics.server.config import ConfigError, ServerConfig, apply_overrides, load_toml

PEERS = {"n1": "127.0.0.1:7101"}
CLIENTS = {"n1": "127.0.0.1:7001"}


def test_plain_tcp_is_the_default() -> None:
    config = ServerConfig("n1", PEERS, Path("data"), CLIENTS).validate()
    assert config.tls() is None
    assert config.rate_limit_rps == 50_000 and config.rate_limit_burst == 100_000


def test_toml_cluster_table_sets_tls_and_limits(tmp_path: Path) -> None:
    path = tmp_path / "cluster.toml"
    path.write_text(
        """
[cluster]
tls_ca = "certs/ca.pem"
tls_cert = "certs/n1.pem"
tls_key = "certs/n1.key"
tls_client_auth = "optional"
rate_limit_rps = 200
rate_limit_burst = 50
connections_per_ip_max = 8

[nodes]
n1 = { peer = "127.0.0.1:7101", client = "127.0.0.1:7001" }
""",
        encoding="utf-8",
    )
    config = load_toml(path, "n1").validate()
    assert config.tls() == TLSConfig(
        Path("certs/ca.pem"), Path("certs/n1.pem"), Path("certs/n1.key")
    )
    assert config.tls_client_auth == "optional"
    assert (config.rate_limit_rps, config.rate_limit_burst) == (200.0, 50)
    assert config.connections_per_ip_max == 8


def test_a_tls_node_needs_its_certificate() -> None:
    config = apply_overrides(
        ServerConfig("n1", PEERS, Path("data"), CLIENTS), {"tls_ca": "ca.pem"}, source="test"
    )
    with pytest.raises(ConfigError, match="--tls-cert"):
        config.validate()


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"tls_client_auth": "sometimes"}, "tls_client_auth"),
        ({"rate_limit_burst": 0}, "rate_limit"),
        ({"rate_limit_rps": -3}, "rate_limit"),
        ({"connections_per_ip_max": 0}, "connections_per_ip_max"),
    ],
)
def test_bad_security_settings_are_named(values: dict[str, object], match: str) -> None:
    config = apply_overrides(
        ServerConfig("n1", PEERS, Path("data"), CLIENTS), values, source="test"
    )
    with pytest.raises(ConfigError, match=match):
        config.validate()


def test_rate_must_be_a_number() -> None:
    with pytest.raises(ConfigError, match="rate_limit_rps must be a number"):
        apply_overrides(
            ServerConfig("n1", PEERS, Path("data"), CLIENTS), {"rate_limit_rps": "fast"}, source="t"
        )


def test_signing_key_path_from_toml_or_flags() -> None:
    config = apply_overrides(
        ServerConfig("n1", PEERS, Path("data"), CLIENTS), {"signing_key": "keys/n1.key"}, source="t"
    )
    assert config.signing_key == Path("keys/n1.key")
    assert ServerConfig("n1", PEERS, Path("data"), CLIENTS).signing_key is None
