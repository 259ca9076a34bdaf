"""The Resonetics benchmark harness: one load generator, one adapter per system.

Run it with ``python -m bench`` from the repository root, ``resonetics bench``,
or ``make bench``. See docs/benchmarks.md for what it measures and how.
"""
