"""The asyncio host for one node: listener, peer links, timers, client handling, signals.

Theory of operation
-------------------
Everything that touches the Raft core runs on the event loop thread, so the
core, the driver and the state machine need no locks. Inputs (peer messages,
client commands, ticks) are fed to the driver as they arrive; one
``process_ready()`` per loop iteration (``_schedule_flush``) then persists all of
them with a single fsync before anything that depends on them is sent: that is
the group commit. No Raft rule lives here.

One TCP port serves peers and clients alike; each line is routed by its
envelope ``kind``. Peer links are outbound only (``server/peers.py``); inbound
connections from peers only ever carry messages *to* this node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import time
from typing import Any

import msgspec

from resonetics import limits
from resonetics.errors import BadRequest, ClientError, ResoneticsError, TooLarge
from resonetics.raft.messages import MESSAGE_TYPES, Message
from resonetics.raft.ready import Role
from resonetics.runtime.driver import NodeDriver
from resonetics.runtime.outcome import Outcome
from resonetics.server.config import ServerConfig
from resonetics.server.peers import PeerLink
from resonetics.server.status import node_status
from resonetics.storage.fs import OsFileSystem
from resonetics.storage.node_storage import FileNodeStorage
from resonetics.wire import codes
from resonetics.wire.client import (
    ClientRequest,
    ClientResponse,
    encode_response,
    error_response,
    validate_request,
)
from resonetics.wire.envelope import Envelope, decode_envelope, encode_envelope
from resonetics.wire.peer import decode_peer, encode_peer

log = logging.getLogger("resonetics.server")

#: Connections served at once; further ones are closed on accept.
CONNECTIONS_MAX = 1024
#: A connection that completes no line for this long is closed (slow-loris guard), seconds.
IDLE_LINE_TIMEOUT_S = 600.0
READ_OPS = frozenset({"kv_get", "kv_scan"})
WRITE_OPS = frozenset({"kv_set", "kv_delete", "kv_cas"})


class _Host:
    """``runtime.host.Host`` over real time and peer links."""

    def __init__(self, server: NodeServer) -> None:
        self._server = server

    def now_ms(self) -> int:
        return int(time.time() * 1000)

    def send(self, msg: Message) -> None:
        link = self._server.links.get(msg.dst)
        if link is not None:
            link.send(encode_peer(msg, self.now_ms()))


class NodeServer:
    """Runs one Resonetics node until ``stop()`` or a signal."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config.validate()
        self.links: dict[str, PeerLink] = {}
        self.driver = NodeDriver(
            config.raft_config(),
            FileNodeStorage(OsFileSystem(), str(config.node_dir)),
            _Host(self),
            random.Random(),
        )
        self.driver.addresses = dict(config.peers)
        self.last_contact: dict[str, float] = {}
        self._server: asyncio.Server | None = None
        self._flush_scheduled = False
        self._stopping = asyncio.Event()
        self._connections: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- lifecycle ---------------------------------------------------------------------
    async def serve_forever(self, *, install_signals: bool = True) -> None:
        await self.start()
        if install_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._stopping.set)
        await self._stopping.wait()
        await self.shutdown()

    async def start(self) -> None:
        host, port = self.config.listen_address
        self._server = await asyncio.start_server(
            self._on_connection, host, port, limit=limits.LINE_BYTES_MAX, reuse_address=True
        )
        hello = encode_envelope("Hello", {"node_id": self.config.node_id}, _now_ms())
        for peer, address in self.config.peers.items():
            if peer != self.config.node_id:
                self.links[peer] = PeerLink(self.config.node_id, peer, address, hello)
                self.links[peer].start()
        self._tasks.add(asyncio.create_task(self._ticker(), name="ticker"))
        log.info("listening on %s:%d, data in %s", host, port, self.config.node_dir)

    def stop(self) -> None:
        self._stopping.set()

    async def shutdown(self) -> None:
        """Stop accepting, finish the fsync in progress, answer waiting clients, close."""
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.driver.process_ready()
        self.driver.cancel_all(Outcome(codes.UNAVAILABLE, message="node shutting down"))
        for link in self.links.values():
            await link.stop()
        for writer in list(self._connections):
            writer.close()
        self.driver.close()
        log.info("stopped")

    async def _ticker(self) -> None:
        interval = self.config.tick_ms / 1000
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            deadline += interval
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            self.driver.tick()
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        self.driver.process_ready()

    # --- connections ---------------------------------------------------------------------
    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if len(self._connections) >= CONNECTIONS_MAX:
            writer.close()
            return
        self._connections.add(writer)
        try:
            await self._serve_connection(reader, writer)
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._connections.discard(writer)
            writer.close()

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        # One timeout for the whole connection, pushed back after each line: a per-line
        # ``wait_for`` would wrap every read in a task and yield to the loop between lines,
        # which splits a burst of pipelined requests into one fsync each.
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(IDLE_LINE_TIMEOUT_S) as idle:
                while not reader.at_eof():
                    line = await reader.readuntil(b"\n")
                    idle.reschedule(loop.time() + IDLE_LINE_TIMEOUT_S)
                    self._on_line(line, writer)
                    if writer.transport.get_write_buffer_size() > 1 << 20:
                        await writer.drain()
        except asyncio.LimitOverrunError:
            err = TooLarge(f"line longer than {limits.LINE_BYTES_MAX} bytes; closing")
            writer.write(_error_response(None, err))
            await writer.drain()
        except asyncio.IncompleteReadError:
            return  # half a line then EOF: nothing to answer, nothing was applied
        except TimeoutError:
            return  # no complete line for IDLE_LINE_TIMEOUT_S: a slow-loris or a dead peer

    def _on_line(self, line: bytes, writer: asyncio.StreamWriter) -> None:
        try:
            env = decode_envelope(line)
        except ResoneticsError as exc:
            writer.write(_error_response(None, exc))
            return
        if env.kind in MESSAGE_TYPES:
            self._on_peer_message(env)
        elif env.kind == "ClientRequest":
            self._on_client_request(env, writer)
        elif env.kind == "Hello":
            pass
        else:
            unknown = BadRequest("kind", f"unknown message kind {env.kind!r}")
            writer.write(_error_response(env.id, unknown))

    def _on_peer_message(self, env: Envelope) -> None:
        try:
            msg = decode_peer(env)
        except ResoneticsError as exc:
            log.warning("dropped malformed %s: %s", env.kind, exc)
            return
        if msg.dst != self.config.node_id:
            log.warning("dropped %s addressed to %s", env.kind, msg.dst)
            return
        self.last_contact[msg.src] = time.monotonic()
        self.driver.step(msg)
        self._schedule_flush()

    # --- clients ---------------------------------------------------------------------------
    def _on_client_request(self, env: Envelope, writer: asyncio.StreamWriter) -> None:
        try:
            req = validate_request(env)
        except ResoneticsError as exc:
            writer.write(_error_response(env.id, exc))
            return
        responder = _Responder(env.id, writer, self.config.request_timeout_s)
        self._dispatch(req, responder)
        self._schedule_flush()

    def _dispatch(self, req: ClientRequest, responder: _Responder) -> None:
        op, args = req.op, dict(req.args)
        if op == "status":
            responder(Outcome(codes.OK, node_status(self)))
        elif op in WRITE_OPS:
            self.driver.submit(req.client_id, req.request_id, op, args, responder)
        elif op in READ_OPS:
            consistency = args.pop("consistency", "linearizable")
            if consistency == "stale":
                responder(self.driver.read_stale(op, args))
            else:
                self.driver.read(op, args, responder)
        else:
            responder(Outcome(codes.BAD_REQUEST, message=f"op: unknown op {op!r}"))

    def leader_address(self, leader: str | None) -> str | None:
        return self.config.peers.get(leader) if leader else None

    def role(self) -> Role:
        role: Role = self.driver.core.role
        return role


class _Responder:
    """Answers one client request exactly once: with its outcome, or TIMEOUT."""

    __slots__ = ("_done", "_id", "_timer", "_writer")

    def __init__(self, req_id: Any, writer: asyncio.StreamWriter, timeout_s: float) -> None:
        self._id = req_id
        self._writer = writer
        self._done = False
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(timeout_s, self._on_timeout)

    def __call__(self, outcome: Outcome) -> None:
        if self._done:
            return
        self._done = True
        self._timer.cancel()
        if not self._writer.is_closing():
            self._writer.write(outcome_response(self._id, outcome))

    def _on_timeout(self) -> None:
        self(Outcome(codes.TIMEOUT, message="no outcome in time; the write may still commit"))


def outcome_response(req_id: Any, outcome: Outcome) -> bytes:
    response = ClientResponse(
        ok=outcome.ok,
        code=outcome.code,
        result=outcome.result,
        dedup=outcome.dedup,
        message=outcome.message or msgspec.UNSET,
    )
    return encode_response(response, _now_ms(), req_id)


def _error_response(req_id: Any, exc: ResoneticsError) -> bytes:
    if isinstance(exc, ClientError):
        return encode_response(error_response(exc), _now_ms(), req_id)
    return outcome_response(req_id, Outcome(codes.UNAVAILABLE, message=str(exc)))


def _now_ms() -> int:
    return int(time.time() * 1000)


__all__ = ["NodeServer"]
