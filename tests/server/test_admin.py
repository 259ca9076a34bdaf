"""Pure helpers of the membership admin ops (``server/admin.py``)."""

from __future__ import annotations

import msgspec
import pytest

from resonetics.server.admin import MEMBERSHIP_OPS, hello_address
from resonetics.wire.client import ADMIN_OPS, MONITOR_OPS


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b'{"node_id": "n1", "address": "127.0.0.1:7001"}', ("n1", "127.0.0.1:7001")),
        (b'{"node_id": "n1"}', None),  # an older node: no address, nothing learned
        (b'{"node_id": "", "address": "127.0.0.1:7001"}', None),
        (b'{"node_id": "n1", "address": "no-port"}', None),
        (b'{"node_id": 5, "address": "127.0.0.1:7001"}', None),
        (b"[1, 2]", None),
    ],
)
def test_hello_address_accepts_only_a_named_node_with_host_and_port(
    payload: bytes, expected: tuple[str, str] | None
) -> None:
    assert hello_address(msgspec.Raw(payload)) == expected


def test_every_membership_op_is_a_validated_admin_op() -> None:
    assert MEMBERSHIP_OPS <= ADMIN_OPS | MONITOR_OPS
