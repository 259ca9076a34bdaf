"""Values from stdin and files, and the size limits the client applies before sending."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from resonetics import errors, limits
from resonetics.client import AsyncClient, Client, check_sizes
from resonetics.commands import kv
from resonetics.commands.failures import EXIT_BAD_REQUEST
from tests.commands.helpers import one_line_error, run


class _Sent:
    """Stands in for the network: records what a command would have sent."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> _Sent:
    """``Client.put`` and ``Client.call`` answer at once and record their arguments."""
    record = _Sent()

    def put(self: Client, key: str, value: Any) -> Any:
        record.calls.append(("put", (key, value)))
        from resonetics.raft.entry import Receipt

        return Receipt(index=1, term=1, hash="h")

    def call(self: Client, op: str, args: dict[str, Any]) -> Any:
        record.calls.append((op, args))
        return {"swapped": True, "value": args["v"]}

    monkeypatch.setattr(kv.Client, "put", put)
    monkeypatch.setattr(kv.Client, "call", call)
    return record


def test_put_reads_value_from_stdin(sent: _Sent) -> None:
    result = run("kv", "put", "k", "-", stdin=b"line one\nline two\n")
    assert result.exit_code == 0, result.output
    assert sent.calls == [("put", ("k", "line one\nline two\n"))]  # byte for byte


def test_put_reads_json_value_from_stdin(sent: _Sent) -> None:
    result = run("kv", "put", "k", "-", "--json", stdin=b'{"a": [1, 2]}\n')
    assert result.exit_code == 0, result.output
    assert sent.calls == [("put", ("k", {"a": [1, 2]}))]


def test_put_reads_value_from_a_file(sent: _Sent, tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    path.write_text('["x"]')
    assert run("kv", "put", "k", "--file", str(path)).exit_code == 0
    assert run("kv", "put", "k", "--file", str(path), "--json").exit_code == 0
    assert sent.calls == [("put", ("k", '["x"]')), ("put", ("k", ["x"]))]


def test_cas_reads_its_new_value_from_stdin_or_a_file(sent: _Sent, tmp_path: Path) -> None:
    path = tmp_path / "new"
    path.write_text("from file")
    assert run("kv", "cas", "k", "old", "-", stdin="from stdin").exit_code == 0
    assert run("kv", "cas", "k", "old", "--file", str(path)).exit_code == 0
    values = [(args["expected"], args["v"]) for _, args in sent.calls]
    assert values == [("old", "from stdin"), ("old", "from file")]


def test_value_and_file_together_is_one_line_exit_2(sent: _Sent, tmp_path: Path) -> None:
    path = tmp_path / "v"
    path.write_text("x")
    result = run("kv", "put", "k", "v", "--file", str(path))
    assert result.exit_code == EXIT_BAD_REQUEST
    assert "give VALUE or --file, not both" in one_line_error(result)
    assert sent.calls == []


def test_missing_value_says_how_to_give_one(sent: _Sent) -> None:
    result = run("kv", "put", "k")
    assert result.exit_code == EXIT_BAD_REQUEST
    assert "- to read it from stdin, or --file PATH" in one_line_error(result)


def test_value_that_is_not_utf8_is_one_line_exit_2(sent: _Sent) -> None:
    result = run("kv", "put", "k", "-", stdin=b"ok\xff\xfe")
    assert result.exit_code == EXIT_BAD_REQUEST
    assert "stdin: not UTF-8 text (byte 2)" in one_line_error(result)
    assert sent.calls == []


def test_invalid_json_from_stdin_is_one_line_exit_2(sent: _Sent) -> None:
    result = run("kv", "put", "k", "-", "--json", stdin=b"{nope")
    assert result.exit_code == EXIT_BAD_REQUEST
    assert "not valid JSON" in one_line_error(result)


def test_oversized_value_is_refused_locally_as_too_large() -> None:
    """No cluster is reachable: the refusal comes before any attempt to send (and at once)."""
    value = "a" * limits.VALUE_BYTES_MAX
    started = time.monotonic()
    result = run("kv", "put", "k", "-", "--timeout", "30", stdin=value)
    assert time.monotonic() - started < 5
    assert result.exit_code == EXIT_BAD_REQUEST
    line = one_line_error(result)
    assert f"TOO_LARGE: args.v: {limits.VALUE_BYTES_MAX + 2} bytes" in line
    assert f"more than the limit of {limits.VALUE_BYTES_MAX}" in line


def test_oversized_stdin_is_not_read_into_memory_whole() -> None:
    result = run("kv", "put", "k", "-", stdin=b"a" * (kv.VALUE_READ_BYTES_MAX + 10))
    assert result.exit_code == EXIT_BAD_REQUEST
    assert f"stdin: more than {kv.VALUE_READ_BYTES_MAX} bytes" in one_line_error(result)


def test_oversized_key_is_refused_locally_as_too_large() -> None:
    result = run("kv", "put", "é" * limits.KEY_BYTES_MAX, "v")
    assert result.exit_code == EXIT_BAD_REQUEST
    assert f"TOO_LARGE: args.k: {2 * limits.KEY_BYTES_MAX} bytes" in one_line_error(result)


def test_oversized_cas_expected_is_refused_locally_as_too_large() -> None:
    result = run("kv", "cas", "k", "x" * (limits.VALUE_BYTES_MAX + 1), "new")
    assert result.exit_code == EXIT_BAD_REQUEST
    assert "TOO_LARGE: args.expected" in one_line_error(result)


# --- the library ------------------------------------------------------------------------------
def test_library_raises_too_large_before_sending_anything() -> None:
    """A 5 MB put fails at once, and the node never sees a connection."""

    async def scenario() -> tuple[int, float]:
        connections = 0

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal connections
            connections += 1
            writer.close()

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        started = asyncio.get_running_loop().time()
        async with AsyncClient(f"127.0.0.1:{port}", timeout=10) as client:
            with pytest.raises(errors.ValueTooLarge) as caught:
                await client.put("k", "x" * 5_000_000)
            assert caught.value.size_bytes == 5_000_002
            assert caught.value.limit_bytes == limits.VALUE_BYTES_MAX
        elapsed = asyncio.get_running_loop().time() - started
        server.close()
        await server.wait_closed()
        return connections, elapsed

    connections, elapsed = asyncio.run(scenario())
    assert connections == 0
    assert elapsed < 1.0


def test_blocking_client_raises_too_large_too() -> None:
    with Client("127.0.0.1:1", timeout=10) as client, pytest.raises(errors.TooLarge):
        client.cas("k", None, ["x" * limits.VALUE_BYTES_MAX])


def test_sizes_at_the_limit_pass() -> None:
    check_sizes({"k": "k" * limits.KEY_BYTES_MAX, "v": "v" * (limits.VALUE_BYTES_MAX - 2)})
    with pytest.raises(errors.ValueTooLarge):
        check_sizes({"k": "k", "v": "v" * (limits.VALUE_BYTES_MAX - 1)})
