"""``FileNodeStorage``: a node's folder as ``NodeStorage`` (see ``storage/api.py``).

Theory of operation
-------------------
The folder holds ``meta.json`` (term, vote, progress hints), ``log.jsonl`` (the
anchored, hash-chained log) and, once compacted, ``snapshot.json``. Every file
operation goes through a ``FileSystem``, so the same code runs on the real
disk and on the simulator's crashable ``MemoryFileSystem``.

Write order, and why each crash point is recoverable:

* fresh folder: log.jsonl (GENESIS line, atomically), then meta.json. A crash
  between them leaves a GENESIS-only log and no meta: still a fresh node. A
  missing meta.json next to a log holding entries is corruption, since entries
  only arrive after a term was saved.
* ``save_snapshot``: snapshot.json atomically, then a new log.jsonl (SNAP_DUMMY
  anchor + the kept tail) atomically. The anchor is the snapshot's index, or an
  earlier one when entries are retained behind it (``compact_to_snapshot``'s
  ``keep_from``: a lagging follower catches up from them, and a restart keeps
  them). A crash between the two leaves the new snapshot beside the old, longer
  log, which holds the snapshot's entry: ``load`` keeps it as it is (retained
  entries, until the next compaction).
* ``truncate_from`` + ``append`` + ``sync``: see ``log_file``; the truncation
  is fsynced before new bytes go over it, so a crash only ever tears the tail.

``load`` never repairs anything but a torn last log line and an interrupted
install (a log that does not hold the new snapshot's entry starts at the snapshot);
everything else that fails a check raises ``StorageCorruption``.

Identity (``storage/identity.py``): given a ``NodeIdentity``, a fresh folder
gets that node id and cluster id in meta.json and a log starting at the
cluster's GENESIS; an existing folder must hold the same node id and cluster id
(``IdentityMismatch`` otherwise; a cluster id of None adopts the stored one).
``load`` also refuses a meta.json whose term is below the term of the log's
last entry or of the snapshot: a term lowered (and a vote erased) by hand would
let the node vote a second time in a term it already voted in. The runtime
saves a new term before any entry or snapshot of that term, so no crash leaves
that state. Without an identity (simulator, unit tests) the folder has none and
the log starts at the anonymous ``GENESIS``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

from resonetics import planted
from resonetics.errors import ClusterIdRequired, IdentityMismatch, StorageCorruption, invariant
from resonetics.planted import Bug
from resonetics.raft.entry import Entry, EntryType, genesis_cluster, genesis_entry, is_genesis
from resonetics.raft.ready import HardState, Snapshot
from resonetics.raft.types import Index
from resonetics.storage.api import RecoveredState
from resonetics.storage.fs import FileSystem
from resonetics.storage.identity import NodeIdentity
from resonetics.storage.log_file import LogFile, ParsedLog, PreparedCompaction, parse_log
from resonetics.storage.log_seal import read_seal
from resonetics.storage.meta_file import MetaRecord, read_meta, write_meta
from resonetics.storage.recovery import (
    anchor_matches,
    check_hard_state_step,
    clamp,
    holds_snapshot_entry,
    snapshot_anchor,
)
from resonetics.storage.snapshot_file import foreign_cluster, read_snapshot, write_snapshot

META_NAME = "meta.json"
LOG_NAME = "log.jsonl"
SNAPSHOT_NAME = "snapshot.json"
_TEMP_SUFFIX = ".tmp"


class FileNodeStorage:
    """One node's folder ``<data_dir>/<node_id>/`` on a ``FileSystem``."""

    def __init__(self, fs: FileSystem, node_dir: str, identity: NodeIdentity | None = None) -> None:
        self._fs = fs
        self._dir = node_dir
        #: The identity asked for; after ``load``, the folder's (a None cluster id adopted).
        self.identity = identity
        self.meta_path = posixpath.join(node_dir, META_NAME)
        self.log_path = posixpath.join(node_dir, LOG_NAME)
        self.snapshot_path = posixpath.join(node_dir, SNAPSHOT_NAME)
        self._log = LogFile(fs, self.log_path)
        self._meta: MetaRecord | None = None
        self._snapshot_index: Index = 0
        #: What ``prepare_compaction`` decided for the next compaction: the snapshot's
        #: index, the first kept index, and the head it wrote (None: leave the file).
        self._prepared: tuple[Index, Index, PreparedCompaction | None] | None = None
        self._loaded = False
        #: Why the log's tail was cut at the last ``load`` (for the operator's log,
        #: ``log_tail_cut``), or None when the log ended cleanly; and its first line.
        self.cut_tail: str | None = None
        self.cut_line: int | None = None
        #: Lines the last ``load`` found in the log, and how many it took on the log's
        #: seal rather than checked one by one (``storage/log_seal.py``).
        self.loaded_lines = 0
        self.sealed_lines = 0

    # --- load ------------------------------------------------------------------------
    def load(self) -> RecoveredState:
        """Recover, verify and clamp (see ``storage/api.py``)."""
        if not self._fs.exists(self._dir):
            self._fs.mkdir(self._dir)
            self._fs.fsync_dir(posixpath.dirname(self._dir.rstrip("/")) or ".")
        self._remove_temp_files()
        meta = read_meta(self._fs, self.meta_path)
        snapshot_file = read_snapshot(self._fs, self.snapshot_path)
        snapshot = snapshot_file.snapshot if snapshot_file is not None else None
        parsed = None
        if self._has_log():
            seal = read_seal(self._fs, self.log_path)
            parsed = parse_log(self._fs.read(self.log_path), self.log_path, seal)
        if meta is None and snapshot is None and _fresh_log(parsed):
            return self._create(parsed)
        if meta is None:
            raise StorageCorruption(
                self.meta_path, "meta.json is missing but the log holds entries"
            )
        if parsed is None or not parsed.entries:
            raise StorageCorruption(self.log_path, "log.jsonl is missing or has no anchor line")
        self._check_identity(meta)
        self._check_anchor_cluster(meta, parsed.entries[0])
        if snapshot_file is not None:
            reason = foreign_cluster(snapshot_file, meta.cluster_id)
            if reason is not None:
                raise StorageCorruption(self.snapshot_path, reason)
        self._check_term(meta, parsed, snapshot)
        self._check_commit(meta, parsed, snapshot)
        self.cut_tail, self.cut_line = parsed.torn, parsed.torn_line
        self.loaded_lines, self.sealed_lines = len(parsed.entries), parsed.sealed_lines
        self._log.adopt(parsed)
        anchor, entries = self._join_snapshot(parsed, snapshot)
        snap_index = snapshot.meta.last_included_index if snapshot is not None else 0
        hard_state, applied = clamp(
            meta.hard_state, meta.last_applied, snap_index, anchor.index + len(entries)
        )
        self._meta = meta
        self._snapshot_index = snap_index
        self._loaded = True
        return RecoveredState(hard_state, applied, anchor, entries, snapshot)

    def _has_log(self) -> bool:
        return self._fs.exists(self.log_path)

    def _remove_temp_files(self) -> None:
        """Leftovers of an atomic write cut short: never the live copy, so drop them."""
        for name in self._fs.listdir(self._dir):
            if name.endswith(_TEMP_SUFFIX):
                self._fs.remove(posixpath.join(self._dir, name))

    def _create(self, parsed: ParsedLog | None) -> RecoveredState:
        """A fresh node: GENESIS log first, then meta.json (see the module doc)."""
        node_id, cluster_id = None, None
        if self.identity is not None:
            node_id, cluster_id = self.identity.node_id, self.identity.cluster_id
            if cluster_id is None:
                # A crash between the GENESIS line and meta.json: the log names the cluster.
                cluster_id = (
                    genesis_cluster(parsed.entries[0]) if parsed and parsed.entries else None
                )
            cluster_id = cluster_id or self.identity.founding_id
            if not cluster_id:
                raise ClusterIdRequired(self._dir)
            self.identity = NodeIdentity(node_id, cluster_id)
        genesis = genesis_entry(cluster_id or "")
        self._log.rewrite(genesis)
        self._meta = MetaRecord(
            hard_state=HardState(), last_applied=0, node_id=node_id, cluster_id=cluster_id
        )
        write_meta(self._fs, self.meta_path, self._meta)
        self._snapshot_index = 0
        self.cut_tail = self.cut_line = None
        self._loaded = True
        return RecoveredState(HardState(), 0, genesis, [], None)

    def _check_identity(self, meta: MetaRecord) -> None:
        """The folder must be this node's, of this cluster; adopt a cluster id not given."""
        if self.identity is None:
            return
        wanted = self.identity
        if meta.node_id != wanted.node_id:
            raise IdentityMismatch(self.meta_path, "node", wanted.node_id, str(meta.node_id))
        if wanted.cluster_id is not None and meta.cluster_id != wanted.cluster_id:
            raise IdentityMismatch(
                self.meta_path, "cluster", wanted.cluster_id, str(meta.cluster_id)
            )
        self.identity = NodeIdentity(wanted.node_id, meta.cluster_id)

    def _check_anchor_cluster(self, meta: MetaRecord, anchor: Entry) -> None:
        """A GENESIS anchor must be the one of the cluster meta.json names."""
        if anchor.type is not EntryType.GENESIS:
            return
        if anchor != genesis_entry(meta.cluster_id or ""):
            raise StorageCorruption(
                self.log_path,
                f"GENESIS anchor is of cluster {genesis_cluster(anchor)!r}, "
                f"meta.json names {meta.cluster_id!r}",
                line=1,
                index=0,
            )

    def _check_term(self, meta: MetaRecord, parsed: ParsedLog, snapshot: Snapshot | None) -> None:
        """meta.json's term is at least every term the log and snapshot hold (Raft: a
        node never holds an entry of a term it has not reached)."""
        last = parsed.entries[-1]
        term, index = last.term, last.index
        if snapshot is not None and snapshot.meta.last_included_term > term:
            term, index = snapshot.meta.last_included_term, snapshot.meta.last_included_index
        if meta.hard_state.term < term:
            raise StorageCorruption(
                self.meta_path,
                f"current_term {meta.hard_state.term} is below term {term} of the entry at "
                f"index {index}: a lowered term (and erased vote) could vote twice",
            )

    def _check_commit(self, meta: MetaRecord, parsed: ParsedLog, snapshot: Snapshot | None) -> None:
        """A torn tail to cut must lie above meta.json's commit index: that is saved
        only after the log it covers is synced, and no truncation goes below it, so a
        cut that reaches under it would drop entries a quorum counted on (a bad line
        there is damage, not a crash during an append). Checked before the tail is
        cut, so the file is left as it was found. (A log that simply ends below it
        is clamped, as ``clamp`` says.)"""
        if parsed.torn is None:
            return
        last = parsed.entries[-1].index
        if snapshot is not None:
            last = max(last, snapshot.meta.last_included_index)
        commit = meta.hard_state.commit
        if commit > last:
            where = f"line {parsed.torn_line}"
            raise StorageCorruption(
                self.log_path,
                f"a bad line ({where}: {parsed.torn}) would cut the log at index {last}, "
                f"below the commit index {commit} meta.json holds: committed entries lost",
                index=last + 1,
            )

    def _join_snapshot(
        self, parsed: ParsedLog, snapshot: Snapshot | None
    ) -> tuple[Entry, list[Entry]]:
        """The log's anchor must be the snapshot's, or older: entries retained behind
        it (or a compaction a crash cut short), kept when the log holds the snapshot's
        entry; else an install a crash cut short, finished here (the log starts at the
        snapshot)."""
        anchor, entries = parsed.entries[0], parsed.entries[1:]
        if snapshot is None:
            if anchor.type is EntryType.SNAP_DUMMY:
                raise StorageCorruption(
                    self.snapshot_path,
                    "missing, but the log starts at a snapshot anchor",
                    index=anchor.index,
                )
            return anchor, entries
        meta = snapshot.meta
        if anchor.index > meta.last_included_index or (
            anchor.index == meta.last_included_index and not anchor_matches(anchor, meta)
        ):
            raise StorageCorruption(
                self.log_path,
                f"anchor does not join snapshot.json (at {meta.last_included_index})",
                line=1,
                index=anchor.index,
            )
        if anchor.index == meta.last_included_index or holds_snapshot_entry(anchor, entries, meta):
            return anchor, entries
        new_anchor = snapshot_anchor(meta)
        self._log.compact(new_anchor)
        invariant(self._log.last_index == new_anchor.index, "compaction mismatch")
        return new_anchor, []

    # --- writes ----------------------------------------------------------------------
    def _check_loaded(self) -> None:
        """Writing before load() would start a log from nothing over the real one."""
        invariant(self._loaded, "%s: write before load()", self._dir)

    def append(self, entries: Sequence[Entry]) -> None:
        self._check_loaded()
        self._log.append(list(entries))

    def truncate_from(self, index: Index) -> None:
        self._check_loaded()
        self._log.truncate_from(index)

    def sync(self) -> None:
        self._check_loaded()
        self._log.sync()

    def save_hard_state(self, hard_state: HardState, last_applied: Index) -> None:
        self._check_loaded()
        if self._meta is not None:
            check_hard_state_step(self._meta.hard_state, hard_state)
        if planted.on(Bug.VOTE_NOT_PERSISTED):
            hard_state = HardState(hard_state.term, None, hard_state.commit)
        ident = self._meta
        record = MetaRecord(
            hard_state=hard_state,
            last_applied=last_applied,
            node_id=ident.node_id if ident is not None else None,
            cluster_id=ident.cluster_id if ident is not None else None,
        )
        write_meta(self._fs, self.meta_path, record)
        self._meta = record

    def save_snapshot(self, snapshot: Snapshot, last_applied: Index) -> None:
        """snapshot.json first, then the compacted log (see the module doc).

        ``last_applied`` needs no write here: load() raises it to the snapshot's
        index anyway.
        """
        self.write_snapshot_file(snapshot)
        self.compact_to_snapshot(snapshot)

    def write_snapshot_file(self, snapshot: Snapshot) -> None:
        """snapshot.json alone, durable: the half of ``save_snapshot`` that may run on
        a thread of its own while the log is written (``storage/api.py``). It reads
        ``_snapshot_index``, which only ``compact_to_snapshot`` changes, and no
        snapshot is installed while one is being taken (``loop_plan`` rule 3)."""
        self._check_loaded()
        index = snapshot.meta.last_included_index
        invariant(index >= self._snapshot_index, "snapshot older than the saved one")
        cluster = self._meta.cluster_id if self._meta is not None else None
        write_snapshot(self._fs, self.snapshot_path, snapshot, cluster or "")

    def prepare_compaction(self, snapshot: Snapshot, keep_from: Entry | None) -> None:
        """Write the head of the log ``compact_to_snapshot(snapshot, keep_from)`` will
        leave (the kept entries up to the snapshot's index), off the disk thread: the
        snapshot thread runs it after ``write_snapshot_file`` while the disk thread goes
        on appending (``LogFile.prepare_compaction``). Nothing to do when nothing is kept
        behind the snapshot (the compaction then copies only the few entries after it)."""
        self._check_loaded()
        index = snapshot.meta.last_included_index
        self._prepared = None
        if keep_from is not None and keep_from.index < index:
            if not self._log.compaction_pays(keep_from.index):
                self._prepared = (index, keep_from.index, None)  # the file stays as it is
                return
            prepared = self._log.prepare_compaction(keep_from, index)
            if prepared is not None:
                self._prepared = (index, keep_from.index, prepared)

    def compact_to_snapshot(self, snapshot: Snapshot, keep_from: Entry | None = None) -> None:
        """The log starts at the snapshot written by ``write_snapshot_file``, or at
        ``keep_from`` (the SNAP_DUMMY of an entry the log holds before the snapshot's
        index): the entries after it are retained (``storage/api.py``).

        Keeping entries means copying them: the file is compacted to ``keep_from`` only
        once that drops ``COMPACTION_DROP_RATIO`` (4) times the bytes it keeps
        (``LogFile.compaction_pays``), so it holds at most about five times the kept
        entries and at most a quarter of the log's bytes are ever copied. Copying 1,000
        kept batch entries at every snapshot (about 10 MB every 4 MiB of log at 256
        writes in flight) made the log's fsyncs wait: the p99 of writes doubled; with a
        ratio of 1 it was still 18-20 against 16 ms, with 4 at par (docs/storage.md)."""
        self._check_loaded()
        index = snapshot.meta.last_included_index
        invariant(index >= self._log.first_index, "snapshot older than the log's anchor")
        self._snapshot_index = index
        plan, self._prepared = self._prepared, None
        if keep_from is None or keep_from.index >= index:
            self._log.compact(snapshot_anchor(snapshot.meta))
            return
        last = self._log.last_index
        if plan is not None and plan[:2] == (index, keep_from.index):
            if plan[2] is None:  # not worth it: the file keeps its older entries for now
                return
            self._log.finish_compaction(plan[2])
        elif self._log.compaction_pays(keep_from.index):  # nothing prepared: all here
            self._log.compact(keep_from)
        invariant(self._log.last_index == last, "kept entries do not join the log")

    def close(self) -> None:
        if self._loaded:
            self._log.seal()  # a clean stop: the next start checks nothing twice
        self._fs.close()


def _fresh_log(parsed: ParsedLog | None) -> bool:
    """No log, an empty one, or a GENESIS alone: nothing was ever appended."""
    if parsed is None or not parsed.entries:
        return True
    return len(parsed.entries) == 1 and is_genesis(parsed.entries[0])


__all__ = ["LOG_NAME", "META_NAME", "SNAPSHOT_NAME", "FileNodeStorage"]
