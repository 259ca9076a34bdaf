"""Nothing a client can get into the log stops a leader or stalls replication."""

from __future__ import annotations

import random
from typing import Any

import pytest

from resonetics import limits
from resonetics.raft.config import RaftConfig
from resonetics.raft.entry import GENESIS, EntryType, chain_hash
from resonetics.raft.log import entry_size_bytes
from resonetics.raft.messages import Message
from resonetics.runtime.driver import BATCH_BYTES_MAX, NodeDriver
from resonetics.runtime.outcome import Outcome
from resonetics.storage.memory import MemoryNodeStorage
from resonetics.wire import codes


class _Host:
    def now_ms(self) -> int:
        return 1_000

    def send(self, msg: Message) -> None:
        pass

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
    return node


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_hashing_a_value_nested_990_deep_raises_which_is_why_depth_is_bounded() -> None:
    """The crash the depth limit prevents: the chain hash encodes the entry's data
    recursively, so a ~990-deep value raised RecursionError inside ``core.propose``,
    out of the driver loop, and the server stopped the node (``_driver_failed``).
    A server's deeper call stack lowered the threshold to the ~980 seen on a leader."""
    with pytest.raises(RecursionError):
        chain_hash(GENESIS.hash, 1, 1, EntryType.CLIENT_CMD, _nested(990))
    # The deepest a validated value can be is far from that.
    chain_hash(GENESIS.hash, 1, 1, EntryType.CLIENT_CMD, _nested(limits.LINE_DEPTH_MAX))


def test_command_that_cannot_be_replicated_is_refused_by_the_driver() -> None:
    """A 13 MB ``expected`` (never size-checked before) made an entry no AppendEntries
    could carry; the driver refuses any command over COMMAND_BYTES_MAX with TOO_LARGE."""
    node = _leader()
    last = node.core.last_index
    answers: list[Outcome] = []
    args = {"k": "a", "expected": "x" * 13_000_000, "v": 1}
    node.submit("c", "r1", "kv_cas", args, answers.append)
    node.process_ready()
    assert [a.code for a in answers] == [codes.TOO_LARGE]
    assert node.core.last_index == last  # nothing reached the log


def test_batch_of_growing_floats_fits_one_append_entries() -> None:
    """Batches are cut by bytes as sent; floats re-encode longer (``9e15`` becomes
    ``9000000000000000.0``), and the bound allows for it: every entry stays within
    APPEND_BYTES_MAX, so one AppendEntries carries it."""
    node = _leader()
    first = node.core.last_index + 1
    floats = "[" + ",".join(["9e15"] * 300) + "]"
    sent_size = len(floats) + 80  # what the server passes: the payload's length
    count = 2 * limits.BATCH_COMMANDS_MAX
    assert sent_size * limits.BATCH_COMMANDS_MAX <= BATCH_BYTES_MAX
    answers: list[Outcome] = []
    for i in range(count):
        node.submit(
            "c",
            f"r{i}",
            "kv_set",
            {"k": f"k{i}", "v": [9e15] * 300},
            answers.append,
            size=sent_size,
        )
    node.process_ready()
    assert len(answers) == count and all(a.code == codes.OK for a in answers)
    for index in range(first, node.core.last_index + 1):
        assert entry_size_bytes(node.core.entry_at(index)) <= limits.APPEND_BYTES_MAX
