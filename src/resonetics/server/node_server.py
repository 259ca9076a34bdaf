"""The asyncio host for one node: listener, peer links, timers, client handling, signals.

Theory of operation
-------------------
Everything that touches the Raft core runs on the event loop thread, so the
core, the driver and the state machine need no locks. Inputs (peer messages,
client commands, ticks) are fed to the driver as they arrive; one run of the
driver's steps per loop iteration (``_schedule_flush``, ``runtime/server_executor.py``)
then persists all of
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

At the client door (``server/client_conn.py``, ``server/admission.py``):
optional TLS with client certificates; slots in total and per source address;
a node-wide budget for unfinished input lines; deadlines for a first valid
request, for finishing a line and for idle connections; lines handled in
bounded batches so no connection keeps the loop from peer traffic; a line
rate per connection (junk included) enforced by not reading, and a request
rate per connection and per identity answered with ``RATE_LIMITED``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import os
import random
import signal
import ssl
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from resonetics import limits, planted
from resonetics.collector import CollectorClock
from resonetics.errors import (
    BadRequest,
    ClientError,
    InvariantViolation,
    NodeFailed,
    ResoneticsError,
    TooLarge,
    invariant,
)
from resonetics.machine.base import StateMachine
from resonetics.machine.changes import attach_history
from resonetics.planted import Bug
from resonetics.raft.messages import MESSAGE_TYPES, AppendEntries, AppendEntriesResp, Message
from resonetics.raft.ready import Role
from resonetics.runtime import peer_gate
from resonetics.runtime.dispatch import HostHandler, dispatch
from resonetics.runtime.driver import NodeDriver
from resonetics.runtime.outcome import OnDone, Outcome
from resonetics.runtime.server_executor import ServerExecutor
from resonetics.runtime.snapshots import SnapshotPolicy
from resonetics.security.authz import Identity, load_policy  # authz
from resonetics.security.cluster_key import ClusterKey, load_cluster_key
from resonetics.security.entry_check import EntryGate
from resonetics.security.peer_auth import PeerCredentials
from resonetics.security.ratelimit import TokenBucket
from resonetics.security.signing import (
    SigningError,
    load_or_create_node_key,
    public_key_text,
)
from resonetics.security.tls import NodeTLS, Revocations, TLSConfig, TLSConfigError
from resonetics.server import admin, admission, events
from resonetics.server.admission import ClientAdmission, InputBudget
from resonetics.server.authorization import Gatekeeper  # authz
from resonetics.server.backup import Backups
from resonetics.server.client_conn import ClientConnection
from resonetics.server.config import ConfigError, ServerConfig
from resonetics.server.deadlines import Deadlines
from resonetics.server.guard import HandlerGuard
from resonetics.server.history_trust import history_trust, load_registry
from resonetics.server.loop_lag import LoopLag
from resonetics.server.outbox import Outbox
from resonetics.server.peer_listener import PeerListener
from resonetics.server.peers import PeerLink
from resonetics.server.readiness import Readiness
from resonetics.server.served import serve_in_dir
from resonetics.server.status import node_status
from resonetics.server.watch import WATCH_OPS, WatchConnection, WatchHub
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
    OpTable,
    encode_response,
    error_response,
    validate_request,
)
from resonetics.wire.envelope import Envelope, decode_envelope
from resonetics.wire.peer import HELLO_KIND, encode_peer

if TYPE_CHECKING:
    from resonetics.server.dashboard import Dashboard
    from resonetics.server.http_api import HttpApi
    from resonetics.server.metrics import NodeMetrics

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
            metrics = self._server.metrics
            if metrics is not None and isinstance(msg, AppendEntries):
                metrics.round_trips.sent(msg.dst)

    def flush(self) -> None:
        for link in self._server.links.values():
            link.flush()
        self._server.flush_responses()


class NodeServer:
    """Runs one Resonetics node until ``stop()`` or a signal."""

    #: Logs operator events (``server/events.py``); made when the node opens.
    event_watch: events.NodeWatch | None = None

    def __init__(  # noqa: PLR0915 - a list of attribute declarations, one per line
        self, config: ServerConfig, machine: StateMachine | None = None
    ) -> None:
        """``machine``: the state machine to serve (None: ``config.machine``'s factory,
        else the key-value store); a data dir founded by another machine is refused."""
        self.cluster_key: ClusterKey | None = (
            load_cluster_key(config.cluster_key) if config.cluster_key is not None else None
        )
        config = with_key_cluster_id(config.validate(), self.cluster_key)
        self.config = config
        self.links: dict[str, PeerLink] = {}
        # One process per data dir (storage/lock.py): taken before anything is read, and
        # released by the storage if its load refuses the folder.
        self.data_dir_lock = DataDirLock(str(config.node_dir)).acquire()
        served = serve_in_dir(config, machine, self.data_dir_lock)
        self.ops: OpTable = served.ops
        # Client answers and watch streams share one outbox (a watch's answer precedes
        # its events); the change history is attached before the driver applies anything.
        self._outbox, self.watches = _outbox_and_watches(served.replicated)
        self.storage = LockedStorage(
            FileNodeStorage(OsFileSystem(), str(config.node_dir), config.identity()),
            self.data_dir_lock,
        )
        # Made on first start so an operator can build the trust registry from node folders.
        self.signing_key = load_or_create_node_key(config.node_dir, config.signing_key)
        trust = history_trust(config, self.signing_key)
        #: The registry check of incoming history (None without --trust-registry);
        #: its registry is replaced on SIGHUP (``reload_trust_registry``).
        self._entry_gate = (
            trust.message_filter if isinstance(trust.message_filter, EntryGate) else None
        )
        self.driver = NodeDriver(
            config.raft_config(),
            self.storage,
            _Host(self),
            random.Random(),
            machine=served.replicated,
            snapshot_policy=SnapshotPolicy(
                entries=config.snapshot_entries,
                log_bytes=config.snapshot_bytes,
                bytes_max=config.snapshot_bytes_max,
                log_ratio=config.snapshot_log_ratio,
                log_bytes_floor=config.snapshot_floor_bytes,
                trailing_entries=config.log_retain_entries,
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
            config.node_id,
            identity.cluster_id,
            self.cluster_key,
            tls=config.tls() is not None,
            machine=served.name,
        )
        #: Raft messages that arrived on the client listener: refused, never stepped.
        self.peer_messages_refused = 0
        self.last_contact: dict[str, float] = {}
        self._server: asyncio.Server | None = None
        self._flush_scheduled = False
        self._flush_task: asyncio.Task[None] | None = None
        self._closing = False
        #: The first failure that stopped the node: (what failed, the exception).
        self._fatal: tuple[str, BaseException] | None = None
        #: The node's life (``_run``) and the group that owns every task it starts.
        self._main: asyncio.Task[None] | None = None
        self._group: asyncio.TaskGroup | None = None
        self._ticker_task: asyncio.Task[None] | None = None
        #: How late the ticker wakes: the loop's stalls (``server/loop_lag.py``).
        self.loop_lag = LoopLag.for_timeouts(self.config.tick_ms, self.config.election_ticks)
        #: The process's cyclic collections and their pauses (``resonetics/collector.py``).
        self.collector = CollectorClock()
        #: Log appends and fsyncs run here so the event loop keeps serving meanwhile.
        self._disk = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="disk")
        #: Snapshot files are written here, while the disk thread goes on with the log.
        self._snapshot_thread = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="snapshot"
        )
        # Three nodes and their clients share few cores: after an ack leaves, the leader
        # it wakes runs ahead of this node's apply (runtime/driver.py).
        self.driver.yield_after_acks = getattr(os, "sched_yield", None)  # POSIX
        #: Carries out the driver's steps (runtime/loop_plan.py) here and on those threads.
        self.executor = ServerExecutor(
            self.driver, self._run_on_disk_thread, run_snapshot_write=self._run_on_snapshot_thread
        )
        self._host_ops = self._make_host_ops(served.name)
        #: Client requests waiting for an outcome; the ticker times them out.
        self._deadlines: Deadlines[_Responder] = Deadlines(config.request_timeout_s)
        self._stopping = asyncio.Event()
        self._connections: set[ClientConnection] = set()
        #: Connections not yet served, oldest first: the ones that give way when slots run out.
        self._unestablished: OrderedDict[ClientConnection, None] = OrderedDict()
        self._admission = ClientAdmission(CONNECTIONS_MAX, config.connections_per_ip_max)
        self._input_budget = InputBudget()
        #: Request budgets shared by all connections of one identity (anonymous: per address).
        self._identity_buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        #: Client connections closed by the node, by reason (``status``).
        self.client_closes: Counter[str] = Counter()
        #: Times the node stopped reading a client connection for its line or junk rate.
        self.client_throttled: Counter[str] = Counter()
        #: Tasks of the group still running (cancelled at the end of the shutdown).
        self._tasks: set[asyncio.Task[None]] = set()
        tls = config.tls()
        #: The node's TLS contexts, built again on SIGHUP (``reload_tls``); None: plain TCP.
        self._tls_material = NodeTLS(self._tls, config.tls_client_auth) if tls else None
        self._server_ssl: ssl.SSLContext | None = None
        self._peer_ssl: ssl.SSLContext | None = None
        if self._tls_material is not None:
            self._server_ssl = self._tls_material.clients.listener
            self._peer_ssl = self._tls_material.dialling
        self.peer_listener = PeerListener(
            self.peer_credentials,
            ssl_context=self._tls_material.peers.listener if self._tls_material else None,
            deliver=self._on_peer_message,
            refuse=self.peer_message_refusal,
            on_hello=self._on_peer_hello,
            now_ms=_now_ms,
        )
        #: Client requests answered RATE_LIMITED, and connections refused by a limit.
        self.rate_limited = 0
        self.connections_refused = 0
        #: Unexpected handler exceptions: each closed its connection (``status``).
        self.handler_guard = HandlerGuard()
        # authz: who may do what (security/authz.py); no --policy: open, nobody admin.
        self.gate = Gatekeeper(load_policy(config.policy) if config.policy else None, ops=self.ops)
        self._init_http()

    def _init_http(self) -> None:
        """The HTTP API (server/http_api.py) and the metrics it serves (server/metrics.py),
        when ``--listen-http`` asks for them.

        Imported here: a node without an HTTP address never loads aiohttp.
        """
        #: What ``GET /ready`` answers (server/readiness.py).
        self.readiness = Readiness()
        #: The HTTP port and its metrics; None: HTTP is off.
        self.metrics: NodeMetrics | None = None
        self.http: HttpApi | None = None
        #: The dashboard (server/dashboard.py) and the recent events it shows; None: HTTP off.
        self.dashboard: Dashboard | None = None
        self.event_ring: events.EventRing | None = None
        if not self.config.http_listen:
            return
        from resonetics.server.dashboard import Dashboard
        from resonetics.server.http_api import HttpApi
        from resonetics.server.http_kv import KvRoutes
        from resonetics.server.http_watch import WatchRoutes
        from resonetics.server.metrics import NodeMetrics

        http = HttpApi(self, self._server_ssl)
        metrics = NodeMetrics(
            lambda: node_status(self),
            lambda: {
                "denied": self.gate.denied,
                "http_requests": http.answered,
                "http_connections": http.open_connections(),
                "http_refused": http.door.refused,
            },
        )
        self.driver.observe_fsync = metrics.fsync.observe
        self.driver.observe_apply = metrics.apply.observe
        if "kv_get" in self.ops.specs:
            KvRoutes(http).install()
        WatchRoutes(http, self.watches).install()
        self.metrics, self.http = metrics, http
        self.event_ring = events.EventRing()
        self.dashboard = Dashboard(self, http, self.event_ring, client_ssl=self._peer_ssl)
        self.dashboard.install()

    @property
    def failure(self) -> NodeFailed | None:
        """What stopped the node, when one of its parts failed (None: it did not)."""
        if self._fatal is None:
            return None
        part, cause = self._fatal
        return NodeFailed(self.config.node_id, part, cause)

    @property
    def cluster_id(self) -> str:
        """The cluster this node belongs to, as its data dir says after load."""
        return self.peer_credentials.cluster_id

    @property
    def machine_name(self) -> str:
        """The state machine this node serves (``kv`` or the machine's declared name)."""
        return self.peer_credentials.machine

    # --- lifecycle ---------------------------------------------------------------------
    # One TaskGroup (``_run``) owns every task the node starts: the ticker, the
    # driver loop, the snapshot being taken, each peer link and each inbound peer
    # connection. Each runs under ``_owned``: an exception in any of them is
    # logged once and stops the node through the one shutdown path (``_close``),
    # the same one SIGTERM, SIGINT, ``stop()`` and tests take. Nothing is left
    # running when ``_run`` returns: the group waits for what ``_close`` cancelled.
    async def serve_forever(self, *, install_signals: bool = True) -> None:
        """Serve until SIGTERM/SIGINT, ``stop()`` or a failure (then ``NodeFailed``)."""
        await self.start()
        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT) if install_signals else ()
        for sig in signals:
            loop.add_signal_handler(sig, self.stop)
        # SIGHUP re-reads the policy and the TLS material (and never stops the node).
        rereads = install_signals
        if rereads:
            loop.add_signal_handler(signal.SIGHUP, self.reload)
        try:
            await self.shutdown(wait_for_stop=True)
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            if rereads:
                loop.remove_signal_handler(signal.SIGHUP)
        if self._fatal is not None:
            part, cause = self._fatal
            raise NodeFailed(self.config.node_id, part, cause) from cause

    def reload(self) -> None:
        """SIGHUP: read the policy and the TLS material again, each kept as it was when
        its files do not load (one log line says why)."""
        if self.config.policy is not None:
            self.reload_policy(self.config.policy)
        if self._tls_material is not None:
            self.reload_tls()
        if self._entry_gate is not None:
            self.reload_trust_registry()
        if self.config.policy is None and self._tls_material is None and self._entry_gate is None:
            log.info("SIGHUP: no policy, TLS material or trust registry to re-read")

    def reload_trust_registry(self) -> bool:
        """Read ``--trust-registry`` again: the signatures of incoming entries and
        snapshots are checked against the new one from the next message. A file that
        does not load, or that no longer holds this node's own key, keeps the current one."""
        assert self._entry_gate is not None
        try:
            registry = load_registry(self.config, self.signing_key)
        except (ConfigError, SigningError) as exc:
            log.error("trust registry reload refused, keeping the current one: %s", exc)
            return False
        self._entry_gate.registry = registry
        log.info("trust registry reloaded: keys of %s", ", ".join(registry.node_ids))
        return True

    def _tls(self) -> TLSConfig:
        tls = self.config.tls()
        assert tls is not None
        return tls

    def reload_tls(self) -> bool:
        """Build every TLS context again from the files (CA, certificate, key, CRL): new
        handshakes get them, outbound peer links reconnect with them, and connections
        open under a certificate the CRL now revokes are closed. A file that does not
        load keeps everything as it was."""
        assert self._tls_material is not None
        try:
            revocations = self._tls_material.reload()
        except TLSConfigError as exc:
            log.error("TLS reload refused, keeping the current certificates: %s", exc)
            return False
        peer_ssl = self._peer_ssl = self._tls_material.dialling
        if self.dashboard is not None:
            self.dashboard.use_ssl(peer_ssl)
        for link in self.links.values():
            link.use_ssl(peer_ssl)  # its next connection presents and checks the new material
        cut = 0
        if revocations is not None:
            cut = self._cut_revoked(revocations)
        log.info("TLS material reloaded; %d connection(s) under a revoked certificate closed", cut)
        return True

    def tls_status(self) -> dict[str, Any] | None:
        """When this node's certificate and revocation list stop working (``status``)."""
        if self._tls_material is None:
            return None
        validity = self._tls_material.validity
        crl = validity.crl_next_update
        return {
            "certificate_expires": validity.certificate_expires.isoformat(),
            "crl_next_update": crl.isoformat() if crl is not None else None,
        }

    def _cut_revoked(self, revocations: Revocations) -> int:
        """Close the client and peer connections whose certificate ``revocations`` revokes."""
        cut = 0
        for conn in list(self._connections):
            if revocations.revokes(conn.get_extra_info("ssl_object")):
                conn.abort()
                cut += 1
        cut += self.peer_listener.cut(revocations.revokes)
        for link in list(self.links.values()):
            if link.connected_under(revocations.revokes):
                link.drop_connection()
                cut += 1
        return cut

    def reload_policy(self, path: Path) -> bool:
        """SIGHUP: read the policy again (a bad file keeps the old one) and end the watches
        it no longer allows. Requests need nothing more: each is judged by the policy in
        force, and a token the new policy replaced or removed is refused from the next one."""
        if not self.gate.reload(path):
            return False
        ended = self.watches.recheck(self._watch_refusal)
        if ended:
            log.info("policy reload ended %d watch(es) it no longer allows", ended)
        return True

    def _watch_refusal(self, conn: WatchConnection, prefix: str) -> Outcome | None:
        """Why the policy in force would refuse ``conn`` a watch of ``prefix`` (None: it
        would not)."""
        args = {"prefix": prefix}
        req = ClientRequest(client_id="watch", request_id="recheck", op="watch", args=args)
        return self.gate.check(conn.identity, req)

    async def start(self) -> None:
        """Bind both listeners and start the node's tasks; return once it serves.

        A failure to start (an address in use, say) is raised here, after the node
        has released its data dir.
        """
        invariant(self._main is None, "a node server starts once")
        opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._main = asyncio.create_task(self._run(opened), name=f"node-{self.config.node_id}")
        await asyncio.wait({opened, self._main}, return_when=asyncio.FIRST_COMPLETED)
        if not opened.done():
            opened.cancel()
            await self._main  # ended before serving: raises what stopped it
        opened.result()

    def stop(self) -> None:
        """Begin the shutdown (safe to call any number of times, from a signal handler too)."""
        self._stopping.set()

    async def shutdown(self, *, wait_for_stop: bool = False) -> None:
        """Stop the node (unless ``wait_for_stop``: wait for someone else to) and wait
        until every task it started has ended."""
        if not wait_for_stop:
            self.stop()
        if self._main is not None:
            await self._main

    async def _run(self, opened: asyncio.Future[None]) -> None:
        """The node's whole life, inside the one TaskGroup that owns its tasks."""
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                try:
                    await self._open()
                except Exception as exc:  # nothing served yet: report it to start()
                    opened.set_exception(exc)
                    self._cancel_owned()
                    return
                opened.set_result(None)
                await self._stopping.wait()
                await self._close()
                self._cancel_owned()
        finally:
            self._group = None
            self.collector.remove()  # whichever way the node ended: no hook left behind
            self._snapshot_thread.shutdown(wait=True)
            self._disk.shutdown(wait=True)
            try:
                self.driver.close()
            finally:
                self.data_dir_lock.release()
                if opened.done() and not opened.cancelled() and opened.exception() is None:
                    log.info("stopped")  # a failed start says so once, in start()'s error

    async def _open(self) -> None:
        #: Elections, leader changes, membership changes, snapshots: logged as they are
        #: seen. Made first: a peer message may schedule a driver run as soon as the
        #: peer listener is up.
        self.event_watch = events.NodeWatch(
            self.config.node_id, self._core_view(), ring=self.event_ring
        )
        peer_host, peer_port = self.config.peer_listen_address
        await self.peer_listener.start(peer_host, peer_port, self._spawn)
        host, port = self.config.client_listen_address
        self._server = await asyncio.get_running_loop().create_server(
            self._new_client_connection,
            host,
            port,
            reuse_address=True,
            ssl=self._server_ssl,
            ssl_handshake_timeout=limits.TLS_HANDSHAKE_TIMEOUT_S if self._server_ssl else None,
        )
        http_address = self.config.http_listen_address
        if self.http is not None and http_address is not None:
            await self.http.start(*http_address)
            scheme = "https" if self._server_ssl else "http"
            log.info("HTTP on %s://%s:%d (docs/http.md)", scheme, *http_address)
        self._note_log_load()
        # The snapshot the driver takes in the background is the group's too.
        self.executor.spawn = functools.partial(self._spawn, what="snapshot")
        self.executor.hash_recovered_snapshot()
        me = self.config.node_id
        for peer, address in self.config.peers.items():
            if peer != me:
                self.open_link(peer, address)
        admin.sync_links(self, force=True)
        self.collector.install()
        self._ticker_task = self._spawn(self._ticker(), what="ticker")
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

    def _note_log_load(self) -> None:
        """How ``load`` read the log: the lines taken on its seal (info), and a tail it
        cut (a warning: nothing acknowledged was in it, but an operator who sees it
        often, or after no crash, has a disk to look at)."""
        storage = self.storage.inner
        if storage.sealed_lines:
            log.info(
                "%s: %d of its %d lines taken on its seal, the rest checked one by one",
                storage.log_path,
                storage.sealed_lines,
                storage.loaded_lines,
            )
        if storage.cut_tail is not None:
            fields: dict[str, events.FieldValue] = {
                "file": storage.log_path,
                "line": storage.cut_line,
                "reason": storage.cut_tail,
            }
            event = events.Event(events.LOG_TAIL_CUT, fields)
            events.emit(event, ring=self.event_ring, level=logging.WARNING)

    async def _close(self) -> None:
        """Stop accepting, finish the fsync in progress, answer waiting clients, close."""
        if self._server is not None:
            self._server.close()
        self.peer_listener.close()
        if self._ticker_task is not None:
            self._ticker_task.cancel()
            await asyncio.wait({self._ticker_task})
        self._closing = True
        if self._flush_task is not None:
            # Never cancel a flush mid-write: the disk thread would go on writing a
            # Ready the core was never told is durable. Let it finish.
            await asyncio.wait({self._flush_task})
        await self.executor.wait_snapshot()
        self._snapshot_thread.shutdown(wait=True)
        self._disk.shutdown(wait=True)
        if self._fatal is None:
            try:
                self.driver.process_ready()  # whatever arrived meanwhile, on this thread
            except Exception as exc:
                self._fail("driver loop", exc)
        self.driver.cancel_all(Outcome(codes.UNAVAILABLE, message="node shutting down"))
        self._outbox.flush()
        if self.http is not None:
            await self.http.close()  # its waiting requests were just answered UNAVAILABLE
        for link in list(self.links.values()):
            await link.stop()
        for conn in list(self._connections):
            conn.close()
        await self._end_client_connections()
        await self.peer_listener.wait_closed(SHUTDOWN_GRACE_S)

    def _spawn(self, coro: Coroutine[Any, Any, None], what: str) -> asyncio.Task[None]:
        """Start ``coro`` as a task of the node's group; its failure stops the node."""
        group = self._group
        if group is None:
            coro.close()
            raise InvariantViolation(f"{what} started outside the node's task group")
        task = group.create_task(self._owned(coro, what), name=what)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _owned(self, coro: Coroutine[Any, Any, None], what: str) -> None:
        try:
            await coro
        except Exception as exc:  # CancelledError is no Exception: it goes on up
            self._fail(what, exc)

    def _cancel_owned(self) -> None:
        """Cancel what is still running; the group then waits for each to end."""
        for task in list(self._tasks):
            task.cancel()

    def _fail(self, what: str, exc: BaseException) -> None:
        """Something the node cannot serve on without: stop it, in order, and say why.

        A broken invariant or a failing disk in the driver, a bug in the ticker or a
        link: serving on from a state nobody can vouch for is worse than stopping.
        ``serve_forever`` raises ``NodeFailed`` for the first failure.
        """
        log.critical("%s failed: %r; stopping the node", what, exc, exc_info=exc)
        if self._fatal is None:
            self._fatal = (what, exc)
        self._stopping.set()

    async def _end_client_connections(self) -> None:
        """Give closed connections a grace to flush their answers, then abort the rest.

        A TLS close waits for the peer's close_notify; a transport still open when
        the loop is torn down would be reported with a traceback.
        """
        deadline = asyncio.get_running_loop().time() + SHUTDOWN_GRACE_S
        while self._connections and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        for conn in list(self._connections):
            conn.abort()

    async def _ticker(self) -> None:
        interval = self.config.tick_ms / 1000
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        next_sweep = 0.0
        while True:
            deadline += interval
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            stalled = self.loop_lag.observe(
                deadline,
                loop.time(),
                snapshot=self.driver.snapshot_in_progress,
                collector_s=self.collector.seconds,
            )
            if stalled is not None:
                events.emit(stalled, ring=self.event_ring, level=logging.WARNING)
            self.driver.tick()
            self.watches.tick()
            now = time.monotonic()
            for responder in self._deadlines.expire(now):
                responder.time_out()
            if now >= next_sweep:
                next_sweep = now + limits.CLIENT_SWEEP_S
                self._sweep_client_connections(now)
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        """Run the driver loop soon: once per loop turn, never two at a time."""
        if self._flush_task is not None or self._flush_scheduled or self._closing or self._fatal:
            return  # a running flush loops until the core has nothing left to do
        self._flush_scheduled = True
        asyncio.get_running_loop().call_soon(self._start_flush)

    def _start_flush(self) -> None:
        self._flush_scheduled = False
        if self._flush_task is not None or self._closing:
            return
        try:
            done = self.executor.run_now()
        except Exception as exc:
            self._driver_failed(exc)
            return
        # What the steps sent and answered leaves now, not at the loop's next turn
        # (where the input read first, such as a second ack, would go ahead of it).
        self.driver.host.flush()
        if done:
            admin.sync_links(self)
            self._observe_events()
            return
        self._flush_task = self._spawn(self._flush(), what="driver loop")
        self._flush_task.add_done_callback(self._flush_done)

    def _core_view(self) -> events.CoreView:
        return events.core_view(self.driver.core, self.driver.snapshots.stats)

    def _observe_events(self) -> None:
        """Log what changed in the core since the last look (``server/events.py``)."""
        if self.event_watch is not None:
            self.event_watch.observe_core(self.driver.core, self.driver.snapshots.stats)

    async def _flush(self) -> None:
        while True:
            await self.executor.run()
            self.driver.host.flush()
            admin.sync_links(self)
            self._observe_events()
            if not self.driver.has_work():
                return

    def _flush_done(self, task: asyncio.Task[None]) -> None:
        self._flush_task = None
        if task.cancelled():
            return
        if task.exception() is None and self.driver.has_work() and not planted.on(Bug.LOST_WAKEUP):
            # Input stepped between the loop's last look and this callback found the
            # task still set and did not schedule a run: without this it would wait
            # for the next tick (seen as a tick-long p99 on sequential writes).
            self._schedule_flush()
        exc = task.exception()
        if exc is not None:
            self._driver_failed(exc)

    def _driver_failed(self, exc: BaseException) -> None:
        self._fail("driver loop", exc)

    async def _run_on_disk_thread(self, fn: Callable[..., None], *args: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(self._disk, fn, *args)

    async def _run_on_snapshot_thread(self, fn: Callable[..., None], *args: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(self._snapshot_thread, fn, *args)

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
        link.event_ring = self.event_ring
        self.links[peer] = link
        link.start(functools.partial(self._spawn, what=f"peer link to {peer}"))

    def close_link(self, peer: str) -> None:
        link = self.links.pop(peer, None)
        if link is not None:
            self._spawn(link.stop(), what=f"closing the link to {peer}")

    # --- client connections --------------------------------------------------------------
    def _new_client_connection(self) -> ClientConnection:
        rate, burst = self.config.rate_limit_rps, self.config.rate_limit_burst
        return ClientConnection(
            admission_=self._admission,
            budget=self._input_budget,
            line_bucket=TokenBucket(
                rate * limits.LINE_RATE_FACTOR, burst * limits.LINE_RATE_FACTOR
            ),
            request_bucket=TokenBucket(rate, burst),
            on_line=self._guarded_line,
            on_open=self._on_client_open,
            make_room=self._make_room,
            on_closed=self._on_client_closed,
            too_large=lambda message: _error_response(None, TooLarge(message)),
            on_throttled=self._note_throttled,
        )

    def _note_throttled(self, why: str) -> None:
        self.client_throttled[why] += 1

    def _on_client_open(self, conn: ClientConnection) -> bool:
        conn.identity = self.gate.identity_for_tls(conn.get_extra_info("ssl_object"))  # authz
        self._connections.add(conn)
        self._unestablished[conn] = None
        return not self._closing

    def _make_room(self, newcomer: ClientConnection, refused: str) -> bool:
        """Evict the oldest connection not yet served (from the newcomer's address when
        that address is full) so that a flood of idle connections cannot lock out new
        clients; connections that have been served are never evicted."""
        same_address = refused == admission.TOO_MANY_FROM_ADDRESS
        for conn in self._unestablished:
            if conn.established:
                continue
            if not same_address or conn.ip == newcomer.ip:
                del self._unestablished[conn]
                conn.evict(admission.EVICTED)
                return True
        return False

    def mark_established(self, conn: ClientConnection) -> None:
        """A valid request arrived: the connection is served, full lines, never evicted."""
        if not conn.established:
            conn.established = True
            self._unestablished.pop(conn, None)

    def _on_client_closed(self, conn: ClientConnection, reason: str | None) -> None:
        self._connections.discard(conn)
        self.watches.drop(conn)
        self._unestablished.pop(conn, None)
        if reason is not None:
            self.client_closes[reason] += 1
            if reason in (admission.TOO_MANY_CONNECTIONS, admission.TOO_MANY_FROM_ADDRESS):
                self.connections_refused += 1

    def client_door_status(self) -> dict[str, Any]:
        """What the client door holds and has refused (``status`` → ``clients``)."""
        return {
            "open": len(self._connections),
            "not_yet_served": len(self._unestablished),
            "input_bytes_held": self._input_budget.used,
            "closed_by_node": dict(self.client_closes),
            "rate_limited": self.rate_limited,
            "reading_paused": dict(self.client_throttled),
            "watches": self.watches.status(),
            # The HTTP port's door (server/http_door.py): refused or closed, by reason.
            "http_refused": dict(self.http.door.refused) if self.http is not None else {},
        }

    def _guarded_line(self, line: bytes, conn: ClientConnection) -> bool:
        return self.handler_guard.run(self._on_line, line, conn)

    def _sweep_client_connections(self, now: float) -> None:
        """Close connections past a deadline (``server/admission.py``); once an identity
        has expired, end the watches the policy no longer allows."""
        if self.gate.sweep():
            self.watches.recheck(self._watch_refusal)
        for conn in list(self._connections):
            reason = admission.overdue(
                now,
                opened=conn.opened,
                last_line=conn.last_line,
                partial_since=conn.partial_since,
                established=conn.established,
            )
            if reason is not None:
                conn.close(reason)

    def _identity_bucket(self, conn: ClientConnection) -> TokenBucket:
        """The request budget shared by this identity's connections (anonymous: its address).

        Looked up once per connection and identity (kept on the connection), not per request.
        """
        identity = conn.identity
        key = (
            f"id:{identity.name}"
            if identity and identity.source != "anonymous"
            else f"ip:{conn.ip}"
        )
        bucket = self._bucket_for(key)
        conn.identity_bucket = bucket
        return bucket

    def _bucket_for(self, key: str) -> TokenBucket:
        """The shared request budget named ``key`` (``id:<name>`` or ``ip:<address>``)."""
        bucket = self._identity_buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(
                limits.IDENTITY_RATE_RPS_DEFAULT, limits.IDENTITY_RATE_BURST_DEFAULT
            )
            self._identity_buckets[key] = bucket
            if len(self._identity_buckets) > limits.IDENTITY_BUCKETS_MAX:
                self._identity_buckets.popitem(last=False)
        else:
            self._identity_buckets.move_to_end(key)
        return bucket

    def _on_line(self, line: bytes, conn: ClientConnection) -> None:
        writer = conn
        try:
            env = decode_envelope(line)
        except ResoneticsError as exc:
            writer.write(_error_response(None, exc))
            conn.note_junk()
            return
        if env.kind in MESSAGE_TYPES or env.kind == HELLO_KIND:
            # A client connection never speaks for a node, whatever it holds.
            self.peer_messages_refused += 1
            if not conn.warned:
                conn.warned = True
                log.warning("refused %s on the client port (peers have their own)", env.kind)
            refused = BadRequest("kind", f"{env.kind} is a peer message: not accepted from clients")
            writer.write(_error_response(env.id, refused))
            conn.note_junk()
        elif env.kind == "ClientRequest":
            shared = conn.identity_bucket or self._identity_bucket(conn)
            if conn.request_bucket.try_take() and shared.try_take():
                self._on_client_request(env, conn)
            else:
                self.rate_limited += 1
                writer.write(outcome_response(env.id, _RATE_LIMITED))
        elif env.kind == AUTH_KIND:  # authz: a token names the connection's identity
            conn.identity, answer = self.gate.authenticate(env)
            conn.identity_bucket = None  # another identity: another shared budget
            if answer.ok:
                self.mark_established(conn)
                writer.write(outcome_response(env.id, answer))
            else:
                self._on_failed_auth(env, conn, answer)
        else:
            unknown = BadRequest("kind", f"unknown message kind {env.kind!r}")
            writer.write(_error_response(env.id, unknown))
            conn.note_junk()

    def _on_failed_auth(self, env: Envelope, conn: ClientConnection, answer: Outcome) -> None:
        """A failed Auth is charged as junk, and the connection closed at the
        ``limits.AUTH_FAILURES_PER_CONNECTION_MAX``-th: a client with a wrong token learns
        so at the first; the rest would be guesses."""
        conn.auth_failures += 1
        if conn.auth_failures < limits.AUTH_FAILURES_PER_CONNECTION_MAX:
            conn.write(outcome_response(env.id, answer))
            conn.note_junk()
            return
        last = f"{answer.message}; {conn.auth_failures} failed Auth lines: closing"
        conn.write(outcome_response(env.id, Outcome(answer.code, message=last)))
        conn.close_after_answer(admission.AUTH_FAILURES)

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
        if self.readiness.target is None:
            self.readiness.note(msg)
        if self.metrics is not None and isinstance(msg, AppendEntriesResp):
            self.metrics.round_trips.answered(msg.src)
        try:
            self.driver.step(msg)
        except Exception as exc:  # the core broke on a checked message: stop, in order
            self._driver_failed(exc)
            return
        self._schedule_flush()

    # --- clients ---------------------------------------------------------------------------
    def _on_client_request(self, env: Envelope, conn: ClientConnection) -> None:
        try:
            req = validate_request(env, self.ops)
        except ResoneticsError as exc:
            conn.write(_error_response(env.id, exc))
            return
        self.mark_established(conn)  # a valid request: full line size, never evicted
        responder = _Responder(env.id, conn, self._outbox, self._deadlines)
        # authz: admin ops are audited with their answer (timeouts included); a
        # request the policy refuses is answered here and never dispatched.
        if self.gate.audited(req):
            responder.on_answer = functools.partial(self.gate.audit, conn.identity, req)
        denied = self.gate.check(conn.identity, req)
        if denied is not None:
            responder(denied)
            return
        if req.op in WATCH_OPS:  # streams served by this node itself (server/watch.py)
            self.watches.handle(req.op, env.id, req.args, conn, responder)
            return
        self._dispatch(req, responder, size=len(env.payload))
        self._schedule_flush()

    def handle_request(
        self, identity: Identity | None, req: ClientRequest, on_done: OnDone, *, size: int
    ) -> None:
        """A validated request from another door (the HTTP API): judged, audited and
        routed exactly as on the client port; ``on_done`` gets its outcome."""
        if self.gate.audited(req):
            audit = functools.partial(self.gate.audit, identity, req)
            answer = on_done

            def on_done(outcome: Outcome) -> None:
                audit(outcome)
                answer(outcome)

        denied = self.gate.check(identity, req)
        if denied is not None:
            on_done(denied)
            return
        self._dispatch(req, on_done, size=size)
        self._schedule_flush()

    def take_request_budget(self, identity: Identity | None, ip: str) -> bool:
        """One request from the budget ``identity`` shares across doors (anonymous: per
        source address); False (counted as rate limited) when it is spent."""
        key = (
            f"id:{identity.name}"
            if identity is not None and identity.source != "anonymous"
            else f"ip:{ip}"
        )
        if self._bucket_for(key).try_take():
            return True
        self.rate_limited += 1
        return False

    def serving(self) -> bool:
        """Whether the node is up and not on its way down (``/health``)."""
        return not self._closing and self._fatal is None and not self._stopping.is_set()

    def _dispatch(self, req: ClientRequest, responder: OnDone, *, size: int) -> None:
        """Route by op (``runtime/dispatch.py``, shared with the simulator)."""
        metrics = self.metrics
        if metrics is not None and req.op in self.ops.logged:
            answer = responder
            board, started = self.dashboard, time.perf_counter()

            def responder(outcome: Outcome) -> None:
                metrics.note_proposal(outcome.code)
                if board is not None:
                    board.note_write(outcome.code, time.perf_counter() - started)
                answer(outcome)

        request = {
            "client_id": req.client_id,
            "request_id": req.request_id,
            "op": req.op,
            "args": req.args,
            **(req.session_fields() or {}),
        }
        dispatch(
            self.driver,
            request,
            responder,
            size=size,
            stale_read=self._stale_read,
            host_ops=self._host_ops,
            ops=self.ops,
        )

    def _make_host_ops(self, machine: str) -> dict[str, HostHandler]:
        """The ops this server serves itself: ``status``, the membership and backup ops."""
        #: Backups being encoded or fetched (``snapshot save``; server/backup.py).
        self.backups = Backups(
            self.driver,
            self.config.node_id,
            lambda: self.cluster_id,
            machine,
            lambda: self.driver.addresses.get(self.config.node_id) or self.config.client_listen,
        )
        ops: dict[str, HostHandler] = {
            "status": lambda args, on_done: on_done(Outcome(codes.OK, node_status(self))),
        }
        for op in admin.MEMBERSHIP_OPS:
            ops[op] = functools.partial(self._admin_op, op)
        ops.update(self.backups.handlers())
        return ops

    def _admin_op(self, op: str, args: dict[str, Any], on_done: OnDone) -> None:
        admin.dispatch(self, op, args, on_done)

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


class _Responder:
    """Answers one client request exactly once: with its outcome, or TIMEOUT."""

    __slots__ = ("_deadlines", "_done", "_id", "_outbox", "_writer", "on_answer")

    def __init__(
        self,
        req_id: Any,
        writer: ClientConnection,
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


def _outbox_and_watches(replicated: Any) -> tuple[Outbox, WatchHub]:
    """The client outbox and the watch hub over ``replicated``'s change history."""
    outbox = Outbox()
    hub = WatchHub(
        attach_history(replicated),
        outbox,
        schedule=lambda fn: asyncio.get_running_loop().call_soon(fn),
    )
    return outbox, hub


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
