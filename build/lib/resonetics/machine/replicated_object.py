"""A class whose marked methods become a replicated state machine: ``ReplicatedObject``.

Theory of operation
-------------------
A subclass declares its state as annotated class attributes with defaults and
marks its methods::

    class Counter(ReplicatedObject):
        value: int = 0

        @command
        def incr(self, by: int = 1) -> int:
            self.value += by
            return self.value

        @query
        def get(self) -> int:
            return self.value

At class creation (``__init_subclass__``) the class is turned into a
``StateMachine``:

* every ``@command``/``@query`` method becomes a declared op (``machine.ops``)
  named after the method; its parameters, which must all be annotated, become
  a generated ``msgspec.Struct`` that the gateway checks a request's ``args``
  against before anything is logged (so every replica applies checked values);
* every annotated attribute becomes a field of a generated state Struct:
  ``snapshot()`` encodes the fields with msgspec JSON (never pickle),
  ``restore()`` decodes them back. A dict keeps its insertion order through a
  snapshot (that order is itself a deterministic function of the log), so the
  encoding is not sorted; a ``set`` field is refused, because its iteration
  order is not: use a dict or a sorted list;
* ``apply`` dispatches a command to its method with ``self.index`` (the log
  index of the entry) and ``self.now_ms`` (the log time: the largest
  leader-stamped ``ts`` applied so far, so it never goes backwards across a
  leader change) set; ``read`` dispatches a query.

A subclass that defines ``__init__`` calls ``super().__init__()`` (which sets
every field to its default). Methods are plain functions: an ``async`` op is
refused, since replicas apply commands one at a time, in log order.

Anything the runtime could only discover at the first request — an untyped or
variadic argument, an op name the node uses itself, a mutable default shared
by every instance, a field type msgspec cannot encode — is a ``MachineError``
naming the class and the culprit when the class is defined.

Rejected alternative: pickling ``__dict__`` for snapshots. It would snapshot
whatever the object happens to hold (caches, sockets), differ across Python
versions, and a snapshot from a peer would be code execution.
"""

from __future__ import annotations

import inspect
import sys
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final, TypeVar, overload

import msgspec

from resonetics.errors import MachineError, StorageCorruption
from resonetics.machine.base import StateMachine
from resonetics.machine.ops import MachineOp, OpKind
from resonetics.machine.ops import command as command_op
from resonetics.machine.ops import query as query_op

F = TypeVar("F", bound=Callable[..., Any])

#: Names a subclass may not use for a field: the machine's own attributes.
_RESERVED_FIELDS: Final = frozenset(
    {"name", "ops", "read_ops", "model", "index", "now_ms", "sim_ops"}
)
#: Methods of the machine itself: an op of that name would replace them.
_RESERVED_OPS: Final = frozenset({"apply", "read", "snapshot", "restore", "sim_ops", "model"})
#: Defaults that one instance could change under every other one.
_MUTABLE: Final = (list, dict, set, bytearray)
#: What ``msgspec.field(...)`` returns (a default or a default factory).
_FIELD: Final = type(msgspec.field())


@dataclass(frozen=True, slots=True)
class _Mark:
    """What ``@command``/``@query`` record on a method."""

    kind: OpKind
    name: str | None
    key_arg: str | None


_MARK: Final = "__resonetics_op__"


@overload
def command(fn: F, /) -> F: ...
@overload
def command(*, name: str | None = None, key_arg: str | None = None) -> Callable[[F], F]: ...
def command(fn: Any = None, /, *, name: str | None = None, key_arg: str | None = None) -> Any:
    """Mark a method as a command: logged, applied once per request on every replica."""
    return _mark("command", fn, name, key_arg)


@overload
def query(fn: F, /) -> F: ...
@overload
def query(*, name: str | None = None, key_arg: str | None = None) -> Callable[[F], F]: ...
def query(fn: Any = None, /, *, name: str | None = None, key_arg: str | None = None) -> Any:
    """Mark a method as a query: never logged, served from applied state (linearizable
    by default; a request may ask for ``consistency`` ``lease`` or ``stale``)."""
    return _mark("query", fn, name, key_arg)


def _mark(kind: OpKind, fn: Any, name: str | None, key_arg: str | None) -> Any:
    def decorate(f: Any) -> Any:
        if not callable(f):
            raise MachineError(f"@{kind} applies to a method, not {f!r}")
        setattr(f, _MARK, _Mark(kind, name, key_arg))
        return f

    return decorate if fn is None else decorate(fn)


@dataclass(frozen=True, slots=True)
class _Method:
    """One op: the method's name, its arg struct and the parameter names in order."""

    attr: str
    args: type[msgspec.Struct]
    params: tuple[str, ...]


class _Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """A snapshot: the log time and the fields (as the class's generated state struct)."""

    now_ms: int
    state: msgspec.Raw


_ENVELOPE_DECODER: Final = msgspec.json.Decoder(_Envelope)
_ENCODER: Final = msgspec.json.Encoder()


class ReplicatedObject(StateMachine):
    """Base class of a replicated object (see the module docstring)."""

    #: The declared fields: name -> (type, default or default factory). Per class.
    _fields: ClassVar[dict[str, tuple[Any, Any]]] = {}
    _state_type: ClassVar[type[msgspec.Struct] | None] = None
    _state_decoder: ClassVar[msgspec.json.Decoder[Any] | None] = None
    _methods: ClassVar[dict[str, _Method]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        methods, ops = _collect_ops(cls)
        cls._methods = methods
        cls.ops = tuple(ops)
        cls.read_ops = frozenset(op.name for op in ops if op.kind == "query")
        cls._fields = _collect_fields(cls)
        state = msgspec.defstruct(
            f"{cls.__name__}State",
            [(n, t) for n, (t, _) in cls._fields.items()],
            kw_only=True,
            forbid_unknown_fields=True,
        )
        try:
            cls._state_decoder = msgspec.json.Decoder(state)
        except TypeError as exc:  # a type msgspec cannot decode
            raise MachineError(f"{_qual(cls)}: unsupported field type ({exc})") from None
        cls._state_type = state

    def __init__(self) -> None:
        #: The log index of the command being applied (0 before any).
        self.index = 0
        #: Log time (ms): the largest leader-stamped ``ts`` applied so far.
        self.now_ms = 0
        for field, (_, default) in type(self)._fields.items():
            setattr(self, field, _fresh(default))

    # --- StateMachine --------------------------------------------------------------------
    def apply(self, index: int, command: Any) -> Any:
        method = type(self)._methods[command["op"]]
        self.index = index
        ts = command.get("ts")
        if isinstance(ts, int) and ts > self.now_ms:
            self.now_ms = ts
        return self._call(method, command.get("args") or {})

    def read(self, op: str, args: Mapping[str, Any]) -> Any:
        return self._call(type(self)._methods[op], args)

    def _call(self, method: _Method, args: Mapping[str, Any]) -> Any:
        values = msgspec.convert(dict(args), type=method.args)
        bound = getattr(self, method.attr)
        return bound(**{p: getattr(values, p) for p in method.params})

    def snapshot(self) -> bytes:
        cls = type(self)
        assert cls._state_type is not None, "ReplicatedObject must be subclassed"
        state = cls._state_type(**{f: getattr(self, f) for f in cls._fields})
        return _ENCODER.encode({"now_ms": self.now_ms, "state": state})

    def restore(self, data: bytes) -> None:
        cls = type(self)
        assert cls._state_decoder is not None, "ReplicatedObject must be subclassed"
        try:  # all or nothing: nothing is changed before the whole state has decoded
            envelope = _ENVELOPE_DECODER.decode(data)
            state = cls._state_decoder.decode(envelope.state)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise StorageCorruption(
                "snapshot", f"state of machine {_qual(cls)} does not match its fields: {exc}"
            ) from None
        self.now_ms = envelope.now_ms
        for field in cls._fields:
            setattr(self, field, getattr(state, field))


# --- building the declaration ------------------------------------------------------------
def _qual(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _collect_ops(cls: type) -> tuple[dict[str, _Method], list[MachineOp]]:
    """The marked methods of ``cls`` and its bases, as ops (refusing bad declarations)."""
    from resonetics.wire.machine_ops import HOST_SPECS  # the node's own op names

    methods: dict[str, _Method] = {}
    ops: list[MachineOp] = []
    seen: set[str] = set()
    for klass in cls.__mro__:
        for attr, fn in vars(klass).items():
            mark = getattr(fn, _MARK, None)
            if not isinstance(mark, _Mark) or attr in seen:
                continue
            seen.add(attr)
            op_name = mark.name or attr
            where = f"{_qual(cls)}.{attr}"
            if op_name in HOST_SPECS or op_name in _RESERVED_OPS:
                raise MachineError(f"{where}: op name {op_name!r} is a name the node uses itself")
            if op_name in methods:
                raise MachineError(f"{where}: op {op_name!r} declared twice")
            args, params = _args_struct(cls, attr, fn)
            declare = command_op if mark.kind == "command" else query_op
            try:
                op = declare(op_name, args, key_arg=mark.key_arg)
            except MachineError as exc:
                raise MachineError(f"{where}: {exc}") from None
            if mark.key_arg is not None and mark.key_arg not in params:
                raise MachineError(f"{where}: key_arg {mark.key_arg!r} is not an argument")
            methods[op_name] = _Method(attr, args, params)
            ops.append(op)
    ops.sort(key=lambda o: o.name)  # one order on every replica and in every listing
    return methods, ops


def _args_struct(cls: type, attr: str, fn: Any) -> tuple[type[msgspec.Struct], tuple[str, ...]]:
    """The arg struct of method ``attr``: one field per parameter, typed by its annotation."""
    where = f"{_qual(cls)}.{attr}"
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        raise MachineError(
            f"{where}: an async method cannot be an op (every replica applies commands "
            "one at a time, in log order, without awaiting)"
        )
    try:
        hints = typing.get_type_hints(fn, include_extras=True)  # keep msgspec.Meta bounds
    except Exception as exc:  # an annotation naming something that does not exist
        raise MachineError(f"{where}: cannot resolve its annotations ({exc})") from None
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    params: list[str] = []
    for i, p in enumerate(inspect.signature(fn).parameters.values()):
        if i == 0:
            continue  # self
        if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            raise MachineError(f"{where}: argument {p.name!r}: *args/**kwargs cannot be typed")
        if p.name not in hints:
            raise MachineError(f"{where}: argument {p.name!r} has no type annotation")
        if p.default is p.empty:
            fields.append((p.name, hints[p.name]))
        else:
            _check_default(f"{where}: argument {p.name!r}", p.default)
            fields.append((p.name, hints[p.name], p.default))
        params.append(p.name)
    struct = msgspec.defstruct(
        f"{cls.__name__}_{attr}_args",
        fields,
        kw_only=True,
        frozen=True,
        forbid_unknown_fields=True,
    )
    _check_type(where, struct)
    return struct, tuple(params)


def _collect_fields(cls: type) -> dict[str, tuple[Any, Any]]:
    """The annotated, non-ClassVar attributes of ``cls`` and its bases, with defaults."""
    fields: dict[str, tuple[Any, Any]] = {}
    for klass in reversed(cls.__mro__):
        if klass is ReplicatedObject or not issubclass(klass, ReplicatedObject):
            continue
        own = inspect.get_annotations(klass)
        for field, annotation in own.items():
            tp = _resolve(cls, klass, field, annotation)
            if typing.get_origin(tp) is ClassVar or tp is ClassVar or field.startswith("_"):
                continue
            where = f"{_qual(cls)}.{field}"
            if field in _RESERVED_FIELDS:
                raise MachineError(f"{where}: {field!r} is a name the machine uses itself")
            if field not in klass.__dict__:
                raise MachineError(f"{where}: a field needs a default (the initial state)")
            default = klass.__dict__[field]
            if isinstance(default, _FIELD):
                if default.default_factory is msgspec.NODEFAULT:
                    if default.default is msgspec.NODEFAULT:
                        raise MachineError(f"{where}: a field needs a default (the initial state)")
                    _check_default(where, default.default)
            else:
                _check_default(where, default)
            _check_type(where, tp)
            fields[field] = (tp, default)
    return fields


def _resolve(cls: type, klass: type, field: str, annotation: Any) -> Any:
    """One annotation of ``klass``, evaluated where it was written (``from __future__
    import annotations`` makes them strings). Only the class's own annotations: the
    bases' may name what exists only for type checkers."""
    if not isinstance(annotation, str):
        return annotation
    module = sys.modules.get(klass.__module__)
    namespace = dict(vars(module)) if module is not None else {}
    try:
        return eval(annotation, namespace, dict(vars(klass)))
    except Exception as exc:
        raise MachineError(
            f"{_qual(cls)}.{field}: cannot resolve annotation {annotation!r} ({exc})"
        ) from None


def _check_default(where: str, default: Any) -> None:
    if isinstance(default, _MUTABLE):
        raise MachineError(
            f"{where}: mutable default {default!r} would be shared by every instance; "
            f"use msgspec.field(default_factory={type(default).__name__})"
        )


def _check_type(where: str, tp: Any) -> None:
    """Refuse a type msgspec cannot encode, or one whose encoding is not deterministic."""
    try:
        info = msgspec.inspect.type_info(tp)
    except TypeError as exc:
        raise MachineError(f"{where}: unsupported type {tp!r} ({exc})") from None
    for node in _walk(info):
        if isinstance(node, msgspec.inspect.CustomType):
            raise MachineError(f"{where}: unsupported type {node.cls.__name__!r} (not msgspec)")
        if isinstance(node, (msgspec.inspect.SetType, msgspec.inspect.FrozenSetType)):
            raise MachineError(
                f"{where}: unsupported type set: its iteration order differs between "
                "replicas; use a dict or a sorted list"
            )


def _walk(info: msgspec.inspect.Type) -> list[msgspec.inspect.Type]:
    """Every type node under ``info`` (struct fields included; recursion guarded)."""
    out: list[msgspec.inspect.Type] = []
    stack = [info]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        out.append(node)
        for attr in ("item_type", "key_type", "value_type", "type"):
            child = getattr(node, attr, None)
            if isinstance(child, msgspec.inspect.Type):
                stack.append(child)
        for child in getattr(node, "item_types", ()) or getattr(node, "types", ()):
            stack.append(child)
        for field in getattr(node, "fields", ()):
            stack.append(field.type)
    return out


def _fresh(default: Any) -> Any:
    """A field's initial value: the default, or a new one from its factory."""
    if isinstance(default, _FIELD):
        if default.default_factory is not msgspec.NODEFAULT:
            return default.default_factory()
        return default.default
    return default


__all__ = ["ReplicatedObject", "command", "query"]
