"""Raft peer messages on the wire (DESIGN §5).

A peer message travels as an envelope whose ``kind`` is the message's msgspec
tag (``AppendEntries``, ``PreVoteResp``, ...) and whose ``payload`` is the
struct's fields. Encoding a tagged struct writes its ``kind`` into the payload
too; decoding accepts the payload with or without it (msgspec checks a present
tag against the expected one), so a hand-written or older peer that omits it
is still understood, and a payload whose ``kind`` contradicts the envelope's is
refused.

A peer link opens with a handshake (``security/peer_auth.py``): the listener
sends ``PeerChallenge`` (its node id, its cluster id, a nonce), the dialer
answers ``Hello`` (its node id and cluster id, its own nonce, a proof, and the
peer address it listens on), and the listener accepts with ``PeerWelcome``
(its proof) or refuses with ``PeerRefused`` (a reason) and closes. Only after
that are Raft messages read, and each must come from the node that
authenticated.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, TypeVar

import msgspec

from resonetics import limits
from resonetics.errors import BadRequest
from resonetics.raft.messages import (
    MESSAGE_TYPES,
    AppendEntries,
    InstallSnapshot,
    Message,
    kind_of,
)
from resonetics.raft.packing import RawEntry, from_raw
from resonetics.wire.envelope import Envelope, encode_envelope
from resonetics.wire.validation import bad_request_from

HELLO_KIND: Final = "Hello"
CHALLENGE_KIND: Final = "PeerChallenge"
WELCOME_KIND: Final = "PeerWelcome"
REFUSED_KIND: Final = "PeerRefused"

_T = TypeVar("_T")


NodeIdField = Annotated[str, msgspec.Meta(min_length=1, max_length=limits.NODE_ID_CHARS_MAX)]
_Nonce = Annotated[str, msgspec.Meta(max_length=limits.PEER_NONCE_CHARS_MAX)]
_Proof = Annotated[str, msgspec.Meta(max_length=limits.PEER_PROOF_CHARS_MAX)]
_Text = Annotated[str, msgspec.Meta(max_length=limits.PEER_REASON_CHARS_MAX)]
_Machine = Annotated[str, msgspec.Meta(max_length=limits.MACHINE_NAME_BYTES_MAX)]


class PeerChallenge(msgspec.Struct, frozen=True, kw_only=True):
    """First line the listener writes on a peer connection: who it is, and a fresh nonce."""

    node_id: NodeIdField
    cluster: _Nonce
    nonce: _Nonce
    #: The state machine the listener serves ("": a node that predates the field, kv).
    machine: _Machine = ""


class Hello(msgspec.Struct, frozen=True, kw_only=True):
    """The dialer's answer: who is calling, for which cluster, and its proof.

    ``address`` is the peer address the dialer listens on: a node outside every
    configuration (joining) uses it to answer the leader that dials it, and
    nothing else (an address enters the configuration only by ``member add``).
    """

    node_id: NodeIdField
    cluster: _Nonce = ""
    nonce: _Nonce = ""
    proof: _Proof = ""
    address: _Text = ""
    #: The state machine the dialer serves ("": a node that predates the field, kv).
    machine: _Machine = ""


class PeerWelcome(msgspec.Struct, frozen=True, kw_only=True):
    """The listener accepts the link, proving it holds the key too."""

    proof: _Proof = ""


class PeerRefused(msgspec.Struct, frozen=True, kw_only=True):
    """The listener refuses the link; it closes the connection after this line."""

    reason: _Text


def _with_raw_entries(cls: type[AppendEntries]) -> type[msgspec.Struct]:
    """``cls`` field for field, its entries decoded as ``RawEntry`` (client data left as
    the leader's bytes). Built from ``cls`` itself, so a field added to AppendEntries
    is never dropped on the way in."""
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for f in msgspec.structs.fields(cls):
        type_ = list[RawEntry] if f.name == "entries" else f.type
        if f.default is not msgspec.NODEFAULT:
            fields.append((f.name, type_, f.default))
        elif f.default_factory is not msgspec.NODEFAULT:
            fields.append((f.name, type_, msgspec.field(default_factory=f.default_factory)))
        else:
            fields.append((f.name, type_))
    config = cls.__struct_config__
    return msgspec.defstruct(
        f"Raw{cls.__name__}",
        fields,
        kw_only=True,
        frozen=True,
        tag_field=config.tag_field,
        tag=config.tag,
    )


_APPEND_KIND: Final = next(k for k, cls in MESSAGE_TYPES.items() if cls is AppendEntries)
_APPEND_FIELDS: Final = msgspec.structs.fields(AppendEntries)
#: One decoder per kind, built once (the hot path decodes AppendEntries per batch);
#: AppendEntries' keeps client data as the leader's bytes (``_append_entries``).
_DECODERS: Final[dict[str, msgspec.json.Decoder[Any]]] = {
    kind: msgspec.json.Decoder(_with_raw_entries(AppendEntries) if kind == _APPEND_KIND else cls)
    for kind, cls in MESSAGE_TYPES.items()
}
_HELLO_DECODER: Final = msgspec.json.Decoder(Hello)

#: Every kind a peer link may carry.
PEER_KINDS: Final = frozenset(MESSAGE_TYPES) | {HELLO_KIND}


def encode_peer(msg: Message, t: int) -> bytes:
    """One line carrying ``msg``; its envelope ``kind`` is the message's tag."""
    return encode_envelope(kind_of(msg), msg, t)


def decode_peer(env: Envelope) -> Message:
    """The Raft message in ``env``; ``BadRequest`` for an unknown kind or bad fields."""
    decoder = _DECODERS.get(env.kind)
    if decoder is None:
        raise BadRequest("kind", f"unknown peer message kind {env.kind!r}")
    decoded = _decode(decoder, env)
    msg: Message = _append_entries(decoded) if env.kind == _APPEND_KIND else decoded
    _check_bounds(msg)
    return msg


def _append_entries(raw: Any) -> AppendEntries:
    """The core's AppendEntries: client entries packed as the bytes the leader sent (the
    chain is checked over them, and they are logged and applied without being decoded
    into dicts and encoded again: ``raft/packing.py``), other entries decoded."""
    values = {f.name: getattr(raw, f.name) for f in _APPEND_FIELDS}
    values["entries"] = [from_raw(e) for e in raw.entries]
    return AppendEntries(**values)


def _check_bounds(msg: Message) -> None:
    """Peer messages within what a well-behaved node sends (``limits.PEER_*``).

    The line's size and nesting were bounded before decoding; these are the
    counts a valid line could still carry past what any node would send.
    """
    for field, node in (("payload.src", msg.src), ("payload.dst", msg.dst)):
        if len(node) > limits.NODE_ID_CHARS_MAX:
            raise BadRequest(field, f"longer than {limits.NODE_ID_CHARS_MAX} characters")
    if isinstance(msg, AppendEntries) and len(msg.entries) > limits.PEER_ENTRIES_MAX:
        raise BadRequest(
            "payload.entries", f"{len(msg.entries)} entries, more than {limits.PEER_ENTRIES_MAX}"
        )
    if isinstance(msg, InstallSnapshot) and len(msg.data) > limits.SNAPSHOT_CHUNK_CHARS_MAX:
        raise BadRequest(
            "payload.data",
            f"chunk of {len(msg.data)} characters, more than {limits.SNAPSHOT_CHUNK_CHARS_MAX}",
        )


def encode_hello(hello: Hello, t: int) -> bytes:
    return encode_envelope(HELLO_KIND, hello, t)


def decode_hello(env: Envelope) -> Hello:
    """The ``Hello`` in ``env``; ``BadRequest`` when the link opened with anything else."""
    if env.kind != HELLO_KIND:
        raise BadRequest("kind", f"a peer link must open with {HELLO_KIND!r}, got {env.kind!r}")
    hello = _decode(_HELLO_DECODER, env)
    if not hello.node_id:
        raise BadRequest("payload.node_id", "must be a non-empty string")
    if len(hello.node_id) > limits.NODE_ID_CHARS_MAX:
        raise BadRequest("payload.node_id", f"longer than {limits.NODE_ID_CHARS_MAX} characters")
    return hello


_HANDSHAKE_DECODERS: Final[dict[str, msgspec.json.Decoder[object]]] = {
    CHALLENGE_KIND: msgspec.json.Decoder(PeerChallenge),
    WELCOME_KIND: msgspec.json.Decoder(PeerWelcome),
    REFUSED_KIND: msgspec.json.Decoder(PeerRefused),
}


def decode_handshake(env: Envelope, kind: str) -> object:
    """The handshake line ``kind`` in ``env`` (``PeerRefused`` is always accepted too)."""
    if env.kind not in (kind, REFUSED_KIND):
        raise BadRequest("kind", f"expected {kind!r} in the peer handshake, got {env.kind!r}")
    return _decode(_HANDSHAKE_DECODERS[env.kind], env)


def _decode(decoder: msgspec.json.Decoder[_T], env: Envelope) -> _T:
    try:
        return decoder.decode(env.payload)
    except msgspec.DecodeError as exc:
        raise bad_request_from(exc, prefix="payload", root="payload") from None


__all__ = [
    "CHALLENGE_KIND",
    "HELLO_KIND",
    "REFUSED_KIND",
    "WELCOME_KIND",
    "PeerChallenge",
    "PeerRefused",
    "PeerWelcome",
    "decode_handshake",
    "PEER_KINDS",
    "Hello",
    "decode_hello",
    "decode_peer",
    "encode_hello",
    "encode_peer",
]
