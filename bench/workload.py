"""What the load generator sends: the three workloads and their keys and values.

Every system gets the same stream shape: keys drawn uniformly from a fixed key
space (``bench-00000`` ...), 100-byte ASCII values, and for the mix a 90 %
chance of a read per request. Reads are linearizable in every system (see each
adapter for how).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final, Literal

Workload = Literal["write", "read", "mix"]
WORKLOADS: Final[tuple[Workload, ...]] = ("write", "read", "mix")

#: Bytes of every written value.
VALUE_BYTES: Final = 100
#: Distinct keys the workloads touch; preloaded before any read runs.
KEYSPACE_KEYS: Final = 1000
#: Share of reads in the ``mix`` workload.
MIX_READ_FRACTION: Final = 0.9


def key_name(index: int) -> str:
    return f"bench-{index:05d}"


def make_value(rng: random.Random, size: int = VALUE_BYTES) -> str:
    """An ASCII value of exactly ``size`` bytes (letters, so no JSON escaping)."""
    return "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=size))


@dataclass(slots=True)
class OpChooser:
    """Picks (is_write, key) for one request of a workload; one per worker task."""

    workload: Workload
    rng: random.Random
    keyspace: int = KEYSPACE_KEYS

    def next(self) -> tuple[bool, str]:
        key = key_name(self.rng.randrange(self.keyspace))
        if self.workload == "write":
            return True, key
        if self.workload == "read":
            return False, key
        return self.rng.random() >= MIX_READ_FRACTION, key


def parse_workloads(text: str) -> list[Workload]:
    """``"write,read"`` -> ``["write", "read"]``; ValueError naming an unknown one."""
    out: list[Workload] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if part not in WORKLOADS:
            raise ValueError(f"unknown workload {part!r}; expected some of {', '.join(WORKLOADS)}")
        out.append(part)  # type: ignore[arg-type,unused-ignore]  # checked just above
    if not out:
        raise ValueError("no workload given")
    return out


__all__ = [
    "KEYSPACE_KEYS",
    "MIX_READ_FRACTION",
    "VALUE_BYTES",
    "WORKLOADS",
    "OpChooser",
    "Workload",
    "key_name",
    "make_value",
    "parse_workloads",
]
