"""docs/images/dashboard.png: the dashboard of a live 3-node cluster under a small load.

Run ``python -m bench.dashboard_screenshot [OUT]`` (or ``make docs-screenshot``). It
starts a local cluster with HTTP in a temp dir, writes from a few threads for
``--seconds``, kills the leader half way and restarts it (so the events list shows an
election), then photographs a surviving follower's ``/dashboard`` with Debian's
chromium driven by Playwright. Needs ``chromium`` (``make browser``) and the dev extra.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from resonetics.errors import ResoneticsError
from resonetics.localcluster import LocalCluster

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "docs" / "images" / "dashboard.png"


def _load(cluster: LocalCluster, stop: threading.Event, worker: int) -> None:
    """Write keys until ``stop``; errors during the election are retried by the client."""
    with cluster.admin_client(timeout=10.0) as client:
        i = 0
        while not stop.is_set():
            try:
                client.put(f"screenshot/{worker}/{i % 500}", {"n": i})
            except (ResoneticsError, OSError):  # a write lost to the election: go on
                time.sleep(0.1)
            i += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seconds", type=float, default=40.0, help="load before the picture")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("needs chromium: apt-get install -y chromium (or make browser)")
    with tempfile.TemporaryDirectory(prefix="resonetics-dashboard-") as tmp:
        cluster = LocalCluster(Path(tmp) / "data", size=3, tick_ms=20, http=True)
        cluster.start()
        stop = threading.Event()
        try:
            cluster.wait_for_leader(timeout_s=60)
            workers = [
                threading.Thread(target=_load, args=(cluster, stop, w), daemon=True)
                for w in range(4)
            ]
            for w in workers:
                w.start()
            time.sleep(args.seconds / 2)
            leader, _ = cluster.wait_for_leader(timeout_s=60)
            cluster.kill_node(leader)
            time.sleep(3)
            cluster.start_node(leader)
            time.sleep(args.seconds / 2)
            watcher = next(n for n in cluster.nodes if n != leader)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1180, "height": 860})
                page.goto(f"http://{cluster.nodes[watcher].http_address}/dashboard")
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:  # the page's CSP forbids wait_for_function
                    shown = page.eval_on_selector("#summary", "el => el.dataset.leaders")
                    if shown == "1":
                        break
                    page.wait_for_timeout(200)
                page.wait_for_timeout(2500)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out), full_page=True)
                browser.close()
        finally:
            stop.set()
            cluster.stop()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
