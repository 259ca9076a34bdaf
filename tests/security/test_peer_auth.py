"""The peer handshake, both sides, sans I/O (``security/peer_auth.py``)."""

from __future__ import annotations

import pytest

from resonetics.security.cluster_key import ClusterKey, new_cluster_key
from resonetics.security.peer_auth import (
    PeerAuthError,
    PeerCredentials,
    answer_challenge,
    check_hello,
    check_welcome,
    make_challenge,
    make_welcome,
)
from resonetics.wire.peer import Hello, PeerWelcome

KEY = new_cluster_key()


def _creds(node: str, key: ClusterKey | None = KEY, *, tls: bool = False) -> PeerCredentials:
    cluster = key.cluster_id if key is not None else "0" * 32
    return PeerCredentials(node, cluster, key, tls=tls)


def test_both_ends_holding_the_key_complete_the_handshake() -> None:
    listener, dialer = _creds("n1"), _creds("n2")
    challenge = make_challenge(listener)
    hello = answer_challenge(dialer, "n1", challenge, None, "127.0.0.1:7102")
    assert check_hello(listener, challenge, hello, None) == "n2"
    check_welcome(dialer, challenge, hello, make_welcome(listener, challenge, hello))


def test_dialer_without_the_key_is_refused() -> None:
    listener = _creds("n1")
    stranger = _creds("n2", ClusterKey(KEY.cluster_id, new_cluster_key().secret))
    challenge = make_challenge(listener)
    hello = answer_challenge(stranger, "n1", challenge, None, "")
    with pytest.raises(PeerAuthError, match="wrong cluster key"):
        check_hello(listener, challenge, hello, None)


def test_hello_without_a_proof_is_refused() -> None:
    listener = _creds("n1")
    challenge = make_challenge(listener)
    hello = Hello(node_id="n2", cluster=KEY.cluster_id)
    with pytest.raises(PeerAuthError, match="wrong cluster key"):
        check_hello(listener, challenge, hello, None)


def test_hello_answering_another_challenge_is_refused() -> None:
    """A recorded Hello is useless: every link gets a fresh nonce."""
    listener, dialer = _creds("n1"), _creds("n2")
    old = make_challenge(listener)
    recorded = answer_challenge(dialer, "n1", old, None, "")
    with pytest.raises(PeerAuthError, match="wrong cluster key"):
        check_hello(listener, make_challenge(listener), recorded, None)


def test_proof_made_for_one_listener_does_not_open_another() -> None:
    dialer = _creds("n2")
    challenge = make_challenge(_creds("n1"))
    hello = answer_challenge(dialer, "n1", challenge, None, "")
    other = _creds("n3")
    with pytest.raises(PeerAuthError):
        check_hello(other, challenge, hello, None)


def test_node_of_another_cluster_is_refused_by_both_ends() -> None:
    ours, theirs = _creds("n1"), _creds("n2", new_cluster_key())
    with pytest.raises(PeerAuthError, match="belongs to cluster"):
        answer_challenge(theirs, "n1", make_challenge(ours), None, "")
    challenge = make_challenge(ours)
    forged = Hello(node_id="n2", cluster=theirs.cluster_id, nonce="ab", proof="cd")
    with pytest.raises(PeerAuthError, match="belongs to cluster"):
        check_hello(ours, challenge, forged, None)


def test_dialer_refuses_a_listener_that_is_not_the_peer_it_meant_to_reach() -> None:
    with pytest.raises(PeerAuthError, match="is n3, not n1"):
        answer_challenge(_creds("n2"), "n1", make_challenge(_creds("n3")), None, "")


def test_dialer_refuses_a_listener_without_the_key() -> None:
    """An impostor at a peer's address never receives our Raft messages."""
    dialer = _creds("n2")
    challenge = make_challenge(_creds("n1"))
    hello = answer_challenge(dialer, "n1", challenge, None, "")
    with pytest.raises(PeerAuthError, match="wrong cluster key"):
        check_welcome(dialer, challenge, hello, PeerWelcome(proof="00" * 32))


def test_tls_certificate_must_name_the_claimed_node() -> None:
    listener, dialer = _creds("n1", None, tls=True), _creds("n2", None, tls=True)
    challenge = make_challenge(listener)
    hello = answer_challenge(dialer, "n1", challenge, "n1", "")
    assert check_hello(listener, challenge, hello, "n2") == "n2"
    with pytest.raises(PeerAuthError, match="certificate is for node n3"):
        check_hello(listener, challenge, hello, "n3")
    with pytest.raises(PeerAuthError, match="names no node"):
        check_hello(listener, challenge, hello, None)  # e.g. a client certificate


def test_a_node_cannot_claim_the_listeners_own_id() -> None:
    listener = _creds("n1")
    challenge = make_challenge(listener)
    hello = answer_challenge(_creds("n1"), "n1", challenge, None, "")
    with pytest.raises(PeerAuthError, match="own id"):
        check_hello(listener, challenge, hello, None)
