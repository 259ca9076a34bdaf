"""The asyncio host for one node: listener, peer links, timers, client handling, signals.

Theory of operation
-------------------
Everything that touches the Raft core runs on the event loop thread, so the
core, the driver and the state machine need no locks. Inputs (peer messages,
client commands, ticks) are fed to the driver as they arrive; one
``process_ready()`` per loop iteration (``_schedule_flush``) then persists all of
them with a single fsync before anything that depends on them is sent: that is
the group commit. No Raft rule lives here.

Peers and clients use separate listeners (DESIGN §7), as etcd's peer and
client URLs do. Peer links are outbound only (``server/peers.py``); inbound
ones arrive at the peer listener (``server/peer_listener.py``), which
authenticates each (TLS certificate naming the node id, or the cluster key)
before any Raft message is read, and only steps messages whose ``src`` is the
authenticated node and, for anything but a leader's AppendEntries or
InstallSnapshot, a member (``runtime/peer_gate.py``). The client listener serves client
requests only: a Raft message arriving there is refused and counted, never
stepped.

At the client door (``security/``): optional TLS with client certificates, a
limit on connections in total and per source IP, and a token bucket per
connection that answers client requests beyond its rate with ``RATE_LIMITED``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import random
import signal
import ssl
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import msgspec

from resonetics import limits
from resonetics.errors import BadRequest, ClientError, ResoneticsError, TooLarge, invariant
from resonetics.raft.messages import MESSAGE_TYPES, Message
from resonetics.raft.ready import Role
from resonetics.runtime import peer_gate
from resonetics.runtime.driver import NodeDriver
from resonetics.runtime.outcome import Outcome
from resonetics.runtime.snapshots import SnapshotPolicy
from resonetics.security.authz import Identity, load_policy  # authz
from resonetics.security.cluster_key import ClusterKey, load_cluster_key
from resonetics.security.peer_auth import PeerCredentials
from resonetics.security.ratelimit import ConnectionLimiter, TokenBucket
from resonetics.security.signing import (
    load_or_create_node_key,
    public_key_text,
)
from resonetics.security.tls import client_context, server_context
from resonetics.server import admin
from resonetics.server.authorization import Gatekeeper  # authz
from resonetics.server.config import ConfigError, ServerConfig
from resonetics.server.deadlines import Deadlines
from resonetics.server.guard import HandlerGuard
from resonetics.server.history_trust import history_trust
from resonetics.server.outbox import Outbox
from resonetics.server.peer_listener import PeerListener
from resonetics.server.peers import PeerLink
from resonetics.server.status import node_status
from resonetics.storage.fs import OsFileSystem
from resonetics.storage.lock import DataDirLock, LockedStorage
from resonetics.storage.node_storage import FileNodeStorage
from resonetics.storage.spool import SPOOL_NAME, FileSpool
from resonetics.wire import codes
from resonetics.wire.auth import AUTH_KIND  # authz
from resonetics.wire.client import (
    LOGGED_OPS,
    ClientRequest,
    ClientResponse,
    encode_response,
    error_response,
    validate_request,
)
from resonetics.wire.envelope import Envelope, decode_envelope
from resonetics.wire.peer import HELLO_KIND, encode_peer

log = logging.getLogger("resonetics.server")

#: Connections served at once; further ones are closed on accept.
CONNECTIONS_MAX = limits.CONNECTIONS_MAX
#: A connection that completes no line for this long is closed (slow-loris guard), seconds.
IDLE_LINE_TIMEOUT_S = 600.0
#: How stale the idle deadline may get before a line pushes it back (seconds).
IDLE_RESCHEDULE_S = 1.0
#: How long shutdown waits for connection handlers, twice (after close, after abort), seconds.
SHUTDOWN_GRACE_S = 0.5
READ_OPS = frozenset({"kv_get", "kv_scan"})
WRITE_OPS = LOGGED_OPS


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

    def flush(self) -> None:
        for link in self._server.links.values():
            link.flush()
        self._server.flush_responses()


class NodeServer:
    """Runs one Resonetics node until ``stop()`` or a signal."""

    def __init__(self, config: ServerConfig) -> None:
        self.cluster_key: ClusterKey | None = (
            load_cluster_key(config.cluster_key) if config.cluster_key is not None else None
        )
        config = with_key_cluster_id(config.validate(), self.cluster_key)
        self.config = config
        self.links: dict[str, PeerLink] = {}
        # One process per data dir (storage/lock.py): taken before anything is read, and
        # released by the storage if its load refuses the folder.
        self.data_dir_lock = DataDirLock(str(config.node_dir)).acquire()
        self.storage = LockedStorage(
            FileNodeStorage(OsFileSystem(), str(config.node_dir), config.identity()),
            self.data_dir_lock,
        )
        # Made on first start so an operator can build the trust registry from node folders.
        self.signing_key = load_or_create_node_key(config.node_dir, config.signing_key)
        trust = history_trust(config, self.signing_key)
        self.driver = NodeDriver(
            config.raft_config(),
            self.storage,
            _Host(self),
            random.Random(),
            snapshot_policy=SnapshotPolicy(
                entries=config.snapshot_entries,
                log_bytes=config.snapshot_bytes,
                bytes_max=config.snapshot_bytes_max,
            ),
            # Chunks of a snapshot being received go to a scratch file, not memory.
            snapshot_spool=lambda: FileSpool(OsFileSystem(), str(config.node_dir / SPOOL_NAME)),
            signer=trust.signer,
            message_filter=trust.message_filter,
            snapshot_signer=trust.snapshot_signer,
        )
        #: node id -> CLIENT address, for NOT_LEADER hints (peer addresses live in links).
        self.driver.addresses = dict(config.clients)
        #: node id -> peer address from authenticated Hellos: how a node outside every
        #: configuration (joining) answers the leader that dials it. Never enters a CONFIG.
        self.learned_addresses: dict[str, str] = {}
        #: What ``admin.sync_links`` last saw (configuration, leader, learned count).
        self.links_synced_for: tuple[object, str | None, int] | None = None
        identity = self.storage.identity
        invariant(identity is not None and identity.cluster_id is not None, "no cluster id")
        assert identity is not None and identity.cluster_id is not None
        self.peer_credentials = PeerCredentials(
            config.node_id, identity.cluster_id, self.cluster_key, tls=config.tls() is not None
        )
        #: Raft messages that arrived on the client listener: refused, never stepped.
        self.peer_messages_refused = 0
        self.last_contact: dict[str, float] = {}
        self._server: asyncio.Server | None = None
        self._flush_scheduled = False
        self._flush_task: asyncio.Task[None] | None = None
        self._closing = False
        self._fatal: BaseException | None = None
        #: Log appends and fsyncs run here so the event loop keeps serving meanwhile.
        self._disk = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="disk")
        self._outbox = Outbox()
        #: Client requests waiting for an outcome; the ticker times them out.
        self._deadlines: Deadlines[_Responder] = Deadlines(config.request_timeout_s)
        self._stopping = asyncio.Event()
        self._connections: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        tls = config.tls()
        self._server_ssl: ssl.SSLContext | None = (
            server_context(tls, config.tls_client_auth) if tls is not None else None
        )
        self._peer_ssl: ssl.SSLContext | None = client_context(tls) if tls is not None else None
        self.peer_listener = PeerListener(
            self.peer_credentials,
            # Peers always present a certificate on a TLS cluster, whatever clients do.
            ssl_context=server_context(tls, "required") if tls is not None else None,
            deliver=self._on_peer_message,
            refuse=self.peer_message_refusal,
            on_hello=self._on_peer_hello,
            now_ms=_now_ms,
        )
        self._per_ip = ConnectionLimiter(config.connections_per_ip_max)
        self._handlers: set[asyncio.Task[Any]] = set()
        #: Client requests answered RATE_LIMITED, and connections refused by a limit.
        self.rate_limited = 0
        self.connections_refused = 0
        #: Unexpected handler exceptions: each closed its connection (``status``).
        self.handler_guard = HandlerGuard()
        # authz: who may do what (security/authz.py); no --policy: open, nobody admin.
        self.gate = Gatekeeper(load_policy(config.policy) if config.policy else None)

    @property
    def cluster_id(self) -> str:
        """The cluster this node belongs to, as its data dir says after load."""
        return self.peer_credentials.cluster_id

    # --- lifecycle ---------------------------------------------------------------------
    async def serve_forever(self, *, install_signals: bool = True) -> None:
        await self.start()
        if install_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._stopping.set)
            if self.config.policy is not None:  # authz: SIGHUP re-reads the policy
                loop.add_signal_handler(signal.SIGHUP, self.gate.reload, self.config.policy)
        await self._stopping.wait()
        await self.shutdown()
        if self._fatal is not None:
            raise self._fatal

    async def start(self) -> None:
        peer_host, peer_port = self.config.peer_listen_address
        await self.peer_listener.start(peer_host, peer_port)
        host, port = self.config.client_listen_address
        self._server = await asyncio.start_server(
            self._on_connection,
            host,
            port,
            limit=limits.LINE_BYTES_MAX,
            reuse_address=True,
            ssl=self._server_ssl,
            ssl_handshake_timeout=limits.TLS_HANDSHAKE_TIMEOUT_S if self._server_ssl else None,
        )
        me = self.config.node_id
        for peer, address in self.config.peers.items():
            if peer != me:
                self.open_link(peer, address)
        admin.sync_links(self, force=True)
        self._tasks.add(asyncio.create_task(self._ticker(), name="ticker"))
        transport = f"TLS (client certificates {self.config.tls_client_auth})"
        log.info("entry signing key %s", public_key_text(self.signing_key))
        log.info(
            "cluster %s; peers on %s:%d (%s), clients on %s:%d over %s; data in %s",
            self.cluster_id,
            peer_host,
            peer_port,
            peer_auth_description(self.config),
            host,
            port,
            transport if self._server_ssl else "plain TCP",
            self.config.node_dir,
        )

    def stop(self) -> None:
        self._stopping.set()

    async def shutdown(self) -> None:
        """Stop accepting, finish the fsync in progress, answer waiting clients, close."""
        if self._server is not None:
            self._server.close()
        self.peer_listener.close()
        for task in self._tasks:
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._closing = True
        if self._flush_task is not None:
            # Never cancel a flush mid-write: the disk thread would go on writing a
            # Ready the core was never told is durable. Let it finish.
            await asyncio.wait({self._flush_task})
        await self.driver.wait_snapshot()
        self._disk.shutdown(wait=True)
        if self._fatal is None:
            self.driver.process_ready()  # whatever arrived meanwhile, on this thread
        self.driver.cancel_all(Outcome(codes.UNAVAILABLE, message="node shutting down"))
        self._outbox.flush()
        for link in self.links.values():
            await link.stop()
        for writer in list(self._connections):
            writer.close()
        await self._end_connection_handlers()
        await self.peer_listener.wait_closed(SHUTDOWN_GRACE_S)
        self.driver.close()
        self.data_dir_lock.release()
        log.info("stopped")

    async def _end_connection_handlers(self) -> None:
        """Let closed connections' handlers finish; abort what a TLS close keeps waiting.

        A TLS close waits for the peer's close_notify, so a handler can outlive
        ``close()``; one still running when the loop is torn down is cancelled there
        and logged with a traceback. Answers already written go out during the grace.
        """
        for _ in range(2):
            if self._handlers:
                await asyncio.wait(set(self._handlers), timeout=SHUTDOWN_GRACE_S)
            for writer in list(self._connections):
                writer.transport.abort()

    async def _ticker(self) -> None:
        interval = self.config.tick_ms / 1000
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            deadline += interval
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            self.driver.tick()
            for responder in self._deadlines.expire(time.monotonic()):
                responder.time_out()
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        """Run the driver loop soon: once per loop turn, never two at a time."""
        if self._flush_task is not None or self._flush_scheduled or self._closing:
            return  # a running flush loops until the core has nothing left to do
        self._flush_scheduled = True
        asyncio.get_running_loop().call_soon(self._start_flush)

    def _start_flush(self) -> None:
        self._flush_scheduled = False
        if self._flush_task is not None or self._closing:
            return
        try:
            done = self.driver.process_ready_now(self._run_on_disk_thread)
        except Exception as exc:
            self._driver_failed(exc)
            return
        if done:
            admin.sync_links(self)
            return
        self._flush_task = asyncio.get_running_loop().create_task(self._flush())
        self._flush_task.add_done_callback(self._flush_done)

    async def _flush(self) -> None:
        while True:
            await self.driver.process_ready_async(self._run_on_disk_thread)
            admin.sync_links(self)
            if not self.driver.has_work():
                return

    def _flush_done(self, task: asyncio.Task[None]) -> None:
        self._flush_task = None
        if task.cancelled():
            return
        if task.exception() is None and self.driver.has_work():
            # Input stepped between the loop's last look and this callback found the
            # task still set and did not schedule a run: without this it would wait
            # for the next tick (seen as a tick-long p99 on sequential writes).
            self._schedule_flush()
        exc = task.exception()
        if exc is not None:
            self._driver_failed(exc)

    def _driver_failed(self, exc: BaseException) -> None:
        # A broken invariant or a failing disk: stop now rather than serve on
        # from a state nobody can vouch for. serve_forever re-raises it.
        log.critical("driver loop failed: %r; stopping the node", exc)
        self._fatal = exc
        self._stopping.set()

    async def _run_on_disk_thread(self, fn: Callable[..., None], *args: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(self._disk, fn, *args)

    def flush_responses(self) -> None:
        """Write the client answers queued so far now (before the loop blocks on a write)."""
        self._outbox.flush()

    def open_link(self, peer: str, address: str) -> None:
        """Start the outbound link to ``peer`` (replacing one to an older address)."""
        old = self.links.get(peer)
        if old is not None and old.address == address:
            return
        if old is not None:
            self.close_link(peer)
        link = PeerLink(
            self.peer_credentials, peer, address, self.config.peer_listen, ssl=self._peer_ssl
        )
        self.links[peer] = link
        link.start()

    def close_link(self, peer: str) -> None:
        link = self.links.pop(peer, None)
        if link is not None:
            admin.close_later(self._tasks, link.stop)

    # --- connections ---------------------------------------------------------------------
    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("peername")
        ip = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        if len(self._connections) >= CONNECTIONS_MAX or not self._per_ip.try_acquire(ip):
            self.connections_refused += 1
            writer.close()
            return
        self._connections.add(writer)
        handler = asyncio.current_task()
        if handler is not None:
            self._handlers.add(handler)
        conn = _Conn(
            writer,
            TokenBucket(self.config.rate_limit_rps, self.config.rate_limit_burst),
            identity=self.gate.identity_for_tls(writer.get_extra_info("ssl_object")),  # authz
        )
        try:
            await self._serve_connection(reader, conn)
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._per_ip.release(ip)
            self._connections.discard(writer)
            if handler is not None:
                self._handlers.discard(handler)
            writer.close()

    async def _serve_connection(self, reader: asyncio.StreamReader, conn: _Conn) -> None:
        writer = conn.writer
        # One timeout for the whole connection, pushed back after each line: a per-line
        # ``wait_for`` would wrap every read in a task and yield to the loop between lines,
        # which splits a burst of pipelined requests into one fsync each.
        # Moving the deadline re-arms a timer (~20 µs); doing it at most once per
        # IDLE_RESCHEDULE_S keeps that off the per-line path at a cost of that much slack.
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(IDLE_LINE_TIMEOUT_S) as idle:
                pushed_at = loop.time()
                while not reader.at_eof():
                    line = await reader.readuntil(b"\n")
                    now = loop.time()
                    if now - pushed_at > IDLE_RESCHEDULE_S:
                        idle.reschedule(now + IDLE_LINE_TIMEOUT_S)
                        pushed_at = now
                    if not self.handler_guard.run(self._on_line, line, conn):
                        return  # a bug, counted and logged: only this connection closes
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

    def _on_line(self, line: bytes, conn: _Conn) -> None:
        writer = conn.writer
        try:
            env = decode_envelope(line)
        except ResoneticsError as exc:
            writer.write(_error_response(None, exc))
            return
        if env.kind in MESSAGE_TYPES or env.kind == HELLO_KIND:
            # A client connection never speaks for a node, whatever it holds.
            self.peer_messages_refused += 1
            if not conn.warned:
                conn.warned = True
                log.warning("refused %s on the client port (peers have their own)", env.kind)
            refused = BadRequest("kind", f"{env.kind} is a peer message: not accepted from clients")
            writer.write(_error_response(env.id, refused))
        elif env.kind == "ClientRequest":
            if conn.bucket.try_take():
                self._on_client_request(env, conn)
            else:
                self.rate_limited += 1
                writer.write(outcome_response(env.id, _RATE_LIMITED))
        elif env.kind == AUTH_KIND:  # authz: a token names the connection's identity
            conn.identity, answer = self.gate.authenticate(env)
            writer.write(outcome_response(env.id, answer))
        else:
            unknown = BadRequest("kind", f"unknown message kind {env.kind!r}")
            writer.write(_error_response(env.id, unknown))

    # --- peers ---------------------------------------------------------------------------
    def peer_message_refusal(self, peer: str, msg: Message) -> str | None:
        """Why a message from authenticated ``peer`` must be dropped (``runtime/peer_gate``)."""
        return peer_gate.refusal(self.config.node_id, self.driver.membership.members(), peer, msg)

    def _on_peer_hello(self, peer: str, address: str) -> None:
        """An authenticated peer's own address: how a joining node reaches its leader."""
        known = self.learned_addresses
        if (
            peer != self.config.node_id
            and known.get(peer) != address
            and (peer in known or len(known) < limits.PEER_CONNECTIONS_MAX)
        ):
            known[peer] = address
            self._schedule_flush()

    def _on_peer_message(self, msg: Message) -> None:
        self.last_contact[msg.src] = time.monotonic()
        self.driver.step(msg)
        self._schedule_flush()

    # --- clients ---------------------------------------------------------------------------
    def _on_client_request(self, env: Envelope, conn: _Conn) -> None:
        writer = conn.writer
        try:
            req = validate_request(env)
        except ResoneticsError as exc:
            writer.write(_error_response(env.id, exc))
            return
        responder = _Responder(env.id, writer, self._outbox, self._deadlines)
        # authz: admin ops are audited with their answer (timeouts included); a
        # request the policy refuses is answered here and never dispatched.
        if self.gate.audited(req):
            responder.on_answer = functools.partial(self.gate.audit, conn.identity, req)
        denied = self.gate.check(conn.identity, req)
        if denied is not None:
            responder(denied)
            return
        self._dispatch(req, responder, size=len(env.payload))
        self._schedule_flush()

    def _dispatch(self, req: ClientRequest, responder: _Responder, *, size: int) -> None:
        op, args = req.op, dict(req.args)
        if op == "status":
            responder(Outcome(codes.OK, node_status(self)))
        elif op in WRITE_OPS:
            self.driver.submit(
                req.client_id,
                req.request_id,
                op,
                args,
                responder,
                size=size,
                session=req.session_fields(),
            )
        elif op in admin.MEMBERSHIP_OPS:
            admin.dispatch(self, op, args, responder)
        elif op in READ_OPS:
            consistency = args.pop("consistency", "linearizable")
            if consistency == "stale":
                responder(self._stale_read(op, args))
            else:
                self.driver.read(op, args, responder, lease=consistency == "lease")
        else:
            responder(Outcome(codes.BAD_REQUEST, message=f"op: unknown op {op!r}"))

    def _stale_read(self, op: str, args: dict[str, Any]) -> Outcome:
        """From this node's applied state, saying how far behind it may be."""
        outcome = self.driver.read_stale(op, args)
        core = self.driver.core
        if core.role is Role.LEADER:
            since_ms: float | None = 0.0
        else:
            seen = self.last_contact.get(core.leader_id or "")
            since_ms = None if seen is None else (time.monotonic() - seen) * 1000
        outcome.result["leader"] = core.leader_id
        outcome.result["leader_contact_ms"] = None if since_ms is None else round(since_ms, 1)
        return outcome

    def leader_address(self, leader: str | None) -> str | None:
        return self.driver.addresses.get(leader) if leader else None

    def role(self) -> Role:
        role: Role = self.driver.core.role
        return role


_RATE_LIMITED = Outcome(
    codes.RATE_LIMITED, message="too many requests on this connection; retry after a pause"
)


class _Conn:
    """One accepted client connection: its writer and its request budget."""

    __slots__ = ("bucket", "identity", "warned", "writer")

    def __init__(
        self,
        writer: asyncio.StreamWriter,
        bucket: TokenBucket,
        *,
        identity: Identity | None,
    ) -> None:
        self.writer = writer
        self.bucket = bucket
        self.warned = False
        #: authz: who sends client requests here; None after an Auth with an unknown token.
        self.identity = identity


class _Responder:
    """Answers one client request exactly once: with its outcome, or TIMEOUT."""

    __slots__ = ("_deadlines", "_done", "_id", "_outbox", "_writer", "on_answer")

    def __init__(
        self,
        req_id: Any,
        writer: asyncio.StreamWriter,
        outbox: Outbox,
        deadlines: Deadlines[_Responder],
    ) -> None:
        self._id = req_id
        self._writer = writer
        self._outbox = outbox
        self._done = False
        self._deadlines = deadlines
        #: authz: told the outcome before it is sent (the audit of admin ops).
        self.on_answer: Callable[[Outcome], None] | None = None
        deadlines.add(self, time.monotonic())

    def __call__(self, outcome: Outcome) -> None:
        if self._done:
            return
        self._done = True
        self._deadlines.discard(self)
        if self.on_answer is not None:
            self.on_answer(outcome)
        if not self._writer.is_closing():
            self._outbox.add(self._writer, outcome_response(self._id, outcome))

    def time_out(self) -> None:
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


def with_key_cluster_id(config: ServerConfig, key: ClusterKey | None) -> ServerConfig:
    """The config with the cluster key's cluster id (the key file names the cluster).

    A ``--cluster-id`` that contradicts the key file is an operator's mistake:
    refused with both ids rather than guessed.
    """
    if key is None:
        return config
    if config.cluster_id is not None and config.cluster_id != key.cluster_id:
        raise ConfigError(
            f"--cluster-id {config.cluster_id} contradicts the cluster key file "
            f"{config.cluster_key}, which is for cluster {key.cluster_id}"
        )
    return replace(config, cluster_id=key.cluster_id)


def peer_auth_description(config: ServerConfig) -> str:
    if config.tls() is not None:
        return "mutual TLS, node ids from certificates"
    if config.cluster_key is not None:
        return "cluster key"
    return "UNAUTHENTICATED (no TLS, no cluster key)"


__all__ = ["NodeServer"]
