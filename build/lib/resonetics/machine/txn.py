"""Transactions of the key-value store (``kv_txn``): compares, then a branch of ops.

Theory of operation
-------------------
A txn is etcd's: every compare is evaluated against the state before the txn;
if all hold, the ``then`` ops run, else the ``else`` ops, in order, within one
log entry (so no other write can come between them, on any replica). A ``get``
in a branch sees the writes before it in that branch.

A compare names a key, a ``target`` and an ``op``:

===============  ==================  ==========================================
target           ops                 an absent key has
===============  ==================  ==========================================
``value``        ``==``, ``!=``      no value: ``==`` is false, ``!=`` true
``exists``       ``==``, ``!=``      ``false`` (``against`` is a boolean)
``version``      ``== != < >``       0 (writes since creation: 1 after a create)
``create_index`` ``== != < >``       0
``mod_index``    ``== != < >``       0
===============  ==================  ==========================================

Values compare as JSON (``1`` != ``1.0`` != ``true``), like ``kv_cas``.

The gateway (``wire/txn.py``) checks a request and names the field at fault;
``parse_txn`` here re-checks the shape the log holds, raising ``TypeError`` or
``ValueError`` (the store answers BAD_REQUEST and changes nothing), because a
committed entry must never crash a replica and must apply whole or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

import msgspec

from resonetics.txn_rules import OP_TYPES, OPS_FOR_TARGET, TARGETS

if TYPE_CHECKING:
    from resonetics.machine.kv import Record

Target = Literal["value", "exists", "version", "create_index", "mod_index"]
CompareOp = Literal["==", "!=", "<", ">"]
OpType = Literal["put", "delete", "get"]

_CANONICAL: Final = msgspec.json.Encoder(order="sorted")


@dataclass(frozen=True, slots=True)
class Compare:
    key: str
    target: str
    op: str
    against: Any

    def holds(self, rec: Record | None) -> bool:
        """Whether this compare holds for ``rec`` (None: the key is absent)."""
        if self.target == "value":
            if rec is None:
                return self.op == "!="
            same = _CANONICAL.encode(rec.value) == _CANONICAL.encode(self.against)
            return same if self.op == "==" else not same
        if self.target == "exists":
            same = (rec is not None) is bool(self.against)
            return same if self.op == "==" else not same
        have = 0 if rec is None else int(getattr(rec, self.target))
        want = int(self.against)
        if self.op == "==":
            return have == want
        if self.op == "!=":
            return have != want
        return have < want if self.op == "<" else have > want


@dataclass(frozen=True, slots=True)
class TxnOp:
    type: str
    key: str
    value: Any = None
    #: A put's lease (``machine/leases.py``); 0: the key is detached from any lease.
    lease: int = 0


@dataclass(frozen=True, slots=True)
class Txn:
    compare: tuple[Compare, ...]
    then: tuple[TxnOp, ...]
    otherwise: tuple[TxnOp, ...]

    def keys(self) -> list[str]:
        """Every key the txn names (compares and both branches), in order, once each."""
        seen: dict[str, None] = {}
        for c in self.compare:
            seen.setdefault(c.key)
        for op in (*self.then, *self.otherwise):
            seen.setdefault(op.key)
        return list(seen)


def _key(raw: Mapping[str, Any], where: str) -> str:
    key = raw["key"]
    if not isinstance(key, str) or not key:
        raise TypeError(f"{where}.key must be a non-empty string")
    return key


def _compare(raw: Any, where: str) -> Compare:
    if not isinstance(raw, Mapping):
        raise TypeError(f"{where} must be an object")
    target, op = raw.get("target"), raw.get("op", "==")
    if not isinstance(target, str) or target not in OPS_FOR_TARGET:
        raise ValueError(f"{where}.target must be one of {', '.join(TARGETS)}")
    if not isinstance(op, str) or op not in OPS_FOR_TARGET[target]:
        raise ValueError(f"{where}.op must be one of {', '.join(OPS_FOR_TARGET[target])}")
    against = raw.get("against")
    if target == "exists" and not isinstance(against, bool):
        raise TypeError(f"{where}.against must be true or false")
    if target not in ("value", "exists") and (
        not isinstance(against, int) or isinstance(against, bool) or against < 0
    ):
        raise TypeError(f"{where}.against must be a non-negative integer")
    return Compare(_key(raw, where), target, op, against)


def _op(raw: Any, where: str) -> TxnOp:
    if not isinstance(raw, Mapping):
        raise TypeError(f"{where} must be an object")
    kind = raw.get("type")
    if kind not in OP_TYPES:
        raise ValueError(f"{where}.type must be one of {', '.join(OP_TYPES)}")
    lease = raw.get("lease", 0) if kind == "put" else 0
    if not isinstance(lease, int) or isinstance(lease, bool) or lease < 0:
        raise TypeError(f"{where}.lease must be a lease id")
    return TxnOp(kind, _key(raw, where), raw.get("value") if kind == "put" else None, lease)


def _branch(raw: Any, where: str) -> tuple[TxnOp, ...]:
    if not isinstance(raw, list):
        raise TypeError(f"{where} must be a list")
    ops = tuple(_op(item, f"{where}[{i}]") for i, item in enumerate(raw))
    written = [op.key for op in ops if op.type != "get"]
    if len(set(written)) != len(written):
        raise ValueError(f"{where}: a key is written twice")
    return ops


def parse_txn(args: Mapping[str, Any]) -> Txn:
    """The txn in a logged command's args; ``TypeError``/``ValueError`` if malformed."""
    compares = args.get("compare", [])
    if not isinstance(compares, list):
        raise TypeError("compare must be a list")
    return Txn(
        tuple(_compare(c, f"compare[{i}]") for i, c in enumerate(compares)),
        _branch(args.get("then", []), "then"),
        _branch(args.get("else", []), "else"),
    )


__all__ = [
    "OPS_FOR_TARGET",
    "OP_TYPES",
    "TARGETS",
    "Compare",
    "CompareOp",
    "OpType",
    "Target",
    "Txn",
    "TxnOp",
    "parse_txn",
]
