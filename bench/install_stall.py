"""How long a follower's loop stops while it installs a large snapshot (not a test).

``python -m bench.install_stall [--keys 1000000] [--inflight 256] [-- serve flags]``
starts a local 3-node cluster, stops one follower, fills the store with KEYS distinct
random keys (100-byte values) until the leader has taken a snapshot past everything
the stopped follower holds, then starts the follower again: it can only catch up by
installing that snapshot. It prints how long the follower took to install it, its
event loop's stalls (``status`` → ``loop``: a stall is a tick a third of an election
timeout late) and worst stall, whether the leader kept its term meanwhile, and
whether the state was read before the install (``snapshot`` → ``installed_read``).
Compare two trees by running each tree's copy; ``--data-dir`` keeps each node's log
(its ``loop_stalled`` and ``snapshot_installed`` lines say when).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.large_store import _writes
from resonetics.localcluster import LocalCluster

POLL_S = 0.2


def _status(cluster: LocalCluster, node_id: str) -> dict[str, Any]:
    status = cluster.status(node_id, timeout_s=10.0)
    if status is None:
        raise SystemExit(f"{node_id} does not answer status")
    return status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--inflight", type=int, default=256)
    parser.add_argument("--snapshot-entries", type=int, default=100_000)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--data-dir", help="keep the nodes' folders and logs here")
    parser.add_argument("serve", nargs="*", help="extra flags for every node's serve")
    args = parser.parse_args()
    rng = random.Random(7)
    keys = [f"key-{rng.getrandbits(64):016x}" for _ in range(args.keys)]
    extra = ["--snapshot-entries", str(args.snapshot_entries), "--rate-limit", "0/s"]
    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalCluster(
            Path(args.data_dir or tmp),
            size=3,
            log_level="info",
            extra_args=[*extra, *args.serve],
        ) as cluster,
    ):
        leader, _ = cluster.wait_for_leader()
        follower = next(n for n in sorted(cluster.nodes) if n != leader)
        held = _status(cluster, follower)["last_index"]
        cluster.stop_node(follower)
        addresses = [cluster.nodes[leader].address] + [
            cluster.nodes[n].address for n in sorted(cluster.nodes) if n not in (leader,)
        ]
        took = asyncio.run(_writes(addresses, keys, args.inflight))
        print(f"filled {len(keys):,} keys in {took:.1f} s; {follower} held {held} entries")
        deadline = time.monotonic() + args.timeout
        while _status(cluster, leader)["snapshot"]["log_first_index"] <= held + 1:
            if time.monotonic() > deadline:
                raise SystemExit("the leader never compacted past the follower")
            time.sleep(POLL_S)
        before = _status(cluster, leader)
        started = time.monotonic()
        cluster.start_node(follower)
        while True:
            status = cluster.status(follower, timeout_s=10.0)
            if status is not None and status["snapshot"]["installed"] >= 1:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"{follower} installed nothing in time")
            time.sleep(POLL_S)
        installed_s = time.monotonic() - started
        after = _status(cluster, leader)
        loop, snap = status["loop"], status["snapshot"]
        print(
            f"{follower}: installed a {snap['bytes'] / 1e6:.0f} MB snapshot at index "
            f"{snap['index']} {installed_s:.1f} s after its start; read before the "
            f"install: {snap.get('installed_read', 'n/a')}; loop stalls {loop['stalls']}, "
            f"worst {loop['worst_stall_ms']} ms"
        )
        kept = after["role"] == "leader" and after["term"] == before["term"]
        print(
            f"leader {leader}: term {before['term']} -> {after['term']}, "
            f"{'kept' if kept else 'LOST'} its leadership; its loop stalls while the "
            f"follower caught up: {after['loop']['stalls'] - before['loop']['stalls']}"
        )


if __name__ == "__main__":
    main()
