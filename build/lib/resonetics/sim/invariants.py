"""Raft safety checks the simulator runs after every step, incrementally.

Theory of operation
-------------------
``check/invariants.py`` states the properties over whole logs; re-running them
over every node's full log after each of tens of thousands of steps would cost
more than the simulation. The ``SafetyMonitor`` instead sees each fact once,
where it appears, and keeps just enough global memory to judge it:

* election safety: ``term -> leader`` over the whole run (Raft §5.2);
* log matching: every appended entry must link to the node's previous hash
  (the chain) and agree with every other entry ever seen at its (index, term)
  (§5.3). Because the hash covers the whole prefix, agreeing on one hash is
  agreeing on the history before it;
* leader completeness: an entry seen committed while the observer's term was
  ``t`` must be in the log of every leader of a term above ``t`` (§5.4);
* state machine safety: one hash per applied index across all nodes (§5.4.3);
* a live node's commit index never decreases; a node never grants two votes in
  one term and its term never goes back, across crashes (the vote and term
  are recorded when the message that depends on them leaves the node);
* acknowledged writes: their receipts (index, hash) are checked at the end;
* lease safety: a lease read is served only while no leader of a later term
  has been elected (the lease's promise, §6.4.1);
* an ack is a durability promise: a node that acknowledged index ``i`` restarts
  from its disk with a log reaching ``i`` (unless it truncated below ``i``
  since, for a later leader), and no truncation ever cuts an entry the cluster
  committed;
* safe promotion: a CONFIG entry that makes a learner a voter appears only after
  that node itself answered (AppendEntries or InstallSnapshot success) up to the
  index its add recorded (``catch_up_index``: the leader's commit index then). The
  referee counts what the node *sent*, never what a leader believed.

A violated property raises ``SimViolation``; the runner adds the seed, options
and trace.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from resonetics.check.invariants import election_safety
from resonetics.raft.entry import Entry, EntryType, entry_links
from resonetics.raft.membership import Membership
from resonetics.raft.packing import unpacked
from resonetics.raft.types import Index, NodeId, Term
from resonetics.sim.lease_checks import LeaseMonitor
from resonetics.sim.stale_reads import StaleReadOracle

#: Read once: an enum member read off its class costs a descriptor call per entry.
_CONFIG = EntryType.CONFIG


class SimViolation(Exception):
    """A safety or liveness property failed; the message says which and where."""


@dataclass(slots=True)
class Receipt:
    """Where an acknowledged write landed: the entry a client was told about."""

    client: str
    index: Index
    term: Term
    hash: str


@dataclass(slots=True)
class SafetyMonitor:
    """Global memory of what every node has said and done during one run."""

    leaders: dict[Term, NodeId] = field(default_factory=dict)
    seen: dict[tuple[Index, Term], str] = field(default_factory=dict)
    applied: dict[Index, tuple[NodeId, str]] = field(default_factory=dict)
    #: The first copy of every applied entry (the watch checker replays them).
    entries: dict[Index, Entry] = field(default_factory=dict)
    #: index -> hash of entries known committed; ``commit_terms``: observer term -> max index.
    committed: dict[Index, str] = field(default_factory=dict)
    commit_terms: dict[Term, Index] = field(default_factory=dict)
    committed_max: Index = 0
    commit_seen: dict[NodeId, Index] = field(default_factory=dict)
    votes: dict[tuple[NodeId, Term], NodeId] = field(default_factory=dict)
    sent_term: dict[NodeId, Term] = field(default_factory=dict)
    receipts: list[Receipt] = field(default_factory=list)
    elections: int = 0
    #: node -> the highest index it acknowledged (AppendEntriesResp) and still holds.
    acked: dict[NodeId, Index] = field(default_factory=dict)
    #: node -> the highest index it ever answered with a success (never lowered: a
    #: leader's match index is at most this); checked at every promotion.
    answered: dict[NodeId, Index] = field(default_factory=dict)
    #: learner -> the highest ``catch_up_index`` any CONFIG entry recorded for it.
    catch_up_required: dict[NodeId, Index] = field(default_factory=dict)
    #: Committed history replayed, to check stale reads against (``stale_reads.py``).
    stale_reads: StaleReadOracle = field(default_factory=StaleReadOracle)
    #: Lease ends per index and clients' TTL promises (``sim/lease_checks.py``).
    leases: LeaseMonitor = field(default_factory=LeaseMonitor)

    # --- leaders --------------------------------------------------------------------
    def on_leader(self, node: NodeId, term: Term, hash_at: dict[Index, str | None]) -> None:
        """``node`` is leader in ``term``; ``hash_at`` maps probe indexes to its log's hashes."""
        known = self.leaders.get(term)
        if known == node:
            return
        if known is not None:
            found = election_safety({term: [known, node]})
            raise SimViolation(found[0] if found else f"two leaders in term {term}")
        self.leaders[term] = node
        self.elections += 1
        for index, digest in hash_at.items():
            if digest != self.committed.get(index):
                raise SimViolation(
                    f"leader completeness: {node} leads term {term} without committed entry "
                    f"{index} (committed {str(self.committed.get(index))[:12]}, its log has {str(digest)[:12]})"
                )

    def completeness_probes(self, term: Term) -> list[Index]:
        """Committed indexes a new leader of ``term`` must hold (the highest suffices: chain)."""
        index = max((i for t, i in self.commit_terms.items() if t < term), default=0)
        return [index] if index > 0 else []

    def on_lease_read(self, node: NodeId, term: Term) -> None:
        """``node``, leader of ``term``, served a read from its lease (no heartbeat round).

        A lease promises that no other leader can be elected before it runs out
        (dissertation §6.4.1), so a leader of a later term already elected means the
        lease was void: the read may miss that leader's writes, whether or not the
        history happens to show it.
        """
        later = sorted(t for t in self.leaders if t > term)
        if later:
            raise SimViolation(
                f"lease read served by {node} as leader of term {term} after "
                f"{self.leaders[later[0]]} was elected leader of term {later[0]}"
            )

    # --- the log -----------------------------------------------------------------------
    def on_append(self, node: NodeId, prev_hash: str, entries: Sequence[Entry]) -> None:
        for entry in entries:
            if not entry_links(prev_hash, entry):
                raise SimViolation(
                    f"hash chain: {node} appended index {entry.index} that does not link "
                    f"to its previous hash {prev_hash[:12]}"
                )
            key = (entry.index, entry.term)
            known = self.seen.setdefault(key, entry.hash)
            if known != entry.hash:
                raise SimViolation(
                    f"log matching: {node} has index {entry.index} term {entry.term} with hash "
                    f"{entry.hash[:12]}, another node had {known[:12]}"
                )
            prev_hash = entry.hash
            if entry.type is _CONFIG:
                self._check_promotion(node, entry)

    def _check_promotion(self, node: NodeId, entry: Entry) -> None:
        """A voter entering through a joint change must have answered up to its bar."""
        m = Membership.from_data(entry.data)
        for learner, index in m.catch_up_index.items():
            if index > self.catch_up_required.get(learner, 0):
                self.catch_up_required[learner] = index
        if not m.joint:
            return
        for promoted in set(m.voters) - set(m.voters_outgoing):
            required = self.catch_up_required.get(promoted)
            if required is None:
                continue  # added as a voter of the initial configuration, not a learner
            if self.answered.get(promoted, 0) < required:
                raise SimViolation(
                    f"unsafe promotion: {node} holds CONFIG index {entry.index} making "
                    f"{promoted} a voter, but {promoted} never answered beyond index "
                    f"{self.answered.get(promoted, 0)} (its bar: {required})"
                )

    def on_answer(self, node: NodeId, index: Index) -> None:
        """``node`` answered a leader with a success up to ``index``."""
        if index > self.answered.get(node, 0):
            self.answered[node] = index

    def on_commit(
        self, node: NodeId, term: Term, commit: Index, hashes: dict[Index, str | None]
    ) -> None:
        """``node`` (at ``term``) reports ``commit``; ``hashes`` are its log's new committed hashes."""
        before = self.commit_seen.get(node)
        if before is not None and commit < before:
            raise SimViolation(f"commit index of {node} went back from {before} to {commit}")
        self.commit_seen[node] = commit
        for index, digest in hashes.items():
            if digest is None:
                continue  # compacted on this node; its anchor's hash is checked instead
            known = self.committed.setdefault(index, digest)
            if known != digest:
                raise SimViolation(
                    f"committed entry changed: index {index} committed as {known[:12]}, "
                    f"{node} commits {str(digest)[:12]}"
                )
        self.committed_max = max(self.committed_max, commit)
        if commit > self.commit_terms.get(term, 0):
            self.commit_terms[term] = commit

    def commit_unchanged(self, node: NodeId, term: Term, commit: Index, digest: str | None) -> bool:
        """Whether ``on_commit`` for ``node`` at ``term`` with ``commit`` and the hash
        ``digest`` its log has there would change nothing and find nothing.

        Most steps leave a node's commit index where it was; ``on_commit`` would then
        only re-check the hash at ``commit`` against the committed one. When that
        hash still matches, the node's commit index is the one it reported last
        (not forgotten in a crash since) and ``term`` already counts it, the full
        check is a no-op, so the caller skips it (``sim/cluster.py``). Anything
        else (the hash differs, is compacted, the commit moved) takes the full path.
        """
        if self.commit_seen.get(node) != commit or commit > self.commit_terms.get(term, 0):
            return False
        return commit == 0 or (digest is not None and self.committed.get(commit) == digest)

    def on_truncate(self, node: NodeId, index: Index, cut: dict[Index, str]) -> None:
        """``node``'s disk drops its log from ``index`` on; ``cut`` holds the hashes dropped.

        Only an uncommitted suffix may go (Raft §5.3: a committed entry is in every
        later leader's log, so it never conflicts). An entry acknowledged before
        is no longer promised: a later leader may overwrite what an earlier one
        was told.
        """
        for i, digest in sorted(cut.items()):
            if self.committed.get(i) == digest:
                raise SimViolation(
                    f"truncation below the commit index: {node} cuts index {i} "
                    f"({digest[:12]}), which is committed"
                )
        if self.acked.get(node, 0) >= index:
            self.acked[node] = index - 1

    def on_ack_sent(self, node: NodeId, match_index: Index) -> None:
        """``node`` told a leader it holds the log up to ``match_index``."""
        if match_index > self.acked.get(node, 0):
            self.acked[node] = match_index

    def on_recovered(self, node: NodeId, last_index: Index) -> None:
        """``node`` restarted from its disk with a log ending at ``last_index``."""
        acked = self.acked.get(node, 0)
        if last_index < acked:
            raise SimViolation(
                f"acknowledged entry lost: {node} acknowledged index {acked} and restarted "
                f"with its log ending at {last_index} (acked before it was durable)"
            )

    def forget_commit(self, node: NodeId) -> None:
        """A crashed node restarts from its durable commit hint, which may be lower."""
        self.commit_seen.pop(node, None)

    def on_apply(self, node: NodeId, entry: Entry) -> None:
        first = entry.index not in self.applied
        known = self.applied.setdefault(entry.index, (node, entry.hash))
        if first:
            # A node that restarted applies the client entries it loaded packed.
            entry = unpacked(entry)
            self.stale_reads.observe(entry)
            self.entries[entry.index] = entry
        if known[1] != entry.hash:
            raise SimViolation(
                f"state machine safety: index {entry.index} applied as {known[1][:12]} on "
                f"{known[0]} but as {entry.hash[:12]} on {node}"
            )
        # Applied means committed. This also records an index that a node committed and
        # compacted within one step, where ``on_commit`` only sees the snapshot's anchor.
        committed = self.committed.setdefault(entry.index, entry.hash)
        if committed == "":
            self.committed[entry.index] = committed = entry.hash
        if committed != entry.hash:
            raise SimViolation(
                f"state machine safety: {node} applied index {entry.index} as "
                f"{entry.hash[:12]}, committed is {committed[:12]}"
            )

    # --- what left a node ----------------------------------------------------------------
    def on_vote_sent(self, voter: NodeId, term: Term, candidate: NodeId) -> None:
        known = self.votes.setdefault((voter, term), candidate)
        if known != candidate:
            raise SimViolation(
                f"double vote: {voter} voted for {known} and for {candidate} in term {term}"
            )

    def on_term_sent(self, node: NodeId, term: Term) -> None:
        if term > self.sent_term.get(node, 0):
            self.sent_term[node] = term

    def on_restart(self, node: NodeId, term: Term) -> None:
        self.forget_commit(node)
        sent = self.sent_term.get(node, 0)
        if term < sent:
            raise SimViolation(f"{node} restarted at term {term} after sending term {sent}")

    # --- the end -------------------------------------------------------------------------
    def check_receipts(self, final_hashes: dict[NodeId, dict[Index, str | None]]) -> None:
        """Every acknowledged write is committed and in every node's final log."""
        for receipt in self.receipts:
            if self.committed.get(receipt.index) != receipt.hash:
                raise SimViolation(
                    f"acknowledged write lost: {receipt.client} was told index {receipt.index} "
                    f"hash {receipt.hash[:12]}, committed is {self.committed.get(receipt.index)}"
                )
            for node, hashes in final_hashes.items():
                if hashes.get(receipt.index) != receipt.hash:
                    raise SimViolation(
                        f"acknowledged write lost: index {receipt.index} is not in the log of {node}"
                    )


__all__ = ["Receipt", "SafetyMonitor", "SimViolation"]
