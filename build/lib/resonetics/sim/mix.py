"""One sweep over every mode of the simulator: ``resonetics sim --mix``.

Theory of operation
-------------------
A plain sweep runs every seed with the same options, so the random network,
disk and clock faults get many runs while membership churn, the adversary,
watchers, leases, five-node clusters and the targeted scenarios get none
unless a sweep of their own is started. ``--mix`` spreads the seeds over
``MODES`` instead: seed ``s`` runs mode ``s % len(MODES)``, the base options
with that mode's changes on top. So one command, and one coverage table, covers
every fault kind and mode, and a sweep of ``9 * k`` seeds gives each mode ``k``
runs.

The mode is a function of the seed alone, so ``--seed N --mix`` replays seed N
exactly, with any number of workers, and a failing run's report prints the
options it ran with as explicit flags (``--adversary``, ``--scenario revote``,
...), which replay it without ``--mix``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final

from resonetics.sim.options import SimOptions

#: Mode name -> the options it sets on top of the base options. The first is the base
#: itself (the faults given, three nodes); the others mirror ``make soak``'s sweeps and
#: the command line's modes. The mode of a seed is its index modulo the table's
#: length, so a new mode changes which mode most seeds run: a failing seed's report
#: names its flags explicitly, and those replay it whatever the table holds.
MODES: Final[tuple[tuple[str, dict[str, Any]], ...]] = (
    ("faults", {}),
    ("churn, readers", {"membership_churn": True, "readers": 3}),
    ("adversary", {"adversary": True}),
    ("five nodes", {"nodes": 5}),
    ("batched writes, readers", {"batch_writes": True, "readers": 2}),
    ("watchers, leases", {"watchers": 2, "lease_clients": 2}),
    ("revote", {"faults": frozenset({"delay", "dup"}), "scenario": "revote"}),
    (
        "figure8",
        {"faults": frozenset(), "scenario": "figure8", "append_entries_max": 1},
    ),
    (
        "transfer lag",
        {
            "faults": frozenset(),
            "membership_churn": True,
            "transfer_lag": True,
            "readers": 3,
        },
    ),
)

#: Options a mode sets: given by hand beside ``--mix`` they would be overridden, so the
#: command line refuses them (``commands/sim.py``).
MODE_SETS: Final[frozenset[str]] = frozenset(key for _, changes in MODES for key in changes)


#: The command-line flag of each option a mode sets, to name it in a refusal.
FLAG_OF: Final[dict[str, str]] = {
    "membership_churn": "--churn",
    "readers": "--readers",
    "adversary": "--adversary",
    "nodes": "--nodes",
    "batch_writes": "--batch-writes",
    "watchers": "--watchers",
    "lease_clients": "--lease-clients",
    "scenario": "--scenario",
    "append_entries_max": "--append-entries-max",
    "transfer_lag": "--transfer-lag",
    "faults": "--faults",
}


class MixConflict(ValueError):
    """Base options that a mixed sweep cannot take (a mode would override them)."""


def check_base(options: SimOptions) -> None:
    """Refuse base options the modes would silently override, or cannot run with."""
    if options.machine:
        raise MixConflict("--mix runs key-value readers, watchers and leases: not with --machine")
    default = SimOptions()
    overridden = sorted(
        FLAG_OF[key]
        for key in MODE_SETS - {"faults"}
        if getattr(options, key) != getattr(default, key)
    )
    if overridden:
        raise MixConflict(
            "--mix chooses these per seed, so they cannot be given with it: "
            + ", ".join(overridden)
        )


def mode_of(seed: int) -> str:
    """The name of the mode seed ``seed`` runs under ``--mix``."""
    return MODES[seed % len(MODES)][0]


def mixed(options: SimOptions, seed: int) -> SimOptions:
    """The options seed ``seed`` runs with under ``--mix``: ``options`` with its mode's
    changes on top (the first mode keeps the base faults; others name their own)."""
    _, changes = MODES[seed % len(MODES)]
    return dataclasses.replace(options, **changes) if changes else options


__all__ = ["MODES", "MODE_SETS", "MixConflict", "check_base", "mixed", "mode_of"]
