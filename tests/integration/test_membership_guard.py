"""Real processes: ``member add`` of a dead or duplicate address (issue 17, item 4).

A node added at an address where nothing answers must stay a learner forever:
the cluster keeps its quorum of three and keeps accepting writes, ``member add``
says why it is not a voter, and ``member promote`` refuses with the same reason.
"""

from __future__ import annotations

import time
from pathlib import Path

from click.testing import CliRunner, Result

from resonetics.cli import main
from resonetics.localcluster import LocalCluster
from tests.integration.conftest import _assert_no_crash

#: How long the CLI waits for the dead node to become a voter, seconds.
ADD_WAIT_S = 6.0
#: A port nothing listens on (discard): the operator's typo.
DEAD_ADDRESS = "127.0.0.1:9"


def _cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_member_add_of_a_dead_address_never_becomes_a_voter(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path / "data", size=3, tick_ms=20)
    cluster.start()
    try:
        cluster.wait_for_leader(timeout_s=60)
        flags = (
            *("--cluster", ",".join(cluster.addresses), "--timeout", str(ADD_WAIT_S)),
            *("--token-file", str(cluster.admin_token_path)),
        )
        added = _cli("member", "add", "n4", DEAD_ADDRESS, *flags)
        assert added.exit_code != 0, added.output
        assert f"n4 at {DEAD_ADDRESS} has not answered since it was added" in added.output
        assert "it stays a learner (acknowledged index 0, needs " in added.output
        refused = _cli("member", "promote", "n4", *flags)
        assert refused.exit_code == 2, refused.output
        assert "has not answered since it was added; it stays a learner" in refused.output
        with cluster.admin_client(timeout=30) as admin:
            for i in range(20):  # the cluster of three keeps its quorum and takes writes
                admin.put(f"after-dead-add-{i}", i)
            time.sleep(2.0)  # many heartbeat rounds: the leader's promotion check ran
            view = admin.member_list()
            assert view["voters"] == ["n1", "n2", "n3"] and view["learners"] == ["n4"]
            assert view["match_index"]["n4"] == 0
            assert [admin.get(f"after-dead-add-{i}") for i in range(20)] == list(range(20))
            # An address that is already a member's is refused for another id.
            n2_peer = cluster.peer_addresses["n2"]
            dup = _cli("member", "add", "n5", n2_peer, "--no-wait", *flags)
            assert dup.exit_code == 2, dup.output
            assert f"{n2_peer} is already the address of member n2" in dup.output
            dup_id = _cli("member", "add", "n2", "127.0.0.1:11", "--no-wait", *flags)
            assert dup_id.exit_code == 2 and "n2 is already a member" in dup_id.output
            removed = _cli("member", "remove", "n4", *flags)
            assert removed.exit_code == 0, removed.output
            assert admin.member_list()["learners"] == []
    finally:
        cluster.stop()
    _assert_no_crash(cluster)
