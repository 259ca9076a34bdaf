"""The gateway's checks of a ``kv_txn`` request (the machine's side: ``machine/txn.py``).

``validate_request`` decodes ``args`` into ``KvTxnArgs`` (``wire/client.py``) built
from the structs here, then ``check_txn`` applies the rules a type cannot say: how
many compares and ops (``limits.TXN_COMPARES_MAX``, ``TXN_OPS_MAX``), which ``op``
each ``target`` allows, the type of ``against``, key and value sizes, and that a
branch writes a key at most once. Every refusal names its field
(``args.compare[2].op: ...``), so nothing malformed reaches the log.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Literal, Protocol

import msgspec

from resonetics import limits
from resonetics.errors import BadRequest, TooLarge
from resonetics.txn_rules import OP_TYPES, OPS_FOR_TARGET, TARGETS
from resonetics.wire.shape import check_value

_ENCODER: Final = msgspec.json.Encoder()


class TxnCompareArg(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One compare: ``{"key", "target", "op", "against"}`` (``op`` defaults to ``==``)."""

    key: str
    target: str
    op: str = "=="
    against: Any = None


class TxnOpArg(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One op of a branch: ``{"type": "put"|"delete"|"get", "key", "value"}``."""

    type: str
    key: str
    value: Any | msgspec.UnsetType = msgspec.UNSET
    #: A put's lease id (``lease_grant``): the key is attached to it.
    lease: int | msgspec.UnsetType = msgspec.UNSET


class _TxnShape(Protocol):
    @property
    def compare(self) -> list[TxnCompareArg]: ...
    @property
    def then(self) -> list[TxnOpArg]: ...
    @property
    def otherwise(self) -> list[TxnOpArg]: ...


def _key(field: str, key: str) -> None:
    if not key:
        raise BadRequest(field, "must be a non-empty string")
    if len(key) * 4 > limits.KEY_BYTES_MAX and len(key.encode()) > limits.KEY_BYTES_MAX:
        raise TooLarge(f"{field}: longer than {limits.KEY_BYTES_MAX} bytes of UTF-8")


def _value(field: str, value: Any, limit: int) -> None:
    check_value(field, value)
    size = len(_ENCODER.encode(value))
    if size > limit:
        raise TooLarge(f"{field}: {size} bytes encoded, over the {limit} byte limit")


def _count(field: str, items: Sequence[Any], most: int, what: str) -> None:
    if len(items) > most:
        raise BadRequest(field, f"at most {most} {what} in one txn, got {len(items)}")


def _check_compare(field: str, c: TxnCompareArg) -> None:
    _key(f"{field}.key", c.key)
    if c.target not in OPS_FOR_TARGET:
        raise BadRequest(
            f"{field}.target", f"expected one of {', '.join(TARGETS)}, got {c.target!r}"
        )
    allowed = OPS_FOR_TARGET[c.target]
    if c.op not in allowed:
        raise BadRequest(
            f"{field}.op", f"target {c.target!r} allows {', '.join(allowed)}, got {c.op!r}"
        )
    against = c.against
    if c.target == "value":
        _value(f"{field}.against", against, limits.EXPECTED_BYTES_MAX)
    elif c.target == "exists":
        if not isinstance(against, bool):
            raise BadRequest(f"{field}.against", f"must be true or false, got {against!r}")
    elif not isinstance(against, int) or isinstance(against, bool) or not 0 <= against <= 2**53:
        raise BadRequest(f"{field}.against", f"must be an integer >= 0, got {against!r}")


def _check_branch(field: str, ops: Sequence[TxnOpArg]) -> None:
    _count(field, ops, limits.TXN_OPS_MAX, "ops per branch")
    written: set[str] = set()
    for i, op in enumerate(ops):
        where = f"{field}[{i}]"
        if op.type not in OP_TYPES:
            raise BadRequest(
                f"{where}.type", f"expected one of {', '.join(OP_TYPES)}, got {op.type!r}"
            )
        _key(f"{where}.key", op.key)
        if op.type == "put":
            if op.value is msgspec.UNSET:
                raise BadRequest(f"{where}.value", "a put needs a value")
            _value(f"{where}.value", op.value, limits.VALUE_BYTES_MAX)
        elif op.value is not msgspec.UNSET:
            raise BadRequest(f"{where}.value", f"only a put carries a value, not a {op.type}")
        if op.lease is not msgspec.UNSET:
            if op.type != "put":
                raise BadRequest(f"{where}.lease", f"only a put carries a lease, not a {op.type}")
            if isinstance(op.lease, bool) or not 1 <= op.lease <= 2**53:
                raise BadRequest(f"{where}.lease", f"must be a lease id >= 1, got {op.lease!r}")
        if op.type != "get":
            if op.key in written:
                raise BadRequest(f"{where}.key", f"{op.key!r} is written twice in this branch")
            written.add(op.key)


def check_txn(txn: _TxnShape) -> None:
    """Everything a type cannot say about a decoded txn; ``BadRequest``/``TooLarge``."""
    _count("args.compare", txn.compare, limits.TXN_COMPARES_MAX, "compares")
    for i, c in enumerate(txn.compare):
        _check_compare(f"args.compare[{i}]", c)
    _check_branch("args.then", txn.then)
    _check_branch("args.else", txn.otherwise)


#: The names a txn spec file or the Python API may use for the ``else`` branch.
ELSE_FIELD: Final[Literal["else"]] = "else"

__all__ = ["ELSE_FIELD", "TxnCompareArg", "TxnOpArg", "check_txn"]
