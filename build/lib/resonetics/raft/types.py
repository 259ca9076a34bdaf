"""Identifier and counter types shared by every layer.

Terms and indexes are plain ``int`` aliases rather than ``NewType``: they are
added to and compared with constants on nearly every line of the core, and a
``NewType`` would turn each of those into a cast without catching real bugs.
Node ids are strings everywhere (``"n1"``), on the wire and on disk.
"""

from __future__ import annotations

from typing import TypeAlias

NodeId: TypeAlias = str
Term: TypeAlias = int
Index: TypeAlias = int

__all__ = ["Index", "NodeId", "Term"]
