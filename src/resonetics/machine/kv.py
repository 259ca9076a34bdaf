"""The default state machine: a key-value store with prefix scans.

Keys live in a dict (O(1) get/set) and, in parallel, in a sorted list kept
with ``bisect`` so a prefix scan is a binary search plus a walk over exactly
the keys it returns. Inserting a new key costs a list insert (a ``memmove``);
at the sizes a Python store holds this beat a balanced tree written in Python.
Keys sort by code point, which is also their UTF-8 byte order.

Results are the shapes of DESIGN §5:

* ``kv_set``    -> ``{"ok": true}``
* ``kv_get``    -> ``{"ok": true, "value": v, "found": bool}``
* ``kv_delete`` -> ``{"ok": true, "deleted": bool}``
* ``kv_cas``    -> ``{"ok": true, "swapped": bool, "value": value after the op}``
  (``expected`` null: swap only if the key is absent)
* ``kv_scan``   -> ``{"ok": true, "items": [[k, v], ...], "more": bool}``

``kv_cas`` compares JSON values, not Python values: ``1``, ``1.0`` and
``true`` are different JSON, though Python calls them equal. A command the
store cannot understand (possible only if the gateway was bypassed) gives an
``{"ok": false, "code": "BAD_REQUEST"}`` result and changes nothing.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Generator, Mapping
from typing import Any, ClassVar, Final, Protocol

import msgspec

from resonetics.errors import BadRequest, StorageCorruption
from resonetics.machine.base import StateMachine
from resonetics.machine.ops import MachineOp, command, query

_CANONICAL: Final = msgspec.json.Encoder(order="sorted")
_SNAPSHOT_FORMAT: Final = 1


#: Key-value pairs encoded between two yields of ``snapshot_steps``.
SNAPSHOT_SLICE_ITEMS = 20_000

#: A snapshot being taken: yields between slices of work, returns the bytes.
SnapshotSteps = Generator[None, None, bytes]


class _KvSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    format: int
    items: list[tuple[str, Any]]


_SNAPSHOT_DECODER: Final = msgspec.json.Decoder(_KvSnapshot)


def _str(args: Mapping[str, Any], name: str) -> str:
    """A string argument; anything else would poison the sorted key list for good."""
    value = args[name]
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string")
    return value


def _int(args: Mapping[str, Any], name: str) -> int:
    value = args[name]
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer")
    return value


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values (``1`` != ``1.0`` != ``true``), by canonical encoding."""
    return _CANONICAL.encode(a) == _CANONICAL.encode(b)


class ChangeSink(Protocol):
    """Told every change the store makes, as it makes it (``machine/changes.py``).

    Called from ``set``/``delete``, the store's only mutators, so any op built on them
    (a transaction's puts and deletes too) reports its changes; a failed CAS or a delete
    of an absent key calls nothing. ``reset``: the whole state was replaced (a snapshot).
    """

    def put(self, key: str, value: Any) -> None: ...
    def delete(self, key: str) -> None: ...
    def reset(self) -> None: ...


class KeyValueStore(StateMachine):
    """A replicated dict of JSON values keyed by strings."""

    read_ops: ClassVar[frozenset[str]] = frozenset({"kv_get", "kv_scan"})
    name: ClassVar[str] = "kv"
    #: Declared like any machine's; the wire's own structs (``wire/client.py``) check
    #: the args, so none is named here.
    ops: ClassVar[tuple[MachineOp, ...]] = (
        command("kv_set", key_arg="k"),
        command("kv_delete", key_arg="k"),
        command("kv_cas", key_arg="k"),
        query("kv_get", key_arg="k"),
        query("kv_scan", key_arg="prefix"),
    )

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}
        # Invariant: self._keys == sorted(self._data).
        self._keys: list[str] = []
        self._ops: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
            "kv_set": lambda a: self.set(_str(a, "k"), a["v"]),
            "kv_get": lambda a: self.get(_str(a, "k")),
            "kv_delete": lambda a: self.delete(_str(a, "k")),
            "kv_cas": lambda a: self.cas(_str(a, "k"), a["expected"], a["v"]),
            "kv_scan": lambda a: self.scan(_str(a, "prefix"), _int(a, "limit")),
        }
        #: Where changes are reported (watch streams); None: nobody records them.
        self.changes: ChangeSink | None = None

    def __len__(self) -> int:
        return len(self._data)

    def items(self) -> list[tuple[str, Any]]:
        """Every (key, value), in key order."""
        return [(k, self._data[k]) for k in self._keys]

    # --- StateMachine ------------------------------------------------------------------
    def apply(self, index: int, command: Any) -> dict[str, Any]:
        try:
            handler = self._ops[command["op"]]
            return handler(command["args"])
        except (KeyError, TypeError, IndexError) as exc:
            return {"ok": False, "code": BadRequest.code, "message": f"bad command: {exc!r}"}

    def read(self, op: str, args: Mapping[str, Any]) -> dict[str, Any]:
        if op == "kv_get":
            return self.get(args["k"])
        if op == "kv_scan":
            return self.scan(args["prefix"], args["limit"])
        return super().read(op, args)  # type: ignore[no-any-return]

    def snapshot(self) -> bytes:
        return _CANONICAL.encode(_KvSnapshot(format=_SNAPSHOT_FORMAT, items=self.items()))

    def snapshot_steps(self, slice_items: int = SNAPSHOT_SLICE_ITEMS) -> SnapshotSteps:
        """The same bytes as ``snapshot()``, encoded a slice at a time.

        A generator: it copies the table first (C-speed copies of the dict and the key
        list: values are replaced, never mutated, so the copy is the state at this
        instant), then yields between slices so the caller's event loop can serve in
        between; ``StopIteration.value`` is the snapshot.
        """
        data, keys = self._data.copy(), list(self._keys)
        yield
        parts: list[bytes] = []
        for start in range(0, len(keys), slice_items):
            chunk = [(k, data[k]) for k in keys[start : start + slice_items]]
            parts.append(_CANONICAL.encode(chunk)[1:-1])  # without the list's brackets
            yield
        empty = _CANONICAL.encode(_KvSnapshot(format=_SNAPSHOT_FORMAT, items=[]))
        assert empty.endswith(b"[]}")
        return empty[:-2] + b",".join(parts) + b"]}"

    def restore(self, data: bytes) -> None:
        try:
            snap = _SNAPSHOT_DECODER.decode(data)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise StorageCorruption("snapshot", f"key-value state unreadable: {exc}") from None
        if snap.format != _SNAPSHOT_FORMAT:
            raise StorageCorruption("snapshot", f"unknown key-value format {snap.format}")
        self._data = dict(snap.items)
        self._keys = sorted(self._data)
        if self.changes is not None:
            self.changes.reset()

    # --- operations ----------------------------------------------------------------------
    def set(self, k: str, v: Any) -> dict[str, Any]:
        if k not in self._data:
            bisect.insort(self._keys, k)
        self._data[k] = v
        if self.changes is not None:
            self.changes.put(k, v)
        return {"ok": True}

    def get(self, k: str) -> dict[str, Any]:
        if k in self._data:
            return {"ok": True, "value": self._data[k], "found": True}
        return {"ok": True, "value": None, "found": False}

    def delete(self, k: str) -> dict[str, Any]:
        if k not in self._data:
            return {"ok": True, "deleted": False}
        del self._data[k]
        del self._keys[bisect.bisect_left(self._keys, k)]
        if self.changes is not None:
            self.changes.delete(k)
        return {"ok": True, "deleted": True}

    def cas(self, k: str, expected: Any, v: Any) -> dict[str, Any]:
        present = k in self._data
        if expected is None:
            matches = not present
        else:
            matches = present and json_equal(self._data[k], expected)
        if matches:
            self.set(k, v)
        return {"ok": True, "swapped": matches, "value": self._data.get(k)}

    def scan(self, prefix: str, limit: int) -> dict[str, Any]:
        """Up to ``limit`` items whose key starts with ``prefix``, in key order."""
        keys = self._keys
        i = bisect.bisect_left(keys, prefix)
        items: list[list[Any]] = []
        while i < len(keys) and len(items) < limit and keys[i].startswith(prefix):
            items.append([keys[i], self._data[keys[i]]])
            i += 1
        more = i < len(keys) and keys[i].startswith(prefix)
        return {"ok": True, "items": items, "more": more}


__all__ = ["ChangeSink", "KeyValueStore", "json_equal"]
