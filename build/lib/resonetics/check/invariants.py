"""Raft safety properties as pure functions over plain data (Raft paper, Figure 3).

Each function takes what an observer (the simulator, a test, an auditor) saw and
returns a list of violations as readable strings: empty means the property held.
They never raise on bad data, because their callers want every violation at
once, named, rather than the first one as an exception.

Hashes are the entries' chain hashes (DESIGN §4): two entries are the same entry
iff their hashes are equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations, pairwise

__all__ = ["election_safety", "log_matching", "state_machine_safety"]

LogEntry = tuple[int, int, str]  # (index, term, hash)
Applied = tuple[int, str]  # (index, hash)


def election_safety(leaders_by_term: Mapping[int, Iterable[str]]) -> list[str]:
    """At most one leader can be elected in a given term (§5.2)."""
    violations: list[str] = []
    for term in sorted(leaders_by_term):
        leaders = sorted(set(leaders_by_term[term]))
        if len(leaders) > 1:
            violations.append(f"election safety: term {term} has leaders {', '.join(leaders)}")
    return violations


def _well_formed(node: str, log: Sequence[LogEntry]) -> list[str]:
    """A log's indexes are consecutive and its terms never decrease."""
    problems: list[str] = []
    for (index_a, term_a, _), (index_b, term_b, _) in pairwise(log):
        if index_b != index_a + 1:
            problems.append(f"log of {node}: index {index_b} follows index {index_a}")
        if term_b < term_a:
            problems.append(f"log of {node}: term falls from {term_a} to {term_b} at {index_b}")
    return problems


def log_matching(logs: Mapping[str, Sequence[LogEntry]]) -> list[str]:
    """If two logs hold an entry with the same index and term, they agree up to it (§5.3).

    Logs may start after index 1 (compaction); only shared indexes are compared.
    """
    violations: list[str] = []
    for node in sorted(logs):
        violations.extend(_well_formed(node, logs[node]))
    for a, b in combinations(sorted(logs), 2):
        violations.extend(_match_pair(a, logs[a], b, logs[b]))
    return violations


def _match_pair(a: str, log_a: Sequence[LogEntry], b: str, log_b: Sequence[LogEntry]) -> list[str]:
    by_index_b = {index: (term, digest) for index, term, digest in log_b}
    shared = [(i, t, h, *by_index_b[i]) for i, t, h in log_a if i in by_index_b]
    # The highest shared index where the terms agree: everything up to it must match.
    agreed = max((i for i, ta, _, tb, _ in shared if ta == tb), default=None)
    if agreed is None:
        return []
    violations: list[str] = []
    for index, term_a, hash_a, term_b, hash_b in shared:
        if index > agreed:
            break
        if (term_a, hash_a) != (term_b, hash_b):
            violations.append(
                f"log matching: {a} and {b} share index {agreed} in term "
                f"{by_index_b[agreed][0]} but differ at index {index}: "
                f"{a} has (term {term_a}, hash {hash_a}), {b} has (term {term_b}, hash {hash_b})"
            )
    return violations


def state_machine_safety(applied: Mapping[str, Sequence[Applied]]) -> list[str]:
    """No two nodes apply different entries at the same index (§5.4.3); each once, in order.

    An applied list may skip indexes (a snapshot was installed in their place).
    """
    violations: list[str] = []
    first_seen: dict[int, tuple[str, str]] = {}
    for node in sorted(applied):
        previous: int | None = None
        for index, digest in applied[node]:
            # Gaps are fine (a snapshot was installed instead); going back is applying twice.
            if previous is not None and index <= previous:
                violations.append(f"{node} applied index {index} after index {previous}")
            previous = index
            seen = first_seen.setdefault(index, (node, digest))
            if seen[1] != digest:
                violations.append(
                    f"state machine safety: index {index} applied as {seen[1]} on {seen[0]} "
                    f"but as {digest} on {node}"
                )
    return violations
