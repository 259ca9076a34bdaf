"""Every seed that ever failed, kept forever (with what it found and how it was fixed).

Each entry replays the exact run that failed; it must pass now.
"""

from __future__ import annotations

import pytest

from resonetics.sim.options import SimOptions
from resonetics.sim.runner import run_seed

REGRESSIONS: list[tuple[int, SimOptions, str]] = [
    (
        0,
        SimOptions(),
        "simulator false positive: the term check counted the term of PreVote requests "
        "(term + 1, never adopted) as a term the node had sent; PreVote rounds are now exempt",
    ),
    (
        1,
        SimOptions(),
        "same as seed 0 (a node restarted at term 1 after a PreVote at term 2)",
    ),
]


@pytest.mark.parametrize(
    ("seed", "options", "why"), REGRESSIONS, ids=[f"seed{s}" for s, _, _ in REGRESSIONS]
)
def test_regression(seed: int, options: SimOptions, why: str) -> None:
    result = run_seed(seed, options)
    result.raise_for_failure()
    assert result.verdict == "linearizable", why
