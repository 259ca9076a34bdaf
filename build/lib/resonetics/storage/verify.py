"""Read-only verification of node folders (``resonetics verify``).

Theory of operation
-------------------
The checks are the ones ``FileNodeStorage.load`` makes (per-line checksums,
index continuity, the hash chain, meta/snapshot consistency, the snapshot's
checksum), but nothing is repaired or truncated: a torn tail is reported
as a note (the next start cuts it), everything else as a problem naming the
file, line and index. Every read goes through a ``FileSystem``, so verifying
never writes.

Each folder is also checked for its identity (the GENESIS anchor must be the
one of the cluster meta.json names), for a term in meta.json below the log's
last term, and for a snapshot whose state cannot be restored or sits at
another index or hash than its metadata says.

Across several nodes of one data dir, nothing is taken from meta.json's
lazily written commit hint: ``storage/verify_history.py`` derives the commit
index from the logs (the longest prefix a majority of the voters hold with
equal chain hashes), reports a node that diverges from it or belongs to
another cluster, and replays the committed log to check each snapshot's
state. By the hash chain, agreeing at index N means agreeing on all history
up to N.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from resonetics.errors import StorageCorruption
from resonetics.machine.replicated import ReplicatedKV
from resonetics.raft.entry import Entry, EntryType, Receipt, genesis_cluster, genesis_entry
from resonetics.raft.ready import Snapshot
from resonetics.storage.fs import FileSystem
from resonetics.storage.log_file import parse_log
from resonetics.storage.meta_file import MetaRecord, read_meta
from resonetics.storage.node_storage import LOG_NAME, META_NAME, SNAPSHOT_NAME
from resonetics.storage.snapshot_file import foreign_cluster, read_snapshot

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Problem:
    """One failed check; ``str()`` reads ``file:line (index I): reason``."""

    path: str
    reason: str
    line: int | None = None
    index: int | None = None

    def __str__(self) -> str:
        where = self.path + (f":{self.line}" if self.line is not None else "")
        if self.index is not None:
            where += f" (index {self.index})"
        return f"{where}: {self.reason}"

    @classmethod
    def of(cls, exc: StorageCorruption) -> Problem:
        return cls(exc.path, exc.reason, exc.line, exc.index)


@dataclass(slots=True)
class NodeReport:
    """What one node folder holds and what is wrong with it."""

    name: str
    path: str
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    anchor: Entry | None = None
    entries: list[Entry] = field(default_factory=list)
    meta: MetaRecord | None = None
    snapshot: Snapshot | None = None
    #: ``ReplicatedKV.state_digest`` of the snapshot's state, when it restores.
    state_digest: str | None = None

    @property
    def cluster_id(self) -> str | None:
        """The folder's cluster: meta.json's ("" for an identity-less folder), else
        the GENESIS anchor's; None when neither says."""
        if self.meta is not None:
            return self.meta.cluster_id or ""
        if self.anchor is not None:
            return genesis_cluster(self.anchor)
        return None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def last_index(self) -> int | None:
        return None if self.anchor is None else self.anchor.index + len(self.entries)

    @property
    def last_hash(self) -> str | None:
        if self.anchor is None:
            return None
        return self.entries[-1].hash if self.entries else self.anchor.hash

    @property
    def commit(self) -> int:
        """meta.json's commit hint (0 when unknown): written lazily, so a lower bound
        at best; ``ClusterReport.commit_index`` is derived from the logs instead."""
        snap = self.snapshot.meta.last_included_index if self.snapshot else 0
        meta = self.meta.hard_state.commit if self.meta else 0
        return max(snap, min(meta, self.last_index or 0))

    def entry_at(self, index: int) -> Entry | None:
        """The entry (or anchor) at ``index`` if this log holds it."""
        if self.anchor is None or index < self.anchor.index:
            return None
        if index == self.anchor.index:
            return self.anchor
        k = index - self.anchor.index - 1
        return self.entries[k] if k < len(self.entries) else None


def is_node_dir(fs: FileSystem, path: str) -> bool:
    return any(fs.exists(posixpath.join(path, n)) for n in (LOG_NAME, META_NAME))


def verify_node(fs: FileSystem, node_dir: str) -> NodeReport:
    """Check one node folder; never raises for bad file contents."""
    report = NodeReport(name=posixpath.basename(node_dir.rstrip("/")) or node_dir, path=node_dir)
    report.meta = _guarded(report, lambda: read_meta(fs, posixpath.join(node_dir, META_NAME)))
    snap_path = posixpath.join(node_dir, SNAPSHOT_NAME)
    snapshot_file = _guarded(report, lambda: read_snapshot(fs, snap_path))
    if snapshot_file is not None:
        report.snapshot = snapshot_file.snapshot
        reason = foreign_cluster(snapshot_file, report.meta.cluster_id if report.meta else None)
        if reason is not None:
            report.problems.append(Problem(snap_path, reason))
    _read_log(fs, report)
    if report.anchor is not None:
        _check_meta(report)
        _check_snapshot(report, report.anchor)
    if report.snapshot is not None:
        machine = _served_machine(fs, node_dir)
        if machine in ("", "kv"):
            _check_snapshot_state(report, report.snapshot)
        else:
            # Only the key-value store's state can be replayed here; another machine's
            # code is not loaded by verify, so its state is neither decoded nor compared.
            report.notes.append(
                f"snapshot state of machine {machine!r} not checked (verify replays only kv)"
            )
    return report


def _served_machine(fs: FileSystem, node_dir: str) -> str:
    """The machine recorded in ``node_dir`` (``server/machine_record.py``); "" if none."""
    path = posixpath.join(node_dir, "machine")
    if not fs.exists(path):
        return ""
    return fs.read(path).decode("utf-8", "replace").strip()


def _guarded(report: NodeReport, read: Callable[[], _T | None]) -> _T | None:
    try:
        return read()
    except StorageCorruption as exc:
        report.problems.append(Problem.of(exc))
    except OSError as exc:
        report.problems.append(Problem(getattr(exc, "filename", None) or report.path, str(exc)))
    return None


def _read_log(fs: FileSystem, report: NodeReport) -> None:
    path = posixpath.join(report.path, LOG_NAME)
    if not fs.exists(path):
        report.problems.append(Problem(path, "log.jsonl is missing"))
        return
    parsed = _guarded(report, lambda: parse_log(fs.read(path), path))
    if parsed is None:
        return
    if not parsed.entries:
        report.problems.append(Problem(path, "no anchor line (empty log)"))
        return
    if parsed.torn is not None:
        report.notes.append(
            f"{path}:{parsed.torn_line}: torn tail ({parsed.torn}); "
            "a crash during an append, cut at the next start"
        )
    report.anchor, report.entries = parsed.entries[0], parsed.entries[1:]


def _check_meta(report: NodeReport) -> None:
    path = posixpath.join(report.path, META_NAME)
    last = report.last_index or 0
    if report.meta is None:
        if report.entries or report.snapshot is not None:
            report.problems.append(Problem(path, "meta.json is missing but the log holds entries"))
        return
    hs, applied = report.meta.hard_state, report.meta.last_applied
    if hs.commit > last:
        report.problems.append(
            Problem(path, f"commit_index {hs.commit} is beyond the last log index {last}")
        )
    if applied > hs.commit:
        report.problems.append(
            Problem(path, f"last_applied {applied} is beyond commit_index {hs.commit}")
        )
    last_term = report.entries[-1].term if report.entries else 0
    if report.anchor is not None:
        last_term = max(last_term, report.anchor.term)
    if hs.term < last_term:
        report.problems.append(
            Problem(
                path,
                f"current_term {hs.term} is below the log's last term {last_term} "
                "(a lowered term could vote twice; the node refuses to start)",
            )
        )


def _check_snapshot(report: NodeReport, anchor: Entry) -> None:
    log_path = posixpath.join(report.path, LOG_NAME)
    snap_path = posixpath.join(report.path, SNAPSHOT_NAME)
    if report.snapshot is None:
        if anchor.type is EntryType.SNAP_DUMMY and not _snapshot_unreadable(report, snap_path):
            report.problems.append(
                Problem(snap_path, "missing, but the log starts at a snapshot anchor")
            )
        return
    meta = report.snapshot.meta
    at = report.entry_at(meta.last_included_index)
    if anchor.index > meta.last_included_index:
        report.problems.append(
            Problem(log_path, "log is compacted past snapshot.json", line=1, index=anchor.index)
        )
    elif at is None or at.hash != meta.last_included_hash or at.term != meta.last_included_term:
        if anchor.index == meta.last_included_index:
            report.problems.append(
                Problem(log_path, "anchor does not match snapshot.json", line=1, index=anchor.index)
            )
        else:
            report.notes.append("interrupted install: the log does not hold the snapshot's entry")
    elif anchor.index < meta.last_included_index:
        kept = meta.last_included_index - anchor.index
        report.notes.append(f"the log keeps {kept} entries behind snapshot.json's index")
    cluster = report.meta.cluster_id if report.meta is not None else None
    if anchor.type is EntryType.GENESIS and anchor != genesis_entry(cluster or ""):
        report.problems.append(
            Problem(
                log_path,
                f"GENESIS anchor is of cluster {genesis_cluster(anchor)!r}, "
                f"meta.json names {cluster!r}",
                line=1,
                index=0,
            )
        )


def _check_snapshot_state(report: NodeReport, snapshot: Snapshot) -> None:
    """The snapshot's state restores and sits where its metadata says."""
    path = posixpath.join(report.path, SNAPSHOT_NAME)
    state = ReplicatedKV()
    try:
        state.restore(snapshot.data)
    except StorageCorruption as exc:
        report.problems.append(Problem(path, exc.reason))
        return
    meta = snapshot.meta
    if (state.last_applied, state.last_applied_hash) != (
        meta.last_included_index,
        meta.last_included_hash,
    ):
        report.problems.append(
            Problem(
                path,
                f"state is at index {state.last_applied} ({state.last_applied_hash}), "
                f"the snapshot says {meta.last_included_index} ({meta.last_included_hash})",
            )
        )
        return
    report.state_digest = state.state_digest()


def _snapshot_unreadable(report: NodeReport, snap_path: str) -> bool:
    return any(p.path == snap_path for p in report.problems)


@dataclass(slots=True)
class ClusterReport:
    nodes: list[NodeReport]
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Derived from the logs of a data dir's nodes; None for a single node folder,
    #: where no majority can be seen (then only its meta.json hint is known).
    commit_index: int | None = None
    #: Whose majority ``commit_index`` is (see ``verify_history``).
    voters: str = ""

    def committed_bound(self, node: NodeReport) -> int:
        """The index up to which a difference from ``node``'s log is a failure."""
        return self.commit_index if self.commit_index is not None else node.commit

    @property
    def ok(self) -> bool:
        return not self.problems and all(n.ok for n in self.nodes)


def verify_path(fs: FileSystem, path: str) -> ClusterReport:
    """A node folder, or a data dir of node folders (then also cross-checked)."""
    if is_node_dir(fs, path):
        return ClusterReport([verify_node(fs, path)])
    dirs = [posixpath.join(path, n) for n in fs.listdir(path)]
    nodes = [verify_node(fs, d) for d in dirs if fs.isdir(d) and is_node_dir(fs, d)]
    report = ClusterReport(nodes)
    if not nodes:
        report.problems.append(f"{path}: no node folder (with {LOG_NAME} or {META_NAME}) found")
        return report
    # verify_history works on NodeReports, so it imports this module.
    from resonetics.storage.verify_history import check_history

    history = check_history(nodes)
    report.commit_index = history.commit_index
    groups = " and ".join("{" + ", ".join(g) + "}" for g in history.voter_groups)
    report.voters = f"a majority of {groups}: {history.voters_from}"
    report.problems += history.problems
    report.notes += history.notes
    for i, a in enumerate(nodes):
        for b in nodes[i + 1 :]:
            _compare(report, a, b, history.commit_index)
    return report


def _compare(report: ClusterReport, a: NodeReport, b: NodeReport, commit: int) -> None:
    """Note where two nodes agree, or where their uncommitted suffixes part. A
    difference up to ``commit`` is already a divergence from the committed history;
    one that both nodes' commit hints cover is a failure too (a hint is written lazily,
    so it may lag the truth, but a node never saves an index it did not see committed)."""
    if a.anchor is None or b.anchor is None or a.cluster_id != b.cluster_id:
        return
    lo = max(a.anchor.index, b.anchor.index)
    hi = min(a.last_index or 0, b.last_index or 0)
    for index in range(lo, hi + 1):
        ea, eb = a.entry_at(index), b.entry_at(index)
        if ea is None or eb is None or ea.hash == eb.hash:
            continue
        if index <= commit:
            return  # a divergence from the committed history, reported already
        if index <= min(a.commit, b.commit):
            # Hints lag but never lead: both nodes learned this index was committed.
            report.problems.append(
                f"{a.name} and {b.name} disagree at committed index {index} (both "
                f"meta.json commit hints cover it): {ea.hash} vs {eb.hash}"
            )
        else:
            report.notes.append(
                f"{a.name} and {b.name} differ from uncommitted index {index} on "
                "(a suffix Raft will overwrite)"
            )
        return
    if lo <= hi:
        report.notes.append(f"{a.name} and {b.name} agree on indexes {lo}..{hi}")


def receipt_status(node: NodeReport, receipt: Receipt) -> str:
    """``holds``, ``differs``, ``compacted`` (below the snapshot) or ``absent``."""
    if node.anchor is None:
        return "absent"
    if receipt.index < node.anchor.index:
        return "compacted"
    entry = node.entry_at(receipt.index)
    if entry is None:
        return "absent"
    if entry.term == receipt.term and entry.hash == receipt.hash:
        return "holds"
    return "differs"


__all__ = [
    "ClusterReport",
    "NodeReport",
    "Problem",
    "Receipt",
    "is_node_dir",
    "receipt_status",
    "verify_node",
    "verify_path",
]
