"""CPU per ``kv_set`` of a new key as the store grows (random keys). Not a test.

Run: ``PYTHONPATH=src .venv/bin/python bench/kv_new_keys.py [KEYS]`` (default 1,000,000)

A fresh ``KeyValueStore`` applies KEYS ``kv_set`` commands of distinct keys drawn at
random (so each new key lands anywhere in key order, as user ids or UUIDs do) with
100-character values, the collector paused as in a replay, and prints the CPU time of
the whole run and the CPU per set over the last stretch before 10 %, 50 % and 100 % of
KEYS. A leader and every follower pay this per write of a new key, and again at each
replay; what grows with the store's size shows in the later stretches.
"""

from __future__ import annotations

import random
import sys
import time

from resonetics.gc_pause import gc_paused
from resonetics.machine.kv import KeyValueStore

VALUE = "v" * 100


def main(keys: int) -> None:
    rng = random.Random(7)
    names = [f"user/{rng.getrandbits(64):016x}" for _ in range(keys)]
    store = KeyValueStore()
    marks = {keys // 10, keys // 2, keys}
    start = last = time.process_time()
    done = 0
    with gc_paused():
        for i, key in enumerate(names, 1):
            store.apply(i, {"op": "kv_set", "args": {"k": key, "v": VALUE}, "ts": i})
            if i in marks:
                now = time.process_time()
                per = 1e6 * (now - last) / (i - done)
                print(
                    f"{i:>10,} keys: {now - start:6.2f} CPU s in all, {per:5.2f} us per set since {done:,}"
                )
                last, done = now, i


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
