"""Real processes: scan cursors, versions and transactions on the HTTP port.

One 3-node cluster: scans paged with ``after`` over more keys than a page, a
consistent paged scan refused 409 when its range changes, versions with
``meta=1``, ``POST /v1/txn`` down both branches, exactly once with an
``Idempotency-Key``, redirected from a follower, and refused 400 naming the field.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from resonetics.localcluster import LocalCluster
from tests.integration.conftest import _assert_no_crash
from tests.integration.http_helpers import Reply, call


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = LocalCluster(
        tmp_path_factory.mktemp("http-txn") / "data", size=3, tick_ms=20, http=True
    )
    cluster.start()
    try:
        cluster.wait_for_leader(timeout_s=60)
        yield cluster
    finally:
        cluster.stop()
        _assert_no_crash(cluster)


def _leader(cluster: LocalCluster) -> str:
    leader, _ = cluster.wait_until_settled(timeout_s=30)
    address = cluster.nodes[leader].http_address
    assert address is not None
    return address


def _follower(cluster: LocalCluster) -> str:
    leader, _ = cluster.wait_until_settled(timeout_s=30)
    address = next(n.http_address for i, n in cluster.nodes.items() if i != leader)
    assert address is not None
    return address


def _txn(address: str, body: Any, **headers: str) -> Reply:
    return call(address, "POST", "/v1/txn", body, headers=headers)


def _put_all(address: str, keys: dict[str, Any]) -> int:
    body = {"then": [{"type": "put", "key": k, "value": v} for k, v in keys.items()]}
    reply = _txn(address, body)
    assert reply.status == 200, reply.text
    index: int = reply.json["receipt"]["index"]
    return index


def test_http_scan_pages_with_after_over_more_keys_than_the_limit(cluster: LocalCluster) -> None:
    address = _leader(cluster)
    for start in range(0, 250, 50):
        _put_all(address, {f"page/{i:04}": i for i in range(start, start + 50)})
    _put_all(address, {"pagex": "outside", "pag": "outside"})
    # Read from a follower: reads are served by any node.
    reader = _follower(cluster)
    keys: list[str] = []
    query = "prefix=page/&limit=100"
    pages = 0
    while True:
        page = call(reader, "GET", f"/v1/kv?{query}").json
        pages += 1
        assert len(page["items"]) <= 100
        keys += [item["key"] for item in page["items"]]
        if not page["more"]:
            assert page["next"] is None
            break
        assert page["next"] == page["items"][-1]["key"]
        query = f"prefix=page/&limit=100&after={page['next']}"
    assert pages == 3
    assert keys == [f"page/{i:04}" for i in range(250)]


def test_http_consistent_scan_is_409_scan_changed_naming_the_key(cluster: LocalCluster) -> None:
    address = _leader(cluster)
    _put_all(address, {f"moving/{i}": i for i in range(6)})
    first = call(address, "GET", "/v1/kv?prefix=moving/&limit=2").json
    at = first["index"]
    second = call(
        address, "GET", f"/v1/kv?prefix=moving/&limit=2&after={first['next']}&at_index={at}"
    )
    assert second.status == 200 and [i["key"] for i in second.json["items"]] == [
        "moving/2",
        "moving/3",
    ]
    assert call(address, "PUT", "/v1/kv/moving/4", "changed").status == 200
    refused = call(
        address, "GET", f"/v1/kv?prefix=moving/&limit=2&after=moving/3&consistent_index={at}"
    )
    assert refused.status == 409, refused.text
    body = refused.json
    assert body["code"] == "SCAN_CHANGED" and body["key"] == "moving/4"
    assert body["at_index"] == at and body["index"] > at
    assert "moving/4" in body["message"]


def test_http_reads_with_meta_return_versions(cluster: LocalCluster) -> None:
    address = _leader(cluster)
    created = call(address, "PUT", "/v1/kv/ver/a", 1).json["receipt"]["index"]
    modified = call(address, "PUT", "/v1/kv/ver/a", 2).json["receipt"]["index"]
    got = call(address, "GET", "/v1/kv/ver/a?meta=1").json
    assert (got["value"], got["version"]) == (2, 2)
    assert (got["create_index"], got["mod_index"]) == (created, modified)
    plain = call(address, "GET", "/v1/kv/ver/a").json
    assert "version" not in plain
    scanned = call(address, "GET", "/v1/kv?prefix=ver/&meta=true").json["items"]
    assert scanned == [
        {"key": "ver/a", "value": 2, "create_index": created, "mod_index": modified, "version": 2}
    ]
    bad = call(address, "GET", "/v1/kv/ver/a?meta=yes")
    assert bad.status == 400 and bad.json["message"].startswith("meta")


def test_http_txn_runs_then_or_else_atomically(cluster: LocalCluster) -> None:
    address = _leader(cluster)
    assert call(address, "PUT", "/v1/kv/acct/a", 10).status == 200
    move = {
        "compare": [
            {"key": "acct/a", "target": "value", "op": "==", "against": 10},
            {"key": "acct/b", "target": "exists", "against": False},
        ],
        "then": [
            {"type": "put", "key": "acct/a", "value": 0},
            {"type": "put", "key": "acct/b", "value": 10},
            {"type": "get", "key": "acct/a"},
        ],
        "else": [{"type": "get", "key": "acct/a"}],
    }
    won = _txn(address, move)
    assert won.status == 200 and won.json["succeeded"] is True, won.text
    receipt = won.json["receipt"]
    put_a, put_b, get_a = won.json["responses"]
    assert put_a["index"] == put_b["index"] == receipt["index"]
    assert get_a["value"] == 0 and get_a["version"] == 2
    lost = _txn(address, move)  # the compares now fail: the else branch runs
    assert lost.status == 200 and lost.json["succeeded"] is False
    assert [r["value"] for r in lost.json["responses"]] == [0]
    assert call(address, "GET", "/v1/kv/acct/b").json["value"] == 10


def test_http_txn_with_an_idempotency_key_is_applied_once(cluster: LocalCluster) -> None:
    address = _leader(cluster)
    body = {"then": [{"type": "put", "key": "once/t", "value": 1}]}
    first = _txn(address, body, **{"Idempotency-Key": "txn-1"})
    again = _txn(address, body, **{"Idempotency-Key": "txn-1"})
    assert first.json["dedup"] is False and again.json["dedup"] is True
    assert again.json["receipt"] == first.json["receipt"]
    assert call(address, "GET", "/v1/kv/once/t?meta=1").json["version"] == 1


def test_http_txn_on_a_follower_is_redirected_to_the_leader(cluster: LocalCluster) -> None:
    leader = _leader(cluster)
    reply = _txn(_follower(cluster), {"then": [{"type": "put", "key": "r/t", "value": 1}]})
    assert reply.status == 307, reply.text
    assert reply.headers["Location"] == f"http://{leader}/v1/txn"
    assert reply.json["code"] == "NOT_LEADER"
    assert call(leader, "GET", "/v1/kv/r/t").status == 404, "the follower applied nothing"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([1, 2], "body"),
        ({"thn": []}, "thn"),
        ({"compare": [{"key": "k", "target": "colour", "against": 1}]}, "compare[0].target"),
        ({"compare": [{"key": "k", "target": "version", "against": "1"}]}, "compare[0].against"),
        ({"then": [{"type": "increment", "key": "k"}]}, "then[0].type"),
        ({"then": [{"type": "put", "key": "k"}]}, "then[0].value"),
        ({"else": [{"type": "get", "key": ""}]}, "else[0].key"),
        ({"then": [{"type": "delete", "key": "k"}, {"type": "put", "key": "k", "value": 1}]},
         "then[1].key"),
    ],
)  # fmt: skip
def test_http_bad_txn_body_is_400_naming_the_field(
    cluster: LocalCluster, body: Any, field: str
) -> None:
    reply = _txn(_leader(cluster), body)
    assert reply.status == 400 and reply.json["code"] == "BAD_REQUEST", reply.text
    assert reply.json["message"].startswith(field), reply.text
    assert "args." not in reply.json["message"]
    assert "Traceback" not in reply.text
