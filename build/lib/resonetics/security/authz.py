"""Who may do what: identities, roles, the policy file, and the decision for one request.

Theory of operation
-------------------
A connection has one ``Identity``: the name in its client certificate (SAN URI
``resonetics://client/<name>``), the identity whose token it presented in an
``Auth`` line, or ``anonymous``. The policy maps identities to roles; a role
grants

- ``read``: key prefixes whose keys may be read (``kv_get``; ``kv_scan`` only
  when the scanned prefix itself lies inside one of them, so a scan can never
  reach a key outside),
- ``write``: key prefixes whose keys may be written (``kv_set``, ``kv_delete``,
  ``kv_cas``; these answers say whether the key existed or matched),
- ``kv_txn`` needs ``read`` on every key a compare or a ``get`` names and
  ``write`` on every key a ``put`` or ``delete`` names, in both branches,
- ``monitor``: ``status`` and ``member_list`` (cluster state: roles, terms,
  member addresses; no user data),
- ``admin``: every op of category ``admin`` in the op table (``wire/client.py``
  ``OPS``): membership changes and leadership transfer. Admin implies monitor.

The category and key argument of each op come from that one table, so a new op
is authorized by declaring its category there. A node serving its own machine
(``serve --machine``) builds its table from the machine's declared ops: a
command is a ``write`` and a query a ``read`` on the key its ``key_arg`` names,
or on the key ``op:<name>`` when it names none (``write = ["op:incr"]`` grants
exactly that op; ``write = [""]`` grants all of them).

Defaults. A node with **no policy** lets every client, anonymous included, read
and write every key and see ``status``/``member_list``, and grants **nobody**
admin: admin operations need a policy that names an admin. In a policy file,
``anonymous`` gets exactly the roles of its ``[anonymous]`` table (none when
absent), and a certificate name not listed under ``[identities]`` is treated as
anonymous.

Tokens are never stored in clear: the policy holds their SHA-256 and a
presented token is hashed and compared with ``hmac.compare_digest`` against
every identity's hash (no early exit). A token is 32 random bytes, so a hash
without salt or stretching is enough: there is no dictionary to try.

Loading checks everything once (STYLE habit 7) and names the key at fault in a
one-line ``PolicyError``; past that, the decision functions trust the policy.
The file format::

    [anonymous]
    roles = ["reader"]

    [roles.app]
    read = ["app/"]
    write = ["app/"]

    [roles.admin]
    admin = true
    read = [""]
    write = [""]

    [identities.alice]            # a token identity
    roles = ["app"]
    token_sha256 = "9f86d0..."
    expires = 2027-01-01T00:00:00Z  # optional: refused from then on

    [identities.ops]              # a certificate identity (resonetics://client/ops)
    roles = ["admin"]
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import re
import secrets
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from resonetics import limits
from resonetics.errors import PolicyError
from resonetics.wire.client import KEYLESS_OPS, OPS, OpCategory, OpSpec

IdentitySource = Literal["cert", "token", "anonymous"]
#: The URI a client certificate carries (subjectAltName) to name its identity.
CLIENT_URI_PREFIX: Final = "resonetics://client/"
ANONYMOUS_NAME: Final = "anonymous"
#: Identity and role names: what fits in a URI path segment and a TOML bare key.
NAME_PATTERN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SHA256_HEX: Final = re.compile(r"^[0-9a-f]{64}$")
#: Random bytes in a token made by ``new_token`` (256 bits).
TOKEN_BYTES: Final = 32


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is on a connection, and how we know it."""

    name: str
    source: IdentitySource
    #: For a token identity, the SHA-256 of the token presented: a policy reload that
    #: replaces or removes that token cuts off the connections that presented it
    #: (``Policy.token_current``). None where no token is involved (or offline tools).
    token_sha256: str | None = field(default=None, repr=False)


ANONYMOUS: Final = Identity(ANONYMOUS_NAME, "anonymous")


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()
    admin: bool = False
    monitor: bool = False


@dataclass(frozen=True, slots=True)
class IdentityEntry:
    """One ``[identities.<name>]`` table: its roles and, for a token identity, the hash."""

    name: str
    roles: tuple[str, ...]
    token_sha256: str | None = None
    #: When the identity stops counting (timezone-aware); None: never.
    expires: datetime.datetime | None = None


@dataclass(frozen=True, slots=True)
class Grants:
    """What one identity may do: the union of its roles."""

    roles: tuple[str, ...] = ()
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()
    admin: bool = False
    monitor: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict for one op; ``reason`` says why a denial happened (sent to the client)."""

    allowed: bool
    reason: str = ""


#: Every allowed verdict is this one (a frozen dataclass costs a setattr per field to build,
#: and ``decide`` runs once per request).
_ALLOWED: Final = Decision(True)


@dataclass(frozen=True, slots=True)
class Policy:
    """A validated policy. ``Policy.open()`` is the behaviour of a node without a file."""

    roles: Mapping[str, Role] = field(default_factory=dict)
    identities: Mapping[str, IdentityEntry] = field(default_factory=dict)
    anonymous_roles: tuple[str, ...] = ()
    #: Where it came from, for messages; "" for the built-in default.
    source: str = ""

    @staticmethod
    def open() -> Policy:
        """No policy: everyone reads, writes and monitors everything; nobody is admin."""
        everyone = Role("everyone", read=("",), write=("",), monitor=True)
        return Policy({"everyone": everyone}, {}, ("everyone",), source="")

    def token_current(self, identity: Identity) -> bool:
        """False for a token identity whose token this policy no longer holds for it
        (the identity removed, or its token replaced: ``auth add --replace``, a reload)."""
        if identity.source != "token":
            return True
        entry = self.identities.get(identity.name)
        if entry is None:
            return False
        return identity.token_sha256 is None or entry.token_sha256 == identity.token_sha256

    def expired(self, identity: Identity, now: datetime.datetime) -> datetime.datetime | None:
        """When ``identity``'s entry expired, if it has by ``now`` (None: it has not)."""
        if identity.source == "anonymous":
            return None
        entry = self.identities.get(identity.name)
        if entry is None or entry.expires is None or entry.expires > now:
            return None
        return entry.expires

    def next_expiry(self, now: datetime.datetime) -> datetime.datetime | None:
        """The earliest expiry still ahead of ``now`` (None: none)."""
        ahead = [e.expires for e in self.identities.values() if e.expires and e.expires > now]
        return min(ahead) if ahead else None

    def grants(self, identity: Identity) -> Grants:
        entry = self.identities.get(identity.name) if identity.source != "anonymous" else None
        if not self.token_current(identity):
            return Grants()  # removed or replaced (a reload): nothing, not anonymous
        names = entry.roles if entry is not None else self.anonymous_roles
        roles = [self.roles[n] for n in names]
        return Grants(
            roles=names,
            read=_unique(p for r in roles for p in r.read),
            write=_unique(p for r in roles for p in r.write),
            admin=any(r.admin for r in roles),
            monitor=any(r.monitor or r.admin for r in roles),
        )

    def identity_for_token(self, token: str) -> Identity | None:
        """The identity whose stored hash matches ``token``; every hash is compared."""
        presented = hash_token(token).encode()
        found: str | None = None
        for entry in self.identities.values():
            if entry.token_sha256 is not None and hmac.compare_digest(
                presented, entry.token_sha256.encode()
            ):
                found = entry.name
        return Identity(found, "token", presented.decode()) if found is not None else None


#: The key a served machine's op that names no key argument is judged on: ``op:<name>``.
MACHINE_OP_KEY_PREFIX: Final = "op:"


def decide(
    grants: Grants, op: str, args: Mapping[str, Any], ops: Mapping[str, OpSpec] | None = None
) -> Decision:
    """May someone with ``grants`` run ``op`` with ``args`` (already validated)?

    ``ops``: the served machine's op specs (``OpTable.specs``); None: ``OPS``. A
    machine's command needs a ``write`` grant and its query a ``read`` grant on the
    key its ``key_arg`` names, or, when it names none, on the key ``op:<name>``.
    """
    spec = (OPS if ops is None else ops).get(op)
    if spec is None:
        return Decision(False, f"unknown op {op!r}")
    category: OpCategory = spec.category
    if category == "admin":
        return _ALLOWED if grants.admin else Decision(False, f"{op} needs the admin role")
    if category == "monitor":
        ok = grants.monitor
        return _ALLOWED if ok else Decision(False, f"{op} needs monitor or admin")
    if category == "session":  # opening a session writes no key: any write grant will do
        ok = bool(grants.write)
        return _ALLOWED if ok else Decision(False, f"{op} needs a write grant")
    if spec.multi_key:
        return _decide_txn(grants, op, args)
    if category == "lease" or (op in KEYLESS_OPS and not spec.machine_op):
        # Lease ops touch no key by name (grant, keepalive, info, list): any write grant;
        # attaching a key is judged on the put, a revoke on its ``within`` prefix.
        ok = bool(grants.write)
        return _ALLOWED if ok else Decision(False, f"{op} needs a write grant")
    if spec.key_arg is None and spec.machine_op:
        key = MACHINE_OP_KEY_PREFIX + op
        prefixes = grants.read if category == "read" else grants.write
        if key.startswith(prefixes):
            return _ALLOWED
        return Decision(False, f"{op}: no {category} grant covers {key!r}")
    if category == "watch" and spec.key_arg is None:
        return _ALLOWED  # watch_cancel: ends one of the connection's own watches
    assert spec.key_arg is not None, op  # the op table gives every key op its key argument
    key = str(args.get(spec.key_arg, ""))
    # A watch reads its prefix: like a scan, only when the prefix lies inside a read grant.
    prefixes = grants.read if category in ("read", "watch") else grants.write
    if key.startswith(prefixes):
        return _ALLOWED
    what = "prefix" if spec.key_arg == "prefix" else "key"
    needed = "read" if category == "watch" else category
    return Decision(False, f"{op}: no {needed} grant covers {what} {key!r}")


def _decide_txn(grants: Grants, op: str, args: Mapping[str, Any]) -> Decision:
    """A txn touches many keys: each must be covered, whichever branch would run.

    A compare or a ``get`` reads its key (a compare's outcome tells the caller
    something about the value, so it needs ``read``, as etcd requires); a ``put``
    or ``delete`` writes it. Both branches are judged, so the outcome of the
    compares never decides what a caller may touch.
    """
    needs: list[tuple[str, str]] = []
    for c in args.get("compare", []):
        needs.append(("read", str(c.get("key", ""))))
    for branch in ("then", "else"):
        for item in args.get(branch, []):
            kind = "read" if item.get("type") == "get" else "write"
            needs.append((kind, str(item.get("key", ""))))
    if not grants.write:  # every txn goes through the log, even one touching no key
        return Decision(False, f"{op} needs a write grant")
    for kind, key in needs:
        prefixes = grants.read if kind == "read" else grants.write
        if not key.startswith(prefixes):
            return Decision(False, f"{op}: no {kind} grant covers key {key!r}")
    return _ALLOWED


def check(policy: Policy, identity: Identity, op: str, args: Mapping[str, Any]) -> Decision:
    return decide(policy.grants(identity), op, args)


# --- tokens and certificates ------------------------------------------------------------
def new_token() -> str:
    """A fresh bearer token (URL-safe text, 256 random bits)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """What a policy stores for ``token``: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def cert_identity_name(peercert: Mapping[str, Any] | None) -> str | None:
    """The ``<name>`` of the first ``resonetics://client/<name>`` URI SAN, if any.

    ``peercert`` is ``ssl_object.getpeercert()``: a verified certificate as a dict
    whose ``subjectAltName`` is a tuple of ``(type, value)`` pairs.
    """
    if not peercert:
        return None
    for kind, value in peercert.get("subjectAltName", ()):
        if kind == "URI" and isinstance(value, str) and value.startswith(CLIENT_URI_PREFIX):
            name = value[len(CLIENT_URI_PREFIX) :]
            if valid_name(name):
                return name
    return None


def valid_name(name: str) -> bool:
    return len(name) <= limits.POLICY_NAME_CHARS_MAX and NAME_PATTERN.match(name) is not None


# --- loading ----------------------------------------------------------------------------
_ROLE_KEYS: Final = frozenset({"read", "write", "admin", "monitor"})
_IDENTITY_KEYS: Final = frozenset({"roles", "token_sha256", "expires"})
_TOP_KEYS: Final = frozenset({"roles", "identities", "anonymous"})


def load_policy(path: Path) -> Policy:
    """Read and validate a policy file; ``PolicyError`` names the file and the key."""
    source = str(path)
    try:
        with path.open("rb") as f:
            data = f.read(limits.POLICY_BYTES_MAX + 1)
    except OSError as exc:
        raise PolicyError(source, "file", f"cannot read ({exc.strerror})") from None
    if len(data) > limits.POLICY_BYTES_MAX:
        raise PolicyError(source, "file", f"larger than {limits.POLICY_BYTES_MAX} bytes")
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(source, "file", f"not valid TOML ({exc})") from None
    return parse_policy(raw, source=source)


def parse_policy(raw: Mapping[str, Any], *, source: str) -> Policy:
    _no_unknown(raw, _TOP_KEYS, "", source)
    roles = {
        name: _parse_role(name, table, source)
        for name, table in _table(raw, "roles", source).items()
    }
    identities: dict[str, IdentityEntry] = {}
    seen_hashes: dict[str, str] = {}
    for name, table in _table(raw, "identities", source).items():
        entry = _parse_identity(name, table, roles, source)
        if entry.token_sha256 is not None:
            earlier = seen_hashes.setdefault(entry.token_sha256, name)
            if earlier != name:
                key = f"identities.{name}.token_sha256"
                raise PolicyError(source, key, f"same token as identities.{earlier}")
        identities[name] = entry
    anonymous = raw.get("anonymous", {})
    if not isinstance(anonymous, dict):
        raise PolicyError(source, "anonymous", "must be a table")
    _no_unknown(anonymous, frozenset({"roles"}), "anonymous.", source)
    anonymous_roles = _role_names(anonymous.get("roles", []), roles, "anonymous.roles", source)
    if ANONYMOUS_NAME in identities:
        raise PolicyError(source, "identities.anonymous", "reserved: use the [anonymous] table")
    return Policy(roles, identities, anonymous_roles, source)


def _table(raw: Mapping[str, Any], key: str, source: str) -> dict[str, dict[str, Any]]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise PolicyError(source, key, "must be a table")
    for name, table in value.items():
        if not valid_name(name):
            raise PolicyError(source, f"{key}.{name}", _NAME_RULE)
        if not isinstance(table, dict):
            raise PolicyError(source, f"{key}.{name}", "must be a table")
    return value


_NAME_RULE: Final = (
    f"names are letters, digits, '.', '_' and '-' (not first), "
    f"at most {limits.POLICY_NAME_CHARS_MAX} characters"
)


def _parse_role(name: str, table: dict[str, Any], source: str) -> Role:
    where = f"roles.{name}"
    _no_unknown(table, _ROLE_KEYS, f"{where}.", source)
    flags = {}
    for flag in ("admin", "monitor"):
        value = table.get(flag, False)
        if not isinstance(value, bool):
            raise PolicyError(source, f"{where}.{flag}", f"must be true or false, got {value!r}")
        flags[flag] = value
    return Role(
        name,
        read=_prefixes(table.get("read", []), f"{where}.read", source),
        write=_prefixes(table.get("write", []), f"{where}.write", source),
        admin=flags["admin"],
        monitor=flags["monitor"],
    )


def _prefixes(value: Any, key: str, source: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise PolicyError(source, key, f"must be a list of key prefixes (strings), got {value!r}")
    if len(value) > limits.ROLE_PREFIXES_MAX:
        raise PolicyError(source, key, f"more than {limits.ROLE_PREFIXES_MAX} prefixes")
    for prefix in value:
        if len(prefix.encode()) > limits.KEY_BYTES_MAX:
            raise PolicyError(source, key, f"a prefix is longer than {limits.KEY_BYTES_MAX} bytes")
    return tuple(value)


def _parse_identity(
    name: str, table: dict[str, Any], roles: Mapping[str, Role], source: str
) -> IdentityEntry:
    where = f"identities.{name}"
    _no_unknown(table, _IDENTITY_KEYS, f"{where}.", source)
    if "roles" not in table:
        raise PolicyError(source, f"{where}.roles", "missing (a list of role names)")
    names = _role_names(table["roles"], roles, f"{where}.roles", source)
    digest = table.get("token_sha256")
    if digest is not None and (not isinstance(digest, str) or not _SHA256_HEX.match(digest)):
        raise PolicyError(
            source,
            f"{where}.token_sha256",
            "must be 64 lowercase hex digits (the token's SHA-256, never the token)",
        )
    return IdentityEntry(name, names, digest, _expiry(table.get("expires"), where, source))


def _expiry(value: Any, where: str, source: str) -> datetime.datetime | None:
    """``expires``: a TOML offset date-time (``2027-01-01T00:00:00Z``) or that as a string."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value)
        except ValueError:
            value = None
    if not isinstance(value, datetime.datetime) or value.tzinfo is None:
        raise PolicyError(
            source,
            f"{where}.expires",
            "must be a date and time with its offset, e.g. 2027-01-01T00:00:00Z",
        )
    return value.astimezone(datetime.UTC)


def _role_names(value: Any, roles: Mapping[str, Role], key: str, source: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        raise PolicyError(source, key, f"must be a list of role names, got {value!r}")
    for role in value:
        if role not in roles:
            known = ", ".join(sorted(roles)) or "none defined"
            raise PolicyError(source, key, f"unknown role {role!r} (roles: {known})")
    return tuple(value)


def _no_unknown(table: Mapping[str, Any], allowed: frozenset[str], where: str, source: str) -> None:
    for key in table:
        if key not in allowed:
            expected = ", ".join(sorted(allowed))
            raise PolicyError(source, f"{where}{key}", f"unknown key (expected one of {expected})")


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


# --- writing ----------------------------------------------------------------------------
def render_policy(policy: Policy) -> str:
    """The policy as TOML that ``load_policy`` reads back to an equal ``Policy``."""
    lines: list[str] = []
    if policy.anonymous_roles:
        lines += ["[anonymous]", f"roles = {_toml_list(policy.anonymous_roles)}", ""]
    for role in policy.roles.values():
        lines.append(f"[roles.{role.name}]")
        if role.admin:
            lines.append("admin = true")
        if role.monitor:
            lines.append("monitor = true")
        lines += [f"read = {_toml_list(role.read)}", f"write = {_toml_list(role.write)}", ""]
    for entry in policy.identities.values():
        lines += [f"[identities.{entry.name}]", f"roles = {_toml_list(entry.roles)}"]
        if entry.token_sha256 is not None:
            lines.append(f'token_sha256 = "{entry.token_sha256}"')
        if entry.expires is not None:
            lines.append(f"expires = {entry.expires.astimezone(datetime.UTC):%Y-%m-%dT%H:%M:%SZ}")
        lines.append("")
    return "\n".join(lines)


def _toml_list(items: Iterable[str]) -> str:
    # A JSON string is a valid TOML basic string (same escapes, \\uXXXX included).
    return "[" + ", ".join(json.dumps(i, ensure_ascii=False) for i in items) + "]"


__all__ = [
    "MACHINE_OP_KEY_PREFIX",
    "ANONYMOUS",
    "CLIENT_URI_PREFIX",
    "Decision",
    "Grants",
    "Identity",
    "IdentityEntry",
    "IdentitySource",
    "Policy",
    "Role",
    "cert_identity_name",
    "check",
    "decide",
    "hash_token",
    "load_policy",
    "new_token",
    "parse_policy",
    "render_policy",
    "valid_name",
]
