"""An adversary on the simulated network: forged peer messages and replays.

Theory of operation
-------------------
With ``SimOptions.adversary`` on, an attacker strikes at random moments of the
faulty phase (its own seeded ``Random``, so the other faults draw exactly what
they would without it). Each strike delivers one message to a running node
through ``Cluster.deliver_peer``, the path every genuine message takes, where
``runtime/peer_gate.py`` (the rule the server's peer listener runs) decides:

* **stranger**: a message claiming to come from a member, over a link that
  authenticated as nobody (what reaching a port without credentials gives);
* **spoofer**: a member's authenticated link carrying a message that claims to
  be from *another* member;
* **outsider**: a credential holder outside the configuration (a removed
  node) sending votes, vote requests with ``transfer`` set, TimeoutNow and
  acknowledgements.

The forged messages are the dangerous kinds, with a term far ahead of the
cluster's: an AppendEntries carrying fabricated entries that would overwrite
committed history and a commit index that would apply them, a RequestVote with
an unbeatable log, a TimeoutNow. Every one must be dropped at the gate;
``admitted`` counts any that were not, and the run fails if it is not zero.

* **replay**: a genuine message captured earlier is delivered again, much
  later, over its sender's authenticated link. The gate lets it through (it is
  authentic); Raft's term and index rules must make it harmless, which the
  simulator's invariants and the linearizability check then verify.

The outsider is limited to what a non-Byzantine removed node could send: a
credential holder forging a leader's AppendEntries is a Byzantine insider,
outside the threat model (docs/threat-model.md).
"""

from __future__ import annotations

import random
from collections import Counter, deque
from dataclasses import dataclass, field

from resonetics.raft.entry import GENESIS, EntryType, make_entry
from resonetics.raft.messages import (
    AppendEntries,
    AppendEntriesResp,
    Message,
    PreVote,
    RequestVote,
    RequestVoteResp,
    TimeoutNow,
)
from resonetics.sim.cluster import Cluster
from resonetics.sim.invariants import SimViolation

#: Gap between two strikes (virtual milliseconds).
STRIKE_GAP_MS = (5, 80)
#: Genuine messages remembered for replay.
CAPTURED_MAX = 512
#: How far ahead of the cluster's terms a forged term is.
TERM_AHEAD = 1_000
#: Fabricated entries in a forged AppendEntries.
FORGED_ENTRIES = 8
OUTSIDER = "mallory"


@dataclass(slots=True)
class AdversaryStats:
    #: Forged messages delivered to the gate, by flavor.
    forged: Counter[str] = field(default_factory=Counter)
    #: Forged messages the gate let through (must stay 0).
    admitted: int = 0
    replays: int = 0


class Adversary:
    """Strikes during the faulty phase; ``capture`` sees every genuine message sent."""

    #: Stop the run at the first forged message the gate lets through (a test switches
    #: this off to show that the other referees would catch the damage too).
    fail_fast = True

    def __init__(self, cluster: Cluster, rng: random.Random) -> None:
        self.cluster = cluster
        self.rng = rng
        self.stats = AdversaryStats()
        self._captured: deque[Message] = deque(maxlen=CAPTURED_MAX)

    def install(self) -> None:
        self.cluster.adversary = self
        self.cluster.queue.after(self.rng.randint(*STRIKE_GAP_MS), self._strike)

    def capture(self, msg: Message) -> None:
        if self.rng.random() < 0.2:
            self._captured.append(msg)

    def _strike(self) -> None:
        cluster = self.cluster
        if cluster.queue.now_ms >= cluster.options.fault_ms:
            return
        cluster.queue.after(self.rng.randint(*STRIKE_GAP_MS), self._strike)
        targets = [n for n in cluster.nodes.values() if n.up]
        if not targets:
            return
        target = self.rng.choice(targets).node_id
        flavor = self.rng.choice(("stranger", "spoofer", "outsider", "replay"))
        if flavor == "replay":
            if self._captured:
                msg = self.rng.choice(self._captured)
                self.stats.replays += 1
                cluster.deliver_peer(msg, authenticated=msg.src)
            return
        members = [n for n in cluster.ids if n != target]
        if not members:
            return
        claimed = self.rng.choice(members)
        if flavor == "stranger":
            msg, authenticated = self._dangerous(claimed, target), None
        elif flavor == "spoofer":
            liar = self.rng.choice([n for n in cluster.ids if n != claimed])
            msg, authenticated = self._dangerous(claimed, target), liar
        else:
            msg, authenticated = self._outsider(target), OUTSIDER
        self.stats.forged[flavor] += 1
        if cluster.deliver_peer(msg, authenticated=authenticated):
            self.stats.admitted += 1
            # The referee for the gate itself: fail at once, naming the message, rather
            # than waiting for the damage to show as a broken invariant.
            if self.fail_fast:
                raise SimViolation(
                    f"peer gate: forged message(s) were stepped: {flavor} "
                    f"{type(msg).__name__} {msg.src}->{msg.dst} as {authenticated}"
                )

    def _term(self) -> int:
        terms = [n.driver.core.term for n in self.cluster.nodes.values() if n.driver is not None]
        return max(terms, default=0) + self.rng.randint(1, TERM_AHEAD)

    def _dangerous(self, src: str, dst: str) -> Message:
        """One of the messages that would wreck the cluster if it were stepped."""
        term = self._term()
        kind = self.rng.randrange(3)
        if kind == 0:
            entries = []
            prev = GENESIS.hash
            for index in range(1, FORGED_ENTRIES + 1):
                entry = make_entry(prev, term, index, EntryType.NOOP, None)
                entries.append(entry)
                prev = entry.hash
            return AppendEntries(
                src=src, dst=dst, term=term, leader_id=src, prev_log_index=0,
                prev_log_term=0, prev_log_hash=GENESIS.hash, entries=entries,
                leader_commit=FORGED_ENTRIES,
            )  # fmt: skip
        if kind == 1:
            return RequestVote(
                src=src, dst=dst, term=term, candidate_id=src, last_log_index=10**9,
                last_log_term=term, transfer=True,
            )  # fmt: skip
        return TimeoutNow(src=src, dst=dst, term=term)

    def _outsider(self, dst: str) -> Message:
        term = self._term()
        choices: list[Message] = [
            RequestVote(
                src=OUTSIDER, dst=dst, term=term, candidate_id=OUTSIDER,
                last_log_index=10**9, last_log_term=term, transfer=True,
            ),
            PreVote(
                src=OUTSIDER, dst=dst, term=term, candidate_id=OUTSIDER,
                last_log_index=10**9, last_log_term=term,
            ),
            TimeoutNow(src=OUTSIDER, dst=dst, term=term),
            RequestVoteResp(src=OUTSIDER, dst=dst, term=term, vote_granted=True),
            AppendEntriesResp(src=OUTSIDER, dst=dst, term=term, success=True, match_index=10**6),
        ]  # fmt: skip
        return self.rng.choice(choices)


__all__ = ["Adversary", "AdversaryStats"]
