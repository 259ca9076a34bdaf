"""A base64 field of a JSON document decoded a slice at a time.

Why: a format-2 replicated state (``machine/replicated.py``, written before format 3)
holds the machine's bytes as a base64 string of hundreds of MB at a million keys,
and one ``a2b_base64`` call over it holds the GIL throughout (about a second at
that size): on the loop, a second without heartbeats, so followers would time out
and elect another leader. Decoded in slices of ``SLICE_INPUT_BYTES`` each call takes
a few milliseconds, and the restore yields between them.

The text is what msgspec writes (standard alphabet, padded, no line breaks): every
slice but the last is a multiple of 4 characters, so no padding may fall inside it.
``tests/test_base64_slices.py`` checks it against ``base64``.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterator

#: Input bytes per slice: a multiple of 3 (no padding mid-text); about 2 ms of base64.
SLICE_INPUT_BYTES = 3 * 512 * 1024


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


__all__ = [
    "SLICE_INPUT_BYTES",
    "b64_decode_slices",
]
