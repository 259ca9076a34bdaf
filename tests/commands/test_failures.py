"""``commands/failures.py``: which exit code each kind of failure gets."""

from __future__ import annotations

import errno

import click
import pytest

from resonetics import errors
from resonetics.commands.failures import (
    EXIT_BAD_REQUEST,
    EXIT_BUG,
    EXIT_UNAVAILABLE,
    CliFailure,
    failure_for,
)
from resonetics.server.config import ConfigError
from tests.commands.helpers import run


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (click.ClickException("refused"), EXIT_BAD_REQUEST),  # click's default would be 1
        (click.UsageError("typo"), EXIT_BAD_REQUEST),
        (ConfigError("tick_ms: must be >= 1"), EXIT_BAD_REQUEST),
        (errors.BadRequest("args.k", "must be a string"), EXIT_BAD_REQUEST),
        (errors.ValueTooLarge("args.v", 10, 5), EXIT_BAD_REQUEST),
        (errors.BadAddress("--cluster", ":1", "no host"), EXIT_BAD_REQUEST),
        (OSError(errno.EADDRINUSE, "address already in use"), EXIT_BAD_REQUEST),
        (PermissionError(errno.EACCES, "Permission denied", "/data/n1"), EXIT_BAD_REQUEST),
        (ValueError("embedded null byte"), EXIT_BAD_REQUEST),
        (errors.Timeout("kv_set: no definite answer"), EXIT_UNAVAILABLE),
        (errors.NoNodeAnswered("kv_get", 1.0, {"a:1": "connection refused"}), EXIT_UNAVAILABLE),
        (errors.NotLeader(), EXIT_UNAVAILABLE),
        (ConnectionRefusedError(), EXIT_UNAVAILABLE),
        (TypeError("a bug"), EXIT_BUG),
    ],
)
def test_each_failure_gets_its_exit_code(exc: Exception, code: int) -> None:
    failure = failure_for(exc)
    assert failure is not None and failure.exit_code == code


@pytest.mark.parametrize(
    "exc", [KeyboardInterrupt(), SystemExit(1), click.exceptions.Exit(0), BrokenPipeError()]
)
def test_exits_and_interrupts_pass_through_unchanged(exc: BaseException) -> None:
    assert failure_for(exc) is None


def test_a_multi_line_message_is_joined_onto_one_line() -> None:
    assert CliFailure("first\nsecond", 2).format_message() == "first second"


def test_a_group_without_its_subcommand_still_shows_its_help() -> None:
    result = run("kv")
    assert "put" in result.output and "error:" not in result.output


def test_help_and_version_still_exit_0() -> None:
    assert run("--help").exit_code == 0
    assert run("--version").exit_code == 0
    assert run("kv", "put", "--help").exit_code == 0
