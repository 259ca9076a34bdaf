"""A cluster over mutual TLS: it serves, it refuses strangers cleanly, and keeps them out of quorum."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import trustme

from resonetics import errors
from resonetics.client import Client
from resonetics.localcluster import LocalCluster
from resonetics.security.tls import TLSConfig
from tests.integration.conftest import one_line, serve_once
from tests.security.trust import (
    cluster_tls,
    write_ca,
    write_crl,
    write_leaf,
    write_node_identity,
)


def _no_traceback(cluster: LocalCluster) -> None:
    for node_id in cluster.nodes:
        log = (cluster.data_dir / f"{node_id}.log").read_text(errors="replace")
        assert "Traceback" not in log, f"{node_id} crashed:\n{log[-3000:]}"


def _wait_for_log(cluster: LocalCluster, node_id: str, text: str, timeout_s: float = 30) -> str:
    path = cluster.data_dir / f"{node_id}.log"
    return cluster.wait_until(
        f"{text!r} in {node_id}'s log",
        lambda: log if text in (log := path.read_text(errors="replace")) else None,
        timeout_s,
    )


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory, ca: trustme.CA) -> Iterator[LocalCluster]:
    root = tmp_path_factory.mktemp("tls")
    cluster = LocalCluster(root / "data", size=3, tick_ms=20)
    cluster.tls = cluster_tls(ca, root / "certs", list(cluster.nodes))
    cluster.start()
    try:
        cluster.wait_for_leader(timeout_s=60)
        yield cluster
    finally:
        cluster.stop()
        _no_traceback(cluster)


def _connected(cluster: LocalCluster, node_id: str) -> dict[str, bool]:
    status = cluster.status(node_id)
    return {} if status is None else dict(status["peers_connected"])


def _client_tls(cluster: LocalCluster) -> TLSConfig:
    assert cluster.tls is not None and cluster.tls.client is not None
    return cluster.tls.client


def test_tls_cluster_elects_a_leader_and_serves_writes_over_mtls(tls_cluster: LocalCluster) -> None:
    leader, _ = tls_cluster.wait_for_leader()
    with Client(tls_cluster.addresses, timeout=20, tls=_client_tls(tls_cluster)) as client:
        receipt = client.put("secret", {"over": "tls"})
        assert client.get("secret") == {"over": "tls"}
    assert receipt.index > 0 and len(receipt.hash) == 64
    # Every peer link of the leader comes up over mTLS (they may still be connecting).
    tls_cluster.wait_until(
        f"every peer link of {leader} connected",
        lambda: set(_connected(tls_cluster, leader).values()) == {True},
    )
    log = (tls_cluster.data_dir / f"{leader}.log").read_text(errors="replace")
    assert "over TLS (client certificates required)" in log


def test_client_without_a_certificate_is_refused_and_the_node_keeps_serving(
    tls_cluster: LocalCluster,
) -> None:
    anonymous = TLSConfig(_client_tls(tls_cluster).ca)
    with (
        Client(tls_cluster.addresses, timeout=20, tls=anonymous) as client,
        pytest.raises((errors.Timeout, errors.Unavailable), match="certificate"),
    ):
        client.put("intrusion", 1)
    with Client(tls_cluster.addresses, timeout=20, tls=_client_tls(tls_cluster)) as client:
        client.put("after-anonymous", 1)
        assert client.get("intrusion") is None


def test_client_with_a_certificate_from_another_ca_is_refused(
    tls_cluster: LocalCluster, tmp_path: Path
) -> None:
    cert, key = write_leaf(trustme.CA(), tmp_path, "stranger")
    stranger = TLSConfig(_client_tls(tls_cluster).ca, cert, key)
    with (
        Client(tls_cluster.addresses, timeout=20, tls=stranger) as client,
        pytest.raises((errors.Timeout, errors.Unavailable), match="certificate"),
    ):
        client.get("secret")
    with Client(tls_cluster.addresses, timeout=20, tls=_client_tls(tls_cluster)) as client:
        assert client.get("secret") == {"over": "tls"}


def test_client_that_does_not_trust_the_cluster_ca_stops_at_once(
    tls_cluster: LocalCluster, tmp_path: Path
) -> None:
    other = trustme.CA()
    cert, key = write_leaf(other, tmp_path, "elsewhere")
    elsewhere = TLSConfig(write_ca(other, tmp_path / "other-ca.pem"), cert, key)
    with (
        Client(tls_cluster.addresses, timeout=20, tls=elsewhere) as client,
        pytest.raises(errors.Unavailable, match="server certificate not accepted"),
    ):
        client.get("secret")


def test_plain_tcp_client_gets_no_service_from_a_tls_node(tls_cluster: LocalCluster) -> None:
    with (
        Client(tls_cluster.addresses, timeout=2) as client,
        pytest.raises((errors.Timeout, errors.Unavailable)),
    ):
        client.get("secret")


def test_peer_with_a_certificate_from_another_ca_cannot_join_the_quorum(
    tmp_path: Path, ca: trustme.CA
) -> None:
    cluster = LocalCluster(tmp_path / "data", size=3, tick_ms=20)
    files = cluster_tls(ca, tmp_path / "certs", list(cluster.nodes))
    assert files.client is not None
    # n3 trusts the cluster CA but holds a certificate from another one.
    rogue_ca = trustme.CA()
    cluster.tls = replace(
        files, nodes={**files.nodes, "n3": write_node_identity(rogue_ca, tmp_path / "rogue", "n3")}
    )
    cluster.start()
    try:
        leader, _ = cluster.wait_for_leader(timeout_s=60, exclude={"n3"})
        assert leader in {"n1", "n2"}
        with Client(cluster.addresses[:2], timeout=20, tls=files.client) as client:
            receipt = client.put("quorum", "n1+n2")
        # The good nodes refuse n3's certificate on their links to it, and say so.
        _wait_for_log(cluster, leader, "peer link to n3")
        status = cluster.status(leader)
        assert status is not None
        assert status["peers_connected"]["n3"] is False
        assert "n3" not in status["last_contact_s"]
        assert status["commit_index"] >= receipt.index
        # n3's own view (asked by a client that trusts its rogue CA): it never heard from
        # a leader, and nothing committed reached it.
        probe_tls = replace(files.client, ca=write_ca(rogue_ca, tmp_path / "rogue-ca.pem"))
        address = cluster.nodes["n3"].address
        with Client([address], timeout=10, tls=probe_tls) as probe:
            rogue_view = probe.status(address)
        assert rogue_view["leader"] is None
        assert rogue_view["commit_index"] == 0
    finally:
        cluster.stop()
    _no_traceback(cluster)


def test_kv_and_status_commands_take_tls_flags_and_env_vars(
    tls_cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from resonetics.cli import main

    tls = _client_tls(tls_cluster)
    assert tls.cert is not None and tls.key is not None
    cluster_arg = ",".join(tls_cluster.addresses)
    flags = ["--tls-ca", str(tls.ca), "--tls-cert", str(tls.cert), "--tls-key", str(tls.key)]
    runner = CliRunner()
    put = runner.invoke(main, ["kv", "put", "cli", "yes", "--cluster", cluster_arg, *flags])
    assert put.exit_code == 0, put.output
    monkeypatch.setenv("RESONETICS_TLS_CA", str(tls.ca))
    monkeypatch.setenv("RESONETICS_TLS_CERT", str(tls.cert))
    monkeypatch.setenv("RESONETICS_TLS_KEY", str(tls.key))
    get = runner.invoke(main, ["kv", "get", "cli", "--cluster", cluster_arg])
    assert get.exit_code == 0 and get.output.strip() == '"yes"', get.output
    status = runner.invoke(main, ["status", "--json", "--cluster", cluster_arg])
    assert status.exit_code == 0 and '"role": "leader"' in status.output, status.output


def test_a_cli_given_the_revocation_list_refuses_a_revoked_node(
    tls_cluster: LocalCluster, ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--tls-crl` on a client command: a node whose certificate the list revokes is not
    trusted with the request (the command goes to the others), and one alone is refused."""
    from click.testing import CliRunner

    from resonetics.cli import main

    tls = _client_tls(tls_cluster)
    assert tls.cert is not None and tls.key is not None and tls_cluster.tls is not None
    flags = ["--tls-ca", str(tls.ca), "--tls-cert", str(tls.cert), "--tls-key", str(tls.key)]
    crl = write_crl(ca, tmp_path / "ca.crl", tls_cluster.tls.nodes["n1"][0])
    runner = CliRunner()
    n1 = tls_cluster.nodes["n1"].address
    get = ["kv", "get", "crl-none", "--timeout", "3", *flags]
    alone = runner.invoke(main, [*get, "--cluster", n1, "--tls-crl", str(crl)])
    assert alone.exit_code == 3, alone.output
    assert "its certificate is on the revocation list" in alone.stderr, alone.stderr
    assert runner.invoke(main, [*get, "--cluster", n1]).exit_code == 1  # answered: absent
    monkeypatch.setenv("RESONETICS_TLS_CRL", str(crl))
    others = runner.invoke(main, [*get, "--cluster", ",".join(tls_cluster.addresses)])
    assert others.exit_code == 1, others.output  # n2 or n3 answered (a read any node serves)


def test_optional_client_auth_serves_anonymous_clients_but_not_their_raft_messages(
    tmp_path: Path, ca: trustme.CA
) -> None:
    import json
    import socket
    import ssl

    from resonetics.security.tls import client_context

    cluster = LocalCluster(tmp_path / "data", size=1, tick_ms=20)
    files = cluster_tls(ca, tmp_path / "certs", ["n1"], client_auth="optional")
    cluster.tls = files
    anonymous = TLSConfig(files.ca)
    cluster.start()
    try:
        _, before = cluster.wait_for_leader(timeout_s=60)
        with Client(cluster.addresses, timeout=20, tls=anonymous) as client:
            client.put("anonymous", "welcome")
        forged = {"src": "n9", "dst": "n1", "term": 1000, "kind": "RequestVote"}
        forged |= {"candidate_id": "n9", "last_log_index": 99, "last_log_term": 999}
        line = json.dumps({"kind": "RequestVote", "payload": forged, "t": 0, "v": 1}) + "\n"
        host, _, port = cluster.addresses[0].rpartition(":")
        context: ssl.SSLContext = client_context(anonymous)
        with (
            socket.create_connection((host, int(port)), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=host) as sock,
        ):
            sock.sendall(line.encode())
            _wait_for_log(cluster, "n1", "refused RequestVote on the client port")
        after = cluster.status("n1")
        assert after is not None and after["term"] == before["term"]
        assert after["role"] == "leader"
    finally:
        cluster.stop()
    _no_traceback(cluster)


def test_each_node_makes_its_signing_key_on_first_start(tls_cluster: LocalCluster) -> None:
    from resonetics.security.signing import (
        NODE_KEY_FILE,
        SignatureCheck,
        load_or_create_node_key,
        public_key_text,
        registry_from_node_dirs,
        sign_entry_hash,
    )

    dirs = {n: tls_cluster.data_dir / n for n in tls_cluster.nodes}
    for node_id, node_dir in dirs.items():
        assert (node_dir / NODE_KEY_FILE).stat().st_mode & 0o777 == 0o600
        key = load_or_create_node_key(node_dir)
        log = (tls_cluster.data_dir / f"{node_id}.log").read_text(errors="replace")
        assert f"entry signing key {public_key_text(key)}" in log
    registry = registry_from_node_dirs(dirs)
    status = tls_cluster.status("n1")
    assert status is not None
    signature = sign_entry_hash(load_or_create_node_key(dirs["n1"]), "n1", status["last_hash"])
    assert registry.verify(status["last_hash"], signature) is SignatureCheck.VALID


def _peer_hello_over_tls(
    cluster: LocalCluster, target: str, cert: TLSConfig, claim: str
) -> dict[str, object]:
    """Open a TLS link to ``target``'s peer port with ``cert`` and claim to be ``claim``."""
    import json
    import socket

    from resonetics.security.tls import client_context

    host, _, port = cluster.nodes[target].peer_address.rpartition(":")
    context = client_context(cert)
    with (
        socket.create_connection((host, int(port)), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=host) as sock,
    ):
        reader = sock.makefile("rb")
        challenge = json.loads(reader.readline())
        assert challenge["kind"] == "PeerChallenge"
        hello = {"node_id": claim, "cluster": challenge["payload"]["cluster"]}
        sock.sendall(json.dumps({"kind": "Hello", "payload": hello, "t": 0, "v": 1}).encode())
        sock.sendall(b"\n")
        answer: dict[str, object] = json.loads(reader.readline())
        return answer


def test_client_certificate_cannot_open_a_peer_link(tls_cluster: LocalCluster) -> None:
    """A certificate from the cluster CA that names no node is a client's, not a peer's."""
    leader, _ = tls_cluster.wait_for_leader()
    claim = next(n for n in tls_cluster.nodes if n != leader)
    answer = _peer_hello_over_tls(tls_cluster, leader, _client_tls(tls_cluster), claim)
    assert answer["kind"] == "PeerRefused"
    assert "names no node" in str(answer["payload"])
    # Refused and counted as a refused link (whoever leads by now: a real election on
    # a loaded machine may have moved the term; nothing here could).
    status = tls_cluster.status(leader)
    assert status is not None, f"{leader} stopped answering"
    refused = status["peer_auth"]["refused_links"]
    assert any("names no node" in reason for reason in refused), refused


def test_node_certificate_cannot_claim_another_node(tls_cluster: LocalCluster) -> None:
    assert tls_cluster.tls is not None
    leader, _ = tls_cluster.wait_for_leader()
    holder, victim = sorted(n for n in tls_cluster.nodes if n != leader)
    cert, key = tls_cluster.tls.nodes[holder]
    answer = _peer_hello_over_tls(
        tls_cluster, leader, TLSConfig(tls_cluster.tls.ca, cert, key), victim
    )
    assert answer["kind"] == "PeerRefused"
    assert f"certificate is for node {holder}, not {victim}" in str(answer["payload"])


def test_a_revocation_list_reloaded_on_sighup_cuts_off_a_client_and_a_node(
    tmp_path: Path, ca: trustme.CA
) -> None:
    """A stolen client certificate and a compromised node: the operator adds both to the
    CA's revocation list and sends SIGHUP. Their open connections are closed, their new
    handshakes refused; everyone else goes on (two of three nodes keep the quorum). A list
    that does not load keeps the one in force."""
    certs = tmp_path / "certs"
    crl = write_crl(ca, certs / "ca.crl")
    cluster = LocalCluster(
        tmp_path / "data", size=3, tick_ms=20, extra_args=["--tls-crl", str(crl)]
    )
    cluster.tls = cluster_tls(ca, certs, list(cluster.nodes))
    thief_cert, thief_key = write_leaf(ca, certs, "thief")
    thief = TLSConfig(certs / "ca.pem", thief_cert, thief_key)
    cluster.start()
    try:
        cluster.wait_for_leader(timeout_s=60)
        with Client(cluster.addresses, timeout=20, tls=thief) as stolen:
            stolen.put("before", 1)
            write_crl(ca, crl, thief_cert, certs / "n3.pem")
            for node_id in cluster.nodes:
                cluster.signal_node(node_id, signal.SIGHUP)
            for node_id in ("n1", "n2"):
                _wait_for_log(cluster, node_id, "TLS material reloaded")
            cluster.wait_until(
                "n1 and n2 cut off from n3",
                lambda: (
                    not _connected(cluster, "n1").get("n3")
                    and not _connected(cluster, "n2").get("n3")
                ),
                30,
            )
            with pytest.raises((errors.Timeout, errors.Unavailable)):
                stolen.put("after", 1)
        with Client(cluster.addresses[:2], timeout=20, tls=_client_tls(cluster)) as client:
            client.put("still-served", 1)
            assert client.get("after") is None and client.get("before") == 1
        assert _connected(cluster, "n1").get("n2") and not _connected(cluster, "n1").get("n3")
        crl.write_text("not a revocation list")
        cluster.signal_node("n1", signal.SIGHUP)
        _wait_for_log(
            cluster, "n1", f"TLS reload refused, keeping the current certificates: --tls-crl {crl}"
        )
        with Client(cluster.addresses[:1], timeout=20, tls=_client_tls(cluster)) as client:
            assert client.get("still-served") == 1
        assert cluster.exit_codes() == {"n1": None, "n2": None, "n3": None}
    finally:
        cluster.stop()
    _no_traceback(cluster)


def test_serve_with_a_list_of_another_ca_or_an_expired_one_is_refused_in_one_line(
    tmp_path: Path, ca: trustme.CA
) -> None:
    certs = tmp_path / "certs"
    cert, key = write_node_identity(ca, certs, "n1")
    tls = ["--tls-ca", str(write_ca(ca, certs / "ca.pem")), "--tls-cert", str(cert)]
    tls += ["--tls-key", str(key), "--cluster-id", "a" * 32]
    for crl, reason in (
        (write_crl(trustme.CA(), certs / "other.crl"), "not signed by the CA in --tls-ca"),
        (write_crl(ca, certs / "stale.crl", expired=True), "expired at"),
    ):
        result = serve_once(tmp_path / "data", "n1", *tls, "--tls-crl", str(crl))
        assert result.returncode == 2, result.stderr
        line = one_line(result)
        assert f"--tls-crl {crl}" in line and reason in line, line
