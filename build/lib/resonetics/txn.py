"""Building transactions in Python: ``Compare``, ``Put``, ``Delete``, ``Get``.

    from resonetics.txn import Compare, Delete, Get, Put

    result = client.txn(
        compare=[Compare.value("cfg/mode") == "blue", Compare.version("cfg/lock") == 0],
        then=[Put("cfg/mode", "green"), Delete("cfg/old"), Get("cfg/mode")],
        otherwise=[Get("cfg/mode")],
    )
    if result.succeeded: ...

A compare is made from a target (``Compare.value``, ``.version``,
``.create_index``, ``.mod_index``) and a Python comparison (``==``, ``!=``, and
``<``/``>`` for the numeric targets), or ``.eq()``/``.ne()``/``.lt()``/``.gt()``
for code that prefers methods; ``Compare.exists(k)`` and ``Compare.absent(k)``
test existence. Every value is plain data: ``to_wire()`` gives the JSON the
``kv_txn`` op takes (see docs/protocol.md), and ``spec_from_wire`` reads a spec
file (the CLI's ``kv txn``) back into the same JSON after checking its shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from resonetics.raft.entry import Receipt
from resonetics.txn_rules import OP_TYPES, OPS_FOR_TARGET, TARGETS


@dataclass(frozen=True, slots=True)
class Condition:
    """One compare of a txn: ``key``'s ``target`` ``op`` ``against``."""

    key: str
    target: str
    op: str
    against: Any

    def to_wire(self) -> dict[str, Any]:
        return {"key": self.key, "target": self.target, "op": self.op, "against": self.against}


@dataclass(frozen=True, slots=True)
class _Target:
    """``Compare.<target>(key)``: becomes a ``Condition`` when compared with a value."""

    key: str
    target: str

    def eq(self, against: Any) -> Condition:
        return Condition(self.key, self.target, "==", against)

    def ne(self, against: Any) -> Condition:
        return Condition(self.key, self.target, "!=", against)

    def lt(self, against: int) -> Condition:
        return Condition(self.key, self.target, "<", against)

    def gt(self, against: int) -> Condition:
        return Condition(self.key, self.target, ">", against)

    # Comparison operators build conditions (as SQLAlchemy's columns do), not booleans.
    def __eq__(self, against: object) -> Condition:  # type: ignore[override]
        return self.eq(against)

    def __ne__(self, against: object) -> Condition:  # type: ignore[override]
        return self.ne(against)

    def __lt__(self, against: int) -> Condition:
        return self.lt(against)

    def __gt__(self, against: int) -> Condition:
        return self.gt(against)

    __hash__ = None  # type: ignore[assignment]


class Compare:
    """Constructors of compares (see the module docstring)."""

    @staticmethod
    def value(key: str) -> _Target:
        return _Target(key, "value")

    @staticmethod
    def version(key: str) -> _Target:
        return _Target(key, "version")

    @staticmethod
    def create_index(key: str) -> _Target:
        return _Target(key, "create_index")

    @staticmethod
    def mod_index(key: str) -> _Target:
        return _Target(key, "mod_index")

    @staticmethod
    def exists(key: str) -> Condition:
        return Condition(key, "exists", "==", True)

    @staticmethod
    def absent(key: str) -> Condition:
        return Condition(key, "exists", "==", False)


@dataclass(frozen=True, slots=True)
class Put:
    key: str
    value: Any
    #: Attach the key to this lease (``Client.lease_grant``); None: no lease.
    lease: int | None = None

    def to_wire(self) -> dict[str, Any]:
        wire = {"type": "put", "key": self.key, "value": self.value}
        if self.lease is not None:
            wire["lease"] = self.lease
        return wire


@dataclass(frozen=True, slots=True)
class Delete:
    key: str

    def to_wire(self) -> dict[str, Any]:
        return {"type": "delete", "key": self.key}


@dataclass(frozen=True, slots=True)
class Get:
    key: str

    def to_wire(self) -> dict[str, Any]:
        return {"type": "get", "key": self.key}


Op = Put | Delete | Get
#: What ``Client.txn`` takes in each list: the typed values above, or their wire dicts.
CompareLike = Condition | dict[str, Any]
OpLike = Op | dict[str, Any]


@dataclass(frozen=True, slots=True)
class TxnResult:
    """What a txn did: which branch ran, and one response per op of that branch.

    A put's response carries ``index`` (this txn's entry) and the key's new
    ``version``; a delete's ``deleted``; a get's ``found``, ``value``,
    ``create_index``, ``mod_index`` and ``version`` (and ``omitted: true``, value None,
    once the txn's gets passed ``limits.TXN_READ_BYTES_MAX``: read that key with ``get``).
    """

    succeeded: bool
    responses: list[dict[str, Any]] = field(default_factory=list)
    receipt: Receipt | None = None

    def gets(self) -> dict[str, Any]:
        """The value each ``get`` of the branch read (None: absent), by key."""
        return {r["key"]: r.get("value") for r in self.responses if r.get("type") == "get"}


def txn_args(
    compare: list[CompareLike], then: list[OpLike], otherwise: list[OpLike]
) -> dict[str, Any]:
    """The ``kv_txn`` args for these lists (typed values or wire dicts)."""

    def wire(item: Any) -> Any:
        return item.to_wire() if hasattr(item, "to_wire") else item

    return {
        "compare": [wire(c) for c in compare],
        "then": [wire(o) for o in then],
        "else": [wire(o) for o in otherwise],
    }


def result_from_wire(result: dict[str, Any]) -> TxnResult:
    receipt = result.get("receipt")
    return TxnResult(
        succeeded=bool(result.get("succeeded")),
        responses=list(result.get("responses", [])),
        receipt=Receipt.from_data(receipt) if receipt is not None else None,
    )


__all__ = [
    "OPS_FOR_TARGET",
    "OP_TYPES",
    "TARGETS",
    "Compare",
    "CompareLike",
    "Condition",
    "Delete",
    "Get",
    "Op",
    "OpLike",
    "Put",
    "TxnResult",
    "result_from_wire",
    "txn_args",
]
