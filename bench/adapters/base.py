"""What every system under test provides: a target to aim at and a way to stop it."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


class SystemFailed(Exception):
    """A system could not be set up or did not answer; the run goes on without it."""


class RequestFailed(Exception):
    """The system answered a request with an error."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where the load goes; picklable, so worker processes can open their own connections."""

    system: str
    address: str
    #: 1 for one-request-at-a-time protocols (HTTP/1.1), 0 for pipelined ones.
    inflight_per_connection: int = 0
    variant: str = ""
    #: The other nodes, for adapters that follow the leader when it moves.
    others: tuple[str, ...] = ()
    #: (CA, client certificate, client key) paths for mutual TLS, or None for plain TCP.
    tls_files: tuple[str, str, str] | None = None
    #: Who drives the load: ``loadgen`` (bench/loadgen.py, in Python) or ``etcd_load``
    #: (the Go gRPC generator, bench/adapters/etcd_grpc.py).
    generator: str = "loadgen"
    #: Connections to open whatever N is (0: the loadgen's rule, ``connections_for``).
    connections: int = 0


@dataclass
class RunningSystem:
    """A started cluster: its target, the leader's pid (for profiling), and how to stop it."""

    target: Target
    durability: str
    leader_pid: int | None
    stop: Callable[[], None]
    notes: list[str] = field(default_factory=list)


def stop_processes(procs: list[subprocess.Popen[bytes]], timeout_s: float = 10.0) -> None:
    """SIGTERM every process we started, then SIGKILL the ones still there."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=timeout_s)


def spawn(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    """Start one server process with its output in ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def fail_pending(pending: dict[int, asyncio.Future[bytes]], why: str) -> None:
    for future in pending.values():
        if not future.done():
            future.set_exception(ConnectionResetError(why))
    pending.clear()


__all__ = [
    "RequestFailed",
    "RunningSystem",
    "SystemFailed",
    "Target",
    "fail_pending",
    "spawn",
    "stop_processes",
]
