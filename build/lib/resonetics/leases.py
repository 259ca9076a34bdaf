"""Client side of leases: refusals as exceptions, and a lease kept alive in the background.

``KeptLease`` (``async with client.lease(ttl) as lease``) grants a lease, sends a
keep-alive every ``interval_s`` (a third of the TTL by default) and revokes it on
exit. It tracks, on the client's monotonic clock, until when the lease is surely
held: the *send* time of the last acknowledged keep-alive plus the TTL (the
leader's deadline is at least the time it received that keep-alive plus the TTL,
docs/leases.md). Once that passes without a new acknowledgement, or a keep-alive
answers ``LEASE_NOT_FOUND``, the lease is **lost**: ``lost`` is set and
``check()`` raises ``LeaseLost``. A holder that acts on the lease's behalf
(a lock) calls ``check()`` first, and still carries a fencing token, since a
process can pause between the check and the act.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from resonetics import errors

if TYPE_CHECKING:
    from resonetics.client import AsyncClient, Client


def lease_checked(result: Any) -> Any:
    """``result`` unless the machine refused the op (``ok: false``): then its exception."""
    if not isinstance(result, dict) or result.get("ok") is not False:
        return result
    code, message = result.get("code"), str(result.get("message", result.get("code")))
    if code == errors.LeaseNotFound.code:
        raise errors.LeaseNotFound(message, result.get("id"))
    if code == errors.LeaseLimit.code:
        raise errors.LeaseLimit(message)
    if code == errors.Forbidden.code:
        raise errors.Forbidden(message)
    if code == errors.BadRequest.code:
        raise errors.BadRequest("args", message)
    return result


class KeptLease:
    """A lease granted on entry, kept alive in the background, revoked on exit."""

    def __init__(self, client: AsyncClient, ttl_s: float, *, interval_s: float | None = None):
        self.client = client
        self.ttl_s = ttl_s
        self.interval_s = interval_s if interval_s is not None else ttl_s / 3
        self.id = 0
        #: Set once the lease is lost (expired, revoked, or not confirmed in time).
        self.lost = asyncio.Event()
        self.lost_reason = ""
        #: Monotonic time until which the lease is surely held.
        self.held_until = 0.0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        sent = loop.time()
        self.id = await self.client.lease_grant(self.ttl_s)
        self.held_until = sent + self.ttl_s
        self._task = asyncio.create_task(self._keep(), name=f"lease-{self.id}")
        return self.id

    def check(self) -> None:
        """Raise ``LeaseLost`` unless the lease is surely still held."""
        if not self.lost.is_set() and asyncio.get_running_loop().time() >= self.held_until:
            self._lose("no keep-alive acknowledged within the TTL")
        if self.lost.is_set():
            raise errors.LeaseLost(f"lease {self.id} lost: {self.lost_reason}", self.id)

    def _lose(self, reason: str) -> None:
        if not self.lost.is_set():
            self.lost_reason = reason
            self.lost.set()

    async def _keep(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.lost.is_set():
            await asyncio.sleep(self.interval_s)
            sent = loop.time()
            if sent >= self.held_until:
                self._lose("no keep-alive acknowledged within the TTL")
                return
            try:
                await asyncio.wait_for(self.client.lease_keepalive(self.id), self.held_until - sent)
            except errors.LeaseNotFound:
                self._lose("the cluster says it has ended (expired or revoked)")
                return
            except (errors.ResoneticsError, TimeoutError, OSError):
                continue  # try again; check() tells once the TTL has run out
            self.held_until = max(self.held_until, sent + self.ttl_s)

    async def close(self, *, revoke: bool = True) -> None:
        """Stop keeping the lease alive; revoke it (deleting its keys) unless told not to."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if revoke and self.id and not self.lost.is_set():
            with contextlib.suppress(errors.LeaseNotFound):
                await self.client.lease_revoke(self.id)
        self._lose("closed")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class SyncKeptLease:
    """``KeptLease`` for the blocking ``Client``: the keeping runs on its loop thread."""

    def __init__(self, client: Client, kept: KeptLease) -> None:
        self._client = client
        self.kept = kept

    @property
    def id(self) -> int:
        return self.kept.id

    def start(self) -> int:
        return self._client.run(self.kept.start())

    def check(self) -> None:
        async def check() -> None:
            self.kept.check()

        self._client.run(check())

    def close(self, *, revoke: bool = True) -> None:
        self._client.run(self.kept.close(revoke=revoke))

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


__all__ = ["KeptLease", "SyncKeptLease", "lease_checked"]
