"""What the runtime applies committed entries to: a state machine plus sessions.

Theory of operation
-------------------
``ReplicatedKV.apply(entry)`` is called once per committed entry, in index
order, on every replica (``Ready.committed_entries``, DESIGN §2):

* ``CLIENT_CMD`` entries carry ``{"client_id", "request_id", "op", "args",
  "ts"}``. Log time moves to ``ts`` (expiring idle sessions); if the request
  was applied before, its *original* result comes back with ``dedup=True`` and
  nothing is re-applied (dissertation §6.3); otherwise the wrapped
  ``StateMachine`` applies ``{"op", "args", "ts"}`` (``ts``: the leader's
  stamp, the machine's only clock) and the result is remembered.
  The result of a write carries a ``receipt`` — ``{"index", "term", "hash"}``
  of its entry — that a client can check against any node's log. Commands of
  a sequenced session also carry ``session``, ``seq`` and ``ack_below``; the
  acknowledgement is applied here, in log order, so every replica discards the
  same results at the same index. A retry with another payload is refused
  (``BAD_REQUEST``), a request its session no longer holds is refused
  (``SESSION_EXPIRED``): both with ``ApplyResult.code``, nothing applied.
  ``session_open`` opens a session and touches nothing else (see ``sessions``).
* ``CLIENT_BATCH`` entries carry a list of such commands, applied in order as
  if each were an entry of its own at this index (a leader under load proposes
  the commands that arrived together as one entry); their receipts all name
  this entry, whose hash covers every command in it.
* ``NOOP``, ``CONFIG``, ``GENESIS`` and ``SNAP_DUMMY`` change nothing here
  (membership is the core's business) but advance ``last_applied``.

# Invariant: entries are applied contiguously: entry.index == last_applied + 1
(an anchor entry at exactly ``last_applied`` is accepted as a no-op, since it
only re-states where the log begins). Anything else is a bug in the runtime or
the core and raises ``InvariantViolation``.

``snapshot()`` encodes the whole replicated state (machine, sessions, and the
last applied index, term and hash) with sorted keys, so two replicas that
applied the same entries produce byte-identical snapshots.

The state is format 3: one line of JSON (the position, the session table and
``machine_bytes``), a newline, then the machine's own snapshot bytes as they
are. Formats 1 and 2 held those bytes as a base64 string inside the JSON, which
the snapshot file then encoded in base64 once more: decoding the inner layer was
a tenth of a restart at a million keys, and the state a third larger than its
bytes. They still restore.
"""

from __future__ import annotations

import binascii
import hashlib
import io
import re
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, TypeVar, cast

import msgspec

from resonetics import planted
from resonetics.base64_slices import b64_decode_slices
from resonetics.decode_errors import UNREADABLE
from resonetics.errors import BadRequest, SessionExpired, StorageCorruption, invariant
from resonetics.machine.base import StateMachine
from resonetics.machine.kv import KeyValueStore
from resonetics.machine.sessions import (
    SessionTable,
    SessionTableData,
    SessionTableRead,
    Verdict,
    encode_result,
    request_digest,
)
from resonetics.raft.entry import GENESIS, Entry, EntryType
from resonetics.raft.types import Index, Term
from resonetics.steps import run_to_end

#: 2: sessions carry digests, session ids and ack marks. 3: the machine's bytes after
#: the JSON line rather than base64 inside it. Formats 1 and 2 still restore.
_SNAPSHOT_FORMAT: Final = 3
_LEGACY_FORMATS: Final = frozenset({1, 2})
_ANCHORS: Final = frozenset({EntryType.GENESIS, EntryType.SNAP_DUMMY})


class ApplyResult(msgspec.Struct, frozen=True):
    """The outcome of applying one entry; ``result`` is None for non-client entries.

    A msgspec Struct rather than a frozen dataclass: one is built per applied
    entry, and a frozen dataclass pays a ``object.__setattr__`` per field.
    """

    index: Index
    term: Term
    type: EntryType
    result: Any = None
    dedup: bool = False
    client_id: str | None = None
    request_id: str | None = None
    #: For a CLIENT_BATCH entry: the result of each of its commands, in order.
    parts: tuple[ApplyResult, ...] = ()
    #: A wire code: ``OK``, or the refusal (``BAD_REQUEST``, ``SESSION_EXPIRED``) of a
    #: command that was not applied; ``message`` says why.
    code: str = "OK"
    message: str = ""


class _Command(msgspec.Struct, frozen=True, kw_only=True):
    """The data of a CLIENT_CMD entry, as the leader proposed it."""

    client_id: str
    request_id: str
    op: str
    args: dict[str, Any]
    ts: int
    #: Sequenced sessions only (absent for legacy requests).
    session: int | None = None
    seq: int | None = None
    ack_below: int | None = None

    def sequence(self) -> dict[str, int] | None:
        """``{"session", "seq"}`` of a sequenced command, else None."""
        if self.session is None or self.seq is None:
            return None
        return {"session": self.session, "seq": self.seq}


#: What a write applied with nobody waiting for it returns (``apply(answers=False)``).
_UNANSWERED: Final = ApplyResult(0, 0, EntryType.CLIENT_CMD)

#: Packed client data (``raft/packing.py``: what every replica applies) decodes straight
#: into commands; anything that does not fit goes the way of decoded data.
_COMMAND: Final = msgspec.json.Decoder(_Command)
_BATCH: Final = msgspec.json.Decoder(list[_Command])


def _commands(data: Any, decoder: msgspec.json.Decoder[Any]) -> Any:
    """``data`` as ``apply`` reads it: packed data decoded, into ``_Command``s if it fits.

    Every valid command decodes to the same values either way, and anything else
    (a wrong field, a batch that is not a list) is decoded plainly and refused by
    ``_apply_command`` exactly as when it came decoded: replicas that apply one
    entry from packed and from plain data stay identical
    (``tests/machine/test_replicated.py``).
    """
    if type(data) is not msgspec.Raw:
        return data
    try:
        return decoder.decode(data)
    except msgspec.ValidationError:
        return msgspec.json.decode(data)


#: The op that opens a sequenced session (it reaches no wrapped machine).
SESSION_OPEN: Final = "session_open"


class _SnapshotHead(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Format 3's JSON line; the machine's ``machine_bytes`` bytes follow its newline."""

    format: int
    last_applied: Index
    last_applied_term: Term
    last_applied_hash: str
    machine_bytes: int
    sessions: SessionTableData


class _SnapshotHeadRead(_SnapshotHead, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``_SnapshotHead`` as ``restore_steps`` reads it: the session table a slice per
    step (``SessionTableRead``)."""

    sessions: SessionTableRead  # type: ignore[assignment]


class _LegacySnapshotRead(msgspec.Struct, frozen=True, kw_only=True):
    """Formats 1 and 2, one JSON document: the machine's bytes a base64 string in it,
    decoded a slice per step (one call over a state of hundreds of MB would stall the
    loop), the session table read a slice per step."""

    format: int
    last_applied: Index
    last_applied_term: Term
    last_applied_hash: str
    sessions: SessionTableRead
    machine: msgspec.Raw


_T = TypeVar("_T")
_ENCODER: Final = msgspec.json.Encoder(order="sorted")
_HEAD_READER: Final = msgspec.json.Decoder(_SnapshotHeadRead)
_LEGACY_READER: Final = msgspec.json.Decoder(_LegacySnapshotRead)
#: Where format 3's JSON line ends and the machine's bytes begin. JSON as msgspec
#: writes it never holds a raw newline (strings escape theirs), so the first one is
#: the line's end.
_HEAD_END: Final = b"\n"
#: How formats 1 and 2 begin, as written (keys sorted: "format" sorts first).
_FORMAT_PREFIX: Final = re.compile(rb'\{"format":(\d{1,9}),')
#: The machine's bytes are copied into a snapshot this many at a time, a yield between
#: slices (a copy of hundreds of MB in one call would hold the loop): about 2 ms each
#: into fresh memory here, where 8 MB took 7 ms, the old base64 slices about 2.
_MACHINE_SLICE_BYTES: Final = 2 * 1024 * 1024
#: What ``snapshot_steps`` encodes in the session table's place, which its own steps
#: then write there: the document's last field (fields are sorted).
_SESSIONS_PLACEHOLDER: Final = b"0"
_SESSIONS_LAST: Final = b'"sessions":' + _SESSIONS_PLACEHOLDER + b"}"


@dataclass(frozen=True, slots=True)
class PendingRestore:
    """A snapshot's state as ``ReplicatedKV.restore_steps`` read it, not yet in place."""

    last_applied: Index
    last_applied_term: Term
    last_applied_hash: str
    #: Whether the wrapped machine's state was read too. False: it has no
    #: ``restore_steps``, and ``apply`` restores it in one call (where an unreadable
    #: state raises).
    machine_read: bool
    replace: Callable[[], None]

    def apply(self) -> None:
        """Put the state read in place of the machine's."""
        self.replace()


class _Written:
    """What the writes of one entry share: its receipt, whether anyone waits for their
    results, and the encoding the session table keeps of the result most writes
    return, ``{"ok": true, "receipt": ...}`` (made once per entry, not once per write)."""

    __slots__ = ("_ok_encoded", "answers", "receipt")

    def __init__(self, receipt: dict[str, Any], answers: bool = True) -> None:
        self.receipt = receipt
        self.answers = answers
        self._ok_encoded: bytes | None = None

    def ok_encoded(self) -> bytes:
        if self._ok_encoded is None:
            self._ok_encoded = encode_result({"ok": True, "receipt": self.receipt})
        return self._ok_encoded


class ReplicatedKV:
    """A ``StateMachine`` (the key-value store by default) with exactly-once sessions."""

    def __init__(
        self, machine: StateMachine | None = None, *, sessions: SessionTable | None = None
    ) -> None:
        self.machine: StateMachine = machine if machine is not None else KeyValueStore()
        self.sessions = sessions if sessions is not None else SessionTable()
        # Invariant: every entry with index <= last_applied has been applied, no other.
        self.last_applied: Index = 0
        self.last_applied_term: Term = 0
        #: The chain hash at last_applied; the genesis hash before anything is applied
        #: (the driver sets its cluster's GENESIS hash at start).
        self.last_applied_hash: str = GENESIS.hash

    # --- applying ------------------------------------------------------------------------
    def apply(self, entry: Entry, *, answers: bool = True) -> ApplyResult:
        """Apply one committed entry (see the module docstring for the rules).

        ``answers=False``: nobody waits for this entry's results (a follower, a replay
        at start), so none is returned, only the entry's ``ApplyResult`` without
        ``result`` or ``parts``. The state, the session table included, is exactly
        the same either way.
        """
        if entry.type in _ANCHORS and entry.index == self.last_applied:
            return ApplyResult(entry.index, entry.term, entry.type)
        invariant(
            entry.index == self.last_applied + 1,
            "applying index %d after %d: entries must be contiguous",
            entry.index,
            self.last_applied,
        )
        self.last_applied = entry.index
        self.last_applied_term = entry.term
        self.last_applied_hash = entry.hash
        if entry.type is EntryType.CLIENT_CMD:
            written = _Written(receipt_of(entry), answers)
            applied = self._apply_command(entry, _commands(entry.data, _COMMAND), written)
            return applied if answers else ApplyResult(entry.index, entry.term, entry.type)
        if entry.type is EntryType.CLIENT_BATCH:
            data = _commands(entry.data, _BATCH)
            commands = data if isinstance(data, list) else [data]
            # One entry, one receipt, shared by its writes.
            written = _Written(receipt_of(entry), answers)
            if not answers:
                for command in commands:
                    self._apply_command(entry, command, written)
                return ApplyResult(entry.index, entry.term, entry.type)
            parts = tuple(self._apply_command(entry, data, written) for data in commands)
            if planted.on(planted.Bug.SESSION_RESULTS_CROSSED):
                parts = parts[::-1]
            return ApplyResult(entry.index, entry.term, entry.type, parts=parts)
        return ApplyResult(entry.index, entry.term, entry.type)

    def _apply_command(self, entry: Entry, data: Any, written: _Written) -> ApplyResult:
        try:
            cmd = data if type(data) is _Command else msgspec.convert(data, type=_Command)
        except msgspec.ValidationError as exc:
            # Only a leader that bypassed the gateway can log this; every replica
            # answers it the same way rather than crash on a committed entry.
            bad = {"ok": False, "code": BadRequest.code, "message": f"bad command: {exc}"}
            return ApplyResult(entry.index, entry.term, entry.type, bad)
        sessions = self.sessions
        sessions.advance(cmd.ts)
        op, client_id, request_id = cmd.op, cmd.client_id, cmd.request_id
        if op == SESSION_OPEN:
            opened = {"ok": True, "session": sessions.open(client_id)}
            return self._result(entry, cmd, opened, dedup=False)
        sequence = cmd.sequence()
        if sequence is not None and cmd.ack_below is not None:
            sessions.acknowledge(client_id, sequence["session"], cmd.ack_below)
        digest = request_digest(request_id, op, cmd.args)
        verdict = sessions.check(client_id, request_id, digest, sequence)
        if verdict is not None:
            return self._refused(entry, cmd, verdict)
        machine = self.machine
        result = machine.apply(entry.index, {"op": op, "args": cmd.args, "ts": cmd.ts})
        encoded = None
        if op not in machine.read_ops and isinstance(result, dict):
            if len(result) == 1 and result.get("ok") is True:  # most writes: {"ok": true}
                encoded = written.ok_encoded()
            if written.answers or encoded is None:
                result = {**result, "receipt": written.receipt}
        seq = None if sequence is None else sequence["seq"]
        sessions.record(client_id, request_id, result, digest=digest, seq=seq, encoded=encoded)
        if not written.answers:
            return _UNANSWERED
        # _result(), inlined: once per command
        return ApplyResult(
            entry.index, entry.term, entry.type, result, False, client_id, request_id
        )

    def _refused(self, entry: Entry, cmd: _Command, verdict: Verdict) -> ApplyResult:
        if verdict.code == "OK":
            self.sessions.touch(cmd.client_id)
            return self._result(entry, cmd, verdict.result, dedup=True)
        return ApplyResult(
            entry.index,
            entry.term,
            entry.type,
            verdict.result,
            False,
            cmd.client_id,
            cmd.request_id,
            code=verdict.code,
            message=verdict.message,
        )

    @staticmethod
    def _result(entry: Entry, cmd: _Command, result: Any, *, dedup: bool) -> ApplyResult:
        return ApplyResult(
            entry.index, entry.term, entry.type, result, dedup, cmd.client_id, cmd.request_id
        )

    # --- reads (never change state) ------------------------------------------------------
    def session_result(self, client_id: str, request_id: str) -> Any | None:
        """The remembered result of an applied legacy request, else None (no side effects)."""
        return self.sessions.lookup(client_id, request_id)[1]

    def precheck(self, command: Mapping[str, Any]) -> Verdict | None:
        """Before proposing ``command`` (the data a CLIENT_CMD would carry): a dedup hit or
        a reused request id, from this node's applied state; else None (propose it).

        ``SESSION_EXPIRED`` is never answered here: this node may not yet have applied
        the client's ``session_open`` (a new leader catching up); the log decides.
        """
        if command.get("op") == SESSION_OPEN:
            return None
        # Only a result remembered under the request's key can be answered here: when
        # there is none (nearly always), nothing needs converting or hashing.
        client_id = command.get("client_id")
        key = command.get("request_id") if command.get("session") is None else command.get("seq")
        if (
            type(client_id) is str
            and (type(key) is str or type(key) is int)
            and not self.sessions.holds(client_id, key)
        ):
            return None
        return self._precheck_held(command)

    def _precheck_held(self, command: Mapping[str, Any]) -> Verdict | None:
        """``precheck`` in full: the command converted, its session's rules applied."""
        try:
            cmd = msgspec.convert({"ts": 0, **command}, type=_Command)
        except msgspec.ValidationError:
            return None  # the apply answers it
        request = (cmd.request_id, cmd.op, cmd.args)  # hashed only if seen before
        verdict = self.sessions.check(cmd.client_id, cmd.request_id, request, cmd.sequence())
        if verdict is None or verdict.code == SessionExpired.code:
            return None
        return verdict

    def read(self, op: str, args: Mapping[str, Any]) -> Any:
        """Serve a read op from applied state (after ReadIndex, or explicitly stale)."""
        return self.machine.read(op, args)

    # --- snapshots -----------------------------------------------------------------------
    def snapshot_steps(self) -> Generator[None, None, bytes]:
        """``snapshot()`` in slices (see ``KeyValueStore.snapshot_steps``): the state is
        fixed at the first step, so later applies do not leak into it."""
        header = (self.last_applied, self.last_applied_term, self.last_applied_hash)
        # Each slice goes into one buffer handed over without a copy at the end (see
        # ``KeyValueStore.snapshot_steps``): a join of them all was one long step.
        out = io.BytesIO()
        # The session table a slice of clients per step, after the machine's bytes (fields
        # are sorted); its first step copies it here, at the same instant as the machine.
        sessions = self.sessions.snapshot_steps(out, _ENCODER)
        next(sessions)
        steps = getattr(self.machine, "snapshot_steps", None)
        if steps is None:
            machine = self.machine.snapshot()
        else:
            machine = yield from steps()
        yield
        head = _ENCODER.encode(
            _SnapshotHead(
                format=_SNAPSHOT_FORMAT,
                last_applied=header[0],
                last_applied_term=header[1],
                last_applied_hash=header[2],
                machine_bytes=len(machine),
                # A placeholder the table's own steps write in place of (the encoder
                # writes a Raw as it is, whatever the field's declared type).
                sessions=cast(SessionTableData, msgspec.Raw(_SESSIONS_PLACEHOLDER)),
            )
        )
        invariant(head.endswith(_SESSIONS_LAST), "sessions is not the head's last field")
        out.write(head[: -len(_SESSIONS_PLACEHOLDER) - 1])
        yield from sessions
        out.write(b"}" + _HEAD_END)
        # The machine's bytes as they are, a slice per step: a yield between slices only,
        # so a state of one slice takes the steps it always did.
        view = memoryview(machine)
        for start in range(0, len(machine), _MACHINE_SLICE_BYTES):
            if start:
                yield
            out.write(view[start : start + _MACHINE_SLICE_BYTES])
        return out.getvalue()

    def snapshot(self) -> bytes:
        machine = self.machine.snapshot()
        head = _SnapshotHead(
            format=_SNAPSHOT_FORMAT,
            last_applied=self.last_applied,
            last_applied_term=self.last_applied_term,
            last_applied_hash=self.last_applied_hash,
            machine_bytes=len(machine),
            sessions=self.sessions.to_data(),
        )
        return b"".join((_ENCODER.encode(head), _HEAD_END, machine))

    def state_digest(self) -> str:
        """sha256 (hex) of the whole replicated state: machine, sessions, position.

        Deterministic: the snapshot encoding is canonical (sorted keys, the table in
        key order, sessions in the order the log made them), so two replicas that
        applied the same history to the same index give the same digest, and a
        state restored from a snapshot gives the digest of the state it was taken from.
        """
        return hashlib.sha256(self.snapshot()).hexdigest()

    def restore(self, data: bytes) -> None:
        """Replace all state with a snapshot; ``StorageCorruption`` if it is unreadable."""
        run_to_end(self.restore_steps(data)).apply()

    def restore_steps(self, data: bytes) -> Generator[None, None, PendingRestore]:
        """``restore`` in slices: the generator reads ``data`` a slice per step, and its
        value puts the state read in place, at once (``StorageCorruption`` from a step
        if it is unreadable). Until then nothing here changes, so a follower goes on
        applying and acking while it reads a snapshot it is about to install
        (``runtime/snapshot_reading.py``): read at the install, the session table at its
        byte bound stopped the loop for 2-7 s, a million keys for about one.

        A wrapped machine without ``restore_steps`` of its own is restored when the
        value is applied, in one call.
        """
        declared = _FORMAT_PREFIX.match(data)
        legacy_format = declared is not None and int(declared[1]) in _LEGACY_FORMATS
        # A format 1 or 2 document is not searched for a newline through hundreds of MB.
        end = -1 if legacy_format else data.find(_HEAD_END)
        if end < 0:
            legacy = _decode(_LEGACY_READER, data)
            if legacy.format not in _LEGACY_FORMATS:
                raise StorageCorruption(
                    "snapshot", f"unknown replicated-state format {legacy.format}"
                )
            snap: _SnapshotHeadRead | _LegacySnapshotRead = legacy
            machine: bytes | memoryview = yield from _base64_steps(legacy.machine)
        else:
            snap = _decode(_HEAD_READER, memoryview(data)[:end])
            if snap.format != _SNAPSHOT_FORMAT:
                raise StorageCorruption(
                    "snapshot", f"unknown replicated-state format {snap.format}"
                )
            machine = memoryview(data)[end + 1 :]
            if len(machine) != snap.machine_bytes:
                raise StorageCorruption(
                    "snapshot",
                    f"replicated state: the machine's state is {len(machine)} bytes, "
                    f"its header says {snap.machine_bytes}",
                )
        steps = getattr(self.machine, "restore_steps", None)
        restore_machine: Callable[[], None]
        if steps is None:
            restore_machine = partial(self.machine.restore, bytes(machine))
        elif isinstance(self.machine, KeyValueStore):
            # The store decodes from a view: no copy of its hundreds of MB.
            restore_machine = yield from self.machine.restore_steps(machine)
        else:
            restore_machine = yield from steps(bytes(machine))
        restore_sessions = yield from self.sessions.restore_steps(
            snap.sessions, results_as_written=snap.format >= 2
        )
        header = (snap.last_applied, snap.last_applied_term, snap.last_applied_hash)

        def replace() -> None:
            restore_machine()
            restore_sessions()
            self.last_applied, self.last_applied_term, self.last_applied_hash = header

        return PendingRestore(*header, machine_read=steps is not None, replace=replace)


def _decode(reader: msgspec.json.Decoder[_T], data: bytes | memoryview) -> _T:
    try:
        return reader.decode(data)
    except UNREADABLE as exc:
        raise StorageCorruption("snapshot", f"replicated state unreadable: {exc}") from None


def _base64_steps(field: msgspec.Raw) -> Generator[None, None, bytes]:
    """The bytes of a base64 JSON string field, decoded a slice per step."""
    text = memoryview(field)
    if len(text) < 2 or text[0] != ord('"') or text[-1] != ord('"'):
        raise StorageCorruption("snapshot", "replicated state: machine is not a base64 string")
    out = io.BytesIO()
    try:
        for part in b64_decode_slices(text[1:-1]):
            yield
            out.write(part)
    except binascii.Error as exc:
        raise StorageCorruption("snapshot", f"replicated state: machine: {exc}") from None
    return out.getvalue()


def receipt_of(entry: Entry) -> dict[str, Any]:
    """Where a write landed in the hash-chained log: enough to audit it on any node.

    ``Receipt.of(entry).to_data()``, without building the frozen ``Receipt`` on the
    way (once per applied write); ``tests/machine`` checks the two agree."""
    return {"index": entry.index, "term": entry.term, "hash": entry.hash}


__all__ = ["SESSION_OPEN", "ApplyResult", "PendingRestore", "ReplicatedKV", "receipt_of"]
