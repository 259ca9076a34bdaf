"""Test certificates from ``trustme``: a cluster CA, node certificates, client certificates."""

from __future__ import annotations

from pathlib import Path

import trustme

from resonetics.security.certs import ClusterTLS
from resonetics.security.tls import ClientAuth, TLSConfig


def write_leaf(ca: trustme.CA, directory: Path, name: str, *hosts: str) -> tuple[Path, Path]:
    """A certificate for ``hosts`` signed by ``ca``, as (cert, key) files in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    leaf = ca.issue_cert(*(hosts or ("127.0.0.1",)), common_name=name)
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    return cert, key


def write_ca(ca: trustme.CA, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ca.cert_pem.write_to_path(str(path))
    return path


def cluster_tls(
    ca: trustme.CA, directory: Path, node_ids: list[str], client_auth: ClientAuth = "required"
) -> ClusterTLS:
    """Every node and one client certified by ``ca``."""
    ca_path = write_ca(ca, directory / "ca.pem")
    nodes = {n: write_leaf(ca, directory, n) for n in node_ids}
    client_cert, client_key = write_leaf(ca, directory, "client")
    return ClusterTLS(ca_path, nodes, TLSConfig(ca_path, client_cert, client_key), client_auth)
