"""The systems the benchmark knows: how to start each, and how to open a connection to it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final

from bench.adapters.base import RunningSystem, SystemFailed, Target
from bench.loadgen import Adapter

SYSTEM_NAMES: Final = ("resonetics", "etcd", "pysyncobj", "pysyncobj-nobatch")


def starter(name: str) -> Callable[[Path], RunningSystem]:
    """The function that starts system ``name`` in a work folder."""
    if name == "resonetics":
        from bench.adapters import resonetics

        return resonetics.start
    if name == "etcd":
        from bench.adapters import etcd

        return etcd.start
    if name in ("pysyncobj", "pysyncobj-nobatch"):
        from bench.adapters import pysyncobj

        batch = name == "pysyncobj"
        return lambda workdir: pysyncobj.start(workdir, batch=batch)
    raise ValueError(f"unknown system {name!r}; expected some of {', '.join(SYSTEM_NAMES)}")


async def open_adapter(target: Target) -> Adapter:
    """A new connection to ``target`` (called once per connection, in any process)."""
    if target.system == "resonetics":
        from bench.adapters.resonetics import ResoneticsAdapter

        return await ResoneticsAdapter.open(target)
    if target.system == "etcd":
        from bench.adapters.etcd import EtcdAdapter

        return await EtcdAdapter.open(target)
    from bench.adapters.pysyncobj import PySyncObjAdapter

    return await PySyncObjAdapter.open(target)


def parse_systems(text: str) -> list[str]:
    names = [p.strip() for p in text.split(",") if p.strip()]
    for name in names:
        if name not in SYSTEM_NAMES:
            raise ValueError(f"unknown system {name!r}; expected some of {', '.join(SYSTEM_NAMES)}")
    if not names:
        raise ValueError("no system given")
    return names


__all__ = [
    "SYSTEM_NAMES",
    "RunningSystem",
    "SystemFailed",
    "Target",
    "open_adapter",
    "parse_systems",
    "starter",
]
