"""The driver proposes the writes accepted since its last Ready together (CLIENT_BATCH)."""

from __future__ import annotations

import random
from collections.abc import Sequence

import msgspec
import pytest

from resonetics.raft.config import RaftConfig
from resonetics.raft.entry import GENESIS, Entry, EntryType
from resonetics.raft.messages import AppendEntries, Message
from resonetics.runtime import driver as driver_module
from resonetics.runtime.driver import NodeDriver
from resonetics.runtime.outcome import Outcome
from resonetics.storage.memory import MemoryNodeStorage
from resonetics.wire import codes


class _Host:
    def __init__(self) -> None:
        self.sent: list[Message] = []

    def now_ms(self) -> int:
        return 1_000

    def send(self, msg: Message) -> None:
        self.sent.append(msg)

    def flush(self) -> None:
        pass


def _leader() -> NodeDriver:
    node = NodeDriver(
        RaftConfig(node_id="n1", initial_voters=("n1",)),
        MemoryNodeStorage(),
        _Host(),
        random.Random(1),
    )
    node.core.campaign()
    node.process_ready()
    assert str(node.core.role) == "leader"
    return node


def _submit(
    node: NodeDriver, count: int, *, client: str = "c", size: int | None = None
) -> list[list[Outcome]]:
    answers: list[list[Outcome]] = [[] for _ in range(count)]
    for i in range(count):
        args = {"k": f"k{i}", "v": i}
        node.submit(client, f"r{i}", "kv_set", args, answers[i].append, size=size)
    return answers


def test_writes_accepted_together_share_one_entry_and_each_gets_its_own_answer() -> None:
    node = _leader()
    first = node.core.last_index + 1
    answers = _submit(node, 5)
    assert all(not a for a in answers)  # nothing is proposed before the driver runs
    node.process_ready()
    entry = node.core.entry_at(first)
    assert entry.type is EntryType.CLIENT_BATCH and len(entry.data) == 5
    assert node.core.last_index == first
    for answer in answers:
        assert len(answer) == 1 and answer[0].code == codes.OK
        assert answer[0].result["receipt"] == {
            "index": first,
            "term": entry.term,
            "hash": entry.hash,
        }
    assert node.machine.read("kv_get", {"k": "k4"})["value"] == 4


def test_a_lone_write_is_the_plain_client_command_entry_it_always_was() -> None:
    node = _leader()
    _submit(node, 1)
    node.process_ready()
    assert node.core.entry_at(node.core.last_index).type is EntryType.CLIENT_CMD


def test_batches_are_cut_by_count_and_by_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    node = _leader()
    monkeypatch.setattr(driver_module, "BATCH_COMMANDS_MAX", 4)
    first = node.core.last_index + 1
    _submit(node, 10)
    node.process_ready()
    sizes = [len(node.core.entry_at(i).data) for i in range(first, first + 2)]
    assert sizes == [4, 4] and node.core.entry_at(first + 2).data is not None
    assert len(node.core.entry_at(first + 2).data) == 2

    monkeypatch.setattr(driver_module, "BATCH_COMMANDS_MAX", 64)
    first = node.core.last_index + 1
    half = driver_module.BATCH_BYTES_MAX // 2 + 1
    _submit(node, 3, client="big", size=half)  # no two fit in one batch
    node.process_ready()
    assert node.core.last_index == first + 2
    assert all(node.core.entry_at(i).type is EntryType.CLIENT_CMD for i in range(first, first + 3))


def test_writes_accepted_before_a_step_down_are_answered_not_leader_and_never_logged() -> None:
    node = _leader()
    last = node.core.last_index
    answers = _submit(node, 3)
    newer = node.core.term + 1
    heartbeat = AppendEntries(
        src="n2",
        dst="n1",
        term=newer,
        leader_id="n2",
        prev_log_index=0,
        prev_log_term=0,
        prev_log_hash=GENESIS.hash,
        leader_commit=0,
    )
    node.step(heartbeat)  # a leader of a newer term exists
    node.process_ready()
    assert str(node.core.role) == "follower"
    for answer in answers:
        assert len(answer) == 1 and answer[0].code == codes.NOT_LEADER
    assert node.core.last_index == last


def test_at_shutdown_accepted_writes_are_answered_once() -> None:
    node = _leader()
    answers = _submit(node, 3)
    node.cancel_all(Outcome(codes.UNAVAILABLE, message="shutting down"))
    for answer in answers:
        assert len(answer) == 1 and answer[0].code == codes.NOT_LEADER
    node.process_ready()
    assert all(len(a) == 1 for a in answers)  # never proposed afterwards


@pytest.mark.parametrize("count", [1, 3])
def test_the_leader_proposes_commands_as_their_canonical_bytes(count: int) -> None:
    """What the leader logs, sends and applies is the commands' canonical JSON (sorted
    keys), whatever order the client sent them in: every replica then reads a command's
    keys in one order (``raft/packing.py``, ``canonical``)."""
    node = _leader()
    first = node.core.last_index + 1
    persisted: list[Entry] = []
    storage = node.storage
    append = storage.append

    def spy(entries: Sequence[Entry]) -> None:
        persisted.extend(entries)
        append(entries)

    storage.append = spy  # type: ignore[method-assign]
    for i in range(count):
        node.submit("c", f"r{i}", "kv_set", {"v": i, "k": f"k{i}"}, lambda _: None)
    node.process_ready()
    entry = next(e for e in persisted if e.index == first)
    assert type(entry.data) is msgspec.Raw
    data = msgspec.json.decode(entry.data)
    commands = data if count > 1 else [data]
    assert bytes(entry.data) == msgspec.json.Encoder(order="sorted").encode(data)
    assert [list(c["args"]) for c in commands] == [["k", "v"]] * count
    assert node.machine.read("kv_get", {"k": f"k{count - 1}"})["value"] == count - 1
