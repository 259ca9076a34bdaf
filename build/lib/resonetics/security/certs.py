"""Throwaway certificates for a local TLS cluster (``resonetics cluster up --tls DIR``).

Theory of operation
-------------------
:func:`write_cluster_certs` makes a fresh CA and, signed by it, one
certificate per node (subjectAltName: the hosts the node is reached at, so
peer links pass the hostname check of ``security/tls.py``; commonName: the
node id, for logs; SAN URI ``resonetics://node/<id>``: the identity peer links
check) and one client certificate (``resonetics://client/admin``). Keys are ECDSA P-256, written
with 0600 permissions; certificates are valid for 30 days. This is for
demos and tests on loopback: a real deployment issues certificates from its
own PKI and points ``--tls-*`` at them.

:class:`ClusterTLS` is the result: which files each node and the client use.
``LocalCluster`` takes one to start a TLS cluster.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from resonetics.security.tls import CLIENT_URI_PREFIX, NODE_URI_PREFIX, ClientAuth, TLSConfig

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

#: How long generated certificates stay valid, days.
CERT_VALIDITY_DAYS = 30


@dataclass(frozen=True, slots=True)
class ClusterTLS:
    """The TLS files of a cluster: the CA, each node's cert and key, and a client's."""

    ca: Path
    #: node id -> (certificate, key).
    nodes: dict[str, tuple[Path, Path]] = field(default_factory=dict)
    #: What a client (the status probe of ``LocalCluster``, the CLI) presents.
    client: TLSConfig | None = None
    client_auth: ClientAuth = "required"

    def serve_args(self, node_id: str) -> list[str]:
        """The ``resonetics serve`` flags for one node."""
        cert, key = self.nodes[node_id]
        return [
            "--tls-ca",
            str(self.ca),
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(key),
            "--tls-client-auth",
            self.client_auth,
        ]


def write_cluster_certs(
    directory: Path, node_ids: list[str], hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
) -> ClusterTLS:
    """A new CA in ``directory/ca.pem``, ``<id>.pem``/``<id>.key`` per node, ``client.*``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = _new_key()
    ca_cert = _certificate("Resonetics local CA", ca_key, None, ca_key, hosts=(), is_ca=True)
    ca_path = directory / "ca.pem"
    _write_cert(ca_path, ca_cert)
    nodes: dict[str, tuple[Path, Path]] = {}
    for node_id in [*node_ids, "client"]:
        key = _new_key()
        uri = f"{CLIENT_URI_PREFIX}admin" if node_id == "client" else f"{NODE_URI_PREFIX}{node_id}"
        cert = _certificate(node_id, key, ca_cert, ca_key, hosts=hosts, is_ca=False, uris=(uri,))
        cert_path, key_path = directory / f"{node_id}.pem", directory / f"{node_id}.key"
        _write_cert(cert_path, cert)
        _write_key(key_path, key)
        nodes[node_id] = (cert_path, key_path)
    client_cert, client_key = nodes.pop("client")
    return ClusterTLS(ca_path, nodes, TLSConfig(ca_path, client_cert, client_key))


def _new_key() -> ec.EllipticCurvePrivateKey:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _certificate(
    common_name: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    hosts: tuple[str, ...],
    is_ca: bool,
    uris: tuple[str, ...] = (),
) -> x509.Certificate:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer is not None else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if is_ca:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(usage, critical=True)
    else:
        names: list[x509.GeneralName] = [_general_name(h) for h in hosts]
        names += [x509.UniformResourceIdentifier(u) for u in uris]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        eku = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _general_name(host: str) -> x509.GeneralName:
    from cryptography import x509

    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    from cryptography.hazmat.primitives import serialization

    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(path, 0o600)  # O_CREAT's mode does not apply to a file that already existed


__all__ = ["CERT_VALIDITY_DAYS", "ClusterTLS", "write_cluster_certs"]
