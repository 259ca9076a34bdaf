"""Client requests and responses: types, the op table, and validation (DESIGN §5).

Theory of operation
-------------------
``validate_request(env)`` is the gateway for client input (STYLE habit 7).
It decodes the payload in two typed passes — the request's head
(``client_id``, ``request_id``, ``op``, raw ``args``), then ``args`` with the
op's own struct — so every type error names its exact field
(``args.k: must be a string, got int``). What comes out is a ``ClientRequest``
whose ``args`` is a plain dict with defaults filled in: exactly the JSON that
goes into the replicated log, so every replica applies the same, already
checked command.

Unknown fields in the payload's head are ignored (the protocol grows by adding
optional fields); unknown *args* are refused, because a misspelled argument
would otherwise be silently replaced by its default.

Size errors (a key or value past its limit) are ``TooLarge``; every other
defect is ``BadRequest``. Nothing else escapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal, Protocol

import msgspec

from resonetics import limits
from resonetics.errors import BadRequest, ClientError, LineTooLong, NotLeader, TooLarge
from resonetics.wire import codes
from resonetics.wire.codes import (
    BAD_REQUEST,
    NOT_LEADER,
    OK,
    RATE_LIMITED,
    TIMEOUT,
    TOO_LARGE,
    UNAVAILABLE,
)
from resonetics.wire.envelope import Envelope, encode_envelope
from resonetics.wire.shape import check_value, openers_bound
from resonetics.wire.txn import TxnCompareArg, TxnOpArg, check_txn
from resonetics.wire.validation import bad_request_from

REQUEST_KIND: Final = "ClientRequest"
RESPONSE_KIND: Final = "ClientResponse"

Consistency = Literal["linearizable", "lease", "stale"]
ClientId = Annotated[str, msgspec.Meta(min_length=1, max_length=limits.CLIENT_ID_CHARS_MAX)]
RequestId = Annotated[str, msgspec.Meta(min_length=1, max_length=limits.REQUEST_ID_CHARS_MAX)]
ScanLimit = Annotated[int, msgspec.Meta(ge=1, le=limits.SCAN_LIMIT_MAX)]
#: Session ids, seqs and ack marks: positive, and exact in every JSON reader (2**53).
SessionNumber = Annotated[int, msgspec.Meta(ge=1, le=2**53)]
SCAN_LIMIT_DEFAULT: Final = 1000
ScanIndex = Annotated[int, msgspec.Meta(ge=0, le=2**53)]
#: A lease's id: the log index of its grant.
LeaseId = Annotated[int, msgspec.Meta(ge=1, le=2**53)]
LeaseTtlMs = Annotated[int, msgspec.Meta(ge=limits.LEASE_TTL_MS_MIN, le=limits.LEASE_TTL_MS_MAX)]
LeaseListLimit = Annotated[int, msgspec.Meta(ge=1, le=limits.LEASE_LIST_MAX)]
_CONSISTENCIES: Final = "'linearizable', 'lease' or 'stale'"


class ClientRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A validated request; ``args`` holds the op's arguments with defaults filled in."""

    client_id: str
    request_id: str
    op: str
    args: dict[str, Any] = msgspec.field(default_factory=dict)
    #: Sequenced sessions (dissertation §6.3; all three or none, on writes): the id
    #: ``session_open`` returned, this request's sequence number, and the lowest seq
    #: the client still awaits (every result below it may be discarded).
    session: int | None = None
    seq: int | None = None
    ack_below: int | None = None

    def session_fields(self) -> dict[str, int] | None:
        """``{"session", "seq", "ack_below"}`` to carry into the log, or None (legacy)."""
        if self.session is None or self.seq is None or self.ack_below is None:
            return None
        return {"session": self.session, "seq": self.seq, "ack_below": self.ack_below}


class ClientResponse(msgspec.Struct, frozen=True, kw_only=True):
    """The answer to one request. ``message`` (human-readable) is sent only on errors."""

    ok: bool
    code: str
    result: Any = None
    dedup: bool = False
    message: str | msgspec.UnsetType = msgspec.UNSET


# --- per-op argument structs ----------------------------------------------------
class _Args(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class KvSetArgs(_Args, frozen=True, kw_only=True):
    k: str
    v: Any
    #: Attach the key to this lease (None: detach it from any lease).
    lease: LeaseId | None = None


class KvGetArgs(_Args, frozen=True, kw_only=True):
    k: str
    consistency: Consistency = "linearizable"
    #: Also answer the key's create_index, mod_index and version.
    meta: bool = False


class KvDeleteArgs(_Args, frozen=True, kw_only=True):
    k: str


class KvCasArgs(_Args, frozen=True, kw_only=True):
    """``expected`` null means "only if the key is absent"."""

    k: str
    expected: Any
    v: Any


class KvScanArgs(_Args, frozen=True, kw_only=True):
    prefix: str
    limit: ScanLimit = SCAN_LIMIT_DEFAULT
    consistency: Consistency = "linearizable"
    #: Continue strictly after this key (a page's ``next``).
    after: str | None = None
    #: Refuse (SCAN_CHANGED) a page that differs from the state at this index.
    at_index: ScanIndex | None = None
    #: Rows are ``[key, value, create_index, mod_index, version]``.
    meta: bool = False


class KvTxnArgs(_Args, frozen=True, kw_only=True):
    """``kv_txn``: compares, then ``then`` or ``else`` (``machine/txn.py``, ``wire/txn.py``)."""

    compare: list[TxnCompareArg] = msgspec.field(default_factory=list)
    then: list[TxnOpArg] = msgspec.field(default_factory=list)
    otherwise: list[TxnOpArg] = msgspec.field(default_factory=list, name="else")


class LeaseGrantArgs(_Args, frozen=True, kw_only=True):
    ttl_ms: LeaseTtlMs


class LeaseRevokeArgs(_Args, frozen=True, kw_only=True):
    id: LeaseId
    #: The prefix every attached key must lie in (authorization judges ``write`` on it).
    within: str = ""


class LeaseIdArgs(_Args, frozen=True, kw_only=True):
    """``lease_keepalive`` and ``lease_info``: served by the leader (``runtime/leases.py``)."""

    id: LeaseId


class LeaseListArgs(_Args, frozen=True, kw_only=True):
    after: ScanIndex = 0
    limit: LeaseListLimit = limits.LEASE_LIST_MAX
    consistency: Consistency = "linearizable"


class StatusArgs(_Args, frozen=True, kw_only=True):
    pass


class SessionOpenArgs(_Args, frozen=True, kw_only=True):
    """``session_open``: start a sequenced session; the result carries its ``session`` id."""


#: A log index a watch may start from: positive, exact in every JSON reader (2**53).
WatchIndex = Annotated[int, msgspec.Meta(ge=1, le=2**53)]


class WatchArgs(_Args, frozen=True, kw_only=True):
    """``watch``: stream the changes under ``prefix`` from ``from_index`` on (None: the
    changes after this node's applied index); ``server/watch.py``."""

    prefix: str
    from_index: WatchIndex | None = None


class WatchCancelArgs(_Args, frozen=True, kw_only=True):
    """``watch_cancel``: end the watch this connection opened with envelope id ``watch``."""

    watch: int | str


NodeIdArg = Annotated[str, msgspec.Meta(min_length=1, max_length=limits.CLIENT_ID_CHARS_MAX)]
AddressArg = Annotated[str, msgspec.Meta(pattern=r"^[^\s]+:[0-9]{1,5}$")]


class MemberListArgs(_Args, frozen=True, kw_only=True):
    pass


class MemberAddArgs(_Args, frozen=True, kw_only=True):
    """Add ``node`` at peer ``address`` (HOST:PORT) as a learner (``member_add``: promoted
    later); ``client_address`` is where it serves clients (named in hints and member list)."""

    node: NodeIdArg
    address: AddressArg
    client_address: AddressArg | None = None


class MemberNodeArgs(_Args, frozen=True, kw_only=True):
    node: NodeIdArg


class LeaderTransferArgs(_Args, frozen=True, kw_only=True):
    to: NodeIdArg


class BackupBeginArgs(_Args, frozen=True, kw_only=True):
    pass


class BackupChunkArgs(_Args, frozen=True, kw_only=True):
    """The next bytes of backup ``backup`` (an id ``backup_begin`` returned) from ``offset``."""

    backup: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    offset: Annotated[int, msgspec.Meta(ge=0)]


class ChainHashArgs(_Args, frozen=True, kw_only=True):
    """The chain hash this node holds at ``index`` (null when outside its log)."""

    index: Annotated[int, msgspec.Meta(ge=0)]


#: What an op does, for authorization (security/authz.py): ``read``/``write`` act on
#: the key or prefix in ``OpSpec.key_arg``; ``monitor`` reads cluster state
#: (``status``, ``member_list``: roles, terms, addresses, no user data); ``admin``
#: changes the cluster (membership, leadership; snapshots and backups when they
#: become ops).
#: ``session`` is ``session_open``: a write through the log that touches no key (allowed
#: to anyone who may write some key).
#: ``watch`` is a stream of changes served by the node itself (``watch``: a read of its
#: ``prefix``; ``watch_cancel``, with no key: ends one of the connection's own watches).
#: ``lease`` is ``lease_keepalive``/``lease_info``: served by the leader's lease keeper,
#: never logged (a write grant needed).
OpCategory = Literal["write", "read", "admin", "monitor", "session", "watch", "lease"]


class ArgsDecoder(Protocol):
    """What ``OpSpec.decoder`` must do: decode an op's JSON args."""

    def decode(self, buf: bytes, /) -> Any: ...


class _LazyDecoder:
    """A ``msgspec.json.Decoder`` of ``args_type``, built on first use.

    Building a decoder resolves every annotation of the struct (typing machinery,
    string annotations evaluated): about 18 ms for the whole op table, paid by
    every process that imports this module, a one-shot ``resonetics kv get``
    included, though a client decodes no op's args at all.
    """

    __slots__ = ("_args_type", "_decoder")

    def __init__(self, args_type: type[msgspec.Struct]) -> None:
        self._args_type = args_type
        self._decoder: msgspec.json.Decoder[Any] | None = None

    def decode(self, buf: bytes, /) -> Any:
        decoder = self._decoder
        if decoder is None:
            decoder = self._decoder = msgspec.json.Decoder(self._args_type)
        return decoder.decode(buf)


@dataclass(frozen=True, slots=True)
class OpSpec:
    """One op: its argument struct, its category, and which argument names its key.

    ``key_arg`` is the argument holding the key (``k``) or, for ``kv_scan``, the
    prefix: the one place dispatch, authorization and docs learn what an op touches.
    """

    name: str
    args_type: type[_Args]
    category: OpCategory
    decoder: ArgsDecoder
    key_arg: str | None = None
    #: A served machine's own op (``wire/machine_ops.py``): its args are a JSON object
    #: checked against ``machine_args`` (None: any object), not a wire struct.
    machine_op: bool = False
    machine_args: type[msgspec.Struct] | None = None
    #: The wire names of ``machine_args``' fields (computed once: ``structs.fields`` is slow).
    machine_fields: frozenset[str] = frozenset()
    #: The op touches several keys named inside its args (``kv_txn``): authorization
    #: judges every one of them (``security/authz.py``).
    multi_key: bool = False


def _spec(
    name: str, args_type: type[_Args], category: OpCategory, key_arg: str | None = None
) -> OpSpec:
    return OpSpec(name, args_type, category, _LazyDecoder(args_type), key_arg)


#: Every op a client may send: THE op table (dispatch, authorization, docs).
OPS: Final[dict[str, OpSpec]] = {
    spec.name: spec
    for spec in (
        _spec("kv_set", KvSetArgs, "write", "k"),
        _spec("kv_delete", KvDeleteArgs, "write", "k"),
        _spec("kv_cas", KvCasArgs, "write", "k"),
        _spec("session_open", SessionOpenArgs, "session"),
        _spec("kv_get", KvGetArgs, "read", "k"),
        _spec("kv_scan", KvScanArgs, "read", "prefix"),
        _spec("status", StatusArgs, "monitor"),
        _spec("member_list", MemberListArgs, "monitor"),
        _spec("member_add", MemberAddArgs, "admin"),
        _spec("member_add_learner", MemberAddArgs, "admin"),
        _spec("member_promote", MemberNodeArgs, "admin"),
        _spec("member_remove", MemberNodeArgs, "admin"),
        _spec("leader_transfer", LeaderTransferArgs, "admin"),
        _spec("backup_begin", BackupBeginArgs, "admin"),
        _spec("backup_chunk", BackupChunkArgs, "admin"),
        _spec("chain_hash", ChainHashArgs, "monitor"),
        OpSpec("kv_txn", KvTxnArgs, "write", _LazyDecoder(KvTxnArgs), multi_key=True),
        _spec("watch", WatchArgs, "watch", "prefix"),
        _spec("watch_cancel", WatchCancelArgs, "watch"),
        _spec("lease_grant", LeaseGrantArgs, "write"),
        _spec("lease_revoke", LeaseRevokeArgs, "write", "within"),
        _spec("lease_list", LeaseListArgs, "read"),
        _spec("lease_keepalive", LeaseIdArgs, "lease"),
        _spec("lease_info", LeaseIdArgs, "lease"),
    )
}
WRITE_OPS: Final = frozenset(n for n, s in OPS.items() if s.category == "write")
#: Read and write ops that name no key: a lease's grant and the lease listing (any
#: write grant; ``security/authz.py``). Every other read or write op has a ``key_arg``.
KEYLESS_OPS: Final = frozenset({"lease_grant", "lease_list"})
#: Ops served by the leader's lease keeper, never logged (``runtime/leases.py``).
LEASE_OPS: Final = frozenset(n for n, s in OPS.items() if s.category == "lease")
#: Ops that go through the log as client commands: the key writes and ``session_open``.
LOGGED_OPS: Final = WRITE_OPS | frozenset(n for n, s in OPS.items() if s.category == "session")
READ_OPS: Final = frozenset(n for n, s in OPS.items() if s.category == "read")
ADMIN_OPS: Final = frozenset(n for n, s in OPS.items() if s.category == "admin")
MONITOR_OPS: Final = frozenset(n for n, s in OPS.items() if s.category == "monitor")
#: Streams the node serves itself (``server/watch.py``): ``watch`` and ``watch_cancel``.
WATCH_OPS: Final = frozenset(n for n, s in OPS.items() if s.category == "watch")


class _Head(msgspec.Struct, frozen=True, kw_only=True):
    client_id: ClientId
    request_id: RequestId
    op: str
    args: msgspec.Raw = msgspec.Raw(b"{}")
    session: SessionNumber | None = None
    seq: SessionNumber | None = None
    ack_below: SessionNumber | None = None


_HEAD_DECODER: Final = msgspec.json.Decoder(_Head)
_RESPONSE_DECODER: Final = msgspec.json.Decoder(ClientResponse)
_VALUE_ENCODER: Final = msgspec.json.Encoder()


def validate_request(env: Envelope, ops: OpTable | None = None) -> ClientRequest:
    """The validated request in ``env``; ``BadRequest`` / ``TooLarge`` naming the field.

    ``ops`` is the served machine's op table (``wire/machine_ops.op_table``); None:
    the key-value store's (``OPS``).
    """
    if env.kind != REQUEST_KIND:
        raise BadRequest("kind", f"unknown kind {env.kind!r}; expected {REQUEST_KIND!r}")
    try:
        head = _HEAD_DECODER.decode(env.payload)
    except msgspec.DecodeError as exc:
        raise bad_request_from(exc, root="payload") from None
    specs = OPS if ops is None else ops.specs
    spec = specs.get(head.op)
    if spec is None:
        known = ", ".join(sorted(specs))
        served = "" if ops is None else f" of machine {ops.machine!r}"
        raise BadRequest("op", f"unknown op {head.op!r}{served}; expected one of {known}")
    if spec.machine_op:
        return _machine_request(head, spec, len(env.payload))
    try:
        args = spec.decoder.decode(head.args)
    except msgspec.DecodeError as exc:
        error = bad_request_from(exc, prefix="args", root="args")
        if error.field == "args.consistency" and error.reason.startswith("invalid enum"):
            error = BadRequest(error.field, f"must be one of {_CONSISTENCIES}")
        raise error from None
    if isinstance(args, KvTxnArgs):
        check_txn(args)
    _check_sizes(args, len(head.args))
    _check_shape(args, bytes(head.args))
    _check_session_fields(head)
    request = ClientRequest(
        client_id=head.client_id,
        request_id=head.request_id,
        op=head.op,
        # A txn's nested structs become plain JSON (the log's and the machine's form).
        args=_plain_args(args),
        session=head.session,
        seq=head.seq,
        ack_below=head.ack_below,
    )
    if len(env.payload) * limits.REENCODE_GROWTH_MAX > limits.COMMAND_BYTES_MAX:
        size = len(_VALUE_ENCODER.encode(request))
        if size > limits.COMMAND_BYTES_MAX:
            raise TooLarge(f"payload: {_bytes(size)} encoded, {_over(limits.COMMAND_BYTES_MAX)}")
    return request


@dataclass(frozen=True, slots=True)
class OpTable:
    """The ops one node serves: its machine's declared ops plus the host's own.

    Built once per node from the machine's declaration (``wire/machine_ops.py``);
    validation, dispatch and authorization all read it.
    """

    machine: str
    specs: Mapping[str, OpSpec]
    #: Ops that go through the log (the machine's commands and ``session_open``).
    logged: frozenset[str]
    #: Ops served from applied state (the machine's queries).
    reads: frozenset[str]


_OBJECT_DECODER: Final = msgspec.json.Decoder(dict[str, Any])


def _machine_request(head: _Head, spec: OpSpec, payload_bytes: int) -> ClientRequest:
    """A served machine's op: args are a JSON object, checked against its struct if any.

    A query may carry ``consistency`` (the machine never sees it); unknown args are
    refused even when the machine's struct would ignore them, so a misspelled
    argument is never silently replaced by its default.
    """
    try:
        raw: dict[str, Any] = _OBJECT_DECODER.decode(head.args)
    except msgspec.DecodeError as exc:
        raise bad_request_from(exc, prefix="args", root="args") from None
    consistency = raw.pop("consistency", None) if spec.category == "read" else None
    if consistency is not None and consistency not in ("linearizable", "lease", "stale"):
        raise BadRequest("args.consistency", f"must be one of {_CONSISTENCIES}")
    args_text = bytes(head.args)
    if (
        openers_bound(args_text) > limits.JSON_DEPTH_MAX + 1
        or len(args_text) >= 2 * limits.JSON_ITEMS_MAX
    ):
        check_value("args", raw)
    args: dict[str, Any] = raw
    if spec.machine_args is not None:
        for name in raw:
            if name not in spec.machine_fields:
                raise BadRequest(f"args.{name}", "unknown field")
        try:
            value = msgspec.convert(raw, type=spec.machine_args)
        except msgspec.ValidationError as exc:
            raise bad_request_from(exc, prefix="args", root="args") from None
        args = msgspec.to_builtins(value)
    if spec.key_arg is not None:
        key = args.get(spec.key_arg)
        if not isinstance(key, str):
            raise BadRequest(f"args.{spec.key_arg}", "must be a string (the op's key)")
        _check_key_bytes(f"args.{spec.key_arg}", key)
    if consistency is not None:
        args["consistency"] = consistency
    _check_session_fields(head)
    request = ClientRequest(
        client_id=head.client_id,
        request_id=head.request_id,
        op=head.op,
        args=args,
        session=head.session,
        seq=head.seq,
        ack_below=head.ack_below,
    )
    if payload_bytes * limits.REENCODE_GROWTH_MAX > limits.COMMAND_BYTES_MAX:
        size = len(_VALUE_ENCODER.encode(request))
        if size > limits.COMMAND_BYTES_MAX:
            raise TooLarge(f"payload: {_bytes(size)} encoded, {_over(limits.COMMAND_BYTES_MAX)}")
    return request


#: Args that carry client values (``v``, ``expected``): their shape is checked.
_VALUE_ARGS: Final = (KvSetArgs, KvCasArgs)


def _check_shape(args: _Args, args_text: bytes) -> None:
    """Values nested past JSON_DEPTH_MAX or wider than JSON_ITEMS_MAX: ``BadRequest``.

    The line's depth was bounded before decoding; this names the field. The walk
    runs only when the args' text could break a limit: more openers than the depth
    limit allows, or enough bytes for a container of JSON_ITEMS_MAX items.
    """
    if not isinstance(args, _VALUE_ARGS):
        return
    if (
        openers_bound(args_text) <= limits.JSON_DEPTH_MAX + 1  # +1: the args object itself
        and len(args_text) < 2 * limits.JSON_ITEMS_MAX
    ):
        return
    if isinstance(args, KvCasArgs):
        check_value("args.expected", args.expected)
    check_value("args.v", args.v)


def _check_session_fields(head: _Head) -> None:
    """All three or none; ``ack_below <= seq`` (a request cannot acknowledge itself)."""
    present = [head.session is not None, head.seq is not None, head.ack_below is not None]
    if not any(present):
        return
    if not all(present):
        missing = [
            n for n, p in zip(("session", "seq", "ack_below"), present, strict=True) if not p
        ]
        raise BadRequest(missing[0], "session, seq and ack_below go together")
    assert head.seq is not None and head.ack_below is not None
    if head.ack_below > head.seq:
        raise BadRequest("ack_below", f"must be at most seq ({head.seq})")


#: Re-encoding a JSON value can make it at most this many times longer than its
#: text as sent: only floats grow (``9e15`` -> ``9000000000000000.0``), from at
#: least 3 bytes to at most 24; strings, ints and literals never grow.
_REENCODE_GROWTH_MAX: Final = limits.REENCODE_GROWTH_MAX


def _plain_args(args: _Args) -> dict[str, Any]:
    """The args as the log holds them: a txn's nested structs become plain JSON; a
    ``kv_set`` without a lease carries no ``lease`` field (the entry stays as it was)."""
    if isinstance(args, KvTxnArgs):
        return msgspec.to_builtins(args)  # type: ignore[no-any-return]
    plain = msgspec.structs.asdict(args)
    if isinstance(args, KvSetArgs) and args.lease is None:
        del plain["lease"]
    return plain


def _check_sizes(args: _Args, args_bytes: int) -> None:
    """Keys: non-empty, <= KEY_BYTES_MAX of UTF-8; stored values: <= VALUE_BYTES_MAX encoded.

    A value is re-encoded to measure it only when its args could be too large
    (``args_bytes`` bounds it): the common small write skips that encode.
    """
    if isinstance(args, KvScanArgs | WatchArgs):
        _check_key_bytes("args.prefix", args.prefix)
        if isinstance(args, KvScanArgs) and args.after is not None:
            _check_key_bytes("args.after", args.after)
        return
    key = getattr(args, "k", None)
    if key is None:
        return
    if not key:
        raise BadRequest("args.k", "must be a non-empty string")
    _check_key_bytes("args.k", key)
    if (
        isinstance(args, KvSetArgs | KvCasArgs)
        and args_bytes * _REENCODE_GROWTH_MAX > limits.VALUE_BYTES_MAX
    ):
        if isinstance(args, KvCasArgs):
            _check_encoded("args.expected", args.expected, limits.EXPECTED_BYTES_MAX)
        _check_encoded("args.v", args.v, limits.VALUE_BYTES_MAX)


def _check_encoded(field: str, value: Any, limit: int) -> None:
    size = len(_VALUE_ENCODER.encode(value))
    if size > limit:
        raise TooLarge(f"{field}: {_bytes(size)} encoded, {_over(limit)}")


def _bytes(size: int) -> str:
    """``size`` for a person: ``13.0 MB (13000000 bytes)``, ``812 bytes``."""
    if size < 10_000:
        return f"{size} bytes"
    if size < 10_000_000:
        return f"{size / 1000:.1f} kB ({size} bytes)"
    return f"{size / 1_000_000:.1f} MB ({size} bytes)"


def _over(limit: int) -> str:
    kib = f"{limit // 1024} KiB" if limit % 1024 == 0 else f"{limit} bytes"
    return f"over the {kib} limit"


def _check_key_bytes(field: str, key: str) -> None:
    # msgspec refuses lone surrogates while decoding, so encode() cannot fail here.
    if len(key) * 4 > limits.KEY_BYTES_MAX and len(key.encode()) > limits.KEY_BYTES_MAX:
        raise TooLarge(f"{field}: longer than {limits.KEY_BYTES_MAX} bytes of UTF-8")


# --- encoding and responses --------------------------------------------------------------
def encode_request(req: ClientRequest, t: int, id: int | str | None = None) -> bytes:
    return encode_envelope(REQUEST_KIND, req, t, id)


def encode_response(resp: ClientResponse, t: int, id: int | str | None = None) -> bytes:
    return encode_envelope(RESPONSE_KIND, resp, t, id)


def decode_response(env: Envelope) -> ClientResponse:
    """The response in ``env`` (client side); ``BadRequest`` if the server sent nonsense."""
    if env.kind != RESPONSE_KIND:
        raise BadRequest("kind", f"unknown kind {env.kind!r}; expected {RESPONSE_KIND!r}")
    try:
        return _RESPONSE_DECODER.decode(env.payload)
    except msgspec.DecodeError as exc:
        raise bad_request_from(exc, root="payload") from None


def ok_response(result: Any, *, dedup: bool = False) -> ClientResponse:
    return ClientResponse(ok=True, code=OK, result=result, dedup=dedup)


def error_response(exc: ClientError, *, node: str | None = None) -> ClientResponse:
    """The response for a typed client error; ``result`` carries the error's data."""
    result: dict[str, Any] | None = None
    if isinstance(exc, BadRequest):
        result = {"field": exc.field, "reason": exc.reason}
    elif isinstance(exc, LineTooLong):
        result = {"limit_bytes": exc.limit_bytes}
    elif isinstance(exc, NotLeader):
        result = {"term": exc.term, "node": node}
        if exc.leader_id is not None:
            result["leader"] = exc.leader_id
        if exc.leader_addr is not None:
            result["leader_addr"] = exc.leader_addr
    code = exc.code if exc.code in codes.ALL else UNAVAILABLE
    return ClientResponse(ok=False, code=code, result=result, message=str(exc))


__all__ = [
    "ADMIN_OPS",
    "BAD_REQUEST",
    "MONITOR_OPS",
    "NOT_LEADER",
    "OK",
    "OPS",
    "RATE_LIMITED",
    "READ_OPS",
    "REQUEST_KIND",
    "RESPONSE_KIND",
    "SCAN_LIMIT_DEFAULT",
    "TIMEOUT",
    "TOO_LARGE",
    "UNAVAILABLE",
    "WRITE_OPS",
    "LOGGED_OPS",
    "ClientRequest",
    "ClientResponse",
    "Consistency",
    "KvCasArgs",
    "KvDeleteArgs",
    "KvGetArgs",
    "KvScanArgs",
    "KvSetArgs",
    "KEYLESS_OPS",
    "KvTxnArgs",
    "LEASE_OPS",
    "LeaseGrantArgs",
    "LeaseIdArgs",
    "LeaseListArgs",
    "LeaseRevokeArgs",
    "LeaderTransferArgs",
    "MemberAddArgs",
    "MemberListArgs",
    "MemberNodeArgs",
    "OpCategory",
    "OpSpec",
    "OpTable",
    "SessionOpenArgs",
    "StatusArgs",
    "decode_response",
    "encode_request",
    "encode_response",
    "error_response",
    "ok_response",
    "validate_request",
    "WATCH_OPS",
    "WatchArgs",
    "WatchCancelArgs",
]
