"""Pure helpers of the membership admin ops (``server/admin.py``)."""

from __future__ import annotations

from resonetics.server.admin import MEMBERSHIP_OPS
from resonetics.wire.client import ADMIN_OPS, MONITOR_OPS


def test_every_membership_op_is_a_validated_admin_op() -> None:
    assert MEMBERSHIP_OPS <= ADMIN_OPS | MONITOR_OPS
