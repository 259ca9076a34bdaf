"""Cost of enforced signatures on the write path: pipelined puts with and without.

Not a test: run ``python -m bench.signing_bench [--inflight 64,256] [--seconds 4]``.
For each setting it starts a fresh local 3-node cluster, then keeps ``inflight``
puts outstanding through one ``AsyncClient`` for ``seconds`` after a 1 s warm-up and
reports writes per second. The two settings run back to back in one invocation, so
their ratio is the figure to quote (absolute numbers depend on the machine):

* ``plain``: no signing, no checks (the default);
* ``registry``: ``--trust-registry`` on every node: the leader signs each entry
  (Ed25519) and each follower checks every entry's signature before stepping it.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from bench.write_load import pipelined_puts
from resonetics.localcluster import LocalCluster
from resonetics.security.signing import load_or_create_node_key, registry_from_node_dirs

IDS = ("n1", "n2", "n3")


def run(setting: str, inflight: int, seconds: float) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        extra: list[str] = []
        if setting == "registry":
            for node in IDS:
                load_or_create_node_key(data / node)
            registry = Path(tmp) / "registry.toml"
            registry.write_text(registry_from_node_dirs({n: data / n for n in IDS}).to_toml())
            extra = ["--trust-registry", str(registry)]
        with LocalCluster(data, size=3, extra_args=extra) as cluster:
            cluster.wait_for_leader(timeout_s=60)
            return asyncio.run(pipelined_puts(cluster.addresses, inflight, seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--inflight", default="64,256")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs per setting")
    args = parser.parse_args()
    for inflight in (int(x) for x in args.inflight.split(",")):
        results: dict[str, list[float]] = {"plain": [], "registry": []}
        for _ in range(args.rounds):
            for setting, runs in results.items():
                runs.append(run(setting, inflight, args.seconds))
        plain = max(results["plain"])
        signed = max(results["registry"])
        every = ", ".join(f"{k}={[round(v) for v in vs]}" for k, vs in results.items())
        print(
            f"inflight={inflight}: plain {plain:.0f} w/s, registry {signed:.0f} w/s "
            f"(ratio {signed / plain:.2f}); runs {every}"
        )


if __name__ == "__main__":
    main()
