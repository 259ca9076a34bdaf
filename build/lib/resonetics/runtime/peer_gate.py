"""Which peer messages may reach the core: one rule for the server and the simulator.

A message arrives over a link whose other end authenticated as some node
(``security/peer_auth.py``), or over nothing that proved anything (a client
port, a forged packet in the simulator). ``refusal`` says why it must be
dropped, or None when it may be stepped:

1. the link must have authenticated (``authenticated`` is not None);
2. the message's ``src`` must be that node: a member cannot speak for another;
3. its ``dst`` must be this node;
4. the sender must be in this node's configuration (voters, learners, and a
   node being added, whose CONFIG entry counts from the moment it is in this
   node's log) — except for a leader's AppendEntries and InstallSnapshot. A
   node that was down while the cluster changed must hear the new leader to
   learn the configuration that makes that leader a member, and a node not yet
   in any configuration (joining) has no other way in; Raft's term rules decide
   whether such a message is current. Votes, vote requests, TimeoutNow and
   acknowledgements from a non-member are what a removed node would send, and
   are dropped (dissertation §4.2.3).

The reasons are a fixed set of strings, so counting them by reason stays
bounded whatever a peer sends.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

from resonetics.raft.messages import AppendEntries, InstallSnapshot, Message

NOT_AUTHENTICATED: Final = "not from an authenticated peer link"
SRC_MISMATCH: Final = "src is not the authenticated node"
WRONG_DST: Final = "addressed to another node"
NOT_A_MEMBER: Final = "sender outside the configuration"
REASONS: Final = (NOT_AUTHENTICATED, SRC_MISMATCH, WRONG_DST, NOT_A_MEMBER)


def refusal(
    me: str, members: Collection[str], authenticated: str | None, msg: Message
) -> str | None:
    """Why ``msg`` must not be stepped by node ``me``, or None if it may be."""
    if authenticated is None:
        return NOT_AUTHENTICATED
    if msg.src != authenticated:
        return SRC_MISMATCH
    if msg.dst != me:
        return WRONG_DST
    if msg.src in members or isinstance(msg, AppendEntries | InstallSnapshot):
        return None
    return NOT_A_MEMBER


__all__ = ["NOT_AUTHENTICATED", "NOT_A_MEMBER", "REASONS", "SRC_MISMATCH", "WRONG_DST", "refusal"]
