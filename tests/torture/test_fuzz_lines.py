"""The fuzzer's line maker: deterministic for a seed, every mutation class, and its safety rules."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from resonetics import limits
from resonetics.cli import main
from resonetics.commands.fuzz import format_result
from resonetics.errors import ResoneticsError
from resonetics.raft.messages import MESSAGE_TYPES
from resonetics.torture.fuzz import CLUSTER_DIR, FuzzResult
from resonetics.torture.fuzz_lines import GHOST_NODE, MUTATIONS, OVERSIZE_EVERY, LineMaker
from resonetics.wire.client import OPS, validate_request
from resonetics.wire.envelope import decode_envelope
from resonetics.wire.peer import HELLO_KIND, decode_peer


def _maker(seed: int) -> LineMaker:
    return LineMaker(random.Random(seed), token="tok", cluster_id="c" * 32)


def test_the_same_seed_gives_the_same_lines() -> None:
    a, b = _maker(5), _maker(5)
    assert [a.client_line().data for _ in range(300)] == [b.client_line().data for _ in range(300)]
    assert [a.peer_line("n2", "n1", key_holder=True).data for _ in range(300)] == [
        b.peer_line("n2", "n1", key_holder=True).data for _ in range(300)
    ]


def test_another_seed_gives_other_lines() -> None:
    a, b = _maker(5), _maker(6)
    assert [a.client_line().data for _ in range(50)] != [b.client_line().data for _ in range(50)]


@pytest.mark.parametrize("name", MUTATIONS)
def test_every_mutation_class_produces_a_line_that_differs_from_the_valid_one(name: str) -> None:
    maker = _maker(1)
    for _ in range(20):
        _, doc = maker.client_base()
        valid = json.dumps(doc, separators=(",", ":")).encode() + b"\n"
        line = maker.apply(name, json.loads(valid))
        assert line.endswith(b"\n")
        if line != valid:
            break
    else:
        raise AssertionError(f"{name} never changed a line")


def test_oversize_lines_pass_the_line_limit_and_deep_values_pass_the_depth_limit() -> None:
    maker = _maker(2)
    _, doc = maker.client_base()
    assert len(maker.apply("oversize", doc)) > limits.LINE_BYTES_MAX
    depths = set()
    for _ in range(60):
        _, doc = maker.client_base()
        line = maker.apply("deep_value", doc)
        depths.add(line.count(b"[") + line.count(b"{"))
    assert max(depths) > limits.LINE_DEPTH_MAX


def test_invalid_utf8_lines_are_not_utf8() -> None:
    maker = _maker(3)
    for _ in range(20):
        _, doc = maker.client_base()
        with pytest.raises(UnicodeDecodeError):
            maker.apply("invalid_utf8", doc).decode("utf-8")


def test_a_mixed_stream_draws_every_mutation_and_covers_every_op_and_kind() -> None:
    maker = _maker(4)
    seen, bases = Counter[str](), set()
    for _ in range(20_000):
        line = maker.client_line()
        seen[line.mutation] += 1
        bases.add(line.base)
        assert line.mutation != "oversize" or len(line.data) > limits.LINE_BYTES_MAX
    assert set(MUTATIONS) <= set(seen)
    assert 1 <= seen["oversize"] <= 20_000 // OVERSIZE_EVERY
    assert "valid" in seen
    assert set(OPS) | {"Auth"} <= bases
    peer_bases = {maker.peer_base("n2", "n1")[0] for _ in range(2_000)}
    assert peer_bases == set(MESSAGE_TYPES) | {HELLO_KIND}
    ops = {maker.client_base()[1]["payload"].get("op") for _ in range(2_000)}
    assert set(OPS) <= ops


def test_admin_ops_that_validate_are_aimed_at_a_node_that_does_not_exist() -> None:
    maker = _maker(8)
    for _ in range(5_000):
        for piece in maker.client_line().data.split(b"\n")[:-1]:
            try:
                req = validate_request(decode_envelope(piece))
            except (ResoneticsError, ValueError):
                continue
            if req.op in ("member_add", "member_add_learner"):
                raise AssertionError(f"a valid {req.op} would be sent: {piece!r}")
            if req.op in ("member_promote", "member_remove"):
                assert req.args["node"] == GHOST_NODE
            if req.op == "leader_transfer":
                assert req.args["to"] == GHOST_NODE


def test_a_key_holders_deliverable_peer_messages_are_stale() -> None:
    """With the cluster key, a message with the right src/dst always carries term 0."""
    maker = _maker(9)
    for _ in range(5_000):
        for piece in maker.peer_line("n2", "n1", key_holder=True).data.split(b"\n")[:-1]:
            try:
                msg = decode_peer(decode_envelope(piece))
            except (ResoneticsError, ValueError):
                continue
            if msg.src == "n2" and msg.dst == "n1":
                assert msg.term == 0, piece


def test_fuzz_refuses_an_out_folder_holding_a_previous_run(tmp_path: Path) -> None:
    """A second run must not restart the first one's nodes: exit 2, one line."""
    (tmp_path / CLUSTER_DIR / "n1").mkdir(parents=True)
    result = CliRunner().invoke(main, ["fuzz", "--seed", "1", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "already holds a fuzz run" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_fuzz_table_names_every_figure_and_the_verdict() -> None:
    result = FuzzResult(seed=7, client_lines=10, peer_lines=5, duration_s=1.0)
    result.node_exits = {"n1": None, "n2": -9}
    result.rss_max_kb = {"n1": 51_200}
    text = format_result(result)
    for name in ("client lines", "peer lines", "lines/s", "node exits", "handler errors"):
        assert name in text
    assert "n2': -9" in text
    assert "n1=50 MB" in text
    assert text.splitlines()[-1].endswith("FAIL")


@pytest.mark.parametrize(
    "defect",
    ["node exit", "handler error", "verify", "final client"],
)
def test_the_fuzz_verdict_fails_on_each_condition(defect: str) -> None:
    """Exit 0 needs all four: no node exit, no handler error, verify clean, a client served."""
    good = FuzzResult(seed=1, verify_ok=True, final_client="ok")
    good.node_exits = {"n1": None}
    good.handler_errors = {"n1": 0}
    assert good.passed
    if defect == "node exit":
        good.node_exits["n1"] = -11
    elif defect == "handler error":
        good.handler_errors["n1"] = 1
    elif defect == "verify":
        good.verify_ok = False
    else:
        good.final_client = "Unavailable: no node answered"
    assert not good.passed
