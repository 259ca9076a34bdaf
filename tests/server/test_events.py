"""Operator events (``server/events.py``): each rule on a before/after pair of core views."""

from __future__ import annotations

import logging

import pytest

from resonetics.raft.membership import Membership
from resonetics.raft.ready import Role
from resonetics.runtime.snapshots import SnapshotStats
from resonetics.server import events
from resonetics.server.events import CoreView, Event, Throttle, diff, format_fields

THREE = Membership(voters=("n1", "n2", "n3"))


def view(
    term: int,
    role: Role,
    leader: str | None,
    membership: Membership = THREE,
    tally: tuple[int, dict[str, bool]] = (0, {}),
    snapshots: SnapshotStats | None = None,
) -> CoreView:
    return CoreView(term, role, leader, membership, tally, snapshots or SnapshotStats())


def names(evs: list[Event]) -> list[str]:
    return [e.name for e in evs]


def test_election_started_and_won_report_term_and_votes() -> None:
    before = view(1, Role.FOLLOWER, "n2")
    candidate = view(2, Role.CANDIDATE, None, tally=(2, {"n1": True}))
    leader = view(2, Role.LEADER, "n1", tally=(2, {"n1": True, "n3": True}))
    assert names(diff("n1", before, candidate)) == ["election_started"]
    won = diff("n1", candidate, leader)
    assert names(won) == ["election_won", "leader_changed"]
    assert won[0].fields == {"term": 2, "votes": "2/3", "granted": "n1,n3", "rejected": ""}
    assert won[1].fields == {"old": None, "new": "n1", "term": 2}


def test_an_election_started_and_won_between_two_looks_reports_both() -> None:
    evs = diff(
        "n1",
        view(1, Role.FOLLOWER, "n2"),
        view(2, Role.LEADER, "n1", tally=(2, {"n1": True, "n2": True})),
    )
    assert names(evs) == ["election_started", "election_won", "leader_changed"]
    assert evs[2].fields == {"old": "n2", "new": "n1", "term": 2}


def test_an_election_lost_to_refused_votes_says_so_with_the_count() -> None:
    tally = (3, {"n1": True, "n2": False, "n3": False})
    evs = diff("n1", view(3, Role.CANDIDATE, None, tally=tally), view(3, Role.FOLLOWER, None))
    assert names(evs) == ["election_lost"]
    assert evs[0].fields["reason"] == "votes refused"
    assert evs[0].fields["rejected"] == "n2,n3"


def test_an_election_lost_to_another_leader_names_it() -> None:
    evs = diff("n1", view(3, Role.CANDIDATE, None), view(3, Role.FOLLOWER, "n2"))
    assert names(evs) == ["election_lost", "leader_changed"]
    assert evs[0].fields == {"term": 3, "reason": "another leader", "leader": "n2"}


def test_a_candidate_that_times_out_loses_and_starts_again() -> None:
    evs = diff("n1", view(3, Role.CANDIDATE, None), view(4, Role.CANDIDATE, None))
    assert names(evs) == ["election_lost", "election_started"]
    assert evs[0].fields["reason"] == "timed out; campaigning again"


def test_pre_votes_are_not_logged_as_elections() -> None:
    """A partitioned follower pre-votes forever without disturbing anyone: no INFO lines."""
    assert diff("n1", view(3, Role.FOLLOWER, None), view(3, Role.PRE_CANDIDATE, None)) == []
    assert diff("n1", view(3, Role.PRE_CANDIDATE, None), view(3, Role.FOLLOWER, None)) == []


@pytest.mark.parametrize(
    ("after", "reason"),
    [
        (view(6, Role.FOLLOWER, "n2"), "higher term seen"),
        (view(5, Role.FOLLOWER, None), "CheckQuorum lost"),
        (view(5, Role.FOLLOWER, None, Membership(voters=("n2", "n3"))), "removed"),
        (
            view(5, Role.LEARNER, None, Membership(voters=("n2", "n3"), learners=("n1",))),
            "demoted to learner",
        ),
    ],
)
def test_stepping_down_says_why(after: CoreView, reason: str) -> None:
    evs = diff("n1", view(5, Role.LEADER, "n1"), after)
    down = [e for e in evs if e.name == "stepped_down"]
    assert len(down) == 1
    assert down[0].fields["reason"] == reason
    assert down[0].fields["term"] == 5


def test_membership_change_names_old_and_new_config_and_own_removal() -> None:
    new = Membership(voters=("n2", "n3"), learners=("n4",))
    evs = diff("n1", view(5, Role.FOLLOWER, "n2"), view(5, Role.FOLLOWER, "n2", new))
    assert names(evs) == ["membership_changed", "removed"]
    assert evs[0].fields["old"] == "voters=n1,n2,n3"
    assert evs[0].fields["new"] == "voters=n2,n3;learners=n4"
    # Another node's removal is a membership change, not "removed".
    assert names(diff("n3", view(5, Role.FOLLOWER, "n2"), view(5, Role.FOLLOWER, "n2", new))) == [
        "membership_changed"
    ]


def test_snapshots_taken_and_installed_report_index_size_time_and_sender() -> None:
    taken = SnapshotStats(taken=1, last_index=500, last_bytes=4096, last_seconds=0.0123)
    evs = diff("n1", view(5, Role.LEADER, "n1"), view(5, Role.LEADER, "n1", snapshots=taken))
    assert evs == [
        Event("snapshot_taken", {"index": 500, "bytes": 4096, "duration_ms": 12.3}),
    ]
    installed = SnapshotStats(installed=1, last_index=900, last_bytes=100)
    evs = diff(
        "n3", view(5, Role.FOLLOWER, "n1"), view(5, Role.FOLLOWER, "n1", snapshots=installed)
    )
    assert evs == [Event("snapshot_installed", {"from": "n1", "index": 900, "bytes": 100})]


def test_nothing_changed_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    same = view(5, Role.FOLLOWER, "n2")
    watch = events.NodeWatch("n1", same)
    with caplog.at_level(logging.INFO, logger="resonetics.events"):
        assert watch.observe(view(5, Role.FOLLOWER, "n2")) == []
        assert watch.observe(view(6, Role.FOLLOWER, "n3")) != []
    assert [r.getMessage() for r in caplog.records] == ["event=leader_changed old=n2 new=n3 term=6"]
    assert caplog.records[0].levelno == logging.INFO


def test_text_fields_are_key_value_and_quote_what_would_split_them() -> None:
    text = format_fields({"event": "peer_link_down", "peer": "n2", "reason": 'lost: "reset" x=1'})
    assert text == 'event=peer_link_down peer=n2 reason="lost: \\"reset\\" x=1"'
    assert format_fields({"old": None, "ok": True}) == 'old="" ok=true'


def test_a_dead_peer_logs_one_link_down_line_per_interval_with_a_count_of_the_rest() -> None:
    throttle = Throttle(interval_s=60.0)
    assert throttle.allow(0.0) == 0
    assert [throttle.allow(t) for t in (1.0, 2.0, 30.0, 59.9)] == [None] * 4
    assert throttle.allow(60.0) == 4  # the next line says how many were held back
    assert throttle.allow(61.0) is None


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens there now


def test_a_link_to_a_dead_peer_logs_link_down_once_not_every_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The link retries every 50 ms..2 s; an unthrottled log line per retry would flood."""
    import asyncio

    from resonetics.security.peer_auth import PeerCredentials
    from resonetics.server.peers import PeerLink

    async def scenario() -> None:
        creds = PeerCredentials("a", "0" * 32, None, tls=False)
        link = PeerLink(creds, "b", f"127.0.0.1:{_closed_port()}", "127.0.0.1:2")
        link.start(lambda coro: asyncio.get_running_loop().create_task(coro))
        await asyncio.sleep(1.0)  # several reconnect attempts
        await link.stop()

    with caplog.at_level(logging.INFO, logger="resonetics"):
        asyncio.run(scenario())
    down = [r for r in caplog.records if getattr(r, "event", None) == "peer_link_down"]
    assert len(down) == 1
    assert down[0].event_fields["peer"] == "b"  # type: ignore[attr-defined]
    assert "ConnectionRefusedError" in down[0].event_fields["reason"]  # type: ignore[attr-defined]


def test_leader_changed_names_the_last_known_leader_after_an_interregnum() -> None:
    """Followers forget the leader when its term ends; the event still names who led."""
    watch = events.NodeWatch("n3", view(1, Role.FOLLOWER, "n1"))
    assert watch.observe(view(2, Role.FOLLOWER, None)) == []
    (changed,) = watch.observe(view(2, Role.FOLLOWER, "n2"))
    assert changed.fields == {"old": "n1", "new": "n2", "term": 2}


def test_a_peer_supplied_reason_cannot_forge_a_second_log_line() -> None:
    """A peer's refusal reason (up to 512 chars it chooses) ends up in a link-down line:
    newlines and quotes are escaped, so it cannot start a fake event line of its own."""
    forged = 'x"\n2026-01-01 INFO node=n1 event=removed term=9'
    text = format_fields({"event": "peer_link_down", "reason": forged})
    assert "\n" not in text
    assert text.count("event=") == 2  # ours, and the forged one inside the quoted value
    assert text.startswith("event=peer_link_down ")
    key, _, value = text.partition(" ")[2].partition("=")
    import json

    assert (key, json.loads(value)) == ("reason", forged)


def test_a_node_learns_its_removal_from_the_joint_configuration() -> None:
    """It may never receive the final configuration; the joint one already leaves it out
    of the voters it moves to."""
    joint = Membership(voters=("n2", "n3"), voters_outgoing=("n1", "n2", "n3"))
    evs = diff("n1", view(5, Role.FOLLOWER, "n2"), view(5, Role.FOLLOWER, "n2", joint))
    assert names(evs) == ["membership_changed", "removed"]
    final = Membership(voters=("n2", "n3"))
    # Seeing the final one afterwards is a change, not a second removal.
    assert names(
        diff("n1", view(5, Role.FOLLOWER, "n2", joint), view(5, Role.FOLLOWER, "n2", final))
    ) == ["membership_changed"]


class _FakeCore:
    """The attributes ``NodeWatch.observe_core`` reads from a ``RaftNode``."""

    def __init__(self) -> None:
        self.term = 1
        self.role = Role.FOLLOWER
        self.leader_id: str | None = "n2"
        self.membership = THREE
        self.last_tally: tuple[int, dict[str, bool]] = (0, {})


def test_observe_core_sees_each_change_through_its_cheap_first_look() -> None:
    core, stats = _FakeCore(), SnapshotStats()
    watch = events.NodeWatch("n1", events.core_view(core, stats))  # type: ignore[arg-type]
    assert watch.observe_core(core, stats) == []  # type: ignore[arg-type]
    core.term, core.role, core.leader_id = 2, Role.LEADER, "n1"
    core.last_tally = (2, {"n1": True, "n3": True})  # the core replaces the tuple
    assert names(watch.observe_core(core, stats)) == [  # type: ignore[arg-type]
        "election_started",
        "election_won",
        "leader_changed",
    ]
    assert watch.observe_core(core, stats) == []  # type: ignore[arg-type]
    stats.taken, stats.last_index, stats.last_bytes = 1, 10, 99
    assert names(watch.observe_core(core, stats)) == ["snapshot_taken"]  # type: ignore[arg-type]
    core.membership = Membership(voters=("n1", "n2"))
    assert names(watch.observe_core(core, stats)) == ["membership_changed"]  # type: ignore[arg-type]
