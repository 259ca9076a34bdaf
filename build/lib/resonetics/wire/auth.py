"""The ``Auth`` line: how a client presents a bearer token on a connection.

A client that has a token sends, first on every new connection::

    {"kind": "Auth", "payload": {"token": "..."}, "t": ..., "v": 1, "id": 1}

and the node answers with a ``ClientResponse`` carrying the same ``id``: ``OK``
with ``result = {"identity": name, "roles": [...]}``, or ``UNAUTHENTICATED``
(unknown token; the connection then serves no request until an ``Auth`` line
succeeds). Requests that follow are judged as that identity. Without an
``Auth`` line a connection is its client certificate's identity, or anonymous.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

from resonetics import limits
from resonetics.errors import BadRequest
from resonetics.wire.envelope import Envelope, encode_envelope
from resonetics.wire.validation import bad_request_from

AUTH_KIND: Final = "Auth"

Token = Annotated[str, msgspec.Meta(min_length=1, max_length=limits.TOKEN_CHARS_MAX)]


class AuthRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    token: Token

    def __repr__(self) -> str:  # never print a secret into a log or a traceback
        return "AuthRequest(token=<hidden>)"


_DECODER: Final = msgspec.json.Decoder(AuthRequest)


def validate_auth(env: Envelope) -> AuthRequest:
    """The token in an ``Auth`` envelope; ``BadRequest`` naming the field otherwise."""
    if env.kind != AUTH_KIND:
        raise BadRequest("kind", f"unknown kind {env.kind!r}; expected {AUTH_KIND!r}")
    try:
        return _DECODER.decode(env.payload)
    except msgspec.DecodeError as exc:
        raise bad_request_from(exc, root="payload") from None


def encode_auth(token: str, t: int, id: int | str | None = None) -> bytes:
    return encode_envelope(AUTH_KIND, AuthRequest(token=token), t, id)


__all__ = ["AUTH_KIND", "AuthRequest", "encode_auth", "validate_auth"]
