"""The one rule for which peer messages reach the core (``runtime/peer_gate.py``)."""

from __future__ import annotations

import pytest

from resonetics.raft.messages import (
    AppendEntries,
    AppendEntriesResp,
    InstallSnapshot,
    Message,
    PreVote,
    RequestVote,
    TimeoutNow,
)
from resonetics.runtime import peer_gate

MEMBERS = frozenset({"n1", "n2", "n3"})


def _append(src: str) -> AppendEntries:
    return AppendEntries(
        src=src, dst="n1", term=5, leader_id=src, prev_log_index=0, prev_log_term=0,
        prev_log_hash="", leader_commit=0,
    )  # fmt: skip


def _snapshot(src: str) -> InstallSnapshot:
    return InstallSnapshot(
        src=src, dst="n1", term=5, leader_id=src, last_included_index=1,
        last_included_term=1, last_included_hash="", offset=0, data="", done=False,
        checksum="", total_bytes=0,
    )  # fmt: skip


def _vote(src: str) -> RequestVote:
    return RequestVote(
        src=src, dst="n1", term=9, candidate_id=src, last_log_index=0, last_log_term=0,
        transfer=True,
    )  # fmt: skip


def test_message_from_an_unauthenticated_link_is_never_stepped() -> None:
    assert peer_gate.refusal("n1", MEMBERS, None, _append("n2")) == peer_gate.NOT_AUTHENTICATED


def test_member_cannot_speak_for_another_member() -> None:
    for msg in (_append("n3"), _vote("n3"), TimeoutNow(src="n3", dst="n1", term=9)):
        assert peer_gate.refusal("n1", MEMBERS, "n2", msg) == peer_gate.SRC_MISMATCH


def test_message_for_another_node_is_dropped() -> None:
    msg = TimeoutNow(src="n2", dst="n3", term=9)
    assert peer_gate.refusal("n1", MEMBERS, "n2", msg) == peer_gate.WRONG_DST


@pytest.mark.parametrize(
    "msg",
    [
        _vote("x9"),
        PreVote(src="x9", dst="n1", term=9, candidate_id="x9", last_log_index=0, last_log_term=0),
        TimeoutNow(src="x9", dst="n1", term=9),
        AppendEntriesResp(src="x9", dst="n1", term=9, success=True, match_index=100),
    ],
)
def test_non_member_cannot_vote_force_an_election_or_acknowledge(msg: Message) -> None:
    """Dissertation §4.2.3: what a removed server sends must not disrupt the cluster."""
    assert peer_gate.refusal("n1", MEMBERS, "x9", msg) == peer_gate.NOT_A_MEMBER


def test_leader_outside_this_nodes_configuration_may_replicate_to_it() -> None:
    """A node down during a membership change learns the new leader's membership from it."""
    assert peer_gate.refusal("n1", MEMBERS, "n4", _append("n4")) is None
    assert peer_gate.refusal("n1", MEMBERS, "n4", _snapshot("n4")) is None


def test_member_messages_of_every_kind_pass() -> None:
    for msg in (_append("n2"), _vote("n2"), TimeoutNow(src="n2", dst="n1", term=9)):
        assert peer_gate.refusal("n1", MEMBERS, "n2", msg) is None
