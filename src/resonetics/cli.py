"""The ``resonetics`` command.

Each sub-command lives in its own module under ``resonetics.commands``; this
file only assembles them, so importing the CLI stays cheap and a module's
heavy imports load only when its command runs.
"""

from __future__ import annotations

import importlib

import click

from resonetics import __version__
from resonetics.commands.failures import CliGroup

#: (module under resonetics.commands, attribute holding the click command)
COMMANDS: list[tuple[str, str]] = [
    ("init", "init"),
    ("serve", "serve"),
    ("cluster", "cluster"),
    ("cluster", "demo"),
    ("kv", "kv"),
    ("status", "status"),
    ("verify", "verify"),
    ("check", "check"),
    ("sim", "sim"),
    ("bench", "bench"),
    ("torture", "torture"),
    ("member", "member"),
    ("member", "leader"),
    ("auth", "auth"),
    ("fuzz", "fuzz"),
]


@click.group(cls=CliGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="resonetics")
def main() -> None:
    """Resonetics: a Raft-replicated, hash-chained, verifiable log and key-value store.

    Exit codes: 0 ok, 1 a definite "no", 2 a wrong request (usage, address, file,
    size), 3 no answer (unreachable, timeout), 4 refused by the cluster's policy, 70 a bug.
    """


for _module, _attr in COMMANDS:
    main.add_command(getattr(importlib.import_module(f"resonetics.commands.{_module}"), _attr))
