"""Recipes on top of the key-value store: a distributed lock on a lease.

``Lock(client, name, ttl_s)`` holds the key ``locks/<name>`` (``prefix``), created
by a ``kv_txn`` only if absent and attached to a lease the client keeps alive in
the background (``leases.KeptLease``). So:

* **Exclusion**: the create-if-absent txn succeeds for one caller at a time.
* **Release on exit**: the lease is revoked, which deletes the key in the same
  entry.
* **Release on death**: a holder that dies (``kill -9``) stops its keep-alives;
  the leader expires the lease after its TTL and the key goes with it. Waiters
  poll (``get``, backing off from ``poll_s`` to ``poll_max_s``) and retry the
  txn once the key is gone.
* **Fencing token**: the lock key's create index (the log index of the txn that
  took it), larger than every token handed out before for that lock, since the
  log only grows. Pass it to the resource; it refuses a token smaller than the
  largest it has seen (a holder paused past its TTL cannot write after the next
  holder did).
* **Lost-lease detection**: ``lock.check()`` raises ``LeaseLost`` once the lease
  is no longer surely held; ``lock.lost`` is an ``asyncio.Event`` set then.

Async: ``async with Lock(async_client, "db", 10) as token``; blocking:
``with Lock(client, "db", 10) as token`` (the keeping runs on the client's loop
thread).
"""

from __future__ import annotations

import asyncio
import socket
from types import TracebackType
from typing import Any

from resonetics import errors
from resonetics.client import AsyncClient, Client
from resonetics.leases import KeptLease
from resonetics.txn import Compare, Get, Put

LOCK_PREFIX = "locks/"


class Lock:
    """A lease-backed lock with a fencing token (see the module docstring)."""

    def __init__(
        self,
        client: AsyncClient | Client,
        name: str,
        ttl_s: float = 10.0,
        *,
        prefix: str = LOCK_PREFIX,
        owner: str | None = None,
        poll_s: float = 0.05,
        poll_max_s: float = 1.0,
    ) -> None:
        self._sync = client if isinstance(client, Client) else None
        self.client: AsyncClient = client.async_client if isinstance(client, Client) else client
        self.name = name
        self.key = prefix + name
        self.ttl_s = ttl_s
        self.owner = (
            owner if owner is not None else f"{socket.gethostname()}:{self.client.client_id}"
        )
        self.poll_s = poll_s
        self.poll_max_s = poll_max_s
        self.token = 0
        self._lease: KeptLease | None = None

    @property
    def lease_id(self) -> int:
        return self._lease.id if self._lease is not None else 0

    @property
    def lost(self) -> asyncio.Event | None:
        return self._lease.lost if self._lease is not None else None

    async def acquire_async(self, timeout_s: float | None = None) -> int:
        """Wait for the lock (at most ``timeout_s``; ``Timeout`` after); its fencing token."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        lease = KeptLease(self.client, self.ttl_s)
        await lease.start()
        try:
            pause = self.poll_s
            while True:
                lease.check()
                got = await self.client.txn(
                    [Compare.absent(self.key)],
                    [Put(self.key, self.owner, lease=lease.id), Get(self.key)],
                    [Get(self.key)],
                )
                if got.succeeded:
                    self.token = int(got.responses[1]["create_index"])
                    self._lease = lease
                    return self.token
                while await self.client.get(self.key) is not None:
                    if deadline is not None and loop.time() + pause > deadline:
                        raise errors.Timeout(
                            f"lock {self.name!r}: still held after {timeout_s}s (key {self.key!r})"
                        )
                    await asyncio.sleep(pause)
                    pause = min(self.poll_max_s, pause * 2)
                    lease.check()
        except BaseException:
            await lease.close()
            raise

    async def release_async(self) -> None:
        """Release: revoke the lease, deleting the lock key in the same entry."""
        lease, self._lease = self._lease, None
        if lease is not None:
            await lease.close()

    def check(self) -> None:
        """``LeaseLost`` unless the lock is surely still held."""
        if self._lease is None:
            raise errors.LeaseLost(f"lock {self.name!r} is not held")
        if self._sync is not None:
            self._sync.run(_check(self._lease))
        else:
            self._lease.check()

    # --- async ------------------------------------------------------------------------------
    async def __aenter__(self) -> int:
        return await self.acquire_async()

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.release_async()

    # --- blocking ---------------------------------------------------------------------------
    def acquire(self, timeout_s: float | None = None) -> int:
        return self._blocking().run(self.acquire_async(timeout_s))

    def release(self) -> None:
        self._blocking().run(self.release_async())

    def __enter__(self) -> int:
        return self.acquire()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def _blocking(self) -> Client:
        if self._sync is None:
            raise TypeError("a Lock on an AsyncClient is used with 'async with' / acquire_async")
        return self._sync


async def _check(lease: KeptLease) -> None:
    lease.check()


def describe(lock: Lock) -> dict[str, Any]:
    """What a lock holder prints: key, token, lease."""
    return {"key": lock.key, "token": lock.token, "lease": lock.lease_id, "owner": lock.owner}


__all__ = ["LOCK_PREFIX", "Lock", "describe"]
