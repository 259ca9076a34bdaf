"""What ``verify`` computes across the node folders of one data dir, trusting no hint.

Theory of operation
-------------------
*Cluster.* Every node folder names its cluster in ``meta.json`` and, while its
log is not compacted, in its GENESIS anchor. The cluster most folders name is
the data dir's; a folder of another cluster is reported and left out of
everything below (its chain hashes differ at every index anyway).

*Commit index.* ``meta.json``'s commit index is a hint written lazily (it may
lag by thousands of entries), so it is not used as truth. The commit index is
derived from the logs: the highest index ``c`` at which one chain hash is held
by a majority of the voters, so that, by the hash chain, that majority holds
the whole history up to ``c``. The voters are those of the newest
configuration any log or snapshot shows (in a joint configuration, a majority
of both the old and the new voters); with no configuration in any log (a
cluster still at its initial voters), every node folder present is a voter. A
folder compacted past an index counts for it when a node holding that index
also holds the folder's snapshot anchor. Right after a membership change the
derived index can be lower than the one the cluster used (a new voter still
catching up): it is a lower bound, never a claim the logs do not support.

*Divergence.* A node whose log holds an index up to ``c`` with another hash
than the committed history's is a failure naming the node and the first such
index. Differences above ``c`` are an uncommitted suffix Raft may overwrite
(a note).

*State.* A snapshot is a node's applied state at its index. Replaying the
committed log from GENESIS (or from another node's snapshot at a lower index)
must give the same ``state_digest`` (``machine/replicated.py``) as the
snapshot; a snapshot that differs from what the history implies is reported.
The replay applies entries, never a compacted log's anchor: a SNAP_DUMMY has
the chain hash of the entry at its index but not its data. The entry is taken
from any folder whose log holds it with that hash; an index left with nothing
but anchors stops the replay there, and the snapshot beyond it is noted
unchecked (with nodes snapshotting at different indexes, as a loaded cluster's
do, replaying the anchor would report sound snapshots as wrong).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec

from resonetics.errors import ResoneticsError
from resonetics.machine.replicated import ReplicatedKV
from resonetics.raft.entry import Entry, EntryType, genesis_entry
from resonetics.raft.membership import Membership
from resonetics.storage.verify import NodeReport


@dataclass(slots=True)
class History:
    """The committed history as the logs show it."""

    #: The cluster most folders name ("" for the anonymous GENESIS), or None if none does.
    cluster_id: str | None = None
    #: Voter groups a majority of each of which must hold an entry for it to be committed.
    voter_groups: list[tuple[str, ...]] = field(default_factory=list)
    #: How the voters were found, for the report.
    voters_from: str = ""
    #: Members (voters and learners) of that configuration; None: every folder.
    members: frozenset[str] | None = None
    #: The derived commit index (0 when no index beyond GENESIS is held by a majority).
    commit_index: int = 0
    commit_hash: str | None = None
    #: index -> committed entry, for the indexes some majority holder still has in its log.
    committed: dict[int, Entry] = field(default_factory=dict)
    #: Indexes of ``committed`` held only as a compacted log's anchor (a SNAP_DUMMY with
    #: the entry's chain hash but not its data): good for comparing hashes, not replay.
    anchor_only: set[int] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def check_history(nodes: Sequence[NodeReport]) -> History:
    """Derive the commit index and check every node against it (see the module doc)."""
    history = History()
    members = _same_cluster(nodes, history)
    readable = [n for n in members if n.anchor is not None]
    if not readable:
        return history
    _find_voters(readable, history)
    _derive_commit(readable, history)
    for node in readable:
        _check_divergence(node, history, history.members is None or node.name in history.members)
        hint = node.meta.hard_state.commit if node.meta is not None else 0
        if hint > history.commit_index:
            history.notes.append(
                f"{node.name}: meta.json's commit hint {hint} is beyond the commit index "
                f"{history.commit_index} the logs show held by a majority"
            )
    _check_states(readable, history)
    return history


# --- cluster ---------------------------------------------------------------------------
def _same_cluster(nodes: Sequence[NodeReport], history: History) -> list[NodeReport]:
    named = {n.name: n.cluster_id for n in nodes if n.cluster_id is not None}
    if not named:
        return list(nodes)
    counts = Counter(named.values())
    top = max(counts.values())
    # A tie (two folders, two clusters) picks the smaller id; either way one is reported.
    cluster = sorted(c for c, k in counts.items() if k == top)[0]
    history.cluster_id = cluster
    members = []
    for node in nodes:
        if node.cluster_id is not None and node.cluster_id != cluster:
            history.problems.append(
                f"{node.name} belongs to another cluster ({_show(node.cluster_id)}, "
                f"the others to {_show(cluster)}): another cluster's data dir"
            )
        else:
            members.append(node)
    return members


def _show(cluster_id: str) -> str:
    return cluster_id or "the anonymous cluster"


# --- voters and commit index -------------------------------------------------------------
def _find_voters(nodes: Sequence[NodeReport], history: History) -> None:
    best: tuple[int, Membership, str] | None = None
    for node in nodes:
        if node.snapshot is not None:
            at = node.snapshot.meta.last_included_index
            if best is None or at > best[0]:
                best = (at, node.snapshot.meta.membership, f"{node.name}'s snapshot")
        for entry in reversed(node.entries):
            if entry.type is EntryType.CONFIG:
                if best is None or entry.index > best[0]:
                    membership = _membership(entry)
                    if membership is not None:
                        best = (entry.index, membership, f"{node.name}'s log")
                break
    if best is None:
        names = tuple(sorted(n.name for n in nodes))
        history.voter_groups = [names]
        history.voters_from = "every node folder present (no configuration in the logs)"
        return
    index, membership, where = best
    history.members = membership.members()
    history.voter_groups = [tuple(membership.voters)]
    if membership.voters_outgoing:
        history.voter_groups.append(tuple(membership.voters_outgoing))
    history.voters_from = f"the configuration at index {index} ({where})"


def _membership(entry: Entry) -> Membership | None:
    try:
        return Membership.from_data(entry.data)
    except (msgspec.ValidationError, TypeError):
        return None


def _derive_commit(nodes: Sequence[NodeReport], history: History) -> None:
    top = max(n.last_index or 0 for n in nodes)
    bottom = min(n.anchor.index for n in nodes if n.anchor is not None)
    for index in range(top, bottom - 1, -1):
        holders: dict[str, list[NodeReport]] = {}
        for node in nodes:
            entry = node.entry_at(index)
            if entry is not None:
                holders.setdefault(entry.hash, []).append(node)
        for hash_, direct in sorted(holders.items(), key=lambda kv: -len(kv[1])):
            backing = {n.name for n in nodes if n in direct or _compacted_past(n, index, direct)}
            if all(_majority(group, backing) for group in history.voter_groups):
                history.commit_index, history.commit_hash = index, hash_
                _collect_committed(direct, index, history, nodes)
                return


def _compacted_past(node: NodeReport, index: int, direct: list[NodeReport]) -> bool:
    """A folder whose snapshot anchor lies beyond ``index`` and on a holder's chain."""
    anchor = node.anchor
    if anchor is None or anchor.index <= index:
        return False
    for holder in direct:
        at = holder.entry_at(anchor.index)
        if at is not None and at.hash == anchor.hash:
            return True
    return False


def _majority(group: tuple[str, ...], backing: set[str]) -> bool:
    return sum(1 for name in group if name in backing) * 2 > len(group)


def _collect_committed(
    holders: list[NodeReport], commit: int, history: History, nodes: Sequence[NodeReport]
) -> None:
    """The committed entries the holders' logs show, each an entry itself where any
    log has it: a compacted log's anchor only carries the chain (a SNAP_DUMMY, no
    data), so an index no log holds but as an anchor goes to ``anchor_only`` and is
    never replayed as if it were the entry."""
    for node in holders:
        assert node.anchor is not None
        for index in range(node.anchor.index + 1, commit + 1):
            if index not in history.committed:
                entry = node.entry_at(index)
                if entry is not None:
                    history.committed[index] = entry
    for node in holders:
        assert node.anchor is not None
        index = node.anchor.index
        if index <= commit and index not in history.committed:
            history.committed[index] = node.anchor
            history.anchor_only.add(index)
    for index in sorted(history.anchor_only):
        # A folder lagging behind the commit index may still hold the entry itself: the
        # same chain hash pins the same entry and everything before it.
        for node in nodes:
            entry = node.entry_at(index)
            if (
                entry is not None
                and node.anchor is not None
                and index > node.anchor.index
                and entry.hash == history.committed[index].hash
            ):
                history.committed[index] = entry
                history.anchor_only.discard(index)
                break


# --- divergence ----------------------------------------------------------------------
def _check_divergence(node: NodeReport, history: History, member: bool) -> None:
    """A member's divergence inside the committed prefix is a failure; a folder left
    from a node no longer in the configuration may hold an old uncommitted suffix, so
    its divergence is a note."""
    assert node.anchor is not None
    high = min(node.last_index or 0, history.commit_index)
    for index in range(node.anchor.index, high + 1):
        ref = history.committed.get(index)
        mine = node.entry_at(index)
        if ref is None or mine is None or ref.hash == mine.hash:
            continue
        text = (
            f"{node.name} diverges from the committed history at index {index}: "
            f"{mine.hash} where a majority holds {ref.hash}"
        )
        if member:
            history.problems.append(text)
        else:
            history.notes.append(text + " (not a member of the configuration)")
        return


# --- state ---------------------------------------------------------------------------
def _check_states(nodes: Sequence[NodeReport], history: History) -> None:
    """Replay the committed log and compare each snapshot's state digest."""
    targets = sorted(
        (n for n in nodes if n.snapshot is not None and n.state_digest is not None),
        key=lambda n: n.snapshot.meta.last_included_index if n.snapshot else 0,
    )
    if not targets:
        return
    state: ReplicatedKV | None = None
    at = 0
    source = ""
    if history.cluster_id is not None and 0 in history.committed:
        state = ReplicatedKV()
        state.last_applied_hash = genesis_entry(history.cluster_id).hash
        source = "replaying the committed log from GENESIS"
    for node in targets:
        assert node.snapshot is not None
        index = node.snapshot.meta.last_included_index
        if index > history.commit_index:
            history.notes.append(
                f"{node.name}: snapshot at index {index} is beyond the derived commit index"
            )
            continue
        if state is not None and at <= index and _replayable(at, index, history):
            if not _replay(state, at, index, history):
                return
            at = index
            if state.state_digest() != node.state_digest:
                history.problems.append(
                    f"{node.name}: snapshot state at index {index} (digest "
                    f"{node.state_digest}) is not what the history implies ({source}: "
                    f"{state.state_digest()})"
                )
            continue
        committed = history.committed.get(index)
        if committed is not None and committed.hash != node.snapshot.meta.last_included_hash:
            continue  # on another chain: reported as a divergence, no base for others
        # No history leads here: this snapshot becomes the base for the later ones.
        history.notes.append(
            f"{node.name}: snapshot at index {index} not checked (no log to replay up to it)"
        )
        state = ReplicatedKV()
        state.restore(node.snapshot.data)
        at, source = index, f"{node.name}'s snapshot at {index} plus the committed log"


def _replayable(start: int, end: int, history: History) -> bool:
    """Every entry start+1..end is at hand with its data (an anchor has none)."""
    return all(
        index in history.committed and index not in history.anchor_only
        for index in range(start + 1, end + 1)
    )


def _replay(state: ReplicatedKV, start: int, end: int, history: History) -> bool:
    """Apply committed entries start+1..end; False if one is missing (state unchanged)
    or cannot be applied (a problem; the state is then unusable for later checks)."""
    for index in range(start + 1, end + 1):
        try:
            state.apply(history.committed[index])
        except (ResoneticsError, ValueError, TypeError, KeyError, AssertionError) as exc:
            history.problems.append(f"entry at index {index} cannot be applied: {exc}")
            return False
    return True


__all__ = ["History", "check_history"]
