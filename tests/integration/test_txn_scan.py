"""Real processes: transactions, versions and scan cursors (issue 18 items 3 and 4).

A txn through the Python client and through ``resonetics kv txn`` (a spec from a
file and from stdin), versions in reads, a scan paged over more keys than one
page holds, a consistent paged scan refused when its range changes, and a txn
trying to reach around a prefix rule over a raw socket.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from resonetics import errors
from resonetics.client import AsyncClient, Client
from resonetics.localcluster import LocalCluster
from resonetics.security.authz import hash_token, parse_policy
from resonetics.security.policy_files import write_policy
from resonetics.txn import Compare, Delete, Get, Put
from tests.integration.conftest import _assert_no_crash, running_cluster

APP_TOKEN = "app-token-for-txn-tests-0123456789"
OPS_TOKEN = "ops-token-for-txn-tests-0123456789"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from running_cluster(tmp_path_factory.mktemp("txn") / "data", 1)


def _cli(
    cluster: LocalCluster, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "resonetics", "kv", *args, "--cluster", ",".join(cluster.addresses)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
        check=False,
    )


def test_txn_through_the_client_is_atomic_and_reports_versions(node: LocalCluster) -> None:
    with Client(node.addresses, timeout=10) as client:
        client.put("t/a", 1)
        won = client.txn(
            compare=[Compare.value("t/a") == 1, Compare.absent("t/b")],
            then=[Put("t/a", 2), Put("t/b", "new"), Get("t/a")],
            otherwise=[Get("t/a")],
        )
        assert won.succeeded is True
        assert won.receipt is not None
        put_a, put_b, get_a = won.responses
        assert put_a["index"] == put_b["index"] == won.receipt.index
        assert get_a["version"] == 2 and get_a["mod_index"] == won.receipt.index
        lost = client.txn(
            compare=[Compare.version("t/a") == 1],
            then=[Delete("t/a")],
            otherwise=[Get("t/a")],
        )
        assert lost.succeeded is False and lost.gets() == {"t/a": 2}
        meta = client.get("t/a", with_meta=True)
        assert meta["version"] == 2 and meta["create_index"] < meta["mod_index"]


def test_async_client_txn_and_scan_all(node: LocalCluster) -> None:
    async def run() -> list[tuple[str, Any]]:
        async with AsyncClient(node.addresses, timeout=10) as client:
            result = await client.txn(then=[Put("async/1", 1), Put("async/2", 2)])
            assert result.succeeded
            return [item async for item in client.scan_all("async/", page=1)]

    assert asyncio.run(run()) == [("async/1", 1), ("async/2", 2)]


def test_bad_txn_is_refused_with_its_field_and_logs_nothing(node: LocalCluster) -> None:
    with Client(node.addresses, timeout=10) as client:
        with pytest.raises(errors.BadRequest) as caught:
            client.txn(compare=[{"key": "t/x", "target": "colour", "against": 1}])
        assert caught.value.field == "args.compare[0].target"
        assert client.get("t/x") is None


def test_scan_pages_through_more_keys_than_one_page(node: LocalCluster) -> None:
    with Client(node.addresses, timeout=10) as client:
        for start in range(0, 250, 50):
            client.txn(then=[Put(f"many/{i:04}", i) for i in range(start, start + 50)])
        first = client.scan("many/", limit=100)
        assert len(first) == 100 and first.more and first.next == "many/0099"
        assert first == [(f"many/{i:04}", i) for i in range(100)]  # still a list of pairs
        everything = list(client.scan_all("many/", page=100, consistent=True))
        assert everything == [(f"many/{i:04}", i) for i in range(250)]
    listed = _cli(node, "scan", "many/", "--limit", "60", "--all", "--consistent")
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.splitlines()) == 250
    one_page = _cli(node, "scan", "many/", "--limit", "60", "--after", "many/0200")
    assert one_page.stdout.splitlines()[0] == "many/0201\t201"
    assert "--after many/0249" not in one_page.stderr  # the last page: nothing more


def test_a_scan_over_large_values_comes_in_bounded_pages(node: LocalCluster) -> None:
    """24 values of 200 KiB (4.9 MB): a page ends at ``SCAN_BYTES_MAX`` with ``more``
    instead of carrying them all, and ``scan_all`` reads every value in key order."""
    value = "v" * (200 << 10)
    with Client(node.addresses, timeout=30) as client:
        for i in range(24):
            client.put(f"big/{i:02d}", value)
        first = client.scan("big/", 1000)
        assert first.more and 1 <= len(first) < 24
        everything = list(client.scan_all("big/"))
    assert [k for k, _ in everything] == [f"big/{i:02d}" for i in range(24)]
    assert all(v == value for _, v in everything)


def test_consistent_scan_is_refused_when_its_range_changes(node: LocalCluster) -> None:
    with Client(node.addresses, timeout=10) as client:
        client.txn(then=[Put(f"moving/{i}", i) for i in range(6)])
        pages = client.scan_all("moving/", page=2, consistent=True)
        assert next(pages) == ("moving/0", 0)
        client.put("moving/4", "changed")  # on a page not yet served
        with pytest.raises(errors.ScanChanged, match="moving/4"):
            list(pages)
        # Without consistency the scan goes on and sees the new value.
        assert dict(client.scan_all("moving/", page=2))["moving/4"] == "changed"


def test_kv_txn_cli_reads_json_and_toml_specs(node: LocalCluster, tmp_path: Path) -> None:
    spec = {
        "compare": [{"key": "cli/k", "target": "exists", "against": False}],
        "then": [{"type": "put", "key": "cli/k", "value": {"n": 1}}],
        "else": [{"type": "get", "key": "cli/k"}],
    }
    first = _cli(node, "txn", "-", stdin=json.dumps(spec))
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["succeeded"] is True
    toml = tmp_path / "txn.toml"
    toml.write_text(
        '[[compare]]\nkey = "cli/k"\ntarget = "exists"\nagainst = false\n'
        '[[else]]\ntype = "get"\nkey = "cli/k"\n'
    )
    second = _cli(node, "txn", str(toml))
    assert second.returncode == 1  # the compare failed: the else branch ran
    answer = json.loads(second.stdout)
    assert answer["succeeded"] is False and answer["responses"][0]["value"] == {"n": 1}
    got = _cli(node, "get", "cli/k", "--meta")
    assert json.loads(got.stdout)["version"] == 1
    bad = _cli(node, "txn", "-", stdin='{"compare": [{"key": "k", "target": "size"}]}')
    assert bad.returncode != 0 and "compare[0].target" in bad.stderr
    assert "Traceback" not in bad.stderr


# --- authorization: a txn cannot reach around a prefix rule (raw socket) ----------------
@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    root = tmp_path_factory.mktemp("txn-authz")
    policy = root / "policy.toml"
    raw = {
        "roles": {
            "app": {"read": ["app/"], "write": ["app/"]},
            "admin": {"admin": True, "read": [""], "write": [""]},
            "monitor": {"monitor": True},
        },
        "anonymous": {"roles": ["monitor"]},  # so the harness can see who leads
        "identities": {
            "alice": {"roles": ["app"], "token_sha256": hash_token(APP_TOKEN)},
            "ops": {"roles": ["admin"], "token_sha256": hash_token(OPS_TOKEN)},
        },
    }
    write_policy(policy, parse_policy(raw, source=str(policy)))
    cluster = LocalCluster(
        root / "data", size=1, tick_ms=20, authorize=False, extra_args=["--policy", str(policy)]
    )
    cluster.start()
    try:
        cluster.wait_for_leader(timeout_s=60)
        yield cluster
    finally:
        cluster.stop()
        _assert_no_crash(cluster)


def _raw(address: str, *lines: dict[str, Any]) -> list[dict[str, Any]]:
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        for line in lines:
            sock.sendall(json.dumps(line).encode() + b"\n")
        stream = sock.makefile("rb")
        return [json.loads(stream.readline()) for _ in lines]


def _txn_line(args: dict[str, Any], i: int) -> dict[str, Any]:
    payload = {"client_id": "raw", "request_id": f"raw-{i}", "op": "kv_txn", "args": args}
    return {"kind": "ClientRequest", "payload": payload, "t": 0, "v": 1, "id": i}


def test_txn_cannot_write_read_or_probe_around_a_prefix_rule(guarded: LocalCluster) -> None:
    with Client(guarded.addresses, timeout=10, token=OPS_TOKEN) as ops:
        ops.put("secret/x", "hidden")
    attempts = [
        {
            "then": [
                {"type": "put", "key": "app/ok", "value": 1},
                {"type": "put", "key": "secret/x", "value": "pwned"},
            ]
        },
        {"else": [{"type": "delete", "key": "secret/x"}]},  # the branch that "won't run"
        {"then": [{"type": "get", "key": "secret/x"}]},
        {
            "compare": [{"key": "secret/x", "target": "value", "against": "hidden"}],
            "then": [{"type": "put", "key": "app/leak", "value": 1}],
        },
        {"then": [{"type": "put", "key": "apple", "value": 1}]},  # only starts like app/
    ]
    auth = {"kind": "Auth", "payload": {"token": APP_TOKEN}, "t": 0, "v": 1, "id": 0}
    answers = _raw(
        guarded.addresses[0], auth, *(_txn_line(a, i + 1) for i, a in enumerate(attempts))
    )
    assert answers[0]["payload"]["code"] == "OK"
    for answer in answers[1:]:
        assert answer["payload"]["code"] == "FORBIDDEN", answer
        assert "hidden" not in json.dumps(answer)
    with Client(guarded.addresses, timeout=10, token=OPS_TOKEN) as ops:
        assert ops.get("secret/x", with_meta=True)["version"] == 1
        assert ops.get("app/ok") is None and ops.get("app/leak") is None
        assert ops.get("apple") is None
    with Client(guarded.addresses, timeout=10, token=APP_TOKEN) as alice:
        assert alice.txn(then=[Put("app/ok", 1)]).succeeded
