"""The node's HTTP port (``--listen-http``): metrics, health, readiness, the key-value API.

Theory of operation
-------------------
An aiohttp application served beside the client and peer listeners, started in
``NodeServer._open`` and cleaned up in ``NodeServer._close`` (the node's one
shutdown path); every handler runs on the node's event loop, so it reads the
core and the driver as the client port does, without locks.

Who is asking: a bearer token (``Authorization: Bearer <token>``) names a token
identity from the node's policy, as an ``Auth`` line does on the client port; a
wrong token is ``401 UNAUTHENTICATED``, never anonymous. Without a token, the
client certificate's identity (``resonetics://client/<name>``) on a TLS node,
else anonymous. What they may do: every key-value route builds the very
``ClientRequest`` the client port would get, validated by ``validate_request``
and judged by the node's ``Gatekeeper`` and request budgets, then routed by
``runtime/dispatch.py`` (``NodeServer.handle_request``): there is no second
implementation of an op. ``/metrics`` is judged as the ``status`` op (the
``monitor`` grant). ``/health`` and ``/ready`` answer anyone: they tell no data.

Errors are JSON ``{"ok": false, "code": ..., "message": ...}`` with the wire code
and an HTTP status (``STATUS_FOR_CODE``); an exception in a handler is a bug:
answered 500 ``INTERNAL`` (no internals in the answer), logged once with its
traceback, counted (``handler_errors``, ``resonetics_http_requests_total{code="500"}``),
and the node serves on.

Adding routes (the dashboard): ``api.add_route("GET", "/dashboard", handler)``
before the node starts (``NodeServer.http.add_route``); the handler gets the
``aiohttp.web.Request`` with ``request[IDENTITY]`` set, and may call
``api.authorize(request, "status")`` to require what an op requires.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, Protocol

import msgspec
from aiohttp import web

from resonetics import limits
from resonetics.errors import BadRequest, ResoneticsError, TooLarge
from resonetics.runtime.outcome import OnDone, Outcome
from resonetics.security.authz import Identity
from resonetics.server.authorization import audit_log
from resonetics.server.http_door import HttpDoor
from resonetics.server.readiness import Readiness
from resonetics.wire import codes
from resonetics.wire.client import REQUEST_KIND, ClientRequest, OpTable, validate_request
from resonetics.wire.envelope import decode_envelope, encode_envelope

if TYPE_CHECKING:
    from resonetics.runtime.driver import NodeDriver
    from resonetics.server.authorization import Gatekeeper
    from resonetics.server.config import ServerConfig
    from resonetics.server.metrics import NodeMetrics

log = logging.getLogger("resonetics.http")

#: ``request[IDENTITY]``: who sent an HTTP request (None: an unknown bearer token). A typed
#: request key where aiohttp has them (3.13+), the plain string before.
IDENTITY: Final[Any] = (
    web.RequestKey("resonetics.identity", object)
    if hasattr(web, "RequestKey")
    else "resonetics.identity"
)
#: Codes that only the HTTP port answers with.
NOT_FOUND: Final = "NOT_FOUND"
METHOD_NOT_ALLOWED: Final = "METHOD_NOT_ALLOWED"
CAS_FAILED: Final = "CAS_FAILED"
INTERNAL: Final = "INTERNAL"
NOT_IMPLEMENTED: Final = "NOT_IMPLEMENTED"

#: The HTTP status each wire code is answered with.
STATUS_FOR_CODE: Final = {
    codes.OK: 200,
    codes.BAD_REQUEST: 400,
    codes.UNAUTHENTICATED: 401,
    codes.FORBIDDEN: 403,
    NOT_FOUND: 404,
    METHOD_NOT_ALLOWED: 405,
    CAS_FAILED: 412,
    codes.TOO_LARGE: 413,
    codes.RATE_LIMITED: 429,
    INTERNAL: 500,
    NOT_IMPLEMENTED: 501,
    codes.NOT_LEADER: 503,
    codes.UNAVAILABLE: 503,
    codes.TIMEOUT: 504,
    codes.SESSION_EXPIRED: 409,
    codes.COMPACTED: 410,
    "SCAN_CHANGED": 409,
    "TOO_MANY_WATCHES": 429,
}
_JSON: Final = msgspec.json.Encoder()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HttpHost(Protocol):
    """What the HTTP API needs of its node (``NodeServer`` satisfies it)."""

    config: ServerConfig
    driver: NodeDriver
    gate: Gatekeeper
    ops: OpTable
    readiness: Readiness
    metrics: NodeMetrics | None

    def handle_request(
        self, identity: Identity | None, req: ClientRequest, on_done: OnDone, *, size: int
    ) -> None: ...

    def take_request_budget(self, identity: Identity | None, ip: str) -> bool: ...

    def serving(self) -> bool: ...


class HttpError(Exception):
    """Answer this request with ``code`` (and its HTTP status) and ``message``."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra


def json_response(status: int, body: dict[str, Any], **headers: str) -> web.Response:
    return web.Response(
        status=status,
        body=_JSON.encode(body),
        content_type="application/json",
        headers=headers or None,
    )


def error_response(code: str, message: str, **extra: Any) -> web.Response:
    body = {"ok": False, "code": code, "message": message, **extra}
    return json_response(STATUS_FOR_CODE.get(code, 500), body)


def outcome_response(outcome: Outcome) -> web.Response:
    """A non-OK outcome as a JSON error (its result's fields kept: leader hints, ...)."""
    extra = outcome.result if isinstance(outcome.result, dict) else {}
    return error_response(outcome.code, outcome.message or outcome.code, **extra)


class _ProtocolLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's log for requests it could not parse (garbage, a line past the limit):
    it answered 400 already; say so in one debug line, never with a traceback."""

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info")
        reason = str(exc).splitlines()[0] if isinstance(exc, BaseException) else "malformed"
        self.logger.debug("HTTP request refused: %s", reason)


_PROTOCOL_LOG: Final = _ProtocolLog(logging.getLogger("resonetics.http.protocol"))


class HttpApi:
    """The aiohttp application of one node, and its listener."""

    def __init__(self, host: HttpHost, ssl_context: ssl.SSLContext | None) -> None:
        self.host = host
        self._ssl = ssl_context
        self.app = web.Application(
            client_max_size=limits.HTTP_BODY_BYTES_MAX, middlewares=[self._middleware]
        )
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        #: What the port admits: connection caps and the first request's deadline.
        self.door = HttpDoor()
        #: Answers by HTTP status code (``resonetics_http_requests_total``).
        self.answered: Counter[str] = Counter()
        #: Handler exceptions answered 500 (a bug; counted, the node serves on).
        self.handler_errors = 0
        self.add_route("GET", "/health", self._health)
        self.add_route("GET", "/ready", self._ready)
        self.add_route("GET", "/metrics", self._metrics)

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        """Serve ``handler`` at ``path`` (aiohttp syntax: ``/v1/kv/{key:.+}``)."""
        self.app.router.add_route(method, path, handler)

    # --- lifecycle ------------------------------------------------------------------
    async def start(self, host: str, port: int) -> None:
        runner = web.AppRunner(
            self.app,
            handle_signals=False,
            access_log=None,
            logger=_PROTOCOL_LOG,
            lingering_time=limits.HTTP_LINGER_S,
            keepalive_timeout=limits.HTTP_KEEPALIVE_S,
            max_line_size=limits.HTTP_HEADER_LINE_BYTES_MAX,
            max_field_size=limits.HTTP_HEADER_LINE_BYTES_MAX,
            max_headers=limits.HTTP_HEADERS_MAX,
            shutdown_timeout=limits.HTTP_SHUTDOWN_GRACE_S,
        )
        await runner.setup()
        self._runner = runner
        handlers = runner.server
        assert handlers is not None
        # The node's own listener rather than aiohttp's site: every accepted connection
        # passes the door (server/http_door.py) before aiohttp sees it.
        try:
            self._listener = await asyncio.get_running_loop().create_server(
                self.door.factory(handlers),
                host,
                port,
                ssl=self._ssl,
                reuse_address=True,
                ssl_handshake_timeout=limits.TLS_HANDSHAKE_TIMEOUT_S if self._ssl else None,
            )
        except BaseException:
            await self.close()
            raise

    def open_connections(self) -> int:
        """HTTP connections open now (``resonetics_http_connections``)."""
        server = self._runner.server if self._runner is not None else None
        return len(server.connections) if server is not None else 0

    async def close(self) -> None:
        """Stop listening, give requests in progress a grace, then cancel them."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()  # no new connections; those open are aiohttp's to shut down
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # --- who is asking --------------------------------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            declared = request.content_length
            if declared is not None and declared > limits.HTTP_BODY_BYTES_MAX:
                # Answered before a byte of the body is read, and the connection closed:
                # the unread body is not drained.
                refused = error_response(
                    codes.TOO_LARGE,
                    f"body: {declared} bytes declared, more than {limits.HTTP_BODY_BYTES_MAX}",
                )
                refused.force_close()
                self.answered[str(refused.status)] += 1
                return refused
            request[IDENTITY] = self._identify(request)
            response = await handler(request)
        except HttpError as exc:
            response = error_response(exc.code, exc.message, **exc.extra)
        except web.HTTPException as exc:
            response = self._http_exception(request, exc)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.handler_errors += 1
            log.exception("HTTP %s %s failed", request.method, request.path)
            response = error_response(INTERNAL, "internal error; the node serves on")
        self.answered[str(response.status)] += 1
        return response

    def _http_exception(self, request: web.Request, exc: web.HTTPException) -> web.Response:
        """aiohttp's own refusals (no route, wrong method, body too large) as JSON."""
        if isinstance(exc, web.HTTPMethodNotAllowed):
            allowed = ", ".join(sorted(exc.allowed_methods))
            return error_response(
                METHOD_NOT_ALLOWED, f"{request.method} {request.path}: allowed: {allowed}"
            )
        if isinstance(exc, web.HTTPRequestEntityTooLarge):
            return error_response(
                codes.TOO_LARGE, f"body: more than {limits.HTTP_BODY_BYTES_MAX} bytes"
            )
        if isinstance(exc, web.HTTPNotFound):
            return error_response(NOT_FOUND, f"no route {request.method} {request.path}")
        if isinstance(exc, web.HTTPRedirection):
            raise exc
        return error_response(INTERNAL if exc.status >= 500 else codes.BAD_REQUEST, exc.reason)

    def _identify(self, request: web.Request) -> Identity | None:
        """A bearer token's identity (None: unknown token), else the certificate's, else anonymous."""
        gate = self.host.gate
        header = request.headers.get("Authorization")
        if header is None:
            transport = request.transport
            ssl_object = transport.get_extra_info("ssl_object") if transport else None
            return gate.identity_for_tls(ssl_object)
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > limits.TOKEN_CHARS_MAX:
            gate.denied += 1
            raise HttpError(codes.UNAUTHENTICATED, "Authorization: expected 'Bearer <token>'")
        identity = gate.policy.identity_for_token(token)
        if identity is None:
            gate.denied += 1
            audit_log.warning("HTTP auth refused: unknown token")
        return identity

    # --- the one path to an op --------------------------------------------------------
    async def run_op(self, request: web.Request, payload: dict[str, Any]) -> Outcome:
        """Validate, judge and dispatch one request as the client port would; its outcome.

        ``payload`` is a ``ClientRequest`` payload (``client_id``, ``request_id``,
        ``op``, ``args``). TIMEOUT after ``request_timeout_s`` (a write may still commit).
        """
        req, size = self.validate(payload)
        identity: Identity | None = request[IDENTITY]
        self.check_budget(request, identity)
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()

        def on_done(outcome: Outcome) -> None:
            if not future.done():
                future.set_result(outcome)

        self.host.handle_request(identity, req, on_done, size=size)
        try:
            async with asyncio.timeout(self.host.config.request_timeout_s):
                return await future
        except TimeoutError:
            return Outcome(codes.TIMEOUT, message="no outcome in time; the write may still commit")

    def validate(self, payload: dict[str, Any]) -> tuple[ClientRequest, int]:
        """The ``ClientRequest`` the client port would make of the same line."""
        line = encode_envelope(REQUEST_KIND, payload, int(time.time() * 1000))
        try:
            env = decode_envelope(line)
            return validate_request(env, self.host.ops), len(env.payload)
        except TooLarge as exc:
            raise HttpError(codes.TOO_LARGE, _http_field_names(str(exc))) from None
        except BadRequest as exc:
            raise HttpError(codes.BAD_REQUEST, _http_field_names(str(exc))) from None
        except ResoneticsError as exc:
            raise HttpError(codes.BAD_REQUEST, str(exc)) from None

    def check_budget(self, request: web.Request, identity: Identity | None) -> None:
        """The request budget of the identity (anonymous: of the source address)."""
        if identity is None:
            raise HttpError(
                codes.UNAUTHENTICATED, "unknown bearer token; send a valid Authorization header"
            )
        if not self.host.take_request_budget(identity, request.remote or "?"):
            raise HttpError(codes.RATE_LIMITED, "too many requests; retry after a pause")

    def authorize(self, request: web.Request, op: str) -> None:
        """Refuse unless the requester may run ``op`` (its args empty): for routes that
        show what an op shows (``/metrics`` is judged as ``status``)."""
        req, _ = self.validate({"client_id": "http", "request_id": "check", "op": op})
        identity: Identity | None = request[IDENTITY]
        denied = self.host.gate.check(identity, req)
        if denied is not None:
            raise HttpError(denied.code, denied.message)

    # --- operational routes -----------------------------------------------------------
    async def _health(self, request: web.Request) -> web.Response:
        """200 while the node serves and its event loop runs callbacks promptly."""
        loop = asyncio.get_running_loop()
        ran: asyncio.Future[float] = loop.create_future()
        started = loop.time()

        def mark() -> None:
            if not ran.done():
                ran.set_result(loop.time())

        loop.call_soon(mark)
        try:
            async with asyncio.timeout(limits.HTTP_HEALTH_LOOP_S):
                lag_s = await ran - started
        except TimeoutError:
            lag_s = limits.HTTP_HEALTH_LOOP_S
        node = self.host.config.node_id
        if not self.host.serving():
            return json_response(503, {"ok": False, "node": node, "reason": "shutting down"})
        return json_response(200, {"ok": True, "node": node, "loop_lag_ms": round(lag_s * 1000, 3)})

    async def _ready(self, request: web.Request) -> web.Response:
        core = self.host.driver.core
        answer = self.host.readiness.check(
            leader=core.leader_id,
            is_leader=core.is_leader,
            commit=core.commit_index,
            applied=core.applied,
        )
        body: dict[str, Any] = {
            "ok": answer.ready,
            "node": self.host.config.node_id,
            "leader": core.leader_id,
            "applied_index": core.applied,
            "commit_index": core.commit_index,
            "target_index": answer.target,
        }
        if not answer.ready:
            body["reason"] = answer.reason
        return json_response(200 if answer.ready else 503, body)

    async def _metrics(self, request: web.Request) -> web.Response:
        self.authorize(request, "status")
        metrics = self.host.metrics
        if metrics is None:
            raise HttpError(NOT_IMPLEMENTED, "metrics are off on this node")
        return web.Response(
            body=metrics.exposition(),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )


#: Wire field names as an HTTP user knows them.
_FIELD_NAMES: Final = (
    ("args.k", "key"),
    ("args.v", "value"),
    ("args.expected", "expected"),
    ("args.prefix", "prefix"),
    ("args.limit", "limit"),
    ("args.consistency", "consistency"),
    ("payload.request_id", "Idempotency-Key"),
    ("args.", ""),
)


def _http_field_names(message: str) -> str:
    for wire, http in _FIELD_NAMES:
        if message.startswith(wire):
            return http + message[len(wire) :]
    return message


__all__ = [
    "IDENTITY",
    "STATUS_FOR_CODE",
    "HttpApi",
    "HttpError",
    "HttpHost",
    "error_response",
    "json_response",
    "outcome_response",
]
