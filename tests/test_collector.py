"""The clock of the process's cyclic garbage collections (``status`` → ``gc``)."""

from __future__ import annotations

import gc

from resonetics.collector import CollectorClock


def test_the_clock_counts_each_collection_and_its_time_until_removed() -> None:
    clock = CollectorClock()
    clock.install()
    clock.install()  # once only
    try:
        gc.collect()
        gc.collect(0)
        assert clock.collections[2] == 1
        assert clock.collections[0] >= 1
        assert 0 < clock.longest_s <= clock.seconds
        status = clock.status()
        assert status["collections"] == clock.collections
        assert status["thresholds"] == list(gc.get_threshold())
    finally:
        clock.remove()
    counted = list(clock.collections)
    gc.collect()
    assert clock.collections == counted
    assert clock._on_collection not in gc.callbacks
