"""The node's gatekeeper: who is on a connection, may they do this, and the audit line.

Theory of operation
-------------------
The server owns one ``Gatekeeper`` built from the node's policy (``--policy``;
none: ``Policy.open()``, see ``security/authz.py``). It is consulted at three
points, all on the event loop thread:

1. on accept, ``identity_for_tls(ssl_object)`` names the connection's identity
   from its client certificate (anonymous without one);
2. an ``Auth`` line goes to ``authenticate(payload)``, which answers the client
   and returns the connection's new identity (``None`` after a wrong token: the
   connection then gets ``UNAUTHENTICATED`` for every request until an ``Auth``
   succeeds, so a mistyped token never silently falls back to anonymous);
3. before dispatch, ``check(identity, req)`` returns ``None`` (allowed) or the
   ``FORBIDDEN``/``UNAUTHENTICATED`` outcome to answer instead.

Every admin op (category ``admin`` in the op table), allowed or not, is logged
once with its result on the ``resonetics.audit`` logger by ``audit``: who
(identity and how it was established), what (op and its args) and the result
code. A policy change takes effect on restart, or on SIGHUP (``reload``: a file
that does not load is refused with one log line and the old policy stays).
"""

from __future__ import annotations

import datetime
import json
import logging
import ssl
from pathlib import Path
from typing import Any, Final

from resonetics import limits
from resonetics.errors import PolicyError, ResoneticsError
from resonetics.runtime.outcome import Outcome
from resonetics.security.authz import (
    ANONYMOUS,
    Grants,
    Identity,
    Policy,
    cert_identity_name,
    decide,
    load_policy,
)
from resonetics.wire import codes
from resonetics.wire.auth import validate_auth
from resonetics.wire.client import OPS, ClientRequest, OpTable
from resonetics.wire.envelope import Envelope

audit_log = logging.getLogger("resonetics.audit")

_UNAUTHENTICATED: Final = Outcome(
    codes.UNAUTHENTICATED,
    message="this connection presented an unknown token; send a valid Auth line first",
)
_REVOKED: Final = Outcome(
    codes.UNAUTHENTICATED,
    message="this connection's token is no longer in the node's policy (replaced or removed "
    "by a reload); send a valid Auth line",
)


class Gatekeeper:
    """Identities, decisions and the audit trail for one node."""

    def __init__(self, policy: Policy | None, ops: OpTable | None = None) -> None:
        self.policy = policy if policy is not None else Policy.open()
        #: The served machine's op table (None: the key-value store's ``OPS``).
        self.ops = ops
        #: Requests answered FORBIDDEN or UNAUTHENTICATED, and failed Auth lines.
        self.denied = 0
        #: Grants per identity, so a request costs one dict lookup, not a union of roles.
        self._grants: dict[Identity, Grants] = {}
        #: When the next identity of the policy expires (``sweep``); None: none will.
        self._next_expiry = self.policy.next_expiry(_now())

    def identity_for_tls(self, ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> Identity:
        """The connection's identity from its verified client certificate, or anonymous."""
        if ssl_object is None:
            return ANONYMOUS
        name = cert_identity_name(ssl_object.getpeercert())
        return Identity(name, "cert") if name is not None else ANONYMOUS

    def authenticate(self, env: Envelope) -> tuple[Identity | None, Outcome]:
        """The identity an ``Auth`` line establishes (None: refused) and the answer to send."""
        try:
            token = validate_auth(env).token
        except ResoneticsError as exc:
            self.denied += 1
            return None, Outcome(codes.BAD_REQUEST, message=str(exc))
        identity = self.policy.identity_for_token(token)
        if identity is None:
            self.denied += 1
            audit_log.warning("auth refused: unknown token")
            return None, Outcome(codes.UNAUTHENTICATED, message="unknown token")
        expired = self.policy.expired(identity, _now())
        if expired is not None:
            self.denied += 1
            audit_log.warning("auth refused: the token of %s expired at %s", identity.name, expired)
            return None, Outcome(codes.UNAUTHENTICATED, message=_expired_message(identity, expired))
        roles = list(self.policy.grants(identity).roles)
        return identity, Outcome(codes.OK, {"identity": identity.name, "roles": roles})

    def check(self, identity: Identity | None, req: ClientRequest) -> Outcome | None:
        """None when ``identity`` may run ``req``; else the outcome to answer instead."""
        if identity is None:
            self.denied += 1
            return _UNAUTHENTICATED
        grants = self._grants.get(identity)
        if grants is None:
            if not self.policy.token_current(identity):
                self.denied += 1
                return _REVOKED  # never cached: the next request is judged again
            expired = self.policy.expired(identity, _now())
            if expired is not None:
                self.denied += 1
                return Outcome(codes.UNAUTHENTICATED, message=_expired_message(identity, expired))
            if len(self._grants) >= limits.AUTHZ_GRANTS_CACHED_MAX:
                self._grants.clear()
            grants = self._grants[identity] = self.policy.grants(identity)
        decision = decide(grants, req.op, req.args, None if self.ops is None else self.ops.specs)
        if decision.allowed:
            return None
        self.denied += 1
        return Outcome(codes.FORBIDDEN, message=f"{_who(identity)}: {decision.reason}")

    def sweep(self) -> bool:
        """Once a second (the server's client sweep): when an identity's ``expires`` has
        come, forget every cached grant, so that its connections' next requests are judged
        again and refused. True when that happened (the server then judges the watches)."""
        if self._next_expiry is None:
            return False
        now = _now()
        if now < self._next_expiry:
            return False
        self._grants.clear()
        self._next_expiry = self.policy.next_expiry(now)
        return True

    def reload(self, path: Path) -> bool:
        """Replace the policy with ``path``'s (SIGHUP); a bad file keeps the old one.

        Connections keep their identities; their next requests are judged by the new
        policy (a token identity the new policy no longer lists gets nothing).
        """
        try:
            policy = load_policy(path)
        except PolicyError as exc:
            audit_log.error("policy reload refused, keeping the current one: %s", exc)
            return False
        self.policy = policy
        self._grants.clear()
        self._next_expiry = policy.next_expiry(_now())
        audit_log.info("policy reloaded from %s", path)
        return True

    def audited(self, req: ClientRequest) -> bool:
        """Whether ``req``'s answer goes to the audit log (every admin op)."""
        spec = (OPS if self.ops is None else self.ops.specs).get(req.op)
        return spec is not None and spec.category == "admin"

    @staticmethod
    def audit(identity: Identity | None, req: ClientRequest, outcome: Outcome) -> None:
        """One line: who, what (op, args), the result code (and the reason when refused)."""
        who = _who(identity) if identity is not None else "unauthenticated"
        what = json.dumps(_args(req.args), sort_keys=True, default=str)
        line = "admin op by %s: %s %s -> %s"
        if outcome.ok:
            audit_log.info(line, who, req.op, what, outcome.code)
        else:
            audit_log.warning(line + " (%s)", who, req.op, what, outcome.code, outcome.message)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _expired_message(identity: Identity, expired: datetime.datetime) -> str:
    return (
        f"{identity.name}: expired at {expired:%Y-%m-%dT%H:%M:%SZ} (the policy's expires); "
        "ask for a new token"
    )


def _who(identity: Identity) -> str:
    return f"{identity.name} ({identity.source})"


def _args(args: dict[str, Any]) -> dict[str, Any]:
    # Admin args are node ids and addresses; nothing secret travels in them.
    return dict(args)


__all__ = ["Gatekeeper", "audit_log"]
