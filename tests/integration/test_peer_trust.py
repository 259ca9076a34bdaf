"""Only members act as peers: attacks on a running cluster from a raw socket.

Each test plays an attacker with less than a member's credentials (nothing; a
wrong key; another cluster's valid key; a recorded handshake) or a credential
holder that is not what it claims (a member speaking for another, a key holder
outside the configuration), and checks that nothing it sent was stepped: the
term did not move, leadership did not change, and the refusal was counted.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import msgspec
import pytest

from resonetics.client import Client
from resonetics.limits import LINE_BYTES_MAX
from resonetics.localcluster import LocalCluster
from resonetics.security.cluster_key import ClusterKey, load_cluster_key, new_cluster_key
from resonetics.security.peer_auth import PeerCredentials, answer_challenge
from resonetics.wire.peer import PeerChallenge
from tests.integration.peer_wire import RawLine, append_entries, authenticate, timeout_now

pytestmark = pytest.mark.slow

HUGE_TERM = 1_000_000


def _status(cluster: LocalCluster, node_id: str) -> dict[str, Any]:
    status = cluster.status(node_id)
    assert status is not None, f"{node_id} did not answer status"
    return status


def _other(cluster: LocalCluster, node_id: str) -> str:
    """A member id that is not ``node_id`` (what an impostor would claim to be)."""
    return next(n for n in sorted(cluster.nodes) if n != node_id)


def _forged_vote(src: str, dst: str) -> dict[str, Any]:
    return {
        "kind": "RequestVote",
        "src": src,
        "dst": dst,
        "term": HUGE_TERM,
        "candidate_id": src,
        "last_log_index": 10**9,
        "last_log_term": HUGE_TERM,
        "transfer": True,
    }


def _assert_untouched(cluster: LocalCluster, leader: str, term: int) -> None:
    """Nothing the attacker sent was stepped: no node took the forged term, and the
    cluster settles on one of its members as leader.

    Not "the term did not move": on a loaded machine a starved leader loses its
    followers now and then and a real election moves the term by one or two (and
    may change the leader). An attack that worked moves it to ``HUGE_TERM`` or past.
    """
    new_leader, st = cluster.wait_until_settled()
    assert new_leader in cluster.nodes, f"{new_leader} leads, not a member (was {leader})"
    assert term <= st["term"] < HUGE_TERM, f"the forged term took: {st}"
    for node_id in cluster.nodes:
        status = _status(cluster, node_id)
        assert status["term"] < HUGE_TERM, f"{node_id} took the forged term: {status}"


def _wait_dropped(cluster: LocalCluster, node: str, reason: str, count: int) -> None:
    """Wait until ``node`` has dropped ``count`` peer messages for ``reason``."""
    cluster.wait_until(
        f"{node} to drop {count} messages as {reason!r}",
        lambda: _status(cluster, node)["peer_auth"]["dropped_messages"].get(reason) == count,
    )


def test_raft_message_on_the_client_port_is_refused_and_never_stepped(
    cluster3: LocalCluster,
) -> None:
    leader, before = cluster3.wait_until_settled()
    follower = next(n for n in cluster3.nodes if n != leader)
    conn = RawLine(cluster3.nodes[follower].address)
    try:
        conn.send("AppendEntries", append_entries("n9", follower, HUGE_TERM, 0, 0), req_id=1)
        answer = conn.read()
        conn.send("RequestVote", _forged_vote(leader, follower), req_id=2)
        second = conn.read()
        # The old way in for an address: a Hello naming an attacker's host as a node's.
        conn.send("Hello", {"node_id": "n9", "address": "10.66.66.66:7001"}, req_id=3)
        third = conn.read()
    finally:
        conn.close()
    assert answer is not None and answer["payload"]["code"] == "BAD_REQUEST"
    assert "peer message" in answer["payload"]["message"]
    assert second is not None and second["payload"]["code"] == "BAD_REQUEST"
    assert third is not None and third["payload"]["code"] == "BAD_REQUEST"
    _assert_untouched(cluster3, leader, before["term"])
    counters = _status(cluster3, follower)["peer_auth"]
    assert counters["peer_messages_on_client_port"] == 3
    with Client(cluster3.addresses, timeout=10) as client:
        view = client.member_list()
    assert "n9" not in view["addresses"] and "n9" not in view.get("peer_addresses", {})


def test_peer_link_that_skips_the_handshake_is_refused(cluster3: LocalCluster) -> None:
    leader, before = cluster3.wait_until_settled()
    conn = RawLine(cluster3.nodes[leader].peer_address)
    try:
        challenge = conn.read()
        assert challenge is not None and challenge["kind"] == "PeerChallenge"
        conn.send("TimeoutNow", timeout_now(_other(cluster3, leader), leader, HUGE_TERM))
        conn.send("RequestVote", _forged_vote(_other(cluster3, leader), leader))
        refusal = conn.read()
        assert refusal is not None and refusal["kind"] == "PeerRefused"
        assert conn.closed_by_peer()
    finally:
        conn.close()
    _assert_untouched(cluster3, leader, before["term"])
    refused = _status(cluster3, leader)["peer_auth"]["refused_links"]
    assert sum(refused.values()) >= 1


def _hello_with(key: ClusterKey, conn: RawLine, as_node: str, expected: str) -> dict[str, Any]:
    """Answer the challenge on ``conn`` with ``key`` and return what the listener said."""
    from resonetics.security.peer_auth import PeerCredentials, answer_challenge
    from resonetics.wire.peer import PeerChallenge

    challenge = conn.read()
    assert challenge is not None and challenge["kind"] == "PeerChallenge"
    # An attacker ignores what the challenge says about the cluster and answers it
    # with whatever key it holds.
    payload = {**challenge["payload"], "cluster": key.cluster_id}
    hello = answer_challenge(
        PeerCredentials(as_node, key.cluster_id, key),
        expected,
        PeerChallenge(**payload),
        None,
        "",
    )
    conn.send(
        "Hello",
        {"node_id": as_node, "cluster": key.cluster_id, "nonce": hello.nonce, "proof": hello.proof},
    )
    answer = conn.read()
    assert answer is not None
    return answer


def test_peer_with_a_wrong_cluster_key_is_refused(cluster3: LocalCluster) -> None:
    leader, before = cluster3.wait_until_settled()
    real = load_cluster_key(cluster3.cluster_key_path)
    guessed = ClusterKey(real.cluster_id, new_cluster_key().secret)  # right id, wrong secret
    conn = RawLine(cluster3.nodes[leader].peer_address)
    try:
        answer = _hello_with(guessed, conn, _other(cluster3, leader), leader)
        conn.send("TimeoutNow", timeout_now(_other(cluster3, leader), leader, HUGE_TERM))
        assert conn.closed_by_peer()
    finally:
        conn.close()
    assert answer["kind"] == "PeerRefused" and "wrong cluster key" in answer["payload"]["reason"]
    _assert_untouched(cluster3, leader, before["term"])


def test_valid_credentials_of_another_cluster_are_refused(cluster3: LocalCluster) -> None:
    leader, before = cluster3.wait_until_settled()
    other = new_cluster_key()  # a perfectly good key: of another cluster
    conn = RawLine(cluster3.nodes[leader].peer_address)
    try:
        answer = _hello_with(other, conn, _other(cluster3, leader), leader)
    finally:
        conn.close()
    assert answer["kind"] == "PeerRefused"
    assert f"belongs to cluster {other.cluster_id}" in answer["payload"]["reason"]
    _assert_untouched(cluster3, leader, before["term"])


def test_replayed_handshake_is_refused(cluster3: LocalCluster) -> None:
    """A Hello recorded from a real link answers an old nonce; a new link has a new one."""
    leader, before = cluster3.wait_until_settled()
    key = load_cluster_key(cluster3.cluster_key_path)
    first = RawLine(cluster3.nodes[leader].peer_address)
    recorded: dict[str, Any] = {}
    try:
        from resonetics.security.peer_auth import PeerCredentials, answer_challenge
        from resonetics.wire.peer import PeerChallenge

        challenge = first.read()
        assert challenge is not None
        claimed = _other(cluster3, leader)
        hello = answer_challenge(
            PeerCredentials(claimed, key.cluster_id, key),
            leader,
            PeerChallenge(**challenge["payload"]),
            None,
            "",
        )
        recorded = {
            "node_id": claimed,
            "cluster": key.cluster_id,
            "nonce": hello.nonce,
            "proof": hello.proof,
        }
    finally:
        first.close()
    replay = RawLine(cluster3.nodes[leader].peer_address)
    try:
        assert replay.read() is not None  # a fresh challenge
        replay.send("Hello", recorded)
        answer = replay.read()
    finally:
        replay.close()
    assert answer is not None and answer["kind"] == "PeerRefused"
    assert "wrong cluster key" in answer["payload"]["reason"]
    _assert_untouched(cluster3, leader, before["term"])


def test_member_cannot_speak_for_another_node(cluster3: LocalCluster) -> None:
    leader, before = cluster3.wait_until_settled()
    key = load_cluster_key(cluster3.cluster_key_path)
    impostor, victim = sorted(n for n in cluster3.nodes if n != leader)
    conn = authenticate(cluster3.nodes[leader].peer_address, impostor, key, leader)
    try:
        for kind, payload in _speaking_for(victim, leader):
            conn.send(kind, payload)
        assert conn.finish(), f"{leader} did not close the link after reading it"
    finally:
        conn.close()
    _assert_spoken_for_and_refused(cluster3, leader, before["term"])


def _speaking_for(victim: str, leader: str) -> list[tuple[str, dict[str, Any]]]:
    """A TimeoutNow and a vote request with a huge term, as if ``victim`` sent them."""
    return [
        ("TimeoutNow", timeout_now(victim, leader, HUGE_TERM)),
        ("RequestVote", _forged_vote(victim, leader)),
    ]


def _assert_spoken_for_and_refused(cluster: LocalCluster, leader: str, term: int) -> None:
    """Both lines of ``_speaking_for`` dropped by ``leader``, which kept its term."""
    _wait_dropped(cluster, leader, "src is not the authenticated node", 2)
    _assert_untouched(cluster, leader, term)


def test_key_holder_outside_the_configuration_cannot_vote_or_force_an_election(
    cluster3: LocalCluster,
) -> None:
    leader, before = cluster3.wait_until_settled()
    key = load_cluster_key(cluster3.cluster_key_path)
    follower = next(n for n in cluster3.nodes if n != leader)
    for target in (leader, follower):
        conn = authenticate(cluster3.nodes[target].peer_address, "mallory", key, target)
        try:
            conn.send("TimeoutNow", timeout_now("mallory", target, HUGE_TERM))
            conn.send("RequestVote", _forged_vote("mallory", target))
            # An acknowledgement of entries it never held (a leader counting it would
            # commit writes no follower has).
            ack = {"kind": "AppendEntriesResp", "src": "mallory", "dst": target}
            ack |= {"term": before["term"], "success": True, "match_index": 10**6}
            conn.send("AppendEntriesResp", ack)
            assert conn.finish(), f"{target} did not close the link after reading it"
        finally:
            conn.close()
    for target in (leader, follower):
        _wait_dropped(cluster3, target, "sender outside the configuration", 3)
    _assert_untouched(cluster3, leader, before["term"])


def test_silent_peer_connection_is_closed_at_the_handshake_deadline(
    cluster3: LocalCluster,
) -> None:
    leader, _ = cluster3.wait_until_settled()
    conn = RawLine(cluster3.nodes[leader].peer_address, timeout_s=1.0)
    try:
        assert conn.read() is not None  # the challenge; then we say nothing
        started = time.monotonic()
        assert conn.closed_by_peer(within_s=15.0)
        assert time.monotonic() - started < 10.0
    finally:
        conn.close()


def test_huge_or_deeply_nested_handshake_from_a_stranger_is_refused_cheaply(
    cluster3: LocalCluster,
) -> None:
    """Before authenticating, a peer connection may send lines of 4 KiB at most."""
    leader, before = cluster3.wait_until_settled()
    address = cluster3.nodes[leader].peer_address
    deep = RawLine(address)
    try:
        assert deep.read() is not None  # the challenge
        deep.send_raw(
            b'{"kind":"Hello","payload":{"node_id":' + b"[" * 3000 + b"]" * 3000 + b"}}\n"
        )
        refusal = deep.read()
        assert refusal is not None and refusal["kind"] == "PeerRefused"
    finally:
        deep.close()
    huge = RawLine(address)
    try:
        assert huge.read() is not None
        with contextlib.suppress(ConnectionError):
            huge.send_raw(b"x" * (256 * 1024))  # no newline: never buffered past 4 KiB
        assert huge.closed_by_peer()
    finally:
        huge.close()
    _assert_untouched(cluster3, leader, before["term"])
    assert cluster3.exit_codes() == {n: None for n in cluster3.nodes}


def test_lines_sent_with_the_hello_are_checked_like_any_other(cluster3: LocalCluster) -> None:
    """A peer may pipeline Raft lines behind its Hello, before the Welcome: they reach
    the same checks as lines sent after it (the reader's held bytes are not lost or
    let through when the connection changes hands after the handshake)."""
    leader, before = cluster3.wait_until_settled()
    key = load_cluster_key(cluster3.cluster_key_path)
    impostor, victim = sorted(n for n in cluster3.nodes if n != leader)
    conn = RawLine(cluster3.nodes[leader].peer_address)
    try:
        challenge = conn.read()
        assert challenge is not None and challenge["kind"] == "PeerChallenge"
        creds = PeerCredentials(impostor, key.cluster_id, key)
        hello = answer_challenge(creds, leader, PeerChallenge(**challenge["payload"]), None, "")
        lines = [("Hello", msgspec.to_builtins(hello)), *_speaking_for(victim, leader)]
        conn.send_raw(
            b"".join(
                json.dumps({"kind": kind, "payload": payload, "t": 0, "v": 1}).encode() + b"\n"
                for kind, payload in lines
            )
        )
        welcome = conn.read()
        assert welcome is not None and welcome["kind"] == "PeerWelcome", welcome
        assert conn.finish(), f"{leader} did not close the link after reading it"
    finally:
        conn.close()
    _assert_spoken_for_and_refused(cluster3, leader, before["term"])


def test_a_peer_line_over_the_limit_closes_the_link_and_is_counted(
    cluster3: LocalCluster,
) -> None:
    leader, before = cluster3.wait_until_settled()
    key = load_cluster_key(cluster3.cluster_key_path)
    member = _other(cluster3, leader)
    conn = authenticate(cluster3.nodes[leader].peer_address, member, key, leader)
    try:
        with contextlib.suppress(OSError):  # the node may close while we still send
            conn.send_raw(b"[" + b" " * LINE_BYTES_MAX + b"]\n")
        assert conn.closed_by_peer(), f"{leader} kept a link that sent an oversized line"
    finally:
        conn.close()
    _wait_dropped(cluster3, leader, "line too long", 1)
    _assert_untouched(cluster3, leader, before["term"])
