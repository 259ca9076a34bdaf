"""storage layer (see DESIGN §2, §4): every byte in a node's data dir.

``NodeStorage`` (api.py) is the contract; ``FileNodeStorage`` implements it on
a ``FileSystem`` (the real disk through ``OsFileSystem``, or the simulator's
crashable ``MemoryFileSystem``); ``MemoryNodeStorage`` is the file-less twin.
"""

from resonetics.storage.api import NodeStorage, RecoveredState
from resonetics.storage.fs import (
    FileSystem,
    MemoryFileSystem,
    OsFileSystem,
    SimulatedCrash,
    atomic_write,
)
from resonetics.storage.memory import MemoryNodeStorage
from resonetics.storage.node_storage import FileNodeStorage

__all__ = [
    "FileNodeStorage",
    "FileSystem",
    "MemoryFileSystem",
    "MemoryNodeStorage",
    "NodeStorage",
    "OsFileSystem",
    "RecoveredState",
    "SimulatedCrash",
    "atomic_write",
]
