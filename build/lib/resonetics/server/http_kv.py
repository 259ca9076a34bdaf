"""The JSON key-value API on the HTTP port: ``/v1/kv`` (docs/http.md).

Theory of operation
-------------------
Each route turns an HTTP request into the ``ClientRequest`` payload the client
port would receive (``kv_get``, ``kv_set``, ``kv_delete``, ``kv_cas``,
``kv_scan``) and hands it to ``HttpApi.run_op``: the same validation, policy,
request budget and dispatch. What is HTTP's own is only the shape of the
answer and three choices:

- **Writes on a follower** are answered ``307 Temporary Redirect`` to the same
  path on the leader's HTTP address (``--http-addresses`` / ``[nodes] http``);
  a 307 keeps the method and the body, so ``curl -L`` (and most HTTP clients)
  follow it. Forwarding the write instead (etcd's gateway) would make the
  follower act for the caller, and the leader would judge the follower's
  identity rather than the caller's; a redirect keeps one identity per request.
  Without a known leader HTTP address: ``503 NOT_LEADER`` with the leader's id.
  Reads are served by any node (linearizable ones through ReadIndex).
- **Exactly-once**: a write with an ``Idempotency-Key`` header is sent with that
  key as its request id under the client id ``http/<identity>``, so a retry
  with the same key and body is answered with the first result and applied
  once (while the node remembers it: the session table's bounds, 1024 recent
  keyed writes per identity). Without the header a write is at-least-once:
  a retry after a timeout may apply twice.
- **Scan cursor**: ``next`` is the last key returned when ``more`` is true;
  pass it as ``after`` to get the next page (``kv_scan``'s own ``after``). A
  consistent multi-page scan passes the first page's ``index`` as ``at_index``
  on the next pages; a page the store cannot vouch for (its range changed) is
  ``409 SCAN_CHANGED`` naming the key and the index.
- **Transactions** (``POST /v1/txn``) are writes like the others: 307 on a
  follower, ``Idempotency-Key`` for exactly-once; both branches answer 200
  (``succeeded`` says which ran).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Final

import msgspec
from aiohttp import web

from resonetics import limits
from resonetics.runtime.outcome import Outcome
from resonetics.security.authz import Identity
from resonetics.server.http_api import (
    CAS_FAILED,
    IDENTITY,
    NOT_FOUND,
    HttpApi,
    HttpError,
    json_response,
    outcome_response,
)
from resonetics.wire import codes
from resonetics.wire.client import SCAN_LIMIT_DEFAULT

#: A consistent scan page the store refused (the result of ``machine/kv.py``).
SCAN_CHANGED: Final = "SCAN_CHANGED"
_SCAN_PARAMS: Final = frozenset(
    {"prefix", "limit", "after", "at_index", "consistent_index", "meta", "consistency"}
)
_META_FIELDS: Final = ("create_index", "mod_index", "version")
_ANY: Final = msgspec.json.Decoder()
_CONSISTENCIES: Final = ("linearizable", "lease", "stale")


class KvRoutes:
    """The handlers of ``/v1/kv`` for one node's ``HttpApi``."""

    def __init__(self, api: HttpApi) -> None:
        self.api = api

    def install(self) -> None:
        add = self.api.add_route
        add("GET", "/v1/kv", self.scan)
        add("GET", "/v1/kv/{key:.+}", self.get)
        add("PUT", "/v1/kv/{key:.+}", self.put)
        add("DELETE", "/v1/kv/{key:.+}", self.delete)
        add("POST", "/v1/kv/{key:.+}/cas", self.cas)
        add("POST", "/v1/txn", self.txn)

    # --- reads ------------------------------------------------------------------------
    async def get(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        args = {"k": key, "consistency": _consistency(request), "meta": _flag(request, "meta")}
        outcome = await self.api.run_op(request, _read_payload("kv_get", args))
        if not outcome.ok:
            return outcome_response(outcome)
        result = dict(outcome.result)
        result.pop("ok", None)
        if not result.get("found"):
            return json_response(
                404,
                {"ok": False, "code": NOT_FOUND, "message": "no such key", "key": key, **result},
            )
        return json_response(200, {"ok": True, "key": key, **result})

    async def scan(self, request: web.Request) -> web.Response:
        query = request.query
        unknown = sorted(set(query) - _SCAN_PARAMS)
        if unknown:
            raise HttpError(codes.BAD_REQUEST, f"{unknown[0]}: unknown parameter")
        meta = _flag(request, "meta")
        args: dict[str, Any] = {
            "prefix": query.get("prefix", ""),
            "limit": _int_param(query.get("limit"), "limit", SCAN_LIMIT_DEFAULT),
            "consistency": _consistency(request),
            "meta": meta,
        }
        if "after" in query:
            args["after"] = query["after"]
        at_index = query.get("at_index", query.get("consistent_index"))
        if at_index is not None:
            args["at_index"] = _int_param(at_index, "at_index", 0)
        outcome = await self.api.run_op(request, _read_payload("kv_scan", args))
        if not outcome.ok:
            return outcome_response(outcome)
        result = outcome.result
        if result.get("ok") is False and result.get("code") == SCAN_CHANGED:
            return json_response(409, {**result, "at_index": args.get("at_index")})
        items = [_scan_item(row, meta) for row in result["items"]]
        extra = {k: v for k, v in result.items() if k not in ("ok", "items", "more", "next")}
        more = bool(result["more"])
        return json_response(
            200,
            {
                "ok": True,
                "items": items,
                "more": more,
                "next": result["items"][-1][0] if more and items else None,
                **extra,
            },
        )

    # --- writes -----------------------------------------------------------------------
    async def put(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        value = await _json_body(request)
        expected = request.query.get("expected")
        if expected is None:
            return await self._write(request, "kv_set", {"k": key, "v": value})
        args = {"k": key, "expected": _json_param(expected, "expected"), "v": value}
        return await self._write(request, "kv_cas", args)

    async def cas(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        if not isinstance(body, dict) or set(body) != {"expected", "value"}:
            raise HttpError(
                codes.BAD_REQUEST, 'body: must be {"expected": <json>, "value": <json>}'
            )
        args = {"k": request.match_info["key"], "expected": body["expected"], "v": body["value"]}
        return await self._write(request, "kv_cas", args)

    async def delete(self, request: web.Request) -> web.Response:
        return await self._write(request, "kv_delete", {"k": request.match_info["key"]})

    async def txn(self, request: web.Request) -> web.Response:
        """``kv_txn`` with the body ``{compare, then, else}``; 200 for either branch."""
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise HttpError(
                codes.BAD_REQUEST, 'body: must be an object {"compare", "then", "else"}'
            )
        payload = {**_write_ids(request), "op": "kv_txn", "args": body}
        outcome = await self.api.run_op(request, payload)
        if outcome.code == codes.NOT_LEADER:
            return self._to_leader(request, outcome)
        if not outcome.ok:
            return outcome_response(outcome)
        result = dict(outcome.result)
        if result.pop("ok", True) is False:  # the machine refused it (gateway bypassed)
            return json_response(400, {"ok": False, **result})
        return json_response(200, {"ok": True, "dedup": outcome.dedup, **result})

    async def _write(self, request: web.Request, op: str, args: dict[str, Any]) -> web.Response:
        payload = {**_write_ids(request), "op": op, "args": args}
        outcome = await self.api.run_op(request, payload)
        if outcome.code == codes.NOT_LEADER:
            return self._to_leader(request, outcome)
        if not outcome.ok:
            return outcome_response(outcome)
        result = dict(outcome.result)
        result.pop("ok", None)
        body = {"ok": True, "key": args["k"], "dedup": outcome.dedup, **result}
        if op == "kv_cas" and not result.get("swapped"):
            body.update(ok=False, code=CAS_FAILED, message="expected value did not match")
            return json_response(412, body)
        return json_response(200, body)

    def _to_leader(self, request: web.Request, outcome: Outcome) -> web.Response:
        """307 to the same path on the leader's HTTP address, when it is known."""
        hint = outcome.result if isinstance(outcome.result, dict) else {}
        leader = hint.get("leader")
        address = self.api.host.config.http_addresses.get(leader) if leader else None
        if address is None or leader == self.api.host.config.node_id:
            return outcome_response(outcome)
        scheme = "https" if self.api.host.config.tls() is not None else "http"
        location = f"{scheme}://{address}{request.path_qs}"
        body = {"ok": False, "code": codes.NOT_LEADER, "message": "not the leader", **hint}
        body["leader_http"] = address
        return json_response(307, body, Location=location)


def _read_payload(op: str, args: dict[str, Any]) -> dict[str, Any]:
    # Reads are not logged and never deduplicated: any ids will do.
    return {"client_id": "http", "request_id": "read", "op": op, "args": args}


def _write_ids(request: web.Request) -> dict[str, str]:
    """Client and request ids: the Idempotency-Key's, else a fresh one (at-least-once)."""
    identity: Identity | None = request[IDENTITY]
    name = identity.name[:100] if identity is not None else "unknown"
    key = request.headers.get("Idempotency-Key")
    if key is None:
        # Its own client id: unkeyed writes never push keyed results out of the table.
        return {"client_id": f"http-nokey/{name}", "request_id": uuid.uuid4().hex}
    return {"client_id": f"http/{name}", "request_id": key}


def _consistency(request: web.Request) -> str:
    value = request.query.get("consistency", "linearizable")
    if value not in _CONSISTENCIES:
        raise HttpError(
            codes.BAD_REQUEST, f"consistency: must be one of {', '.join(_CONSISTENCIES)}"
        )
    return value


def _int_param(text: str | None, name: str, default: int) -> int:
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise HttpError(codes.BAD_REQUEST, f"{name}: must be an integer, got {text!r}") from None


def _json_param(text: str, name: str) -> Any:
    try:
        return _ANY.decode(text)
    except msgspec.DecodeError as exc:
        raise HttpError(codes.BAD_REQUEST, f"{name}: not JSON ({exc})") from None


async def _json_body(request: web.Request) -> Any:
    try:
        async with asyncio.timeout(limits.HTTP_BODY_READ_S):
            raw = await request.read()
    except TimeoutError:
        raise HttpError(
            codes.BAD_REQUEST, f"body: not received within {limits.HTTP_BODY_READ_S} s"
        ) from None
    if not raw:
        raise HttpError(codes.BAD_REQUEST, "body: a JSON value is required")
    try:
        return _ANY.decode(raw)
    except msgspec.DecodeError as exc:
        raise HttpError(codes.BAD_REQUEST, f"body: not JSON ({exc})") from None


def _flag(request: web.Request, name: str) -> bool:
    text = request.query.get(name)
    if text is None or text in ("0", "false"):
        return False
    if text in ("1", "true", ""):
        return True
    raise HttpError(codes.BAD_REQUEST, f"{name}: must be 1, true, 0 or false, got {text!r}")


def _scan_item(row: list[Any], meta: bool) -> dict[str, Any]:
    item = {"key": row[0], "value": row[1]}
    if meta:
        item.update(zip(_META_FIELDS, row[2:5], strict=True))
    return item


__all__ = ["SCAN_CHANGED", "KvRoutes"]
