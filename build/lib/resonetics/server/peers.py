"""Outbound links to peers: one long-lived TCP connection each, reconnected with backoff.

Raft messages are one-way datagrams as far as the protocol is concerned (every
response is a message of its own, sent over the responder's own link), so a
link only ever writes. Its queue is bounded: when a peer is slow or gone, the
oldest messages are dropped, which Raft tolerates (the leader re-sends from its
progress tracking) and which keeps a dead peer from growing our memory.

Before its first message a link completes the peer handshake of
``security/peer_auth.py`` (the peer's ``PeerChallenge``, our ``Hello``, its
``PeerWelcome``): the other end must be the node we meant to reach, of our
cluster, serving our state machine (checked after our Hello is written, so the
peer counts the mismatch too), and prove it (TLS certificate naming its node
id, or the cluster key). On a TLS cluster the link also checks the peer's certificate against the
cluster CA and the host part of the peer's address (``security/tls.py``). A
peer that fails is retried with the usual backoff and logged once per distinct
reason, never with a traceback; failed handshakes are counted (``status`` →
``peer_auth.link_problems``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from resonetics import limits
from resonetics.errors import ResoneticsError
from resonetics.security.peer_auth import (
    PeerAuthError,
    PeerCredentials,
    answer_challenge,
    check_challenge_machine,
    check_welcome,
)
from resonetics.security.tls import certificate_node_id
from resonetics.server import events
from resonetics.server.config import parse_address
from resonetics.wire.envelope import decode_envelope, encode_envelope
from resonetics.wire.peer import (
    CHALLENGE_KIND,
    HELLO_KIND,
    WELCOME_KIND,
    PeerChallenge,
    PeerRefused,
    PeerWelcome,
    decode_handshake,
)

log = logging.getLogger("resonetics.peers")

#: Starts a task owned by the node (``NodeServer._spawn``): its failure stops the node.
Spawn = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]

#: Encoded messages queued for one peer before the oldest are dropped.
PEER_QUEUE_MESSAGES_MAX = 4096
#: Reconnect backoff bounds, seconds.
BACKOFF_MIN_S = 0.05
BACKOFF_MAX_S = 2.0
#: Bytes buffered in the transport before the link waits for the peer to drain.
WRITE_HIGH_WATER_BYTES = 4 << 20


class PeerLink:
    """Sends encoded lines to one peer, in order, over one connection at a time."""

    def __init__(
        self,
        creds: PeerCredentials,
        peer_id: str,
        address: str,
        advertised: str,
        *,
        ssl: ssl.SSLContext | None = None,
    ) -> None:
        self.node_id = creds.node_id
        self._creds = creds
        #: Our own peer address, told to the peer in the Hello (for a joining node).
        self._advertised = advertised
        self._ssl = ssl
        self._last_problem = ""
        #: Handshakes the other end refused, or that we refused (``status``).
        self.handshakes_failed = 0
        #: One "peer_link_down" line per interval while the peer stays away.
        self._down_lines = events.Throttle()
        self.peer_id = peer_id
        self.address = address
        self._queue: deque[bytes] = deque(maxlen=PEER_QUEUE_MESSAGES_MAX)
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.connected = False
        #: Where this link's events are kept besides the log (the node's dashboard feed).
        self.event_ring: events.EventRing | None = None
        self.dropped = 0
        #: Set while connected and the backlog has been written: sends then skip the queue.
        self._writer: asyncio.StreamWriter | None = None
        #: The connection while the link is up (``connected_under``, ``drop_connection``).
        self._live: asyncio.StreamWriter | None = None
        #: Lines sent during this loop turn, written together by ``_uncork``.
        self._corked: list[bytes] = []
        self._flush_scheduled = False

    def start(self, spawn: Spawn) -> None:
        """Run the link as a task started by ``spawn`` (the node's TaskGroup owns it)."""
        self._task = spawn(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def send(self, line: bytes) -> None:
        """Queue ``line``; everything sent in one loop turn leaves in one write."""
        self._corked.append(line)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._uncork)

    def flush(self) -> None:
        """Write what ``send`` queued now rather than at the loop's next turn."""
        if self._corked:
            self._uncork()

    def _uncork(self) -> None:
        self._flush_scheduled = False
        lines, self._corked = self._corked, []
        if not lines:
            return  # already written by flush()
        writer = self._writer
        if (
            writer is not None
            and not self._queue
            and not writer.is_closing()
            and writer.transport.get_write_buffer_size() <= WRITE_HIGH_WATER_BYTES
        ):
            # Straight to the socket: this runs at the loop's next turn, while a disk
            # write handed to the disk thread is still in progress, which is what lets
            # the leader's fsync overlap the followers'.
            writer.write(lines[0] if len(lines) == 1 else b"".join(lines))
            return
        for line in lines:
            if len(self._queue) == self._queue.maxlen:
                self.dropped += 1
            self._queue.append(line)
        self._wakeup.set()

    async def _run(self) -> None:
        backoff = BACKOFF_MIN_S
        while True:
            try:
                host, port = parse_address(self.address, what=f"peer {self.peer_id}")
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=self._ssl, server_hostname=host if self._ssl else None
                )
                await self._handshake(reader, writer)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ResoneticsError) as exc:
                self._note_problem(exc)
                self._note_down(f"connect failed: {_reason(exc)}")
                self._queue.clear()  # stale by the time we reconnect; Raft re-sends
                await asyncio.sleep(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                continue
            backoff = BACKOFF_MIN_S
            self._last_problem = ""
            self.connected = True
            self._live = writer
            events.emit(
                events.Event(events.PEER_LINK_UP, {"peer": self.peer_id, "address": self.address}),
                ring=self.event_ring,
            )
            try:
                await self._pump(reader, writer)
            except (OSError, ConnectionError) as exc:
                self._note_down(f"lost: {_reason(exc)}")
            finally:
                self.connected = False
                self._writer = None
                self._live = None
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()

    def use_ssl(self, context: ssl.SSLContext) -> None:
        """The TLS context of this link's next connections (a reload's)."""
        self._ssl = context

    def connected_under(self, revoked: Callable[[Any], bool]) -> bool:
        """Whether the link is up with a peer whose certificate ``revoked`` judges revoked
        (given the connection's ``ssl_object``)."""
        live = self._live
        return live is not None and revoked(live.get_extra_info("ssl_object"))

    def drop_connection(self) -> None:
        """Close the live connection; the link reconnects (and handshakes) again."""
        if self._live is not None:
            self._live.transport.abort()

    def _note_down(self, reason: str) -> None:
        """A ``peer_link_down`` event, at most one per interval per peer (``events.Throttle``)."""
        held = self._down_lines.allow(asyncio.get_running_loop().time())
        if held is None:
            return
        fields: dict[str, events.FieldValue] = {
            "peer": self.peer_id,
            "address": self.address,
            "reason": reason,
        }
        if held:
            fields["held_back"] = held
        events.emit(events.Event(events.PEER_LINK_DOWN, fields), ring=self.event_ring)

    async def _handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer the peer's challenge and check its welcome; raise on any failure."""
        try:
            async with asyncio.timeout(limits.PEER_HANDSHAKE_TIMEOUT_S):
                got = decode_handshake(
                    decode_envelope(await reader.readuntil(b"\n")), CHALLENGE_KIND
                )
                if isinstance(got, PeerRefused):
                    raise PeerAuthError(f"{self.peer_id} refused the link: {got.reason}")
                assert isinstance(got, PeerChallenge)
                cert_node = certificate_node_id(writer.get_extra_info("ssl_object"))
                hello = answer_challenge(
                    self._creds, self.peer_id, got, cert_node, self._advertised
                )
                writer.write(encode_envelope(HELLO_KIND, hello, 0))
                check_challenge_machine(self._creds, got)
                answer = decode_handshake(
                    decode_envelope(await reader.readuntil(b"\n")), WELCOME_KIND
                )
                if isinstance(answer, PeerRefused):
                    raise PeerAuthError(f"{self.peer_id} refused the link: {answer.reason}")
                assert isinstance(answer, PeerWelcome)
                check_welcome(self._creds, got, hello, answer)
        except BaseException:
            writer.close()
            raise

    def _note_problem(self, exc: BaseException) -> None:
        """A TLS or handshake failure is a configuration problem an operator must see:
        warn once per distinct reason. A refused or reset connection is a node that is
        down or restarting: debug only."""
        if isinstance(exc, ssl.SSLError):
            problem = f"TLS failed: {getattr(exc, 'verify_message', '') or exc.reason or exc}"
        elif isinstance(exc, ResoneticsError):
            problem = str(exc)
            self.handshakes_failed += 1
        else:
            log.debug("link to %s at %s: %r", self.peer_id, self.address, exc)
            return
        if problem != self._last_problem:
            self._last_problem = problem
            log.warning("peer link to %s at %s: %s", self.peer_id, self.address, problem)

    @property
    def last_problem(self) -> str:
        """The last handshake or TLS failure of this link ("" once it connected)."""
        return self._last_problem

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        closed = asyncio.ensure_future(reader.read())  # the peer never writes back; EOF = gone
        waiter: asyncio.Future[Any] | None = None
        try:
            while not closed.done():
                if not self._queue:
                    self._writer = writer
                    self._wakeup.clear()
                    wake: asyncio.Future[Any] = asyncio.ensure_future(self._wakeup.wait())
                    waiter = wake
                    await asyncio.wait({wake, closed}, return_when=asyncio.FIRST_COMPLETED)
                    wake.cancel()
                    continue
                self._writer = None
                batch = list(self._queue)
                self._queue.clear()
                writer.write(b"".join(batch))
                if writer.transport.get_write_buffer_size() > WRITE_HIGH_WATER_BYTES:
                    await writer.drain()
            self._writer = None
            raise ConnectionResetError("peer closed the connection")
        finally:
            # Both helpers end with the link, cancelled here too (a cancelled link
            # would otherwise leave its wake-up waiter pending forever).
            await end_helpers([f for f in (closed, waiter) if f is not None])


def _reason(exc: BaseException) -> str:
    """A short, one-line reason (``ConnectionRefusedError: [Errno 111] ...``)."""
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, ResoneticsError) else f"{type(exc).__name__}: {text}"


def _retrieve(helper: asyncio.Future[Any]) -> None:
    """Read a finished helper's exception: a peer that reset the connection is an
    ordinary lost link, not "Task exception was never retrieved" with a traceback."""
    if not helper.cancelled():
        helper.exception()


async def end_helpers(helpers: list[asyncio.Future[Any]]) -> None:
    """Cancel the pump's helpers, wait for them, and read every outcome.

    The link itself may be cancelled (``stop``) while this waits; the outcomes are
    still read — at once for the helpers already done, and by a done-callback for
    the others — so no finished helper is left with an unread exception.
    """
    for helper in helpers:
        if not helper.done():
            helper.cancel()
    try:
        unfinished = [h for h in helpers if not h.done()]
        if unfinished:
            await asyncio.wait(unfinished)
    finally:
        for helper in helpers:
            if helper.done():
                _retrieve(helper)
            else:
                helper.add_done_callback(_retrieve)


__all__ = ["PeerLink", "Spawn"]
