"""machine layer (see DESIGN §2): deterministic state machines and client sessions."""

from __future__ import annotations

from resonetics.machine.base import StateMachine
from resonetics.machine.kv import KeyValueStore
from resonetics.machine.replicated import ApplyResult, ReplicatedKV, receipt_of
from resonetics.machine.sessions import SessionTable

__all__ = [
    "ApplyResult",
    "KeyValueStore",
    "ReplicatedKV",
    "SessionTable",
    "StateMachine",
    "receipt_of",
]
