"""``--log-format json``: one parseable object per line with fixed keys, for log shippers."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from resonetics.cli import main
from resonetics.server import events
from resonetics.server.config import ConfigError, load_toml
from resonetics.server.logs import JSON_KEYS, JsonFormatter, configure_logging, make_formatter


def _record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("resonetics.events", logging.INFO, __file__, 1, msg, args, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_json_line_has_the_fixed_keys_and_the_event_fields() -> None:
    record = _record(
        "%s",
        "event=leader_changed old=n1 new=n2 term=3",
        node="n3",
        term=3,
        role="follower",
        event="leader_changed",
        event_fields={"old": "n1", "new": "n2", "term": 3},
    )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    obj = json.loads(line)
    assert list(obj)[: len(JSON_KEYS)] == list(JSON_KEYS)
    assert obj["level"] == "INFO"
    assert obj["logger"] == "resonetics.events"
    assert obj["event"] == "leader_changed"
    assert obj["node"] == "n3"
    assert obj["old"] == "n1" and obj["new"] == "n2"
    assert obj["ts"].endswith("+00:00")  # UTC, ISO 8601, milliseconds


def test_a_field_never_overwrites_a_fixed_key() -> None:
    """An event field named like a fixed key (term, node) is renamed, not clobbering it."""
    record = _record(
        "x", node="n1", term=7, role="leader", event="e", event_fields={"term": 9, "node": "n2"}
    )
    obj = json.loads(JsonFormatter().format(record))
    assert obj["term"] == 7 and obj["event_term"] == 9
    assert obj["node"] == "n1" and obj["event_node"] == "n2"


def test_plain_lines_and_multiline_messages_stay_one_json_line() -> None:
    record = _record("first\nsecond %r", {"a": object()})
    line = JsonFormatter().format(record)
    assert len(line.splitlines()) == 1
    obj = json.loads(line)
    assert obj["event"] is None
    assert obj["message"].startswith("first\nsecond")


def test_an_exception_is_kept_inside_the_json_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = _record("failed")
        record.exc_info = sys.exc_info()
    obj = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in obj["exception"]


def test_configure_logging_json_writes_events_through_the_node_filter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    root = logging.getLogger("resonetics")
    saved = (root.handlers[:], root.level, root.propagate)
    try:
        configure_logging("n2", lambda: (4, "leader"), "info", "json")
        events.emit(events.Event(events.ELECTION_WON, {"term": 4, "votes": "2/3"}))
    finally:
        root.handlers[:], root.level, root.propagate = saved
    obj = json.loads(stream.getvalue())
    assert (obj["node"], obj["term"], obj["role"]) == ("n2", 4, "leader")
    assert (obj["event"], obj["votes"]) == ("election_won", "2/3")
    assert obj["message"] == "event=election_won term=4 votes=2/3"


def test_an_unknown_log_format_is_refused_everywhere(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="text or json"):
        make_formatter("xml")
    toml = tmp_path / "c.toml"
    toml.write_text(
        '[cluster]\nlog_format = "xml"\n[nodes]\nn1 = { peer = "127.0.0.1:7101", client = "127.0.0.1:7001" }\n'
    )
    with pytest.raises(ConfigError, match="log_format must be text or json"):
        load_toml(toml, "n1")
    result = CliRunner().invoke(main, ["serve", "--id", "n1", "--log-format", "xml"])
    assert result.exit_code == 2
    assert "xml" in result.output


def test_log_format_json_from_the_toml_file(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text(
        '[cluster]\nlog_format = "json"\n[nodes]\nn1 = { peer = "127.0.0.1:7101", client = "127.0.0.1:7001" }\n'
    )
    assert load_toml(toml, "n1").log_format == "json"
