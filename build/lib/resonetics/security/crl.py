"""Certificate revocation lists for ``--tls-crl``: revoke a certificate, renew the list.

A node checks every handshake against the CA's list (``security/tls.py``); this module
is the operator's side of it (``resonetics tls revoke``), so cutting off a stolen
certificate needs no CA database: the list is read (when it exists), the certificates
are added by serial number, and it is signed again by the CA's key with a new
``nextUpdate``. An expired list makes OpenSSL refuse every certificate, so every run
renews it, and ``revoke`` with no certificate only renews.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from resonetics.security.tls import TLSConfigError

#: Days a list is valid when the operator does not say (``nextUpdate``).
CRL_DAYS_DEFAULT = 30


@dataclass(frozen=True, slots=True)
class Revoked:
    """What one run did: the serials newly revoked, the list's size, when it expires."""

    added: tuple[int, ...]
    total: int
    next_update: datetime.datetime


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TLSConfigError(f"{what} {path}: cannot read ({exc.strerror or exc})") from exc


def revoke(
    ca_cert_path: Path,
    ca_key_path: Path,
    crl_path: Path,
    certificates: list[Path],
    days: int = CRL_DAYS_DEFAULT,
) -> Revoked:
    """Add ``certificates`` to the CA's list at ``crl_path`` (made when missing) and sign
    it again, valid ``days`` from now. Every input is checked before anything is written:
    a certificate the CA did not issue, a list of another CA, a key that is not the CA's
    each raise ``TLSConfigError`` naming the file, and the list is left as it was."""
    if days < 1:
        raise TLSConfigError(f"--days: a list must be valid at least a day, not {days}")
    try:
        ca_cert = x509.load_pem_x509_certificate(_read(ca_cert_path, "--ca"))
    except ValueError as exc:
        raise TLSConfigError(f"--ca {ca_cert_path}: not a PEM certificate ({exc})") from exc
    try:
        ca_key = serialization.load_pem_private_key(_read(ca_key_path, "--ca-key"), None)
    except (ValueError, TypeError) as exc:
        raise TLSConfigError(
            f"--ca-key {ca_key_path}: not an unencrypted PEM private key ({exc})"
        ) from exc
    if not isinstance(
        ca_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise TLSConfigError(
            f"--ca-key {ca_key_path}: a {type(ca_key).__name__} cannot sign a list"
        )
    if ca_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != ca_cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise TLSConfigError(f"--ca-key {ca_key_path}: not the key of the CA in {ca_cert_path}")
    now = datetime.datetime.now(datetime.UTC)
    held: dict[int, datetime.datetime] = {}
    if crl_path.exists():
        try:
            old = x509.load_pem_x509_crl(_read(crl_path, "--out"))
        except ValueError as exc:
            raise TLSConfigError(
                f"--out {crl_path}: not a PEM certificate revocation list ({exc})"
            ) from exc
        if old.issuer != ca_cert.subject:
            raise TLSConfigError(
                f"--out {crl_path}: a list of another CA ({old.issuer.rfc4514_string()})"
            )
        held = {r.serial_number: r.revocation_date_utc for r in old}
    added: list[int] = []
    for path in certificates:
        try:
            cert = x509.load_pem_x509_certificate(_read(path, "CERT"))
        except ValueError as exc:
            raise TLSConfigError(f"{path}: not a PEM certificate ({exc})") from exc
        if cert.issuer != ca_cert.subject:
            raise TLSConfigError(
                f"{path}: issued by {cert.issuer.rfc4514_string()}, not by this CA "
                f"({ca_cert.subject.rfc4514_string()})"
            )
        if cert.serial_number not in held:
            held[cert.serial_number] = now
            added.append(cert.serial_number)
    next_update = now + datetime.timedelta(days=days)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now)
        .next_update(next_update)
    )
    for serial, when in sorted(held.items()):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
        )
    algorithm = None if isinstance(ca_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    crl = builder.sign(ca_key, algorithm)
    tmp = crl_path.with_name(crl_path.name + ".tmp")
    tmp.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    tmp.replace(crl_path)
    return Revoked(tuple(added), len(held), next_update)


__all__ = ["CRL_DAYS_DEFAULT", "Revoked", "revoke"]
