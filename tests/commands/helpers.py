"""Running ``resonetics`` in-process as an operator would, and reading what it said."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

from click.testing import CliRunner, Result

from resonetics.cli import main
from resonetics.localcluster import free_ports

#: An address nothing listens on (port 1 is privileged and unused on test machines).
DEAD = "127.0.0.1:1"


def run(*args: str, stdin: bytes | str | None = None) -> Result:
    """``resonetics ARGS`` with no cluster reachable by default (never a colleague's)."""
    return CliRunner(env={"RESONETICS_CLUSTER": DEAD}).invoke(main, list(args), input=stdin)


def one_line_error(result: Result) -> str:
    """The single stderr line of a refused command; fails the test if there is more."""
    assert "Traceback" not in result.output, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


@contextmanager
def listening_socket() -> Iterator[tuple[socket.socket, str]]:
    """A socket that accepts connections (the kernel does) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock, f"127.0.0.1:{sock.getsockname()[1]}"


def free_address() -> str:
    """An address that refuses connections: a port that was free a moment ago, never one
    handed out before in this process (two kernel picks can repeat a port, and a test's
    peer and client addresses must differ)."""
    (port,) = free_ports(1)
    return f"127.0.0.1:{port}"
