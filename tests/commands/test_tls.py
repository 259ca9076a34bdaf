"""``resonetics tls revoke``: a list the nodes' --tls-crl takes, made without a CA database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import trustme
from click.testing import CliRunner

from resonetics.cli import main
from resonetics.security.tls import Revocations, TLSConfig, client_context, server_context
from tests.security.test_tls import _handshake
from tests.security.trust import write_ca, write_leaf


@pytest.fixture
def pki(tmp_path: Path) -> tuple[trustme.CA, Path, Path]:
    ca = trustme.CA()
    ca_cert = write_ca(ca, tmp_path / "ca.pem")
    ca_key = tmp_path / "ca.key"
    ca.private_key_pem.write_to_path(str(ca_key))
    return ca, ca_cert, ca_key


def _revoke(ca_cert: Path, ca_key: Path, out: Path, *certs: Path) -> tuple[int, str, str]:
    args = ["tls", "revoke", *map(str, certs), "--ca", str(ca_cert), "--ca-key", str(ca_key)]
    result = CliRunner().invoke(main, [*args, "--out", str(out)])
    return result.exit_code, result.stdout, result.stderr


def test_revoke_makes_then_extends_a_list_a_node_enforces(
    pki: tuple[trustme.CA, Path, Path], tmp_path: Path
) -> None:
    ca, ca_cert, ca_key = pki
    crl = tmp_path / "ca.crl"
    first, _ = write_leaf(ca, tmp_path, "first")
    second, _ = write_leaf(ca, tmp_path, "second")
    code, out, _ = _revoke(ca_cert, ca_key, crl, first)
    assert code == 0 and "1 certificate(s) revoked" in out and "SIGHUP" in out
    code, out, _ = _revoke(ca_cert, ca_key, crl, second, first)  # first: already there
    assert code == 0 and out.count("revoked serial") == 1 and "2 certificate(s)" in out
    code, out, _ = _revoke(ca_cert, ca_key, crl)  # renew only
    assert code == 0 and "2 certificate(s)" in out and "revoked serial" not in out
    assert len(Revocations.load(crl).serials) == 2
    node_cert, node_key = write_leaf(ca, tmp_path, "n1")
    node = TLSConfig(ca_cert, node_cert, node_key, crl)
    good = TLSConfig(ca_cert, *write_leaf(ca, tmp_path, "good"))
    revoked = TLSConfig(ca_cert, first, tmp_path / "first.key")
    assert asyncio.run(_handshake(server_context(node), client_context(good)))[1] == "ping\n"
    assert asyncio.run(_handshake(server_context(node), client_context(revoked))) == (None, "")


def test_mistakes_are_one_line_and_leave_the_list_as_it_was(
    pki: tuple[trustme.CA, Path, Path], tmp_path: Path
) -> None:
    ca, ca_cert, ca_key = pki
    crl = tmp_path / "ca.crl"
    leaf, _ = write_leaf(ca, tmp_path, "leaf")
    assert _revoke(ca_cert, ca_key, crl, leaf)[0] == 0
    before = crl.read_bytes()
    other = trustme.CA()
    stranger, _ = write_leaf(other, tmp_path / "other", "stranger")
    other_key = tmp_path / "other.key"
    other.private_key_pem.write_to_path(str(other_key))
    for certs, key, needle in (
        ((stranger,), ca_key, "not by this CA"),
        ((tmp_path / "missing.pem",), ca_key, "missing.pem: cannot read"),
        ((ca_key,), ca_key, "not a PEM certificate"),
        ((leaf,), other_key, "not the key of the CA"),
    ):
        code, _, err = _revoke(ca_cert, key, crl, *certs)
        assert code == 2, err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and needle in lines[0] and "Traceback" not in err, err
        assert crl.read_bytes() == before
    foreign = tmp_path / "foreign.crl"
    assert _revoke(write_ca(other, tmp_path / "other-ca.pem"), other_key, foreign)[0] == 0
    code, _, err = _revoke(ca_cert, ca_key, foreign, leaf)
    assert code == 2 and "a list of another CA" in err
