"""The Python client: ``AsyncClient`` (asyncio) and ``Client`` (blocking).

Theory of operation
-------------------
A client talks to one node at a time over one long-lived connection that
carries many requests in flight (each has an envelope ``id`` its response
echoes). It finds the leader from any node: a ``NOT_LEADER`` answer names the
leader and its address when the node knows them, otherwise the client tries
the next address. A write is retried after ``TIMEOUT`` or a lost connection
with the **same** ``request_id``, so the cluster's session table applies it
at most once. Every call has an overall deadline; when it passes, a write that
may have reached a node raises ``Timeout`` (indeterminate: it may still take
effect), and a call that never reached one raises ``Unavailable``.

Writes go through a sequenced session (Raft dissertation §6.3): the first
write opens one (``session_open``), and every write carries ``session``, its
``seq`` and ``ack_below`` — the lowest seq this client still awaits — so the
cluster discards the results of calls that have returned (or given up) and
refuses a request older than what the session holds with ``SESSION_EXPIRED``
instead of applying it again. ``SessionExpired`` is never retried (the write
may have been applied by an earlier attempt); the next write opens a new
session.

``RATE_LIMITED`` answers are retried on the same node after a pause that
doubles each time (with jitter), up to ``RATE_LIMIT_BACKOFF_MAX_S``.

With ``tls=TLSConfig(ca=..., cert=..., key=...)`` every connection is TLS: the
node's certificate is checked against the CA and the host of the address
dialled, and the client's own certificate is presented when given. A TLS
refusal (a certificate either side rejects) is a configuration problem every
node would repeat, so it raises ``Unavailable`` at once instead of retrying.

With ``token=...`` every new connection first sends an ``Auth`` line
(``wire/auth.py``) and waits for its answer before any request: the requests
that follow run as the token's identity. ``FORBIDDEN`` and ``UNAUTHENTICATED``
answers raise ``Forbidden`` / ``Unauthenticated`` at once: every node applies
the same policy, so a retry elsewhere could only repeat the refusal.

``Client`` runs an ``AsyncClient`` on a private event loop thread, so it is
safe to share between threads and keeps their requests in flight together.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import itertools
import math
import random
import socket
import ssl
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar, overload

import msgspec

from resonetics import errors, limits
from resonetics.addresses import parse_address_list
from resonetics.lazy import lazy_getattr
from resonetics.leases import KeptLease, SyncKeptLease, lease_checked
from resonetics.retry_policy import Action, Decision, RetryPolicy
from resonetics.security.tls import TLSConfig, client_context, refusal_reason, revoked_server
from resonetics.wire import codes
from resonetics.wire.auth import encode_auth
from resonetics.wire.client import OPS, WRITE_OPS, ClientResponse, decode_response
from resonetics.wire.envelope import decode_envelope, encode_envelope
from resonetics.wire.framing import LineBuffer

if TYPE_CHECKING:
    from resonetics.proxies import AsyncMachineProxy, MachineLike, MachineProxy
    from resonetics.raft.entry import Receipt
    from resonetics.txn import CompareLike, OpLike, TxnResult
    from resonetics.watch import WatchEvent, WatchStream

# Receipts, transactions and watches are imported on first use, not with the client:
# a one-shot ``resonetics kv get`` needs none of them (start-up time, issue 19).
__getattr__ = lazy_getattr(
    __name__,
    {
        "Receipt": "resonetics.raft.entry",
        "TxnResult": "resonetics.txn",
        "WatchEvent": "resonetics.watch",
    },
)

T = TypeVar("T")
P = TypeVar("P")

#: Ops this library knows are not logged commands: sent without the sequenced session.
#: The key writes go through it, and so does any op this library does not know (a served
#: machine's, docs/machines.md): a command is then applied at most once ever; for a
#: query the node ignores the session fields.
_UNSEQUENCED_OPS = frozenset(OPS) - WRITE_OPS

#: What ``get(..., with_meta=True)`` answers.
_META_FIELDS = ("value", "found", "create_index", "mod_index", "version")

#: How long one attempt waits for its answer before retrying elsewhere, seconds.
ATTEMPT_TIMEOUT_S = 2.0
#: A request whose deadline is this close counts as due when the connection's timer fires.
_TIMER_SLACK_S = 0.001
#: Pause between rounds over every known address when none answered usefully, seconds.
RETRY_PAUSE_S = 0.05
#: Longest pause after a RATE_LIMITED answer (the pause doubles from RETRY_PAUSE_S), seconds.
RATE_LIMIT_BACKOFF_MAX_S = 1.0
#: Bytes asked of the socket per read: every complete line in them is answered at once.
READ_CHUNK_BYTES = 1 << 16


class ScanPage(list[tuple[str, Any]]):
    """One page of a scan: a list of ``(key, value)`` (what ``scan()`` always returned)
    that also says whether there is ``more``, the cursor to continue from (``next``,
    pass it as ``after``), and ``state_index``, the log index the page's state reflects
    (pass it as ``at_index`` to keep later pages consistent with this one; the wire
    field is ``index``, a name ``list`` already uses)."""

    def __init__(
        self,
        items: list[tuple[str, Any]],
        *,
        more: bool = False,
        next: str | None = None,
        state_index: int = 0,
        meta: list[dict[str, int]] | None = None,
    ) -> None:
        super().__init__(items)
        self.more = more
        self.next = next
        self.state_index = state_index
        #: With ``meta=True``: each item's create_index, mod_index and version, in order.
        self.meta = meta

    @property
    def items(self) -> list[tuple[str, Any]]:
        return list(self)


def _scan_page(result: dict[str, Any], meta: bool) -> ScanPage:
    """The page in a ``kv_scan`` result, or ``ScanChanged`` when the node refused it."""
    if result.get("ok") is False and result.get("code") == errors.ScanChanged.code:
        raise errors.ScanChanged(
            str(result.get("message", "the scan's range changed")), result.get("key")
        )
    rows = result["items"]
    metas = (
        [{"create_index": r[2], "mod_index": r[3], "version": r[4]} for r in rows] if meta else None
    )
    return ScanPage(
        [(str(r[0]), r[1]) for r in rows],
        more=bool(result.get("more")),
        next=result.get("next"),
        state_index=int(result.get("index", 0)),
        meta=metas,
    )


#: Keys per page ``scan_all`` asks for unless told.
SCAN_ALL_PAGE_DEFAULT = 1000


class _SilentClose(ConnectionResetError):
    """A TLS connection closed before any answer: how asyncio servers refuse a client cert.

    The server aborts a failed handshake without sending its alert, so under TLS 1.3
    the client learns only that the connection closed. Once every node has done
    that (``SILENT_CLOSES_MIN`` times, and at least once per address), the call gives up early with a message that says so.
    """


#: TLS connections closed before any answer, in a row, before a call stops retrying.
SILENT_CLOSES_MIN = 2


class _Connection:
    """One TCP connection to one node, with requests in flight matched by ``id``.

    Requests sent in one loop turn leave in one ``write`` (one syscall, one TLS
    record) at the loop's next turn, or as soon as
    ``limits.CLIENT_WRITE_BATCH_REQUESTS_MAX`` are queued, in the order they were
    sent; answers are read in chunks and every complete line in a chunk is handed
    out in one go. With hundreds of requests in flight a write and a read wake-up
    per request were a large share of the client's CPU.

    Each request fails with ``TimeoutError`` at the deadline ``send`` gives it. One
    timer per connection serves them all, set for the earliest deadline: a timer per
    request (``call_later`` and its ``cancel``) cost 2.6-3.0 us of the ~22 us a put
    costs the client at 256 in flight (``bench/client_cpu.py --op put``).
    """

    def __init__(
        self, address: str, ssl_context: ssl.SSLContext | None = None, token: str | None = None
    ) -> None:
        self.address = address
        self._ssl = ssl_context
        self._token = token
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, asyncio.Future[ClientResponse]] = {}
        #: Request id -> loop time at which it fails with TimeoutError if unanswered.
        self._deadlines: dict[int, float] = {}
        self._timer: asyncio.TimerHandle | None = None
        #: When ``_timer`` fires (inf when it is not set).
        self._timer_at = math.inf
        self._ids = itertools.count(1)
        self._reader_task: asyncio.Task[None] | None = None
        self.alive = False
        self.answers = 0
        #: Encoded requests not yet written, in the order they were sent.
        self._unsent: list[bytes] = []
        self._flush_scheduled = False
        #: The loop the connection was opened on (``open``). Kept rather than asked for:
        #: ``asyncio.get_running_loop()`` makes a ``getpid`` system call (CPython's
        #: fork check), three per put, which was a fifth of the client's CPU at 256
        #: in flight (py-spy --native on ``bench/client_cpu.py --op put``).
        self._loop: asyncio.AbstractEventLoop

    async def open(self, timeout_s: float) -> None:
        self._loop = asyncio.get_running_loop()
        host, _, port = self.address.rpartition(":")
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(
                    host,
                    int(port),
                    limit=limits.LINE_BYTES_MAX,
                    ssl=self._ssl,
                    server_hostname=host if self._ssl else None,
                ),
                timeout_s,
            )
        except (ConnectionResetError, ssl.SSLEOFError) as exc:
            if self._ssl is None:
                raise
            raise _SilentClose(f"{self.address} closed the TLS handshake") from exc
        self.alive = True
        self._reader_task = asyncio.create_task(self._read_loop())
        if self._token is not None:
            await self._authenticate(self._token, timeout_s)

    async def _authenticate(self, token: str, timeout_s: float) -> None:
        """Present ``token`` before any request; ``Unauthenticated`` if the node refuses it."""
        assert self._writer is not None
        future = self._register()
        self._writer.write(encode_auth(token, int(time.time() * 1000), future[0]))
        response = await asyncio.wait_for(future[1], timeout_s)
        if response.code != codes.OK:
            message = response.message if isinstance(response.message, str) else response.code
            error = _error_for(response)
            if not isinstance(error, errors.Unauthenticated | errors.BadRequest):
                error = errors.Unauthenticated(message)
            raise error

    def _register(self) -> tuple[int, asyncio.Future[ClientResponse]]:
        req_id = next(self._ids)
        future: asyncio.Future[ClientResponse] = self._loop.create_future()
        self._pending[req_id] = future
        return req_id, future

    async def _read_loop(self) -> None:
        assert self._reader is not None
        lines = LineBuffer(limits.LINE_BYTES_MAX)
        try:
            while chunk := await self._reader.read(READ_CHUNK_BYTES):
                for line in lines.feed(chunk):
                    env = decode_envelope(line)
                    response = decode_response(env)
                    future = None
                    if isinstance(env.id, int):
                        future = self._pending.pop(env.id, None)
                        self._deadlines.pop(env.id, None)
                    self.answers += 1
                    if future is not None and not future.done():
                        future.set_result(response)
        except OSError as exc:
            # With TLS 1.3 the server's verdict on our certificate arrives after the
            # handshake, as an alert on the first read: hand it to the waiting calls.
            self._fail_pending(exc if refusal_reason(exc) else None)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except (errors.ResoneticsError, msgspec.ValidationError, msgspec.DecodeError):
            pass  # a node that speaks garbage is treated as gone
        finally:
            self._fail_pending()

    def _fail_pending(self, cause: OSError | None = None) -> None:
        self.alive = False
        self._deadlines = {}
        self._set_timer(math.inf)
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(cause or self._lost())

    def _lost(self) -> ConnectionResetError:
        if self._ssl is not None and self.answers == 0:
            return _SilentClose(f"{self.address} closed the TLS connection before answering")
        return ConnectionResetError(f"connection to {self.address} lost")

    def send(self, payload: dict[str, Any], timeout_s: float) -> asyncio.Future[ClientResponse]:
        """Queue one request (written at the loop's next turn); its answer's future,
        which fails with ``TimeoutError`` if no answer came within ``timeout_s``."""
        assert self._writer is not None
        req_id, future = self._register()
        deadline = self._loop.time() + timeout_s
        self._deadlines[req_id] = deadline
        if deadline < self._timer_at:
            self._set_timer(deadline)
        self._unsent.append(
            encode_envelope("ClientRequest", payload, int(time.time() * 1000), req_id)
        )
        if len(self._unsent) >= limits.CLIENT_WRITE_BATCH_REQUESTS_MAX:
            self._flush()  # the node starts on these while the rest are encoded
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)
        return future

    def _set_timer(self, at: float) -> None:
        """Fire ``_expire_due`` at loop time ``at`` (never, for inf) instead of as set."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = at
        if at != math.inf:
            self._timer = self._loop.call_at(at, self._expire_due)

    def _expire_due(self) -> None:
        """Fail every request whose deadline has come; set the timer for the next one."""
        self._timer, self._timer_at = None, math.inf
        # A timer may fire a little early (the loop's clock resolution): what falls due
        # within a millisecond is due, so an early wake-up never spins re-arming.
        due = self._loop.time() + _TIMER_SLACK_S
        deadlines, pending = self._deadlines, self._pending
        following = math.inf
        for req_id, deadline in list(deadlines.items()):
            if deadline <= due:
                del deadlines[req_id]
                _expire(pending.pop(req_id, None))
            elif deadline < following:
                following = deadline
        self._set_timer(following)

    def _flush(self) -> None:
        self._flush_scheduled = False
        unsent, self._unsent = self._unsent, []
        if unsent and self._writer is not None and not self._writer.is_closing():
            self._writer.write(unsent[0] if len(unsent) == 1 else b"".join(unsent))

    async def close(self) -> None:
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        self._fail_pending()


class AsyncClient:
    """An asyncio client for a Resonetics cluster."""

    def __init__(
        self,
        addresses: list[str] | str,
        *,
        timeout: float = 10.0,
        client_id: str | None = None,
        tls: TLSConfig | None = None,
        token: str | None = None,
    ) -> None:
        # A typo (``:95o1``) is refused here, not found later as a socket error.
        self.addresses = parse_address_list(addresses, what="address")
        #: Where a NOT_LEADER hint may send us: the bootstrap list and the client addresses
        #: a member list named. A hint elsewhere is not followed (``hints_ignored``).
        self.trusted_addresses: set[str] = set(self.addresses)
        self.hints_ignored = 0
        #: Hinted addresses already looked up in a member list (each is looked up once).
        self._looked_up: set[str] = set()
        self.timeout = timeout
        self.client_id = client_id or uuid.uuid4().hex
        self._request_ids = itertools.count(1)
        self._conn: _Connection | None = None
        self._next_address = 0
        self._leader: str | None = None
        self._leader_address: str | None = None
        #: The address of the node that last answered an op only a leader answers
        #: (``leader_address``), and the node ids leader hints named per address.
        self._answered_as_leader: str | None = None
        self._hinted_ids: dict[str, str] = {}
        self._lock = asyncio.Lock()
        self.tls = tls
        self._ssl = client_context(tls) if tls is not None else None
        #: Bearer token presented on every new connection (None: the connection's
        #: certificate identity, or anonymous).
        self._token = token
        self._last_dialled = ""
        #: The sequenced session writes use (opened by the first write), its next seq,
        #: and the seqs whose calls have not returned yet.
        self._session: int | None = None
        self._seqs = itertools.count(1)
        self._outstanding: set[int] = set()
        #: Every seq handed out and maybe still outstanding, in increasing order: the
        #: lowest one still in ``_outstanding`` is ``ack_below`` (``_lowest_outstanding``).
        self._seq_order: collections.deque[int] = collections.deque()
        self._session_lock = asyncio.Lock()

    @property
    def leader(self) -> str | None:
        """The node id of the leader, as last learned."""
        return self._leader

    @property
    def leader_address(self) -> str | None:
        """The address of the node that last answered as leader (a write, a
        linearizable or lease read, an admin op); None before any such answer.

        ``status``, ``member_list`` and stale reads are answered by any node and do
        not change it."""
        return self._answered_as_leader

    def _note_answer(self, address: str, payload: dict[str, Any]) -> None:
        """``address`` answered ``payload``: if only a leader answers that, it leads."""
        spec = OPS.get(payload["op"])
        args = payload.get("args")
        stale = isinstance(args, dict) and args.get("consistency") == "stale"
        if (spec is not None and spec.category == "monitor") or stale:
            return
        self._answered_as_leader = address
        self._leader = self._hinted_ids.get(address, self._leader)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    # --- the key-value API ------------------------------------------------------------------
    async def put(self, key: str, value: Any, *, lease: int | None = None) -> Receipt:
        """Set ``key``; with ``lease`` the key is attached to that lease (and deleted
        when it ends), without one it is detached from any lease it had."""
        args: dict[str, Any] = {"k": key, "v": value}
        if lease is not None:
            args["lease"] = lease
        result = lease_checked(await self.call("kv_set", args))
        return _receipt_type().from_data(result.get("receipt"))

    async def get(
        self, key: str, *, consistency: str = "linearizable", with_meta: bool = False
    ) -> Any:
        """``key``'s value (None: absent); with ``with_meta``, a dict of ``value``,
        ``found``, ``create_index``, ``mod_index`` and ``version``."""
        args: dict[str, Any] = {"k": key, "consistency": consistency}
        if with_meta:
            args["meta"] = True
        check_sizes(args)  # what ``call`` does for an unsequenced op, one frame fewer
        result = await self._call(self._payload("kv_get", args))
        if with_meta:
            return {n: result.get(n) for n in _META_FIELDS}
        return result.get("value")

    async def delete(self, key: str) -> bool:
        return bool((await self.call("kv_delete", {"k": key}))["deleted"])

    async def cas(self, key: str, expected: Any, value: Any) -> bool:
        result = await self.call("kv_cas", {"k": key, "expected": expected, "v": value})
        return bool(result["swapped"])

    async def scan(
        self,
        prefix: str = "",
        limit: int = 1000,
        *,
        consistency: str = "linearizable",
        after: str | None = None,
        at_index: int | None = None,
        meta: bool = False,
    ) -> ScanPage:
        """Up to ``limit`` keys under ``prefix`` (after ``after``), as a ``ScanPage``.

        With ``at_index`` (a first page's ``index``) the node refuses, with
        ``ScanChanged``, a page that would differ from the state at that index.
        """
        args: dict[str, Any] = {"prefix": prefix, "limit": limit, "consistency": consistency}
        if after is not None:
            args["after"] = after
        if at_index is not None:
            args["at_index"] = at_index
        if meta:
            args["meta"] = True
        return _scan_page(await self.call("kv_scan", args), meta)

    async def scan_all(
        self,
        prefix: str = "",
        page: int = SCAN_ALL_PAGE_DEFAULT,
        *,
        consistent: bool = False,
        consistency: str = "linearizable",
    ) -> AsyncIterator[tuple[str, Any]]:
        """Every ``(key, value)`` under ``prefix``, fetched ``page`` keys at a time.

        ``consistent=True`` pins every page to the first page's index: if the range
        changes meanwhile, ``ScanChanged`` is raised (restart the scan) rather than
        mixing states.
        """
        after: str | None = None
        at_index: int | None = None
        while True:
            got = await self.scan(
                prefix, page, consistency=consistency, after=after, at_index=at_index
            )
            for item in got:
                yield item
            if not got.more:
                return
            after = got.next
            if consistent and at_index is None:
                at_index = got.state_index

    async def txn(
        self,
        compare: list[CompareLike] | None = None,
        then: list[OpLike] | None = None,
        otherwise: list[OpLike] | None = None,
    ) -> TxnResult:
        """Run a transaction (``resonetics.txn``): if every compare holds, ``then``'s ops,
        else ``otherwise``'s, atomically in one log entry."""
        from resonetics.txn import result_from_wire, txn_args

        args = txn_args(compare or [], then or [], otherwise or [])
        return result_from_wire(lease_checked(await self.call("kv_txn", args)))

    # --- leases (docs/leases.md) ---------------------------------------------------------
    async def lease_grant(self, ttl_s: float) -> int:
        """A new lease of ``ttl_s`` seconds; its id (the log index of the grant)."""
        result = lease_checked(await self.call("lease_grant", {"ttl_ms": round(ttl_s * 1000)}))
        return int(result["id"])

    async def lease_keepalive(self, lease_id: int) -> dict[str, Any]:
        """Refresh a lease on the leader (never logged): ``{"id", "ttl_ms",
        "remaining_ms"}``; ``LeaseNotFound`` once it has ended."""
        result: dict[str, Any] = await self.call("lease_keepalive", {"id": lease_id})
        return result

    async def lease_revoke(self, lease_id: int, *, within: str = "") -> list[str]:
        """End a lease now and delete its keys (returned). Every key must lie under
        ``within``, a prefix the caller may write, else ``Forbidden`` and nothing changes."""
        args = {"id": lease_id, "within": within}
        return list(lease_checked(await self.call("lease_revoke", args))["keys"])

    async def lease_info(self, lease_id: int) -> dict[str, Any]:
        """``{"id", "ttl_ms", "remaining_ms", "keys", ...}`` from the leader."""
        result: dict[str, Any] = await self.call("lease_info", {"id": lease_id})
        return result

    async def lease_list(self) -> list[int]:
        """The ids of the live leases (the first ``limits.LEASE_LIST_MAX``)."""
        return [int(i) for i in (await self.call("lease_list", {}))["leases"]]

    def lease(self, ttl_s: float, *, interval_s: float | None = None) -> KeptLease:
        """``async with client.lease(ttl) as lease:`` a lease kept alive in the
        background (every ``interval_s``, default a third of the TTL) and revoked on exit."""
        return KeptLease(self, ttl_s, interval_s=interval_s)

    def watch(self, prefix: str = "", from_index: int | None = None) -> WatchStream:
        """Every change under ``prefix`` from ``from_index`` on (None: from now), as an
        async iterator of ``WatchEvent``; resumes on another node without gaps or
        duplicates; ``Compacted`` when no node holds the history any more (``watch.py``)."""
        from resonetics.watch import WatchStream

        return WatchStream(self, prefix, from_index)

    async def status(self, address: str | None = None) -> dict[str, Any]:
        """The ``status`` of one node (``address``), or of whichever node answers."""
        if address is not None:
            return await self._ask(address, "status")
        return _view_of("status", self._last_dialled, await self.call("status", {}, any_node=True))

    async def _ask(self, address: str, op: str) -> dict[str, Any]:
        """One op, answered by the node at ``address`` (no leader following, no retry)."""
        conn = _Connection(address, self._ssl, self._token)
        try:
            await conn.open(self.timeout)
            response = await conn.send(self._payload(op, {}), 5.0)
        finally:
            await conn.close()
        return _view_of(op, address, self._check(response))

    # --- membership (admin) ------------------------------------------------------------------
    async def member_list(self) -> dict[str, Any]:
        """The configuration as the leader sees it (``leader`` names it).

        A follower may not have appended the newest CONFIG entry yet (a change commits
        once a majority has it), so a follower's answer is followed up at the leader it
        names. A node that knows no leader (just started, or in an election) may hold a
        configuration many entries old, so the other addresses are asked for a leader
        first; when none names one or it cannot be reached, the first node's own view is
        the answer (``node`` says whose view it is, ``leader`` is None).
        """
        result = _view_of("member_list", self._last_dialled, await self.call("member_list", {}))
        self._trust_member_addresses(result)
        if result.get("leader") is None:
            result = await self._view_naming_a_leader(result)
        leader, addresses = result.get("leader"), result.get("addresses")
        address = addresses.get(leader) if leader and isinstance(addresses, dict) else None
        if leader is None or leader == result.get("node") or not isinstance(address, str):
            return result
        try:
            return await self._ask(address, "member_list")
        except (OSError, TimeoutError, ConnectionError, errors.ResoneticsError):
            return result

    async def _view_naming_a_leader(self, first: dict[str, Any]) -> dict[str, Any]:
        """The first view another bootstrap address gives that names a leader, else
        ``first``. Each is asked once, for at most ``ATTEMPT_TIMEOUT_S``: a dead node
        costs one attempt, not the whole timeout."""
        answered = self._conn.address if self._conn is not None else self._last_dialled
        for address in dict.fromkeys(self.addresses):
            if address == answered:
                continue
            try:
                view = await asyncio.wait_for(
                    self._ask(address, "member_list"), min(self.timeout, ATTEMPT_TIMEOUT_S)
                )
            except (OSError, TimeoutError, ConnectionError, errors.ResoneticsError):
                continue
            if view.get("leader") is not None:
                self._trust_member_addresses(view)
                return view
        return first

    def _trust_member_addresses(self, view: dict[str, Any]) -> None:
        addresses = view.get("addresses")
        if isinstance(addresses, dict):
            self.trusted_addresses.update(a for a in addresses.values() if isinstance(a, str))

    async def member_add(
        self,
        node: str,
        address: str,
        *,
        learner: bool = False,
        client_address: str | None = None,
    ) -> dict[str, Any]:
        """Add ``node`` at peer ``address`` as a learner; unless ``learner``, the leader
        promotes it to voter once it has caught up (poll ``member_list`` to see it happen).
        ``client_address`` is where it serves clients (hints and ``member_list`` name it)."""
        op = "member_add_learner" if learner else "member_add"
        args = {"node": node, "address": address}
        if client_address is not None:
            args["client_address"] = client_address
        result: dict[str, Any] = await self.call(op, args)
        return result

    async def member_promote(self, node: str) -> dict[str, Any]:
        return await self._retried_change("member_promote", node, "is already a voter")

    async def member_remove(self, node: str) -> dict[str, Any]:
        return await self._retried_change("member_remove", node, "is not a member")

    async def _retried_change(self, op: str, node: str, done_reason: str) -> dict[str, Any]:
        """Run a change whose retry, after it committed, is refused as ``done_reason``.

        A first attempt may commit and still be answered TIMEOUT (a leader change);
        the client's retry is then refused because the change is already made. Checked
        before the first attempt, the same refusal means the request itself was wrong.
        """
        before = await self.member_list()
        try:
            result: dict[str, Any] = await self.call(op, {"node": node})
            return result
        except errors.BadRequest as exc:
            if done_reason in str(exc) and _was_pending(op, node, before):
                return await self.member_list()  # an earlier attempt of ours made the change
            raise

    async def transfer_leader(self, to: str) -> dict[str, Any]:
        """Ask the leader to hand over to ``to``; returns once the handover has started."""
        result: dict[str, Any] = await self.call("leader_transfer", {"to": to})
        return result

    # --- the retry loop ---------------------------------------------------------------------
    def _payload(
        self, op: str, args: dict[str, Any], request_id: str | None = None
    ) -> dict[str, Any]:
        rid = request_id or f"{self.client_id}-{next(self._request_ids)}"
        return {"client_id": self.client_id, "request_id": rid, "op": op, "args": args}

    async def call(
        self,
        op: str,
        args: dict[str, Any] | None = None,
        /,
        *,
        any_node: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Send one op, following leader hints and retrying until the deadline.

        Arguments go as a dict or as keywords (``call("incr", by=2)``, a served
        machine's op). A retry resends the same request id, so a command is applied
        once however many times it is sent; the result is what the node answered (a
        machine op's: ``{"value": ..., "receipt": ...}`` for a command).
        """
        args = {**args, **kwargs} if args is not None else kwargs
        check_sizes(args)  # before anything is sent: a too-large value fails at once
        if op in _UNSEQUENCED_OPS:
            return await self._call(self._payload(op, args), any_node=any_node)
        session = self._session
        if session is None:
            session = await self._open_session(op)
        seq = next(self._seqs)
        self._outstanding.add(seq)
        self._seq_order.append(seq)
        try:
            payload = {**self._payload(op, args), "session": session, "seq": seq}
            return await self._call(payload)
        finally:
            self._outstanding.discard(seq)

    @overload
    def proxy(self, machine: MachineLike) -> AsyncMachineProxy: ...
    @overload
    def proxy(self, machine: MachineLike, as_: Callable[..., P]) -> P: ...
    def proxy(
        self, machine: MachineLike, as_: Callable[..., P] | None = None
    ) -> AsyncMachineProxy | P:
        """Coroutine functions for ``machine``'s declared ops (``resonetics.proxies``)."""
        from resonetics.proxies import proxy

        return proxy(self, machine) if as_ is None else proxy(self, machine, as_)

    def _lowest_outstanding(self) -> int:
        """The lowest seq whose call has not returned (amortized O(1): seqs only grow)."""
        order = self._seq_order
        while order[0] not in self._outstanding:
            order.popleft()
        return order[0]

    async def _open_session(self, for_op: str) -> int:
        async with self._session_lock:
            if self._session is None:
                # Failures are reported as the caller's op: it is what the user asked for.
                result = await self._call(self._payload("session_open", {}), label=for_op)
                self._session = int(result["session"])
            return self._session

    async def _call(
        self, payload: dict[str, Any], *, any_node: bool = False, label: str | None = None
    ) -> Any:
        """The retry loop; what to do after each answer is ``RetryPolicy``'s decision."""
        # The monotonic clock, not the loop's (asking for the running loop is a system
        # call, see ``_Connection``): deadlines here are only compared with each other,
        # and a connection takes each attempt's as a length of time.
        policy = RetryPolicy(
            deadline=time.monotonic() + self.timeout,
            pause=lambda: RETRY_PAUSE_S,
            backoff_max=RATE_LIMIT_BACKOFF_MAX_S,
            jitter=random.random,
        )
        deadline = policy.deadline
        op = label or payload["op"]
        # address -> what happened there last: the one-line account a give-up carries.
        tried: dict[str, str] = {}
        silent_closes = 0
        while not policy.expired(now := time.monotonic()):
            remaining = deadline - now
            try:
                # The common case (a live connection) without a coroutine of its own, and
                # the attempt's deadline kept by the connection (one timer for all its
                # requests): at hundreds of requests in flight on one connection each
                # await frame and each timer is measurable.
                conn = self._conn
                if conn is None or not conn.alive:
                    conn = await self._connection(min(remaining, ATTEMPT_TIMEOUT_S))
                if "seq" in payload:  # every attempt acknowledges what has returned since
                    payload["ack_below"] = self._lowest_outstanding()
                future = conn.send(payload, min(remaining, ATTEMPT_TIMEOUT_S))
                policy.sent()
                response = await future
            except (OSError, TimeoutError, ConnectionError) as exc:
                await self._drop_connection()
                silent_closes = silent_closes + 1 if isinstance(exc, _SilentClose) else 0
                self._raise_if_refused(op, exc, silent_closes, policy.maybe_applied)
                tried[self._last_dialled] = describe_failure(exc)
                decision = policy.on_no_answer(reached=False)  # sent() noted any send
                await asyncio.sleep(min(decision.pause, max(0.0, deadline - time.monotonic())))
                continue
            if any_node:
                return self._check(response)
            if response.code == codes.OK:  # what ``policy.on_answer`` decides, without asking
                self._note_answer(conn.address, payload)
                return response.result
            decision = policy.on_answer(response.code, response.result)
            if decision.action is Action.DONE:
                result = self._check(response)
                self._note_answer(conn.address, payload)
                return result
            tried[conn.address] = f"answered {response.code}"
            if response.code == codes.SESSION_EXPIRED and self._session == payload.get("session"):
                self._session = None  # the next write opens a new session
            await self._carry_out(decision, response, deadline)
        raise self._give_up(op, tried, policy.maybe_applied)

    def _give_up(self, op: str, tried: dict[str, str], maybe_applied: bool) -> errors.ClientError:
        """The error for a call whose deadline passed, naming every node and what it said."""
        for address in self.addresses:
            tried.setdefault(address, "not tried before the deadline")
        if maybe_applied:
            return errors.Timeout(
                f"{op}: no definite answer within {self.timeout}s: {errors.describe_tried(tried)}"
            )
        return errors.NoNodeAnswered(op, self.timeout, tried)

    def _raise_if_refused(
        self, op: str, exc: BaseException, silent_closes: int, maybe_applied: bool
    ) -> None:
        """Stop retrying what every node will refuse the same way: TLS credentials."""
        if (reason := refusal_reason(exc)) is not None:
            raise errors.Unavailable(
                f"{op}: TLS refused by {self._last_dialled}: {reason}"
            ) from exc
        if silent_closes >= max(SILENT_CLOSES_MIN, len(self.addresses)):
            problem = (
                f"{op}: every node closed the TLS connection before answering; the cluster "
                "probably refuses this client's certificate (check --tls-cert/--tls-key and "
                "that they are signed by the cluster CA)"
            )
            # A node that crashed after taking the request would look the same: a write
            # stays indeterminate.
            raise (errors.Timeout if maybe_applied else errors.Unavailable)(problem) from exc

    async def _carry_out(
        self, decision: Decision, response: ClientResponse, deadline: float
    ) -> None:
        """Do what the policy decided for a refused attempt (or raise its typed error)."""
        action = decision.action
        if action is Action.FOLLOW_LEADER:
            self._leader = decision.leader
            self._leader_address = await self._followable(decision.leader_addr)
            if self._leader_address is not None and decision.leader is not None:
                self._hinted_ids[self._leader_address] = decision.leader
            await self._drop_connection()
            if self._leader_address is None:
                await asyncio.sleep(RETRY_PAUSE_S)
        elif action in (Action.RETRY_SAME_NODE, Action.RETRY):
            if decision.pause > 0:
                await asyncio.sleep(min(decision.pause, max(0.0, deadline - _now())))
        else:  # SESSION_EXPIRED (never retried) or a definite refusal
            self._check(response)  # raises the typed error

    async def _followable(self, address: object) -> str | None:
        """A hinted address we may dial: one we were given or a member list named.

        A node that was misled (or an impostor on a client's path) must not be able
        to send the client, its requests and its credentials to any address it likes.
        An address not known yet is looked up once in the configuration, as the node
        we dialled (at a trusted address) reads it from the log, where only an admin's
        ``member add`` puts addresses.
        """
        if not isinstance(address, str):
            return None
        if address not in self.trusted_addresses and address not in self._looked_up:
            self._looked_up.add(address)
            with contextlib.suppress(OSError, TimeoutError, errors.ResoneticsError):
                self._trust_member_addresses(await self._ask(self._last_dialled, "member_list"))
        if address in self.trusted_addresses:
            return address
        self.hints_ignored += 1
        return None

    def _check(self, response: ClientResponse) -> Any:
        if response.code == codes.OK:
            return response.result
        raise _error_for(response)

    async def _connection(self, timeout_s: float) -> _Connection:
        conn = self._conn
        if conn is not None and conn.alive:
            return conn  # the common case needs no lock
        async with self._lock:
            if self._conn is not None and self._conn.alive:
                return self._conn
            address = self._leader_address
            if address is None:
                address = self.addresses[self._next_address % len(self.addresses)]
                self._next_address += 1
            self._leader_address = None
            self._last_dialled = address
            conn = _Connection(address, self._ssl, self._token)
            try:
                await conn.open(timeout_s)
            except errors.ClientError:
                await conn.close()
                raise
            self._conn = conn
            return conn

    async def _drop_connection(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()


def _view_of(op: str, address: str, answer: Any) -> dict[str, Any]:
    """``answer`` if it is a JSON object (a member list, a status), else ``ClientError``
    naming the op and the node: a node (or whoever answers at its address) that sends
    anything else is not followed into a crash."""
    if not isinstance(answer, dict):
        kind = type(answer).__name__
        raise errors.ClientError(f"{op}: {address} answered a {kind}, not a JSON object")
    return answer


def check_sizes(args: dict[str, Any]) -> None:
    """Refuse a key or value the cluster would refuse, before sending it (``ValueTooLarge``).

    Measured as the server measures them (wire/client.py): keys in bytes of UTF-8,
    values (and a cas's ``expected``, which no stored value larger than the limit can
    equal) in bytes of their JSON encoding. A multi-megabyte value would otherwise
    overrun the line limit, lose its connection, and be retried until the deadline.
    """
    for field in ("k", "prefix"):
        key = args.get(field)
        if isinstance(key, str) and len(key) * 4 > limits.KEY_BYTES_MAX:
            size = len(key.encode("utf-8", "surrogatepass"))
            if size > limits.KEY_BYTES_MAX:
                raise errors.ValueTooLarge(f"args.{field}", size, limits.KEY_BYTES_MAX)
    for field in ("v", "expected"):
        if args.get(field) is not None:
            size = len(msgspec.json.encode(args[field]))
            if size > limits.VALUE_BYTES_MAX:
                raise errors.ValueTooLarge(f"args.{field}", size, limits.VALUE_BYTES_MAX)


def describe_failure(exc: BaseException) -> str:
    """A few words for why one node gave no answer: what ``NoNodeAnswered`` lists."""
    if revoked_server(exc):
        return "TLS refused: its certificate is on the revocation list (--tls-crl)"
    if (reason := refusal_reason(exc)) is not None:
        return f"TLS refused: {reason}"
    if isinstance(exc, _SilentClose):
        return "closed the TLS connection before answering"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"host not found ({exc.strerror})"
    if isinstance(exc, ConnectionError):
        return "connection lost"
    return exc.strerror or str(exc) if isinstance(exc, OSError) else str(exc)


def _was_pending(op: str, node: str, before: dict[str, Any]) -> bool:
    """Whether ``op`` on ``node`` still had work to do in the ``before`` view."""
    if op == "member_promote":
        return node in before["learners"]
    return node in before["voters"] or node in before["learners"]


def _expire(future: asyncio.Future[ClientResponse] | None) -> None:
    if future is not None and not future.done():
        future.set_exception(TimeoutError())


@functools.cache
def _receipt_type() -> type[Receipt]:
    """``Receipt``, imported at the first write (a ``kv get`` never loads it), then kept:
    an import statement in ``put`` itself cost 1.6 us a call."""
    from resonetics.raft.entry import Receipt

    return Receipt


def _now() -> float:
    return time.monotonic()  # the clock of ``_call``'s deadlines


def _error_for(response: ClientResponse) -> errors.ClientError:
    message = response.message if isinstance(response.message, str) else response.code
    if response.code == codes.BAD_REQUEST:
        field, _, reason = message.partition(": ")
        return errors.BadRequest(field, reason or message)
    if response.code == codes.NOT_LEADER:
        hint = response.result if isinstance(response.result, dict) else {}
        return errors.NotLeader(hint.get("leader"), hint.get("leader_addr"), hint.get("term", 0))
    table: dict[str, type[errors.ClientError]] = {
        codes.TOO_LARGE: errors.TooLarge,
        codes.TIMEOUT: errors.Timeout,
        codes.UNAVAILABLE: errors.Unavailable,
        codes.RATE_LIMITED: errors.RateLimited,
        codes.SESSION_EXPIRED: errors.SessionExpired,
        codes.FORBIDDEN: errors.Forbidden,
        codes.UNAUTHENTICATED: errors.Unauthenticated,
        codes.LEASE_NOT_FOUND: errors.LeaseNotFound,
        codes.LEASE_LIMIT: errors.LeaseLimit,
    }
    return table.get(response.code, errors.ClientError)(message)


class Client:
    """A blocking client; the same API as ``AsyncClient``, safe to share between threads."""

    def __init__(
        self,
        addresses: list[str] | str,
        *,
        timeout: float = 10.0,
        client_id: str | None = None,
        tls: TLSConfig | None = None,
        token: str | None = None,
    ) -> None:
        # Built first: a bad TLS path raises before a thread exists that nobody would stop.
        self._async = AsyncClient(
            addresses, timeout=timeout, client_id=client_id, tls=tls, token=token
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    @property
    def leader(self) -> str | None:
        return self._async.leader

    @property
    def leader_address(self) -> str | None:
        return self._async.leader_address

    @property
    def client_id(self) -> str:
        return self._async.client_id

    def put(self, key: str, value: Any, *, lease: int | None = None) -> Receipt:
        return self._run(self._async.put(key, value, lease=lease))

    def lease_grant(self, ttl_s: float) -> int:
        return self._run(self._async.lease_grant(ttl_s))

    def lease_keepalive(self, lease_id: int) -> dict[str, Any]:
        return self._run(self._async.lease_keepalive(lease_id))

    def lease_revoke(self, lease_id: int, *, within: str = "") -> list[str]:
        return self._run(self._async.lease_revoke(lease_id, within=within))

    def lease_info(self, lease_id: int) -> dict[str, Any]:
        return self._run(self._async.lease_info(lease_id))

    def lease_list(self) -> list[int]:
        return self._run(self._async.lease_list())

    def lease(self, ttl_s: float, *, interval_s: float | None = None) -> SyncKeptLease:
        """``with client.lease(ttl) as lease:`` kept alive on the client's loop thread."""
        return SyncKeptLease(self, KeptLease(self._async, ttl_s, interval_s=interval_s))

    @property
    def async_client(self) -> AsyncClient:
        """The ``AsyncClient`` this client drives on its own loop thread."""
        return self._async

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on this client's loop thread and wait for it (recipes use it)."""
        return self._run(coro)

    def get(self, key: str, *, consistency: str = "linearizable", with_meta: bool = False) -> Any:
        return self._run(self._async.get(key, consistency=consistency, with_meta=with_meta))

    def delete(self, key: str) -> bool:
        return self._run(self._async.delete(key))

    def cas(self, key: str, expected: Any, value: Any) -> bool:
        return self._run(self._async.cas(key, expected, value))

    def scan(
        self,
        prefix: str = "",
        limit: int = 1000,
        *,
        consistency: str = "linearizable",
        after: str | None = None,
        at_index: int | None = None,
        meta: bool = False,
    ) -> ScanPage:
        return self._run(
            self._async.scan(
                prefix, limit, consistency=consistency, after=after, at_index=at_index, meta=meta
            )
        )

    def scan_all(
        self,
        prefix: str = "",
        page: int = SCAN_ALL_PAGE_DEFAULT,
        *,
        consistent: bool = False,
        consistency: str = "linearizable",
    ) -> Iterator[tuple[str, Any]]:
        """``AsyncClient.scan_all``, one page fetched per ``page`` items consumed."""
        after: str | None = None
        at_index: int | None = None
        while True:
            got = self.scan(prefix, page, consistency=consistency, after=after, at_index=at_index)
            yield from got
            if not got.more:
                return
            after = got.next
            if consistent and at_index is None:
                at_index = got.state_index

    def txn(
        self,
        compare: list[CompareLike] | None = None,
        then: list[OpLike] | None = None,
        otherwise: list[OpLike] | None = None,
    ) -> TxnResult:
        return self._run(self._async.txn(compare, then, otherwise))

    def watch(
        self, prefix: str = "", from_index: int | None = None
    ) -> Generator[WatchEvent, None, None]:
        """``AsyncClient.watch`` as a blocking iterator (close it to end the stream)."""
        from resonetics.watch import blocking_watch

        return blocking_watch(self._run, self._async.watch(prefix, from_index))

    def status(self, address: str | None = None) -> dict[str, Any]:
        return self._run(self._async.status(address))

    def call(self, op: str, args: dict[str, Any] | None = None, /, **kwargs: Any) -> Any:
        """``AsyncClient.call``: ``call("kv_get", {"k": "a"})`` or ``call("incr", by=2)``."""
        return self._run(self._async.call(op, args, **kwargs))

    @overload
    def proxy(self, machine: MachineLike) -> MachineProxy: ...
    @overload
    def proxy(self, machine: MachineLike, as_: Callable[..., P]) -> P: ...
    def proxy(self, machine: MachineLike, as_: Callable[..., P] | None = None) -> MachineProxy | P:
        """Blocking functions for ``machine``'s declared ops (``resonetics.proxies``)."""
        from resonetics.proxies import proxy

        return proxy(self, machine) if as_ is None else proxy(self, machine, as_)

    def member_list(self) -> dict[str, Any]:
        return self._run(self._async.member_list())

    def member_add(
        self,
        node: str,
        address: str,
        *,
        learner: bool = False,
        client_address: str | None = None,
    ) -> dict[str, Any]:
        return self._run(
            self._async.member_add(node, address, learner=learner, client_address=client_address)
        )

    def member_promote(self, node: str) -> dict[str, Any]:
        return self._run(self._async.member_promote(node))

    def member_remove(self, node: str) -> dict[str, Any]:
        return self._run(self._async.member_remove(node))

    def transfer_leader(self, to: str) -> dict[str, Any]:
        return self._run(self._async.transfer_leader(to))

    def close(self) -> None:
        if self._loop.is_running():
            self._run(self._async.close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


__all__ = [
    "AsyncClient",
    "Client",
    "Receipt",
    "ScanPage",
    "TxnResult",
    "WatchEvent",
    "check_sizes",
    "describe_failure",
]
