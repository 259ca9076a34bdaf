"""``draw_int`` is ``random.Random.randint``: same values, same state afterwards."""

from __future__ import annotations

import random

from resonetics.sim.draws import draw_int


def test_draw_int_gives_randint_values_and_leaves_the_same_generator_state() -> None:
    ranges = [(1, 2), (0, 0), (0, 1), (5, 60), (0, 400), (-3, 3), (0, 2**40), (7, 7 + 1023)]
    for seed in range(50):
        ours, oracle = random.Random(f"{seed}/network"), random.Random(f"{seed}/network")
        for i in range(400):
            low, high = ranges[i % len(ranges)]
            assert draw_int(ours, low, high) == oracle.randint(low, high)
            if i % 5 == 0:  # interleaved with other draws, as in the network
                assert ours.random() == oracle.random()
        assert ours.getstate() == oracle.getstate()


def test_draw_int_refuses_an_empty_range_as_randint_does() -> None:
    rng = random.Random(1)
    try:
        draw_int(rng, 3, 2)
    except ValueError as exc:
        assert "empty range" in str(exc)
    else:
        raise AssertionError("draw_int(3, 2) drew a value")
