"""``sim --machine``: simulated clients of a user's machine, and the replicas' agreement.

Theory of operation
-------------------
``MachineClient`` is a ``SimClient`` (same sessions, retries, leader hints and
deadlines) whose operations are the machine's declared ops, with arguments from
the machine's ``sim_ops(rng)`` hook or generated from each op's arg struct
(``machine/determinism.py``), filled in as the gateway fills them. Queries are
linearizable or lease reads. Each operation is recorded in a
``MachineHistory`` (virtual time): a result when a node answered, unknown
(``info``) when a command's fate is unknown, nothing when it certainly had no
effect. At the end the runner checks the history against the machine's
``model`` when it declares one (``check/model.py``).

The replicas' agreement is checked by ``sim/machine_state.Convergence``.
"""

from __future__ import annotations

import random
from typing import Any

from resonetics.check.history import OpHandle
from resonetics.machine.base import StateMachine
from resonetics.machine.determinism import OpsGenerator, checked_op, ops_generator
from resonetics.machine.ops import declared_ops
from resonetics.runtime.outcome import Outcome
from resonetics.sim.client import SimClient, Workload, _Op
from resonetics.sim.cluster import Cluster
from resonetics.sim.invariants import Receipt
from resonetics.sim.machine_state import MachineHistory

#: Read consistencies a query picks from (stale reads are not in the checked history).
_QUERY_KINDS = ("linearizable", "linearizable", "lease")


class MachineClient(SimClient):
    """A simulated client issuing a machine's declared ops (see the module docstring)."""

    def __init__(
        self,
        name: str,
        cluster: Cluster,
        rng: random.Random,
        workload: Workload,
        machine: StateMachine,
        history: MachineHistory,
    ) -> None:
        super().__init__(name, cluster, rng, workload)
        self.machine = machine
        self.history = history
        self.generate: OpsGenerator = ops_generator(machine)
        declared = declared_ops(machine)
        self.queries = frozenset(n for n, op in declared.items() if op.kind == "query")
        self._handles: dict[int, int] = {}

    def _next(self) -> None:
        if self.cluster.queue.now_ms >= self.workload.stop_ms:
            return
        if self._session is None:
            self._open_session()
            return
        op, args = checked_op(self.machine, *self.generate(self.rng))
        value = next(self.workload.values)
        query = op in self.queries
        now = float(self.cluster.queue.now_ms)
        handle = OpHandle(self.pid, "get" if query else "set", op, args)
        request: dict[str, Any] = {
            "client_id": self.name,
            "request_id": f"r{value}",
            "op": op,
            "args": {**args, "consistency": self.rng.choice(_QUERY_KINDS)} if query else args,
        }
        if not query:
            seq = next(self._write_seqs)
            request.update(session=self._session, seq=seq, ack_below=seq)
        self._start(handle, request)
        assert self._op is not None
        self._handles[id(self._op)] = self.history.invoke(self.pid, op, args, now)

    def _finish_ok(self, op: _Op, outcome: Outcome) -> None:
        if op.request["op"] == "session_open":
            super()._finish_ok(op, outcome)
            return
        result = outcome.result if isinstance(outcome.result, dict) else {}
        value = result.get("value", result)
        self.history.ok(self._handles.pop(id(op)), value, float(self.cluster.queue.now_ms))
        receipt = result.get("receipt")
        if isinstance(receipt, dict):
            self.cluster.monitor.receipts.append(
                Receipt(self.name, receipt["index"], receipt["term"], receipt["hash"])
            )
        self.ops_ok += 1
        self._done()

    def _give_up(self, op: _Op) -> None:
        if op.request["op"] == "session_open":
            self._done()
            return
        handle = self._handles.pop(id(op))
        if op.handle.f != "get" and op.policy.outcome_unknown():
            self.history.info(handle)
            self.pid = next(self.workload.pids)
        else:
            self.history.fail(handle)
        if op.started_ms >= self.workload.settle_ms:
            self.late_failures.append(
                f"{self.name} gave up on {op.request['op']} {op.request['args']} "
                f"started at {op.started_ms} ms, after faults stopped"
            )
        self._done()

    def _session_expired(self, op: _Op) -> None:
        self._session = None
        handle = self._handles.pop(id(op), None)
        if handle is None:  # the session_open itself
            self._done()
            return
        if op.policy.maybe_applied:
            self.history.info(handle)
            self.pid = next(self.workload.pids)
        else:
            self.history.fail(handle)
        self._done()


__all__ = ["MachineClient"]
