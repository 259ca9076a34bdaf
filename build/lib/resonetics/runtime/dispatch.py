"""Request dispatch: which driver call serves a client op (one place, server and simulator).

Theory of operation
-------------------
A validated client request is routed by its op (``wire/client.py``'s table):

- a logged op (a key write or ``session_open``) goes to ``NodeDriver.submit``
  with its client id, request id and, for a sequenced session, the session
  fields (``session``, ``seq``, ``ack_below``), which travel in the log;
- a read goes by its ``consistency``: ``stale`` is answered at once from this
  node's applied state (the host may add to it: the server says how long ago
  it heard from the leader), ``lease`` and ``linearizable`` through ReadIndex;
- an op the host serves itself (the server: ``status`` and the membership
  admin ops) goes to the host's handler;
- anything else is a ``BAD_REQUEST`` naming the op.

Which ops are logged and which are reads comes from the served machine's op
table (``wire/machine_ops.op_table``: its declared commands and queries), or,
without one, from the key-value store's.

The server (``server/node_server.py``) and the simulator (``sim/cluster.py``)
both call ``dispatch``, so the simulator checks the routing that ships.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import Any

from resonetics.runtime.driver import NodeDriver
from resonetics.runtime.leases import KEEPER_OPS
from resonetics.runtime.outcome import OnDone, Outcome
from resonetics.wire import codes
from resonetics.wire.client import LOGGED_OPS, READ_OPS, OpTable

#: Serves one op the host handles itself: (args, on_done).
HostHandler = Callable[[dict[str, Any], OnDone], None]
#: Answers a stale read: (op, args) -> outcome.
StaleReader = Callable[[str, dict[str, Any]], Outcome]


class Routed(enum.Enum):
    """Where a request went (the simulator defers proposing writes when batching)."""

    WRITE = "write"
    READ = "read"
    HOST = "host"
    REFUSED = "refused"


def route(
    op: str, host_ops: Mapping[str, HostHandler] | None = None, ops: OpTable | None = None
) -> Routed:
    """Where ``op`` goes, without sending it anywhere.

    ``ops``: the served machine's op table (its commands are logged, its queries
    read); None: the key-value store's.
    """
    if op in (LOGGED_OPS if ops is None else ops.logged):
        return Routed.WRITE
    if op in (READ_OPS if ops is None else ops.reads):
        return Routed.READ
    if host_ops is not None and op in host_ops:
        return Routed.HOST
    if op in KEEPER_OPS and (ops is None or op in ops.specs):
        return Routed.HOST  # served by the driver's lease keeper
    return Routed.REFUSED


def dispatch(
    driver: NodeDriver,
    request: Mapping[str, Any],
    on_done: OnDone,
    *,
    size: int | None = None,
    stale_read: StaleReader | None = None,
    host_ops: Mapping[str, HostHandler] | None = None,
    ops: OpTable | None = None,
) -> Routed:
    """Route one validated request (``client_id``, ``request_id``, ``op``, ``args`` and
    the optional session fields) to the driver or the host; ``on_done`` gets its outcome.

    A write's ``args`` go into its command as they are (nothing changes them); a read's
    or a host op's are copied first (a read's ``consistency`` is taken out of the copy).
    ``size`` is the request's size on the wire, when known (``NodeDriver.submit``).
    """
    op = request["op"]
    routed = route(op, host_ops, ops)
    if routed is Routed.WRITE:
        session = None  # all three fields, or a legacy request without a session
        if "session" in request and "seq" in request and "ack_below" in request:
            session = {
                "session": request["session"],
                "seq": request["seq"],
                "ack_below": request["ack_below"],
            }
        driver.submit(
            request["client_id"],
            request["request_id"],
            op,
            request["args"],
            on_done,
            size=size,
            session=session,
        )
        return routed
    args = dict(request["args"])
    if routed is Routed.READ:
        consistency = args.pop("consistency", "linearizable")
        if consistency == "stale":
            on_done((stale_read or driver.read_stale)(op, args))
        else:
            driver.read(op, args, on_done, lease=consistency == "lease")
    elif routed is Routed.HOST:
        if host_ops is not None and op in host_ops:
            host_ops[op](args, on_done)
        else:
            driver.leases.serve(op, args, on_done)
    else:
        on_done(Outcome(codes.BAD_REQUEST, message=f"op: unknown op {op!r}"))
    return routed


__all__ = ["HostHandler", "Routed", "StaleReader", "dispatch", "route"]
