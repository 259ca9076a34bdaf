"""Sequenced sessions over a real node: the client acknowledges, SESSION_EXPIRED is final."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from resonetics import errors
from resonetics.client import Client
from resonetics.localcluster import LocalCluster


class RawClient:
    """Plain JSON lines over one socket: what any other client library would send."""

    def __init__(self, cluster: LocalCluster, client_id: str) -> None:
        host, _, port = cluster.addresses[0].rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.client_id = client_id
        self.file = self.sock.makefile("rb")

    def send(self, op: str, args: dict[str, Any], rid: str, **session: int) -> dict[str, Any]:
        payload = {"client_id": self.client_id, "request_id": rid, "op": op, "args": args}
        env = {"kind": "ClientRequest", "payload": {**payload, **session}, "t": 0, "v": 1, "id": 1}
        self.sock.sendall(json.dumps(env).encode() + b"\n")
        answer: dict[str, Any] = json.loads(self.file.readline())["payload"]
        return answer

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def test_acknowledged_write_retried_late_is_session_expired_over_the_wire(
    single_node: LocalCluster,
) -> None:
    raw = RawClient(single_node, "raw-1")
    try:
        sid = raw.send("session_open", {}, "open")["result"]["session"]
        first = raw.send("kv_set", {"k": "a", "v": 1}, "w1", session=sid, seq=1, ack_below=1)
        assert first["code"] == "OK"
        dup = raw.send("kv_set", {"k": "a", "v": 1}, "w1", session=sid, seq=1, ack_below=1)
        assert dup["code"] == "OK" and dup["dedup"] is True
        reused = raw.send("kv_set", {"k": "a", "v": 9}, "w1", session=sid, seq=1, ack_below=1)
        assert reused["code"] == "BAD_REQUEST"
        raw.send("kv_set", {"k": "a", "v": 2}, "w2", session=sid, seq=2, ack_below=2)
        late = raw.send("kv_set", {"k": "a", "v": 1}, "w1", session=sid, seq=1, ack_below=1)
        assert late["code"] == "SESSION_EXPIRED" and late["ok"] is False
        # A request without the session fields (an older client) is still served.
        legacy = RawClient(single_node, "legacy")
        assert legacy.send("kv_set", {"k": "b", "v": 1}, "r1")["code"] == "OK"
        legacy.close()
    finally:
        raw.close()
    with Client(single_node.addresses, timeout=10) as client:
        assert client.get("a") == 2


def test_client_raises_session_expired_without_retrying_then_opens_a_new_session(
    single_node: LocalCluster,
) -> None:
    with Client(single_node.addresses, timeout=10) as client:
        client.put("k", 1)
        client.put("k", 2)
        # Someone (here: a raw request with the same client id) replaces the session.
        raw = RawClient(single_node, client.client_id)
        try:
            assert raw.send("session_open", {}, "open-again")["code"] == "OK"
        finally:
            raw.close()
        with pytest.raises(errors.SessionExpired):
            client.put("k", 3)
        assert client.get("k") == 2  # refused, not applied
        client.put("k", 4)  # the next write opens a new session
        assert client.get("k") == 4
