"""The systems the benchmark knows: how to start each, and how to open a connection to it.

Every name is one labelled row family in the report. ``etcd`` is etcd over
native gRPC (the Go generator); ``etcd-gateway`` is the same cluster through
its HTTP/JSON gateway, kept only as a separately labelled row. ``*-tls`` run
with mutual TLS on client and peer links; ``resonetics-signed`` with entry
signing enforced; ``resonetics-client`` through one library ``AsyncClient``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

from bench.adapters.base import RunningSystem, SystemFailed, Target
from bench.loadgen import Adapter

if TYPE_CHECKING:
    from resonetics.security.certs import ClusterTLS

SYSTEM_NAMES: Final = (
    "resonetics",
    "resonetics-client",
    "resonetics-signed",
    "resonetics-tls",
    "etcd",
    "etcd-tls",
    "etcd-gateway",
    "pysyncobj",
    "pysyncobj-nobatch",
)
#: The default set: the headline comparison and the library row.
DEFAULT_SYSTEMS: Final = "resonetics,resonetics-client,etcd,pysyncobj,pysyncobj-nobatch"
#: What ``--tls`` adds for each system that has a mutual-TLS variant.
TLS_VARIANTS: Final = {"resonetics": "resonetics-tls", "etcd": "etcd-tls"}


def starter(name: str) -> Callable[[Path], RunningSystem]:
    """The function that starts system ``name`` in a work folder."""
    if name.startswith("resonetics"):
        from bench.adapters import resonetics

        return lambda workdir: resonetics.start(
            workdir, system=name, tls=_certs(workdir, name, resonetics.NODE_IDS)
        )
    if name.startswith("etcd"):
        from bench.adapters import etcd

        return lambda workdir: etcd.start(
            workdir, system=name, tls=_certs(workdir, name, etcd.MEMBERS)
        )
    if name in ("pysyncobj", "pysyncobj-nobatch"):
        from bench.adapters import pysyncobj

        batch = name == "pysyncobj"
        return lambda workdir: pysyncobj.start(workdir, batch=batch)
    raise ValueError(f"unknown system {name!r}; expected some of {', '.join(SYSTEM_NAMES)}")


def _certs(workdir: Path, name: str, members: tuple[str, ...]) -> ClusterTLS | None:
    """A fresh CA and certificates for a ``*-tls`` system (``security/certs.py``), else None."""
    if not name.endswith("-tls"):
        return None
    from resonetics.security.certs import write_cluster_certs

    return write_cluster_certs(workdir / f"{name}-certs", list(members))


async def open_adapter(target: Target) -> Adapter:
    """A new connection to ``target`` (called once per connection, in any process)."""
    if target.system == "resonetics-client":
        from bench.adapters.resonetics import LibraryClientAdapter

        return await LibraryClientAdapter.open(target)
    if target.system.startswith("resonetics"):
        from bench.adapters.resonetics import ResoneticsAdapter

        return await ResoneticsAdapter.open(target)
    if target.system == "etcd-gateway":
        from bench.adapters.etcd import EtcdAdapter

        return await EtcdAdapter.open(target)
    if target.system.startswith("etcd"):
        raise ValueError(f"{target.system} is driven by the Go generator, not a Python adapter")
    from bench.adapters.pysyncobj import PySyncObjAdapter

    return await PySyncObjAdapter.open(target)


def parse_systems(text: str, *, tls: bool = False) -> list[str]:
    """``"resonetics,etcd"`` -> names; with ``tls``, each one's mutual-TLS variant follows it."""
    names = [p.strip() for p in text.split(",") if p.strip()]
    for name in names:
        if name not in SYSTEM_NAMES:
            raise ValueError(f"unknown system {name!r}; expected some of {', '.join(SYSTEM_NAMES)}")
    if not names:
        raise ValueError("no system given")
    if tls:
        with_tls: list[str] = []
        for name in names:
            with_tls.append(name)
            variant = TLS_VARIANTS.get(name)
            if variant is not None and variant not in names and variant not in with_tls:
                with_tls.append(variant)
        names = with_tls
    return names


__all__ = [
    "DEFAULT_SYSTEMS",
    "SYSTEM_NAMES",
    "TLS_VARIANTS",
    "RunningSystem",
    "SystemFailed",
    "Target",
    "open_adapter",
    "parse_systems",
    "starter",
]
