"""Which state machine a data dir holds: recorded when a node founds it, checked at start.

A node's log and snapshot are only meaningful to the machine that wrote them: a
counter's snapshot restored by the key-value store (or the other way round) would
be refused as garbage at best and misread at worst. So the first start of a node
writes ``<node_dir>/machine`` (the machine's name, one line, written atomically and
fsynced) and every later start compares it with the machine it runs, refusing a
mismatch with ``MachineMismatch`` before anything is loaded.

A data dir that already holds a log but no record was founded before records
existed, by the key-value store (the only machine a node could run then).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from resonetics import limits
from resonetics.errors import MachineError, MachineMismatch
from resonetics.storage.node_storage import LOG_NAME

MACHINE_RECORD_NAME: Final = "machine"
#: The name of a data dir with a log and no record (see the module docstring).
LEGACY_MACHINE: Final = "kv"


def check_machine_record(node_dir: Path, running: str) -> None:
    """Record ``running`` in a new data dir, or refuse one founded by another machine."""
    path = node_dir / MACHINE_RECORD_NAME
    try:
        with path.open("rb") as f:
            raw = f.read(limits.MACHINE_NAME_BYTES_MAX + 2)
    except FileNotFoundError:
        if (node_dir / LOG_NAME).exists():
            founded = LEGACY_MACHINE
        else:
            _write(path, running)
            return
    else:
        try:
            founded = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise MachineError(f"{path}: not a machine name (not UTF-8)") from None
    if founded != running:
        raise MachineMismatch(str(node_dir), founded, running)


def _write(path: Path, name: str) -> None:
    if len(name.encode()) > limits.MACHINE_NAME_BYTES_MAX:
        raise MachineError(
            f"machine name {name[:40]!r}...: longer than {limits.MACHINE_NAME_BYTES_MAX} bytes"
        )
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        f.write(name.encode() + b"\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


__all__ = ["LEGACY_MACHINE", "MACHINE_RECORD_NAME", "check_machine_record"]
