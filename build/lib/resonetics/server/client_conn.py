"""One client connection: bounded input, deadlines, and a fair share of the event loop.

Theory of operation
-------------------
An ``asyncio.Protocol`` rather than a ``StreamReader`` task: bytes arrive in
``data_received`` and go straight into a ``LineBuffer`` (``wire/framing.py``)
whose bound depends on the connection's standing (``server/admission.py``):
64 KiB until it has sent one valid request, ``LINE_BYTES_MAX`` after. The
unfinished part of a line is charged to the node-wide ``InputBudget``; a line
that would pass either bound closes the connection with ``TOO_LARGE``, so
memory held for client input is bounded by the budget whatever the number of
connections, and it is returned when a connection closes.

Until it has sent one valid request a connection may send only
``limits.UNESTABLISHED_LINES_PER_S`` lines a second (a client's first line is a
request, so this costs it nothing; a junk flood gets almost no CPU).

Fairness: complete lines are handled in batches of ``limits.LINES_PER_TURN``;
when a chunk holds more, the connection stops reading and the rest is handled
at the loop's next turn, so one busy connection cannot keep the loop from peer
traffic, ticks or other clients. Every line, valid or not, takes a token from
the connection's line bucket (twice its request rate); when it is empty the
node stops reading from that connection until the bucket refills: junk costs
the sender its own throughput, not the cluster's. Lines that are not requests
(``note_junk``, told by the handler) also take a token from a smaller junk
bucket (``limits.JUNK_LINES_PER_S``, never more than the line rate), and reading
stops the same way when it is empty: a request rate sized for one pipelining
client does not let that connection send as much junk. Replies that the client
does not read also stop its reading (the transport's high-water mark, through
``pause_writing``/``resume_writing``).

Deadlines are checked by the server's sweep (``overdue``) rather than by a
timer per connection; the sweep closes connections that sent no valid request
in time, hold an unfinished line for too long (slow-loris) or have been idle.

The object doubles as the connection's writer for ``Outbox`` and responders:
``write``, ``is_closing``, ``close``, ``get_extra_info`` and ``transport``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any, cast

from resonetics import limits
from resonetics.errors import LineTooLong
from resonetics.security.authz import Identity
from resonetics.security.ratelimit import TokenBucket
from resonetics.server import admission
from resonetics.server.admission import ClientAdmission, InputBudget
from resonetics.wire.framing import LineBuffer

#: Seconds a refused connection is read (and its bytes dropped) before it is closed.
REFUSAL_GRACE_S = 0.5

#: Handle one line; False closes the connection (a bug in the handler, already counted).
LineHandler = Callable[[bytes, "ClientConnection"], bool]
#: Told when a connection closes, and why (one of the reasons in ``admission``, or None).
OnClosed = Callable[["ClientConnection", str | None], None]


class ClientConnection(asyncio.Protocol):
    """A client connection's reading, bookkeeping and writing."""

    def __init__(
        self,
        *,
        admission_: ClientAdmission,
        budget: InputBudget,
        line_bucket: TokenBucket,
        request_bucket: TokenBucket,
        on_line: LineHandler,
        on_open: Callable[[ClientConnection], bool],
        make_room: Callable[[ClientConnection, str], bool],
        on_closed: OnClosed,
        too_large: Callable[[str], bytes],
        on_throttled: Callable[[str], None] | None = None,
    ) -> None:
        self._admission = admission_
        self._budget = budget
        self._line_bucket = line_bucket
        #: Until its first valid request a connection may send only a few lines a second:
        #: junk from a connection that never asks anything costs the node next to nothing.
        self._probation_bucket = TokenBucket(
            limits.UNESTABLISHED_LINES_PER_S, limits.UNESTABLISHED_LINES_BURST
        )
        #: Lines that were not requests (``note_junk``): a smaller budget than the line rate.
        self._junk_bucket = _junk_bucket(line_bucket)
        self._on_line = on_line
        self._on_open = on_open
        self._make_room = make_room
        self._on_closed = on_closed
        self._too_large = too_large
        #: Told "line rate" or "junk rate" each time reading stops for that budget (metrics).
        self._on_throttled = on_throttled
        self.transport: asyncio.Transport | None = None
        self.ip = "?"
        self._admitted = False
        # The hard bound; the smaller one for a connection not yet served is checked as
        # its lines are handled (``_within_cap``), in order: a valid request and a long
        # line that arrive in one chunk must see the request served first.
        self._buffer = LineBuffer(limits.LINE_BYTES_MAX)
        self._held = 0
        self._pending: deque[bytes] = deque()
        self._scheduled = False
        self._paused_for: set[str] = set()
        self._closing = False
        self._discarding = False
        self._close_reason: str | None = None
        now = time.monotonic()
        self.opened = now
        self.last_line = now
        self.partial_since: float | None = None
        #: Set by the server once a valid request (or a successful Auth) arrived.
        self.established = False
        #: Client requests this connection may send (answered RATE_LIMITED beyond).
        self.request_bucket = request_bucket
        #: Who sends here (``security/authz.py``); None after an Auth with an unknown token.
        self.identity: Identity | None = None
        #: Failed Auth lines so far (closed at ``limits.AUTH_FAILURES_PER_CONNECTION_MAX``).
        self.auth_failures = 0
        #: The request budget this connection's identity shares (looked up once).
        self.identity_bucket: TokenBucket | None = None
        #: Whether a refusal on this connection was logged already (once is enough).
        self.warned = False

    # --- the writer interface --------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self.transport is not None and not self._closing:
            self.transport.write(data)

    def is_closing(self) -> bool:
        return self._closing or self.transport is None or self.transport.is_closing()

    def close(self, reason: str | None = None) -> None:
        if not self._closing:
            self._closing = True
            self._close_reason = reason
            if self.transport is not None:
                self.transport.close()

    def evict(self, reason: str) -> None:
        """Give up this connection's slot now (for a newcomer), and close it."""
        if self._admitted:
            self._admitted = False
            self._admission.release(self.ip)
        self.close(reason)
        if self.transport is not None:
            self.transport.abort()

    def abort(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.abort()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.transport.get_extra_info(name, default) if self.transport else default

    # --- protocol callbacks -----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.ip = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        refused = self._admission.admit(self.ip)
        if refused is not None and self._make_room(self, refused):
            refused = self._admission.admit(self.ip)
        if refused is not None:
            self._closing = True
            self._close_reason = refused
            self.transport.abort()  # nothing read, nothing owed: a slot is all it wanted
            return
        self._admitted = True
        if not self._on_open(self):
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._pending.clear()
        self._budget.resize(self._held, 0)
        self._held = 0
        self._buffer = LineBuffer(1)  # drop whatever was buffered now
        if self._admitted:
            self._admitted = False
            self._admission.release(self.ip)
        self._on_closed(self, self._close_reason)

    def pause_writing(self) -> None:
        self._pause("replies unread")

    def resume_writing(self) -> None:
        self._resume("replies unread")

    def data_received(self, data: bytes) -> None:
        if self._closing or self._discarding:
            return  # refused: what still arrives is read and dropped until the close
        try:
            lines = self._buffer.feed(data)
        except LineTooLong as exc:
            self._refuse_line(f"line longer than {exc.limit_bytes} bytes; closing")
            return
        if not self._charge(self._buffer.pending_bytes):
            self._refuse_line("the node's input budget is exhausted; closing", budget=True)
            return
        now = time.monotonic()
        if lines:
            self.last_line = now
        if not self._buffer.pending_bytes:
            self.partial_since = None
        elif lines or self.partial_since is None:
            self.partial_since = now  # a new line started in this chunk
        self._pending.extend(lines)
        self._drain_pending()

    def note_junk(self) -> None:
        """The line just handled was not a request: charge the junk budget, and stop
        reading this connection until it refills when it is spent."""
        if self._junk_bucket.try_take() or self._closing:
            return
        if "junk rate" not in self._paused_for:
            self._pause("junk rate")
            if self._on_throttled is not None:
                self._on_throttled("junk rate")
            wait = max(self._junk_bucket.wait_s(), 0.001)
            asyncio.get_running_loop().call_later(wait, self._after_junk_pause)

    def _after_junk_pause(self) -> None:
        self._resume("junk rate")
        if self._pending and not self._closing:
            self._drain_pending()

    # --- internals ------------------------------------------------------------------------
    def _charge(self, want: int) -> bool:
        if self._budget.resize(self._held, want):
            self._held = want
            return True
        return False

    def _refuse_line(self, message: str, *, budget: bool = False) -> None:
        """Answer TOO_LARGE, drop the line's bytes now, close after a short grace.

        Closing at once with the rest of the line unread would make the kernel
        reset the connection, and the answer could be lost with it; reading and
        dropping for ``REFUSAL_GRACE_S`` lets it arrive. Nothing is buffered meanwhile.
        """
        self.write(self._too_large(message))
        self.close_after_answer(admission.INPUT_BUDGET if budget else admission.LINE_TOO_LONG)

    def close_after_answer(self, reason: str) -> None:
        """Read nothing more from this connection and close it after a short grace, so the
        answer just written reaches the client (see ``_refuse_line``)."""
        self._discarding = True
        self._pending.clear()
        self._budget.resize(self._held, 0)
        self._held = 0
        self._buffer = LineBuffer(1)
        asyncio.get_running_loop().call_later(REFUSAL_GRACE_S, self.close, reason)

    def _drain_pending(self) -> None:
        """Handle up to LINES_PER_TURN lines; the rest at the next turn, reading paused."""
        self._scheduled = False
        handled = 0
        while self._pending and not self._closing:
            if "junk rate" in self._paused_for:
                return  # the rest when the junk budget refills (``_after_junk_pause``)
            if handled >= limits.LINES_PER_TURN:
                self._schedule_more()
                return
            bucket = self._line_bucket if self.established else self._probation_bucket
            if not bucket.try_take():
                self._pause("line rate")
                if self._on_throttled is not None:
                    self._on_throttled("line rate")
                wait = max(bucket.wait_s(), 0.001)
                asyncio.get_running_loop().call_later(wait, self._after_rate_pause)
                return
            line = self._pending.popleft()
            handled += 1
            if not self._within_cap(len(line)):
                return
            if not self._on_line(line, self):
                self.close()
                return
        if self._within_cap(self._buffer.pending_bytes):
            self._resume("backlog")

    def _within_cap(self, size: int) -> bool:
        """Refuse (and say so) a line longer than this connection may send yet."""
        cap = admission.line_cap(self.established)
        if size <= cap:
            return True
        self._refuse_line(f"line: longer than {cap} bytes (before a first valid request)")
        return False

    def _schedule_more(self) -> None:
        self._pause("backlog")
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._drain_pending)

    def _after_rate_pause(self) -> None:
        self._resume("line rate")
        if self._pending and not self._closing:
            self._drain_pending()

    def _pause(self, why: str) -> None:
        if not self._paused_for and self.transport is not None and not self._closing:
            self.transport.pause_reading()
        self._paused_for.add(why)

    def _resume(self, why: str) -> None:
        if why not in self._paused_for:
            return
        self._paused_for.discard(why)
        if not self._paused_for and self.transport is not None and not self._closing:
            self.transport.resume_reading()


def _junk_bucket(line_bucket: TokenBucket) -> TokenBucket:
    """``limits.JUNK_LINES_PER_S`` (burst ``JUNK_LINES_BURST``), capped by the line rate; no
    limit when the operator turned rate limits off (a line rate of 0)."""
    if line_bucket.rate_per_s == 0:
        return TokenBucket(0.0, 1)
    return TokenBucket(
        min(limits.JUNK_LINES_PER_S, line_bucket.rate_per_s),
        min(limits.JUNK_LINES_BURST, line_bucket.burst),
    )


__all__ = ["ClientConnection", "LineHandler", "OnClosed"]
