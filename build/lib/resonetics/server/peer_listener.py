"""The peer listener: inbound peer links, authenticated before any Raft message is read.

Theory of operation
-------------------
A node listens for peers on its own port (DESIGN §7; clients use another
listener, ``node_server.py``). Every accepted connection must first complete
the handshake of ``security/peer_auth.py`` within
``limits.PEER_HANDSHAKE_TIMEOUT_S``, reading at most
``limits.PEER_HANDSHAKE_LINE_BYTES_MAX`` bytes per line until then: a stranger
who reaches the port gets a ``PeerRefused`` line (or nothing, on a timeout) and
a closed connection, never a stepped message, and costs a few KiB of memory.

After the handshake the connection carries Raft messages from one node, the
authenticated one. Each is checked before the core sees it:

* ``refuse(peer, msg)`` (``runtime/peer_gate.py``, the rule the simulator
  runs too) must find nothing wrong: ``src`` the authenticated node, ``dst``
  this node, the sender a member (or a leader replicating to us).

A message that fails a check is dropped and counted, and the first drop for
each reason on a connection is logged: an authenticated peer that sends one is
misconfigured or buggy, and an operator should see it once, not a flood.
The connection stays up (Raft tolerates lost messages), except for a line that
cannot be framed at all.

The handshake reads with a ``StreamReader``; once it is done the connection's
transport is handed to ``_PeerLines``, a protocol that decodes, checks and
delivers each line in ``data_received``. A ``StreamReader`` task wakes a loop
turn after the bytes arrive, so every AppendEntries and every ack took one more
turn than it had to on its way into the core: on sequential writes that is
twice per write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

from resonetics import limits
from resonetics.errors import LineTooLong, ResoneticsError
from resonetics.raft.messages import Message
from resonetics.security.peer_auth import (
    PeerAuthError,
    PeerCredentials,
    check_hello,
    make_challenge,
    make_welcome,
)
from resonetics.security.tls import certificate_node_id
from resonetics.wire.envelope import decode_envelope, encode_envelope
from resonetics.wire.framing import LineBuffer
from resonetics.wire.peer import (
    CHALLENGE_KIND,
    REFUSED_KIND,
    WELCOME_KIND,
    Hello,
    PeerRefused,
    decode_hello,
    decode_peer,
)

log = logging.getLogger("resonetics.peers")

#: ``dropped`` reason: an unexpected exception while reading a peer connection.
HANDLER_ERROR = "handler error"
#: Distinct refusal reasons remembered (and logged) before the rest are counted together.
_REASONS_TRACKED_MAX = 64

#: Deliver a checked message from an authenticated peer to the core.
Deliver = Callable[[Message], None]
#: Why a message from this authenticated node must be dropped (None: step it).
Refuse = Callable[[str, Message], str | None]
#: Starts a task owned by the node, named for the log (``NodeServer._spawn``).
SpawnNamed = Callable[[Coroutine[Any, Any, None], str], "asyncio.Task[None]"]
#: An authenticated peer's own peer address, from its Hello (for a joining node).
OnHello = Callable[[str, str], None]


class PeerListener:
    """Accepts peer links for one node; owns their connections and counters."""

    def __init__(
        self,
        creds: PeerCredentials,
        *,
        ssl_context: ssl.SSLContext | None,
        deliver: Deliver,
        refuse: Refuse,
        on_hello: OnHello,
        now_ms: Callable[[], int],
    ) -> None:
        self._creds = creds
        self._ssl = ssl_context
        self._deliver = deliver
        self._refuse_message = refuse
        self._on_hello = on_hello
        self._now_ms = now_ms
        self._server: asyncio.Server | None = None
        self._spawn: SpawnNamed | None = None
        self._closed = False
        self._connections: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        #: Refused handshakes by reason, and dropped messages by reason (for status).
        self.refused: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        #: Peers whose handshake succeeded on a connection still open.
        self.authenticated: Counter[str] = Counter()

    async def start(self, host: str, port: int, spawn: SpawnNamed) -> None:
        """Listen; each accepted connection is served by a task ``spawn`` starts (the
        node's TaskGroup owns it, so shutdown waits for it and a bug in it stops the node)."""
        self._spawn = spawn
        self._server = await asyncio.start_server(
            self._accept,
            host,
            port,
            limit=limits.PEER_HANDSHAKE_LINE_BYTES_MAX,
            reuse_address=True,
            ssl=self._ssl,
            ssl_handshake_timeout=limits.TLS_HANDSHAKE_TIMEOUT_S if self._ssl else None,
        )

    def close(self) -> None:
        self._closed = True
        if self._server is not None:
            self._server.close()
        for writer in list(self._connections):
            writer.close()

    def cut(self, revoked: Callable[[Any], bool]) -> int:
        """Close the connections whose ``ssl_object`` ``revoked`` judges revoked; how many."""
        cut = 0
        for writer in list(self._connections):
            if revoked(writer.get_extra_info("ssl_object")):
                writer.transport.abort()
                cut += 1
        return cut

    async def wait_closed(self, grace_s: float) -> None:
        if self._handlers:
            await asyncio.wait(set(self._handlers), timeout=grace_s)
        for writer in list(self._connections):
            writer.transport.abort()

    # --- one connection -------------------------------------------------------------------
    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closed or self._spawn is None:
            writer.close()  # accepted as the node began shutting down
            return
        self._spawn(self._on_connection(reader, writer), "peer connection")

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if len(self._connections) >= limits.PEER_CONNECTIONS_MAX:
            self.refused["too many peer connections"] += 1
            writer.close()
            return
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        self._connections.add(writer)
        try:
            peer = await self._handshake(reader, writer)
            if peer is not None:
                self.authenticated[peer] += 1
                try:
                    await self._serve(peer, reader, writer)
                finally:
                    self.authenticated[peer] -= 1
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        except Exception:
            self._handler_failed(_remote(writer))
        finally:
            self._connections.discard(writer)
            self._handlers.discard(handler)
            writer.close()

    async def _handshake(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> str | None:
        """The authenticated node id, or None after refusing (reason written, counted)."""
        challenge = make_challenge(self._creds)
        writer.write(encode_envelope(CHALLENGE_KIND, challenge, self._now_ms()))
        try:
            async with asyncio.timeout(limits.PEER_HANDSHAKE_TIMEOUT_S):
                line = await reader.readuntil(b"\n")
            hello: Hello = decode_hello(decode_envelope(line))
            cert_node = certificate_node_id(writer.get_extra_info("ssl_object"))
            peer = check_hello(self._creds, challenge, hello, cert_node)
        except TimeoutError:
            self._refuse(writer, "no handshake within the deadline", send=False)
            return None
        except asyncio.LimitOverrunError:
            self._refuse(writer, "handshake line too long")
            return None
        except (PeerAuthError, ResoneticsError) as exc:
            self._refuse(writer, str(exc))
            return None
        writer.write(encode_envelope(WELCOME_KIND, make_welcome(self._creds, challenge, hello), 0))
        if hello.address:
            self._on_hello(peer, hello.address)
        # Authenticated: from here on a line may be as long as any peer message.
        reader._limit = limits.LINE_BYTES_MAX  # type: ignore[attr-defined]
        log.debug("peer link from %s authenticated", peer)
        return peer

    def _refuse(self, writer: asyncio.StreamWriter, reason: str, *, send: bool = True) -> None:
        # Reasons carry what the stranger claimed; the table stays bounded all the same.
        if self.refused[reason] == 0 and len(self.refused) < _REASONS_TRACKED_MAX:
            log.warning("refused a peer connection from %s: %s", _remote(writer), reason)
            self.refused[reason] += 1
        else:
            self.refused["(other)" if reason not in self.refused else reason] += 1
        if send:
            with contextlib.suppress(Exception):
                writer.write(encode_envelope(REFUSED_KIND, PeerRefused(reason=reason[:500]), 0))

    async def _serve(
        self, peer: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Hand the authenticated connection to ``_PeerLines``; return when it closes."""
        transport = writer.transport
        lines = _PeerLines(self, peer, transport)
        # Bytes the reader holds past the Hello: nothing a well-behaved peer sends
        # before our Welcome, but a peer may pipeline.
        held = bytes(reader._buffer)  # type: ignore[attr-defined]
        ended = reader.at_eof()
        transport.set_protocol(lines)
        if held:
            lines.data_received(held)
        if ended:
            transport.close()
        elif not transport.is_closing() and not transport.is_reading():  # type: ignore[attr-defined]
            transport.resume_reading()  # type: ignore[attr-defined]
        await lines.closed

    def _handle(self, peer: str, line: bytes) -> None:
        """Decode, check and deliver one line from the authenticated ``peer``."""
        try:
            msg = decode_peer(decode_envelope(line))
        except ResoneticsError as exc:
            self._drop(peer, "malformed", str(exc))
            return
        reason = self._refuse_message(peer, msg)
        if reason is None:
            self._deliver(msg)
        else:
            self._drop(peer, reason, f"{type(msg).__name__} {msg.src!r:.80}->{msg.dst!r:.80}")

    def _handler_failed(self, who: str) -> None:
        """A bug in reading one connection (anyone who reaches the port can send bytes
        here): counted and logged with its traceback; the caller closes that connection
        and the node serves on. Failures of the core on a delivered message stop the
        node instead (``NodeServer._on_peer_message``): they never reach this."""
        self.dropped[HANDLER_ERROR] += 1
        log.exception("peer connection from %s failed; closed", who)

    def _drop(self, peer: str, reason: str, detail: str) -> None:
        """Count by reason (a fixed set of keys); log the first of each reason in full."""
        if self.dropped[reason] == 0:
            log.warning("dropped a message from peer %s: %s (%s)", peer, reason, detail)
        self.dropped[reason] += 1


class _PeerLines(asyncio.Protocol):
    """An authenticated peer connection after its handshake: lines framed by a
    ``LineBuffer`` (``LINE_BYTES_MAX``) and handled as they arrive."""

    def __init__(self, listener: PeerListener, peer: str, transport: asyncio.BaseTransport) -> None:
        self._listener = listener
        self._peer = peer
        self._transport = transport
        self._lines = LineBuffer(limits.LINE_BYTES_MAX)
        #: Done when the connection is lost (``_serve`` waits on it).
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        listener, peer = self._listener, self._peer
        try:
            lines = self._lines.feed(data)
        except LineTooLong:
            listener._drop(peer, "line too long", f"over {limits.LINE_BYTES_MAX} bytes; closing")
            self._transport.close()
            return
        try:
            for line in lines:
                listener._handle(peer, line)
        except Exception:
            listener._handler_failed(peer)  # as in the handshake: this link only
            self._transport.close()

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


def _remote(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return "?"


__all__ = ["HANDLER_ERROR", "Deliver", "OnHello", "PeerListener", "Refuse", "SpawnNamed"]
