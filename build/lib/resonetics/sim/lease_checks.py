"""Simulator checks of leases: the same ends at the same index everywhere, none early.

Theory of operation
-------------------
``LeaseMonitor`` is told by every replica (``sim/observed.py``) which leases an
applied entry ended (revoked or expired: the machine's live leases before and
after it). The first replica to apply index ``i`` records the set ended there
and the virtual time; every other replica must end exactly the same set at
exactly ``i`` — expiry is decided by the log, not by a replica's clock.

The lease clients (``sim/lease_client.py``) report their *promises*: for each
acknowledged grant or keep-alive, the virtual time it was **sent** plus the TTL
(the leader received it no earlier, and must hold the lease a TTL past that on
its clock, docs/leases.md). The simulator's nodes all read the virtual clock,
so at the end every lease a client did not revoke must have ended no earlier
than its latest promise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from resonetics.raft.types import Index, NodeId


def _violation(message: str) -> Exception:
    """A ``SimViolation`` (imported here: ``sim/invariants.py`` imports this module)."""
    from resonetics.sim.invariants import SimViolation

    return SimViolation(message)


@dataclass
class LeaseMonitor:
    #: index -> (the ids ended there, the first node to apply it, virtual ms then).
    ends: dict[Index, tuple[tuple[int, ...], NodeId, int]] = field(default_factory=dict)
    #: lease id -> the latest (sent + TTL) of an acknowledged grant or keep-alive, ms.
    promises: dict[int, int] = field(default_factory=dict)
    #: Leases their client revoked (a revoke ends a lease whenever it is applied).
    revoked: set[int] = field(default_factory=set)
    #: Leases ended (expired or revoked), counted once each.
    ended: int = 0

    def on_applied(self, node: NodeId, index: Index, ended: tuple[int, ...], now_ms: int) -> None:
        known = self.ends.get(index)
        if known is None:
            self.ends[index] = (ended, node, now_ms)
            self.ended += len(ended)
            return
        if known[0] != ended:
            raise _violation(
                f"lease expiry differs between replicas at index {index}: {known[1]} ended "
                f"{list(known[0])}, {node} ended {list(ended)}"
            )

    def promise(self, lease_id: int, until_ms: int) -> None:
        self.promises[lease_id] = max(self.promises.get(lease_id, 0), until_ms)

    def check_no_early_expiry(self) -> None:
        for index in sorted(self.ends):
            ids, node, at_ms = self.ends[index]
            for lease_id in ids:
                promised = self.promises.get(lease_id, 0)
                if lease_id not in self.revoked and at_ms < promised:
                    raise _violation(
                        f"lease {lease_id} ended at index {index} ({node}, {at_ms} ms), before "
                        f"{promised} ms: the TTL after its last acknowledged keep-alive"
                    )


__all__ = ["LeaseMonitor"]
