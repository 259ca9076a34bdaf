"""``resonetics auth ...``: write and inspect an authorization policy (security/authz.py).

Tokens are shown once, when made, and stored only as their SHA-256: a lost
token is replaced (``auth add NAME --replace``), never recovered. Nodes read
the policy at start, so a change takes effect when each node restarts
(``serve --policy FILE``). Operator mistakes (unknown role, missing file, an
identity that exists) are one line on stderr and exit code 2.
"""

from __future__ import annotations

import datetime
import re
import sys
from collections.abc import Callable
from dataclasses import replace
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

from resonetics.commands.common import EXIT_BAD_REQUEST, EXIT_NEGATIVE
from resonetics.errors import PolicyError
from resonetics.security.authz import (
    ANONYMOUS,
    Identity,
    IdentityEntry,
    Policy,
    check,
    hash_token,
    load_policy,
    new_token,
    valid_name,
)
from resonetics.security.policy_files import starter_policy, write_policy, write_token_file
from resonetics.wire.client import OPS

P = ParamSpec("P")
R = TypeVar("R")


class _OperatorError(Exception):
    """A mistake on the command line or in the files it names: one line, exit 2."""


def _one_line_errors(func: Callable[P, R]) -> Callable[P, R]:
    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (PolicyError, _OperatorError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_BAD_REQUEST)

    return wrapper


policy_option = click.option(
    "--policy",
    "policy_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The policy file (TOML).",
)


@click.group()
def auth() -> None:
    """Manage who may do what: identities, roles, tokens (docs/security.md)."""


@auth.command("init")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True)
@click.option("--admin", "admin_name", default="admin", show_default=True)
@click.option(
    "--token-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the admin's token here (mode 0600) instead of printing it.",
)
@click.option(
    "--anonymous",
    type=click.Choice(["none", "monitor", "readwrite"]),
    default="none",
    show_default=True,
    help="What clients without a token or client certificate get.",
)
@_one_line_errors
def init(out: Path, admin_name: str, token_file: Path | None, anonymous: str) -> None:
    """Create a policy with roles admin/readwrite/monitor and one admin identity."""
    if out.exists():
        raise _OperatorError(f"{out}: exists; not overwriting a policy")
    _check_name(admin_name)
    token = new_token()
    roles = () if anonymous == "none" else (anonymous,)
    policy = starter_policy(admin_name, token, anonymous=roles, source=str(out))
    _write_policy(out, policy)
    click.echo(f"wrote {out} with admin identity {admin_name!r}", err=True)
    _hand_over(token, token_file)


@auth.command("add")
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True, help="A role (repeatable).")
@click.option("--cert", is_flag=True, help="A certificate identity (no token).")
@click.option("--replace", "replace_", is_flag=True, help="Replace an existing identity.")
@click.option("--token-file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--expires",
    help="When the identity stops counting: a duration from now (30d, 12h, 90m) or a date "
    "and time with its offset (2027-01-01T00:00:00Z). Default: never.",
)
@policy_option
@_one_line_errors
def add(
    name: str,
    roles: tuple[str, ...],
    cert: bool,
    replace_: bool,
    token_file: Path | None,
    expires: str | None,
    policy_path: Path,
) -> None:
    """Add identity NAME with roles; prints a fresh token unless --cert."""
    _check_name(name)
    until = _expiry(expires) if expires is not None else None
    policy = load_policy(policy_path)
    if name in policy.identities and not replace_:
        raise _OperatorError(f"identities.{name}: exists (use --replace for a new token)")
    for role in roles:
        if role not in policy.roles:
            known = ", ".join(sorted(policy.roles)) or "none"
            raise _OperatorError(f"--role {role}: unknown role (roles: {known})")
    token = None if cert else new_token()
    entry = IdentityEntry(name, roles, hash_token(token) if token is not None else None, until)
    _write_policy(policy_path, replace(policy, identities={**policy.identities, name: entry}))
    how = "certificate resonetics://client/" + name if cert else "a token"
    until_text = f", until {until:%Y-%m-%dT%H:%M:%SZ}" if until is not None else ""
    click.echo(f"added {name} ({', '.join(roles)}) authenticated by {how}{until_text}", err=True)
    if token is not None:
        _hand_over(token, token_file)


@auth.command("list")
@policy_option
@_one_line_errors
def list_(policy_path: Path) -> None:
    """Identities with their roles and how they authenticate (never tokens)."""
    policy = load_policy(policy_path)
    for entry in policy.identities.values():
        how = "token" if entry.token_sha256 is not None else "cert"
        until = f"  (expires {entry.expires:%Y-%m-%dT%H:%M:%SZ})" if entry.expires else ""
        click.echo(f"{entry.name:<20} {how:<6} {', '.join(entry.roles)}{until}")
    click.echo(f"{'(anonymous)':<20} {'-':<6} {', '.join(policy.anonymous_roles)}")


@auth.command("check")
@click.argument("name")
@click.argument("op", type=click.Choice(sorted(OPS)))
@click.argument("key", required=False, default="")
@policy_option
@_one_line_errors
def check_(name: str, op: str, key: str, policy_path: Path) -> None:
    """Would NAME be allowed OP (on KEY, or the prefix for kv_scan)? Exit 0 yes, 1 no.

    For kv_txn, KEY is judged as a key the txn both compares and writes.
    """
    policy = load_policy(policy_path)
    identity = _identity(policy, name)
    spec = OPS[op]
    args: dict[str, Any] = {spec.key_arg: key} if spec.key_arg else {}
    if spec.multi_key and key:
        args = {
            "compare": [{"key": key, "target": "exists", "op": "==", "against": True}],
            "then": [{"type": "put", "key": key, "value": None}],
        }
    decision = check(policy, identity, op, args)
    if decision.allowed:
        named = spec.key_arg or (spec.multi_key and key)
        click.echo(f"allowed: {name} may {op}" + (f" {key!r}" if named else ""))
        return
    click.echo(f"forbidden: {decision.reason}")
    sys.exit(EXIT_NEGATIVE)


def _identity(policy: Policy, name: str) -> Identity:
    if name == ANONYMOUS.name:
        return ANONYMOUS
    entry = policy.identities.get(name)
    if entry is None:
        raise _OperatorError(f"identities.{name}: no such identity (see auth list)")
    return Identity(name, "token" if entry.token_sha256 is not None else "cert")


_DURATION = re.compile(r"^(\d+)([dhm])$")
_UNIT_SECONDS = {"d": 86_400, "h": 3_600, "m": 60}


def _expiry(text: str) -> datetime.datetime:
    """``--expires``: a duration from now (``30d``, ``12h``, ``90m``) or an aware ISO time."""
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    matched = _DURATION.match(text.strip())
    if matched is not None:
        seconds = int(matched.group(1)) * _UNIT_SECONDS[matched.group(2)]
        if seconds <= 0:
            raise _OperatorError(f"--expires {text}: must be in the future")
        return now + datetime.timedelta(seconds=seconds)
    try:
        when = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise _OperatorError(
            f"--expires {text}: a duration (30d, 12h, 90m) or a date and time with its "
            "offset (2027-01-01T00:00:00Z)"
        )
    when = when.astimezone(datetime.UTC).replace(microsecond=0)
    if when <= now:
        raise _OperatorError(f"--expires {text}: already past")
    return when


def _check_name(name: str) -> None:
    if not valid_name(name) or name == ANONYMOUS.name:
        raise _OperatorError(
            f"{name!r}: not a usable identity name (letters, digits, '.', '_', '-'; "
            "not 'anonymous')"
        )


def _write_policy(path: Path, policy: Policy) -> None:
    try:
        write_policy(path, policy)
    except OSError as exc:
        raise _OperatorError(f"{path}: cannot write ({exc.strerror})") from None


def _hand_over(token: str, token_file: Path | None) -> None:
    """Show the token once: into a 0600 file, or on stdout (nothing else goes there)."""
    if token_file is not None:
        try:
            write_token_file(token_file, token)
        except OSError as exc:
            raise _OperatorError(f"{token_file}: cannot write ({exc.strerror})") from None
        click.echo(f"token written to {token_file} (shown nowhere else)", err=True)
    else:
        click.echo(token)


__all__ = ["auth"]
