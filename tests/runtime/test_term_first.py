"""The driver writes a new term to meta.json before any entry of that term: storage
refuses a log whose last term is above meta.json's (a term lowered by hand to vote
twice), so no crash may leave that state honestly."""

from __future__ import annotations

import random
from collections.abc import Sequence

from resonetics.raft.config import RaftConfig
from resonetics.raft.entry import GENESIS, Entry, EntryType, make_entry
from resonetics.raft.messages import AppendEntries, Message
from resonetics.raft.ready import HardState
from resonetics.raft.types import Index
from resonetics.runtime.driver import NodeDriver
from resonetics.storage.memory import MemoryNodeStorage


class _Host:
    def now_ms(self) -> int:
        return 1_000

    def send(self, msg: Message) -> None:
        pass

    def flush(self) -> None:
        pass


class _Recording(MemoryNodeStorage):
    """Remembers the order of durable writes: ("meta", term, commit) and ("log", terms)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[object, ...]] = []
        self._pending: list[int] = []

    def append(self, entries: Sequence[Entry]) -> None:
        super().append(entries)
        self._pending += [e.term for e in entries]

    def sync(self) -> None:
        if self._pending:
            self.writes.append(("log", max(self._pending)))
            self._pending = []

    def save_hard_state(self, hard_state: HardState, last_applied: Index) -> None:
        super().save_hard_state(hard_state, last_applied)
        self.writes.append(("meta", hard_state.term, hard_state.commit))


def test_a_new_term_reaches_meta_before_entries_of_that_term() -> None:
    storage = _Recording()
    node = NodeDriver(
        RaftConfig(node_id="n2", initial_voters=("n1", "n2")), storage, _Host(), random.Random(1)
    )
    noop = make_entry(GENESIS.hash, 3, 1, EntryType.NOOP, None)
    node.step(
        AppendEntries(
            src="n1",
            dst="n2",
            term=3,
            leader_id="n1",
            prev_log_index=0,
            prev_log_term=0,
            prev_log_hash=GENESIS.hash,
            entries=[noop],
            leader_commit=1,
        )
    )
    node.process_ready()
    first_meta = next(i for i, w in enumerate(storage.writes) if w[0] == "meta")
    first_log = next(i for i, w in enumerate(storage.writes) if w[0] == "log")
    assert first_meta < first_log, storage.writes
    # That early meta.json keeps the saved commit hint: entry 1 was not durable yet.
    assert storage.writes[first_meta] == ("meta", 3, 0)
