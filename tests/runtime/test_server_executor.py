"""The server's executor of the loop (runtime/server_executor.py), driven directly."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from resonetics.raft.config import RaftConfig
from resonetics.raft.entry import EntryType, make_entry
from resonetics.raft.messages import AppendEntriesResp, Message
from resonetics.raft.packing import canonical
from resonetics.raft.ready import HardState
from resonetics.runtime.driver import NodeDriver
from resonetics.runtime.outcome import Outcome
from resonetics.runtime.server_executor import ServerExecutor
from resonetics.runtime.snapshots import SnapshotPolicy
from resonetics.storage.memory import MemoryNodeStorage
from resonetics.wire import codes
from tests.raft.harness import append_entries


class _Host:
    def __init__(self) -> None:
        self.sent: list[Message] = []

    def now_ms(self) -> int:
        return 1_000

    def send(self, msg: Message) -> None:
        self.sent.append(msg)

    def flush(self) -> None:
        pass


class _Disk:
    """A disk thread the test opens and closes: each job waits for ``release``."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.jobs = 0

    async def __call__(self, fn: Callable[..., None], *args: Any) -> None:
        self.jobs += 1
        self.started.set()
        await self.release.wait()
        fn(*args)


def _leader(snapshot_entries: int = 0) -> NodeDriver:
    node = NodeDriver(
        RaftConfig(node_id="n1", initial_voters=("n1",)),
        MemoryNodeStorage(),
        _Host(),
        random.Random(1),
        snapshot_policy=SnapshotPolicy(entries=snapshot_entries, trailing_entries=0),
    )
    node.core.campaign()
    node.process_ready()
    return node


def test_a_big_write_waits_for_the_disk_thread_and_input_meanwhile_joins_the_next_batch() -> None:
    async def scenario() -> None:
        node = _leader()
        node.inline_entries_max = 0
        disk = _Disk()
        executor = ServerExecutor(node, disk)
        answers: list[Outcome] = []
        node.submit("c", "r1", "kv_set", {"k": "a", "v": 1}, answers.append)
        assert executor.run_now() is False  # the write must wait: the caller runs run()
        task = asyncio.ensure_future(executor.run())
        await disk.started.wait()
        assert node.write_in_flight
        last = node.core.last_index
        node.submit("c", "r2", "kv_set", {"k": "b", "v": 2}, answers.append)
        node.tick()
        await asyncio.sleep(0)
        assert node.core.last_index == last  # proposed only after the write in flight
        assert answers == []  # nobody is answered before the write is durable
        disk.release.set()
        await task
        assert [a.code for a in answers] == [codes.OK, codes.OK]
        assert not node.has_work()  # no lost wake-up: what arrived meanwhile was handled

    asyncio.run(scenario())


def test_a_snapshot_file_is_written_on_its_thread_and_the_log_compacted_on_the_disk_thread() -> (
    None
):
    async def scenario() -> None:
        node = _leader(snapshot_entries=1)
        disk, snapshot_thread = _Disk(), _Disk()
        disk.release.set()
        snapshot_thread.release.set()
        executor = ServerExecutor(node, disk, run_snapshot_write=snapshot_thread)
        before = node.snapshots.stats.taken
        node.submit("c", "r1", "kv_set", {"k": "a", "v": 1}, lambda o: None)
        assert executor.run_now() is True
        assert executor.snapshot_in_progress
        await executor.wait_snapshot()
        assert node.snapshots.stats.taken == before + 1
        assert snapshot_thread.jobs == 1  # the file
        assert disk.jobs == 1  # the compaction
        assert node.storage.load().snapshot is not None

    asyncio.run(scenario())


def test_writes_are_made_durable_and_answered_while_the_snapshot_file_is_being_written() -> None:
    """A large state's file takes seconds to write; on the disk thread it held up every
    log write behind it, so a node neither acked nor committed meanwhile and a loaded
    leader whose followers snapshot at the same index lost its quorum."""

    async def scenario() -> None:
        node = _leader(snapshot_entries=1)
        node.inline_entries_max = 0
        disk, snapshot_thread = _Disk(), _Disk()
        disk.release.set()
        executor = ServerExecutor(node, disk, run_snapshot_write=snapshot_thread)
        node.submit("c", "r1", "kv_set", {"k": "a", "v": 1}, lambda o: None)
        await executor.run()  # the write, then a snapshot is due and started
        await asyncio.wait_for(snapshot_thread.started.wait(), 5)  # stuck on its thread
        writes_before = disk.jobs
        answers: list[Outcome] = []
        node.submit("c", "r2", "kv_set", {"k": "b", "v": 2}, answers.append)
        await executor.run()
        assert [a.code for a in answers] == [codes.OK]
        assert disk.jobs == writes_before + 1  # written on the disk thread meanwhile
        assert executor.snapshot_in_progress  # still writing the file
        snapshot_thread.release.set()
        await executor.wait_snapshot()
        assert node.snapshots.stats.taken >= 1
        recovered = node.storage.load()
        assert recovered.snapshot is not None
        assert recovered.anchor.index + len(recovered.entries) == node.core.last_index

    asyncio.run(scenario())


def test_a_failed_snapshot_save_stops_the_loop_with_its_error() -> None:
    async def scenario() -> None:
        node = _leader(snapshot_entries=1)

        async def broken_disk(fn: Callable[..., None], *args: Any) -> None:
            raise OSError("disk full")

        executor = ServerExecutor(node, broken_disk)
        node.submit("c", "r1", "kv_set", {"k": "a", "v": 1}, lambda o: None)
        executor.run_now()
        await executor.wait_snapshot()
        assert not node.snapshot_in_progress
        with pytest.raises(OSError, match="disk full"):
            executor.run_now()

    asyncio.run(scenario())


def test_a_long_replay_goes_a_slice_per_loop_turn_and_the_node_answers_meanwhile() -> None:
    """A node restarting over a long committed log used to apply all of it in one go,
    reading no socket meanwhile: a second's worth per 150,000 commands, during which
    it neither acked nor voted. Now each Ready hands out a slice and the executor
    yields to the loop between slices: a message that arrives during the replay is
    answered before the replay ends."""

    async def scenario() -> None:
        storage = MemoryNodeStorage()
        prev = storage.load().anchor
        entries = []
        for i in range(1, 201):
            data = canonical(
                {
                    "client_id": "c",
                    "request_id": f"r{i}",
                    "op": "kv_set",
                    "args": {"k": f"k{i}", "v": i},
                    "ts": i,
                }
            )
            prev = make_entry(prev.hash, 1, i, EntryType.CLIENT_CMD, data)
            entries.append(prev)
        storage.append(entries)
        storage.sync()
        storage.save_hard_state(HardState(term=1, vote="n2", commit=200), 0)
        host = _Host()
        config = RaftConfig(node_id="n1", initial_voters=("n1", "n2", "n3"), apply_entries_max=20)
        node = NodeDriver(config, storage, host, random.Random(1))
        executor = ServerExecutor(node, _Disk())
        assert executor.run_now() is False  # the first slice, then the rest from run()
        assert node.machine.last_applied == 20
        replay = asyncio.ensure_future(executor.run())
        await asyncio.sleep(0)
        # A heartbeat from the leader arrives while the replay is under way.
        node.step(append_entries(prev, src="n2", dst="n1", leader_commit=200))
        answered_at = None
        while not replay.done():
            if answered_at is None and any(isinstance(m, AppendEntriesResp) for m in host.sent):
                answered_at = node.machine.last_applied
            await asyncio.sleep(0)
        assert answered_at is not None and answered_at < 200  # acked before the replay ended
        assert node.machine.last_applied == 200
        assert node.machine.read("kv_get", {"k": "k200"})["value"] == 200

    asyncio.run(scenario())


def test_a_restarted_nodes_snapshot_is_hashed_on_the_snapshot_thread_not_at_its_first_stream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A node restarted from a snapshot used to make that snapshot's stream checksum (a
    SHA-256 of the whole state, about 90 ms at 160 MB) on its loop when a first follower
    needed it. ``hash_recovered_snapshot`` makes it on the snapshot thread first."""
    from resonetics.raft import snapshot as snapshot_module

    async def scenario() -> None:
        node = _leader(snapshot_entries=1)
        node.submit("c", "r1", "kv_set", {"k": "a", "v": 1}, lambda o: None)
        while node.snapshots.stats.taken == 0 or node.has_work():
            node.process_ready()
        restarted = NodeDriver(
            RaftConfig(node_id="n1", initial_voters=("n1",)),
            node.storage,
            _Host(),
            random.Random(2),
        )
        snapshot = restarted.core.snapshot_to_hash()
        assert snapshot is not None  # recovered without its checksum
        expected = snapshot_module.stream_checksum(snapshot)
        on_thread: list[bool] = []
        plain = snapshot_module.stream_checksum

        def recorded(snap: Any) -> str:
            on_thread.append(threading.current_thread() is not threading.main_thread())
            return plain(snap)

        monkeypatch.setattr(snapshot_module, "stream_checksum", recorded)

        async def snapshot_thread(fn: Callable[..., None], *args: Any) -> None:
            await asyncio.get_running_loop().run_in_executor(None, fn, *args)

        executor = ServerExecutor(restarted, _Disk(), run_snapshot_write=snapshot_thread)
        tasks: list[asyncio.Future[None]] = []

        def spawn(coro: Coroutine[Any, Any, None]) -> asyncio.Future[None]:
            tasks.append(asyncio.ensure_future(coro))
            return tasks[-1]

        executor.spawn = spawn
        executor.hash_recovered_snapshot()
        await asyncio.gather(*tasks)
        assert on_thread == [True]
        assert restarted.core.snapshot_to_hash() is None  # its checksum is known now

        def on_the_loop(snap: Any) -> str:
            raise AssertionError("the checksum was made again on the loop")

        monkeypatch.setattr(snapshot_module, "stream_checksum", on_the_loop)
        outgoing = restarted.core._snapshot  # what a stream would send
        assert outgoing is not None and outgoing.checksum == expected

    asyncio.run(scenario())
