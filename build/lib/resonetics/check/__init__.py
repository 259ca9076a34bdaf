"""check layer (see DESIGN §2): linearizability and Raft safety checks over recorded data.

This package reads histories and states only; it imports no server, runtime or
Raft code, so it can judge any implementation, including a broken one.
"""

from __future__ import annotations

from resonetics.check.history import (
    HistoryRecorder,
    Operation,
    OpHandle,
    load_history,
    parse_history,
)
from resonetics.check.invariants import election_safety, log_matching, state_machine_safety
from resonetics.check.linearizability import (
    CheckResult,
    KeyResult,
    Verdict,
    check_history,
    check_key,
)

__all__ = [
    "CheckResult",
    "HistoryRecorder",
    "KeyResult",
    "OpHandle",
    "Operation",
    "Verdict",
    "check_history",
    "check_key",
    "election_safety",
    "load_history",
    "log_matching",
    "parse_history",
    "state_machine_safety",
]
