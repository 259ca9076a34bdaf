"""``resonetics.addresses``: every malformed HOST:PORT is refused with the reason."""

from __future__ import annotations

import pytest

from resonetics.addresses import parse_address, parse_address_list
from resonetics.client import AsyncClient
from resonetics.errors import BadAddress


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        (":95o1", "no host before the colon"),
        ("host", "no :PORT"),
        ("host:", "port '' is not a number"),
        ("host:95o1", "port '95o1' is not a number"),
        ("host:٩٥", "is not a number"),  # Arabic-Indic digits pass str.isdigit()
        ("host:0", "not in 1..65535"),
        ("host:65536", "not in 1..65535"),
        ("my host:7001", "the host contains a space"),
    ],
)
def test_malformed_address_is_refused_with_its_reason(address: str, reason: str) -> None:
    with pytest.raises(BadAddress) as caught:
        parse_address(address, what="--cluster")
    assert caught.value.what == "--cluster" and caught.value.address == address
    assert reason in str(caught.value)


def test_well_formed_addresses_parse() -> None:
    assert parse_address("127.0.0.1:7001", what="x") == ("127.0.0.1", 7001)
    assert parse_address(" node-1.example:1 ", what="x") == ("node-1.example", 1)
    assert parse_address_list("a:1, b:2,", what="x") == ["a:1", "b:2"]


def test_an_empty_address_list_is_refused() -> None:
    with pytest.raises(BadAddress, match="no address given"):
        parse_address_list(" , ", what="--cluster")


def test_the_library_refuses_a_malformed_address_at_construction() -> None:
    with pytest.raises(BadAddress, match="':95o1'"):
        AsyncClient(":95o1")
    with pytest.raises(ValueError):  # BadAddress is a ValueError, as before
        AsyncClient([])
