"""Every operator mistake is one line on stderr and exit 2; no answer is one line and exit 3.

Each test is one typo a careless operator makes; the sweep at the end runs every
command with garbage and checks that no traceback ever reaches the terminal.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest

from resonetics.cli import main
from resonetics.commands.failures import EXIT_BAD_REQUEST, EXIT_UNAVAILABLE
from tests.commands.helpers import DEAD, free_address, listening_socket, one_line_error, run


# --- addresses ------------------------------------------------------------------------------
def test_malformed_cluster_address_is_one_line_exit_2() -> None:
    result = run("kv", "put", "a", "b", "--cluster", ":95o1")
    assert result.exit_code == EXIT_BAD_REQUEST
    assert "--cluster: ':95o1' is not HOST:PORT" in one_line_error(result)


@pytest.mark.parametrize("address", ["127.0.0.1:70000", "127.0.0.1", "127.0.0.1:", "a b:1", ","])
def test_every_client_command_refuses_a_malformed_cluster_before_connecting(address: str) -> None:
    for args in (["kv", "get", "k"], ["status"], ["member", "list"], ["leader", "transfer"]):
        result = (
            run(*args, "--to", "n1", "--cluster", address)
            if args[0] == "leader"
            else run(*args, "--cluster", address)
        )
        assert result.exit_code == EXIT_BAD_REQUEST, (args, result.output)
        assert "--cluster" in one_line_error(result)


def test_malformed_cluster_from_the_environment_is_one_line_exit_2() -> None:
    from click.testing import CliRunner

    result = CliRunner(env={"RESONETICS_CLUSTER": "localhost:7oo1"}).invoke(main, ["status"])
    assert result.exit_code == EXIT_BAD_REQUEST
    assert "'localhost:7oo1'" in one_line_error(result)


def test_malformed_peers_address_is_one_line_exit_2(tmp_path: Path) -> None:
    result = run("serve", "--id", "n1", "--peers", "n1=:95o1", "--data-dir", str(tmp_path))
    assert result.exit_code == EXIT_BAD_REQUEST
    assert "'n1=:95o1'" in one_line_error(result) or "':95o1'" in one_line_error(result)


def test_malformed_listen_address_is_one_line_exit_2(tmp_path: Path) -> None:
    args = ["--peers", "n1=127.0.0.1:7001", "--listen-client", "0.0.0.0:x"]
    result = run("serve", "--id", "n1", *args, "--data-dir", str(tmp_path))
    assert result.exit_code == EXIT_BAD_REQUEST
    assert "--listen-client: '0.0.0.0:x'" in one_line_error(result)


def test_malformed_join_address_is_one_line_exit_2(tmp_path: Path) -> None:
    args = ["--listen-peer", "127.0.0.1:7109", "--listen-client", "127.0.0.1:7009"]
    args += ["--join", "127.0.0.1:7001,:95o1"]
    result = run("serve", "--id", "n4", *args, "--data-dir", str(tmp_path))
    assert result.exit_code == EXIT_BAD_REQUEST
    assert "--join: ':95o1'" in one_line_error(result)


def test_malformed_member_add_address_is_one_line_exit_2() -> None:
    for command in ("add", "add-learner"):
        result = run("member", command, "n4", "10.0.0.4", "--cluster", DEAD)
        assert result.exit_code == EXIT_BAD_REQUEST
        assert "ADDRESS: '10.0.0.4' is not HOST:PORT (no :PORT)" in one_line_error(result)


# --- serve and cluster up: ports, data dirs, files, flags --------------------------------------
def test_port_in_use_is_one_line_exit_2(tmp_path: Path) -> None:
    """A real process: the bind happens in the node's event loop, after storage is open."""
    with listening_socket() as (_, address):
        command = [sys.executable, "-m", "resonetics", "serve", "--id", "n1"]
        command += ["--peers", f"n1={address}", "--clients", f"n1={free_address()}"]
        command += ["--data-dir", str(tmp_path)]
        done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == EXIT_BAD_REQUEST, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    port = address.rpartition(":")[2]
    assert "address already in use" in lines[0] and port in lines[0]


def test_cluster_up_port_in_use_is_one_line_exit_2_naming_the_address(tmp_path: Path) -> None:
    with listening_socket() as (_, address):
        port = address.rpartition(":")[2]
        args = ["--nodes", "1", "--base-port", port, "--data-dir", str(tmp_path / "d")]
        result = run("cluster", "up", *args)
    assert result.exit_code == EXIT_BAD_REQUEST
    line = one_line_error(result)
    assert f"n1 clients (--base-port {port}) {address}: cannot listen: port already in use" in line


def test_data_dir_that_is_a_file_is_one_line_exit_2(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a directory")
    serve = run(
        "serve",
        "--id",
        "n1",
        "--peers",
        f"n1={free_address()}",
        "--clients",
        f"n1={free_address()}",
        "--data-dir",
        str(afile),
    )
    assert serve.exit_code == EXIT_BAD_REQUEST
    assert f"{afile} is a file, not a directory" in one_line_error(serve)
    up = run("cluster", "up", "--data-dir", str(afile / "below"), "--base-port", "17901")
    assert up.exit_code == EXIT_BAD_REQUEST
    assert f"{afile} is a file, not a directory" in one_line_error(up)


def test_data_dir_that_cannot_be_created_is_one_line_exit_2() -> None:
    missing = "/proc/no-such-process/data"  # /proc refuses new directories, even to root
    result = run(
        "serve",
        "--id",
        "n1",
        "--peers",
        f"n1={free_address()}",
        "--clients",
        f"n1={free_address()}",
        "--data-dir",
        missing,
    )
    assert result.exit_code == EXIT_BAD_REQUEST
    assert "cannot be created" in one_line_error(result)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("malformed.toml", b"[cluster\nx = "),
        ("binary.toml", b"\xff\xfe\x00"),
        ("table.toml", b"cluster = 5"),
    ],
)
def test_unreadable_or_malformed_toml_is_one_line_exit_2(
    tmp_path: Path, name: str, content: bytes
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    result = run("serve", "--id", "n1", "--config", str(path))
    assert result.exit_code == EXIT_BAD_REQUEST
    assert str(path) in one_line_error(result)


def test_config_that_is_a_directory_is_one_line_exit_2(tmp_path: Path) -> None:
    result = run("serve", "--id", "n1", "--config", str(tmp_path))
    assert result.exit_code == EXIT_BAD_REQUEST
    assert "cannot read" in one_line_error(result)


def test_malformed_tls_file_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n")
    client = run("kv", "get", "k", "--tls-ca", str(bad), "--cluster", DEAD)
    assert client.exit_code == EXIT_BAD_REQUEST
    assert "--tls-ca" in one_line_error(client)
    tls = ["--tls-ca", str(bad), "--tls-cert", str(bad), "--tls-key", str(bad)]
    serve = run(
        "serve",
        "--id",
        "n1",
        "--peers",
        f"n1={free_address()}",
        "--clients",
        f"n1={free_address()}",
        *tls,
        "--data-dir",
        str(tmp_path / "d"),
    )
    assert serve.exit_code == EXIT_BAD_REQUEST
    assert "cannot load" in one_line_error(serve)


def test_missing_tls_file_for_serve_is_one_line_exit_2(tmp_path: Path) -> None:
    tls = ["--tls-ca", str(tmp_path / "nope.pem"), "--tls-cert", str(tmp_path / "n1.pem")]
    result = run(
        "serve",
        "--id",
        "n1",
        "--peers",
        f"n1={free_address()}",
        "--clients",
        f"n1={free_address()}",
        *tls,
        "--data-dir",
        str(tmp_path),
    )
    assert result.exit_code == EXIT_BAD_REQUEST
    assert "nope.pem" in one_line_error(result)


@pytest.mark.parametrize("rate", ["abc", "-5/s", "nan", "10/min"])
def test_bad_rate_limit_is_one_line_exit_2(tmp_path: Path, rate: str) -> None:
    result = run(
        "serve",
        "--id",
        "n1",
        "--peers",
        "n1=127.0.0.1:7001",
        "--rate-limit",
        rate,
        "--data-dir",
        str(tmp_path),
    )
    assert result.exit_code == EXIT_BAD_REQUEST
    assert "--rate-limit" in one_line_error(result)


def test_unknown_node_id_is_one_line_exit_2(tmp_path: Path) -> None:
    result = run("serve", "--id", "n9", "--peers", "n1=127.0.0.1:7001", "--data-dir", str(tmp_path))
    assert result.exit_code == EXIT_BAD_REQUEST
    assert "--id n9: not in the peer list (n1)" in one_line_error(result)


def test_bad_tick_settings_are_one_line_exit_2(tmp_path: Path) -> None:
    args = ["serve", "--id", "n1", "--peers", "n1=127.0.0.1:7001", "--data-dir", str(tmp_path)]
    for extra in (["--tick-ms", "0"], ["--heartbeat-ticks", "20"], ["--tick-ms", "fast"]):
        result = run(*args, *extra)
        assert result.exit_code == EXIT_BAD_REQUEST, extra
        one_line_error(result)


# --- usage errors are one line too ----------------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        ["--bogus"],
        ["nosuch"],
        ["kv", "put"],
        ["kv", "put", "k", "v", "--timeout", "abc"],
        ["kv", "scan", "--limit", "x"],
    ],
)
def test_usage_error_is_one_line_exit_2_naming_the_command(args: list[str]) -> None:
    result = run(*args)
    assert result.exit_code == EXIT_BAD_REQUEST
    line = one_line_error(result)
    assert "--help" in line or "-h)" in line


# --- no answer --------------------------------------------------------------------------------
def test_unreachable_cluster_lists_every_node_tried() -> None:
    refused_a, refused_b = free_address(), free_address()
    with listening_socket() as (_, silent):
        cluster = f"{refused_a},{refused_b},{silent}"
        result = run("kv", "get", "k", "--cluster", cluster, "--timeout", "3")
    assert result.exit_code == EXIT_UNAVAILABLE
    line = one_line_error(result)
    assert f"{refused_a} (connection refused)" in line
    assert f"{refused_b} (connection refused)" in line
    assert f"{silent} (timed out)" in line


def test_unreachable_cluster_with_no_node_listening_is_unavailable_exit_3() -> None:
    a, b = free_address(), free_address()
    result = run("kv", "put", "k", "v", "--cluster", f"{a},{b}", "--timeout", "0.5")
    assert result.exit_code == EXIT_UNAVAILABLE
    line = one_line_error(result)
    assert "UNAVAILABLE: kv_set: no node answered within 0.5s" in line
    assert f"{a} (connection refused), {b} (connection refused)" in line


def test_status_of_an_unreachable_cluster_is_one_line_exit_3() -> None:
    a, b = free_address(), free_address()
    result = run("status", "--cluster", f"{a},{b}", "--timeout", "0.5")
    assert result.exit_code == EXIT_UNAVAILABLE
    assert f"{a} (connection refused), {b} (connection refused)" in one_line_error(result)
    assert result.stdout == ""  # no table of question marks


def test_a_bug_is_one_line_exit_70_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    from resonetics.commands import kv

    def broken(*args: object, **kwargs: object) -> None:
        raise TypeError("planted")

    monkeypatch.setattr(kv, "read_value", broken)
    monkeypatch.delenv("RESONETICS_TRACEBACK", raising=False)
    result = run("kv", "put", "k", "v")
    assert result.exit_code == 70
    assert "unexpected TypeError: planted" in one_line_error(result)


# --- the sweep ---------------------------------------------------------------------------------
def _leaf_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    # list_commands/get_command, not .commands: the top-level group imports lazily.
    ctx = click.Context(group)
    out: list[tuple[str, ...]] = []
    for name in sorted(group.list_commands(ctx)):
        command = group.get_command(ctx, name)
        assert command is not None, name
        path = (*prefix, name)
        if isinstance(command, click.Group):
            out += _leaf_commands(command, path)
        else:
            out.append(path)
    return out


def _options(path: tuple[str, ...]) -> set[str]:
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        sub = command.get_command(click.Context(command), name)
        assert sub is not None, name
        command = sub
    return {opt for p in command.params for opt in getattr(p, "opts", [])}


#: Garbage an operator types: junk positionals, a typo'd option, bad numbers, bad addresses.
GARBAGE: list[list[str]] = [
    ["\x00junk", ":95o1", "-", "--", "more"],
    ["--no-such-flag"],
    ["--timeout", "soon"],
    ["--cluster", ":95o1"],
    ["--cluster", "127.0.0.1:99999"],
    ["--data-dir", "/proc/no-such-process/x"],
    ["--nodes", "zero"],
    ["--seed", "x"],
    ["--tick-ms", "-1"],
    ["--tls-ca", "/no/such/ca.pem"],
    ["--receipt", "{not json"],
    ["--out", "/proc/no-such-process/out"],
]


@pytest.mark.parametrize("path", _leaf_commands(main), ids=" ".join)
def test_no_command_ever_prints_a_traceback_on_garbage(path: tuple[str, ...]) -> None:
    options = _options(path)
    for garbage in GARBAGE:
        if garbage[0].startswith("--") and garbage[0] not in options | {"--no-such-flag"}:
            continue  # an option this command does not have: the junk case covers that
        args = [*path, *garbage]
        result = run(*args)
        assert "Traceback" not in result.output, (args, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            args,
            repr(result.exception),
        )
        assert result.exit_code in (EXIT_BAD_REQUEST, EXIT_UNAVAILABLE), (args, result.output)
        one_line_error(result)
