"""A lock service with fencing tokens, on the ready-made replicated ``Lock``.

    PYTHONPATH=examples resonetics serve --machine lock_service:make ...   (every node)
    python examples/lock_service.py 127.0.0.1:7001,127.0.0.1:7002 db worker-1

A holder gets a lease (a TTL in log time: the leader-stamped time of the
entries, the same on every replica) and a fencing token: the log index of its
acquire, larger than every token handed out before. A process that pauses past
its lease (a GC pause, a partition) may still *believe* it holds the lock; the
token is what protects the resource: ``FencedStore`` refuses a write carrying
a token smaller than the largest it has seen (Kleppmann, "How to do distributed
locking", 2016).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from resonetics import Client
from resonetics.machine.structures import Lock


def make() -> Lock:
    """The factory ``serve --machine lock_service:make`` calls."""
    return Lock()


@dataclass(frozen=True, slots=True)
class Lease:
    name: str
    owner: str
    token: int
    expires_ms: int


def try_acquire(client: Client, name: str, owner: str, ttl_ms: int = 10_000) -> Lease | None:
    """One attempt: the lease if ``owner`` now holds ``name``, else None."""
    answer: dict[str, Any] = client.call("acquire", name=name, owner=owner, ttl_ms=ttl_ms)["value"]
    if not answer["acquired"]:
        return None
    return Lease(name, owner, answer["token"], answer["expires_ms"])


def refresh(client: Client, lease: Lease, ttl_ms: int = 10_000) -> Lease | None:
    """Extend ``lease``; None if it was lost (expired and taken, or released)."""
    expires = client.call(
        "refresh", name=lease.name, owner=lease.owner, token=lease.token, ttl_ms=ttl_ms
    )["value"]
    return None if expires is None else Lease(lease.name, lease.owner, lease.token, expires)


def release(client: Client, lease: Lease) -> bool:
    return bool(
        client.call("release", name=lease.name, owner=lease.owner, token=lease.token)["value"]
    )


@dataclass(slots=True)
class FencedStore:
    """A resource guarded by fencing tokens: a write with an older token is refused."""

    largest_token: int = 0
    writes: list[tuple[int, str]] = field(default_factory=list)

    def write(self, token: int, value: str) -> bool:
        if token < self.largest_token:
            return False
        self.largest_token = token
        self.writes.append((token, value))
        return True


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: lock_service.py ADDR[,ADDR...] LOCK_NAME OWNER", file=sys.stderr)
        return 2
    addresses, name, owner = argv[0].split(","), argv[1], argv[2]
    with Client(addresses, timeout=15) as client:
        lease = try_acquire(client, name, owner)
        if lease is None:
            print(f"{name} is held by someone else")
            return 1
        print(f"{owner} holds {name} with fencing token {lease.token}")
        release(client, lease)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
