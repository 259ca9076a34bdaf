"""Watch stream messages: what a node sends on a connection after a ``watch`` request.

Theory of operation
-------------------
A ``watch`` request (``wire/client.py`` ``WatchArgs``) is answered first with a
``ClientResponse`` like any request: ``OK`` with ``{"from_index", "oldest_index",
"applied_index"}``, or an error (``COMPACTED`` with ``{"oldest_index"}``,
``FORBIDDEN``, ``BAD_REQUEST``...), which ends it. After an ``OK``, the node sends
messages of three kinds on the same connection, each with the request's envelope
``id``:

- ``WatchEvents``: ``{"events": [event, ...]}``, each event ``{index, term, hash,
  key, kind, value}`` (``kind`` ``put`` or ``delete``; ``value`` null for a delete;
  ``hash`` the chain hash of the entry at ``index``). Events come in log order, each
  once; one message holds whole entries (an entry's changes are never split).
- ``WatchProgress``: ``{index, term, hash}``: the node has applied through ``index``
  and the stream holds every change under the prefix up to it (sent every
  ``WATCH_PROGRESS_INTERVAL_S`` and so also a heartbeat).
- ``WatchEnd``: ``{code, message, last_index}``: the stream is over; it held every
  change under the prefix through ``last_index``. Codes: ``CANCELLED``,
  ``WATCH_TOO_SLOW``, ``COMPACTED`` (the node replaced its state with a snapshot and
  lost the history the watch still needed), ``UNAVAILABLE`` (the node is stopping).

Decoding is for the client side (``resonetics.watch``); the server encodes events
from its own history, so nothing here validates what a node produced beyond types.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

from resonetics.errors import BadRequest
from resonetics.wire.client import RESPONSE_KIND, ClientResponse, decode_response
from resonetics.wire.envelope import Envelope
from resonetics.wire.validation import bad_request_from

EVENTS_KIND: Final = "WatchEvents"
PROGRESS_KIND: Final = "WatchProgress"
END_KIND: Final = "WatchEnd"
KINDS: Final = frozenset({EVENTS_KIND, PROGRESS_KIND, END_KIND})


class WatchEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One change under a watched prefix: what ``Client.watch`` yields."""

    index: int
    term: int
    #: The chain hash of the entry at ``index`` (checkable against any node's log).
    hash: str
    key: str
    kind: Literal["put", "delete"]
    #: The key's value after the change (None for a delete).
    value: Any = None


class WatchEvents(msgspec.Struct, frozen=True, kw_only=True):
    events: list[WatchEvent]


class WatchProgress(msgspec.Struct, frozen=True, kw_only=True):
    """The node applied through ``index`` (whose chain hash is ``hash``): the stream is
    complete up to it."""

    index: int
    term: int
    hash: str


class WatchEnd(msgspec.Struct, frozen=True, kw_only=True):
    """The stream is over; every change through ``last_index`` was sent."""

    code: str
    message: str
    last_index: int
    #: For ``COMPACTED``: the oldest index the node can still serve.
    oldest_index: int | None = None


WatchMessage = WatchEvents | WatchProgress | WatchEnd | ClientResponse

_DECODERS: Final[dict[str, msgspec.json.Decoder[Any]]] = {
    EVENTS_KIND: msgspec.json.Decoder(WatchEvents),
    PROGRESS_KIND: msgspec.json.Decoder(WatchProgress),
    END_KIND: msgspec.json.Decoder(WatchEnd),
}


def decode_watch_message(env: Envelope) -> WatchMessage:
    """A message of a watch stream (or a response); ``BadRequest`` for anything else."""
    if env.kind == RESPONSE_KIND:
        return decode_response(env)
    decoder = _DECODERS.get(env.kind)
    if decoder is None:
        raise BadRequest("kind", f"unknown kind {env.kind!r} on a watch stream")
    try:
        message: WatchMessage = decoder.decode(env.payload)
    except msgspec.DecodeError as exc:
        raise bad_request_from(exc, root="payload") from None
    return message


__all__ = [
    "END_KIND",
    "EVENTS_KIND",
    "KINDS",
    "PROGRESS_KIND",
    "WatchEnd",
    "WatchEvent",
    "WatchEvents",
    "WatchMessage",
    "WatchProgress",
    "decode_watch_message",
]
