"""The gate in front of the core: peer messages refused before they are stepped.

Theory of operation
-------------------
The Raft core trusts what it is given (STYLE habit 7): a message it steps may
change its term, its log and its state, and a value it cannot handle trips an
``invariant()`` that stops the node. So everything that would be harmful to step
is refused here, by pure checks the driver runs on every incoming message
(``NodeDriver.step``), on the server and in the simulator alike:

* **InstallSnapshot streams, always** (``check_snapshot_chunk``): a declared size
  over ``snapshot_bytes_max`` (the spool can never outgrow it: the core refuses a
  chunk past the declared size), negative or inconsistent offsets and sizes, a
  chunk that would end past the declared size, a malformed checksum, a
  ``leader_id`` that is not the sender. Offsets that jump ahead and chunks of
  another stream reach the core, which answers them with the offset it expects and
  spools nothing.
* **A stream that assembled correctly but whose state is garbage**
  (``SnapshotStateCheck``): the core calls it once the checksum matches and before
  it installs anything; the state must decode for this node's state machine and
  name the snapshot's own index, term and hash. Refused, the spool is discarded
  and the leader starts again from offset 0; the node stays up.
* **History signatures, with a trust registry** (``MessageFilter``, implemented
  by ``security.entry_check.EntryGate``): given to the driver at construction.

Every refusal is counted by reason in ``DriverStats.refused`` and logged once per
reason (a flood of forged messages must not flood the log), never with a traceback.
"""

from __future__ import annotations

import logging
import string
from collections.abc import Sequence
from typing import Protocol

import msgspec

from resonetics.errors import ResoneticsError
from resonetics.machine.base import StateMachine
from resonetics.machine.replicated import ReplicatedKV
from resonetics.raft.entry import Entry
from resonetics.raft.messages import InstallSnapshot, Message
from resonetics.raft.ready import Snapshot

log = logging.getLogger("resonetics.gate")

# Reasons for refusing an InstallSnapshot chunk or stream (counter keys, log text).
SNAPSHOT_TOO_LARGE = "snapshot_too_large"
SNAPSHOT_BAD_SIZE = "snapshot_bad_size"
SNAPSHOT_BAD_OFFSET = "snapshot_bad_offset"
SNAPSHOT_CHUNK_PAST_END = "snapshot_chunk_past_end"
SNAPSHOT_BAD_CHECKSUM_FIELD = "snapshot_bad_checksum_field"
SNAPSHOT_BAD_POSITION = "snapshot_bad_position"
SNAPSHOT_GARBAGE_STATE = "snapshot_garbage_state"
SNAPSHOT_STATE_MISMATCH = "snapshot_state_mismatch"
SNAPSHOT_NO_VOTERS = "snapshot_no_voters"
LEADER_ID_MISMATCH = "leader_id_mismatch"

_HEX = frozenset(string.hexdigits.lower())
_CHECKSUM_HEX_CHARS = 64


class MessageFilter(Protocol):
    """A check on incoming peer messages, given to ``NodeDriver(message_filter=...)``.

    ``check`` says why ``msg`` must be dropped whole, or None to step it;
    ``remember`` is told of the entries in this node's log (at start and as each
    batch is persisted), for rules that depend on history ("one author per term").
    """

    def check(self, msg: Message) -> str | None: ...

    def remember(self, entries: Sequence[Entry]) -> None: ...


def check_snapshot_chunk(msg: InstallSnapshot, bytes_max: int) -> str | None:
    """Why this chunk must not reach the core, or None (see the module docstring)."""
    if msg.leader_id != msg.src:
        return LEADER_ID_MISMATCH
    if msg.total_bytes < 0:
        return SNAPSHOT_BAD_SIZE
    if msg.total_bytes > bytes_max:
        return SNAPSHOT_TOO_LARGE
    if not 0 <= msg.offset <= msg.total_bytes:
        return SNAPSHOT_BAD_OFFSET
    # Base64 holds 3 bytes per 4 characters: a bound on the chunk without decoding it.
    if msg.offset + len(msg.data) // 4 * 3 - 2 > msg.total_bytes:
        return SNAPSHOT_CHUNK_PAST_END
    if len(msg.checksum) != _CHECKSUM_HEX_CHARS or not set(msg.checksum) <= _HEX:
        return SNAPSHOT_BAD_CHECKSUM_FIELD
    if msg.last_included_index < 0 or msg.last_included_term < 0:
        return SNAPSHOT_BAD_POSITION
    return None


class _AnyState(StateMachine):
    """Stands in for a state machine that cannot be built without arguments: the
    replicated wrapper (sessions, index, term, hash) is still checked."""

    def apply(self, index: int, command: object) -> object:  # pragma: no cover - never applied
        raise AssertionError("a scratch state machine is never applied to")

    def snapshot(self) -> bytes:  # pragma: no cover - never snapshotted
        return b""

    def restore(self, data: bytes) -> None:
        return None


#: What reading a snapshot's state raises when the state is not one this node can use.
STATE_UNREADABLE = (ResoneticsError, msgspec.MsgspecError, ValueError, TypeError, KeyError)


def state_reason(snapshot: Snapshot, applied: int, term: int, hash_: str) -> str | None:
    """Why a snapshot whose state reads as at (``applied``, ``term``, ``hash_``) must not
    be installed, or None."""
    meta = snapshot.meta
    if not meta.membership.voters:
        return SNAPSHOT_NO_VOTERS
    if (applied, term, hash_) != (
        meta.last_included_index,
        meta.last_included_term,
        meta.last_included_hash,
    ):
        return SNAPSHOT_STATE_MISMATCH
    return None


class SnapshotStateCheck:
    """Whether an assembled snapshot's state decodes for ``machine``'s type.

    The state is restored into a scratch machine of the same class (the real one
    is untouched: a refused snapshot must leave the node exactly as it was), so an
    install costs one extra decode; installs are rare, a node that exits on a bad
    one is not.
    """

    def __init__(self, machine: ReplicatedKV) -> None:
        self._machine_type = type(machine.machine)

    def __call__(self, snapshot: Snapshot) -> str | None:
        scratch = ReplicatedKV(self._scratch_machine())
        try:
            scratch.restore(snapshot.data)
        except STATE_UNREADABLE:
            return SNAPSHOT_GARBAGE_STATE
        return state_reason(
            snapshot, scratch.last_applied, scratch.last_applied_term, scratch.last_applied_hash
        )

    def _scratch_machine(self) -> StateMachine:
        try:
            return self._machine_type()
        except TypeError:
            return _AnyState()


class Refusals:
    """Counts refused messages by reason and logs the first of each reason."""

    def __init__(self, node_id: str, counts: dict[str, int]) -> None:
        self._node_id = node_id
        self.counts = counts

    def note(self, reason: str, msg: Message | None) -> None:
        first = reason not in self.counts
        self.counts[reason] = self.counts.get(reason, 0) + 1
        if first:
            kind = type(msg).__name__ if msg is not None else "snapshot"
            src = msg.src if msg is not None else "?"
            log.warning(
                "%s: refused %s from %s: %s (further refusals for this reason are only counted)",
                self._node_id,
                kind,
                src,
                reason,
            )


__all__ = [
    "LEADER_ID_MISMATCH",
    "SNAPSHOT_BAD_CHECKSUM_FIELD",
    "SNAPSHOT_BAD_OFFSET",
    "SNAPSHOT_BAD_POSITION",
    "SNAPSHOT_BAD_SIZE",
    "SNAPSHOT_CHUNK_PAST_END",
    "SNAPSHOT_GARBAGE_STATE",
    "SNAPSHOT_NO_VOTERS",
    "SNAPSHOT_STATE_MISMATCH",
    "SNAPSHOT_TOO_LARGE",
    "MessageFilter",
    "Refusals",
    "STATE_UNREADABLE",
    "SnapshotStateCheck",
    "check_snapshot_chunk",
    "state_reason",
]
