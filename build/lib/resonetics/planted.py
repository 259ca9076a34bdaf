"""Planted bugs: classic consensus and driver mistakes, each behind a switch the tests turn on.

Theory of operation
-------------------
A referee is only as good as the bugs it has been seen to catch. Each entry of
``CATALOGUE`` names one well-known mistake, the file it lives in, the simulator
options that expose it and a budget: how many seeds (from 0) a sweep may run
before the simulator must have reported it. The code under test carries the
mistake as a one-line ``if planted.on(Bug.X):`` at the very point where the
correct rule is applied, so the bug is the real code path with one rule
removed, not a copy of it.

No bug is on unless a caller switches it on (``resonetics sim --plant NAME``,
``SimOptions.plant``, or ``switched_on`` in a test). The cost when off is one
membership test in an empty frozenset per call site; nothing else changes.

The catalogue is run by ``tests/sim/test_planted_bugs.py`` (CI budget) and by
``make soak`` (``SOAK_FACTOR`` times the budget).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Bug(StrEnum):
    """The planted bugs, by the name the command line uses."""

    LEASE_ALWAYS_VALID = "lease-always-valid"
    FIGURE8_COMMIT_BY_COUNTING = "figure8-commit-by-counting"
    VOTE_NOT_PERSISTED = "vote-not-persisted"
    STALE_READ_AFTER_TRANSFER = "stale-read-after-transfer"
    FOLLOWER_COMMIT_BEYOND_CONFIRMED = "follower-commit-beyond-confirmed"
    TRUNCATE_BELOW_COMMIT = "truncate-below-commit"
    SESSION_RESULTS_CROSSED = "session-results-crossed"
    APPLY_BEFORE_COMMIT = "apply-before-commit"
    ACK_BEFORE_FSYNC = "ack-before-fsync"
    ANSWER_BEFORE_DURABLE = "answer-before-durable"
    LOST_WAKEUP = "lost-wakeup"
    SNAPSHOT_INSTALL_RACES_LOG_WRITE = "snapshot-install-races-log-write"
    APPENDS_NEVER_FSYNCED = "appends-never-fsynced"
    READ_WOKEN_ONLY_BY_APPLY = "read-woken-only-by-apply"
    TXN_IGNORES_COMPARES = "txn-ignores-compares"
    TXN_SPLIT_ACROSS_ENTRIES = "txn-split-across-entries"
    NEW_LEADER_TRUSTS_LOGGED_DEADLINE = "new-leader-trusts-logged-deadline"


@dataclass(frozen=True, slots=True)
class Planted:
    """One catalogue entry: what the bug is, where it lives, how the simulator finds it."""

    bug: Bug
    #: The mistake, in one line.
    summary: str
    #: The file (under src/resonetics) holding the switch.
    where: str
    #: Keyword arguments of ``SimOptions`` for the sweep that must catch it.
    options: dict[str, Any] = field(default_factory=dict)
    #: Seeds (0, 1, ...) the CI sweep may run before the first catch; 0 while no sweep
    #: has caught it yet (then ``missed`` says what the simulator lacks).
    budget: int = 20
    missed: str = ""
    #: The checks allowed to catch it: each a piece of the failure's text, which names
    #: the check (``sim/invariants.py``, ``sim/observed.py``, ``sim/runner.py``, ...).
    caught_by: tuple[str, ...] = ()


#: Multiplier of every budget for ``make soak``.
SOAK_FACTOR = 10

CATALOGUE: dict[Bug, Planted] = {
    p.bug: p
    for p in (
        Planted(
            Bug.LEASE_ALWAYS_VALID,
            "a leader answers lease reads without a quorum-echoed round (a deposed leader too)",
            "raft/node.py",
            {"faults": frozenset({"partition", "clock"}), "readers": 6},
            caught_by=("lease read served by",),
        ),
        Planted(
            Bug.FIGURE8_COMMIT_BY_COUNTING,
            "a leader commits an earlier term's entry once a majority holds it (Figure 8); "
            "no NOOP per term, which would mask it",
            "raft/node.py",
            {
                "faults": frozenset(),
                "scenario": "figure8",
                "append_entries_max": 1,
                "fault_ms": 8_000,
            },
            budget=20,
            caught_by=("leader completeness", "committed entry changed"),
        ),
        Planted(
            Bug.VOTE_NOT_PERSISTED,
            "meta.json keeps the term but not the vote: a restarted node votes twice in a term",
            "storage/node_storage.py",
            # A crash between a vote and a second candidate of the same term is rare under
            # random crashes (2 of seeds 0-119 with crash+partition); the revote scenario
            # cuts a voter's power right after it grants: 16 of seeds 0-59 catch it.
            {"faults": frozenset({"delay"}), "scenario": "revote"},
            budget=15,
            caught_by=("double vote",),
        ),
        Planted(
            Bug.STALE_READ_AFTER_TRANSFER,
            "a leader handing over leadership keeps serving lease reads (its lease is void)",
            "raft/node.py",
            {
                "faults": frozenset(),
                "membership_churn": True,
                "transfer_lag": True,
                "readers": 6,
            },
            budget=10,
            caught_by=("lease read served by",),
        ),
        Planted(
            Bug.FOLLOWER_COMMIT_BEYOND_CONFIRMED,
            "a follower commits up to leader_commit past what the AppendEntries confirmed",
            "raft/node.py",
            {"faults": frozenset({"partition", "crash", "delay"})},
            budget=10,
            caught_by=("state machine safety", "committed entry changed", "leader completeness"),
        ),
        Planted(
            Bug.TRUNCATE_BELOW_COMMIT,
            "a follower cuts its log after prev_log_index on every AppendEntries, stale ones "
            "too: it cuts entries the cluster has committed",
            "raft/node.py",
            {"faults": frozenset({"delay", "dup"})},
            budget=10,
            caught_by=("truncation below the commit index",),
        ),
        Planted(
            Bug.SESSION_RESULTS_CROSSED,
            "the results of a CLIENT_BATCH entry go to its clients in the wrong order",
            "machine/replicated.py",
            {"clients": 6, "batch_writes": True},
            budget=5,
            caught_by=("not linearizable", "without a session"),
        ),
        Planted(
            Bug.NEW_LEADER_TRUSTS_LOGGED_DEADLINE,
            "a new leader times leases from the deadline the log recorded at grant, "
            "forgetting the keep-alives the old leader acknowledged in memory",
            "runtime/leases.py",
            {"lease_clients": 4},
            budget=15,
            caught_by=("ended at index",),
        ),
        Planted(
            Bug.TXN_IGNORES_COMPARES,
            "a transaction runs its then branch without evaluating its compares",
            "machine/kv.py",
            {},
            budget=5,
            caught_by=("not linearizable",),
        ),
        Planted(
            Bug.TXN_SPLIT_ACROSS_ENTRIES,
            "a transaction applies its first write at its entry and the rest at the next one",
            "machine/kv.py",
            {},
            budget=5,
            caught_by=("not linearizable", "stale read of", "state machine safety"),
        ),
        Planted(
            Bug.APPLY_BEFORE_COMMIT,
            "the core hands out for applying an entry that is appended but not committed",
            "raft/node.py",
            {"faults": frozenset({"partition", "delay"})},
            budget=5,
            caught_by=("InvariantViolation", "state machine safety"),
        ),
        Planted(
            Bug.ACK_BEFORE_FSYNC,
            "acks (and votes) leave before the fsync of the Ready they depend on",
            "runtime/driver.py",
            {"faults": frozenset({"crash", "delay"})},
            budget=5,
            caught_by=("acknowledged entry lost", "restarted at term"),
        ),
        Planted(
            Bug.ANSWER_BEFORE_DURABLE,
            "a leader answers a set once its entry is in a Ready, before the write (here or on "
            "a quorum) is durable",
            "runtime/driver.py",
            {"faults": frozenset({"partition", "crash"})},
            budget=10,
            caught_by=("acknowledged write lost", "not linearizable"),
        ),
        Planted(
            Bug.APPENDS_NEVER_FSYNCED,
            "log appends are never fsynced: an acknowledged entry can vanish in a power cut",
            "runtime/driver.py",
            {"faults": frozenset({"crash"})},
            budget=10,
            caught_by=("acknowledged entry lost",),
        ),
        Planted(
            Bug.LOST_WAKEUP,
            "the loop finishes a disk-thread write and does not look for the work that "
            "arrived meanwhile (NodeServer._flush_done without its reschedule)",
            "sim/executor.py, server/node_server.py",
            {"faults": frozenset({"delay"})},
            budget=5,
            caught_by=("lost wake-up",),
        ),
        Planted(
            Bug.READ_WOKEN_ONLY_BY_APPLY,
            "a confirmed read is served only when an entry is applied (no other wake-up)",
            "runtime/driver.py",
            {"faults": frozenset({"delay"})},
            caught_by=("liveness",),
        ),
        Planted(
            Bug.SNAPSHOT_INSTALL_RACES_LOG_WRITE,
            "the loop plan forgets a snapshot is being saved: a Ready installs a snapshot "
            "while its file is being written or writes the log on the loop while the "
            "compaction is queued",
            "runtime/loop_plan.py",
            {"faults": frozenset({"crash", "longdown", "delay"})},
            budget=10,
            caught_by=("storage race",),
        ),
    )
}

_ON: frozenset[Bug] = frozenset()


def on(bug: Bug) -> bool:
    """Whether ``bug`` is switched on (always False outside a planted run)."""
    return bug in _ON


def parse(name: str) -> Bug:
    """A bug by its command-line name; ``ValueError`` naming the known ones otherwise."""
    try:
        return Bug(name.strip().lower())
    except ValueError:
        known = ", ".join(b.value for b in Bug)
        raise ValueError(f"unknown planted bug {name!r}; known: {known}") from None


@contextmanager
def switched_on(*bugs: Bug) -> Iterator[None]:
    """Switch ``bugs`` on for the ``with`` block (one run); what was on before comes back."""
    global _ON
    before = _ON
    _ON = before | frozenset(bugs)
    try:
        yield
    finally:
        _ON = before


__all__ = ["CATALOGUE", "SOAK_FACTOR", "Bug", "Planted", "on", "parse", "switched_on"]
