"""The op table's lazily built argument decoders (wire/client._LazyDecoder) decode and
refuse exactly as a decoder built up front does."""

from __future__ import annotations

import msgspec
import pytest

from resonetics.wire.client import OPS

CASES = [
    b'{"k":"a","v":1}',
    b'{"k":"a"}',
    b'{"k":"a","v":1,"extra":2}',
    b'{"k":1,"v":1}',
    b"not json",
    b'{"prefix":"a","limit":5}',
]


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("raw", CASES)
def test_a_lazy_decoder_agrees_with_an_eager_one(name: str, raw: bytes) -> None:
    spec = OPS[name]
    eager = msgspec.json.Decoder(spec.args_type)

    def outcome(decode: object) -> object:
        try:
            return decode(raw)  # type: ignore[operator]
        except msgspec.MsgspecError as exc:
            return (type(exc), str(exc))

    assert outcome(spec.decoder.decode) == outcome(eager.decode)
