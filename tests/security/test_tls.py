"""TLS contexts: versions, mutual authentication, the SAN policy, refusals named plainly."""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
from pathlib import Path

import pytest
import trustme

from resonetics.security.certs import write_cluster_certs
from resonetics.security.tls import (
    NodeTLS,
    Revocations,
    ServerTLS,
    TLSConfig,
    TLSConfigError,
    TLSValidity,
    client_context,
    has_verified_certificate,
    refusal_reason,
    server_context,
)
from tests.security.trust import write_ca, write_crl, write_leaf


async def _handshake(
    server: ssl.SSLContext, client: ssl.SSLContext, host: str = "127.0.0.1"
) -> tuple[bool | None, str]:
    """Connect ``client`` to a listener using ``server``: (peer cert verified, echo answer).

    ``None`` for the first: the server never got a connection (the handshake failed).
    A refused client sees the connection close: asyncio servers abort a failed
    handshake without sending the TLS alert.
    """
    verified: list[bool] = []

    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        verified.append(has_verified_certificate(writer.get_extra_info("ssl_object")))
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(on_conn, "127.0.0.1", 0, ssl=server)
    port = listener.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client, server_hostname=host
        )
        writer.write(b"ping\n")
        try:
            answer = await reader.readline()
        except ConnectionResetError:
            answer = b""
        writer.close()
        return (verified[0] if verified else None), answer.decode()
    finally:
        listener.close()
        await listener.wait_closed()


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


def _node(ca: trustme.CA, tmp_path: Path, name: str, *hosts: str) -> TLSConfig:
    cert, key = write_leaf(ca, tmp_path, name, *hosts)
    return TLSConfig(write_ca(ca, tmp_path / "ca.pem"), cert, key)


def test_mutual_tls_handshake_verifies_both_ends(ca: trustme.CA, tmp_path: Path) -> None:
    node, client = _node(ca, tmp_path, "n1"), _node(ca, tmp_path, "client")
    verified, answer = asyncio.run(_handshake(server_context(node), client_context(client)))
    assert verified and answer == "ping\n"


def test_listener_refuses_tls_below_1_2(ca: trustme.CA, tmp_path: Path) -> None:
    context = server_context(_node(ca, tmp_path, "n1"))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_client_without_certificate_is_refused_when_required(
    ca: trustme.CA, tmp_path: Path
) -> None:
    node = _node(ca, tmp_path, "n1")
    anonymous = TLSConfig(node.ca)
    try:
        verified, answer = asyncio.run(_handshake(server_context(node), client_context(anonymous)))
    except ConnectionResetError:  # TLS 1.2 ends inside the handshake instead
        verified, answer = None, ""
    assert verified is None and answer == ""


def test_client_without_certificate_is_let_in_but_unverified_when_optional(
    ca: trustme.CA, tmp_path: Path
) -> None:
    node = _node(ca, tmp_path, "n1")
    verified, answer = asyncio.run(
        _handshake(server_context(node, "optional"), client_context(TLSConfig(node.ca)))
    )
    assert not verified and answer == "ping\n"


def test_certificate_from_another_ca_is_refused(ca: trustme.CA, tmp_path: Path) -> None:
    node = _node(ca, tmp_path, "n1")
    other = _node(trustme.CA(), tmp_path / "other", "intruder")
    intruder = TLSConfig(node.ca, other.cert, other.key)  # trusts our CA, holds a foreign cert
    try:
        verified, answer = asyncio.run(_handshake(server_context(node), client_context(intruder)))
    except ConnectionResetError:
        verified, answer = None, ""
    assert verified is None and answer == ""


def test_a_server_from_another_ca_is_refused_by_the_client(ca: trustme.CA, tmp_path: Path) -> None:
    impostor = _node(trustme.CA(), tmp_path / "other", "n1")
    client = _node(ca, tmp_path, "client")
    with pytest.raises(ssl.SSLCertVerificationError) as caught:
        asyncio.run(_handshake(server_context(impostor, "optional"), client_context(client)))
    assert refusal_reason(caught.value) is not None


def test_server_certificate_must_name_the_host_dialled(ca: trustme.CA, tmp_path: Path) -> None:
    node = _node(ca, tmp_path, "n1", "10.9.9.9")  # certified for another address
    client = _node(ca, tmp_path, "client")
    with pytest.raises(ssl.SSLCertVerificationError) as caught:
        asyncio.run(_handshake(server_context(node), client_context(client)))
    reason = refusal_reason(caught.value)
    assert reason is not None and "certificate" in reason


def test_reset_and_eof_are_not_refusals() -> None:
    assert refusal_reason(ConnectionResetError()) is None
    assert refusal_reason(ssl.SSLEOFError()) is None


def test_from_paths_none_means_plain_tcp_and_partial_settings_are_named(tmp_path: Path) -> None:
    assert TLSConfig.from_paths(None, None, None) is None
    with pytest.raises(TLSConfigError, match="--tls-ca"):
        TLSConfig.from_paths(None, tmp_path / "c.pem", tmp_path / "c.key")
    with pytest.raises(TLSConfigError, match="--tls-key"):
        TLSConfig.from_paths(tmp_path / "ca.pem", None, tmp_path / "c.key")


def test_unreadable_files_raise_a_config_error_naming_the_file(tmp_path: Path) -> None:
    missing = TLSConfig(tmp_path / "nope.pem", tmp_path / "c.pem", tmp_path / "c.key")
    with pytest.raises(TLSConfigError, match=r"nope\.pem"):
        server_context(missing)
    with pytest.raises(TLSConfigError, match="required or optional"):
        server_context(missing, "sometimes")  # type: ignore[arg-type]


def test_env_vars_configure_the_client(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RESONETICS_TLS_CA", str(tmp_path / "ca.pem"))
    monkeypatch.delenv("RESONETICS_TLS_CERT", raising=False)
    monkeypatch.delenv("RESONETICS_TLS_KEY", raising=False)
    assert TLSConfig.from_env() == TLSConfig(tmp_path / "ca.pem")


def test_generated_cluster_certificates_work_for_mutual_tls(tmp_path: Path) -> None:
    files = write_cluster_certs(tmp_path / "certs", ["n1", "n2"])
    cert, key = files.nodes["n1"]
    assert key.stat().st_mode & 0o777 == 0o600
    assert files.client is not None
    node = TLSConfig(files.ca, cert, key)
    verified, _ = asyncio.run(_handshake(server_context(node), client_context(files.client)))
    assert verified
    assert "--tls-cert" in files.serve_args("n2") and str(files.nodes["n2"][0]) in files.serve_args(
        "n2"
    )


# --- revocation and reload ------------------------------------------------------------------
def test_a_revoked_client_certificate_fails_the_handshake_and_others_pass(
    ca: trustme.CA, tmp_path: Path
) -> None:
    node, good, bad = (_node(ca, tmp_path, n) for n in ("n1", "good", "bad"))
    assert bad.cert is not None
    crl = write_crl(ca, tmp_path / "ca.crl", bad.cert)
    guarded = dataclasses.replace(node, crl=crl)
    verified, answer = asyncio.run(_handshake(server_context(guarded), client_context(good)))
    assert verified and answer == "ping\n"
    verified, answer = asyncio.run(_handshake(server_context(guarded), client_context(bad)))
    assert (verified, answer) == (None, "")  # the server never got the connection
    # A client given the list refuses a revoked server (a peer link dialling a revoked node).
    assert node.cert is not None
    revoked_node = write_crl(ca, tmp_path / "n1.crl", node.cert)
    dialler = client_context(dataclasses.replace(good, crl=revoked_node))
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate revoked"):
        asyncio.run(_handshake(server_context(node), dialler))


def test_a_file_that_is_no_crl_is_refused_naming_it(ca: trustme.CA, tmp_path: Path) -> None:
    node = _node(ca, tmp_path, "n1")
    junk = tmp_path / "junk.crl"
    junk.write_text("-----BEGIN X509 CRL-----\nnot base64\n-----END X509 CRL-----\n")
    for path in (junk, tmp_path / "missing.crl"):
        with pytest.raises(TLSConfigError, match=f"--tls-crl {path}"):
            server_context(dataclasses.replace(node, crl=path))
    assert TLSConfig.from_paths(tmp_path / "ca.pem", crl=junk) == TLSConfig(
        tmp_path / "ca.pem", crl=junk
    )
    with pytest.raises(TLSConfigError, match="--tls-ca"):
        TLSConfig.from_paths(None, crl=junk)


def test_a_list_of_another_ca_or_one_expired_is_refused_before_it_refuses_everyone(
    ca: trustme.CA, tmp_path: Path
) -> None:
    """An operator's mix-up: with either list OpenSSL would refuse every certificate at
    every handshake (a cluster that never forms, its cause hidden in TLS errors)."""
    node = _node(ca, tmp_path, "n1")
    foreign = write_crl(trustme.CA(), tmp_path / "other.crl")
    with pytest.raises(TLSConfigError, match=r"not signed by the CA in --tls-ca"):
        server_context(dataclasses.replace(node, crl=foreign))
    stale = write_crl(ca, tmp_path / "stale.crl", expired=True)
    with pytest.raises(TLSConfigError, match=r"expired at .*renew it"):
        server_context(dataclasses.replace(node, crl=stale))
    server_context(dataclasses.replace(node, crl=write_crl(ca, tmp_path / "ok.crl")))


def test_a_reloaded_listener_judges_new_handshakes_by_the_new_list_and_names_the_open_ones(
    ca: trustme.CA, tmp_path: Path
) -> None:
    """``ServerTLS``: the listener keeps its context object; each handshake gets the newest.
    A certificate revoked after its connection opened is found by ``Revocations``."""
    node, client = _node(ca, tmp_path, "n1"), _node(ca, tmp_path, "client")
    assert client.cert is not None
    crl = write_crl(ca, tmp_path / "ca.crl")
    tls = ServerTLS(lambda: server_context(dataclasses.replace(node, crl=crl)))

    async def scenario() -> None:
        opened: list[ssl.SSLObject] = []

        async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            opened.append(writer.get_extra_info("ssl_object"))
            writer.write(await reader.readline())
            await writer.drain()

        listener = await asyncio.start_server(on_conn, "127.0.0.1", 0, ssl=tls.listener)
        port = listener.sockets[0].getsockname()[1]

        async def ping() -> str:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=client_context(client), server_hostname="127.0.0.1"
            )
            writer.write(b"ping\n")
            try:
                return (await reader.readline()).decode()
            except ConnectionResetError:
                return ""
            finally:
                writer.close()

        try:
            assert await ping() == "ping\n"
            write_crl(ca, crl, client.cert)  # type: ignore[arg-type]
            assert await ping() == "ping\n"  # not re-read yet
            tls.reload()
            assert await ping() == ""
            revocations = Revocations.load(crl)
            assert revocations.revokes(opened[0]) and len(opened) == 2
            write_crl(ca, crl)
            tls.reload()
            assert await ping() == "ping\n"
            assert not Revocations.load(crl).revokes(opened[-1])
        finally:
            listener.close()
            await listener.wait_closed()

    asyncio.run(scenario())


def test_node_tls_knows_when_its_certificate_and_list_stop_working_and_a_reload_updates_it(
    ca: trustme.CA, tmp_path: Path
) -> None:
    from cryptography import x509

    node = _node(ca, tmp_path, "n1")
    assert node.cert is not None
    crl = write_crl(ca, tmp_path / "ca.crl")
    material = NodeTLS(lambda: dataclasses.replace(node, crl=crl), "required")
    not_after = x509.load_pem_x509_certificate(node.cert.read_bytes()).not_valid_after_utc
    first = x509.load_pem_x509_crl(crl.read_bytes()).next_update_utc
    assert material.validity == TLSValidity(not_after, first)
    renewed = write_crl(ca, crl, expired=False)  # `tls revoke` with no certificate
    material.reload()
    second = x509.load_pem_x509_crl(renewed.read_bytes()).next_update_utc
    assert second is not None and first is not None and second >= first
    assert material.validity == TLSValidity(not_after, second)
    first = second
    newer = trustme.CA()  # a certificate whose key is not the key file's
    node.cert.write_bytes(newer.issue_cert("127.0.0.1").cert_chain_pems[0].bytes())
    with pytest.raises(TLSConfigError):  # the old key no longer matches: nothing changes
        material.reload()
    assert material.validity == TLSValidity(not_after, first)
