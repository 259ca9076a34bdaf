"""Response codes of the client protocol (DESIGN §5)."""

from __future__ import annotations

from typing import Final

OK: Final = "OK"
#: Not the leader; ``result`` carries ``term``, ``node`` and, when known,
#: ``leader``, ``leader_addr``.
NOT_LEADER: Final = "NOT_LEADER"
#: Indeterminate: the command may still commit. Retry with the same request_id.
TIMEOUT: Final = "TIMEOUT"
BAD_REQUEST: Final = "BAD_REQUEST"
TOO_LARGE: Final = "TOO_LARGE"
RATE_LIMITED: Final = "RATE_LIMITED"
UNAVAILABLE: Final = "UNAVAILABLE"
#: The identity on this connection may not do this op on this key (security/authz.py).
#: Never retried: every node applies the same policy.
FORBIDDEN: Final = "FORBIDDEN"
#: The token presented in an ``Auth`` line is unknown; the connection serves no
#: request until an ``Auth`` line succeeds.
UNAUTHENTICATED: Final = "UNAUTHENTICATED"

#: The request's session no longer holds it (result discarded, session gone): refused,
#: never applied again, never retried (Raft dissertation §6.3).
SESSION_EXPIRED: Final = "SESSION_EXPIRED"

#: A watch's ``from_index`` is older than the oldest change the node still holds;
#: ``result.oldest_index`` names the oldest index still available (read a snapshot, then
#: watch from there).
COMPACTED: Final = "COMPACTED"
#: A watch was cut because its watcher fell too far behind; the end message names
#: ``last_index``, the index through which the stream was complete.
WATCH_TOO_SLOW: Final = "WATCH_TOO_SLOW"
#: A watch ended because its client cancelled it (``watch_cancel``).
CANCELLED: Final = "CANCELLED"
#: The lease named does not exist (never granted, revoked or expired): never retried.
LEASE_NOT_FOUND: Final = "LEASE_NOT_FOUND"
#: A lease limit (``LEASES_MAX``, ``LEASE_KEYS_MAX``) refused the request.
LEASE_LIMIT: Final = "LEASE_LIMIT"

ALL: Final = frozenset(
    {
        OK,
        NOT_LEADER,
        TIMEOUT,
        BAD_REQUEST,
        TOO_LARGE,
        RATE_LIMITED,
        UNAVAILABLE,
        SESSION_EXPIRED,
        FORBIDDEN,
        UNAUTHENTICATED,
        COMPACTED,
        WATCH_TOO_SLOW,
        CANCELLED,
        LEASE_NOT_FOUND,
        LEASE_LIMIT,
    }
)
