"""Who may do what over HTTP: the client port's identities, policy and TLS, tried to break."""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from resonetics.localcluster import LocalCluster
from resonetics.security.authz import IdentityEntry, Policy, Role, hash_token
from resonetics.security.policy_files import STARTER_ROLES, write_policy, write_token_file
from tests.integration.http_helpers import call
from tests.security.trust import cluster_tls, write_client_identity

ADMIN_TOKEN = "admin-" + "a" * 40
READER_TOKEN = "reader-" + "r" * 40


@dataclass
class Secured:
    cluster: LocalCluster
    address: str
    ca_path: Path
    anonymous_cert: tuple[Path, Path]
    writer_cert: tuple[Path, Path]

    def context(self, cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_path))
        if cert is not None:
            ctx.load_cert_chain(str(cert[0]), str(cert[1]))
        return ctx


def _policy(path: Path) -> None:
    """Anonymous may only monitor (the cluster's status probe); a token admin, a token
    reader (no monitor), a certificate writer."""
    roles = {**STARTER_ROLES, "reader": Role("reader", read=("",))}
    identities = {
        "admin": IdentityEntry("admin", ("admin",), hash_token(ADMIN_TOKEN)),
        "reader": IdentityEntry("reader", ("reader",), hash_token(READER_TOKEN)),
        "writer": IdentityEntry("writer", ("readwrite",)),
    }
    write_policy(path / "policy.toml", Policy(roles, identities, ("monitor",)))
    write_token_file(path / "admin.token", ADMIN_TOKEN)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    root = tmp_path_factory.mktemp("http-auth")
    ca = trustme.CA()
    cluster = LocalCluster(root / "data", size=1, tick_ms=20, http=True)
    cluster.tls = cluster_tls(ca, root / "certs", list(cluster.nodes), client_auth="optional")
    writer = write_client_identity(ca, root / "certs", "writer", "resonetics://client/writer")
    assert cluster.tls.client is not None and cluster.tls.client.cert is not None
    anonymous = (cluster.tls.client.cert, cluster.tls.client.key or cluster.tls.client.cert)
    (root / "data").mkdir(parents=True)
    _policy(root / "data")
    cluster.start()
    try:
        cluster.wait_for_leader(timeout_s=60)
        address = cluster.nodes["n1"].http_address
        assert address is not None
        yield Secured(cluster, address, cluster.tls.ca, anonymous, writer)
    finally:
        cluster.stop()
        for node_id in cluster.nodes:
            log = (cluster.data_dir / f"{node_id}.log").read_text(errors="replace")
            assert "Traceback" not in log, log[-3000:]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_http_without_credentials_is_forbidden_as_on_the_client_port(secured: Secured) -> None:
    ctx = secured.context()
    reply = call(secured.address, "GET", "/v1/kv/k", context=ctx)
    assert (reply.status, reply.json["code"]) == (403, "FORBIDDEN"), reply.text
    assert call(secured.address, "PUT", "/v1/kv/k", 1, context=ctx).status == 403
    # /metrics is judged as the status op: anonymous holds monitor here.
    assert call(secured.address, "GET", "/metrics", context=ctx).status == 200
    # Probes carry no credentials and tell no data.
    assert call(secured.address, "GET", "/health", context=ctx).status == 200
    assert call(secured.address, "GET", "/ready", context=ctx).status in (200, 503)


def test_http_wrong_token_is_unauthenticated_never_anonymous(secured: Secured) -> None:
    ctx = secured.context()
    for headers in (
        _bearer("not-a-token"),
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
        {"Authorization": "Bearer"},
        _bearer("x" * 1000),
    ):
        reply = call(secured.address, "GET", "/v1/kv/k", headers=headers, context=ctx)
        assert (reply.status, reply.json["code"]) == (401, "UNAUTHENTICATED"), (headers, reply.text)
    # A wrong token with a valid writer certificate is still refused, not the certificate's.
    reply = call(
        secured.address,
        "PUT",
        "/v1/kv/k",
        1,
        headers=_bearer("not-a-token"),
        context=secured.context(secured.writer_cert),
    )
    assert reply.status == 401


def test_http_token_without_write_role_cannot_write(secured: Secured) -> None:
    ctx = secured.context()
    reader = _bearer(READER_TOKEN)
    read = call(secured.address, "GET", "/v1/kv/nothing", headers=reader, context=ctx)
    assert read.status == 404, read.text  # allowed to look; there is nothing
    write = call(secured.address, "PUT", "/v1/kv/k", 1, headers=reader, context=ctx)
    assert (write.status, write.json["code"]) == (403, "FORBIDDEN")
    assert "reader" in write.json["message"], "the refusal names the identity"
    assert call(secured.address, "DELETE", "/v1/kv/k", headers=reader, context=ctx).status == 403
    assert call(secured.address, "GET", "/metrics", headers=reader, context=ctx).status == 403


def test_http_admin_token_writes_and_scrapes(secured: Secured) -> None:
    ctx = secured.context()
    admin = _bearer(ADMIN_TOKEN)
    assert call(secured.address, "PUT", "/v1/kv/a", 1, headers=admin, context=ctx).status == 200
    assert call(secured.address, "GET", "/v1/kv/a", headers=admin, context=ctx).json["value"] == 1
    metrics = call(secured.address, "GET", "/metrics", headers=admin, context=ctx)
    assert metrics.status == 200
    refused = [
        line
        for line in metrics.text.splitlines()
        if line.startswith('resonetics_client_requests_refused_total{reason="unauthorized"}')
    ]
    assert refused and float(refused[0].split()[-1]) > 0, "refusals are counted by reason"


def test_http_client_certificate_names_the_identity(secured: Secured) -> None:
    writer = call(
        secured.address, "PUT", "/v1/kv/w", 2, context=secured.context(secured.writer_cert)
    )
    assert writer.status == 200, writer.text
    anonymous = call(
        secured.address, "PUT", "/v1/kv/w", 3, context=secured.context(secured.anonymous_cert)
    )
    assert anonymous.status == 403, "a certificate without a client URI is anonymous"


def test_http_plain_text_to_the_tls_port_is_refused(secured: Secured) -> None:
    with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
        call(secured.address, "GET", "/health", timeout=5)
    untrusted = ssl.create_default_context()  # the system CAs: not the cluster's
    with pytest.raises(ssl.SSLError):
        call(secured.address, "GET", "/health", context=untrusted, timeout=5)
    assert call(secured.address, "GET", "/health", context=secured.context()).status == 200


def test_metrics_and_status_say_when_the_certificate_expires(secured: Secured) -> None:
    """An operator alerts on `resonetics_tls_certificate_expiry_timestamp_seconds - time()`
    before a certificate refuses every handshake; `status` says the same in ISO time."""
    import datetime

    from cryptography import x509

    assert secured.cluster.tls is not None
    cert_path = secured.cluster.tls.nodes["n1"][0]
    not_after = x509.load_pem_x509_certificate(cert_path.read_bytes()).not_valid_after_utc
    text = call(secured.address, "GET", "/metrics", context=secured.context()).text
    line = next(
        row
        for row in text.splitlines()
        if row.startswith("resonetics_tls_certificate_expiry_timestamp_seconds ")
    )
    assert float(line.split()[1]) == not_after.timestamp()
    assert "resonetics_tls_crl_next_update_timestamp_seconds" not in text  # no list given
    status = secured.cluster.status("n1")
    assert status is not None and status["tls"] == {
        "certificate_expires": not_after.isoformat(),
        "crl_next_update": None,
    }
    assert not_after > datetime.datetime.now(datetime.UTC)
