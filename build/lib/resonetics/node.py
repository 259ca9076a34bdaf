"""``resonetics.Node``: a cluster member running inside the user's own program.

Theory of operation
-------------------
A ``Node`` is a ``NodeServer`` (the same one ``resonetics serve`` runs: storage,
fsync, peer transport, TLS, cluster key, limits, authorization) plus an
``AsyncClient`` to the cluster's client addresses. Its settings are built by
``server.config.build_config``, the builder ``serve`` uses: a ``ServerConfig``,
or a TOML path and/or the ``[cluster]`` keys as keyword arguments.

Two ways to run it:

* **asyncio** — ``async with Node(...) as node:`` runs the node's TaskGroup in
  the caller's event loop; leaving the block shuts it down in order.
* **a background thread** — ``node.start()`` runs it on a thread with its own
  event loop (uvloop when installed) for blocking programs; ``node.stop()``
  shuts it down (idempotent; ``with Node(...) as node:`` does both).

What the program gets:

* ``node.call(op, **args)`` / ``await node.acall(...)``: a command or a
  linearizable query, through the client, so it reaches the leader wherever it
  is with the client's sequenced session: exactly-once retries and the same
  answers as any other client. There is no in-process short cut when this node
  leads; correctness first (the client path is loopback TCP).
* ``node.local`` (the machine object) and ``node.read_local(op, **args)``: this
  replica's applied state, **stale** — a follower may be behind the leader, and
  a deposed leader may not know it yet. ``read_local`` says how far it had
  applied (``applied_index``) and what it knew was committed.
* ``node.status()``, ``node.is_leader``, ``node.leader``, ``wait_ready``.

Thread rules: in asyncio mode everything runs in the caller's loop (``call`` is
refused there: it would block the loop that serves the node; use ``acall``). In
thread mode ``call``/``read_local``/``status`` hand their work to the node's
loop and wait; calling them from that loop (a machine's ``apply``, say) is
refused rather than left to deadlock. ``node.local`` is read without a lock:
in thread mode read single attributes only, or use ``read_local``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self, TypeVar

from resonetics import limits
from resonetics.client import AsyncClient
from resonetics.errors import BadRequest, NodeNotReady, NodeStartFailed, NodeStateError
from resonetics.machine.base import StateMachine
from resonetics.machine.kv import KeyValueStore
from resonetics.machine.ops import load_factory
from resonetics.proxies import check_args
from resonetics.raft.ready import Role
from resonetics.security.tls import TLSConfig
from resonetics.server.config import ConfigError, ServerConfig, apply_overrides, build_config

if TYPE_CHECKING:
    from resonetics.server.node_server import NodeServer

T = TypeVar("T")

_Mode = Literal["asyncio", "thread"]
_State = Literal["new", "starting", "running", "stopped"]


@dataclass(frozen=True, slots=True)
class LocalRead:
    """A read of this replica's applied state (stale: see ``Node.read_local``)."""

    #: What the machine's ``read`` returned.
    value: Any
    #: The last log index this replica had applied when it answered.
    applied_index: int
    #: The commit index this replica knew of (the leader's may be ahead).
    commit_index: int


class Node:
    """One cluster member embedded in this program (see the module docstring)."""

    def __init__(
        self,
        config: ServerConfig | str | Path | None = None,
        *,
        node_id: str | None = None,
        machine: StateMachine | None = None,
        peers: Mapping[str, str] | None = None,
        clients: Mapping[str, str] | None = None,
        client_tls: TLSConfig | None = None,
        client_token: str | None = None,
        client_timeout_s: float = 10.0,
        **settings: Any,
    ) -> None:
        """``config``: a ``ServerConfig``, or the cluster TOML file (then ``node_id``
        names this member); ``peers``/``clients``: node id -> peer/client address
        (override the file's); ``settings``: any ``[cluster]`` key (``data_dir``,
        ``cluster_key``, ``tls_ca``, ``tick_ms``, ``rate_limit_rps``...), checked the
        way ``serve`` checks them. ``machine``: the state machine (default: the
        config's ``machine`` factory, else the key-value store).

        ``client_tls``/``client_token``: how the node's own client (``call``)
        presents itself; on a TLS cluster the default trusts the cluster CA and
        presents no certificate (the node must then allow optional client auth).
        Bad settings raise ``ConfigError`` here, before anything starts.
        """
        if isinstance(config, ServerConfig):
            if node_id is not None and node_id != config.node_id:
                raise ConfigError(
                    f"Node(node_id={node_id!r}) contradicts the config's {config.node_id!r}"
                )
            built = apply_overrides(config, settings, source="Node(...)")
            if peers is not None or clients is not None:
                built = replace(
                    built,
                    peers=dict(peers) if peers is not None else built.peers,
                    clients=dict(clients) if clients is not None else built.clients,
                )
        else:
            if not node_id:
                raise ConfigError("Node(...): give node_id= (or a ServerConfig)")
            built = build_config(
                node_id,
                config_path=Path(config) if config is not None else None,
                peers=dict(peers) if peers is not None else None,
                clients=dict(clients) if clients is not None else None,
                settings=settings,
                source="Node(...)",
            )
        self.config = built.validate()
        self.node_id = self.config.node_id
        if machine is None:
            machine = load_factory(self.config.machine) if self.config.machine else KeyValueStore()
        #: This replica's machine object: its state is the applied (stale) state.
        self.local: StateMachine = machine
        self._client_tls = client_tls
        if client_tls is None and self.config.tls_ca is not None:
            self._client_tls = TLSConfig.from_paths(self.config.tls_ca, None, None)
        self._client_token = client_token
        self._client_timeout_s = client_timeout_s
        self._state: _State = "new"
        self._mode: _Mode | None = None
        self._server: NodeServer | None = None  # imported when the node starts
        self._client: AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._start_error: BaseException | None = None

    # --- asyncio mode --------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        self._claim("asyncio")
        try:
            await self._open()
        except BaseException:
            self._state = "stopped"
            raise
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Shut an asyncio-mode node down in order (again: nothing to do)."""
        if self._state == "new":
            raise NodeStateError(self.node_id, "stopped before it was started")
        if self._mode == "thread":
            raise NodeStateError(self.node_id, "runs on its own thread: stop it with stop()")
        if self._state == "stopped":
            return
        self._state = "stopped"
        await self._close()

    # --- thread mode ---------------------------------------------------------------------
    def start(self, timeout_s: float = limits.NODE_START_TIMEOUT_S) -> Self:
        """Run the node on a background thread; return once it serves (or raise why not)."""
        self._claim("thread")
        started = threading.Event()
        self._thread = threading.Thread(
            target=self._thread_main, args=(started,), name=f"resonetics-node-{self.node_id}"
        )
        self._thread.daemon = True
        self._thread.start()
        if not started.wait(timeout_s):
            self._request_stop()
            self._thread.join(timeout_s)
            self._state = "stopped"
            raise NodeStartFailed(self.node_id, f"not serving after {timeout_s:g}s")
        if self._start_error is not None:
            self._thread.join(timeout_s)
            self._state = "stopped"
            raise self._start_error
        return self

    def stop(self, timeout_s: float = limits.NODE_STOP_TIMEOUT_S) -> None:
        """Shut a thread-mode node down in order and wait for its thread (idempotent)."""
        if self._state == "new":
            raise NodeStateError(self.node_id, "stopped before it was started")
        if self._mode == "asyncio":
            raise NodeStateError(self.node_id, "runs in your event loop: use aclose()")
        if self._state == "stopped":
            return
        self._refuse_on_node_loop("stop()")
        self._state = "stopped"
        self._request_stop()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                raise NodeStateError(self.node_id, f"did not stop within {timeout_s:g}s")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _thread_main(self, started: threading.Event) -> None:
        from resonetics.commands.serve import event_loop_factory

        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(self._thread_life(started))

    async def _thread_life(self, started: threading.Event) -> None:
        try:
            await self._open()
        except BaseException as exc:  # reported to start() in the caller's thread
            self._start_error = exc
            started.set()
            return
        started.set()
        assert self._server is not None
        try:
            await self._server.shutdown(wait_for_stop=True)
        finally:
            await self._close()

    def _request_stop(self) -> None:
        loop, server = self._loop, self._server
        if loop is not None and server is not None and not loop.is_closed():
            # RuntimeError: the loop closed meanwhile, so the node has stopped already.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(server.stop)

    # --- both modes ----------------------------------------------------------------------
    def _claim(self, mode: _Mode) -> None:
        if self._state != "new":
            raise NodeStateError(self.node_id, "already started (a Node starts once)")
        self._state = "starting"
        self._mode = mode

    async def _open(self) -> None:
        """Build the server in the running loop, bind, start; then the client."""
        from resonetics.server.node_server import NodeServer

        self._loop = asyncio.get_running_loop()
        # The client first: a bad client TLS path must not leave a started node behind.
        client = AsyncClient(
            self._client_addresses(),
            timeout=self._client_timeout_s,
            tls=self._client_tls,
            token=self._client_token,
        )
        server = NodeServer(self.config, machine=self.local)
        self._server = server
        try:
            await server.start()
        except OSError as exc:
            raise NodeStartFailed(self.node_id, _bind_failure(exc, self.config)) from None
        self._client = client
        self._state = "running"

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()
        if self._server is not None:
            await self._server.shutdown()

    def _client_addresses(self) -> list[str]:
        """This node's client address first, then the other members' (hints go there)."""
        own = self.config.client_listen
        others = [a for n, a in sorted(self.config.clients.items()) if n != self.node_id]
        return [own, *[a for a in others if a != own]]

    def _running_server(self) -> NodeServer:
        if self._state != "running" or self._server is None:
            raise NodeStateError(self.node_id, f"not running ({self._state})")
        return self._server

    def _on_node_loop(self) -> bool:
        loop = self._loop
        if loop is None:
            return False
        try:
            return asyncio.get_running_loop() is loop
        except RuntimeError:
            return False

    def _refuse_on_node_loop(self, what: str) -> None:
        if self._mode == "thread" and self._on_node_loop():
            raise NodeStateError(
                self.node_id, f"{what} from the node's own event loop would wait for itself"
            )

    def _on_loop(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` where the node's state lives (its loop thread) and return its value."""
        self._running_server()
        if self._mode == "asyncio" or self._on_node_loop():
            return fn()
        assert self._loop is not None
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return future.result(limits.NODE_STOP_TIMEOUT_S)

    # --- what the program uses -----------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._state == "running"

    @property
    def is_leader(self) -> bool:
        """Whether this node leads now (as it believes; a deposed leader learns late)."""
        server = self._server
        return server is not None and self.running and server.role() is Role.LEADER

    @property
    def leader(self) -> str | None:
        """The leader this node knows of (None during an election)."""
        server = self._server
        if server is None or not self.running:
            return None
        return server.driver.core.leader_id

    @property
    def applied_index(self) -> int:
        """The last log index this replica has applied."""
        server = self._running_server()
        return server.driver.machine.last_applied

    @property
    def failure(self) -> BaseException | None:
        """What stopped the node when one of its parts failed (``NodeFailed``), else None."""
        server = self._server
        return None if server is None else server.failure

    def status(self) -> dict[str, Any]:
        """This node's ``status`` (the same document ``resonetics status`` shows)."""
        from resonetics.server.status import node_status

        server = self._running_server()
        return self._on_loop(lambda: node_status(server))

    def read_local(self, op: str, /, **args: Any) -> LocalRead:
        """Answer query ``op`` from this replica's applied state, **without** asking the
        leader: it may be stale (behind the leader, or from a deposed leader). Use
        ``call`` for a linearizable answer."""
        server = self._running_server()
        spec = server.ops.specs.get(op)
        if spec is None or spec.category != "read":
            queries = sorted(n for n, s in server.ops.specs.items() if s.category == "read")
            raise BadRequest("op", f"{op!r} is not a query of this machine; queries: {queries}")
        checked = check_args(op, spec.machine_args, args) if spec.machine_op else args
        outcome = self._on_loop(lambda: server.driver.read_stale(op, checked))
        result = outcome.result
        if result.get("ok") is False:
            raise BadRequest("op", str(result.get("message", "the machine refused the read")))
        value = (
            result["value"]
            if "value" in result
            else {k: v for k, v in result.items() if k not in ("applied_index", "commit_index")}
        )
        return LocalRead(value, int(result["applied_index"]), int(result["commit_index"]))

    def call(self, op: str, args: dict[str, Any] | None = None, /, **kwargs: Any) -> Any:
        """Send ``op`` to the leader and wait (thread mode; ``Client.call``'s answer)."""
        if self._mode == "asyncio":
            raise NodeStateError(
                self.node_id, "call() would block the event loop serving the node: await acall()"
            )
        self._refuse_on_node_loop("call()")
        client = self._running_client()
        future = self._submit(client.call(op, args, **kwargs))
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise NodeStateError(self.node_id, f"stopped while {op!r} was in flight") from None

    async def acall(self, op: str, args: dict[str, Any] | None = None, /, **kwargs: Any) -> Any:
        """Send ``op`` to the leader (either mode; ``AsyncClient.call``'s answer)."""
        client = self._running_client()
        if self._on_node_loop():
            return await client.call(op, args, **kwargs)
        future = self._submit(client.call(op, args, **kwargs))
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            if future.cancelled():  # the node stopped, not our caller cancelling us
                raise NodeStateError(self.node_id, f"stopped while {op!r} was in flight") from None
            raise

    def _submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coro`` on the node's loop (thread mode); refused once that loop is gone."""
        loop = self._loop
        if loop is None or loop.is_closed():
            coro.close()
            raise NodeStateError(self.node_id, "its event loop has stopped")
        try:
            return asyncio.run_coroutine_threadsafe(coro, loop)
        except RuntimeError:  # closed between the check and the call
            coro.close()
            raise NodeStateError(self.node_id, "its event loop has stopped") from None

    def _running_client(self) -> AsyncClient:
        self._running_server()
        client = self._client
        if client is None:
            raise NodeStateError(self.node_id, "not running")
        return client

    def _ready_state(self) -> str | None:
        """None when ready: a leader known, something committed in its term, and
        everything this node knows committed applied; else what is missing."""
        server = self._running_server()
        if server.failure is not None:
            raise server.failure
        core = server.driver.core
        if core.leader_id is None:
            return "no leader known"
        if core.commit_index < 1:
            return f"leader {core.leader_id}, nothing committed yet"
        applied = server.driver.machine.last_applied
        if applied < core.commit_index:
            return f"applied {applied} of {core.commit_index} committed"
        return None

    async def wait_ready(self, timeout_s: float = limits.NODE_START_TIMEOUT_S) -> None:
        """Wait until the node knows a leader and has applied what it knows committed."""
        deadline = time.monotonic() + timeout_s
        interval = self.config.tick_ms / 1000
        while (state := self._ready_state()) is not None:
            if time.monotonic() >= deadline:
                raise NodeNotReady(self.node_id, timeout_s, state)
            await asyncio.sleep(interval)

    def wait_ready_blocking(self, timeout_s: float = limits.NODE_START_TIMEOUT_S) -> None:
        """``wait_ready`` for a blocking program (thread mode)."""
        self._refuse_on_node_loop("wait_ready_blocking()")
        deadline = time.monotonic() + timeout_s
        interval = self.config.tick_ms / 1000
        while (state := self._ready_state()) is not None:
            if time.monotonic() >= deadline:
                raise NodeNotReady(self.node_id, timeout_s, state)
            time.sleep(interval)

    def __repr__(self) -> str:
        return f"Node({self.node_id!r}, {self._state}, mode={self._mode})"


def _bind_failure(exc: OSError, config: ServerConfig) -> str:
    """One line naming the addresses and what the system said (no traceback)."""
    addresses = f"peers on {config.peer_listen}, clients on {config.client_listen}"
    if exc.errno == errno.EADDRINUSE:
        return f"an address is already in use ({addresses})"
    return f"cannot listen ({addresses}): {exc.strerror or exc}"


__all__ = ["LocalRead", "Node"]
