"""The exception hierarchy. Errors name the culprit and carry the data (STYLE habit 5).

Operational conditions (bad input, not leader, corrupt file, peer gone) are
these typed exceptions; broken invariants are ``InvariantViolation`` and crash.
"""

from __future__ import annotations

from typing import Any


class ResoneticsError(Exception):
    """Base of every error Resonetics raises on purpose."""


class InvariantViolation(AssertionError):
    """A rule that must always hold did not: a bug. Never caught."""


def invariant(condition: bool, message: str, *args: object) -> None:
    """An always-on assertion (unaffected by ``python -O``).

    ``message % args`` is formatted only on failure: hot paths check invariants per
    entry and per message, and an f-string would be built every time.
    """
    if not condition:
        raise InvariantViolation(message % args if args else message)


# --- Storage ---------------------------------------------------------------------
class StorageError(ResoneticsError):
    """A node's files cannot be used as they are."""


class StorageCorruption(StorageError):
    """A file holds bytes that fail a check; names the file, line and index when known."""

    def __init__(
        self, path: str, reason: str, *, line: int | None = None, index: int | None = None
    ) -> None:
        self.path = path
        self.reason = reason
        self.line = line
        self.index = index
        where = path
        if line is not None:
            where += f", line {line}"
        if index is not None:
            where += f" (index {index})"
        super().__init__(f"{where}: {reason}")


# --- Client-facing -------------------------------------------------------------------
class ClientError(ResoneticsError):
    """An error answered to a client; ``code`` is its wire code (DESIGN §5)."""

    code = "ERROR"


class NotLeader(ClientError):
    """This node is not the leader; carries the leader's id and address when known."""

    code = "NOT_LEADER"

    def __init__(
        self, leader_id: str | None = None, leader_addr: str | None = None, term: int = 0
    ) -> None:
        self.leader_id = leader_id
        self.leader_addr = leader_addr
        self.term = term
        hint = f"leader is {leader_id} at {leader_addr}" if leader_id else "leader unknown"
        super().__init__(f"not the leader ({hint})")


class ProposalDropped(ResoneticsError):
    """The core refused a proposal (leadership transfer in progress, too many uncommitted)."""


class ConfigChangeRejected(ResoneticsError):
    """A membership change request is invalid in the current configuration."""


class ConfigChangeInProgress(ConfigChangeRejected):
    """Another membership change (or a leadership transfer) is still going on: retry later."""


class LearnerNotCaughtUp(ConfigChangeRejected):
    """A learner may not vote yet: it has not acknowledged entries up to the commit index
    the leader had when it was added (``raft/membership_change.py: caught_up``)."""

    def __init__(self, node: str, acked_index: int, required_index: int, message: str) -> None:
        self.node = node
        self.acked_index = acked_index
        self.required_index = required_index
        super().__init__(message)


class BackupError(ResoneticsError):
    """A backup file is unreadable, truncated, corrupt, of another cluster, or cannot be
    restored where asked; ``path`` names the file, ``reason`` what was wrong."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class BadRequest(ClientError):
    code = "BAD_REQUEST"

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class TooLarge(ClientError):
    code = "TOO_LARGE"


class LineTooLong(TooLarge):
    """A line (complete or still arriving) grew past the limit; the connection is cut."""

    def __init__(self, limit_bytes: int, seen_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self.seen_bytes = seen_bytes
        super().__init__(f"line: longer than {limit_bytes} bytes (at least {seen_bytes})")


class Timeout(ClientError):
    """Indeterminate: the request may still take effect. Retry with the same request_id."""

    code = "TIMEOUT"


class Unavailable(ClientError):
    code = "UNAVAILABLE"


class RateLimited(ClientError):
    code = "RATE_LIMITED"


class SessionExpired(ClientError):
    """The request's session no longer holds it: refused, and applied nowhere now.

    Its result was discarded (acknowledged or evicted), or the session expired, was
    evicted or replaced. Never retried: if it was a retry, an earlier attempt may
    have been applied. The client opens a new session for its next request.
    """

    code = "SESSION_EXPIRED"


class Forbidden(ClientError):
    """The policy does not let this identity do this op (on this key); never retried."""

    code = "FORBIDDEN"


class Unauthenticated(ClientError):
    """The token presented is unknown to the node; never retried."""

    code = "UNAUTHENTICATED"


class ScanChanged(ClientError):
    """A consistent multi-page scan cannot go on: its range changed after its first page.

    The store keeps no old versions, so it cannot serve the rest of the scan as of
    ``at_index``; restart the scan from its first page. ``key`` names the key found
    changed (None when the cause is not one key: deletes forgotten, a lagging node).
    """

    code = "SCAN_CHANGED"

    def __init__(self, message: str, key: str | None = None, at_index: int = 0) -> None:
        super().__init__(message)
        self.key = key
        self.at_index = at_index


class Compacted(ClientError):
    """A watch cannot start (or resume) at ``from_index``: no node holds the changes from
    there any more; ``oldest_index`` is the oldest index one still serves. Read a fresh
    snapshot (``scan``) and watch from its index."""

    code = "COMPACTED"

    def __init__(self, from_index: int, oldest_index: int) -> None:
        self.from_index = from_index
        self.oldest_index = oldest_index
        super().__init__(
            f"watch from index {from_index}: compacted; the oldest index still available "
            f"is {oldest_index}"
        )


class PolicyError(ResoneticsError):
    """An authorization policy file is unusable; names the file and the key at fault."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        self.source = source
        self.key = key
        self.reason = reason
        super().__init__(f"{source}: {key}: {reason}")


# --- Checking --------------------------------------------------------------------
class HistoryError(ResoneticsError):
    """A client history cannot be read as one; names the source and line when known."""

    def __init__(self, source: str, reason: str, *, line: int | None = None) -> None:
        self.source = source
        self.reason = reason
        self.line = line
        where = source if line is None else f"{source}, line {line}"
        super().__init__(f"{where}: {reason}")


# --- Node identity and the data dir lock -------------------------------------------------
class IdentityMismatch(StorageError):
    """A node folder belongs to another node or another cluster than the one starting.

    Starting anyway would serve another cluster's state as this one's (or vote
    twice under another node's name), so the node refuses with this one line.
    """

    def __init__(self, path: str, what: str, expected: str, found: str) -> None:
        self.path = path
        self.what = what
        self.expected = expected
        self.found = found
        super().__init__(
            f"{path}: belongs to {what} {found}, not {expected} "
            f"(another {what}'s data dir; give the right --data-dir or {what} id)"
        )


class ClusterIdRequired(StorageError):
    """A fresh node folder cannot be started without knowing its cluster."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(
            f"{path}: a new node needs a cluster id: give --cluster-id or --cluster-key"
        )


class BadClusterId(ResoneticsError):
    """A cluster id is not 32 lowercase hex digits (128 bits)."""

    def __init__(self, text: str, reason: str) -> None:
        self.text = text
        self.reason = reason
        super().__init__(f"cluster id {text!r}: {reason}")


class DataDirLocked(StorageError):
    """Another process holds a node folder's lock: two writers would corrupt its log."""

    def __init__(self, path: str, holder: str) -> None:
        self.path = path
        self.holder = holder
        super().__init__(f"{path}: data dir is in use by {holder}; stop that process first")


# --- Command line and client-side checks ------------------------------------------------
class BadAddress(ResoneticsError, ValueError):
    """A node address that is not HOST:PORT; names the flag or argument it came from.

    Also a ``ValueError``: ``AsyncClient`` raised that for a bad address list before.
    """

    def __init__(self, what: str, address: str, reason: str) -> None:
        self.what = what
        self.address = address
        self.reason = reason
        super().__init__(f"{what}: {address!r} is not HOST:PORT ({reason})")


class ValueTooLarge(TooLarge):
    """A key or value over its limit, refused by the client before anything is sent."""

    def __init__(self, field: str, size_bytes: int, limit_bytes: int) -> None:
        self.field = field
        self.size_bytes = size_bytes
        self.limit_bytes = limit_bytes
        super().__init__(f"{field}: {size_bytes} bytes, more than the limit of {limit_bytes}")


class NoNodeAnswered(Unavailable):
    """No node gave an answer before the deadline; ``tried`` says what each one did."""

    def __init__(self, op: str, timeout_s: float, tried: dict[str, str]) -> None:
        self.op = op
        self.timeout_s = timeout_s
        self.tried = dict(tried)
        super().__init__(f"{op}: no node answered within {timeout_s}s: {describe_tried(tried)}")


def describe_tried(tried: dict[str, str]) -> str:
    """``addr (what it said), ...``: the one-line account of every node a call tried."""
    return ", ".join(f"{address} ({said})" for address, said in tried.items())


class NodeFailed(ResoneticsError):
    """A running node stopped because one of its parts failed (``part``: what failed).

    Raised by ``NodeServer.serve_forever`` after the node has shut down in order,
    so the command exits non-zero with one line instead of a traceback.
    """

    def __init__(self, node_id: str, part: str, cause: BaseException) -> None:
        self.node_id = node_id
        self.part = part
        self.cause = cause
        super().__init__(f"node {node_id} stopped: {part} failed: {cause!r}")


class MachineError(ResoneticsError):
    """A state machine cannot be served: its factory, its declared ops, or a data dir
    founded by another machine (``serve --machine``); the message names the culprit."""


class MachineMismatch(MachineError):
    """A data dir was founded by one machine and is being started with another."""

    def __init__(self, node_dir: str, founded_by: str, running: str) -> None:
        self.node_dir = node_dir
        self.founded_by = founded_by
        self.running = running
        super().__init__(
            f"data dir {node_dir} holds the state of machine {founded_by!r}, "
            f"but this node runs {running!r}: start it with the same --machine, "
            "or give a new data dir"
        )


class Nondeterminism(MachineError):
    """Two instances of a machine given the same commands disagreed
    (``machine.determinism.check_determinism``): ``step`` is the position of the first
    divergent command in the sequence, ``what`` is ``"result"``, ``"snapshot"`` or
    ``"query"`` (a query changed the state: it runs on one replica only)."""

    def __init__(
        self, machine: str, step: int, op: str, args: Any, what: str, left: Any, right: Any
    ) -> None:
        self.machine = machine
        self.step = step
        self.op = op
        self.args = args
        self.what = what
        self.left = left
        self.right = right
        super().__init__(
            f"machine {machine!r} is not deterministic: at step {step} ({op} {args!r}) "
            + (
                "the query changed the state"
                if what == "query"
                else f"the two instances' {what}s differ"
            )
            + f": {left!r} != {right!r}"
        )


class NodeStateError(ResoneticsError):
    """A ``resonetics.Node`` was asked for something its state does not allow: started
    twice, stopped before it started, called from the wrong mode or thread."""

    def __init__(self, node_id: str, reason: str) -> None:
        self.node_id = node_id
        self.reason = reason
        super().__init__(f"node {node_id}: {reason}")


class NodeStartFailed(ResoneticsError):
    """A ``resonetics.Node`` could not start serving (an address in use, say); nothing
    is left running and its data dir is released."""

    def __init__(self, node_id: str, reason: str) -> None:
        self.node_id = node_id
        self.reason = reason
        super().__init__(f"node {node_id} could not start: {reason}")


class NodeNotReady(ResoneticsError):
    """``Node.wait_ready`` passed its deadline without a leader and an applied commit."""

    def __init__(self, node_id: str, timeout_s: float, state: str) -> None:
        self.node_id = node_id
        self.timeout_s = timeout_s
        self.state = state
        super().__init__(f"node {node_id} not ready after {timeout_s:g}s ({state})")


class PeerMachineMismatch(ResoneticsError):
    """Two nodes serving different state machines tried to peer: refused both ways."""

    def __init__(self, who: str, theirs: str, mine: str) -> None:
        self.who = who
        self.theirs = theirs
        self.mine = mine
        super().__init__(f"{who} serves machine {theirs!r}, but this node serves {mine!r}")


class LeaseNotFound(ClientError):
    """The lease named does not exist: never granted, revoked, or expired (its keys
    are gone). ``lease_id`` names it."""

    code = "LEASE_NOT_FOUND"

    def __init__(self, message: str, lease_id: int | None = None) -> None:
        super().__init__(message)
        self.lease_id = lease_id


class LeaseLimit(ClientError):
    """A lease limit refused the request (``limits.LEASES_MAX``, ``LEASE_KEYS_MAX``)."""

    code = "LEASE_LIMIT"


class LeaseLost(ClientError):
    """A lease kept alive in the background ended (expired, revoked, or no keep-alive
    was acknowledged within its TTL): whatever it protected (a lock) is no longer held."""

    code = "LEASE_LOST"

    def __init__(self, message: str, lease_id: int | None = None) -> None:
        super().__init__(message)
        self.lease_id = lease_id
