"""``resonetics bench``: run the benchmark harness in ``bench/`` against etcd and PySyncObj.

Systems (``--systems``): ``resonetics``, ``resonetics-client`` (one library
``AsyncClient``), ``resonetics-signed``, ``resonetics-tls``, ``etcd`` (native
gRPC, driven by the Go generator ``bench/setup.sh`` builds), ``etcd-tls``,
``etcd-gateway`` (the HTTP/JSON gateway, a separately labelled row),
``pysyncobj``, ``pysyncobj-nobatch``; ``--tls`` adds the ``*-tls`` variants.

The harness is not part of the installed package (it starts other systems'
servers and needs optional dependencies), so this command only finds the
``bench`` folder of the source checkout and runs ``python -m bench`` there,
passing the options through.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click

from resonetics.commands.preflight import check_data_dir


def find_bench_root() -> Path | None:
    """The checkout holding ``bench/__main__.py``: this source tree, else the working folder."""
    here = Path(__file__).resolve()
    for candidate in (*here.parents, Path.cwd(), *Path.cwd().parents):
        if (candidate / "bench" / "__main__.py").is_file():
            return candidate
    return None


def bench_command(args: list[str]) -> list[str]:
    """The harness's own command line (run with the checkout on PYTHONPATH)."""
    return [sys.executable, "-m", "bench", *args]


@click.command()
@click.option(
    "--systems",
    default="resonetics,resonetics-client,etcd,pysyncobj,pysyncobj-nobatch",
    show_default=True,
)
@click.option("--tls", is_flag=True, help="Also run resonetics-tls and etcd-tls (mutual TLS).")
@click.option("--concurrency", default="1,16,64,256", show_default=True)
@click.option("--duration", type=float, default=4.0, show_default=True, help="Measured seconds.")
@click.option("--warmup", type=float, default=1.0, show_default=True, help="Warm-up seconds.")
@click.option("--workloads", default="write,read,mix", show_default=True)
@click.option("--procs", type=int, default=1, show_default=True, help="Load-generator processes.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("bench/results"))
def bench(
    systems: str,
    concurrency: str,
    duration: float,
    warmup: float,
    workloads: str,
    procs: int,
    out: Path,
    tls: bool,
) -> None:
    """Benchmark Resonetics against etcd and PySyncObj (3-node clusters on loopback)."""
    check_data_dir(out, what="--out")  # the harness would fail with a traceback
    root = find_bench_root()
    if root is None:
        raise click.ClickException("no bench/ folder found: run this from a Resonetics checkout")
    args = [
        f"--systems={systems}",
        f"--concurrency={concurrency}",
        f"--duration={duration}",
        f"--warmup={warmup}",
        f"--workloads={workloads}",
        f"--procs={procs}",
        f"--out={out.resolve()}",
        *(["--tls"] if tls else []),
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
    code = subprocess.call(bench_command(args), cwd=root, env=env)
    if code != 0:
        raise SystemExit(code)


__all__ = ["bench", "bench_command", "find_bench_root"]
