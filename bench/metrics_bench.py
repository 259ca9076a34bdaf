"""Cost of metrics on the write path: pipelined puts without HTTP, with it, and scraped.

Not a test: run ``python -m bench.metrics_bench [--inflight 1,64] [--seconds 4] [--rounds 2]``.
For each setting it starts a fresh local 3-node cluster, keeps ``inflight`` puts
outstanding through ``AsyncClient``s (``bench/write_load.py``) for ``seconds`` after a
1 s warm-up, and reports writes per second. Settings alternate within one
invocation, so their ratio to ``off`` is the figure to quote:

* ``off``: no ``--listen-http``: no metrics objects, no hooks on the write path;
* ``http``: ``--listen-http`` on every node: the fsync and apply histograms and the
  round-trip and proposal counters are observed on every write, nobody scrapes;
* ``scraped``: as ``http``, and every node's ``/metrics`` is fetched once a second
  (as a Prometheus server would, at 1 s rather than the usual 15 s).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from bench.write_load import pipelined_puts
from resonetics.localcluster import LocalCluster

SETTINGS = ("off", "http", "scraped")
#: Seconds between two scrapes of every node in the ``scraped`` setting.
SCRAPE_INTERVAL_S = 1.0


def _scrape_until(stop: threading.Event, addresses: list[str], counts: list[int]) -> None:
    while not stop.wait(SCRAPE_INTERVAL_S):
        for address in addresses:
            with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as reply:
                reply.read()
            counts[0] += 1


def run(setting: str, inflight: int, seconds: float) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        cluster = LocalCluster(Path(tmp) / "data", size=3, http=setting != "off")
        with cluster:
            cluster.wait_for_leader(timeout_s=60)
            stop, counts = threading.Event(), [0]
            http = [n.http_address for n in cluster.nodes.values() if n.http_address]
            scraper = threading.Thread(target=_scrape_until, args=(stop, http, counts))
            if setting == "scraped":
                scraper.start()
            try:
                rate = asyncio.run(pipelined_puts(cluster.addresses, inflight, seconds))
            finally:
                stop.set()
                if scraper.is_alive():
                    scraper.join()
            return rate, counts[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--inflight", default="1,64")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs per setting")
    args = parser.parse_args()
    for inflight in (int(x) for x in args.inflight.split(",")):
        results: dict[str, list[float]] = {s: [] for s in SETTINGS}
        scrapes = 0
        started = time.monotonic()
        for _ in range(args.rounds):
            for setting, runs in results.items():
                rate, scraped = run(setting, inflight, args.seconds)
                runs.append(rate)
                scrapes += scraped
        best = {s: max(runs) for s, runs in results.items()}
        every = ", ".join(f"{k}={[round(v) for v in vs]}" for k, vs in results.items())
        print(
            f"inflight={inflight}: off {best['off']:.0f} w/s, http {best['http']:.0f} "
            f"({best['http'] / best['off']:.2f}), scraped {best['scraped']:.0f} "
            f"({best['scraped'] / best['off']:.2f}); {scrapes} scrapes; runs {every}; "
            f"{time.monotonic() - started:.0f} s"
        )


if __name__ == "__main__":
    main()
