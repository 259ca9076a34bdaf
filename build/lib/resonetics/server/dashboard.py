"""The live dashboard on the HTTP port: ``/dashboard`` and the JSON feeds it polls.

Theory of operation
-------------------
``GET /dashboard`` is one static HTML page (``dashboard.html`` beside this module:
inline CSS and plain JS, no external assets, so it works offline). It carries no
data and no secrets, so anyone may load it; everything it shows comes from three
feeds that need what the ``status`` op needs (the ``monitor`` or ``admin`` role;
no policy: everyone):

- ``GET /v1/node``: this node's own view (role, term, indexes, chain head).
- ``GET /v1/cluster``: every member this node's configuration names, each as that
  member sees itself. The serving node asks the others' ``/v1/node`` on their HTTP
  addresses (``--http-addresses`` / the cluster file), concurrently, each bounded by
  ``limits.DASHBOARD_PEER_TIMEOUT_S``, forwarding the caller's ``Authorization``
  header so each member judges the caller, not the serving node (as the key-value
  routes redirect rather than forward). A member that does not answer in time, or
  has no known HTTP address, is listed as unreachable with the reason. The answer
  also carries the lag of each member behind the leader's commit index and this
  node's throughput and latency samples.
- ``GET /v1/events?after=SEQ``: the operator events (``server/events.py``) this node
  saw, from a bounded ring kept beside the log.

Samples: every ``DASHBOARD_SAMPLE_INTERVAL_S`` the node records its commit index,
entries committed and client writes answered OK in the last interval, and the p50
and p99 of those writes' latency (from routing to the answer, as the node sees it);
the last ``DASHBOARD_SAMPLES_MAX`` are kept (five minutes). Writes are answered by
the leader, so the leader's dashboard is the one with write rates and latencies.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import ssl
import time
from collections import deque
from importlib import resources
from typing import TYPE_CHECKING, Any, Final

import aiohttp
from aiohttp import web

from resonetics import limits
from resonetics.server.http_api import HttpError, json_response
from resonetics.server.status import node_status
from resonetics.wire import codes

if TYPE_CHECKING:
    from resonetics.server.events import EventRing
    from resonetics.server.http_api import HttpApi
    from resonetics.server.node_view import NodeView

log = logging.getLogger("resonetics.dashboard")

#: The fields of a member's ``/v1/node`` answer that ``/v1/cluster`` passes on.
MEMBER_FIELDS: Final = (
    "node",
    "role",
    "term",
    "leader",
    "commit_index",
    "applied_index",
    "last_index",
    "applied_hash",
    "leader_contact_s",
)


def dashboard_page() -> bytes:
    return (resources.files("resonetics.server") / "dashboard.html").read_bytes()


def percentile(sorted_values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of an ascending list, nearest rank."""
    rank = max(0, min(len(sorted_values) - 1, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[rank]


class Samples:
    """One sample per interval of throughput and write latency, the last few minutes."""

    def __init__(self, size: int = limits.DASHBOARD_SAMPLES_MAX) -> None:
        self.samples: deque[dict[str, Any]] = deque(maxlen=size)
        self._writes = 0
        self._latencies: list[float] = []
        self._seen = 0
        self._last_commit: int | None = None
        self._last_time: float | None = None

    def note_write(self, code: str, seconds: float) -> None:
        """A client write was answered: counted when OK, its latency kept (evenly
        sampled beyond ``DASHBOARD_LATENCIES_PER_SAMPLE_MAX`` per interval)."""
        if code != codes.OK:
            return
        self._writes += 1
        self._seen += 1
        if len(self._latencies) < limits.DASHBOARD_LATENCIES_PER_SAMPLE_MAX:
            self._latencies.append(seconds)
        else:
            slot = random.randrange(self._seen)
            if slot < len(self._latencies):
                self._latencies[slot] = seconds

    def take(self, now: float, commit_index: int, term: int) -> dict[str, Any]:
        """Close the interval ending ``now`` (wall-clock seconds) and keep its sample."""
        elapsed = now - self._last_time if self._last_time is not None else 0.0
        committed = commit_index - self._last_commit if self._last_commit is not None else 0
        latencies = sorted(self._latencies)
        sample: dict[str, Any] = {
            "time": round(now, 3),
            "term": term,
            "commit_index": commit_index,
            "commits_per_s": round(max(committed, 0) / elapsed, 1) if elapsed > 0 else 0.0,
            "writes_per_s": round(self._writes / elapsed, 1) if elapsed > 0 else 0.0,
            "p50_ms": round(percentile(latencies, 0.5) * 1000, 3) if latencies else None,
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 3) if latencies else None,
        }
        self._writes, self._seen, self._latencies = 0, 0, []
        self._last_commit, self._last_time = commit_index, now
        self.samples.append(sample)
        return sample


class Dashboard:
    """The dashboard's routes and state on one node."""

    def __init__(
        self,
        host: NodeView,
        http: HttpApi,
        ring: EventRing,
        *,
        client_ssl: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.http = http
        self.ring = ring
        self.samples = Samples()
        #: For asking the other members over HTTPS (the node's own TLS client context).
        self._client_ssl = client_ssl
        self._session: aiohttp.ClientSession | None = None
        self._sampler: asyncio.Task[None] | None = None
        self._page = dashboard_page()

    def use_ssl(self, context: ssl.SSLContext) -> None:
        """The context of the dashboard's next calls to the other nodes (a TLS reload's)."""
        self._client_ssl = context

    def install(self) -> None:
        """Add the routes, and start/stop the sampler with the HTTP port."""
        self.http.add_route("GET", "/dashboard", self._dashboard)
        self.http.add_route("GET", "/v1/node", self._node)
        self.http.add_route("GET", "/v1/cluster", self._cluster)
        self.http.add_route("GET", "/v1/events", self._events)
        self.http.app.on_startup.append(self._start)
        self.http.app.on_cleanup.append(self._stop)

    def note_write(self, code: str, seconds: float) -> None:
        self.samples.note_write(code, seconds)

    # --- lifecycle ------------------------------------------------------------------
    async def _start(self, app: web.Application) -> None:
        self._sampler = asyncio.create_task(self._sample_forever(), name="dashboard sampler")

    async def _stop(self, app: web.Application) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
            await asyncio.gather(self._sampler, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def _sample_forever(self) -> None:
        """One sample per interval; a failure (a bug) is logged once and ends sampling
        only: the node serves on and the dashboard shows the samples it has."""
        try:
            while True:
                core = self.host.driver.core
                self.samples.take(time.time(), core.commit_index, core.term)
                await asyncio.sleep(limits.DASHBOARD_SAMPLE_INTERVAL_S)
        except Exception:
            log.exception("dashboard sampling stopped")

    # --- routes ---------------------------------------------------------------------
    async def _dashboard(self, request: web.Request) -> web.Response:
        """The page itself: static, no data, so it needs no permission (its feeds do)."""
        return web.Response(
            body=self._page,
            content_type="text/html",
            charset="utf-8",
            headers={
                # Nothing but this page's own inline code and same-origin fetches.
                "Content-Security-Policy": (
                    "default-src 'none'; script-src 'unsafe-inline'; "
                    "style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:"
                ),
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-store",
            },
        )

    async def _node(self, request: web.Request) -> web.Response:
        """This node's view; ``?samples=1`` adds its throughput and latency samples."""
        self.http.authorize(request, "status")
        body: dict[str, Any] = {"ok": True, **self.local_view()}
        if request.query.get("samples") == "1":
            body["samples"] = list(self.samples.samples)
        return json_response(200, body)

    async def _cluster(self, request: web.Request) -> web.Response:
        self.http.authorize(request, "status")
        me = self.host.config.node_id
        mine = self.local_view()
        others = sorted(set(mine["voters"]) | set(mine["learners"]) | {me})
        auth = request.headers.get("Authorization")
        peers = [member for member in others if member != me]
        leader = mine["leader"]
        fetched = await asyncio.gather(
            *(self._ask(member, auth, samples=member == leader) for member in peers)
        )
        rows = dict(zip(peers, fetched, strict=True))
        rows[me] = {**{k: mine[k] for k in MEMBER_FIELDS}, "reachable": True}
        # Writes are answered by the leader: its samples are the cluster's throughput.
        if leader == me or leader not in rows:
            samples_from, samples = me, list(self.samples.samples)
        else:
            samples_from, samples = leader, rows[leader].pop("samples", None) or []
        members = [self._decorate(member, rows[member], mine) for member in others]
        _add_lag(members)
        return json_response(
            200,
            {
                "ok": True,
                "node": me,
                "time": time.time(),
                "members": members,
                "samples": samples,
                "samples_from": samples_from,
                "events_seq": self.ring.seq,
            },
        )

    async def _events(self, request: web.Request) -> web.Response:
        self.http.authorize(request, "status")
        raw = request.query.get("after", "0")
        try:
            after = int(raw)
        except ValueError:
            after = -1
        if after < 0:
            raise HttpError(codes.BAD_REQUEST, f"after: expected a number >= 0, got {raw!r}")
        return json_response(
            200,
            {
                "ok": True,
                "node": self.host.config.node_id,
                "seq": self.ring.seq,
                "first_seq": self.ring.first_seq,
                "events": self.ring.since(after),
            },
        )

    # --- the members ----------------------------------------------------------------
    def local_view(self) -> dict[str, Any]:
        """This node as ``/v1/node`` answers it (a subset of the ``status`` report)."""
        s = node_status(self.host)
        leader = s["leader"]
        contact = 0.0 if leader == s["node"] else s["last_contact_s"].get(leader)
        return {
            "node": s["node"],
            "cluster_id": s["cluster_id"],
            "role": s["role"],
            "term": s["term"],
            "leader": s["leader"],
            "commit_index": s["commit_index"],
            "applied_index": s["applied_index"],
            "last_index": s["last_index"],
            "applied_hash": s["applied_hash"],
            #: Seconds since this node last heard from its leader (0: it is the leader).
            "leader_contact_s": contact if leader is not None else None,
            "voters": sorted(s["voters"]),
            "learners": sorted(s["learners"]),
            "last_contact_s": s["last_contact_s"],
            "peers_connected": s["peers_connected"],
        }

    def _decorate(self, member: str, row: dict[str, Any], mine: dict[str, Any]) -> dict[str, Any]:
        """Add what the serving node knows of ``member``: kind, link and last contact."""
        kind = "learner" if member in mine["learners"] else "voter"
        return {
            **row,
            "id": member,
            "kind": kind,
            "http": self.host.config.http_addresses.get(member),
            "heard_by_me_s": mine["last_contact_s"].get(member),
            "connected": mine["peers_connected"].get(member),
            "self": member == mine["node"],
        }

    async def _ask(self, member: str, auth: str | None, *, samples: bool) -> dict[str, Any]:
        """``member``'s own ``/v1/node`` (with its samples), or ``reachable: false`` and why."""
        address = self.host.config.http_addresses.get(member)
        if not address:
            return {"reachable": False, "error": "no HTTP address known for it"}
        scheme = "https" if self._client_ssl is not None else "http"
        headers = {"Authorization": auth} if auth else {}
        try:
            session = self._get_session()
            async with asyncio.timeout(limits.DASHBOARD_PEER_TIMEOUT_S):
                async with session.get(
                    f"{scheme}://{address}/v1/node" + ("?samples=1" if samples else ""),
                    headers=headers,
                    ssl=self._client_ssl if self._client_ssl is not None else False,
                    allow_redirects=False,
                ) as reply:
                    raw = await reply.content.read(limits.DASHBOARD_PEER_REPLY_BYTES_MAX + 1)
        except TimeoutError:
            return {
                "reachable": False,
                "error": f"no answer in {limits.DASHBOARD_PEER_TIMEOUT_S} s",
            }
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return {"reachable": False, "error": _reason(exc)}
        if len(raw) > limits.DASHBOARD_PEER_REPLY_BYTES_MAX:
            return {"reachable": False, "error": "answer too large"}
        try:
            body = json.loads(raw)
        except ValueError:
            return {"reachable": False, "error": f"{reply.status}: answer not JSON"}
        if not isinstance(body, dict):
            return {"reachable": False, "error": "not a JSON object"}
        if reply.status != 200:
            return {"reachable": False, "error": f"{reply.status} {body.get('code', '')}".strip()}
        row = {**{k: body.get(k) for k in MEMBER_FIELDS}, "reachable": True}
        if samples and isinstance(body.get("samples"), list):
            row["samples"] = body["samples"]
        return row

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=limits.DASHBOARD_PEER_TIMEOUT_S)
            )
        return self._session


def _add_lag(members: list[dict[str, Any]]) -> None:
    """``lag``: entries each member has yet to apply of the leader's commit index
    (the leader of the highest term among the members that answered); None without one."""
    leaders = [
        m for m in members if m.get("reachable") and m.get("role") == "leader" and _int(m, "term")
    ]
    leader = max(leaders, key=lambda m: _int(m, "term"), default=None)
    for m in members:
        if leader is None or not m.get("reachable"):
            m["lag"] = None
        else:
            m["lag"] = max(_int(leader, "commit_index") - _int(m, "applied_index"), 0)


def _int(row: dict[str, Any], key: str) -> int:
    value = row.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


__all__ = ["MEMBER_FIELDS", "Dashboard", "Samples", "dashboard_page", "percentile"]
