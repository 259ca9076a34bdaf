"""Turning whatever stops a command into one line on stderr and an exit code.

Theory of operation
-------------------
Commands do not catch errors to print them. They raise the typed exceptions of
``errors.py`` (or let click raise its usage errors), and ``CliGroup`` — the
class of the top-level ``resonetics`` group — hands every exception that
escapes a command to ``failure_for``, which maps it to a ``CliFailure``: one
line, ``error: ...``, and an exit code from this table (README "Using it"):

===  ==========================================================================
 0   success
 1   a definite "no": key absent, cas mismatch, nothing deleted, a check failed
 2   the request itself is wrong: a typo, a malformed address, a port in use, an
     unusable data dir, config or TLS file, a value over the limit, a refusal
 3   no answer: no node reachable, or a timeout (indeterminate for a write)
70   a bug (EX_SOFTWARE): an exception nobody expected; ``RESONETICS_TRACEBACK=1``
     prints its traceback. Also ``serve`` when a running node stopped because one
     of its parts failed (``NodeFailed``; the node logged the traceback)
===  ==========================================================================

Exit code 1 is never used for an error: a script must be able to read it as
"the cluster answered no". Click's own ``ClickException`` defaults to 1, so it is
mapped to 2 here; ``SystemExit`` raised on purpose by a command passes through.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
import traceback
from typing import Any, NoReturn

import click
from click.exceptions import NoArgsIsHelpError

from resonetics import errors

EXIT_OK = 0
EXIT_NEGATIVE = 1  # a definite "no": key absent, cas mismatch, nothing deleted
EXIT_BAD_REQUEST = 2  # the request is wrong: usage, address, file, size, a refusal
EXIT_UNAVAILABLE = 3  # no answer: timeout (indeterminate) or no node reachable
EXIT_REFUSED = 4  # the cluster's policy refused: FORBIDDEN or UNAUTHENTICATED
EXIT_BUG = 70  # EX_SOFTWARE from sysexits.h: an unexpected exception

#: Set to a non-empty value to print the traceback of an unexpected exception.
ENV_TRACEBACK = "RESONETICS_TRACEBACK"

#: errno values that mean "this address cannot be listened on": the operator's to fix.
_BIND_ERRNOS = frozenset({errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES})

#: Operational errors that mean "no answer" rather than "your request is wrong".
_NO_ANSWER: tuple[type[BaseException], ...] = (
    errors.Timeout,
    errors.Unavailable,
    errors.NotLeader,
    errors.RateLimited,
    errors.ProposalDropped,
    ConnectionError,
    TimeoutError,
    socket.gaierror,
)


class CliFailure(click.ClickException):
    """A command's failure as the operator sees it: one line on stderr, an exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        # Newlines would break "one line": a message is joined onto one.
        super().__init__(" ".join(message.split("\n")).strip())
        # click declares exit_code a ClassVar but reads it from the instance (e.exit_code).
        self.exit_code = exit_code  # type: ignore[misc]

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def failure_for(exc: BaseException) -> CliFailure | None:
    """The one-line failure for ``exc``; None for what must pass through unchanged.

    Passing through: ``SystemExit``/``KeyboardInterrupt``, click's ``Exit``, ``Abort``
    and "no arguments: show the help" signal, and a broken pipe (click handles it).
    """
    if isinstance(exc, CliFailure):
        return exc
    if not isinstance(exc, Exception) or isinstance(
        exc, click.exceptions.Exit | click.Abort | NoArgsIsHelpError | BrokenPipeError
    ):
        return None  # click quiets a closed stdout (``kv scan | head``) itself
    if isinstance(exc, click.UsageError):
        return CliFailure(_usage_message(exc), EXIT_BAD_REQUEST)
    if isinstance(exc, click.ClickException):
        return CliFailure(exc.format_message(), EXIT_BAD_REQUEST)
    if isinstance(exc, errors.Timeout):
        return CliFailure(
            f"timed out, the operation may or may not have happened: {exc}", EXIT_UNAVAILABLE
        )
    if isinstance(exc, _NO_ANSWER):
        return CliFailure(_with_code(exc), EXIT_UNAVAILABLE)
    if isinstance(exc, errors.NodeFailed):
        return CliFailure(str(exc), EXIT_BUG)  # the node's log holds the traceback
    if isinstance(exc, errors.Forbidden | errors.Unauthenticated):
        return CliFailure(_with_code(exc), EXIT_REFUSED)
    if isinstance(exc, errors.ResoneticsError):
        return CliFailure(_with_code(exc), EXIT_BAD_REQUEST)
    if isinstance(exc, OSError):
        return CliFailure(_os_message(exc), EXIT_BAD_REQUEST)
    if isinstance(exc, ValueError) and "null byte" in str(exc):
        # The one ValueError the OS layer raises for what was typed (os.stat("a\0b")),
        # e.g. from click.Path(exists=True): the argument is wrong, not the code.
        return CliFailure("a path contains a NUL byte", EXIT_BAD_REQUEST)
    return _bug(exc)


def _with_code(exc: BaseException) -> str:
    """A client error leads with its wire code (``TOO_LARGE: ...``), as the cluster names it."""
    text = str(exc) or type(exc).__name__
    return f"{exc.code}: {text}" if isinstance(exc, errors.ClientError) else text


def _usage_message(exc: click.UsageError) -> str:
    """Click's usage error on one line, with the command it was about and where help is."""
    # A usage error a command raises itself has no context: the running command's is it.
    ctx = exc.ctx or click.get_current_context(silent=True)
    if ctx is None:
        return exc.format_message()
    help_flag = ctx.help_option_names[0] if ctx.help_option_names else "--help"
    return f"{ctx.command_path}: {exc.format_message()} (see {ctx.command_path} {help_flag})"


def _os_message(exc: OSError) -> str:
    """An OS refusal with what it was about: the address (bind) or the file."""
    if exc.errno in _BIND_ERRNOS and exc.filename is None:
        # asyncio's bind error names the address: "error while attempting to bind
        # on address ('127.0.0.1', 7001): address already in use".
        return f"cannot listen: {exc}"
    if exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    return str(exc) or type(exc).__name__


def _bug(exc: Exception) -> CliFailure:
    if os.environ.get(ENV_TRACEBACK):
        traceback.print_exception(exc, file=sys.stderr)
    return CliFailure(
        f"unexpected {type(exc).__name__}: {exc} (a bug; {ENV_TRACEBACK}=1 prints the traceback)",
        EXIT_BUG,
    )


def raise_failure(exc: BaseException) -> NoReturn:
    """Re-raise ``exc`` as its ``CliFailure``, or unchanged when it must pass through."""
    failure = failure_for(exc)
    if failure is None or failure is exc:
        raise exc
    raise failure from exc


class CliGroup(click.Group):
    """The top-level group: every error that escapes a command leaves as one line.

    Both parsing (``make_context``: an unknown option of ``resonetics`` itself) and
    running (``invoke``: sub-commands, their parsing included) are covered, so no
    command needs a try/except of its own.
    """

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except Exception as exc:  # translated, never swallowed
            raise_failure(exc)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:  # translated, never swallowed
            raise_failure(exc)


__all__ = [
    "ENV_TRACEBACK",
    "EXIT_BAD_REQUEST",
    "EXIT_BUG",
    "EXIT_NEGATIVE",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_UNAVAILABLE",
    "CliFailure",
    "CliGroup",
    "failure_for",
    "raise_failure",
]
