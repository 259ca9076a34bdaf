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
    """Every node (its certificate naming ``resonetics://node/<id>``) and one client
    certified by ``ca``."""
    ca_path = write_ca(ca, directory / "ca.pem")
    nodes = {n: write_node_identity(ca, directory, n) for n in node_ids}
    client_cert, client_key = write_leaf(ca, directory, "client")
    return ClusterTLS(ca_path, nodes, TLSConfig(ca_path, client_cert, client_key), client_auth)


def write_node_identity(ca: trustme.CA, directory: Path, node_id: str) -> tuple[Path, Path]:
    """A node certificate: its host (127.0.0.1) and its node id as a SAN URI."""
    return write_client_identity(ca, directory, node_id, f"resonetics://node/{node_id}", node=True)


def write_client_identity(
    ca: trustme.CA, directory: Path, name: str, uri: str, *, node: bool = False
) -> tuple[Path, Path]:
    """A client certificate signed by ``ca`` whose subjectAltName holds the URI ``uri``
    (``node``: usable by a node's listener too).

    ``trustme`` issues DNS, IP and e-mail names only, so this one is built with
    ``cryptography`` directly, as ``security/certs.py`` does.
    """
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    names: list[x509.GeneralName] = [
        x509.UniformResourceIdentifier(uri),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
                if node
                else [ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def write_crl(ca: trustme.CA, path: Path, *revoked: Path, expired: bool = False) -> Path:
    """The revocation list of ``ca`` (PEM) revoking the certificates in ``revoked``
    (their PEM files); none: a list that revokes nothing. ``expired``: its nextUpdate
    passed a day ago."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - datetime.timedelta(days=2 if expired else 0, minutes=5))
        .next_update(now + datetime.timedelta(days=-1 if expired else 1))
    )
    for cert_path in revoked:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(cert.serial_number)
            .revocation_date(now - datetime.timedelta(minutes=1))
            .build()
        )
    crl = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    return path
