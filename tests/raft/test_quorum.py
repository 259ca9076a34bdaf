"""Quorum math against a brute-force oracle (STYLE habit 11; Raft §5.3, dissertation §4.3)."""

from __future__ import annotations

from itertools import combinations

from hypothesis import given
from hypothesis import strategies as st

from resonetics.raft import quorum
from resonetics.raft.membership import Membership

NODES = ["a", "b", "c", "d", "e", "f", "g"]


def _majority_subsets(voters: tuple[str, ...]) -> list[frozenset[str]]:
    n = len(voters)
    return [frozenset(c) for k in range(n // 2 + 1, n + 1) for c in combinations(voters, k)]


def _oracle_has_quorum(m: Membership, nodes: set[str]) -> bool:
    def half(voters: tuple[str, ...]) -> bool:
        return not voters or any(s <= nodes for s in _majority_subsets(voters))

    return half(m.voters) and half(m.voters_outgoing)


def _oracle_committed(m: Membership, match: dict[str, int]) -> int:
    """The largest N such that the nodes having matched N form a (joint) quorum."""
    best = 0
    for n in sorted(set(match.values()) | {0}):
        if _oracle_has_quorum(m, {v for v, i in match.items() if i >= n}):
            best = max(best, n)
    return best


memberships = st.builds(
    lambda inc, out: Membership(voters=tuple(inc), voters_outgoing=tuple(out)),
    st.lists(st.sampled_from(NODES), min_size=1, max_size=7, unique=True),
    st.one_of(st.just([]), st.lists(st.sampled_from(NODES), min_size=1, max_size=7, unique=True)),
)


@given(memberships, st.dictionaries(st.sampled_from(NODES), st.integers(0, 20)))
def test_committed_index_is_largest_index_a_joint_majority_matched(
    m: Membership, match: dict[str, int]
) -> None:
    full = {n: match.get(n, 0) for n in NODES}
    assert quorum.committed_index(m, match) == _oracle_committed(m, full)


@given(memberships, st.sets(st.sampled_from(NODES)))
def test_has_quorum_matches_brute_force(m: Membership, nodes: set[str]) -> None:
    assert quorum.has_quorum(m, nodes) == _oracle_has_quorum(m, nodes)


@given(memberships, st.dictionaries(st.sampled_from(NODES), st.booleans()))
def test_vote_result_matches_brute_force(m: Membership, votes: dict[str, bool]) -> None:
    granted = {n for n, v in votes.items() if v}
    undecided = set(NODES) - set(votes)
    result = quorum.vote_result(m, votes)
    if _oracle_has_quorum(m, granted):
        assert result is quorum.VoteResult.WON
    elif not _oracle_has_quorum(m, granted | undecided):
        assert result is quorum.VoteResult.LOST
    else:
        assert result is quorum.VoteResult.PENDING


def test_joint_majority_needs_both_configurations() -> None:
    m = Membership(voters=("a", "b", "c"), voters_outgoing=("d", "e", "f"))
    assert not quorum.has_quorum(m, {"a", "b"})
    assert not quorum.has_quorum(m, {"d", "e"})
    assert quorum.has_quorum(m, {"a", "b", "d", "e"})
    assert quorum.committed_index(m, {"a": 5, "b": 5, "c": 5, "d": 2, "e": 9, "f": 1}) == 2


def test_learners_never_count_toward_a_quorum() -> None:
    m = Membership(voters=("a", "b", "c"), learners=("x", "y", "z"))
    assert not quorum.has_quorum(m, {"a", "x", "y", "z"})
    assert quorum.committed_index(m, {"a": 7, "x": 9, "y": 9, "z": 9}) == 0
