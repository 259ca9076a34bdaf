"""Leases of the key-value store: TTLs in log time, keys attached, expiry by entry.

Theory of operation
-------------------
A lease is granted by an entry (``lease_grant``); its id is that entry's log
index, so every replica names it alike (several grants batched into one entry
take the next unused numbers: an id is ``max(index, last id + 1)``). It records its
TTL and a *recorded deadline* in **log time**: the leader's ``ts`` stamps of
the entries, made monotonic (``log_time`` is the largest stamp applied so far),
never a replica's own clock. Keys are attached by a put naming the lease; a put
without a lease detaches the key (etcd's rule), a delete forgets it.

Keep-alives are **not** logged: the leader holds them in memory
(``runtime/leases.py``). So the recorded deadline is only a lower bound: the
grant's stamp plus the TTL. A lease ends only by an entry: ``lease_revoke``
(a client) or ``lease_expire`` (proposed by the leader when *its* clock, which
knows the keep-alives, says a lease ran out). ``lease_expire`` expires a lease
only if the entry's log time has passed its recorded deadline, so an expire
entry can never cut a lease short of its granted TTL in log time; a lease
revoked or re-granted meanwhile is left alone. Both delete the lease's keys in
that same entry, at the same index on every replica.

The state is deterministic: leases live in a dict keyed by id, their keys in
sets that are only ever read sorted; the snapshot lists leases in id order and
each lease's keys in key order. Only leased keys cost memory here (one dict
slot for key -> lease): the per-key ``Record`` is unchanged.

Results (all ``ok: true`` unless refused):

* ``lease_grant {ttl_ms}``   -> ``{"id", "ttl_ms", "deadline_ms"}``
* ``lease_revoke {id}``      -> ``{"revoked": bool, "keys": [deleted keys]}``
* ``lease_expire {ids}``     -> ``{"expired": [ids], "kept": [ids]}`` (leader only)
* ``lease_info {id}`` (read) -> ``{"found", "id", "ttl_ms", "deadline_ms", "log_time_ms",
  "keys"}``
* ``lease_list`` (read)      -> ``{"leases": [ids], "more": bool}``

A refusal is ``{"ok": false, "code": "LEASE_NOT_FOUND" | "LEASE_LIMIT" | "BAD_REQUEST"}``
and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from resonetics import limits

#: The codes of a refused lease op (also in ``wire/codes.py``).
LEASE_NOT_FOUND: Final = "LEASE_NOT_FOUND"
LEASE_LIMIT: Final = "LEASE_LIMIT"

#: Ops of the key-value store that only the leader's lease keeper proposes.
LEASE_EXPIRE: Final = "lease_expire"


class Lease:
    """One lease: TTL, recorded deadline (log time, ms) and attached keys."""

    __slots__ = ("deadline_ms", "id", "keys", "ttl_ms")

    def __init__(self, lease_id: int, ttl_ms: int, deadline_ms: int, keys: Iterable[str] = ()):
        self.id = lease_id
        self.ttl_ms = ttl_ms
        self.deadline_ms = deadline_ms
        self.keys: set[str] = set(keys)

    def row(self) -> tuple[int, int, int, list[str]]:
        return (self.id, self.ttl_ms, self.deadline_ms, sorted(self.keys))


def refusal(code: str, message: str, **data: Any) -> dict[str, Any]:
    return {"ok": False, "code": code, "message": message, **data}


def ttl_arg(args: Mapping[str, Any]) -> int:
    """A grant's TTL, checked again here (a committed entry must not crash a replica)."""
    ttl = args["ttl_ms"]
    if not isinstance(ttl, int) or isinstance(ttl, bool):
        raise TypeError("ttl_ms must be an integer")
    if not limits.LEASE_TTL_MS_MIN <= ttl <= limits.LEASE_TTL_MS_MAX:
        raise ValueError(
            f"ttl_ms must be in [{limits.LEASE_TTL_MS_MIN}, {limits.LEASE_TTL_MS_MAX}]"
        )
    return ttl


def id_arg(args: Mapping[str, Any], name: str = "id") -> int:
    value = args[name]
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise TypeError(f"{name} must be a positive integer")
    return value


class LeaseTable:
    """Every live lease, the key -> lease map, and log time."""

    def __init__(self) -> None:
        self.leases: dict[int, Lease] = {}
        #: Leased keys only: key -> lease id.
        self.key_lease: dict[str, int] = {}
        #: The largest leader stamp applied (ms): the machine's only clock.
        self.log_time = 0
        #: Bumped on every grant, revoke and expiry: the leader's keeper resyncs on change.
        self.epoch = 0
        #: The largest id granted so far (ids are never reused).
        self.last_id = 0

    def advance(self, ts: Any) -> None:
        if isinstance(ts, int) and not isinstance(ts, bool) and ts > self.log_time:
            self.log_time = ts

    # --- ops ----------------------------------------------------------------------------
    def grant(self, index: int, ttl_ms: int) -> dict[str, Any]:
        if len(self.leases) >= limits.LEASES_MAX:
            return refusal(LEASE_LIMIT, f"the cluster holds {limits.LEASES_MAX} leases already")
        lease_id = max(index, self.last_id + 1)  # one entry may carry several grants
        lease = Lease(lease_id, ttl_ms, self.log_time + ttl_ms)
        self.leases[lease_id] = lease
        self.last_id = lease_id
        self.epoch += 1
        return {"ok": True, "id": lease_id, "ttl_ms": ttl_ms, "deadline_ms": lease.deadline_ms}

    def check_attach(self, key: str, lease_id: int) -> dict[str, Any] | None:
        """Why ``key`` cannot be attached to ``lease_id`` (a refusal), or None."""
        lease = self.leases.get(lease_id)
        if lease is None:
            return refusal(LEASE_NOT_FOUND, f"lease {lease_id} does not exist", id=lease_id)
        if key not in lease.keys and len(lease.keys) >= limits.LEASE_KEYS_MAX:
            return refusal(
                LEASE_LIMIT,
                f"lease {lease_id} holds {limits.LEASE_KEYS_MAX} keys already",
                id=lease_id,
            )
        return None

    def attach(self, key: str, lease_id: int) -> None:
        """Attach ``key`` to ``lease_id`` (0: detach it from any lease). Checked before."""
        old = self.key_lease.get(key, 0)
        if old == lease_id:
            return
        if old:
            self.leases[old].keys.discard(key)
            del self.key_lease[key]
        if lease_id:
            self.leases[lease_id].keys.add(key)
            self.key_lease[key] = lease_id

    def forget_key(self, key: str) -> None:
        """``key`` was deleted: it leaves its lease."""
        self.attach(key, 0)

    def end(self, lease_id: int) -> list[str]:
        """Remove a lease; its keys (sorted), which the caller deletes in this entry."""
        lease = self.leases.pop(lease_id)
        keys = sorted(lease.keys)
        for key in keys:
            del self.key_lease[key]
        self.epoch += 1
        return keys

    def due(self, lease: Lease) -> bool:
        """May an expire entry at the current log time end ``lease``?"""
        return self.log_time >= lease.deadline_ms

    def info(self, lease_id: int) -> dict[str, Any]:
        lease = self.leases.get(lease_id)
        if lease is None:
            return {"ok": True, "found": False, "id": lease_id}
        keys = sorted(lease.keys)
        return {
            "ok": True,
            "found": True,
            "id": lease_id,
            "ttl_ms": lease.ttl_ms,
            "deadline_ms": lease.deadline_ms,
            "log_time_ms": self.log_time,
            "keys": keys[: limits.LEASE_INFO_KEYS_MAX],
            "keys_total": len(keys),
        }

    def listing(self, after: int = 0, limit: int = limits.LEASE_LIST_MAX) -> dict[str, Any]:
        ids = sorted(i for i in self.leases if i > after)
        return {"ok": True, "leases": ids[:limit], "more": len(ids) > limit}

    # --- snapshots ----------------------------------------------------------------------
    def rows(self) -> list[tuple[int, int, int, list[str]]]:
        return [self.leases[i].row() for i in sorted(self.leases)]

    def prepare(
        self, rows: Iterable[tuple[int, int, int, list[str]]], log_time: int, last_id: int
    ) -> Callable[[], None]:
        """The table a snapshot's ``rows`` make, built while this one is left as it is;
        the callable puts it in place at once (a snapshot is read in steps before its
        install, ``KeyValueStore.restore_steps``: with a lease on every key of a
        million-key store, building it is a step of its own)."""
        leases: dict[int, Lease] = {}
        key_lease: dict[str, int] = {}
        for lease_id, ttl, deadline, keys in rows:
            leases[lease_id] = Lease(lease_id, ttl, deadline, keys)
            for key in keys:
                key_lease[key] = lease_id

        def put_in_place() -> None:
            self.leases, self.key_lease = leases, key_lease
            self.log_time = log_time
            self.last_id = last_id
            self.epoch += 1

        return put_in_place


__all__ = [
    "LEASE_EXPIRE",
    "LEASE_LIMIT",
    "LEASE_NOT_FOUND",
    "Lease",
    "LeaseTable",
    "id_arg",
    "refusal",
    "ttl_arg",
]
