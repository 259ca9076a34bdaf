"""A raw peer connection, as an attacker (or a test) would open one: plain sockets, JSON lines.

The handshake helpers use the library's own proof functions only where the
test plays a party that *holds* a credential; a stranger's attempts are built
by hand.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from typing import Any

from resonetics.security.cluster_key import ClusterKey
from resonetics.security.peer_auth import PeerCredentials, answer_challenge
from resonetics.wire.peer import PeerChallenge


class RawLine:
    """One TCP connection speaking JSON lines, with a deadline on every read."""

    def __init__(self, address: str, timeout_s: float = 5.0) -> None:
        host, _, port = address.rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout_s)
        self.sock.settimeout(timeout_s)
        self._buffer = b""

    def send(self, kind: str, payload: dict[str, Any], req_id: int | None = None) -> None:
        line: dict[str, Any] = {"kind": kind, "payload": payload, "t": 0, "v": 1}
        if req_id is not None:
            line["id"] = req_id
        self.send_raw(json.dumps(line).encode() + b"\n")

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self) -> dict[str, Any] | None:
        """The next line, or None when the other end closed the connection."""
        while b"\n" not in self._buffer:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        decoded: dict[str, Any] = json.loads(line)
        return decoded

    def closed_by_peer(self, within_s: float = 5.0) -> bool:
        """Whether the other end closes the connection (reading and discarding until then)."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            try:
                if not self.sock.recv(65536):
                    return True
            except TimeoutError:
                continue
            except ConnectionResetError:
                return True
        return False

    def finish(self, within_s: float = 15.0) -> bool:
        """Say we are done (half-close) and wait until the node closes its end: it has
        then read every line sent before. Closing at once instead can reset the
        connection (if the node wrote to us) and drop lines the node had not read yet."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)
        return self.closed_by_peer(within_s)

    def close(self) -> None:
        self.sock.close()


def authenticate(
    address: str, as_node: str, key: ClusterKey, expected_peer: str, listen: str = ""
) -> RawLine:
    """A peer link authenticated as ``as_node`` with ``key`` (a credential holder's link)."""
    conn = RawLine(address)
    challenge = conn.read()
    assert challenge is not None and challenge["kind"] == "PeerChallenge", challenge
    creds = PeerCredentials(as_node, key.cluster_id, key)
    ch = PeerChallenge(**challenge["payload"])
    hello = answer_challenge(creds, expected_peer, ch, None, listen)
    conn.send(
        "Hello",
        {
            "node_id": hello.node_id,
            "cluster": hello.cluster,
            "nonce": hello.nonce,
            "proof": hello.proof,
            "address": hello.address,
        },
    )
    welcome = conn.read()
    assert welcome is not None and welcome["kind"] == "PeerWelcome", welcome
    return conn


def timeout_now(src: str, dst: str, term: int) -> dict[str, Any]:
    return {"kind": "TimeoutNow", "src": src, "dst": dst, "term": term}


def append_entries(
    src: str, dst: str, term: int, prev_index: int, prev_term: int
) -> dict[str, Any]:
    """A heartbeat-shaped AppendEntries (no entries): enough to test who may send one."""
    return {
        "kind": "AppendEntries",
        "src": src,
        "dst": dst,
        "term": term,
        "prev_log_index": prev_index,
        "prev_log_term": prev_term,
        "entries": [],
        "leader_commit": 0,
    }
