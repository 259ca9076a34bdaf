"""Nodes serving different state machines refuse to peer, from either side.

Sans I/O (``security/peer_auth.py``), then two real ``Node``s in one process (each
refuses the other, and says so in ``status``), then a raw socket claiming another
machine at a node's peer port.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import pytest

from resonetics import Node
from resonetics.errors import PeerMachineMismatch
from resonetics.localcluster import free_ports
from resonetics.security.cluster_key import new_cluster_key
from resonetics.security.peer_auth import (
    PeerCredentials,
    answer_challenge,
    check_challenge_machine,
    check_hello,
    make_challenge,
)
from resonetics.wire.peer import Hello
from tests.integration.peer_wire import RawLine

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

from counter import Counter, OtherCounter

KEY = new_cluster_key()


def _creds(node: str, machine: str) -> PeerCredentials:
    return PeerCredentials(node, KEY.cluster_id, KEY, machine=machine)


def test_listener_refuses_a_dialer_serving_another_machine() -> None:
    listener, dialer = _creds("n1", "counter"), _creds("n2", "queue")
    challenge = make_challenge(listener)
    hello = answer_challenge(dialer, "n1", challenge, None, "")
    assert hello.machine == "queue"
    with pytest.raises(PeerMachineMismatch) as caught:
        check_hello(listener, challenge, hello, None)
    assert (caught.value.theirs, caught.value.mine) == ("queue", "counter")
    assert "'queue'" in str(caught.value) and "'counter'" in str(caught.value)


def test_dialer_refuses_a_listener_serving_another_machine() -> None:
    challenge = make_challenge(_creds("n1", "counter"))
    with pytest.raises(PeerMachineMismatch, match=r"serves machine 'counter'.*'queue'"):
        check_challenge_machine(_creds("n2", "queue"), challenge)
    check_challenge_machine(_creds("n2", "counter"), challenge)  # same machine: no refusal


def test_same_machine_peers_and_a_line_without_machine_means_kv() -> None:
    listener = _creds("n1", "counter")
    challenge = make_challenge(listener)
    hello = answer_challenge(_creds("n2", "counter"), "n1", challenge, None, "")
    assert check_hello(listener, challenge, hello, None) == "n2"
    # A node that predates the field could only serve the key-value store.
    kv_listener = _creds("n1", "kv")
    legacy = answer_challenge(_creds("n2", ""), "n1", make_challenge(kv_listener), None, "")
    assert legacy.machine == ""
    with pytest.raises(PeerMachineMismatch, match="'kv'"):
        check_hello(listener, challenge, Hello(node_id="n2", cluster=KEY.cluster_id), None)


def _two_nodes(tmp_path: Path) -> tuple[Node, Node]:
    ports = free_ports(4)
    peers = {"n1": f"127.0.0.1:{ports[0]}", "n2": f"127.0.0.1:{ports[1]}"}
    clients = {"n1": f"127.0.0.1:{ports[2]}", "n2": f"127.0.0.1:{ports[3]}"}
    common = {"peers": peers, "clients": clients, "data_dir": tmp_path / "data", "tick_ms": 20}
    return (
        Node(node_id="n1", machine=Counter(), **common),
        Node(node_id="n2", machine=OtherCounter(), **common),
    )


def test_nodes_serving_different_machines_refuse_each_other_both_ways(tmp_path: Path) -> None:
    async def scenario() -> None:
        n1, n2 = _two_nodes(tmp_path)
        async with n1, n2:
            deadline = time.monotonic() + 30
            while True:
                s1, s2 = n1.status()["peer_auth"], n2.status()["peer_auth"]
                if all(s["refused_links"] and s["link_problems"] for s in (s1, s2)):
                    break
                assert time.monotonic() < deadline, (s1, s2)
                await asyncio.sleep(0.05)
            # Each listener refused the other's Hello, naming both machines...
            (r1,) = s1["refused_links"]
            assert "serves machine 'other-counter'" in r1 and "'counter'" in r1
            (r2,) = s2["refused_links"]
            assert "serves machine 'counter'" in r2 and "'other-counter'" in r2
            # ...and each dialer refused the other's challenge (or was refused).
            assert "machine" in s1["link_problems"]["n2"]["last"]
            assert "machine" in s2["link_problems"]["n1"]["last"]
            # No Raft message crossed: neither has a leader or a peer contact.
            assert n1.leader is None and n2.leader is None
            assert n1.status()["last_contact_s"] == {} and n2.status()["last_contact_s"] == {}

    asyncio.run(scenario())


def test_raw_socket_claiming_another_machine_is_refused_at_the_peer_port(tmp_path: Path) -> None:
    n1, _ = _two_nodes(tmp_path)
    with n1:
        peer_address = n1.config.peer_listen
        raw = RawLine(peer_address)
        try:
            challenge = raw.read()
            assert challenge is not None and challenge["kind"] == "PeerChallenge"
            assert challenge["payload"]["machine"] == "counter"
            cluster = challenge["payload"]["cluster"]
            raw.send("Hello", {"node_id": "n2", "cluster": cluster, "machine": "queue"})
            answer = raw.read()
            assert answer is not None and answer["kind"] == "PeerRefused", answer
            assert "'queue'" in answer["payload"]["reason"]
            assert "'counter'" in answer["payload"]["reason"]
            assert raw.closed_by_peer()
        finally:
            raw.close()
        # The same stranger naming the right machine is welcomed (loopback, no key): the
        # refusal above was for the machine, nothing else.
        raw = RawLine(peer_address)
        try:
            cluster = (raw.read() or {})["payload"]["cluster"]
            raw.send("Hello", {"node_id": "n2", "cluster": cluster, "machine": "counter"})
            welcome = raw.read()
            assert welcome is not None and welcome["kind"] == "PeerWelcome", welcome
        finally:
            raw.close()
        refused = n1.status()["peer_auth"]["refused_links"]
        assert any("'queue'" in reason for reason in refused), json.dumps(refused)
