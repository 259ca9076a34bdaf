"""Simulated clients: a seeded workload over the client protocol, recorded as a history.

Theory of operation
-------------------
A ``SimClient`` runs one operation at a time (set, get, delete or cas on a
small key set) the way ``resonetics.Client`` does over TCP: it sends the
request to a node through the faulty network, follows ``NOT_LEADER`` hints,
and when an attempt times out it retries — a write always with the *same*
``request_id``, so the session table applies it at most once. What to do after
each answer is decided by the same ``RetryPolicy`` (``resonetics/retry_policy.py``)
as ``resonetics.Client``'s. Reads go through
``NodeDriver.read`` (ReadIndex).

Every operation is recorded with the checker's ``HistoryRecorder`` at virtual
time: ``invoke`` when it starts, ``ok`` when a node confirms it, ``fail`` when
it certainly had no effect (a read, or a write whose every attempt was
refused), ``info`` when a write's fate is unknown; the client then continues
under a new process id, as Jepsen requires. Responses to earlier attempts are
matched by a token and ignored once the operation has moved on.

Some writes are transactions (``kv_txn``, about one set in ``TXN_EVERY_SETS``):
a compare on one key (its value, existence or version), ``then`` puts on it and
on a second key, ``else`` gets of both. The history records the compares, both
branches, which branch ran and what its gets read (``f: "txn"``), and the
checker treats the keys a txn ties together as one object. Whether a set becomes
a txn, and its shape, is drawn from a generator of its own (seeded from the
client's name), so the choices of every other operation are what they were.

Writes go through a sequenced session as ``resonetics.Client``'s do: the
client first commits ``session_open`` (not in the history), then every write
carries ``session``, ``seq`` and ``ack_below = seq`` (one operation at a time:
every earlier one has returned). ``SESSION_EXPIRED`` is never retried: the
write is recorded ``fail`` if no attempt may have been applied, else ``info``,
and the next write opens a new session.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Any

from resonetics.check.history import HistoryRecorder, OpHandle, OpKind
from resonetics.retry_policy import Action, RetryPolicy
from resonetics.runtime.outcome import Outcome
from resonetics.sim.cluster import Cluster
from resonetics.sim.invariants import Receipt, SimViolation

#: How long one attempt waits for an answer before retrying elsewhere (virtual ms).
ATTEMPT_TIMEOUT_MS = 400
#: How long an operation may take in all before the client gives up on it (virtual ms).
OP_DEADLINE_MS = 2_500
#: Pause before retrying after a refusal, and between operations (virtual ms).
RETRY_BACKOFF_MS = (5, 40)
THINK_MS = (0, 60)

_OPS: tuple[OpKind, ...] = ("set", "get", "delete", "cas", "get", "set")
#: About one set in this many is sent as a transaction instead.
TXN_EVERY_SETS = 3
#: Read consistencies a get picks from (linearizable twice as often).
_READ_KINDS = ("linearizable", "linearizable", "lease", "stale")


@dataclass(slots=True)
class _Op:
    handle: OpHandle
    request: dict[str, Any]
    started_ms: int
    target: str
    seq: int
    #: The client's retry rules (``resonetics/retry_policy.py``, as ``resonetics.Client``'s).
    policy: RetryPolicy
    #: Bumped when a retry is decided, so answers to earlier attempts are ignored.
    attempt: int = 1


@dataclass(slots=True)
class Workload:
    """State shared by the clients of one run: unique values and process ids."""

    values: itertools.count[int]
    pids: itertools.count[int]
    stop_ms: int
    #: Virtual time after which every operation must succeed (the liveness window).
    settle_ms: int
    recorder: HistoryRecorder


class SimClient:
    """One client process (or a succession of them, after ``info``)."""

    def __init__(
        self,
        name: str,
        cluster: Cluster,
        rng: random.Random,
        workload: Workload,
        *,
        reader: bool = False,
    ) -> None:
        self.name = name
        #: Only reads (of every kind): a client that never waits on a write keeps
        #: talking to whichever node answers it, a deposed leader too.
        self.reader = reader
        self.cluster = cluster
        self.rng = rng
        self.workload = workload
        self.pid = next(workload.pids)
        self._seqs = itertools.count(1)
        self._op: _Op | None = None
        #: The sequenced session writes use, and the next write's seq in it.
        self._session: int | None = None
        self._write_seqs = itertools.count(1)
        self._leader_hint: str | None = None
        self.ops_ok = 0
        self.late_failures: list[str] = []
        #: Draws for transactions only, so adding them left every other choice as it was.
        state = rng.getstate()[1]  # word 0 is the same for every seed: use two others
        self._txn_rng = random.Random(f"txn/{name}/{state[1]}/{state[2]}")

    @property
    def idle(self) -> bool:
        return self._op is None

    def start(self, delay_ms: int) -> None:
        self.cluster.queue.after(delay_ms, self._next)

    # --- choosing operations ------------------------------------------------------------------
    def _next(self) -> None:
        queue = self.cluster.queue
        if queue.now_ms >= self.workload.stop_ms:
            return
        if self._session is None and not self.reader:
            self._open_session()
            return
        keys = self.cluster.options.keys
        key = f"k{self.rng.randrange(keys)}"
        f = "get" if self.reader else self.rng.choice(_OPS)
        value = next(self.workload.values)
        rec = self.workload.recorder
        args: dict[str, Any] = {"k": key}
        if f == "set" and self._txn_rng.randrange(TXN_EVERY_SETS) == 0:
            f = "txn"
            args, spec = self._txn(key, value, keys)
            handle = rec.invoke(self.pid, "txn", key, spec)
        elif f == "set":
            args["v"] = value
            handle = rec.invoke(self.pid, f, key, value)
        elif f == "cas":
            expected = self.rng.choice([None, max(0, value - self.rng.randint(1, 8))])
            args.update(expected=expected, v=value)
            handle = rec.invoke(self.pid, f, key, [expected, value])
        elif f == "get":
            # Reads of every kind: linearizable and lease reads go into the checked
            # history; stale reads are checked against committed history instead.
            consistency = self.rng.choice(_READ_KINDS)
            args["consistency"] = consistency
            if consistency == "stale":
                handle = OpHandle(self.pid, "get", key, None)  # never recorded
            else:
                handle = rec.invoke(self.pid, f, key)
        else:
            handle = rec.invoke(self.pid, f, key)
        request: dict[str, Any] = {
            "client_id": self.name,
            "request_id": f"r{value}",
            "op": f"kv_{f}",
            "args": args,
        }
        if f != "get":
            seq = next(self._write_seqs)
            request.update(session=self._session, seq=seq, ack_below=seq)
        self._start(handle, request)

    def _txn(self, key: str, value: int, keys: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """A txn's wire args and its history record: compare ``key``, put it and another."""
        rng = self._txn_rng
        other = f"k{(int(key[1:]) + 1 + rng.randrange(max(1, keys - 1))) % keys}"
        kind = rng.choice(("value", "exists", "version"))
        if kind == "value":
            compare = [key, "value", rng.choice(("==", "!=")), max(0, value - rng.randint(1, 8))]
        elif kind == "exists":
            compare = [key, "exists", "==", rng.random() < 0.5]
        else:
            compare = [key, "version", rng.choice(("==", "<", ">")), rng.randint(0, 3)]
        then = (
            [["put", key, value], ["put", other, value]] if other != key else [["put", key, value]]
        )
        otherwise = [["get", key, None], ["get", other, None]]
        args = {
            "compare": [dict(zip(("key", "target", "op", "against"), compare, strict=True))],
            "then": [{"type": t, "key": k, "value": v} for t, k, v in then],
            "else": [{"type": t, "key": k} for t, k, _ in otherwise],
        }
        return args, {"compare": [compare], "then": then, "else": otherwise}

    def _open_session(self) -> None:
        """Commit ``session_open`` first; its op is not part of the checked history."""
        request = {
            "client_id": self.name,
            "request_id": f"open{next(self.workload.values)}",
            "op": "session_open",
            "args": {},
        }
        self._start(OpHandle(self.pid, "set", "", None), request)

    def _start(self, handle: OpHandle, request: dict[str, Any]) -> None:
        target = self._leader_hint or self.rng.choice(self.cluster.ids)
        now = self.cluster.queue.now_ms
        policy = RetryPolicy(
            deadline=now + OP_DEADLINE_MS,
            pause=lambda: self.rng.randint(*RETRY_BACKOFF_MS),
            backoff_max=ATTEMPT_TIMEOUT_MS,
            jitter=self.rng.random,
        )
        self._op = _Op(handle, request, now, target, next(self._seqs), policy)
        self._attempt()

    # --- attempts -------------------------------------------------------------------------------
    def _attempt(self) -> None:
        op = self._op
        assert op is not None
        token = (op.seq, op.attempt)
        target = op.target
        net = self.cluster.network
        cluster = self.cluster
        request = op.request
        what = f"p{op.handle.process} {request['op']} {request['args']} {request['request_id']}"
        cluster.trace.add(cluster.queue.now_ms, "client", self.name, what, f"-> {target}")

        def reply(outcome: Outcome) -> None:
            net.send(target, self.name, outcome, lambda: self._on_response(token, outcome))

        net.send(
            self.name, target, op.request, lambda: cluster.client_request(target, op.request, reply)
        )
        cluster.queue.after(ATTEMPT_TIMEOUT_MS, lambda: self._on_timeout(token))

    def _current(self, token: tuple[int, int]) -> _Op | None:
        op = self._op
        if op is None or (op.seq, op.attempt) != token:
            return None
        return op

    def _on_timeout(self, token: tuple[int, int]) -> None:
        op = self._current(token)
        if op is None:
            return
        decision = op.policy.on_no_answer(pause=False)  # the attempt already waited
        self._leader_hint = None
        op.target = self.rng.choice(self.cluster.ids)
        self._retry(op, int(decision.pause))

    def _on_response(self, token: tuple[int, int], outcome: Outcome) -> None:
        op = self._current(token)
        if op is None:
            return
        self.cluster.trace.add(self.cluster.queue.now_ms, "response", self.name, outcome.code)
        decision = op.policy.on_answer(outcome.code, outcome.result)
        action = decision.action
        if action is Action.DONE:
            self._finish_ok(op, outcome)
            return
        if action is Action.SESSION_EXPIRED:
            self._session_expired(op)
            return
        if action is Action.RAISE:
            self._give_up(op)  # a definite refusal: no retry
            return
        if action is Action.FOLLOW_LEADER:
            self._leader_hint = decision.leader
            op.target = decision.leader or self.rng.choice(self.cluster.ids)
        elif action is Action.RETRY:
            op.target = self.rng.choice(self.cluster.ids)
        self._retry(op, int(decision.pause))

    def _retry(self, op: _Op, delay_ms: int) -> None:
        if op.policy.expired(self.cluster.queue.now_ms):
            self._give_up(op)
            return
        op.attempt += 1
        token = (op.seq, op.attempt)
        self.cluster.queue.after(
            delay_ms, lambda: self._attempt() if self._current(token) is not None else None
        )

    # --- completion -----------------------------------------------------------------------------
    def _session_expired(self, op: _Op) -> None:
        """Refused, never applied by this attempt; an earlier one may have been."""
        self._session = None
        if op.policy.maybe_applied:
            self.workload.recorder.info(op.handle)
            self.pid = next(self.workload.pids)
        else:
            self.workload.recorder.fail(op.handle)
        self.cluster.trace.add(self.cluster.queue.now_ms, "session-expired", self.name)
        self._done()

    def _finish_ok(self, op: _Op, outcome: Outcome) -> None:
        rec = self.workload.recorder
        result = outcome.result if isinstance(outcome.result, dict) else {}
        f = op.handle.f
        if op.request["op"] == "session_open":
            if not isinstance(result.get("session"), int):
                raise SimViolation(
                    f"{self.name}: session_open answered without a session: {result}"
                )
            self._session = int(result["session"])
            self._done()
            return
        if op.request["args"].get("consistency") == "stale":
            problem = self.cluster.monitor.stale_reads.check(op.request["args"]["k"], result)
            if problem is not None:
                raise SimViolation(problem)
            self.ops_ok += 1
            self._done()
            return
        if f == "txn":
            reads = [
                [r["key"], r["value"] if r.get("found") else None, r.get("version", 0)]
                for r in result.get("responses", [])
                if r.get("type") == "get"
            ]
            rec.ok(op.handle, {"succeeded": bool(result.get("succeeded")), "reads": reads})
        elif f == "get":
            rec.ok(op.handle, result.get("value") if result.get("found") else None)
        elif f == "cas":
            rec.ok(op.handle, success=bool(result.get("swapped")))
        elif f == "delete":
            rec.ok(op.handle, deleted=bool(result.get("deleted")))
        else:
            rec.ok(op.handle)
        receipt = result.get("receipt")
        if isinstance(receipt, dict):
            self.cluster.monitor.receipts.append(
                Receipt(self.name, receipt["index"], receipt["term"], receipt["hash"])
            )
        self.ops_ok += 1
        self._done()

    def _give_up(self, op: _Op) -> None:
        rec = self.workload.recorder
        if op.request["op"] == "session_open":
            self._done()  # not in the history; the next operation opens again
            return
        if op.request["args"].get("consistency") == "stale":
            self._done()  # not in the checked history: nothing to record
            return
        unknown = op.handle.f != "get" and op.policy.outcome_unknown()
        if unknown:
            rec.info(op.handle)
            self.pid = next(self.workload.pids)
        else:
            rec.fail(op.handle)
        verdict = "info (outcome unknown)" if unknown else "fail (no effect)"
        self.cluster.trace.add(self.cluster.queue.now_ms, "give-up", self.name, verdict)
        if op.started_ms >= self.workload.settle_ms:
            self.late_failures.append(
                f"{self.name} gave up on {op.request['op']} {op.request['args']} "
                f"started at {op.started_ms} ms, after faults stopped"
            )
        self._done()

    def _done(self) -> None:
        self._op = None
        self.cluster.queue.after(self.rng.randint(*THINK_MS), self._next)


__all__ = ["ATTEMPT_TIMEOUT_MS", "OP_DEADLINE_MS", "TXN_EVERY_SETS", "SimClient", "Workload"]
