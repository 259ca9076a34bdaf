"""The ``resonetics`` command.

Each sub-command lives in its own module under ``resonetics.commands``. This
file names them without importing them: ``COMMANDS`` maps a command's name to
where it lives and its one-line help, and ``LazyGroup`` imports a command's
module only when that command runs (or its own ``--help`` is asked for). So a
one-shot ``resonetics kv get`` loads the client and ``commands.kv`` and not the
simulator, the torture harness, the server or ``cryptography``; and
``resonetics --help`` lists every command from the table alone.
``tests/commands/test_startup.py`` holds both to it, and checks that the table's
help agrees with each command's docstring.
"""

from __future__ import annotations

import importlib
from typing import NamedTuple

import click

from resonetics import __version__
from resonetics.commands.failures import CliGroup


class CommandRef(NamedTuple):
    """Where a top-level command lives, and what ``resonetics --help`` says of it."""

    #: module under ``resonetics.commands``
    module: str
    #: attribute of that module holding the click command
    attr: str
    #: the first paragraph of the command's docstring (the listing shortens it as click does)
    help: str


#: Every top-level command, by name. Keep ``help`` equal to the command's docstring's
#: first paragraph (a test compares them).
COMMANDS: dict[str, CommandRef] = {
    "init": CommandRef(
        "init",
        "init",
        "Make a cluster key: a random cluster id and the secret every node proves it holds.",
    ),
    "serve": CommandRef(
        "serve", "serve", "Run one node of a cluster (flags override the TOML file)."
    ),
    "cluster": CommandRef("cluster", "cluster", "Run a local cluster on loopback."),
    "demo": CommandRef(
        "cluster",
        "demo",
        "Start a local 3-node cluster, write, kill the leader, and show nothing "
        "acknowledged is lost.",
    ),
    "kv": CommandRef("kv", "kv", "Read and write keys. Values are strings unless --json is given."),
    "lease": CommandRef(
        "lease", "lease", "Grant, keep alive, revoke and inspect leases (docs/leases.md)."
    ),
    "lock": CommandRef(
        "lease",
        "lock",
        "Run COMMAND while holding the lock NAME (a lease-backed lock with a fencing token).",
    ),
    "call": CommandRef("call", "call", "Send OP with its arguments and print the answer as JSON."),
    "status": CommandRef(
        "status",
        "status",
        "Show each node's role, term, commit and applied index, leader and last contact.",
    ),
    "verify": CommandRef(
        "verify",
        "verify",
        "Check a node folder, or a data dir of node folders, without changing a byte.",
    ),
    "snapshot": CommandRef(
        "snapshot",
        "snapshot",
        "Back up a cluster's state to a file, inspect one, restore one into a new cluster.",
    ),
    "check": CommandRef(
        "check",
        "check",
        "Check that the key-value HISTORY (Jepsen-style JSON lines) is linearizable.",
    ),
    "sim": CommandRef(
        "sim",
        "sim",
        "Run the deterministic cluster simulator (same seed, same run, bit for bit).",
    ),
    "bench": CommandRef(
        "bench",
        "bench",
        "Benchmark Resonetics against etcd and PySyncObj (3-node clusters on loopback).",
    ),
    "torture": CommandRef(
        "torture",
        "torture",
        "Run a real cluster under faults and check what its clients saw.",
    ),
    "member": CommandRef(
        "member",
        "member",
        "List and change the cluster's members (joint consensus, one change at a time).",
    ),
    "leader": CommandRef("member", "leader", "Leadership operations."),
    "auth": CommandRef(
        "auth", "auth", "Manage who may do what: identities, roles, tokens (docs/security.md)."
    ),
    "tls": CommandRef(
        "tls",
        "tls",
        "Revoke node and client certificates (the list every node's --tls-crl names).",
    ),
    "fuzz": CommandRef(
        "fuzz",
        "fuzz",
        "Send mutated client and peer lines to a local cluster; check it survives.",
    ),
}


def load_command(name: str) -> click.Command:
    """Import the module of the command ``name`` (a key of ``COMMANDS``) and return it."""
    ref = COMMANDS[name]
    command = getattr(importlib.import_module(f"resonetics.commands.{ref.module}"), ref.attr)
    if not isinstance(command, click.Command):
        raise TypeError(f"resonetics.commands.{ref.module}.{ref.attr} is not a click command")
    return command


def short_help(name: str, limit: int) -> str:
    """The listing's line for the command ``name`` from ``COMMANDS``, shortened as click does."""
    return click.Command(name, help=COMMANDS[name].help).get_short_help_str(limit)


class LazyGroup(CliGroup):
    """A ``CliGroup`` whose commands are imported on first use, from ``COMMANDS``."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = self.commands.get(cmd_name)
        if command is None and cmd_name in COMMANDS:
            command = load_command(cmd_name)
            self.commands[cmd_name] = command  # imported once per process
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The listing click would print, built from ``COMMANDS`` without importing them."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            if name in COMMANDS:
                text = short_help(name, limit)
            else:  # added with add_command: already imported
                text = self.commands[name].get_short_help_str(limit)
            rows.append((name, text))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="resonetics")
def main() -> None:
    """Resonetics: a Raft-replicated, hash-chained, verifiable log and key-value store.

    Exit codes: 0 ok, 1 a definite "no", 2 a wrong request (usage, address, file,
    size), 3 no answer (unreachable, timeout), 4 refused by the cluster's policy, 70 a bug.
    """
