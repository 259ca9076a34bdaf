"""The backup admin ops: hand out the applied state at a committed index, in chunks.

Theory of operation
-------------------
``resonetics snapshot save`` asks the leader ``backup_begin``. The leader fixes its
applied state at ``core.applied`` (a committed index: nothing is applied before it
commits) the way a snapshot does (``machine.snapshot_steps``: the state is copied
at the first step), with the term, chain hash and configuration at that index,
then encodes the rest a slice per event-loop turn, so heartbeats and clients are
served meanwhile. Once encoded, the body (``snapshot.json``'s format, with its
own checksum) is kept in memory under a random id and ``backup_begin`` answers
with the header fields (``storage/backup_file.py``) and where to fetch it.

``backup_chunk {backup, offset}`` answers at most ``limits.BACKUP_CHUNK_BYTES`` of
the body (base64), so an answer stays far below the line limit however large the
state. The last chunk drops the backup; so does ``limits.BACKUP_IDLE_S`` without a
request, and at most ``limits.BACKUP_OPEN_MAX`` are held at once (a further begin
is ``UNAVAILABLE``): a client that walks away costs bounded memory.

``chain_hash {index}`` (monitor) answers the chain hash this node holds at an
index: ``snapshot save`` asks a majority of the voters before it trusts the hash
the leader named. Both backup ops are ``admin`` (DESIGN §7: snapshots and backups
are admin-only, and audited like every admin op): a backup holds every key.

Only a leader begins a backup (a follower answers ``NOT_LEADER``), so the state is
the newest the cluster has committed as far as this node knows; a deposed leader's
state is still committed, only older.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import secrets
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from resonetics import limits
from resonetics.raft.ready import Role, Snapshot, SnapshotMeta
from resonetics.runtime.driver import NodeDriver
from resonetics.runtime.outcome import OnDone, Outcome
from resonetics.storage.backup_file import BACKUP_FORMAT, BACKUP_VERSION
from resonetics.storage.snapshot_file import encode_snapshot
from resonetics.wire import codes

log = logging.getLogger("resonetics.server.backup")

BACKUP_OPS = frozenset({"backup_begin", "backup_chunk", "chain_hash"})


@dataclass(slots=True)
class _Held:
    body: bytes
    last_used: float = field(default_factory=time.monotonic)


@dataclass(slots=True)
class Backups:
    """The backups this node is encoding or holding for download."""

    driver: NodeDriver
    node_id: str
    cluster_id: Callable[[], str]
    machine: str
    #: Where clients reach this node (the configured client address, not a wildcard
    #: listen address): ``snapshot save`` fetches the chunks there.
    client_address: Callable[[], str]
    held: dict[str, _Held] = field(default_factory=dict)
    encoding: int = 0

    def handlers(self) -> dict[str, Callable[[dict[str, Any], OnDone], None]]:
        return {"backup_begin": self.begin, "backup_chunk": self.chunk, "chain_hash": self.hash}

    # --- ops ---------------------------------------------------------------------------
    def begin(self, args: dict[str, Any], on_done: OnDone) -> None:
        core = self.driver.core
        if core.role is not Role.LEADER:
            on_done(self.driver.not_leader_outcome(core.leader_id))
            return
        self._expire()
        if len(self.held) + self.encoding >= limits.BACKUP_OPEN_MAX:
            on_done(
                Outcome(
                    codes.UNAVAILABLE,
                    message=f"{limits.BACKUP_OPEN_MAX} backups are already being fetched; "
                    "retry when one is done",
                )
            )
            return
        index = core.applied
        term, hash_ = core.term_at(index), core.hash_at(index)
        if term is None or hash_ is None:  # applied is never behind the log's anchor
            on_done(Outcome(codes.UNAVAILABLE, message=f"no entry at applied index {index}"))
            return
        meta = SnapshotMeta(index, term, hash_, core.membership_at(index))
        steps = self.driver.machine.snapshot_steps()
        next(steps)  # fixes the state at ``index`` before anything else is applied
        self.encoding += 1
        log.info("backup at index %d (term %d): encoding", index, term)
        asyncio.get_running_loop().call_soon(self._encode_slice, steps, meta, on_done)

    def _encode_slice(
        self, steps: Generator[None, None, bytes], meta: SnapshotMeta, on_done: OnDone
    ) -> None:
        """One slice per loop turn (as snapshots are taken), then answer ``backup_begin``."""
        try:
            next(steps)
        except StopIteration as done:
            self.encoding -= 1
            self._ready(encode_snapshot(Snapshot(meta, done.value)), meta, on_done)
            return
        asyncio.get_running_loop().call_soon(self._encode_slice, steps, meta, on_done)

    def _ready(self, body: bytes, meta: SnapshotMeta, on_done: OnDone) -> None:
        backup_id = secrets.token_hex(16)
        self.held[backup_id] = _Held(body)
        log.info(
            "backup %s at index %d ready: %d bytes", backup_id, meta.last_included_index, len(body)
        )
        on_done(
            Outcome(
                codes.OK,
                {
                    "backup": backup_id,
                    "address": self.client_address(),
                    "chunk_bytes": limits.BACKUP_CHUNK_BYTES,
                    "header": {
                        "format": BACKUP_FORMAT,
                        "version": BACKUP_VERSION,
                        "cluster_id": self.cluster_id(),
                        "node": self.node_id,
                        "machine": self.machine,
                        "last_index": meta.last_included_index,
                        "last_term": meta.last_included_term,
                        "chain_hash": meta.last_included_hash,
                        "created_ms": int(time.time() * 1000),
                        "body_bytes": len(body),
                        "body_sha256": hashlib.sha256(body).hexdigest(),
                    },
                },
            )
        )

    def chunk(self, args: dict[str, Any], on_done: OnDone) -> None:
        self._expire()
        backup_id, offset = str(args["backup"]), int(args["offset"])
        held = self.held.get(backup_id)
        if held is None:
            on_done(
                Outcome(
                    codes.BAD_REQUEST,
                    message=f"backup: no backup {backup_id!r} here (finished, expired after "
                    f"{limits.BACKUP_IDLE_S:.0f} s idle, or begun on another node)",
                )
            )
            return
        if offset > len(held.body):
            on_done(
                Outcome(
                    codes.BAD_REQUEST,
                    message=f"offset: {offset} is past the backup's {len(held.body)} bytes",
                )
            )
            return
        held.last_used = time.monotonic()
        data = held.body[offset : offset + limits.BACKUP_CHUNK_BYTES]
        eof = offset + len(data) >= len(held.body)
        if eof:
            del self.held[backup_id]
        on_done(
            Outcome(
                codes.OK,
                {"offset": offset, "data": base64.b64encode(data).decode("ascii"), "eof": eof},
            )
        )

    def hash(self, args: dict[str, Any], on_done: OnDone) -> None:
        core = self.driver.core
        index = int(args["index"])
        on_done(
            Outcome(
                codes.OK,
                {
                    "node": self.node_id,
                    "index": index,
                    "hash": core.hash_at(index),
                    "term": core.term_at(index),
                    "commit_index": core.commit_index,
                },
            )
        )

    def _expire(self) -> None:
        cutoff = time.monotonic() - limits.BACKUP_IDLE_S
        for backup_id in [b for b, h in self.held.items() if h.last_used < cutoff]:
            log.info("backup %s dropped: not fetched for %.0f s", backup_id, limits.BACKUP_IDLE_S)
            del self.held[backup_id]


__all__ = ["BACKUP_OPS", "Backups"]
