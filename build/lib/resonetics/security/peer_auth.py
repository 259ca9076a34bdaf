"""Peer authentication: who is on the other end of a peer link, proven before any Raft message.

Theory of operation
-------------------
Peer links are one-way (``server/peers.py``): a node dials each peer's *peer*
address and only writes Raft messages to it. Before the first one, both ends
run a three-line handshake (sans-I/O here; the listener and the link do the
I/O)::

    listener -> dialer   PeerChallenge {node_id: L, cluster: C, nonce: Nl, machine: M}
    dialer   -> listener Hello         {node_id: D, cluster: C, nonce: Nd, proof: P_d, address,
                                        machine: M}
    listener -> dialer   PeerWelcome   {proof: P_l}      (or PeerRefused {reason}, then close)

Each side checks, in this order:

1. **Cluster.** ``C`` must be its own cluster id: a node of another cluster
   (another data dir, another key file) is refused with a reason naming both.
2. **Identity.** With mutual TLS, the other end's certificate must name the
   node id it claims, as a SAN URI ``resonetics://node/<id>`` (``tls.py``); a
   client certificate (``resonetics://client/...``) or a certificate naming
   another node is refused. With a cluster key, the proofs are
   ``HMAC-SHA256(secret, transcript)`` over both node ids, the cluster id and
   both nonces, under a different label for each direction: the dialer proves
   it holds the key for *this* challenge (a recorded Hello is useless against a
   fresh nonce), and the listener proves it back, so a link never writes Raft
   messages to an impostor at a peer's address. Both ends check the other
   claims the id they expect (the dialer: the peer it meant to reach).
3. **Machine.** ``M`` must name the state machine this node serves
   (``StateMachine.name``): nodes of one cluster serving different machines
   would apply each other's commands as garbage, so both ends refuse with a
   reason naming both machines (``PeerMachineMismatch``): the listener on the
   Hello, the dialer on the challenge (after sending its Hello, so that the
   listener sees and counts the mismatch too). A line without
   ``machine`` comes from a node that predates the field, which could only
   serve the key-value store (``kv``). This guards against an operator's
   mistake; it is not part of the proofs (a key holder is trusted anyway).
4. **Insecure mode** (neither TLS nor key, loopback or ``--insecure``): the
   claims are taken as they come; the cluster check still keeps two clusters
   on one machine from merging by mistake.

What this does not do: without TLS the link is not encrypted and, once
established, its lines carry no per-message MAC, so an attacker *on the
path* (not merely able to reach the port) could inject into a live TCP
stream. Use TLS where the network is not trusted (docs/threat-model.md).
After the handshake the listener still checks every message: its ``src`` must
be the authenticated node (``server/peer_listener.py``).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from resonetics.errors import PeerMachineMismatch, ResoneticsError
from resonetics.security.cluster_key import ClusterKey
from resonetics.wire.peer import Hello, PeerChallenge, PeerWelcome

#: Domain labels: a proof made for one direction or protocol version is useless for another.
_DIALER_LABEL = b"resonetics/peer-link/v1/dialer"
_LISTENER_LABEL = b"resonetics/peer-link/v1/listener"
#: The machine a handshake line without ``machine`` stands for (see the module docstring).
LEGACY_PEER_MACHINE = "kv"
#: Random bytes in a nonce (hex-encoded on the wire).
NONCE_BYTES = 16


class PeerAuthError(ResoneticsError):
    """The other end of a peer link failed the handshake; the message says why."""


@dataclass(frozen=True, slots=True)
class PeerCredentials:
    """What this node proves itself with, and checks others against.

    ``key`` is the cluster key (None: no challenge–response). ``tls`` says the
    link runs over mutual TLS, so identities come from certificates.
    """

    node_id: str
    cluster_id: str
    key: ClusterKey | None = None
    tls: bool = False
    #: The state machine this node serves (``machine_name``); "": the key-value store.
    machine: str = ""

    @property
    def authenticated(self) -> bool:
        """Whether the handshake proves who the other end is (TLS or a key)."""
        return self.tls or self.key is not None


def new_nonce() -> str:
    return secrets.token_hex(NONCE_BYTES)


def _transcript(label: bytes, cluster: str, dialer: str, listener: str, nl: str, nd: str) -> bytes:
    """Every field length-prefixed, so no two different transcripts share bytes."""
    parts = [label, *(p.encode("utf-8") for p in (cluster, dialer, listener, nl, nd))]
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def _proof(key: ClusterKey | None, label: bytes, *fields: str) -> str:
    if key is None:
        return ""
    cluster, dialer, listener, nl, nd = fields
    message = _transcript(label, cluster, dialer, listener, nl, nd)
    return hmac.digest(key.secret, message, "sha256").hex()


def _check_cluster(mine: str, theirs: str, who: str) -> None:
    if theirs != mine:
        raise PeerAuthError(f"{who} belongs to cluster {theirs or '?'}, not {mine}")


def _check_machine(mine: str, theirs: str, who: str) -> None:
    mine, theirs = mine or LEGACY_PEER_MACHINE, theirs or LEGACY_PEER_MACHINE
    if theirs != mine:
        raise PeerMachineMismatch(who, theirs, mine)


def _check_cert_names(cert_node: str | None, claimed: str, who: str) -> None:
    if cert_node is None:
        raise PeerAuthError(f"{who}: its certificate names no node (resonetics://node/<id>)")
    if cert_node != claimed:
        raise PeerAuthError(f"{who}: its certificate is for node {cert_node}, not {claimed}")


# --- the listener's side ------------------------------------------------------------------
def make_challenge(me: PeerCredentials) -> PeerChallenge:
    return PeerChallenge(
        node_id=me.node_id, cluster=me.cluster_id, nonce=new_nonce(), machine=me.machine
    )


def check_hello(
    me: PeerCredentials, challenge: PeerChallenge, hello: Hello, cert_node: str | None
) -> str:
    """The dialer's node id if ``hello`` answers ``challenge``; else ``PeerAuthError``.

    ``cert_node`` is the node id named by the dialer's TLS certificate (None
    when it has none, or on a plain link).
    """
    who = f"peer claiming to be {hello.node_id}"
    _check_cluster(me.cluster_id, hello.cluster, who)
    if hello.node_id == me.node_id:
        raise PeerAuthError(f"{who}: that is this node's own id")
    if me.tls:
        _check_cert_names(cert_node, hello.node_id, who)
    _check_machine(me.machine, hello.machine, who)
    if me.key is not None:
        want = _proof(
            me.key, _DIALER_LABEL, me.cluster_id, hello.node_id, me.node_id,
            challenge.nonce, hello.nonce,
        )  # fmt: skip
        if not hello.nonce or not hmac.compare_digest(want, hello.proof):
            raise PeerAuthError(f"{who}: wrong cluster key")
    return hello.node_id


def make_welcome(me: PeerCredentials, challenge: PeerChallenge, hello: Hello) -> PeerWelcome:
    proof = _proof(
        me.key, _LISTENER_LABEL, me.cluster_id, hello.node_id, me.node_id,
        challenge.nonce, hello.nonce,
    )  # fmt: skip
    return PeerWelcome(proof=proof)


# --- the dialer's side --------------------------------------------------------------------
def answer_challenge(
    me: PeerCredentials,
    expected_peer: str,
    challenge: PeerChallenge,
    cert_node: str | None,
    address: str,
) -> Hello:
    """Our Hello if ``challenge`` comes from ``expected_peer`` of our cluster; else refuse."""
    who = f"the node at {expected_peer}'s address"
    _check_cluster(me.cluster_id, challenge.cluster, who)
    if challenge.node_id != expected_peer:
        raise PeerAuthError(f"{who} is {challenge.node_id}, not {expected_peer}")
    if me.tls:
        _check_cert_names(cert_node, expected_peer, who)
    nonce = new_nonce()
    proof = _proof(
        me.key, _DIALER_LABEL, me.cluster_id, me.node_id, expected_peer, challenge.nonce, nonce
    )
    return Hello(
        node_id=me.node_id,
        cluster=me.cluster_id,
        nonce=nonce,
        proof=proof,
        address=address,
        machine=me.machine,
    )


def check_challenge_machine(me: PeerCredentials, challenge: PeerChallenge) -> None:
    """Refuse a listener serving another machine (``PeerMachineMismatch``).

    The link checks this *after* writing its Hello, so the listener, which sees our
    machine in it, refuses and counts the mismatch too: both operators see it.
    """
    _check_machine(me.machine, challenge.machine, f"the node at {challenge.node_id}'s address")


def check_welcome(
    me: PeerCredentials, challenge: PeerChallenge, hello: Hello, welcome: PeerWelcome
) -> None:
    """The listener proved it holds the key too (nothing to check without one)."""
    if me.key is None:
        return
    want = _proof(
        me.key, _LISTENER_LABEL, me.cluster_id, me.node_id, challenge.node_id,
        challenge.nonce, hello.nonce,
    )  # fmt: skip
    if not hmac.compare_digest(want, welcome.proof):
        raise PeerAuthError(f"{challenge.node_id}: wrong cluster key in its welcome")


__all__ = [
    "LEGACY_PEER_MACHINE",
    "NONCE_BYTES",
    "PeerAuthError",
    "PeerCredentials",
    "answer_challenge",
    "check_challenge_machine",
    "check_hello",
    "check_welcome",
    "make_challenge",
    "make_welcome",
    "new_nonce",
]
