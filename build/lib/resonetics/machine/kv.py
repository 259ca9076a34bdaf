"""The default state machine: a key-value store with prefix scans, versions and txns.

Keys live in a dict (O(1) get/set) and, in parallel, in a ``SortedList``
(``sortedcontainers``: a list of sorted lists of about a thousand keys each) so a
prefix scan is a binary search plus a walk over exactly the keys it returns. A
new key costs a binary search and an insert into one short list there. A plain
sorted list kept with ``bisect`` did not scale: each new key moved every pointer
after it, about 50 µs per new key at a million random keys, paid by every
replica on every such write and again at each replay. Keys sort by code point,
which is also their UTF-8 byte order.

Each key's entry is a ``Record`` (a slotted struct, untracked by the GC: 48 bytes),
its value,
``create_index`` (the log index that created it), ``mod_index`` (the index of
its last write) and ``version`` (writes since creation, 1 for a new key; a
delete forgets the key, so a re-created key starts again at 1). An absent key
reads as version 0, create and mod index 0, as in etcd.

Results are the shapes of DESIGN §5:

* ``kv_set``    -> ``{"ok": true}``
* ``kv_get``    -> ``{"ok": true, "value": v, "found": bool}`` (+ ``create_index``,
  ``mod_index``, ``version`` with ``meta: true``)
* ``kv_delete`` -> ``{"ok": true, "deleted": bool}``
* ``kv_cas``    -> ``{"ok": true, "swapped": bool, "value": value after the op}``
  (``expected`` null: swap only if the key is absent)
* ``kv_scan``   -> ``{"ok": true, "items": [[k, v], ...], "more": bool, "next": key|null,
  "index": int}`` (``items`` rows are ``[k, v, create, mod, version]`` with ``meta``)
* ``kv_txn``    -> ``{"ok": true, "succeeded": bool, "responses": [...]}``
  (see ``machine/txn.py``)

A scan page names ``index``, the log index its state reflects (the last command
applied: later NOOPs change nothing). ``after`` continues a scan strictly after
a key; ``at_index`` asks that the page be the one the state at that index would
give (a consistent multi-page scan). The store keeps no old versions, so it
*checks* rather than reconstructs: every key on the page must have ``mod_index
<= at_index``, no key in the page's range may have been deleted after
``at_index`` (the last ``SCAN_TOMBSTONES_MAX`` deletes are remembered), and the
state must have reached ``at_index``. Otherwise the page is refused with
``{"ok": false, "code": "SCAN_CHANGED"}`` naming the key and the caller
restarts the scan.

``kv_cas`` compares JSON values, not Python values: ``1``, ``1.0`` and
``true`` are different JSON, though Python calls them equal. A command the
store cannot understand (possible only if the gateway was bypassed) gives an
``{"ok": false, "code": "BAD_REQUEST"}`` result and changes nothing.

Snapshot format 2 carries every key's record, the index, and the remembered
deletes. Format 1 (values only) is refused: the versions it lacks cannot be
rebuilt, and a replica restored from it would answer version compares
differently from one that replayed the log (see docs/storage.md). Format 3 adds
leases (``machine/leases.py``, docs/leases.md): ``kv_set``/txn puts may attach a key
to a lease, ``lease_grant``/``lease_revoke``/``lease_expire`` are commands here;
format 2 restores with no leases.
"""

from __future__ import annotations

import io
from collections import deque
from collections.abc import Callable, Generator, Iterable, Mapping
from typing import Any, ClassVar, Final, Protocol

import msgspec
from sortedcontainers import SortedList

from resonetics import limits, planted
from resonetics.decode_errors import UNREADABLE, snapshot_slice
from resonetics.errors import BadRequest, StorageCorruption
from resonetics.machine.base import StateMachine
from resonetics.machine.leases import (
    LEASE_EXPIRE,
    LeaseTable,
    id_arg,
    refusal,
    ttl_arg,
)
from resonetics.machine.ops import MachineOp, command, query
from resonetics.machine.txn import Txn, TxnOp, parse_txn
from resonetics.steps import run_to_end

_CANONICAL: Final = msgspec.json.Encoder(order="sorted")
#: 2: per-key records (create index, mod index, version), the index, recent deletes.
#: 3: and leases (``machine/leases.py``) with log time; format 2 restores with none.
_SNAPSHOT_FORMAT: Final = 3
_SNAPSHOT_FORMATS_READ: Final = frozenset({2, 3})
#: The code of a consistent-scan page the store cannot vouch for (restart the scan).
SCAN_CHANGED: Final = "SCAN_CHANGED"


#: Key-value pairs encoded between two yields of ``snapshot_steps``: about 7 ms of the
#: loop each (20,000 took 25-110 ms).
SNAPSHOT_SLICE_ITEMS = 5_000

#: A snapshot being taken: yields between slices of work, returns the bytes.
SnapshotSteps = Generator[None, None, bytes]


class Record(msgspec.Struct, frozen=True, gc=False):
    """One key's value and metadata.

    A msgspec struct without GC tracking: 48 bytes a key where a named tuple took 80
    (GC header, tuple header). It holds a JSON value and ints, which can never form a
    reference cycle back to it, so the collector has nothing to find there.
    """

    value: Any
    create_index: int
    mod_index: int
    version: int

    def meta(self) -> dict[str, int]:
        return {
            "create_index": self.create_index,
            "mod_index": self.mod_index,
            "version": self.version,
        }


#: A record's fields as a tuple, in order: ``(value, create_index, mod_index, version)``.
_fields: Final = msgspec.structs.astuple

_ABSENT_META: Final = {"create_index": 0, "mod_index": 0, "version": 0}


class _KvSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    format: int
    #: ``[key, value, create_index, mod_index, version]`` rows in key order.
    items: list[tuple[str, Any, int, int, int]]
    index: int = 0
    tombstones: list[tuple[int, str]] = []
    forgotten: int = 0
    #: ``[id, ttl_ms, deadline_ms, [keys]]`` in id order (format 3).
    leases: list[tuple[int, int, int, list[str]]] = []
    log_time: int = 0
    lease_last_id: int = 0


class _KvSnapshotRead(_KvSnapshot, frozen=True, kw_only=True):
    """``_KvSnapshot`` as ``restore_steps`` reads it: each row left as its JSON, to be
    read a slice per step."""

    items: list[msgspec.Raw]  # type: ignore[assignment]


_SNAPSHOT_READER: Final = msgspec.json.Decoder(_KvSnapshotRead)
_ROWS_DECODER: Final = msgspec.json.Decoder(list[tuple[str, Any, int, int, int]])


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


def _opt_str(args: Mapping[str, Any], name: str) -> str | None:
    return None if args.get(name) is None else _str(args, name)


def _opt_int(args: Mapping[str, Any], name: str) -> int | None:
    return None if args.get(name) is None else _int(args, name)


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
    """A replicated dict of JSON values keyed by strings, with per-key versions."""

    read_ops: ClassVar[frozenset[str]] = frozenset({"kv_get", "kv_scan"})
    name: ClassVar[str] = "kv"
    #: Declared like any machine's; the wire's own structs (``wire/client.py``) check
    #: the args, so none is named here.
    ops: ClassVar[tuple[MachineOp, ...]] = (
        command("kv_set", key_arg="k"),
        command("kv_delete", key_arg="k"),
        command("kv_cas", key_arg="k"),
        command("kv_txn"),
        query("kv_get", key_arg="k"),
        query("kv_scan", key_arg="prefix"),
        command("lease_grant"),
        command("lease_revoke", key_arg="within"),
        query("lease_list"),
    )

    def __init__(self) -> None:
        self._data: dict[str, Record] = {}
        # Invariant: list(self._keys) == sorted(self._data).
        self._keys: SortedList[str] = SortedList()
        #: The index of the last command applied: the state is the state at this index.
        self._index = 0
        #: Recent deletes ``(index, key)`` in index order, at most SCAN_TOMBSTONES_MAX;
        #: ``_forgotten`` is the index of the newest delete no longer remembered.
        self._tombstones: deque[tuple[int, str]] = deque()
        self._forgotten = 0
        #: Only with the planted bug ``txn-split-across-entries``: a txn's later writes,
        #: applied at the next command instead of at once.
        self._deferred: list[TxnOp] = []
        self._ops: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
            "kv_set": self._set_args,
            "kv_get": lambda a: self.get(_str(a, "k"), meta=bool(a.get("meta", False))),
            "kv_delete": lambda a: self.delete(_str(a, "k")),
            "kv_cas": lambda a: self.cas(_str(a, "k"), a["expected"], a["v"]),
            "kv_scan": self._scan_args,
            "kv_txn": lambda a: self.txn(parse_txn(a)),
            "lease_grant": lambda a: self.lease_table.grant(self._index, ttl_arg(a)),
            "lease_revoke": lambda a: self.lease_revoke(id_arg(a), _opt_str(a, "within") or ""),
            LEASE_EXPIRE: lambda a: self.lease_expire(a["ids"]),
        }
        #: Where changes are reported (watch streams); None: nobody records them.
        self.changes: ChangeSink | None = None
        #: Leases and log time (``machine/leases.py``).
        self.lease_table = LeaseTable()

    def __len__(self) -> int:
        return len(self._data)

    @property
    def index(self) -> int:
        """The log index of the last command applied."""
        return self._index

    def items(self) -> list[tuple[str, Any]]:
        """Every (key, value), in key order."""
        data = self._data
        return [(k, data[k].value) for k in self._keys]

    def record(self, k: str) -> Record | None:
        """``k``'s value and metadata, or None when absent."""
        return self._data.get(k)

    # --- StateMachine ------------------------------------------------------------------
    def apply(self, index: int, command: Any) -> dict[str, Any]:
        before = self._index
        self._index = max(before, index)  # the writes below are stamped with it
        log_time = self.lease_table.log_time
        if self._deferred:  # never, unless a planted bug put writes there
            deferred, self._deferred = self._deferred, []
            for op in deferred:
                if op.type == "put":
                    self._put(op.key, op.value)
                else:
                    self.delete(op.key)
        try:
            handler = self._ops[command["op"]]
            self.lease_table.advance(command.get("ts"))
            return handler(command["args"])
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            self._index = before  # refused before any change: the state is as it was
            self.lease_table.log_time = log_time
            return {"ok": False, "code": BadRequest.code, "message": f"bad command: {exc!r}"}

    def read(self, op: str, args: Mapping[str, Any]) -> dict[str, Any]:
        if op == "kv_get":
            return self.get(args["k"], meta=bool(args.get("meta", False)))
        if op == "kv_scan":
            return self._scan_args(args)
        if op == "lease_info":
            return self.lease_table.info(id_arg(args))
        if op == "lease_list":
            after = _opt_int(args, "after") or 0
            return self.lease_table.listing(after, _opt_int(args, "limit") or limits.LEASE_LIST_MAX)
        return super().read(op, args)  # type: ignore[no-any-return]

    def _set_args(self, a: Mapping[str, Any]) -> dict[str, Any]:
        """``kv_set``: ``set`` with its arguments checked (the op every replica applies
        most: a lease is looked at only when there is one)."""
        k, v = _str(a, "k"), a["v"]  # checked in the order every version has
        return self.set(k, v, lease=0 if a.get("lease") is None else _int(a, "lease"))

    def _scan_args(self, a: Mapping[str, Any]) -> dict[str, Any]:
        return self.scan(
            _str(a, "prefix"),
            _int(a, "limit"),
            after=_opt_str(a, "after"),
            at_index=_opt_int(a, "at_index"),
            meta=bool(a.get("meta", False)),
        )

    def _snapshot_struct(self, rows: list[tuple[str, Any, int, int, int]]) -> _KvSnapshot:
        return _KvSnapshot(
            format=_SNAPSHOT_FORMAT,
            items=rows,
            index=self._index,
            tombstones=list(self._tombstones),
            forgotten=self._forgotten,
            leases=self.lease_table.rows(),
            log_time=self.lease_table.log_time,
            lease_last_id=self.lease_table.last_id,
        )

    def _rows(self, data: dict[str, Record], keys: Iterable[str]) -> list[Any]:
        return [(k, *_fields(data[k])) for k in keys]

    def snapshot(self) -> bytes:
        return _CANONICAL.encode(self._snapshot_struct(self._rows(self._data, self._keys)))

    def snapshot_steps(self, slice_items: int = SNAPSHOT_SLICE_ITEMS) -> SnapshotSteps:
        """The same bytes as ``snapshot()``, encoded a slice at a time.

        A generator: it copies the table first (C-speed copies of the dict and the key
        list: records are replaced, never mutated, so the copy is the state at this
        instant), then yields between slices so the caller's event loop can serve in
        between; ``StopIteration.value`` is the snapshot.

        Each slice is written into one growing buffer as it is encoded, and the
        buffer's bytes are taken at the end without a copy (``io.BytesIO.getvalue``
        hands over its own buffer): joining the slices at the end was one call
        copying the whole state, 200-330 ms of the loop at 350k keys on a busy
        machine, and the leader lost its followers in it (``bench/large_store.py``).
        """
        data, keys = self._data.copy(), self._keys[:]
        empty = _CANONICAL.encode(self._snapshot_struct([]))
        # Fields are sorted: forgotten, format, index, items, tombstones. The first
        # ``"items":[`` is the field itself (JSON strings escape their quotes).
        marker = b'"items":['
        cut = empty.index(marker) + len(marker)
        assert empty[cut : cut + 1] == b"]"
        out = io.BytesIO()
        out.write(empty[:cut])
        yield
        for start in range(0, len(keys), slice_items):
            if start:
                out.write(b",")
            chunk = _CANONICAL.encode(self._rows(data, keys[start : start + slice_items]))
            out.write(memoryview(chunk)[1:-1])  # without the list's brackets
            yield
        out.write(empty[cut:])
        return out.getvalue()

    def restore(self, data: bytes) -> None:
        run_to_end(self.restore_steps(data))()

    def restore_steps(
        self, data: bytes | memoryview, slice_items: int = SNAPSHOT_SLICE_ITEMS
    ) -> Generator[None, None, Callable[[], None]]:
        """``restore`` in slices (see ``ReplicatedKV.restore_steps``): rows are read a
        slice per step into a new table, and the generator's value puts it in place."""
        try:
            snap = _SNAPSHOT_READER.decode(data)  # any format's rows, each left as JSON
        except UNREADABLE as exc:
            raise StorageCorruption("snapshot", f"key-value state unreadable: {exc}") from None
        if snap.format == 1:
            raise StorageCorruption(
                "snapshot",
                "key-value format 1 was written by a release without per-key versions; this "
                "release cannot rebuild them (replicas would disagree on version compares). "
                "Dump the keys with the release that wrote it (resonetics kv scan --all) and "
                "load them into a new cluster",
            )
        if snap.format not in _SNAPSHOT_FORMATS_READ:
            raise StorageCorruption("snapshot", f"unknown key-value format {snap.format}")
        table: dict[str, Record] = {}
        items = snap.items
        for start in range(0, len(items), slice_items):
            yield
            rows = snapshot_slice(
                _ROWS_DECODER,
                items[start : start + slice_items],
                what="key-value state: rows",
                first=start,
            )
            for row in rows:
                table[row[0]] = Record(*row[1:])
        yield
        keys = SortedList(table)
        yield
        load_leases = self.lease_table.prepare(snap.leases, snap.log_time, snap.lease_last_id)

        def replace() -> None:
            self._data = table
            self._keys = keys
            self._index = snap.index
            self._tombstones = deque(snap.tombstones)
            self._forgotten = snap.forgotten
            if self.changes is not None:
                self.changes.reset()
            load_leases()

        return replace

    # --- operations ----------------------------------------------------------------------
    def set(self, k: str, v: Any, *, lease: int = 0) -> dict[str, Any]:
        if lease:
            refused = self.lease_table.check_attach(k, lease)
            if refused is not None:
                return refused
        self._put(k, v, lease)
        return {"ok": True}

    def _put(self, k: str, v: Any, lease: int = 0) -> Record:
        old = self._data.get(k)
        if old is None:
            self._keys.add(k)
            new = Record(v, self._index, self._index, 1)
        else:
            new = Record(v, old.create_index, self._index, old.version + 1)
        self._data[k] = new
        if self.changes is not None:  # every write (set, CAS, a txn's puts) passes here
            self.changes.put(k, v)
        leases = self.lease_table
        if lease or k in leases.key_lease:  # a put without a lease detaches the key
            leases.attach(k, lease)
        return new

    def get(self, k: str, *, meta: bool = False) -> dict[str, Any]:
        rec = self._data.get(k)
        if rec is None:
            result: dict[str, Any] = {"ok": True, "value": None, "found": False}
            return {**result, **_ABSENT_META} if meta else result
        result = {"ok": True, "value": rec.value, "found": True}
        return {**result, **rec.meta()} if meta else result

    def delete(self, k: str) -> dict[str, Any]:
        if k not in self._data:
            return {"ok": True, "deleted": False}
        del self._data[k]
        self._keys.remove(k)
        self.lease_table.forget_key(k)
        self._tombstones.append((self._index, k))
        if len(self._tombstones) > limits.SCAN_TOMBSTONES_MAX:
            self._forgotten = self._tombstones.popleft()[0]
        if self.changes is not None:
            self.changes.delete(k)
        return {"ok": True, "deleted": True}

    def cas(self, k: str, expected: Any, v: Any) -> dict[str, Any]:
        rec = self._data.get(k)
        if expected is None:
            matches = rec is None
        else:
            matches = rec is not None and json_equal(rec.value, expected)
        if matches:
            rec = self._put(k, v)
        return {"ok": True, "swapped": matches, "value": None if rec is None else rec.value}

    def scan(
        self,
        prefix: str,
        limit: int,
        *,
        after: str | None = None,
        at_index: int | None = None,
        meta: bool = False,
    ) -> dict[str, Any]:
        """Up to ``limit`` items whose key starts with ``prefix`` (and is > ``after``),
        ending early at ``limits.SCAN_BYTES_MAX`` bytes of keys and values."""
        data = self._data
        if after is not None and after >= prefix:
            keys = self._keys.irange(minimum=after, inclusive=(False, True))
        else:
            keys = self._keys.irange(minimum=prefix)
        items: list[list[Any]] = []
        more = False
        size = 0
        for k in keys:
            if not k.startswith(prefix):
                break
            if len(items) >= limit or size >= limits.SCAN_BYTES_MAX:
                more = True
                break
            rec = data[k]
            items.append([k, *_fields(rec)] if meta else [k, rec.value])
            size += len(k) + len(_CANONICAL.encode(rec.value))
        last = items[-1][0] if items else None
        if at_index is not None:
            refused = self._changed_since(at_index, prefix, after, last if more else None, items)
            if refused is not None:
                return refused
        return {
            "ok": True,
            "items": items,
            "more": more,
            "next": last if more else None,
            "index": self._index,
        }

    def _changed_since(
        self,
        at_index: int,
        prefix: str,
        after: str | None,
        last: str | None,
        items: list[list[Any]],
    ) -> dict[str, Any] | None:
        """Why this page is not the state at ``at_index`` (a refusal), or None.

        The page covers the keys in ``prefix`` that are > ``after`` and <= ``last``
        (None: to the end of the prefix). It equals that range at ``at_index`` when
        the state has reached ``at_index``, no key on it was written after
        ``at_index`` and no key in the range was deleted after ``at_index``.
        """

        def refuse(reason: str, key: str | None = None) -> dict[str, Any]:
            message = f"the scan's range changed since index {at_index}: {reason}; restart it"
            return {
                "ok": False,
                "code": SCAN_CHANGED,
                "message": message,
                "key": key,
                "index": self._index,
            }

        if self._index < at_index:
            return refuse(f"this node's state is at index {self._index}, behind it")
        if self._forgotten > at_index:
            return refuse(f"deletes up to index {self._forgotten} are no longer remembered")
        for row in items:
            mod = row[3] if len(row) == 5 else self._data[row[0]].mod_index
            if mod > at_index:
                return refuse(f"{row[0]!r} was written at index {mod}", row[0])
        for index, key in reversed(self._tombstones):
            if index <= at_index:
                break
            in_range = key.startswith(prefix) and (after is None or key > after)
            if in_range and (last is None or key <= last):
                return refuse(f"{key!r} was deleted at index {index}", key)
        return None

    def txn(self, txn: Txn) -> dict[str, Any]:
        """Apply a transaction (already parsed): the compares pick a branch, run in order.

        Every write of the branch takes this entry's index as its mod index. The
        branch was checked whole by ``parse_txn`` before anything changes, so a txn
        applies entirely or (a bad command) not at all.
        """
        succeeded = all(c.holds(self._data.get(c.key)) for c in txn.compare)
        if planted.on(planted.Bug.TXN_IGNORES_COMPARES):
            succeeded = True
        branch = txn.then if succeeded else txn.otherwise
        for op in branch:  # every lease a put names, checked before anything changes
            if op.type == "put" and op.lease:
                refused = self.lease_table.check_attach(op.key, op.lease)
                if refused is not None:
                    return {**refused, "succeeded": succeeded}
        responses: list[dict[str, Any]] = []
        read_bytes = 0
        split = planted.on(planted.Bug.TXN_SPLIT_ACROSS_ENTRIES)
        for op in branch:
            if split and op.type != "get" and any(r["type"] != "get" for r in responses):
                self._deferred.append(op)  # the bug: a later write waits for the next entry
                responses.append({"type": op.type, "key": op.key, "index": self._index})
                continue
            if op.type == "put":
                rec = self._put(op.key, op.value, op.lease)
                responses.append(
                    {"type": "put", "key": op.key, "index": self._index, "version": rec.version}
                )
            elif op.type == "delete":
                deleted = self.delete(op.key)["deleted"]
                responses.append(
                    {"type": "delete", "key": op.key, "deleted": deleted, "index": self._index}
                )
            else:
                found = self.get(op.key, meta=True)
                del found["ok"]
                if found["found"]:
                    read_bytes += len(_CANONICAL.encode(found["value"]))
                    if read_bytes > limits.TXN_READ_BYTES_MAX:
                        found.update(value=None, omitted=True)
                responses.append({"type": "get", "key": op.key, **found})
        return {"ok": True, "succeeded": succeeded, "responses": responses}

    # --- leases (machine/leases.py) --------------------------------------------------------
    def lease_revoke(self, lease_id: int, within: str) -> dict[str, Any]:
        """End a lease and delete its keys, if every key lies ``within`` the prefix the
        caller's write grant was judged on (the gateway checked ``write`` on ``within``):
        a revoke never deletes a key its caller could not delete itself. Judged here, at
        apply, so a key attached after the request was checked is judged too."""
        lease = self.lease_table.leases.get(lease_id)
        if lease is None:
            return refusal("LEASE_NOT_FOUND", f"lease {lease_id} does not exist", id=lease_id)
        outside = sorted(k for k in lease.keys if not k.startswith(within))
        if outside:
            return refusal(
                "FORBIDDEN",
                f"lease {lease_id} holds key {outside[0]!r}, outside the prefix {within!r} "
                "the revoke was authorized for",
                id=lease_id,
                key=outside[0],
            )
        keys = self.lease_table.end(lease_id)
        for key in keys:
            self.delete(key)
        return {"ok": True, "revoked": True, "id": lease_id, "keys": keys}

    def lease_expire(self, ids: Any) -> dict[str, Any]:
        """The leader's verdict that ``ids`` ran out; each is expired only if log time
        has passed its recorded deadline (``LeaseTable.due``), in id order."""
        if not isinstance(ids, list) or len(ids) > limits.LEASE_EXPIRE_BATCH_MAX:
            raise TypeError(f"ids must be a list of at most {limits.LEASE_EXPIRE_BATCH_MAX}")
        wanted = sorted({id_arg({"id": i}) for i in ids})
        expired: list[int] = []
        kept: list[int] = []
        deleted: list[str] = []
        for lease_id in wanted:
            lease = self.lease_table.leases.get(lease_id)
            if lease is None:
                continue
            if not self.lease_table.due(lease):
                kept.append(lease_id)
                continue
            for key in self.lease_table.end(lease_id):
                self.delete(key)
                deleted.append(key)
            expired.append(lease_id)
        return {"ok": True, "expired": expired, "kept": kept, "keys": len(deleted)}


__all__ = ["SCAN_CHANGED", "ChangeSink", "KeyValueStore", "Record", "json_equal"]
