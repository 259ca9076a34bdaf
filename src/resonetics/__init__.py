"""Resonetics: a Raft-replicated, hash-chained, verifiable log and key-value store."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
