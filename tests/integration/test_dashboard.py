"""The dashboard in a real headless browser (Debian's chromium, driven by Playwright).

A 3-node cluster with HTTP: the page on a follower shows three members, one leader,
one term and a nonzero commit index; after the leader is killed its event list shows
the leader change. The page renders hostile feed data as text (no script runs), and
with a policy its feeds need the monitor role, given as a token typed into the page.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright

from resonetics.localcluster import LocalCluster
from resonetics.security.policy_files import starter_policy, write_policy, write_token_file
from resonetics.server.dashboard import dashboard_page
from tests.integration.http_helpers import call

#: Each wait on the page; each test is bounded at a minute (about 7 s when the machine is idle).
DEADLINE_S = 30.0
pytestmark = pytest.mark.timeout(60)
ADMIN_TOKEN = "admin-" + "d" * 40


def chromium_path() -> str:
    """Debian's chromium; a clear failure (never a skip) when it is missing."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(
            "the dashboard's browser test needs chromium: `apt-get install -y chromium` "
            "(Debian bookworm; `make browser` does it when run as root)"
        )
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        launched = pw.chromium.launch(
            executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield launched
        finally:
            launched.close()


def _no_traceback(cluster: LocalCluster) -> None:
    for node_id in cluster.nodes:
        log = (cluster.data_dir / f"{node_id}.log").read_text(errors="replace")
        assert "Traceback" not in log, f"{node_id} crashed:\n{log[-3000:]}"


def _summary(page: Page) -> dict[str, str]:
    data: dict[str, str] = page.eval_on_selector("#summary", "el => ({...el.dataset})")
    return data


def _wait(page: Page, what: str, check: Any) -> Any:
    """Poll ``check()`` until it is truthy or the deadline passes (then fail saying what)."""
    deadline = time.monotonic() + DEADLINE_S
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        page.wait_for_timeout(200)
    error = page.text_content("#error")
    raise AssertionError(f"dashboard never showed {what}: last {last!r}; page error {error!r}")


def test_dashboard_shows_members_leader_and_the_leader_change(
    tmp_path: Path, browser: Browser
) -> None:
    cluster = LocalCluster(tmp_path / "data", size=3, tick_ms=20, http=True)
    cluster.start()
    try:
        cluster.wait_for_leader(timeout_s=30)
        with cluster.admin_client() as client:
            for i in range(20):
                client.put(f"dash/{i}", i)
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        seen: list[dict[str, str]] = []

        def settled() -> str | None:
            """The leader the page shows, once it shows a settled cluster."""
            s = _summary(page)
            seen.append(s)
            ok = (
                s.get("members") == "3"
                and s.get("leaders") == "1"
                and "," not in s.get("terms", ",")
                and int(s.get("commit") or "0") >= 20
            )
            return s["leader"] if ok else None

        def open_on(node_id: str) -> str:
            page.goto(f"http://{cluster.nodes[node_id].http_address}/dashboard")
            shown: str = _wait(page, "3 members, one leader, one term, commit >= 20", settled)
            return shown

        leader = open_on("n1")
        watcher = "n1"
        if leader == watcher:  # watch from a node that stays up
            watcher = "n2"
            leader = open_on(watcher)
        assert leader != watcher, seen[-3:]
        rows = page.eval_on_selector_all("#members tbody tr", "rs => rs.map(r => r.dataset.node)")
        assert sorted(rows) == ["n1", "n2", "n3"]
        assert page.text_content("#error") == ""
        page.screenshot(path=str(tmp_path / "dashboard.png"))
        assert (tmp_path / "dashboard.png").stat().st_size > 10_000

        cluster.kill_node(leader)

        def changed() -> list[str] | None:
            texts: list[str] = page.eval_on_selector_all(
                "#events li[data-event=leader_changed]", "ls => ls.map(l => l.textContent)"
            )
            moved = [t for t in texts if f"old={leader}" in t]
            return moved or None

        moved = _wait(page, f"a leader_changed event away from {leader}", changed)
        assert f"new={leader}" not in moved[0]

        def new_leader() -> dict[str, str] | None:
            s = _summary(page)
            return s if s.get("leaders") == "1" and s.get("leader") not in ("", leader) else None

        _wait(page, "a new leader", new_leader)
        down = page.text_content(f"#members tbody tr[data-node={leader}]") or ""
        assert "unreachable" in down
    finally:
        cluster.stop()
    _no_traceback(cluster)


def _ready(address: str) -> bool:
    try:
        return call(address, "GET", "/ready", timeout=2.0).status == 200
    except OSError:
        return False


def _fulfil_json(body: dict[str, Any]) -> Any:
    def handler(route: Route) -> None:
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    return handler


def test_dashboard_xss_attempt_in_node_ids_and_events_is_shown_as_text(browser: Browser) -> None:
    """Feeds that carry markup (a node id, an event field, a hash, a peer's error):
    shown verbatim, no element made of it, no script run."""
    script = "<script>window.__pwned = 1</script>"
    img = '<img src=x onerror="window.__pwned = 2">'
    member = {
        "id": img,
        "node": img,
        "role": "leader",
        "term": 1,
        "commit_index": 5,
        "applied_index": 5,
        "lag": 0,
        "applied_hash": script,
        "reachable": True,
        "self": True,
    }
    down = {"id": "n2", "reachable": False, "error": script, "self": False}
    cluster = {
        "ok": True,
        "node": img,
        "members": [member, down],
        "samples": [],
        "samples_from": script,
    }
    events = {
        "ok": True,
        "seq": 1,
        "events": [{"seq": 1, "time": 0, "event": script, "fields": {"new": img, "why": script}}],
    }
    page = browser.new_page()
    page.route(
        "http://dash.test/dashboard",
        lambda route: route.fulfill(status=200, content_type="text/html", body=dashboard_page()),
    )
    page.route("http://dash.test/v1/cluster", _fulfil_json(cluster))
    page.route("http://dash.test/v1/events*", _fulfil_json(events))
    page.goto("http://dash.test/dashboard")
    page.wait_for_selector("#events li", timeout=DEADLINE_S * 1000)
    page.wait_for_timeout(500)  # any injected handler would have run by now
    assert page.evaluate("window.__pwned") is None
    assert page.eval_on_selector_all("img", "els => els.length") == 0
    assert page.eval_on_selector_all("body script", "els => els.length") == 1  # the page's own
    event_text = page.text_content("#events li") or ""
    assert script in event_text and img in event_text
    table = page.text_content("#members") or ""
    assert img in table and script[:16] in table and "unreachable: " + script in table
    assert img in (page.text_content("#node") or "")
    assert script in (page.text_content("#sampled") or "")


def test_dashboard_feeds_need_the_monitor_role_and_the_page_sends_the_typed_token(
    tmp_path: Path, browser: Browser
) -> None:
    """Anonymous may do nothing: the page loads (it holds no data) but its feeds are
    refused and say so; a wrong token is 401; the admin token typed into the page works."""
    data = tmp_path / "data"
    data.mkdir()
    write_token_file(data / "admin.token", ADMIN_TOKEN)
    write_policy(data / "policy.toml", starter_policy("admin", ADMIN_TOKEN, anonymous=()))
    cluster = LocalCluster(data, size=3, tick_ms=20, http=True)
    cluster.start()
    try:
        addresses = [n.http_address for n in cluster.nodes.values()]
        address = addresses[0]
        assert address is not None
        deadline = time.monotonic() + DEADLINE_S
        while not all(_ready(a) for a in addresses if a):  # anonymous may not ask `status`
            assert time.monotonic() < deadline, "the cluster never became ready"
            time.sleep(0.2)
        page_reply = call(address, "GET", "/dashboard")
        assert page_reply.status == 200
        assert "connect-src 'self'" in page_reply.headers["Content-Security-Policy"]
        assert "http://" not in page_reply.text and "https://" not in page_reply.text
        for path in ("/v1/cluster", "/v1/events?after=0", "/v1/node"):
            assert call(address, "GET", path).status == 403, path
            wrong = call(address, "GET", path, headers={"Authorization": "Bearer nope"})
            assert wrong.status == 401, path
        bad = call(
            address,
            "GET",
            "/v1/events?after=-3",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert bad.status == 400 and bad.json["code"] == "BAD_REQUEST"
        assert "after" in bad.json["message"]

        # The other members judge the caller's token, forwarded: all three answer it.
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        rows = call(address, "GET", "/v1/cluster", headers=admin).json["members"]
        assert [(m["id"], m["reachable"]) for m in rows] == [(n, True) for n in ("n1", "n2", "n3")]

        page = browser.new_page()
        page.goto(f"http://{address}/dashboard")
        _wait(page, "the monitor-role hint", lambda: "monitor role" in page.text_content("#error"))
        page.fill("#token", ADMIN_TOKEN)
        page.click("#auth button")
        _wait(page, "3 members with the token", lambda: _summary(page).get("members") == "3")
        up = page.text_content("#summary") or ""
        assert "3 up" in up, up
        assert page.evaluate("sessionStorage.getItem('resonetics.token')") == ADMIN_TOKEN
        assert page.input_value("#token") == ""
    finally:
        cluster.stop()
    _no_traceback(cluster)
