"""Cost of authentication and authorization on the write path: pipelined puts with and without.

Not a test: run ``python -m bench.auth_bench [--inflight 64,256] [--seconds 4] [--rounds 2]``.
For each setting it starts a fresh local 3-node cluster, keeps ``inflight`` puts
outstanding through ``AsyncClient``s (one per 64 in flight) for ``seconds`` after a
1 s warm-up, and reports writes per second. Settings alternate within one
invocation, so their ratio is the figure to quote:

* ``open``: no cluster key and no policy (peers unauthenticated, allowed on
  loopback only; every client reads and writes; the Auth line is never sent);
* ``authenticated``: peer links proven with the cluster key, a policy on every
  node, and clients presenting a token that the policy checks on every request.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from bench.write_load import pipelined_puts
from resonetics.localcluster import LocalCluster

SETTINGS = ("open", "authenticated")


def run(setting: str, inflight: int, seconds: float) -> float:
    secure = setting == "authenticated"
    with tempfile.TemporaryDirectory() as tmp:
        cluster = LocalCluster(Path(tmp) / "data", size=3, use_cluster_key=secure, authorize=secure)
        with cluster:
            cluster.wait_for_leader(timeout_s=60)
            token = cluster.admin_token if secure else None
            return asyncio.run(pipelined_puts(cluster.addresses, inflight, seconds, token))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--inflight", default="1,64,256")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs per setting")
    args = parser.parse_args()
    for inflight in (int(x) for x in args.inflight.split(",")):
        results: dict[str, list[float]] = {s: [] for s in SETTINGS}
        for _ in range(args.rounds):
            for setting, runs in results.items():
                runs.append(run(setting, inflight, args.seconds))
        best = {s: max(runs) for s, runs in results.items()}
        every = ", ".join(f"{k}={[round(v) for v in vs]}" for k, vs in results.items())
        print(
            f"inflight={inflight}: open {best['open']:.0f} w/s, authenticated "
            f"{best['authenticated']:.0f} w/s (ratio {best['authenticated'] / best['open']:.2f});"
            f" runs {every}"
        )


if __name__ == "__main__":
    main()
