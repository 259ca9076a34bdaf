"""etcd over native gRPC: running the Go load generator and reading what it prints.

``bench/etcd_load/main.go`` is built by ``bench/setup.sh`` into ``bench/bin/``
(git-ignored) from Debian's ``golang-go`` and ``golang-etcd-server-dev``
sources, offline. Per measured point the runner starts it once as a child
process; it keeps N requests in flight with the same window rules as
``bench/loadgen.py`` and prints one JSON object, which :func:`parse_output`
turns into the same ``RawRun`` the Python generator returns, so the report
tables etcd like any other system and its ``gen CPU %`` is the Go process's
own CPU time (getrusage) over the measured window.

The pure parts (:func:`generator_command`, :func:`parse_output`) are tested
without etcd or Go in ``tests/bench/test_etcd_grpc.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, Final

from bench.adapters.base import SystemFailed, Target
from bench.loadgen import RawRun, connections_for
from bench.workload import KEYSPACE_KEYS, VALUE_BYTES, Workload

#: Where setup.sh builds the generator (``ETCD_LOAD_BIN`` overrides it).
DEFAULT_BINARY: Final = Path(__file__).resolve().parents[1] / "bin" / "etcd_load"
#: Requests in flight while preloading the key space (``bench/runner.py``'s figure).
PRELOAD_CONCURRENCY: Final = 32
#: Seconds a generator may take beyond its warm-up and window before it is killed.
GRACE_S: Final = 30.0


class GeneratorOutputError(ValueError):
    """The generator printed something that is not the JSON result it promises."""


def generator_binary() -> Path:
    """The built generator; SystemFailed naming set-up when it is missing."""
    path = Path(os.environ.get("ETCD_LOAD_BIN") or DEFAULT_BINARY)
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise SystemFailed(
            f"etcd: no gRPC load generator at {path}; run `bash bench/setup.sh` "
            "(needs golang-go and golang-etcd-server-dev)"
        )
    return path


def generator_command(
    binary: Path,
    target: Target,
    workload: Workload | str,
    concurrency: int,
    duration_s: float,
    warmup_s: float,
    *,
    seed: int = 1,
) -> list[str]:
    """The command line for one point (``workload`` ``preload`` writes every key once)."""
    if concurrency < 1 or duration_s <= 0 or warmup_s < 0:
        raise ValueError("concurrency >= 1, duration_s > 0 and warmup_s >= 0 are required")
    conns = target.connections or connections_for(concurrency, target.inflight_per_connection)
    cmd = [
        str(binary),
        f"-endpoints={','.join((target.address, *target.others))}",
        f"-workload={workload}",
        f"-concurrency={concurrency}",
        f"-conns={conns}",
        f"-warmup={warmup_s}s",
        f"-duration={duration_s}s",
        f"-value-size={VALUE_BYTES}",
        f"-keys={KEYSPACE_KEYS}",
        f"-seed={seed}",
    ]
    if target.tls_files is not None:
        ca, cert, key = target.tls_files
        cmd += [f"-cacert={ca}", f"-cert={cert}", f"-key={key}"]
    return cmd


def _number(data: dict[str, Any], name: str) -> float:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GeneratorOutputError(f"generator output: {name!r} is not a number: {value!r}")
    return float(value)


def parse_output(text: str) -> RawRun:
    """The ``RawRun`` in the generator's JSON line; GeneratorOutputError if it is not one."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise GeneratorOutputError(f"generator output is not JSON: {text[:200]!r}") from exc
    if not isinstance(data, dict):
        raise GeneratorOutputError(f"generator output is not an object: {text[:200]!r}")
    latencies = data.get("latencies_ns")
    if not isinstance(latencies, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in latencies
    ):
        raise GeneratorOutputError("generator output: 'latencies_ns' is not a list of ns counts")
    ok = int(_number(data, "ok"))
    if ok != len(latencies):
        raise GeneratorOutputError(
            f"generator output: ok={ok} but {len(latencies)} latencies were given"
        )
    first_error = data.get("first_error")
    return RawRun(
        ok=ok,
        errors=int(_number(data, "errors")),
        latencies_s=[v / 1e9 for v in latencies],
        first_error=str(first_error) if first_error is not None else None,
        cpu_s=_number(data, "cpu_s"),
        window_s=_number(data, "window_s"),
    )


def run_generator(cmd: list[str], timeout_s: float) -> RawRun:
    """Run one generator process; OSError (the runner's 'cell failed') when it fails."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise OSError(f"etcd_load did not finish within {timeout_s:.0f}s") from exc
    if done.returncode != 0:
        raise OSError(f"etcd_load exited {done.returncode}: {done.stderr.strip()[:300]}")
    try:
        return parse_output(done.stdout)
    except GeneratorOutputError as exc:
        raise OSError(str(exc)) from exc


def measure(
    target: Target, workload: Workload, concurrency: int, duration_s: float, warmup_s: float
) -> RawRun:
    """One measured point against ``target`` by the Go generator."""
    cmd = generator_command(generator_binary(), target, workload, concurrency, duration_s, warmup_s)
    return run_generator(cmd, duration_s + warmup_s + GRACE_S)


def preload(target: Target) -> None:
    """Write every key once, so reads find values."""
    cmd = generator_command(generator_binary(), target, "preload", PRELOAD_CONCURRENCY, 1.0, 0.0)
    raw = run_generator(cmd, GRACE_S * 4)
    if raw.errors:
        raise OSError(f"etcd preload: {raw.errors} writes failed ({raw.first_error})")


__all__ = [
    "DEFAULT_BINARY",
    "GeneratorOutputError",
    "generator_binary",
    "generator_command",
    "measure",
    "parse_output",
    "preload",
    "run_generator",
]
