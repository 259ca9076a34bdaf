"""The envelope every line on every connection carries (DESIGN §5).

Theory of operation
-------------------
A line is one JSON object ``{"kind", "payload", "t", "v"[, "id"]}``. Decoding is
done in two passes so that the hot path parses each byte once:

1. ``decode_envelope(line)`` checks the envelope's own fields and keeps the
   payload as ``msgspec.Raw`` (a slice of the line, not parsed into Python
   objects);
2. the layer that knows the ``kind`` (``wire.peer`` or ``wire.client``) decodes
   the raw payload straight into its typed struct, validating field types in
   the same pass.

Every failure is a typed ``errors.BadRequest`` naming the field at fault, never
a ``msgspec`` or ``UnicodeDecodeError`` leaking out.

Versioning: ``v`` is a single integer. All versions >= 1 belong to the same
major version: the protocol only evolves by adding optional fields, so a
different ``v`` is reported by ``version_differs`` (for the caller to log) and
never refused. ``v < 1`` is not a version and is refused.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from resonetics.errors import BadRequest
from resonetics.wire.shape import check_line
from resonetics.wire.validation import bad_request_from

#: The protocol version this code speaks and stamps on what it sends.
WIRE_VERSION: Final = 1
#: The oldest version of the current major version (anything below is not a version).
WIRE_VERSION_MIN: Final = 1


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """One decoded line. ``payload`` is still raw JSON (an object), parsed by its layer."""

    kind: str
    payload: msgspec.Raw
    t: int
    v: int
    id: int | str | None = None


class _OutEnvelope(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What we send; ``id`` is left out when None so requests without one stay short."""

    kind: str
    payload: Any
    t: int
    v: int
    id: int | str | None = None


# Created once: building msgspec encoders/decoders is the expensive part.
_DECODER: Final = msgspec.json.Decoder(Envelope)
_ENCODER: Final = msgspec.json.Encoder()
_NEWLINE: Final = b"\n"


def decode_envelope(line: bytes | bytearray | memoryview) -> Envelope:
    """Decode one line (with or without its trailing newline) into an ``Envelope``.

    Raises ``BadRequest`` naming the field at fault: ``line`` for bytes that are
    not one UTF-8 JSON object or are nested past ``limits.LINE_DEPTH_MAX`` (checked
    before decoding, so no decoder can recurse out of bounds), else the envelope
    field (``kind``, ``payload``, ...).
    """
    if not isinstance(line, bytes):
        line = bytes(line)
    check_line(line)
    try:
        env = _DECODER.decode(line)
    except UnicodeDecodeError as exc:
        raise BadRequest("line", f"not valid UTF-8 (byte {exc.start})") from None
    except msgspec.DecodeError as exc:
        raise bad_request_from(exc, root="line") from None
    # A Raw starts at its value's first byte, so one byte tells the JSON type.
    first = memoryview(env.payload)[:1].tobytes()
    if first != b"{":
        raise BadRequest("payload", f"must be an object, got {_json_kind(first)}")
    if env.v < WIRE_VERSION_MIN:
        raise BadRequest("v", f"must be a protocol version >= {WIRE_VERSION_MIN}, got {env.v}")
    if not env.kind:
        raise BadRequest("kind", "must be a non-empty string")
    return env


def encode_envelope(kind: str, payload: Any, t: int, id: int | str | None = None) -> bytes:
    """Encode one line, ending in ``b"\\n"``. ``payload`` is a msgspec Struct or a dict."""
    return (
        _ENCODER.encode(_OutEnvelope(kind=kind, payload=payload, t=t, v=WIRE_VERSION, id=id))
        + _NEWLINE
    )


def version_differs(env: Envelope) -> bool:
    """True when the sender speaks another version of the same major: log it, serve it."""
    return env.v != WIRE_VERSION


def _json_kind(first: bytes) -> str:
    """Name the JSON type of a valid JSON text from its first byte, for error messages."""
    if first == b"[":
        return "array"
    if first == b'"':
        return "string"
    if first in (b"t", b"f"):
        return "boolean"
    if first == b"n":
        return "null"
    return "number"


__all__ = [
    "WIRE_VERSION",
    "WIRE_VERSION_MIN",
    "Envelope",
    "decode_envelope",
    "encode_envelope",
    "version_differs",
]
