"""Fault injection on real clusters: proxies, a nemesis, a recorded workload, and the checks."""

from resonetics.torture.harness import TortureOptions, TortureResult, run_torture
from resonetics.torture.nemesis import FAULT_KINDS

__all__ = ["FAULT_KINDS", "TortureOptions", "TortureResult", "run_torture"]
