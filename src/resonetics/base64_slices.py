"""A large ``bytes`` field of a JSON document, base64-encoded a slice at a time.

Why: a snapshot's state is hundreds of MB at a million keys, and msgspec encodes a
``bytes`` field to base64 in one C call that holds the GIL throughout (about a second
at that size). On the loop that call is a second without heartbeats; on the disk
thread it starves the loop just the same (the loop cannot take the GIL back until
the call returns). Followers then time out and elect another leader, once per
snapshot, under load. Encoded in slices of ``SLICE_INPUT_BYTES`` each call takes a
few milliseconds, so the loop gets the GIL back within the interpreter's switch
interval (on a thread) or at the caller's next ``yield`` (on the loop).

The result is byte for byte what msgspec writes (standard alphabet, padded, no line
breaks): every slice but the last is a multiple of 3 bytes, so no padding falls
inside the text. ``tests/test_base64_slices.py`` checks it against msgspec.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterator

#: Input bytes per slice: a multiple of 3 (no padding mid-text); about 2 ms of base64.
SLICE_INPUT_BYTES = 3 * 512 * 1024


def b64_slices(data: bytes) -> Iterator[bytes]:
    """``data`` in base64, one slice of at most ``SLICE_INPUT_BYTES`` input at a time."""
    view = memoryview(data)
    for start in range(0, len(view), SLICE_INPUT_BYTES):
        yield binascii.b2a_base64(view[start : start + SLICE_INPUT_BYTES], newline=False)


def b64_decode_slices(text: bytes | memoryview) -> Iterator[bytes]:
    """``text`` (standard alphabet, padded, no line breaks: what msgspec writes) decoded
    one slice at a time (the text of ``SLICE_INPUT_BYTES``); ``binascii.Error`` if it is
    anything else. What a snapshot's restore uses, for the reason above."""
    view = memoryview(text)
    chars = SLICE_INPUT_BYTES // 3 * 4
    if len(view) % 4:
        raise binascii.Error(f"base64 text of {len(view)} characters, not a multiple of 4")
    for start in range(0, len(view), chars):
        part = view[start : start + chars]
        if start + chars < len(view) and part[-1] == ord("="):
            raise binascii.Error(f"base64 padding inside the text (before {start + len(part)})")
        yield binascii.a2b_base64(part, strict_mode=True)


def split_at_empty_field(doc: bytes, name: str, *, last: bool = False) -> tuple[bytes, bytes]:
    """``doc`` (JSON whose field ``name`` holds the empty string) split inside that
    string's quotes: ``head + text + tail`` is the document with ``text`` there.

    Inside a JSON string a quote is escaped, so the marker ``"name":""`` can only be
    that field or a key of a nested object. The caller says which occurrence is the
    field: the first when no field before it holds nested objects, the last (``last``)
    when none after it does.
    """
    marker = b'"' + name.encode("ascii") + b'":""'
    at = doc.rfind(marker) if last else doc.find(marker)
    if at < 0:
        raise ValueError(f"no empty field {name!r} in the document")
    cut = at + len(marker) - 1  # between the two quotes
    return doc[:cut], doc[cut:]


__all__ = [
    "SLICE_INPUT_BYTES",
    "b64_decode_slices",
    "b64_slices",
    "split_at_empty_field",
]
