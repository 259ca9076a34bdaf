"""Operator edges of the command line: status at any terminal width, shell completion
through the lazy CLI, and ``--base-port`` refusing a busy port clearly."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from rich.console import Console

from resonetics.cli import main
from resonetics.commands.status import status_table


def _statuses() -> dict[str, dict[str, Any] | str]:
    out: dict[str, dict[str, Any] | str] = {
        f"127.0.0.1:{7000 + i}": {
            "node": f"n{i}",
            "role": "leader" if i == 1 else "pre-candidate" if i == 3 else "follower",
            "term": 12,
            "commit_index": 1234567,
            "applied_index": 1234560,
            "leader": "n1",
            "last_contact_s": {"n2": 0.01, "n3": 0.02},
        }
        for i in (1, 2, 3)
    }
    out["127.0.0.1:7004"] = "connection refused"
    return out


def _render(width: int) -> str:
    console = Console(width=width, file=io.StringIO(), record=True, color_system=None)
    console.print(status_table(_statuses(), console.width))
    return console.export_text()


@pytest.mark.parametrize("width", [60, 80, 160])
def test_status_table_fits_the_terminal_and_never_cuts_the_columns_that_matter(
    width: int,
) -> None:
    text = _render(width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "…" not in text  # nothing cut with an ellipsis
    for word in ("n1", "n2", "n3", "leader", "follower", "pre-candidate", "1234567", "1234560"):
        assert word in text, (word, text)
    assert "unreachable" in text and "127.0.0.1:700" in text  # may wrap, never cut


def test_status_table_shows_every_column_on_a_wide_terminal_and_drops_some_on_a_narrow_one() -> (
    None
):
    wide, mid, narrow = _render(160), _render(80), _render(60)
    assert "127.0.0.1:7002" in wide and "n2 0.01s, n3 0.02s" in wide
    assert "last contact" in mid.replace("\n", " ") or "contact" in mid
    assert "address" not in narrow and "contact" not in narrow


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o nosort -F _resonetics_completion resonetics"),
        ("zsh", "compdef _resonetics_completion resonetics"),
        ("fish", "complete --no-files --command resonetics"),
    ],
)
def test_completion_script_is_generated_through_the_lazy_cli(shell: str, marker: str) -> None:
    """The README's one-liners: ``_RESONETICS_COMPLETE={shell}_source resonetics``."""
    result = CliRunner().invoke(
        main, [], prog_name="resonetics", env={"_RESONETICS_COMPLETE": f"{shell}_source"}
    )
    assert result.exit_code == 0
    assert marker in result.output


def test_completion_offers_commands_and_a_lazily_loaded_commands_options() -> None:
    def complete(words: str) -> list[str]:
        env = {
            "_RESONETICS_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - 1),
        }
        result = CliRunner().invoke(main, [], prog_name="resonetics", env=env)
        assert result.exit_code == 0, result.output
        return [line.split(",", 1)[1] for line in result.output.splitlines()]

    assert "status" in complete("resonetics sta")
    assert "--base-port" in complete("resonetics torture --base")
    assert "--log-format" in complete("resonetics serve --log")


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something listens on, with the port 100 above it free (peer port offset)."""
    for _ in range(50):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        if port < 60000:
            sock.listen()
            try:
                yield port
            finally:
                sock.close()
            return
        sock.close()
    pytest.fail("no usable port")


@pytest.mark.parametrize(
    "args",
    [
        ["demo"],
        ["torture", "--time", "1"],
        ["cluster", "up"],
    ],
)
def test_a_busy_base_port_is_refused_naming_the_node_and_port(
    busy_port: int, args: list[str], tmp_path: Any
) -> None:
    extra = ["--data-dir", str(tmp_path / "d")] if args[0] == "cluster" else []
    if args[0] == "torture":
        extra = ["--out", str(tmp_path / "o")]
    result = CliRunner().invoke(main, [*args, *extra, "--base-port", str(busy_port)])
    assert result.exit_code != 0
    message = result.stderr if result.stderr else result.output
    assert f"127.0.0.1:{busy_port}" in message
    assert "port already in use" in message
    assert "n1 clients" in message
    assert "Traceback" not in message
    assert not (tmp_path / "o" / "data").exists()  # nothing was started


@pytest.mark.parametrize("command", [["demo"], ["torture"], ["cluster", "up"]])
def test_base_port_out_of_range_is_a_usage_error(command: list[str]) -> None:
    result = CliRunner().invoke(main, [*command, "--base-port", "65500"])
    assert result.exit_code == 2
    assert "--base-port" in result.output
