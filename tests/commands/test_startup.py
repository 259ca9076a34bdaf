"""A one-shot command loads only what it needs (issue 19: ``kv get`` start-up time).

``resonetics`` used to import every command's module, and with them the
simulator, the torture harness, the server and ``cryptography``, before doing
anything. These tests run the real entry point in a fresh interpreter and assert
on the set of modules it loaded, never on a time: the set is what the time follows,
and it does not depend on how loaded the machine is.
"""

from __future__ import annotations

import importlib
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from resonetics.cli import COMMANDS, load_command, main, short_help

#: Modules a client command has no use for: each is a package prefix.
NOT_FOR_A_CLIENT = (
    "resonetics.sim",
    "resonetics.torture",
    "resonetics.check",
    "resonetics.raft.node",
    "resonetics.server",
    "resonetics.runtime",
    "resonetics.storage",
    "resonetics.machine",
    "resonetics.localcluster",
    "resonetics.security.audit",
    "resonetics.security.signing",
    "resonetics.security.authz",
    "cryptography",
    "rich",
    "aiohttp",
    "prometheus_client",
)

#: Runs ``resonetics ARGS`` as the console script does, then writes the names of the
#: modules loaded by then (at interpreter exit, after the command) to the file OUT.
_PROBE = """
import atexit, json, sys
out, args = sys.argv[1], sys.argv[2:]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
from resonetics.cli import main
main(args, prog_name="resonetics")
"""


def _loaded_by(tmp_path: Path, *args: str) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    """The modules a fresh ``resonetics ARGS`` process loaded, and how it ended."""
    out = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(out), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.exists(), done.stderr
    return set(json.loads(out.read_text())), done


def _offenders(modules: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


@contextmanager
def _node_answering_get(value: str) -> Iterator[str]:
    """A one-connection stand-in for a node: answers each request with ``found: value``."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return  # closed before anyone dialled
        with conn, conn.makefile("rb") as lines:
            for line in lines:
                env = json.loads(line)
                result = {"found": True, "value": value}
                reply = {
                    "kind": "ClientResponse",
                    "payload": {"ok": True, "code": "OK", "result": result},
                    "t": 0,
                    "v": 1,
                    "id": env.get("id"),
                }
                conn.sendall(json.dumps(reply).encode() + b"\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()
        thread.join(timeout=10)


def test_kv_get_loads_no_simulator_server_or_cryptography(tmp_path: Path) -> None:
    with _node_answering_get("hello") as address:
        modules, done = _loaded_by(tmp_path, "kv", "get", "k", "--cluster", address)
    assert done.returncode == 0, done.stderr
    assert done.stdout == '"hello"\n'  # the code path really ran, end to end
    assert _offenders(modules, NOT_FOR_A_CLIENT) == []
    commands = {m for m in modules if m.startswith("resonetics.commands.")}
    assert commands == {
        "resonetics.commands.kv",
        "resonetics.commands.common",
        "resonetics.commands.failures",
    }


#: What only some commands need, deferred to first use: receipts (kv set), transactions
#: (kv txn, and tomllib for a TOML spec) and watches.
NOT_FOR_A_GET = (
    "resonetics.txn",
    "resonetics.raft.entry",
    "resonetics.watch",
    "resonetics.wire.watch",
    "tomllib",
)


def test_kv_get_loads_no_receipt_txn_watch_or_toml_code(tmp_path: Path) -> None:
    with _node_answering_get("hello") as address:
        modules, done = _loaded_by(tmp_path, "kv", "get", "k", "--cluster", address)
    assert done.returncode == 0, done.stderr
    assert done.stdout == '"hello"\n'
    assert _offenders(modules, NOT_FOR_A_GET) == []


def test_client_exports_loaded_on_first_use_are_the_modules_own_objects() -> None:
    """``from resonetics.client import Receipt, TxnResult, WatchEvent`` still works."""
    from resonetics import client, txn, watch
    from resonetics.raft import entry

    assert client.Receipt is entry.Receipt
    assert client.TxnResult is txn.TxnResult
    assert client.WatchEvent is watch.WatchEvent
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = client.no_such_name  # type: ignore[attr-defined]


def test_importing_the_cli_loads_no_command_module(tmp_path: Path) -> None:
    modules, done = _loaded_by(tmp_path, "--version")
    assert done.returncode == 0, done.stderr
    assert _offenders(modules, NOT_FOR_A_CLIENT) == []
    assert _offenders(modules, ("resonetics.client", "asyncio", "msgspec")) == []
    commands = {m for m in modules if m.startswith("resonetics.commands.")}
    assert commands == {"resonetics.commands.failures"}


def test_top_level_help_lists_every_command_without_importing_one(tmp_path: Path) -> None:
    modules, done = _loaded_by(tmp_path, "--help")
    assert done.returncode == 0, done.stderr
    listed = done.stdout.split("Commands:\n", 1)[1].split()
    for name in COMMANDS:
        assert name in listed, f"{name} missing from resonetics --help"
    commands = {m for m in modules if m.startswith("resonetics.commands.")}
    assert commands == {"resonetics.commands.failures"}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_table_matches_the_command(name: str) -> None:
    """The table's name and help are the command's own, as click would list them."""
    command = load_command(name)
    assert command.name == name
    assert not command.hidden and not command.deprecated and command.short_help is None
    for limit in (30, 45, 60, 200):
        assert short_help(name, limit) == command.get_short_help_str(limit)


def test_help_listing_is_what_click_would_print_with_every_command_imported() -> None:
    eager = click.Group(
        name="main",
        help=main.help,
        params=main.params,
        context_settings=main.context_settings,
        commands={name: load_command(name) for name in COMMANDS},
    )
    runner = CliRunner()
    assert runner.invoke(main, ["--help"]).output == runner.invoke(eager, ["--help"]).output


def test_an_unknown_command_is_still_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["kvv", "get", "k"])
    assert result.exit_code == 2
    assert "No such command 'kvv'" in result.stderr


@pytest.mark.parametrize(
    "package", ["resonetics", "resonetics.raft", "resonetics.wire", "resonetics.security"]
)
def test_lazy_package_exports_are_the_modules_own_objects(package: str) -> None:
    """``from resonetics.raft import RaftNode`` and the like still work, loaded on first use."""
    module = importlib.import_module(package)
    for name in module.__all__:
        if name == "__version__":
            continue
        source = importlib.import_module(module._EXPORTS[name])
        assert getattr(module, name) is getattr(source, name), f"{package}.{name}"
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = module.no_such_name


def test_kv_get_help_loads_no_server_http_metrics_or_cryptography(tmp_path: Path) -> None:
    """``kv get --help`` loads the kv command and nothing a client has no use for."""
    modules, done = _loaded_by(tmp_path, "kv", "get", "--help")
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout  # the command's own help really ran
    assert _offenders(modules, NOT_FOR_A_CLIENT) == []


def test_a_one_shot_kv_get_builds_no_decoder_of_op_arguments(tmp_path: Path) -> None:
    """The op table's argument decoders are built on first use (wire/client._LazyDecoder):
    a client decodes no op's args, and building them all cost about 18 ms per process."""
    probe = (
        "from resonetics.cli import main\n"
        "import atexit, sys\n"
        "def report():\n"
        "    from resonetics.wire.client import OPS\n"
        "    built = sorted(n for n, s in OPS.items() if s.decoder._decoder is not None)\n"
        "    open(sys.argv[1], 'w').write(','.join(built))\n"
        "atexit.register(report)\n"
        "main(sys.argv[2:], prog_name='resonetics')\n"
    )
    out = tmp_path / "built.txt"
    with _node_answering_get("hello") as address:
        done = subprocess.run(
            [sys.executable, "-c", probe, str(out), "kv", "get", "k", "--cluster", address],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout == '"hello"\n'
    assert out.read_text() == ""
