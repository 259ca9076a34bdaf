"""A connection flooding a node past its rate limit gets RATE_LIMITED, then normal service."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from resonetics.client import Client
from resonetics.localcluster import LocalCluster

BURST = 5


@pytest.fixture
def limited_node(tmp_path: Path) -> Iterator[LocalCluster]:
    cluster = LocalCluster(
        tmp_path / "data",
        size=1,
        tick_ms=20,
        extra_args=["--rate-limit", f"{BURST}/s", "--rate-limit-burst", str(BURST)],
    )
    cluster.start()
    try:
        cluster.wait_for_leader(timeout_s=60)
        yield cluster
    finally:
        cluster.stop()
        log = (cluster.data_dir / "n1.log").read_text(errors="replace")
        assert "Traceback" not in log, log[-3000:]


def _request(i: int) -> bytes:
    payload = {
        "client_id": "flood",
        "request_id": f"r{i}",
        "op": "kv_set",
        "args": {"k": "k", "v": i},
    }
    env = {"kind": "ClientRequest", "payload": payload, "t": 0, "v": 1, "id": i}
    return json.dumps(env).encode() + b"\n"


def _read_answers(sock: socket.socket, count: int) -> dict[int, str]:
    data = b""
    while data.count(b"\n") < count:
        chunk = sock.recv(65536)
        assert chunk, "the node closed the connection"
        data += chunk
    envelopes = [json.loads(line) for line in data.splitlines()]
    return {env["id"]: env["payload"]["code"] for env in envelopes}


def test_flood_from_one_connection_is_rate_limited_then_served(limited_node: LocalCluster) -> None:
    host, _, port = limited_node.addresses[0].rpartition(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        flood = 50
        sock.sendall(b"".join(_request(i) for i in range(flood)))
        codes = _read_answers(sock, flood)
        assert set(codes.values()) == {"OK", "RATE_LIMITED"}
        # The bucket held BURST tokens, plus at most a few refilled while the flood arrived.
        assert BURST <= list(codes.values()).count("OK") < flood
        # The first BURST requests found tokens: they were served, not refused.
        assert all(codes[i] == "OK" for i in range(BURST))
        # The bucket refills at BURST/s: a request is served again within 1/BURST s
        # or so; until then each try is refused the same way.
        tries = iter(range(flood, flood + 1000))

        def served_again() -> bool:
            i = next(tries)
            sock.sendall(_request(i))
            code = _read_answers(sock, 1)[i]
            assert code in ("OK", "RATE_LIMITED"), code
            return code == "OK"

        limited_node.wait_until("a request served after the refill", served_again, 10.0)


def test_client_backs_off_on_rate_limited_and_every_write_lands(
    limited_node: LocalCluster,
) -> None:
    writes = 3 * BURST
    with Client(limited_node.addresses, timeout=30) as client:
        for i in range(writes):
            client.put(f"k{i}", i)
        assert client.scan("k", limit=100) == sorted((f"k{i}", i) for i in range(writes))
