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


#: command name -> (module, attribute); every command's name is its attribute's.
_BY_NAME: dict[str, tuple[str, str]] = {attr: (module, attr) for module, attr in COMMANDS}


class _LazyGroup(CliGroup):
    """Imports a command's module only when that command is asked for.

    ``resonetics serve`` then loads the server and not the simulator, the torture
    harness, the fuzzer or the checker: about a second less CPU per node start,
    which a cluster of three pays three times on a small machine.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_BY_NAME)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = _BY_NAME.get(cmd_name)
        if found is None:
            return None
        module, attr = found
        command: click.Command = getattr(
            importlib.import_module(f"resonetics.commands.{module}"), attr
        )
        return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="resonetics")
def main() -> None:
    """Resonetics: a Raft-replicated, hash-chained, verifiable log and key-value store.

    Exit codes: 0 ok, 1 a definite "no", 2 a wrong request (usage, address, file,
    size), 3 no answer (unreachable, timeout), 4 refused by the cluster's policy, 70 a bug.
    """
