"""wire layer (see DESIGN §2, §5): JSON-lines framing, message types, validation. Pure.

``envelope`` decodes/encodes the line every message rides in; ``peer`` and
``client`` turn its payload into typed, validated values; ``framing`` splits a
byte stream into bounded lines; ``codes`` names the client response codes.

Its names are loaded on first use (``__getattr__``), so a client importing
``wire.client`` does not also load the peer messages and the raft types they carry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from resonetics.lazy import lazy_getattr

if TYPE_CHECKING:
    from resonetics.wire.client import (
        ClientRequest,
        ClientResponse,
        decode_response,
        encode_request,
        encode_response,
        error_response,
        ok_response,
        validate_request,
    )
    from resonetics.wire.envelope import (
        WIRE_VERSION,
        Envelope,
        decode_envelope,
        encode_envelope,
        version_differs,
    )
    from resonetics.wire.framing import LineBuffer
    from resonetics.wire.peer import Hello, decode_hello, decode_peer, encode_hello, encode_peer

_EXPORTS = {
    "ClientRequest": "resonetics.wire.client",
    "ClientResponse": "resonetics.wire.client",
    "decode_response": "resonetics.wire.client",
    "encode_request": "resonetics.wire.client",
    "encode_response": "resonetics.wire.client",
    "error_response": "resonetics.wire.client",
    "ok_response": "resonetics.wire.client",
    "validate_request": "resonetics.wire.client",
    "WIRE_VERSION": "resonetics.wire.envelope",
    "Envelope": "resonetics.wire.envelope",
    "decode_envelope": "resonetics.wire.envelope",
    "encode_envelope": "resonetics.wire.envelope",
    "version_differs": "resonetics.wire.envelope",
    "LineBuffer": "resonetics.wire.framing",
    "Hello": "resonetics.wire.peer",
    "decode_hello": "resonetics.wire.peer",
    "decode_peer": "resonetics.wire.peer",
    "encode_hello": "resonetics.wire.peer",
    "encode_peer": "resonetics.wire.peer",
}


__getattr__ = lazy_getattr(__name__, _EXPORTS)


__all__ = [
    "WIRE_VERSION",
    "ClientRequest",
    "ClientResponse",
    "Envelope",
    "Hello",
    "LineBuffer",
    "decode_envelope",
    "decode_hello",
    "decode_peer",
    "decode_response",
    "encode_envelope",
    "encode_hello",
    "encode_peer",
    "encode_request",
    "encode_response",
    "error_response",
    "ok_response",
    "validate_request",
    "version_differs",
]
