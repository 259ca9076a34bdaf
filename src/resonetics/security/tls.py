"""TLS contexts for the node's listener, its peer links and clients (stdlib ``ssl``).

Theory of operation
-------------------
A TLS cluster has one certificate authority (the file given as ``--tls-ca``).
Every node holds a certificate signed by it, used both ways:

* **as a server** (its listener) it presents its certificate and, for mutual
  authentication, asks every connecting party for a certificate signed by the
  same CA. With ``client_auth="required"`` (the default) a connection without
  one fails the handshake; with ``"optional"`` a connection without a
  certificate is let in but may only send client requests: Raft messages are
  accepted only from connections that presented a CA-signed certificate
  (``NodeServer`` checks ``peer_authenticated``).
* **as a client** (its outbound peer links) it presents the same certificate
  and verifies the peer's against the CA **and** against the host part of the
  peer's configured address (``check_hostname``): a node listed as
  ``n2=10.0.0.2:7001`` must hold a certificate whose subjectAltName contains
  the IP address ``10.0.0.2`` (or, for a DNS name, that name). This is the
  SAN policy: certificates name the host a node is reached at, not its node id.

The listener accepts TLS 1.2 and 1.3 only (OpenSSL negotiates 1.3 whenever both
sides have it). Certificates, the key, the CA and the revocation list are read
at start and again on ``SIGHUP`` (``ServerTLS.reload``): a listener's context
carries an SNI callback that hands every new handshake the newest context, so
a rotated certificate or a new revocation list applies to the next connection
without a restart, and connections already open under a certificate the new
list revokes are closed (``Revocations``).

Revocation: with a CRL (``--tls-crl``, PEM, issued by the cluster CA) every
context checks the other end's leaf certificate against it
(``VERIFY_CRL_CHECK_LEAF``): a revoked node or client certificate fails the
handshake. OpenSSL then needs a CRL for the leaf's issuer, so the file must be
the CA's (an empty one revokes nothing).

Identities (DESIGN §7): a node's certificate names its node id as a SAN URI
``resonetics://node/<id>`` (``certificate_node_id``), a client's its name as
``resonetics://client/<name>``. The peer listener always requires a
certificate and accepts a link only from the node its certificate names
(``security/peer_auth.py``); the client listener follows
``--tls-client-auth``. Peers and clients use separate listeners, as etcd's
peer and client URLs do, so a client certificate never opens a peer link.
"""

from __future__ import annotations

import datetime
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from resonetics.errors import ResoneticsError

if TYPE_CHECKING:
    from cryptography.x509 import CertificateRevocationList

ClientAuth = Literal["required", "optional"]
CLIENT_AUTH_CHOICES: tuple[ClientAuth, ...] = ("required", "optional")

#: Environment variables the client-side commands read (the flags override them).
ENV_CA = "RESONETICS_TLS_CA"
ENV_CERT = "RESONETICS_TLS_CERT"
ENV_KEY = "RESONETICS_TLS_KEY"
ENV_CRL = "RESONETICS_TLS_CRL"


class TLSConfigError(ResoneticsError):
    """A TLS setting is unusable: a missing file, a key that does not match, a bad choice."""


@dataclass(frozen=True, slots=True)
class TLSConfig:
    """Where a party's TLS material lives: the CA to trust, and its own certificate and key.

    ``cert``/``key`` are optional for a client (needed when the cluster requires client
    certificates); a node needs all three. ``key`` may be omitted when ``cert`` holds
    both the certificate chain and the private key.
    """

    ca: Path
    cert: Path | None = None
    key: Path | None = None
    #: The CA's certificate revocation list (PEM); None: no revocation check.
    crl: Path | None = None

    @classmethod
    def from_paths(
        cls,
        ca: str | Path | None,
        cert: str | Path | None = None,
        key: str | Path | None = None,
        crl: str | Path | None = None,
    ) -> TLSConfig | None:
        """A config from optional paths (flags, env); None when no TLS option is given."""
        if ca is None and cert is None and key is None and crl is None:
            return None
        if ca is None:
            raise TLSConfigError(
                "--tls-ca: the CA certificate is required with --tls-cert/--tls-key/--tls-crl"
            )
        if key is not None and cert is None:
            raise TLSConfigError("--tls-key: given without --tls-cert")
        return cls(
            Path(ca),
            Path(cert) if cert else None,
            Path(key) if key else None,
            Path(crl) if crl else None,
        )

    @classmethod
    def from_env(cls) -> TLSConfig | None:
        return cls.from_paths(
            os.environ.get(ENV_CA) or None,
            os.environ.get(ENV_CERT) or None,
            os.environ.get(ENV_KEY) or None,
            os.environ.get(ENV_CRL) or None,
        )


def _base_context(purpose: ssl.Purpose, tls: TLSConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(purpose)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_verify_locations(cafile=str(tls.ca))
    except (OSError, ssl.SSLError) as exc:
        raise TLSConfigError(f"--tls-ca {tls.ca}: cannot load ({exc})") from exc
    if tls.crl is not None:
        Revocations.load(tls.crl, tls.ca)  # not a CRL, another CA's, expired: refused
        try:
            context.load_verify_locations(cafile=str(tls.crl))
        except (OSError, ssl.SSLError) as exc:
            raise TLSConfigError(f"--tls-crl {tls.crl}: cannot load ({exc})") from exc
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    if tls.cert is not None:
        try:
            context.load_cert_chain(str(tls.cert), str(tls.key) if tls.key else None)
        except (OSError, ssl.SSLError) as exc:
            raise TLSConfigError(
                f"--tls-cert {tls.cert} / --tls-key {tls.key}: cannot load ({exc})"
            ) from exc
    return context


@dataclass(frozen=True, slots=True)
class Revocations:
    """The serial numbers a CRL revokes, to judge connections already open (a handshake
    is judged by OpenSSL itself)."""

    issuer: bytes
    serials: frozenset[int]
    #: The list's nextUpdate: past it OpenSSL refuses every certificate (None: not given).
    next_update: datetime.datetime | None = None

    @classmethod
    def load(cls, path: Path, ca: Path | None = None) -> Revocations:
        """The list at ``path``; with ``ca``, it must be that CA's (issuer and signature)
        and current: OpenSSL would otherwise refuse every certificate at every handshake,
        a cluster that cannot form for a file mixed up or left to expire."""
        from cryptography import x509  # only a node given a CRL pays for the import

        try:
            crl = x509.load_pem_x509_crl(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise TLSConfigError(
                f"--tls-crl {path}: not a PEM certificate revocation list ({exc})"
            ) from exc
        if ca is not None:
            _check_issuer(crl, path, ca)
            expiry = crl.next_update_utc
            if expiry is not None and expiry <= datetime.datetime.now(datetime.UTC):
                raise TLSConfigError(
                    f"--tls-crl {path}: expired at {expiry:%Y-%m-%dT%H:%M:%SZ} (its nextUpdate): "
                    "every certificate would be refused; renew it (resonetics tls revoke "
                    "--ca ... --ca-key ... --out FILE, with no certificate)"
                )
        serials = frozenset(r.serial_number for r in crl)
        return cls(crl.issuer.public_bytes(), serials, crl.next_update_utc)

    def revokes(self, ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> bool:
        """Whether the certificate the other end of ``ssl_object`` presented is revoked."""
        if ssl_object is None:
            return False
        der = ssl_object.getpeercert(binary_form=True)
        if not der:
            return False
        from cryptography import x509

        cert = x509.load_der_x509_certificate(der)
        return cert.issuer.public_bytes() == self.issuer and cert.serial_number in self.serials


def _check_issuer(crl: CertificateRevocationList, path: Path, ca: Path) -> None:
    """``crl`` must be issued and signed by a certificate in the CA file ``ca``."""
    from cryptography import x509

    try:
        cas = x509.load_pem_x509_certificates(ca.read_bytes())
    except (OSError, ValueError) as exc:
        raise TLSConfigError(f"--tls-ca {ca}: cannot load ({exc})") from exc
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

    signers = (
        dsa.DSAPublicKey,
        rsa.RSAPublicKey,
        ec.EllipticCurvePublicKey,
        ed25519.Ed25519PublicKey,
        ed448.Ed448PublicKey,
    )
    for cert in cas:
        key = cert.public_key()
        if cert.subject != crl.issuer or not isinstance(key, signers):
            continue
        if crl.is_signature_valid(key):
            return
    raise TLSConfigError(
        f"--tls-crl {path}: issued by {crl.issuer.rfc4514_string()}, not signed by the CA in "
        f"--tls-ca {ca}: OpenSSL would refuse every certificate"
    )


class ServerTLS:
    """A listener's TLS context that ``reload`` replaces for every new handshake.

    ``listener`` is the context the server is created with; its SNI callback (called
    for every ClientHello, with or without a server name) hands the handshake the newest
    context, whose certificate, CA and CRL then apply to it.
    """

    def __init__(self, make: Callable[[], ssl.SSLContext]) -> None:
        self._make = make
        self.current = make()
        self.listener = make()
        self.listener.sni_callback = self._pick

    def _pick(self, ssl_object: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> None:
        ssl_object.context = self.current

    def reload(self) -> None:
        """Build the context again from the files; ``TLSConfigError`` keeps the old one."""
        self.current = self._make()


@dataclass(frozen=True, slots=True)
class TLSValidity:
    """When this node's TLS material stops working: its certificate's notAfter, and the
    revocation list's nextUpdate (None without a list). ``status`` and ``/metrics`` show
    them, so an operator is warned before either refuses every handshake."""

    certificate_expires: datetime.datetime
    crl_next_update: datetime.datetime | None

    @classmethod
    def of(cls, tls: TLSConfig, revocations: Revocations | None) -> TLSValidity:
        """From the node's certificate file and its list as ``Revocations.load`` read it."""
        from cryptography import x509

        assert tls.cert is not None
        try:
            cert = x509.load_pem_x509_certificate(tls.cert.read_bytes())
        except (OSError, ValueError) as exc:
            raise TLSConfigError(f"--tls-cert {tls.cert}: cannot load ({exc})") from exc
        next_update = revocations.next_update if revocations is not None else None
        return cls(cert.not_valid_after_utc, next_update)


class NodeTLS:
    """A TLS node's contexts: its two listeners' (``clients``, ``peers``: replaced per
    handshake) and the one its peer links dial with. ``reload`` builds all of them again
    from the files named by ``load()``, or none of them."""

    def __init__(self, load: Callable[[], TLSConfig], client_auth: ClientAuth) -> None:
        self._load = load
        self.clients = ServerTLS(lambda: server_context(self._load(), client_auth))
        # Peers always present a certificate on a TLS cluster, whatever clients do.
        self.peers = ServerTLS(lambda: server_context(self._load(), "required"))
        tls = load()
        self.dialling = client_context(tls)
        self.validity = TLSValidity.of(tls, _revocations(tls))

    def reload(self) -> Revocations | None:
        """Every context from the files as they are now, and the revocation list (None
        without one). ``TLSConfigError`` naming the file leaves everything as it was."""
        tls = self._load()
        before = self.clients.current, self.peers.current
        try:
            self.clients.reload()
            self.peers.reload()
            dialling = client_context(tls)
            revocations = _revocations(tls)
            validity = TLSValidity.of(tls, revocations)
        except TLSConfigError:
            self.clients.current, self.peers.current = before
            raise
        self.dialling, self.validity = dialling, validity
        return revocations


def _revocations(tls: TLSConfig) -> Revocations | None:
    return Revocations.load(tls.crl, tls.ca) if tls.crl is not None else None


def server_context(tls: TLSConfig, client_auth: ClientAuth = "required") -> ssl.SSLContext:
    """The listener's context: presents the node certificate, asks for a CA-signed one back."""
    if client_auth not in CLIENT_AUTH_CHOICES:
        raise TLSConfigError(
            f"--tls-client-auth: must be required or optional, not {client_auth!r}"
        )
    if tls.cert is None:
        raise TLSConfigError("--tls-cert: a node needs its own certificate to serve TLS")
    context = _base_context(ssl.Purpose.CLIENT_AUTH, tls)
    context.verify_mode = ssl.CERT_REQUIRED if client_auth == "required" else ssl.CERT_OPTIONAL
    return context


def client_context(tls: TLSConfig) -> ssl.SSLContext:
    """A connecting party's context (peer link or client): verifies the server and its host."""
    context = _base_context(ssl.Purpose.SERVER_AUTH, tls)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def has_verified_certificate(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> bool:
    """Whether the other end presented a certificate our CA verified.

    With ``CERT_OPTIONAL`` the handshake succeeds without one; ``getpeercert()``
    then returns an empty dict. A certificate that failed verification never gets
    here (the handshake fails), so non-empty means verified.
    """
    if ssl_object is None:
        return False
    return bool(ssl_object.getpeercert())


NODE_URI_PREFIX = "resonetics://node/"
CLIENT_URI_PREFIX = "resonetics://client/"


def certificate_uris(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> list[str]:
    """The URI entries of the verified peer certificate's subjectAltName."""
    if ssl_object is None:
        return []
    cert = ssl_object.getpeercert() or {}
    names = cert.get("subjectAltName", ())
    uris: list[str] = []
    for name in names:
        if isinstance(name, tuple) and len(name) == 2 and name[0] == "URI":
            uris.append(str(name[1]))
    return uris


def certificate_node_id(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> str | None:
    """The node id a verified certificate names (``resonetics://node/<id>``), if exactly one."""
    ids = [
        u[len(NODE_URI_PREFIX) :]
        for u in certificate_uris(ssl_object)
        if u.startswith(NODE_URI_PREFIX)
    ]
    return ids[0] if len(ids) == 1 and ids[0] else None


#: OpenSSL's X509_V_ERR_CERT_REVOKED.
_CERT_REVOKED = 23


def revoked_server(exc: BaseException) -> bool:
    """Whether ``exc`` is a node's certificate found on the client's revocation list: one
    node is not to be trusted, the others may be (``refusal_reason`` says None)."""
    return isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_code == _CERT_REVOKED


def refusal_reason(exc: BaseException) -> str | None:
    """If ``exc`` is a TLS refusal that retrying cannot fix, a one-line reason; else None.

    A certificate the client cannot verify, or an alert from the server saying it
    refused ours (no certificate, unknown CA), is a configuration problem: every
    node of the cluster will say the same. An EOF or reset is not (a node may be
    restarting), so those stay retryable.
    """
    if isinstance(exc, ssl.SSLCertVerificationError):
        if revoked_server(exc):
            return None  # that node's certificate, not the cluster's: try the others
        return f"server certificate not accepted: {exc.verify_message}"
    reason = str(getattr(exc, "reason", None) or "")
    if isinstance(exc, ssl.SSLError) and "ALERT" in reason.upper():
        return f"the server refused this client's TLS credentials ({reason})"
    return None


__all__ = [
    "CLIENT_AUTH_CHOICES",
    "ENV_CA",
    "ENV_CERT",
    "ENV_CRL",
    "ENV_KEY",
    "CLIENT_URI_PREFIX",
    "NODE_URI_PREFIX",
    "ClientAuth",
    "NodeTLS",
    "Revocations",
    "ServerTLS",
    "TLSConfig",
    "TLSConfigError",
    "TLSValidity",
    "certificate_node_id",
    "certificate_uris",
    "client_context",
    "has_verified_certificate",
    "refusal_reason",
    "revoked_server",
    "server_context",
]
