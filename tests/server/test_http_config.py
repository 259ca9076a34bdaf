"""The HTTP port's settings and its readiness rule, without processes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from resonetics.cli import main
from resonetics.raft.messages import AppendEntries
from resonetics.server.config import ConfigError, ServerConfig, load_toml
from resonetics.server.readiness import Readiness


def _config(**kwargs: Any) -> ServerConfig:
    base = ServerConfig(
        node_id="n1",
        peers={"n1": "127.0.0.1:7101"},
        clients={"n1": "127.0.0.1:7001"},
        data_dir=Path("d"),
    )
    return replace(base, **kwargs)


def test_http_is_off_unless_an_address_is_given() -> None:
    config = _config().validate()
    assert config.http_listen == "" and config.http_listen_address is None


def test_plain_http_on_a_non_loopback_address_is_refused_without_insecure() -> None:
    with pytest.raises(ConfigError, match=r"--listen-http 0\.0\.0\.0:8080: not a loopback"):
        _config(listen_http="0.0.0.0:8080").validate()
    assert _config(listen_http="0.0.0.0:8080", insecure=True).validate().http_listen


def test_plain_http_on_loopback_is_accepted() -> None:
    assert _config(listen_http="127.0.0.1:8080").validate().http_listen_address == (
        "127.0.0.1",
        8080,
    )


def test_http_on_the_client_port_is_refused() -> None:
    with pytest.raises(ConfigError, match="HTTP needs its own port"):
        _config(listen_http="127.0.0.1:7001").validate()


def test_a_mistyped_http_address_is_named() -> None:
    with pytest.raises(ConfigError, match="--listen-http"):
        _config(listen_http="localhost").validate()


def test_toml_nodes_table_gives_each_node_its_http_address(tmp_path: Path) -> None:
    path = tmp_path / "cluster.toml"
    path.write_text(
        "[nodes]\n"
        'n1 = { peer = "127.0.0.1:7101", client = "127.0.0.1:7001", http = "127.0.0.1:7201" }\n'
        'n2 = { peer = "127.0.0.1:7102", client = "127.0.0.1:7002", http = "127.0.0.1:7202" }\n'
        'n3 = { peer = "127.0.0.1:7103", client = "127.0.0.1:7003" }\n',
        encoding="utf-8",
    )
    config = load_toml(path, "n2").validate()
    assert config.http_listen == "127.0.0.1:7202"
    assert config.http_addresses == {"n1": "127.0.0.1:7201", "n2": "127.0.0.1:7202"}
    assert load_toml(path, "n3").validate().http_listen == ""


def test_toml_http_address_must_be_a_string(tmp_path: Path) -> None:
    path = tmp_path / "cluster.toml"
    path.write_text(
        '[nodes]\nn1 = { peer = "127.0.0.1:7101", client = "127.0.0.1:7001", http = 7201 }\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"n1\.http must be a string"):
        load_toml(path, "n1")


def test_serve_refuses_public_plain_http_with_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "serve",
            "--id",
            "n1",
            "--peers",
            "n1=127.0.0.1:7101",
            "--clients",
            "n1=127.0.0.1:7001",
            "--listen-http",
            "0.0.0.0:7201",
            "--data-dir",
            str(tmp_path),
        ],
    )
    assert result.exit_code != 0
    assert "not a loopback address" in result.output and "Traceback" not in result.output


def _append(leader_commit: int) -> AppendEntries:
    return AppendEntries(
        src="n1",
        dst="n2",
        term=2,
        leader_id="n1",
        prev_log_index=0,
        prev_log_term=0,
        prev_log_hash="",
        leader_commit=leader_commit,
    )


def test_ready_needs_a_known_leader() -> None:
    answer = Readiness().check(leader=None, is_leader=False, commit=5, applied=5)
    assert not answer.ready and answer.reason == "no leader known"


def test_ready_waits_for_the_commit_index_learned_from_the_first_leader_message() -> None:
    readiness = Readiness()
    assert not readiness.check(leader="n1", is_leader=False, commit=0, applied=0).ready
    readiness.note(_append(leader_commit=40))
    readiness.note(_append(leader_commit=90))  # later messages do not move the target
    behind = readiness.check(leader="n1", is_leader=False, commit=40, applied=39)
    assert not behind.ready and behind.reason == "catching up: applied 39 of 40"
    assert readiness.check(leader="n1", is_leader=False, commit=40, applied=40).ready


def test_ready_once_caught_up_stays_so_while_a_leader_is_known() -> None:
    readiness = Readiness()
    readiness.note(_append(leader_commit=3))
    assert readiness.check(leader="n1", is_leader=False, commit=3, applied=3).ready
    assert readiness.check(leader="n1", is_leader=False, commit=9, applied=4).ready
    assert not readiness.check(leader=None, is_leader=False, commit=9, applied=9).ready


def test_a_leader_is_ready_once_it_applied_its_own_commit_index() -> None:
    readiness = Readiness()
    assert not readiness.check(leader="n1", is_leader=True, commit=7, applied=6).ready
    assert readiness.check(leader="n1", is_leader=True, commit=7, applied=7).ready


def test_serve_names_the_http_address_when_its_port_is_taken(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            main,
            [
                "serve",
                "--id",
                "n1",
                "--peers",
                "n1=127.0.0.1:7101",
                "--clients",
                "n1=127.0.0.1:7001",
                "--listen-http",
                f"127.0.0.1:{port}",
                "--data-dir",
                str(tmp_path),
            ],
        )
    assert result.exit_code != 0
    assert f"--listen-http 127.0.0.1:{port}: cannot listen" in result.output
