"""Ready-made replicated structures: Counter, Dict, Set, Queue and Lock.

Each is a ``ReplicatedObject`` (``machine/replicated_object.py``), so each is
served as it is::

    resonetics serve --machine resonetics.machine.structures:Lock ...
    resonetics call acquire --arg name=db --arg owner=w1 --arg ttl_ms=5000

Time-driven behaviour (a lock's TTL, a queue's visibility timeout) runs on log
time (``self.now_ms``: the leader-stamped ``ts`` of the entries, never going
backwards), so every replica expires the same lock at the same entry. A query
reports log time as of the last applied command; it does not see the clock.

``model`` (Counter, Dict, Set) is a pure function ``(state, op, args) ->
(state, result)`` the simulator's linearizability check runs the history
against (``state`` None is the initial state); ``sim_ops(rng)`` gives the
simulator meaningful arguments.
"""

from __future__ import annotations

import random
from typing import Annotated, Any

import msgspec

from resonetics import limits
from resonetics.machine.replicated_object import ReplicatedObject, command, query

#: A TTL or a visibility timeout: positive, at most ``STRUCTURE_TTL_MS_MAX`` (checked at
#: the gateway, before anything is logged).
TtlMs = Annotated[int, msgspec.Meta(ge=1, le=limits.STRUCTURE_TTL_MS_MAX)]
#: A name, a key, an owner: a short non-empty string.
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
_SIM_KEYS = ("a", "b", "c")


class Counter(ReplicatedObject):
    """An integer: ``incr`` adds (exactly once per request), ``get`` reads."""

    name = "resonetics.counter"
    value: int = 0

    @command
    def incr(self, by: int = 1) -> int:
        self.value += by
        return self.value

    @query
    def get(self) -> int:
        return self.value

    @staticmethod
    def model(state: Any, op: str, args: dict[str, Any]) -> tuple[Any, Any]:
        value = 0 if state is None else int(state)
        if op == "incr":
            value += int(args.get("by", 1))
        return value, value

    @staticmethod
    def sim_ops(rng: random.Random) -> tuple[str, dict[str, Any]]:
        if rng.random() < 0.4:
            return "get", {}
        return "incr", {"by": rng.randint(1, 5)}


class Dict(ReplicatedObject):
    """A string-keyed dict of JSON values; each op's ``key`` is what authorization judges."""

    name = "resonetics.dict"
    data: dict[str, Any] = msgspec.field(default_factory=dict)

    @command(key_arg="key", name="set")
    def put(self, key: Name, value: Any) -> Any:
        """Set ``key``; returns the previous value (None if there was none)."""
        previous = self.data.pop(key, None)
        self.data[key] = value
        return previous

    @command(key_arg="key")
    def delete(self, key: Name) -> bool:
        return self.data.pop(key, None) is not None

    @query(key_arg="key")
    def get(self, key: Name) -> Any:
        return self.data.get(key)

    @query
    def items(self) -> list[list[Any]]:
        """Up to ``STRUCTURE_LIST_ITEMS_MAX`` ``[key, value]`` pairs, by key."""
        keys = sorted(self.data)[: limits.STRUCTURE_LIST_ITEMS_MAX]
        return [[k, self.data[k]] for k in keys]

    @staticmethod
    def model(state: Any, op: str, args: dict[str, Any]) -> tuple[Any, Any]:
        data: dict[str, Any] = dict(state or {})
        if op == "set":
            previous = data.pop(args["key"], None)
            data[args["key"]] = args["value"]
            return data, previous
        if op == "delete":
            return data, data.pop(args["key"], None) is not None
        if op == "get":
            return data, data.get(args["key"])
        return data, [[k, data[k]] for k in sorted(data)]

    @staticmethod
    def sim_ops(rng: random.Random) -> tuple[str, dict[str, Any]]:
        key = rng.choice(_SIM_KEYS)
        op = rng.choice(("set", "set", "get", "delete", "items"))
        if op == "set":
            return op, {"key": key, "value": rng.randint(0, 1_000_000)}
        return op, {} if op == "items" else {"key": key}


class Set(ReplicatedObject):
    """A set of strings (kept as a dict: a ``set``'s iteration order is not replicated)."""

    name = "resonetics.set"
    elements: dict[str, bool] = msgspec.field(default_factory=dict)

    @command
    def add(self, item: Name) -> bool:
        """True if ``item`` was not there."""
        added = item not in self.elements
        self.elements[item] = True
        return added

    @command
    def remove(self, item: Name) -> bool:
        return self.elements.pop(item, None) is not None

    @query
    def contains(self, item: Name) -> bool:
        return item in self.elements

    @query
    def items(self) -> list[str]:
        """Up to ``STRUCTURE_LIST_ITEMS_MAX`` members, sorted."""
        return sorted(self.elements)[: limits.STRUCTURE_LIST_ITEMS_MAX]

    @staticmethod
    def model(state: Any, op: str, args: dict[str, Any]) -> tuple[Any, Any]:
        members = set(state or ())
        if op == "add":
            added = args["item"] not in members
            members.add(args["item"])
            result: Any = added
        elif op == "remove":
            result = args["item"] in members
            members.discard(args["item"])
        elif op == "contains":
            result = args["item"] in members
        else:
            result = sorted(members)
        return sorted(members), result

    @staticmethod
    def sim_ops(rng: random.Random) -> tuple[str, dict[str, Any]]:
        op = rng.choice(("add", "add", "remove", "contains", "items"))
        return op, {} if op == "items" else {"item": rng.choice(_SIM_KEYS)}


class Job(msgspec.Struct, kw_only=True):
    """One queued job: its payload and who holds it until when (``worker`` "" = nobody)."""

    payload: Any
    attempt: int = 0
    worker: str = ""
    deadline_ms: int = 0


class Queue(ReplicatedObject):
    """A job queue with visibility timeouts and acknowledgement by job id.

    ``take`` hands out the oldest job nobody holds (or whose holder's visibility
    timeout has passed in log time) and bumps its ``attempt``; ``ack(job,
    attempt)`` removes it only if that attempt still holds it, so of two workers
    that both took a job (the first too slowly), exactly one acknowledgement
    counts: each job is acknowledged exactly once.
    """

    name = "resonetics.queue"
    jobs: dict[int, Job] = msgspec.field(default_factory=dict)
    next_id: int = 1
    acked: int = 0

    @command
    def put(self, payload: Any) -> int:
        """Enqueue ``payload``; returns the job's id."""
        job_id = self.next_id
        self.next_id += 1
        self.jobs[job_id] = Job(payload=payload)
        return job_id

    @command
    def take(self, worker: Name, visibility_ms: TtlMs = 30_000) -> dict[str, Any] | None:
        """The oldest available job as ``{"id", "payload", "attempt"}``, or None."""
        for job_id, job in self.jobs.items():  # insertion order: the same on every replica
            if not job.worker or job.deadline_ms <= self.now_ms:
                job.attempt += 1
                job.worker = worker
                job.deadline_ms = self.now_ms + visibility_ms
                return {"id": job_id, "payload": job.payload, "attempt": job.attempt}
        return None

    @command
    def ack(self, job: int, attempt: int) -> bool:
        """Done with ``job``: True the first time, for the attempt that holds it."""
        held = self.jobs.get(job)
        if held is None or held.attempt != attempt or not held.worker:
            return False
        del self.jobs[job]
        self.acked += 1
        return True

    @query
    def stats(self) -> dict[str, int]:
        taken = sum(1 for j in self.jobs.values() if j.worker and j.deadline_ms > self.now_ms)
        return {"pending": len(self.jobs), "taken": taken, "acked": self.acked}

    @staticmethod
    def sim_ops(rng: random.Random) -> tuple[str, dict[str, Any]]:
        op = rng.choice(("put", "take", "take", "ack", "stats"))
        if op == "put":
            return op, {"payload": rng.randint(0, 1000)}
        if op == "take":
            return op, {"worker": f"w{rng.randint(1, 3)}", "visibility_ms": rng.randint(1, 500)}
        if op == "ack":
            return op, {"job": rng.randint(1, 20), "attempt": rng.randint(1, 3)}
        return op, {}


class Holder(msgspec.Struct, kw_only=True):
    """Who holds a lock, with which fencing token, until when (log time, ms)."""

    owner: str
    token: int
    expires_ms: int


class Lock(ReplicatedObject):
    """Named leases with fencing tokens.

    ``acquire`` succeeds when the lock is free, expired (in log time) or already
    the caller's (then it is refreshed and keeps its token). A new holder's
    fencing token is the log index of its acquire — or one more than the last
    token when several acquires share a batched entry — so tokens only grow: a
    resource that remembers the largest token it has seen refuses a holder whose
    lease ran out and was given to someone else.
    """

    name = "resonetics.lock"
    locks: dict[str, Holder] = msgspec.field(default_factory=dict)
    last_token: int = 0

    def _live(self, name: str) -> Holder | None:
        holder = self.locks.get(name)
        if holder is not None and holder.expires_ms <= self.now_ms:
            del self.locks[name]
            return None
        return holder

    @command(key_arg="name")
    def acquire(self, name: Name, owner: Name, ttl_ms: TtlMs = 10_000) -> dict[str, Any]:
        """``{"acquired", "owner", "token", "expires_ms"}`` (the current holder if refused)."""
        holder = self._live(name)
        if holder is None:
            self.last_token = max(self.index, self.last_token + 1)
            holder = Holder(owner=owner, token=self.last_token, expires_ms=0)
            self.locks[name] = holder
        acquired = holder.owner == owner
        if acquired:
            holder.expires_ms = self.now_ms + ttl_ms
        return {
            "acquired": acquired,
            "owner": holder.owner,
            "token": holder.token,
            "expires_ms": holder.expires_ms,
        }

    @command(key_arg="name")
    def release(self, name: Name, owner: Name, token: int) -> bool:
        """True if ``owner`` held ``name`` with ``token`` (and now does not)."""
        holder = self._live(name)
        if holder is None or holder.owner != owner or holder.token != token:
            return False
        del self.locks[name]
        return True

    @command(key_arg="name")
    def refresh(self, name: Name, owner: Name, token: int, ttl_ms: TtlMs = 10_000) -> int | None:
        """Extend a held lock; its new expiry (log time), or None if it was lost."""
        holder = self._live(name)
        if holder is None or holder.owner != owner or holder.token != token:
            return None
        holder.expires_ms = self.now_ms + ttl_ms
        return holder.expires_ms

    @query(key_arg="name")
    def holder(self, name: Name) -> dict[str, Any] | None:
        """The holder as of the last applied command (``now_ms`` is that command's log time)."""
        held = self.locks.get(name)
        if held is None or held.expires_ms <= self.now_ms:
            return None
        return {**msgspec.structs.asdict(held), "now_ms": self.now_ms}

    @staticmethod
    def sim_ops(rng: random.Random) -> tuple[str, dict[str, Any]]:
        name, owner = rng.choice(("x", "y")), f"o{rng.randint(1, 3)}"
        op = rng.choice(("acquire", "acquire", "release", "refresh", "holder"))
        if op == "acquire":
            return op, {"name": name, "owner": owner, "ttl_ms": rng.randint(1, 400)}
        if op == "holder":
            return op, {"name": name}
        args: dict[str, Any] = {"name": name, "owner": owner, "token": rng.randint(1, 60)}
        if op == "refresh":
            args["ttl_ms"] = rng.randint(1, 400)
        return op, args


__all__ = ["Counter", "Dict", "Holder", "Job", "Lock", "Queue", "Set"]
