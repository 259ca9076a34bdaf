"""The client's retry rules (resonetics/retry_policy.py), shared by resonetics.Client and the
simulated clients."""

from __future__ import annotations

from resonetics.retry_policy import Action, RetryPolicy
from resonetics.wire import codes


def _policy(deadline: float = 10.0) -> RetryPolicy:
    return RetryPolicy(deadline=deadline, pause=lambda: 0.05, backoff_max=1.0, jitter=lambda: 0.0)


def test_ok_is_done() -> None:
    assert _policy().on_answer(codes.OK, {}).action is Action.DONE


def test_not_leader_follows_the_hint_at_once() -> None:
    decision = _policy().on_answer(codes.NOT_LEADER, {"leader": "n2", "leader_addr": "h:2"})
    assert decision.action is Action.FOLLOW_LEADER
    assert (decision.leader, decision.leader_addr, decision.pause) == ("n2", "h:2", 0.0)


def test_not_leader_without_a_hint_pauses_before_trying_another_node() -> None:
    decision = _policy().on_answer(codes.NOT_LEADER, {"term": 3})
    assert decision.action is Action.FOLLOW_LEADER
    assert decision.leader is None and decision.pause == 0.05


def test_a_hint_of_the_wrong_type_is_ignored() -> None:
    decision = _policy().on_answer(codes.NOT_LEADER, {"leader": 7, "leader_addr": ["x"]})
    assert decision.leader is None and decision.leader_addr is None


def test_session_expired_is_never_retried() -> None:
    policy = _policy()
    assert policy.on_answer(codes.SESSION_EXPIRED, None).action is Action.SESSION_EXPIRED


def test_a_timeout_answer_makes_the_outcome_unknown_and_is_retried_at_once() -> None:
    policy = _policy()
    decision = policy.on_answer(codes.TIMEOUT, None)
    assert decision.action is Action.RETRY and decision.pause == 0.0
    assert policy.outcome_unknown()


def test_a_refusal_alone_leaves_the_outcome_known() -> None:
    policy = _policy()
    policy.on_answer(codes.NOT_LEADER, {})
    policy.on_answer(codes.UNAVAILABLE, None)
    assert not policy.outcome_unknown()


def test_no_answer_makes_the_outcome_unknown() -> None:
    policy = _policy()
    assert policy.on_no_answer().action is Action.RETRY
    assert policy.outcome_unknown()


def test_a_connection_that_never_carried_the_attempt_leaves_the_outcome_known() -> None:
    policy = _policy()
    policy.on_no_answer(reached=False)
    assert not policy.outcome_unknown()
    policy.sent()
    policy.on_no_answer(reached=False)
    assert policy.outcome_unknown()


def test_rate_limited_backs_off_exponentially_up_to_the_cap() -> None:
    policy = _policy()
    pauses = [policy.on_answer(codes.RATE_LIMITED, None).pause for _ in range(8)]
    assert pauses[:3] == [0.025, 0.05, 0.1]  # base 0.05 doubling, jitter 0 halves it
    assert max(pauses) == 0.5  # the cap (1.0) halved by the jitter
    assert policy.on_answer(codes.RATE_LIMITED, None).action is Action.RETRY_SAME_NODE


def test_an_ok_resets_the_rate_limit_backoff() -> None:
    policy = _policy()
    for _ in range(5):
        policy.on_answer(codes.RATE_LIMITED, None)
    policy.on_answer(codes.OK, {})
    assert policy.on_answer(codes.RATE_LIMITED, None).pause == 0.025


def test_a_definite_refusal_is_raised_not_retried() -> None:
    for code in (codes.BAD_REQUEST, codes.FORBIDDEN, codes.TOO_LARGE):
        assert _policy().on_answer(code, None).action is Action.RAISE


def test_the_deadline_is_when_the_caller_gives_up() -> None:
    policy = _policy(deadline=5.0)
    assert not policy.expired(4.9)
    assert policy.expired(5.0)
