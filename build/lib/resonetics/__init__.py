"""Resonetics: a Raft-replicated, hash-chained, verifiable log and key-value store.

The public surface, importable from here: ``Client`` and ``AsyncClient`` (talk to a
cluster), ``Receipt`` (where a write sits in the history), ``StateMachine`` (the base
class for embedders), ``ReplicatedObject`` with its ``command``/``query`` decorators,
``Node`` (a member run inside your program), ``proxy`` (typed calls of a machine's ops) and
the typed errors. They are loaded on first use, so importing
``resonetics`` (and starting the command line) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from resonetics.lazy import lazy_getattr

__version__ = "0.1.0"

_EXPORTS = {
    "Client": "resonetics.client",
    "AsyncClient": "resonetics.client",
    "Receipt": "resonetics.client",
    "StateMachine": "resonetics.machine.base",
    "Node": "resonetics.node",
    "LocalRead": "resonetics.node",
    "proxy": "resonetics.proxies",
    "ResoneticsError": "resonetics.errors",
    "ClientError": "resonetics.errors",
    "NotLeader": "resonetics.errors",
    "Timeout": "resonetics.errors",
    "Unavailable": "resonetics.errors",
    "BadRequest": "resonetics.errors",
    "TooLarge": "resonetics.errors",
    "RateLimited": "resonetics.errors",
    "ReplicatedObject": "resonetics.machine.replicated_object",
    "command": "resonetics.machine.replicated_object",
    "query": "resonetics.machine.replicated_object",
    "WatchEvent": "resonetics.client",
    "Compacted": "resonetics.errors",
}

if TYPE_CHECKING:
    from resonetics.client import AsyncClient, Client, Receipt, WatchEvent
    from resonetics.errors import (
        BadRequest,
        ClientError,
        Compacted,
        NotLeader,
        RateLimited,
        ResoneticsError,
        Timeout,
        TooLarge,
        Unavailable,
    )
    from resonetics.machine.base import StateMachine
    from resonetics.machine.replicated_object import ReplicatedObject, command, query
    from resonetics.node import LocalRead, Node
    from resonetics.proxies import proxy


__getattr__ = lazy_getattr(__name__, _EXPORTS)


__all__ = [
    "AsyncClient",
    "BadRequest",
    "Client",
    "ClientError",
    "LocalRead",
    "Node",
    "Compacted",
    "NotLeader",
    "RateLimited",
    "Receipt",
    "ReplicatedObject",
    "ResoneticsError",
    "StateMachine",
    "Timeout",
    "TooLarge",
    "Unavailable",
    "WatchEvent",
    "__version__",
    "command",
    "query",
    "proxy",
]
