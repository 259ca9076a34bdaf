"""Pausing Python's cyclic garbage collector around bulk work that makes no cycles.

A node's start makes millions of long-lived objects in a row (parsing the log,
replaying it into the state machine). Every 700 allocations the collector runs,
and its older generations walk everything made so far, again and again: 45 % of
the CPU of parsing a 200k-entry log and a third of replaying 50k entries went
there. None of that work makes cyclic garbage (entries, dicts, strings and
tuples that stay alive or are freed by reference counting), so the collector has
nothing to find; it runs again as usual once the work is over.

Rejected: ``gc.freeze()`` after start (moves everything to a generation never
walked again): a process-wide choice for whoever embeds the node, not this
library's to make.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused(active: bool = True) -> Iterator[None]:
    """No cyclic collection inside the block (when ``active``); the collector is left
    as it was found afterwards, also on error."""
    if not active or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


__all__ = ["gc_paused"]
