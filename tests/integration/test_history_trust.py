"""Real processes: a forger with a raw socket cannot write history or break a node.

The attacker holds no key. It opens a TCP connection to a node's port and writes
peer messages as JSON lines (``send_peer_lines``: the one place that knows how a
peer line reaches a node; adapt it when peers get their own listener).
"""

from __future__ import annotations

import base64
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner

from resonetics.cli import main
from resonetics.client import Client
from resonetics.localcluster import ClusterTimeout, LocalCluster
from resonetics.machine.kv import KeyValueStore
from resonetics.machine.replicated import ReplicatedKV
from resonetics.raft.entry import Entry, EntryType, make_entry
from resonetics.raft.membership import Membership
from resonetics.raft.messages import AppendEntries, InstallSnapshot, Message
from resonetics.raft.ready import Snapshot, SnapshotMeta
from resonetics.raft.snapshot import checksum_of, encode_payload
from resonetics.security.cluster_key import load_cluster_key
from resonetics.security.signing import (
    load_or_create_node_key,
    registry_from_node_dirs,
    sign_entry_hash,
)
from resonetics.wire.peer import encode_peer
from tests.integration.conftest import _assert_no_crash
from tests.integration.peer_wire import authenticate
from tests.security.history_keys import EVIL

IDS = ("n1", "n2", "n3")


def send_peer_lines(cluster: LocalCluster, target: str, msgs: list[Message]) -> None:
    """Write each of ``msgs`` on a peer link to ``target`` authenticated as its ``src``.

    The forger holds the cluster key (an insider, or a stolen key file): peer
    authentication lets it in, so what stops it here is the history check.
    """
    key = load_cluster_key(cluster.cluster_key_path)
    for msg in msgs:
        conn = authenticate(cluster.nodes[target].peer_address, msg.src, key, target)
        try:
            conn.send_raw(encode_peer(msg, int(time.time() * 1000)))
            assert conn.finish(), f"{target} did not close the link after reading it"
        finally:
            conn.close()


def refusals(cluster: LocalCluster, node: str, expected: dict[str, int]) -> dict[str, Any]:
    """Wait until ``node`` counts exactly ``expected`` refusals; returns its status.

    The forged lines were read (``send_peer_lines``) but the driver steps them a
    moment later: this waits for that, not for a guessed time.
    """

    def counted() -> dict[str, Any] | None:
        st = cluster.status(node)
        return st if st is not None and st["stats"]["refused"] == expected else None

    return cluster.wait_until(f"{node} to count the refusals {expected}", counted)


def attack_a_follower(
    cluster: LocalCluster,
    forge: Callable[[str, str, dict[str, Any]], list[Message]],
    expected: dict[str, int],
    attempts: int = 3,
) -> tuple[str, dict[str, Any]]:
    """Send forged messages built from a follower's current status to it, and wait
    until it has refused them; returns the follower and its status.

    Some refusals are made by the Raft core, which first drops a message of an old
    term: if a real election (a starved leader on a loaded machine) overtook the
    forgery, the follower never judged it. That is retried in the new term; a
    forgery judged and accepted still fails the test.
    """
    for attempt in range(1, attempts + 1):
        leader, follower, st = a_follower(cluster)
        before = st["stats"]["refused"]
        send_peer_lines(cluster, follower, forge(follower, leader, st))
        try:
            return follower, refusals(cluster, follower, expected)
        except ClusterTimeout:
            now = cluster.status(follower)
            overtaken = now is not None and now["term"] != st["term"]
            if not overtaken or now["stats"]["refused"] != before or attempt == attempts:
                raise
    raise AssertionError("unreachable")


def registry_cluster(tmp_path: Path, *extra: str) -> LocalCluster:
    """A 3-node cluster whose nodes all hold the trust registry of their keys."""
    data = tmp_path / "data"
    for node in IDS:
        load_or_create_node_key(data / node)
    registry = tmp_path / "registry.toml"
    registry.write_text(registry_from_node_dirs({n: data / n for n in IDS}).to_toml())
    return LocalCluster(
        data, size=3, tick_ms=20, extra_args=["--trust-registry", str(registry), *extra]
    )


@pytest.fixture
def signed3(tmp_path: Path) -> Iterator[LocalCluster]:
    cluster = registry_cluster(tmp_path, "--snapshot-entries", "40")
    cluster.start()
    try:
        cluster.wait_for_leader(timeout_s=60)
        yield cluster
    finally:
        cluster.stop()
        _assert_no_crash(cluster)


def a_follower(cluster: LocalCluster) -> tuple[str, str, dict[str, Any]]:
    leader, _ = cluster.wait_until_settled(timeout_s=60)
    follower = next(n for n in IDS if n != leader)
    st = cluster.status(follower)
    assert st is not None
    return leader, follower, st


def node_log(cluster: LocalCluster, node: str) -> str:
    return (cluster.data_dir / f"{node}.log").read_text(errors="replace")


def test_signed_cluster_with_registries_commits_and_verifies(
    signed3: LocalCluster, tmp_path: Path
) -> None:
    with Client(signed3.addresses, timeout=15) as client:
        for i in range(60):
            client.put(f"k{i}", i)
        assert client.get("k59") == 59
    signed3.stop()
    result = CliRunner().invoke(
        main,
        [
            "verify",
            str(signed3.data_dir),
            "--keys",
            str(tmp_path / "registry.toml"),
            "--require-signed",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "unsigned" not in result.output
    assert "snapshot signature n" in result.output and "valid by n" in result.output


def forged_append(
    follower: str, st: dict[str, Any], src: str, term: int, author: str
) -> AppendEntries:
    prev = Entry(term=0, index=st["last_index"], type=EntryType.NOOP, hash=st["last_hash"])
    entry = make_entry(prev.hash, term, prev.index + 1, EntryType.CLIENT_CMD, {"op": "kv_set"})
    sig = sign_entry_hash(EVIL, author, entry.hash).sig
    entry = msgspec.structs.replace(entry, author=author, sig=sig)
    return AppendEntries(
        src=src,
        dst=follower,
        term=term,
        leader_id=src,
        prev_log_index=prev.index,
        prev_log_term=st["term"],
        prev_log_hash=prev.hash,
        entries=[entry],
        leader_commit=prev.index + 1,
    )


def test_forged_entry_from_an_unregistered_author_is_dropped_and_the_node_keeps_following(
    signed3: LocalCluster,
) -> None:
    leader, follower, st = a_follower(signed3)
    term = st["term"]
    forged = [
        forged_append(follower, st, "evil", term + 1_000_000, "evil"),
        forged_append(follower, st, leader, term, "evil"),  # in the leader's name
        forged_append(follower, st, leader, term, leader),  # the leader's name, not its key
    ]
    send_peer_lines(signed3, follower, forged)
    # The history gate judges AppendEntries before the core, in any term.
    after = refusals(
        signed3,
        follower,
        {"unregistered_sender": 1, "entry_not_by_terms_leader": 1, "entry_bad_signature": 1},
    )
    # A real election may have happened meanwhile (a loaded machine); the forged term
    # and the forged leader never took.
    assert after["term"] < term + 1_000_000, f"the forged term took: {after}"
    assert after["leader"] in (None, *IDS), f"follower follows a stranger: {after}"
    with Client(signed3.addresses, timeout=15) as client:
        client.put("after", 1)
        assert client.get("after") == 1
    assert "refused AppendEntries from evil: unregistered_sender" in node_log(signed3, follower)


def snapshot_stream(
    follower: str, leader: str, st: dict[str, Any], data: bytes, total: int | None = None
) -> list[InstallSnapshot]:
    index = st["last_index"] + 1000
    meta = SnapshotMeta(index, st["term"], "cd" * 32, Membership(voters=IDS))
    payload = encode_payload(Snapshot(meta, data))
    return [
        InstallSnapshot(
            src=leader,
            dst=follower,
            term=st["term"],
            leader_id=leader,
            last_included_index=index,
            last_included_term=st["term"],
            last_included_hash=meta.last_included_hash,
            offset=0,
            data=base64.b64encode(payload).decode(),
            done=total is None,
            checksum=checksum_of(payload),
            total_bytes=total if total is not None else len(payload),
        )
    ]


def test_snapshot_with_garbage_state_is_refused_and_the_node_stays_up(
    cluster3: LocalCluster,
) -> None:
    # Judged by the core once the stream assembled: a stream of an old term is not.
    follower, after = attack_a_follower(
        cluster3,
        lambda follower, leader, st: snapshot_stream(
            follower, leader, st, b"\x00garbage, not a state\xff" * 50
        ),
        {"snapshot_garbage_state": 1},
    )
    assert after["snapshot"]["installed"] == 0, f"the garbage was installed: {after}"
    assert not (cluster3.data_dir / follower / "snapshot.incoming.tmp").exists()
    with Client(cluster3.addresses, timeout=15) as client:
        client.put("after", 1)
    assert cluster3.exit_codes()[follower] is None


def _state_unreadable_past_its_first_slice() -> bytes:
    """A replicated state that decodes as a whole, with one row of the store unreadable
    in its second slice of rows: only a step well into the reading finds it."""
    store = KeyValueStore()
    for i in range(5_200):
        store.set(f"k{i:04d}", 0)
    rows = msgspec.json.decode(store.snapshot())
    rows["items"][5_100][2] = "not an index"
    machine = msgspec.json.encode(rows)
    head = msgspec.json.decode(ReplicatedKV().snapshot().split(b"\n", 1)[0])
    head["machine_bytes"] = len(machine)
    return msgspec.json.encode(head) + b"\n" + machine


def test_snapshot_whose_state_breaks_midway_through_the_reading_is_refused_and_the_node_stays_up(
    cluster3: LocalCluster,
) -> None:
    """A follower reads a received state a slice per loop turn before installing it; a
    slice that cannot be read refuses the snapshot then and there, spool and all."""
    state = _state_unreadable_past_its_first_slice()
    follower, after = attack_a_follower(
        cluster3,
        lambda follower, leader, st: snapshot_stream(follower, leader, st, state),
        {"snapshot_garbage_state": 1},
    )
    assert after["snapshot"]["installed"] == 0, f"the broken state was installed: {after}"
    assert not (cluster3.data_dir / follower / "snapshot.incoming.tmp").exists()
    assert "refused snapshot from ?: snapshot_garbage_state" in node_log(cluster3, follower)
    with Client(cluster3.addresses, timeout=15) as client:
        client.put("after", 1)
        assert client.get("after") == 1
    assert cluster3.exit_codes()[follower] is None


def test_snapshot_stream_over_the_size_cap_is_refused(cluster3: LocalCluster) -> None:
    leader, follower, st = a_follower(cluster3)
    huge = 600 * 1024 * 1024 * 1024  # declared 600 GiB, far over the default 1 GiB cap
    send_peer_lines(
        cluster3,
        follower,
        snapshot_stream(follower, leader, st, b"x" * 1000, total=huge),
    )
    refusals(cluster3, follower, {"snapshot_too_large": 1})  # by the gate, in any term
    assert not (cluster3.data_dir / follower / "snapshot.incoming.tmp").exists()


def test_unsigned_snapshot_is_refused_with_a_registry(signed3: LocalCluster) -> None:
    leader, follower, st = a_follower(signed3)
    send_peer_lines(
        signed3,
        follower,
        snapshot_stream(follower, leader, st, b"\x00garbage"),
    )
    after = refusals(signed3, follower, {"unsigned_snapshot": 1})  # by the gate, in any term
    assert after["snapshot"]["installed"] == 0, f"the unsigned snapshot was installed: {after}"


def test_sighup_rereads_the_trust_registry_and_refuses_one_without_the_nodes_own_key(
    signed3: LocalCluster, tmp_path: Path
) -> None:
    """Key rotation without a restart. The followers' new registry no longer holds the
    leader's key: from the next message they refuse it, elect a node they trust, and
    writes commit under it. The old leader refuses a registry without its own key (it
    keeps its own, so it follows the new leader). The full registry put back and re-read,
    every node holds every write."""
    path = tmp_path / "registry.toml"
    full = path.read_text()
    leader, _, _ = a_follower(signed3)
    without_leader = "".join(
        line for line in full.splitlines(keepends=True) if not line.startswith(f'"{leader}"')
    )
    assert without_leader != full
    path.write_text(without_leader)
    for node in IDS:
        signed3.signal_node(node, signal.SIGHUP)
    followers = [n for n in IDS if n != leader]
    for node in followers:
        signed3.wait_until(
            f"{node} re-reads the registry and refuses {leader}",
            lambda n=node: (
                f"refused AppendEntries from {leader}: unregistered_sender" in node_log(signed3, n)
            ),
        )
    signed3.wait_until(
        f"{leader} refuses a registry without its own key",
        lambda: (
            "trust registry reload refused, keeping the current one" in node_log(signed3, leader)
        ),
    )

    def trusted_leader() -> str | None:
        st = signed3.status(followers[0])
        return st["leader"] if st is not None and st["leader"] in followers else None

    signed3.wait_until("a leader whose key the followers hold", trusted_leader, 60)
    with Client(signed3.addresses, timeout=30) as client:
        client.put("under-a-trusted-leader", 1)
    path.write_text('[nodes]\n"n1" = "not a key"\n')  # an operator's broken file
    signed3.signal_node(followers[0], signal.SIGHUP)
    signed3.wait_until(
        f"{followers[0]} refuses a registry that does not load",
        lambda: node_log(signed3, followers[0]).count("trust registry reload refused") == 1,
    )
    path.write_text(full)
    for node in followers:
        signed3.signal_node(node, signal.SIGHUP)
    with Client(signed3.addresses, timeout=30) as client:
        client.put("trusted-again", 1)
    signed3.wait_until(
        "every node applies every write",
        lambda: (
            len({(st["applied_index"] if st else None) for st in (signed3.status(n) for n in IDS)})
            == 1
        ),
    )
