"""Typed proxies for a machine's declared ops: ``counter.incr(by=2)`` instead of
``client.call("incr", by=2)``.

Theory of operation
-------------------
``proxy(client, Machine)`` reads the machine's op declaration (``Machine.ops``,
``machine/ops.py``) and answers attribute access with a function per declared
op. Before anything is sent, the keyword arguments are checked against the op's
args struct the way the node's gateway checks them (unknown names refused, types
converted by msgspec), so a typo fails at once with ``BadRequest`` naming the
field, not after a round trip. The call goes through ``client.call`` (sessions,
retries, exactly once) and returns the op's ``value``; ``client.call`` still gives
the whole answer with its receipt. A query also takes ``consistency=``
(``"linearizable"``, ``"lease"`` or ``"stale"``).

An unknown attribute is an ``AttributeError`` naming the declared ops. With a
``Client`` the functions block; with an ``AsyncClient`` they are coroutines.

Static typing: attribute access on a plain proxy is ``Any`` to mypy. To have
calls checked, describe the ops as a ``typing.Protocol`` and pass it as
``as_`` (typed ``Callable[..., P]``, not ``type[P]``: mypy refuses a Protocol
where ``type[P]`` is expected), or annotate the variable
(``counter: CounterOps = client.proxy(Counter)``, accepted because the proxy
answers any attribute; no run-time check then). The proxy is then typed as that protocol (``def incr(self, *, by: int
= 1) -> int``; ``async def`` for an ``AsyncClient``). The protocol's methods
are checked at run time to be declared ops (and async exactly when the client
is), but their argument and return annotations are the program's word: mypy
checks calls against the protocol, the proxy checks arguments against the
args struct when called.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, overload

import msgspec

from resonetics.errors import BadRequest, MachineError
from resonetics.machine.base import StateMachine
from resonetics.machine.ops import MachineOp

if TYPE_CHECKING:
    from resonetics.client import AsyncClient, Client

P = TypeVar("P")
MachineLike = type[StateMachine] | StateMachine

_CONSISTENCIES = ("linearizable", "lease", "stale")


def check_args(
    op: str, struct: type[msgspec.Struct] | None, args: Mapping[str, Any]
) -> dict[str, Any]:
    """``args`` checked against ``op``'s args struct, as the node's gateway checks them:
    an unknown name is refused (never silently replaced by a default), types converted."""
    if struct is None:
        return dict(args)
    fields = sorted(f.encode_name for f in msgspec.structs.fields(struct))
    for name in args:
        if name not in fields:
            raise BadRequest(f"args.{name}", f"not an argument of {op!r} (it takes {fields})")
    try:
        value = msgspec.convert(dict(args), type=struct)
    except msgspec.ValidationError as exc:
        raise BadRequest("args", f"{op}: {exc}") from None
    checked: dict[str, Any] = msgspec.to_builtins(value)
    return checked


def declared_ops_of(machine: MachineLike) -> tuple[str, dict[str, MachineOp]]:
    """(machine name, ops by name) from a machine class or instance's declaration."""
    cls = machine if isinstance(machine, type) else type(machine)
    if not (isinstance(cls, type) and issubclass(cls, StateMachine)):
        raise MachineError(f"{machine!r} is not a resonetics.StateMachine (class or instance)")
    name = getattr(cls, "name", "") or f"{cls.__module__}.{cls.__qualname__}"
    ops: dict[str, MachineOp] = {}
    for op in getattr(machine, "ops", ()):
        if not isinstance(op, MachineOp):
            raise MachineError(f"machine {name!r}: ops must be command(...)/query(...)")
        ops[op.name] = op
    if not ops:
        raise MachineError(f"machine {name!r} declares no ops")
    return name, ops


class _Proxy:
    """What both proxies share: the declaration and the argument check."""

    def __init__(self, machine: str, ops: dict[str, MachineOp]) -> None:
        self._machine = machine
        self._ops = ops

    def _op(self, name: str) -> MachineOp:
        op = self._ops.get(name)
        if op is None:
            raise AttributeError(
                f"machine {self._machine!r} has no op {name!r}; "
                f"its declared ops: {', '.join(sorted(self._ops))}"
            )
        return op

    def _request(self, op: MachineOp, kwargs: dict[str, Any]) -> dict[str, Any]:
        consistency = kwargs.pop("consistency", None) if op.kind == "query" else None
        if consistency is not None and consistency not in _CONSISTENCIES:
            raise BadRequest("args.consistency", f"must be one of {_CONSISTENCIES}")
        args = check_args(op.name, op.args, kwargs)
        if consistency is not None:
            args["consistency"] = consistency
        return args

    def __dir__(self) -> list[str]:
        return sorted(self._ops)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._machine!r}: {', '.join(sorted(self._ops))}>"


def _value(result: Any) -> Any:
    return result["value"] if isinstance(result, dict) and "value" in result else result


class MachineProxy(_Proxy):
    """Blocking functions for a machine's ops, over a ``Client``."""

    def __init__(self, client: Client, machine: str, ops: dict[str, MachineOp]) -> None:
        super().__init__(machine, ops)
        self._client = client

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        op = self._op(name)

        def invoke(**kwargs: Any) -> Any:
            return _value(self._client.call(op.name, self._request(op, kwargs)))

        invoke.__name__ = op.name
        return invoke


class AsyncMachineProxy(_Proxy):
    """Coroutine functions for a machine's ops, over an ``AsyncClient``."""

    def __init__(self, client: AsyncClient, machine: str, ops: dict[str, MachineOp]) -> None:
        super().__init__(machine, ops)
        self._client = client

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        if name.startswith("_"):
            raise AttributeError(name)
        op = self._op(name)

        async def invoke(**kwargs: Any) -> Any:
            return _value(await self._client.call(op.name, self._request(op, kwargs)))

        invoke.__name__ = op.name
        return invoke


@overload
def proxy(client: Client, machine: MachineLike) -> MachineProxy: ...
@overload
def proxy(client: AsyncClient, machine: MachineLike) -> AsyncMachineProxy: ...
@overload
def proxy(client: Client | AsyncClient, machine: MachineLike, as_: Callable[..., P]) -> P: ...
def proxy(
    client: Client | AsyncClient, machine: MachineLike, as_: Callable[..., P] | None = None
) -> MachineProxy | AsyncMachineProxy | P:
    """A proxy calling ``machine``'s declared ops through ``client`` (module docstring).

    ``as_``: a ``typing.Protocol`` describing the ops, for mypy; each of its methods
    must be a declared op (``MachineError`` otherwise), ``async`` exactly when
    ``client`` is an ``AsyncClient``.
    """
    from resonetics.client import AsyncClient

    name, ops = declared_ops_of(machine)
    is_async = isinstance(client, AsyncClient)
    made: MachineProxy | AsyncMachineProxy = (
        AsyncMachineProxy(client, name, ops)
        if isinstance(client, AsyncClient)
        else MachineProxy(client, name, ops)
    )
    if as_ is None:
        return made
    _check_protocol(as_, name, ops, is_async=is_async)
    typed: P = made  # type: ignore[assignment]  # checked against the declaration above
    return typed


def _check_protocol(
    protocol: Callable[..., Any], machine: str, ops: Mapping[str, MachineOp], *, is_async: bool
) -> None:
    """Every method the protocol names is a declared op, async exactly when the client is."""
    if not isinstance(protocol, type):
        raise MachineError(f"as_={protocol!r}: expected a typing.Protocol class")
    for attr, member in vars(protocol).items():
        if attr.startswith("_") or not callable(member):
            continue
        if attr not in ops:
            raise MachineError(
                f"{protocol.__name__}.{attr}: machine {machine!r} declares no op {attr!r} "
                f"(its ops: {', '.join(sorted(ops))})"
            )
        if inspect.iscoroutinefunction(member) != is_async:
            kind = "async def (an AsyncClient)" if is_async else "def (a blocking Client)"
            raise MachineError(f"{protocol.__name__}.{attr}: must be {kind}")


__all__ = [
    "AsyncMachineProxy",
    "MachineLike",
    "MachineProxy",
    "check_args",
    "declared_ops_of",
    "proxy",
]
