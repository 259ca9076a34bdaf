"""Checks a command makes before it starts processes or opens storage.

A node that finds its data dir unusable, or its port taken, only after it has
started would fail with an OS error deep in storage or the event loop (and
``cluster up`` would wait for a leader that never comes). These checks run
first and raise ``PreflightError`` naming the path or address and what to do.
They are advisory (another process may take the port a moment later); the
central error handling still turns the OS error into one line if that happens.
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

from resonetics.addresses import parse_address
from resonetics.errors import ResoneticsError


class PreflightError(ResoneticsError):
    """A data dir or address cannot be used; the message names it and why."""


def check_data_dir(path: Path, *, what: str = "--data-dir") -> None:
    """Make ``path`` (and its parents) as the node would, and check it is writable.

    Making it is the only test that holds for every user (``os.access`` says yes
    to root even on a read-only mount); the node would make it a moment later anyway.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        culprit = _first_file(path)
        raise PreflightError(f"{what} {path}: {culprit} is a file, not a directory") from exc
    except OSError as exc:
        raise PreflightError(f"{what} {path}: cannot be created ({exc.strerror})") from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise PreflightError(f"{what} {path}: not writable by this user")


def _first_file(path: Path) -> Path:
    """The part of ``path`` that exists but is not a directory (``path`` if none is)."""
    for part in reversed([path, *path.parents]):
        if part.exists() and not part.is_dir():
            return part
    return path


def check_can_listen(address: str, *, what: str) -> None:
    """Nothing else listens on ``address`` (HOST:PORT) and this host has that address."""
    host, port = parse_address(address, what=what)
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's servers do
        try:
            sock.bind((host, port))
        except socket.gaierror as exc:
            raise PreflightError(f"{what} {address}: unknown host ({exc.strerror})") from exc
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                reason = "port already in use (another node or program listens there)"
            else:
                reason = exc.strerror or str(exc)
            raise PreflightError(f"{what} {address}: cannot listen: {reason}") from exc


__all__ = ["PreflightError", "check_can_listen", "check_data_dir"]
