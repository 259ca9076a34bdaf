"""Writes of new keys into a store that already holds many (not a test).

``python -m bench.large_store [--keys 1000000] [--writes 100000] [--inflight 256]
[--systems resonetics,etcd] [-- serve flags]`` starts a local 3-node cluster, fills it with KEYS distinct random keys (100-byte
values) through the raw protocol with N in flight, then times WRITES more writes of
new random keys and prints their rate and the CPU per write of the leader, the two
followers together and this process (``/proc``), then each node's term, snapshots
taken and event-loop stalls (``status`` → ``loop``; a stall is a tick a third of an
election timeout late, what loses a leader when it reaches the timeout). Keys are random so that each new
key lands anywhere in the store's key order, as user ids or UUIDs do; the bench's
usual 1,000 keys never grow the store. Compare two trees by running each tree's copy.

``--systems etcd`` (after ``bash bench/setup.sh``) does the same to a 3-member etcd
cluster, driven as its users drive it: the Go gRPC generator (``bench/etcd_load``)
writes each key once (``-workload preload -random-keys``), the fill then the new keys,
with the same number in flight over the same number of connections; it prints the rates
and the CPU per write of etcd's leader and of the generator. etcd's followers are not
timed: its start-up does not name their pids.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from pathlib import Path

from bench.adapters.base import RunningSystem, Target
from bench.adapters.resonetics import ResoneticsAdapter
from bench.single_client import RAW_CONNECTIONS, cpu_s, local_cluster
from resonetics.localcluster import LocalCluster

VALUE = "v" * 100


async def _writes(addresses: list[str], keys: list[str], inflight: int) -> float:
    """Write every key once with ``inflight`` outstanding; the wall seconds it took."""
    target = Target("resonetics", addresses[0], others=tuple(addresses[1:]))
    conns = [await ResoneticsAdapter.open(target) for _ in range(RAW_CONNECTIONS)]

    async def lane(first: int) -> None:
        for i in range(first, len(keys), inflight):
            await conns[i % len(conns)].write(keys[i], VALUE)

    started = time.perf_counter()
    await asyncio.gather(*(lane(i) for i in range(inflight)))
    took = time.perf_counter() - started
    for conn in conns:
        await conn.close()
    return took


def _report_nodes(cluster: LocalCluster) -> None:
    """Each node's term (a term above the first leader's means an election happened),
    snapshots taken and its loop's stalls."""
    for node_id in sorted(cluster.nodes):
        status = cluster.status(node_id, timeout_s=10.0)
        if status is None:
            print(f"{node_id}: no status", flush=True)
            continue
        loop, snaps = status["loop"], status["snapshot"]
        print(
            f"{node_id}: {status['role']} term {status['term']}, {snaps['taken']} snapshots "
            f"(last {snaps['bytes'] / 1e6:.0f} MB in {snaps['seconds']:.1f} s), loop stalls "
            f"{loop['stalls']} (worst {loop['worst_stall_ms']:.0f} ms)",
            flush=True,
        )


def _etcd_preload(running: RunningSystem, keys: int, first: int, inflight: int) -> float:
    """Write keys ``first .. first + keys - 1`` of the generator's random key space once;
    the wall seconds it took (the generator's own window)."""
    from bench.adapters.etcd_grpc import generator_binary, generator_command, run_generator

    cmd = generator_command(generator_binary(), running.target, "preload", inflight, 1.0, 0.0)
    cmd += [f"-keys={keys}", f"-first={first}", "-random-keys"]
    raw = run_generator(cmd, timeout_s=3_600)
    if raw.errors:
        raise OSError(f"etcd: {raw.errors} of {keys:,} writes failed ({raw.first_error})")
    return raw.window_s


def _etcd(args: argparse.Namespace) -> None:
    """The same fill and new-key writes against a 3-member etcd cluster."""
    from bench.adapters import etcd

    work = tempfile.TemporaryDirectory(prefix="large-store-etcd-")  # gone after: GBs of WAL
    running = etcd.start(Path(work.name), system="etcd")
    try:
        fill = _etcd_preload(running, args.keys, 0, args.inflight)
        print(f"etcd: filled {args.keys:,} keys in {fill:.1f} s ({args.keys / fill:,.0f}/s)")
        assert running.leader_pid is not None
        before, own = cpu_s(running.leader_pid), _children_cpu_s()
        took = _etcd_preload(running, args.writes, args.keys, args.inflight)
        leader, generator = cpu_s(running.leader_pid) - before, _children_cpu_s() - own
    finally:
        running.stop()
        work.cleanup()
    per = 1e6 / args.writes
    print(
        f"etcd: {args.writes:,} new keys at N={args.inflight} into {args.keys:,}: "
        f"{args.writes / took:,.0f}/s; CPU per write: leader {leader * per:.0f} us, "
        f"generator {generator * per:.0f} us; load {os.getloadavg()[0]:.1f}",
        flush=True,
    )


def _children_cpu_s() -> float:
    """CPU seconds of this process's finished children (the Go generator runs)."""
    t = os.times()
    return t.children_user + t.children_system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--writes", type=int, default=100_000)
    parser.add_argument("--inflight", type=int, default=256)
    parser.add_argument("--systems", default="resonetics", help="resonetics, etcd or both")
    parser.add_argument("--log-level", default="warning", help="the nodes' log level")
    parser.add_argument("serve_flags", nargs="*", help="extra `resonetics serve` flags (after --)")
    args = parser.parse_args()
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(systems) - {"resonetics", "etcd"}
    if unknown or not systems:
        parser.error(f"--systems: resonetics and/or etcd, got {args.systems!r}")
    for system in systems:  # in the order given: alternate it between runs
        (_resonetics if system == "resonetics" else _etcd)(args)


def _resonetics(args: argparse.Namespace) -> None:
    import uvloop

    rng = random.Random(19)
    names = [f"user/{rng.getrandbits(64):016x}" for _ in range(args.keys + args.writes)]
    with local_cluster("large-store-", args.serve_flags, args.log_level) as running:
        cluster, leader_id, addresses, pids = running
        try:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                fill = runner.run(_writes(addresses, names[: args.keys], args.inflight))
                print(
                    f"filled {args.keys:,} keys in {fill:.1f} s ({args.keys / fill:,.0f}/s)",
                    flush=True,
                )
                before, own = {n: cpu_s(p) for n, p in pids.items()}, os.times()
                took = runner.run(_writes(addresses, names[args.keys :], args.inflight))
                after, own_after = {n: cpu_s(p) for n, p in pids.items()}, os.times()
        finally:
            _report_nodes(cluster)
    per = 1e6 / args.writes
    followers = sum(after[n] - before[n] for n in pids if n != leader_id)
    generator = own_after.user + own_after.system - own.user - own.system
    print(
        f"{args.writes:,} new keys at N={args.inflight} into {args.keys:,}: "
        f"{args.writes / took:,.0f}/s; CPU per write: leader "
        f"{(after[leader_id] - before[leader_id]) * per:.0f} us, followers "
        f"{followers * per:.0f} us, generator {generator * per:.0f} us; "
        f"load {os.getloadavg()[0]:.1f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
