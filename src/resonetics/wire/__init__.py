"""wire layer (see DESIGN §2, §5): JSON-lines framing, message types, validation. Pure.

``envelope`` decodes/encodes the line every message rides in; ``peer`` and
``client`` turn its payload into typed, validated values; ``framing`` splits a
byte stream into bounded lines; ``codes`` names the client response codes.
"""

from __future__ import annotations

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
