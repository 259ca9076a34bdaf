"""Which state machine a node serves, and the op table built from its declaration.

``NodeServer(config, machine=...)`` takes a machine object; without one it loads
``config.machine`` (``serve --machine pkg.mod:factory`` or the TOML key
``machine``), and without that it serves the key-value store. A user's machine
is wrapped in ``ServedMachine`` (machine/served.py); the key-value store is
served as it always was. Either way ``ReplicatedKV`` adds sessions, receipts
and the snapshot format, and ``op_table`` turns the declared ops into the table
validation, dispatch and authorization read.
"""

from __future__ import annotations

from dataclasses import dataclass

from resonetics.machine.base import StateMachine
from resonetics.machine.kv import KeyValueStore
from resonetics.machine.ops import load_factory, machine_name
from resonetics.machine.replicated import ReplicatedKV
from resonetics.machine.served import ServedMachine
from resonetics.server.config import ServerConfig
from resonetics.server.machine_record import check_machine_record
from resonetics.storage.lock import DataDirLock
from resonetics.wire.client import OpTable
from resonetics.wire.machine_ops import op_table


@dataclass(frozen=True, slots=True)
class Served:
    """What a node serves: the machine's name, its replicated wrapper and its op table."""

    name: str
    replicated: ReplicatedKV
    ops: OpTable


def served_machine(config: ServerConfig, machine: StateMachine | None = None) -> Served:
    """The machine ``config`` asks for (``MachineError`` when it cannot be served)."""
    if machine is None:
        machine = load_factory(config.machine) if config.machine else KeyValueStore()
    ops = op_table(machine)
    name = machine_name(machine)
    inner: StateMachine = machine if isinstance(machine, KeyValueStore) else ServedMachine(machine)
    return Served(name, ReplicatedKV(inner), ops)


def serve_in_dir(config: ServerConfig, machine: StateMachine | None, lock: DataDirLock) -> Served:
    """``served_machine``, checked against the machine the data dir was founded with
    (recorded on first start); on any refusal the data dir's lock is released."""
    try:
        served = served_machine(config, machine)
        check_machine_record(config.node_dir, served.name)
    except BaseException:
        lock.release()
        raise
    return served


__all__ = ["Served", "serve_in_dir", "served_machine"]
