"""A real concurrent register, simulated step by step from a seed: the checker's oracle.

Each client process invokes an operation, which later takes effect atomically on
a plain dict, and later still returns. Between those steps other processes run,
so operations overlap as they would against a real store. Some operations fail
before taking effect, and some clients crash (``info``) before or after their
operation took effect and come back under a new process id. Every history this
produces is linearizable by construction; every written value is unique, so a
corrupted read can be made certainly impossible.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from typing import Any

from resonetics.check.history import HistoryRecorder, OpHandle, OpKind


@dataclass
class _Client:
    process: int
    handle: OpHandle | None = None
    applied: bool = False
    result: dict[str, Any] = field(default_factory=dict)


def simulate(
    seed: int,
    *,
    ops: int = 200,
    clients: int = 4,
    keys: tuple[str, ...] = ("a", "b"),
    fail_p: float = 0.05,
    crash_p: float = 0.05,
) -> HistoryRecorder:
    """Run ``ops`` operations from ``clients`` concurrent clients; return the recording."""
    rng = random.Random(seed)
    ticks = itertools.count()
    recorder = HistoryRecorder(clock=lambda: float(next(ticks)))
    store: dict[str, Any] = {}
    fresh = itertools.count(1)
    written: list[Any] = [None]
    pool = [_Client(p) for p in range(clients)]
    next_process = clients
    issued = 0
    while issued < ops or any(c.handle for c in pool):
        client = rng.choice(pool)
        if client.handle is None:
            if issued < ops:
                client.handle = _invoke(rng, recorder, client.process, keys, fresh, written)
                issued += 1
            continue
        roll = rng.random()
        if roll < crash_p:  # the client dies: its op may or may not have taken effect
            recorder.info(client.handle)
            pool[pool.index(client)] = _Client(next_process)
            next_process += 1
        elif not client.applied and roll < crash_p + fail_p:
            recorder.fail(client.handle)
            client.handle = None
        elif not client.applied:
            client.result = _apply(store, client.handle, rng)
            client.applied = True
        else:
            recorder.ok(client.handle, **client.result)
            client.handle, client.applied, client.result = None, False, {}
    return recorder


def _invoke(
    rng: random.Random,
    recorder: HistoryRecorder,
    process: int,
    keys: tuple[str, ...],
    fresh: itertools.count[int],
    written: list[Any],
) -> OpHandle:
    key = rng.choice(keys)
    f: OpKind = rng.choice(["set", "get", "get", "delete", "cas", "cas"])
    if f == "set":
        value: Any = {"w": next(fresh)}
        written.append(value)
        return recorder.invoke(process, f, key, value)
    if f == "cas":
        new = {"w": next(fresh)}
        expected = rng.choice(written[-6:])
        written.append(new)
        return recorder.invoke(process, f, key, (expected, new))
    return recorder.invoke(process, f, key)


def _apply(store: dict[str, Any], handle: OpHandle, rng: random.Random) -> dict[str, Any]:
    """Take effect atomically; return what ``ok`` will report."""
    key = handle.key
    assert isinstance(key, str)
    if handle.f == "set":
        store[key] = handle.value
        return {}
    if handle.f == "get":
        return {"value": store.get(key)}
    if handle.f == "delete":
        existed = store.pop(key, None) is not None
        return {"deleted": existed} if rng.random() < 0.5 else {}
    expected, new = handle.value
    if store.get(key) == expected:
        store[key] = new
        return {"success": True}
    return {"success": False}
