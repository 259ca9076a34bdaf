"""Base64 decoded in slices is the data, byte for byte, and refuses what msgspec never wrote."""

from __future__ import annotations

import base64
import binascii
import random

import pytest

from resonetics import base64_slices
from resonetics.base64_slices import b64_decode_slices


@pytest.fixture
def tiny_slices(monkeypatch: pytest.MonkeyPatch) -> int:
    """Slices of 6 input bytes, so that small data spans many of them."""
    monkeypatch.setattr(base64_slices, "SLICE_INPUT_BYTES", 6)
    return 6


@pytest.mark.parametrize("size", [0, 1, 2, 3, 5, 6, 7, 11, 12, 13, 100])
def test_decoded_slices_join_to_the_data(tiny_slices: int, size: int) -> None:
    data = random.Random(size).randbytes(size)
    slices = list(b64_decode_slices(base64.b64encode(data)))
    assert b"".join(slices) == data
    assert len(slices) == -(-size // tiny_slices)


@pytest.mark.parametrize(
    ("text", "what"),
    [
        (b"QUJD" + b"RA=", "multiple of 4"),  # truncated
        (b"QUJDRA==QUJD", "padding inside"),  # padding at a slice's end, text after it
        (b"QQ==QUJD", "after padding"),  # padding inside a slice
        (b"QU*D", "Only base64 data"),  # a character outside the alphabet
        (b"QUJ\\", "Only base64 data"),  # a JSON escape left in
    ],
)
def test_decoding_refuses_anything_but_padded_standard_base64(
    tiny_slices: int, text: bytes, what: str
) -> None:
    with pytest.raises(binascii.Error, match=what):
        b"".join(b64_decode_slices(text))
