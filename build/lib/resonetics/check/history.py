"""Client histories: reading, validating and pairing them, and recording them.

Theory of operation
-------------------
A history is Jepsen-style JSON lines, one event per line::

    {"process": 3, "type": "invoke", "f": "cas", "key": "k", "value": [1, 2], "time": 0.41}
    {"process": 3, "type": "ok",     "f": "cas", "key": "k", "value": [1, 2], "time": 0.43}

A transaction (``f: "txn"``) touches several keys: its ``key`` is a label (the
first key it names), its invoke's ``value`` is ``{"compare": [[key, target, op,
against], ...], "then": [[type, key, value], ...], "else": [...]}`` (targets
``value``, ``exists``, ``version``; types ``put``, ``delete``, ``get``) and its
``ok``'s value is ``{"succeeded": bool, "reads": [[key, value, version], ...]}``
for the gets of the branch that ran (see ``check/txn_model.py``).

Order is line order; ``time`` is informative only (clocks of different clients
disagree, line order from one recorder does not). Each process has at most one
operation outstanding: an ``invoke`` is closed by the next ``ok`` (it took
effect), ``fail`` (it certainly did not: dropped) or ``info`` (unknown: it stays
pending forever, and the process goes on under a new id). An invoke never closed
by the end of the history is treated as ``info``. Lines whose ``process`` is not
an int are nemesis or annotation events and are skipped.

Bytes from a file are validated once, here (STYLE habit 7); the checker trusts
the ``Operation`` values this module returns.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeAlias, cast

import msgspec

from resonetics.errors import HistoryError

__all__ = [
    "EVENT_TYPES",
    "OP_KINDS",
    "Event",
    "EventType",
    "HistoryRecorder",
    "Key",
    "OpHandle",
    "OpKind",
    "Operation",
    "canonical",
    "load_history",
    "pair_events",
    "parse_events",
    "parse_history",
    "parse_recorded",
]

OpKind: TypeAlias = Literal["set", "get", "delete", "cas", "txn"]
EventType: TypeAlias = Literal["invoke", "ok", "fail", "info"]
Key: TypeAlias = str | int
OP_KINDS: frozenset[str] = frozenset({"set", "get", "delete", "cas", "txn"})
EVENT_TYPES: frozenset[str] = frozenset({"invoke", "ok", "fail", "info"})


@dataclass(frozen=True, slots=True)
class Event:
    """One validated line of a history."""

    line: int
    process: int
    type: EventType
    f: OpKind
    key: Key
    value: Any
    time: float | None = None
    success: bool | None = None
    deleted: bool | None = None


@dataclass(frozen=True, slots=True)
class Operation:
    """An invoke paired with its completion: the unit the checker linearizes.

    ``call`` and ``ret`` are line numbers of the invoke and the completion;
    ``ret`` is ``math.inf`` for an operation whose outcome is unknown (``info``
    or never completed), which may take effect anywhere after ``call`` or never.
    ``input`` is the value written (set), ``[expected, new]`` (cas) or None;
    ``output`` is the value a completed get read (None = absent).
    """

    id: int
    process: int
    f: OpKind
    key: Key
    call: int
    ret: float
    input: Any = None
    output: Any = None
    success: bool | None = None
    deleted: bool | None = None

    @property
    def pending(self) -> bool:
        """True when the outcome is unknown (``info`` or never completed)."""
        return math.isinf(self.ret)

    def describe(self) -> str:
        """A one-line, human-readable rendering for counterexamples."""
        span = f"[{self.call}..{'pending' if self.pending else int(self.ret)}]"
        who = f"p{self.process}"
        if self.f == "get":
            what = f"get -> {_show(self.output)}"
        elif self.f == "set":
            what = f"set {_show(self.input)}"
        elif self.f == "delete":
            flag = "" if self.deleted is None else f" (deleted={str(self.deleted).lower()})"
            what = f"delete{flag}"
        elif self.f == "txn":
            spec = self.input
            what = f"txn if {spec['compare']} then {spec['then']} else {spec['else']}"
            if not self.pending and isinstance(self.output, dict):
                branch = "then" if self.output.get("succeeded") else "else"
                what += f" -> {branch}, read {self.output.get('reads')}"
        else:
            expected, new = self.input
            what = f"cas {_show(expected)} -> {_show(new)}"
            if not self.pending:
                what += " ok" if self.success is not False else " failed (observed other value)"
        if self.pending:
            what += " (outcome unknown)"
        return f"{span:>16} {who:<5} {what}"


#: ``json.dumps(value, sort_keys=True[, separators=...])`` builds an encoder per call when
#: given options; these are those encoders, built once (same text: ``dumps`` is this).
_SORTED = json.JSONEncoder(sort_keys=True)
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def canonical(value: Any) -> str | None:
    """Canonical JSON of a value, or None for JSON null (an absent key)."""
    if value is None:
        return None
    return _CANONICAL.encode(value)


def _show(value: Any) -> str:
    return "absent" if value is None else json.dumps(value, sort_keys=True)


# --- Parsing ---------------------------------------------------------------------


def parse_events(lines: Iterable[str], *, source: str = "<history>") -> list[Event]:
    """Validate JSON lines into events; skip blank lines and non-client events.

    Raises ``HistoryError`` naming the line for anything malformed.
    """
    events: list[Event] = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise HistoryError(source, f"not JSON ({exc.msg})", line=number) from None
        if not isinstance(raw, dict):
            raise HistoryError(source, "an event must be a JSON object", line=number)
        event = _event_from(cast(dict[str, Any], raw), number, source)
        if event is not None:
            events.append(event)
    return events


def _event_from(raw: dict[str, Any], line: int, source: str) -> Event | None:
    process = raw.get("process")
    if not isinstance(process, int) or isinstance(process, bool):
        return None  # a nemesis or annotation event: not a client operation

    def bad(reason: str) -> HistoryError:
        return HistoryError(source, reason, line=line)

    kind, f, key = raw.get("type"), raw.get("f"), raw.get("key")
    if kind not in EVENT_TYPES:
        raise bad(f"type must be one of {sorted(EVENT_TYPES)}, got {kind!r}")
    if f not in OP_KINDS:
        raise bad(f"f must be one of {sorted(OP_KINDS)}, got {f!r}")
    if not isinstance(key, str | int) or isinstance(key, bool):
        raise bad(f"key must be a string or an integer, got {key!r}")
    stamp = raw.get("time")
    if stamp is not None and (not isinstance(stamp, int | float) or isinstance(stamp, bool)):
        raise bad(f"time must be a number, got {stamp!r}")
    value = raw.get("value")
    if f == "cas" and kind in ("invoke", "ok") and not _is_pair(value):
        raise bad(f"a cas value must be [expected, new], got {value!r}")
    if f == "txn" and kind == "invoke" and not _is_txn_spec(value):
        raise bad("a txn value must be {compare: [[k, target, op, against]...], then, else}")
    if f == "txn" and kind == "ok" and not _is_txn_outcome(value):
        raise bad("a txn's ok value must be {succeeded: bool, reads: [[k, value, version]...]}")
    success, deleted = raw.get("success"), raw.get("deleted")
    for name, flag in (("success", success), ("deleted", deleted)):
        if flag is not None and not isinstance(flag, bool):
            raise bad(f"{name} must be true or false, got {flag!r}")
    return Event(
        line=line,
        process=process,
        type=cast(EventType, kind),
        f=cast(OpKind, f),
        key=key,
        value=value,
        time=None if stamp is None else float(stamp),
        success=success,
        deleted=deleted,
    )


def _is_pair(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2


def _rows(value: Any, width: int, key_at: int) -> bool:
    """A list of lists of ``width`` items whose item ``key_at`` is a key (a string)."""
    return isinstance(value, list) and all(
        isinstance(r, list) and len(r) == width and isinstance(r[key_at], str) for r in value
    )


def _is_txn_spec(value: Any) -> bool:
    if not isinstance(value, dict) or set(value) != {"compare", "then", "else"}:
        return False
    compares_ok = _rows(value["compare"], 4, 0) and all(
        c[1] in ("value", "exists", "version") and c[2] in ("==", "!=", "<", ">")
        for c in value["compare"]
    )
    branches_ok = all(
        _rows(value[b], 3, 1) and all(o[0] in ("put", "delete", "get") for o in value[b])
        for b in ("then", "else")
    )
    return compares_ok and branches_ok


def _is_txn_outcome(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("succeeded"), bool)
        and _rows(value.get("reads"), 3, 0)
        and all(isinstance(r[2], int) and not isinstance(r[2], bool) for r in value["reads"])
    )


def pair_events(events: Iterable[Event], *, source: str = "<history>") -> list[Operation]:
    """Pair each invoke with its completion; drop failed ops; keep unknown ones pending."""
    open_by_process: dict[int, tuple[int, Event]] = {}
    # In invoke order: (invoke, its completion so far); None once the op failed. The
    # operations are built once, at the end, numbered as kept (a failed op leaves no gap).
    slots: list[tuple[Event, Event | None] | None] = []
    for event in events:
        if event.type == "invoke":
            if event.process in open_by_process:
                raise HistoryError(
                    source,
                    f"process {event.process} invokes again before its last operation completed",
                    line=event.line,
                )
            open_by_process[event.process] = (len(slots), event)
            slots.append((event, None))
            continue
        opened = open_by_process.pop(event.process, None)
        if opened is None:
            raise HistoryError(
                source,
                f"process {event.process} completes an operation it never invoked",
                line=event.line,
            )
        slot, invoke = opened
        if (invoke.f, invoke.key) != (event.f, event.key):
            raise HistoryError(
                source,
                f"completion {event.f} {event.key!r} does not match the invoke on line "
                f"{invoke.line} ({invoke.f} {invoke.key!r})",
                line=event.line,
            )
        slots[slot] = None if event.type == "fail" else (invoke, event)
    kept = [pair for pair in slots if pair is not None]
    return [_operation(i, invoke, completion) for i, (invoke, completion) in enumerate(kept)]


def _operation(slot: int, invoke: Event, completion: Event | None) -> Operation:
    completed = completion is not None and completion.type == "ok"
    if invoke.f == "cas":
        raw = invoke.value
        value_in: Any = [raw[0], raw[1]]
    elif invoke.f in ("set", "txn"):
        value_in = invoke.value
    else:
        value_in = None
    return Operation(
        id=slot,
        process=invoke.process,
        f=invoke.f,
        key=invoke.key,
        call=invoke.line,
        ret=completion.line if completed and completion is not None else math.inf,
        input=value_in,
        output=completion.value
        if completed and completion and invoke.f in ("get", "txn")
        else None,
        success=_success(invoke, completion) if completed else None,
        deleted=completion.deleted if completed and completion and invoke.f == "delete" else None,
    )


def _success(invoke: Event, completion: Event | None) -> bool | None:
    if invoke.f != "cas" or completion is None:
        return None
    return completion.success is not False


def parse_history(lines: Iterable[str], *, source: str = "<history>") -> list[Operation]:
    """Validate and pair a history given as lines of text."""
    return pair_events(parse_events(lines, source=source), source=source)


def parse_recorded(events: list[dict[str, Any]], *, source: str = "<recorder>") -> list[Operation]:
    """Validate and pair a recorder's events: what ``parse_history`` of their JSON lines
    gives, through one JSON round trip for them all instead of one per line (a simulated
    run checks its history this way; the round trip turns tuples into lists, as a file
    would, so the checker sees exactly what it would read)."""
    raw: list[dict[str, Any]] = msgspec.json.decode(msgspec.json.encode(events))
    parsed = (_event_from(item, number, source) for number, item in enumerate(raw, start=1))
    return pair_events([event for event in parsed if event is not None], source=source)


def load_history(path: str | Path) -> list[Operation]:
    """Read a ``.jsonl`` history file into operations."""
    file = Path(path)
    try:
        with file.open(encoding="utf-8") as handle:
            return parse_history(handle, source=str(file))
    except UnicodeDecodeError as exc:
        raise HistoryError(str(file), f"not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise HistoryError(str(file), exc.strerror or str(exc)) from None


# --- Recording -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpHandle:
    """What ``HistoryRecorder.invoke`` returns; pass it to ``ok``/``fail``/``info``."""

    process: int
    f: OpKind
    key: Key
    value: Any


class HistoryRecorder:
    """A thread-safe append-only recorder of client events, dumped as JSON lines.

    Line order is the real-time order the checker relies on, so the append and
    the time stamp are taken under one lock. ``clock`` is injectable so that the
    simulator records virtual time (STYLE habit 2).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._events: list[dict[str, Any]] = []

    def invoke(self, process: int, f: OpKind, key: Key, value: Any = None) -> OpHandle:
        """Record that ``process`` starts an operation; a get's value is ignored."""
        if f not in OP_KINDS:
            raise ValueError(f"unknown operation {f!r}")
        if f == "cas" and not (isinstance(value, list | tuple) and len(value) == 2):
            raise ValueError("a cas value must be (expected, new)")
        stored = list(value) if f == "cas" else (None if f in ("get", "delete") else value)
        handle = OpHandle(process, f, key, stored)
        self._append(handle, "invoke", stored, {})
        return handle

    def ok(
        self,
        handle: OpHandle,
        value: Any = None,
        *,
        success: bool | None = None,
        deleted: bool | None = None,
    ) -> None:
        """The operation took effect; ``value`` is what a get read (None = absent)."""
        out = value if handle.f in ("get", "txn") else handle.value
        extra: dict[str, Any] = {}
        if success is not None:
            extra["success"] = success
        if deleted is not None:
            extra["deleted"] = deleted
        self._append(handle, "ok", out, extra)

    def fail(self, handle: OpHandle) -> None:
        """The operation certainly did not take effect."""
        self._append(handle, "fail", handle.value, {})

    def info(self, handle: OpHandle) -> None:
        """The outcome is unknown; the caller must continue under a new process id."""
        self._append(handle, "info", handle.value, {})

    def _append(self, handle: OpHandle, kind: str, value: Any, extra: dict[str, Any]) -> None:
        with self._lock:
            event: dict[str, Any] = {
                "process": handle.process,
                "type": kind,
                "f": handle.f,
                "key": handle.key,
                "value": value,
                "time": self._clock(),
            }
            event.update(extra)
            self._events.append(event)

    def events(self) -> list[dict[str, Any]]:
        """A copy of the events recorded so far."""
        with self._lock:
            return [dict(e) for e in self._events]

    def lines(self) -> Iterator[str]:
        """The history as JSON lines (no trailing newlines)."""
        encode = _SORTED.encode
        for event in self.events():
            yield encode(event)

    def dumps(self) -> str:
        """The history as one ``.jsonl`` text."""
        return "".join(line + "\n" for line in self.lines())

    def dump(self, path: str | Path) -> None:
        """Write the history to a ``.jsonl`` file."""
        Path(path).write_text(self.dumps(), encoding="utf-8")

    def operations(self) -> list[Operation]:
        """The recorded history, paired, ready for the checker (what ``dump`` and
        ``load_history`` would give)."""
        return parse_recorded(self.events(), source="<recorder>")
