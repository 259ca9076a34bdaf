"""The interface an embedder implements to replicate its own state (DESIGN §1).

Determinism contract
--------------------
Every replica applies the same committed commands in the same order, so a
``StateMachine`` must be a pure function of that sequence:

* ``apply(index, command)`` may depend only on the machine's current state,
  ``index`` and ``command``: no wall clock, no ``random`` (unless seeded from
  the command), no environment, no iteration over ``set``s or object ids, no
  floating point whose result differs across platforms. Time, when needed,
  comes from the command (the leader stamps ``ts`` into every client entry).
* It must never raise for a command it dislikes: the entry is already
  committed and would crash every replica the same way, forever. Return an
  error *result* instead; results must be deterministic too.
* ``snapshot()`` must return the same bytes on every replica in the same
  state (sort what has no natural order), and ``restore(snapshot())`` must give
  a machine that behaves identically from then on.
* Values passed in ``command`` and returned in results are treated as
  immutable: the same objects may live in the log, the session table and
  client responses at once.

Serving a machine (``resonetics serve --machine pkg.mod:factory``) wraps it
in ``machine.served.ServedMachine``, which answers ``{"value": result}`` and
turns an exception raised by ``apply``/``read`` into an error result (the same
on every replica when the machine is deterministic) rather than a stopped node.

Large states, optionally: a machine may also define ``snapshot_steps()`` and
``restore_steps(data)``, generators that yield between slices of the work so
the node's loop keeps answering its peers (an election timeout is 300 ms).
``snapshot_steps`` fixes the state at its first step and returns the bytes
``snapshot()`` would; ``restore_steps`` must leave the machine untouched and
return a callable that puts the state read in place at once. A follower then
reads a received snapshot a slice per loop turn before installing it
(``runtime/snapshot_reading.py``); without them, each is one call on the loop.
``KeyValueStore`` defines both.

``ReplicatedKV`` wraps any ``StateMachine`` and adds exactly-once client
sessions around it, so an embedder gets deduplication for free. It calls
``apply`` with ``command = {"op": str, "args": dict, "ts": int}`` taken from the
entry (``ts``: the leader's stamp in ms, identical on every replica).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from resonetics.errors import BadRequest

if TYPE_CHECKING:
    from resonetics.machine.ops import MachineOp


class StateMachine(ABC):
    """A deterministic state machine driven by the committed log."""

    #: Ops that only read: they get no write receipt and may be served by ``read()``
    #: after a ReadIndex round, without going through the log.
    read_ops: ClassVar[frozenset[str]] = frozenset()

    #: The machine's name, recorded in the data dir a node founds with it (a node
    #: started on that dir with another machine is refused); "" means the class's
    #: ``module.QualName``.
    name: ClassVar[str] = ""

    #: The ops a client may send (``machine.ops.command``/``query``): the server's op
    #: table, dispatch and authorization are built from this declaration.
    ops: ClassVar[tuple[MachineOp, ...]] = ()

    @abstractmethod
    def apply(self, index: int, command: Any) -> Any:
        """Apply the command committed at ``index``; return its (deterministic) result."""

    @abstractmethod
    def snapshot(self) -> bytes:
        """The whole state, encoded deterministically."""

    @abstractmethod
    def restore(self, data: bytes) -> None:
        """Replace the whole state with one produced by ``snapshot()``."""

    def read(self, op: str, args: Mapping[str, Any]) -> Any:
        """Answer a read op from the current state without changing it."""
        raise BadRequest("op", f"{op!r} cannot be served as a direct read")


__all__ = ["StateMachine"]
