"""What the driver needs from the world around it.

The asyncio server and the simulator each implement ``Host``; the driver loop
(``runtime/driver.py``) is the same code in both, so the simulator tests what
ships.
"""

from __future__ import annotations

from typing import Protocol

from resonetics.raft.messages import Message


class Host(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the epoch (virtual in the simulator); stamps client commands."""
        ...

    def send(self, msg: Message) -> None:
        """Queue ``msg`` for ``msg.dst``. Best effort: Raft tolerates loss, so never block."""
        ...

    def flush(self) -> None:
        """Hand everything queued by ``send`` to the network now.

        Called before the driver blocks its thread on a small disk write, so that
        messages allowed to leave before that write (a leader's AppendEntries) are
        on their way while it runs.
        """
        ...


__all__ = ["Host"]
