"""Real processes: leases and the lock recipe (issue 18 item 2).

A lease's keys vanish after its TTL without keep-alives and stay while kept
alive (also across a leader kill); a lock held by a process killed with
SIGKILL is released after its TTL and the next holder's fencing token is
larger; keep-alive on a follower answers NOT_LEADER with the leader's hint;
a revoke reaching outside the caller's write grant is refused over a raw socket.
Waits are deadline polls (``LocalCluster.wait_until``), never sleeps.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from resonetics import errors
from resonetics.client import AsyncClient, Client
from resonetics.localcluster import LocalCluster
from resonetics.recipes import Lock
from resonetics.security.authz import hash_token, parse_policy
from resonetics.security.policy_files import write_policy
from tests.integration.conftest import _assert_no_crash, running_cluster

APP_TOKEN = "app-token-for-lease-tests-0123456789"
OPS_TOKEN = "ops-token-for-lease-tests-0123456789"

HOLDER = """
import sys, time
from resonetics.client import Client
from resonetics.recipes import Lock
client = Client(sys.argv[1].split(","), timeout=10)
lock = Lock(client, "job", ttl_s=float(sys.argv[2]))
token = lock.acquire()
print(token, lock.lease_id, flush=True)
time.sleep(600)
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from running_cluster(tmp_path_factory.mktemp("leases") / "data", 3)


def test_a_lease_without_keepalives_expires_and_deletes_its_keys(cluster: LocalCluster) -> None:
    with Client(cluster.addresses, timeout=10) as client:
        lease_id = client.lease_grant(1.0)
        client.put("ttl/a", "x", lease=lease_id)
        client.put("ttl/b", "y", lease=lease_id)
        client.put("ttl/b", "kept")  # a put without a lease detaches the key
        assert client.lease_info(lease_id)["keys"] == ["ttl/a"]
        started = time.monotonic()
        cluster.wait_until("the lease's key gone", lambda: client.get("ttl/a") is None, 30)
        assert time.monotonic() - started >= 0.9
        assert client.get("ttl/b") == "kept"
        with pytest.raises(errors.LeaseNotFound):
            client.lease_keepalive(lease_id)
        assert lease_id not in client.lease_list()


def test_a_kept_alive_lease_survives_a_leader_kill(cluster: LocalCluster) -> None:
    with Client(cluster.addresses, timeout=15) as client:
        lease_id = client.lease_grant(2.0)
        client.put("kept/a", 1, lease=lease_id)
        leader, _ = cluster.wait_for_leader()
        for _ in range(5):  # keep-alives paced at a tenth of the TTL (pacing, not waiting)
            client.lease_keepalive(lease_id)
            time.sleep(0.2)
        cluster.kill_node(leader)
        try:
            cluster.wait_for_leader(exclude={leader}, timeout_s=30)
            for _ in range(20):  # 4 s of keep-alives: two TTLs past the kill
                client.lease_keepalive(lease_id)
                assert client.get("kept/a") == 1
                time.sleep(0.2)
            info = client.lease_info(lease_id)
            assert info["keys"] == ["kept/a"] and 0 < info["remaining_ms"] <= 2000
        finally:
            cluster.start_node(leader)
            cluster.wait_until_settled()


def test_keepalive_on_a_follower_answers_not_leader_with_the_hint(cluster: LocalCluster) -> None:
    leader, _ = cluster.wait_until_settled()
    follower = next(n for n in cluster.nodes if n != leader)
    with Client(cluster.addresses, timeout=10) as client:
        lease_id = client.lease_grant(5.0)
    address = cluster.nodes[follower].address
    answer = _raw(address, "lease_keepalive", {"id": lease_id})
    assert answer["code"] == "NOT_LEADER" and answer["result"]["leader"] == leader


def test_lock_held_by_a_killed_client_is_released_after_its_ttl(cluster: LocalCluster) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, ",".join(cluster.addresses), "2"],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        assert holder.stdout is not None
        first_token, _ = (int(x) for x in holder.stdout.readline().split())
        with Client(cluster.addresses, timeout=10) as client:
            assert client.get("locks/job") is not None
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=10)
            killed = time.monotonic()
            lock = Lock(client, "job", ttl_s=2)
            second_token = lock.acquire(timeout_s=30)
            try:
                assert time.monotonic() - killed >= 1.0  # not before the old lease ran out
                assert second_token > first_token
                lock.check()
            finally:
                lock.release()
            assert client.get("locks/job") is None
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_lock_command_runs_with_the_token_and_releases(cluster: LocalCluster) -> None:
    done = subprocess.run(
        [
            sys.executable, "-m", "resonetics", "lock", "cli", "--ttl", "3",
            "--cluster", ",".join(cluster.addresses), "--",
            sys.executable, "-c", "import os; print(os.environ['RESONETICS_LOCK_TOKEN'])",
        ],
        capture_output=True, text=True, timeout=60, env=os.environ.copy(), check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) > 0
    with Client(cluster.addresses, timeout=10) as client:
        assert client.get("locks/cli") is None


def test_lease_cli_grant_put_info_revoke(cluster: LocalCluster) -> None:
    def cli(*args: str) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-m", "resonetics", *args, "--cluster", ",".join(cluster.addresses)],
            capture_output=True, text=True, timeout=60, env=os.environ.copy(), check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout.splitlines()[-1]))

    lease_id = int(cli("lease", "grant", "30")["id"])
    cli("kv", "put", "cli/k", "v", "--lease", str(lease_id))
    assert cli("lease", "keepalive", str(lease_id), "--once")["id"] == lease_id
    assert cli("lease", "info", str(lease_id))["keys"] == ["cli/k"]
    assert lease_id in cli("lease", "list")["leases"]
    assert cli("lease", "revoke", str(lease_id))["deleted"] == ["cli/k"]


def _raw(address: str, op: str, args: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    """One request over a raw socket (after an ``Auth`` line with ``token``): its payload."""
    lines: list[dict[str, Any]] = []
    if token is not None:
        lines.append({"kind": "Auth", "payload": {"token": token}, "t": 0, "v": 1, "id": 0})
    payload = {"client_id": "raw", "request_id": f"raw-{op}", "op": op, "args": args}
    lines.append({"kind": "ClientRequest", "payload": payload, "t": 0, "v": 1, "id": 1})
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        for line in lines:
            sock.sendall(json.dumps(line).encode() + b"\n")
        stream = sock.makefile("rb")
        answers = [json.loads(stream.readline()) for _ in lines]
    payload_out: dict[str, Any] = answers[-1]["payload"]
    return payload_out


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[LocalCluster]:
    policy = tmp_path / "policy.toml"
    raw = {
        "roles": {
            "app": {"read": ["app/"], "write": ["app/"]},
            "admin": {"admin": True, "read": [""], "write": [""]},
            "monitor": {"monitor": True},
        },
        "anonymous": {"roles": ["monitor"]},  # so the harness can see who leads
        "identities": {
            "app": {"roles": ["app"], "token_sha256": hash_token(APP_TOKEN)},
            "ops": {"roles": ["admin"], "token_sha256": hash_token(OPS_TOKEN)},
        },
    }
    write_policy(policy, parse_policy(raw, source=str(policy)))
    cluster = LocalCluster(
        tmp_path / "data", size=1, tick_ms=20, authorize=False, extra_args=["--policy", str(policy)]
    )
    cluster.start()
    try:
        cluster.wait_for_leader(timeout_s=60)
        yield cluster
    finally:
        cluster.stop()
        _assert_no_crash(cluster)


def test_revoke_of_a_lease_holding_keys_outside_the_callers_grant_is_refused(
    guarded: LocalCluster,
) -> None:
    """The attack: ``app`` may write only ``app/``; ``ops`` attaches ``sys/x`` to a
    lease ``app`` can name. ``app`` revoking it must not delete ``sys/x``, however it
    phrases the request."""
    with Client(guarded.addresses, timeout=10, token=OPS_TOKEN) as ops:
        lease_id = ops.lease_grant(60)
        ops.put("sys/x", "precious", lease=lease_id)
        ops.put("app/y", "mine", lease=lease_id)
    address = guarded.addresses[0]
    whole = _raw(address, "lease_revoke", {"id": lease_id}, APP_TOKEN)
    assert whole["code"] == "FORBIDDEN"  # within "" needs write on every key
    scoped = _raw(address, "lease_revoke", {"id": lease_id, "within": "app/"}, APP_TOKEN)
    assert scoped["code"] == "OK" and scoped["result"]["code"] == "FORBIDDEN"
    assert scoped["result"]["key"] == "sys/x"
    with Client(guarded.addresses, timeout=10, token=APP_TOKEN) as app:
        with pytest.raises(errors.Forbidden):
            app.lease_revoke(lease_id, within="app/")
        with pytest.raises(errors.Forbidden):
            app.put("sys/z", 1, lease=lease_id)  # attaching needs write on the key
        assert app.lease_keepalive(lease_id)["id"] == lease_id
    expire = _raw(address, "lease_expire", {"ids": [lease_id]}, OPS_TOKEN)
    assert expire["code"] == "BAD_REQUEST"  # only the leader proposes expiry
    with Client(guarded.addresses, timeout=10, token=OPS_TOKEN) as ops:
        assert ops.get("sys/x") == "precious"
        assert sorted(ops.lease_revoke(lease_id)) == ["app/y", "sys/x"]


def test_async_lock_detects_a_lost_lease_and_the_next_token_is_larger(
    cluster: LocalCluster,
) -> None:
    async def run() -> None:
        async with AsyncClient(cluster.addresses, timeout=10) as client:
            lock = Lock(client, "lost", ttl_s=1.0)
            token = await lock.acquire_async()
            lock.check()
            assert lock.lost is not None
            await client.lease_revoke(lock.lease_id)  # as an operator would, or an expiry
            await asyncio.wait_for(lock.lost.wait(), 10)
            with pytest.raises(errors.LeaseLost):
                lock.check()
            await lock.release_async()
            async with Lock(client, "lost", ttl_s=1.0) as second:
                assert second > token

    asyncio.run(run())


def test_a_background_kept_lease_outlives_its_ttl_and_is_revoked_on_exit(
    cluster: LocalCluster,
) -> None:
    async def run() -> None:
        async with AsyncClient(cluster.addresses, timeout=10) as client:
            async with client.lease(1.0) as kept:
                await client.put("bg/k", 1, lease=kept.id)
                loop = asyncio.get_running_loop()
                until = loop.time() + 2.5  # two and a half TTLs
                while loop.time() < until:
                    kept.check()
                    assert await client.get("bg/k") == 1
                    await asyncio.sleep(0.1)
            assert await client.get("bg/k") is None
            with pytest.raises(errors.LeaseNotFound):
                await client.lease_keepalive(kept.id)

    asyncio.run(run())


def test_a_blocking_clients_kept_lease_is_revoked_on_exit(cluster: LocalCluster) -> None:
    with Client(cluster.addresses, timeout=10) as client:
        with client.lease(1.0) as kept:
            client.put("sync/k", 1, lease=kept.id)
            for _ in range(15):  # 1.5 s: past the TTL, kept alive in the background
                kept.check()
                assert client.get("sync/k") == 1
                time.sleep(0.1)
        assert client.get("sync/k") is None
        assert kept.id not in client.lease_list()
