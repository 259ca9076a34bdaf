"""What a torture run says while it runs: a progress line every few seconds.

A run is minutes of silence otherwise (the faults, then the wind-down, then the
linearizability check), and an operator cannot tell a slow phase from a hung
one. The line names the phase, the elapsed time, the operations by outcome,
the faults injected so far and the monitor's last look at the cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def progress_line(
    elapsed_s: float,
    phase: str,
    ops: Mapping[str, int],
    faults: Mapping[str, int],
    leader: str | None,
    statuses: Mapping[str, Mapping[str, Any]],
) -> str:
    """One line: ``[  12.0 s] faults: ops 340 (ok 300, failed 30, unknown 10), ...``."""
    total = sum(ops.values())
    answered = ", ".join(f"{k} {ops.get(k, 0)}" for k in ("ok", "failed", "unknown"))
    injected = sum(faults.values())
    terms = [int(s.get("term", 0)) for s in statuses.values()]
    check = (
        f"leader {leader} (term {max(terms)})"
        if leader is not None and terms
        else "no leader answering"
    )
    return (
        f"[{elapsed_s:7.1f} s] {phase}: ops {total} ({answered}), faults {injected}; "
        f"last check: {check}, {len(statuses)} nodes answering"
    )


def faults_text(faults: Mapping[str, int]) -> str:
    """``kill x2, isolate x1`` or ``none``."""
    return ", ".join(f"{k} x{v}" for k, v in sorted(faults.items())) or "none"


__all__ = ["faults_text", "progress_line"]
