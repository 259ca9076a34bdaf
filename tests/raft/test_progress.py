"""Follower progress: every PROBE / REPLICATE / SNAPSHOT transition and the inflight window."""

from __future__ import annotations

from resonetics.raft.progress import Progress, ProgressState


def test_probe_sends_one_message_then_waits_for_its_answer() -> None:
    pr = Progress(next_index=11, inflight_max=4)
    assert pr.state is ProgressState.PROBE and not pr.is_paused()
    pr.on_sent(last_sent=12, n_entries=2)
    assert pr.is_paused() and pr.next_index == 11  # probing does not move next optimistically


def test_successful_probe_switches_to_replicate_from_the_match() -> None:
    pr = Progress(next_index=11, inflight_max=4)
    pr.on_sent(12, 2)
    assert pr.on_ack(12)
    assert pr.state is ProgressState.REPLICATE
    assert (pr.match_index, pr.next_index) == (12, 13)


def test_replicate_pipelines_until_the_inflight_window_is_full() -> None:
    pr = Progress(next_index=1, inflight_max=3)
    pr.on_ack(0)
    assert pr.state is ProgressState.REPLICATE
    for last in (5, 10, 15):
        assert not pr.is_paused()
        pr.on_sent(last, 5)
    assert pr.is_paused() and pr.next_index == 16
    pr.on_ack(10)  # frees the first two messages
    assert not pr.is_paused() and len(pr.inflights) == 1


def test_rejection_in_replicate_falls_back_to_probe_using_the_hint() -> None:
    pr = Progress(next_index=1, inflight_max=3)
    pr.on_ack(4)
    pr.on_sent(9, 5)
    pr.on_reject(hint_next=7)
    assert pr.state is ProgressState.PROBE
    assert pr.next_index == 7 and not pr.is_paused() and len(pr.inflights) == 0


def test_rejection_never_moves_next_below_match_plus_one_and_always_moves_back() -> None:
    pr = Progress(next_index=20, inflight_max=3)
    pr.match_index = 10
    pr.on_reject(hint_next=3)
    assert pr.next_index == 11
    pr.next_index = 15
    pr.on_reject(hint_next=99)  # stale or bogus hint: still one step back
    assert pr.next_index == 14


def test_stalled_pipeline_falls_back_to_probe() -> None:
    pr = Progress(next_index=1, inflight_max=3)
    pr.on_ack(0)
    pr.on_sent(5, 5)
    assert not pr.tick_stalled(3) and not pr.tick_stalled(3)
    assert pr.tick_stalled(3)
    assert pr.state is ProgressState.PROBE and pr.next_index == 1


def test_snapshot_state_pauses_until_the_snapshot_is_acknowledged() -> None:
    pr = Progress(next_index=5, inflight_max=3)
    pr.become_snapshot(100)
    assert pr.is_paused()
    pr.on_ack(100)
    assert pr.state is ProgressState.PROBE and pr.next_index == 101
