"""A txn may touch only what its identity may touch: every key, both branches.

Attack tests: a caller with grants on ``app/`` tries to write, read or probe
keys outside it by hiding them inside a txn (in a compare, in the branch that
will not run, behind a prefix that merely starts the same).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from resonetics.cli import main
from resonetics.security.authz import Grants, decide
from resonetics.wire.client import validate_request
from resonetics.wire.envelope import decode_envelope, encode_envelope

APP = Grants(roles=("app",), read=("app/",), write=("app/",))
READ_ONLY = Grants(roles=("reader",), read=("",))


def _txn(**parts: Any) -> dict[str, Any]:
    """The args as the gateway hands them to authorization (validated, plain JSON)."""
    payload = {"client_id": "c", "request_id": "r", "op": "kv_txn", "args": parts}
    envelope = decode_envelope(encode_envelope("ClientRequest", payload, 1))
    return validate_request(envelope).args


def _put(key: str) -> dict[str, Any]:
    return {"type": "put", "key": key, "value": 1}


def test_txn_inside_the_granted_prefix_is_allowed() -> None:
    args = _txn(
        compare=[{"key": "app/a", "target": "version", "against": 0}],
        then=[_put("app/a")],
        **{"else": [{"type": "get", "key": "app/a"}]},
    )
    assert decide(APP, "kv_txn", args).allowed


@pytest.mark.parametrize(
    ("parts", "needed"),
    [
        ({"then": [_put("app/a"), _put("secret/x")]}, "write grant covers key 'secret/x'"),
        ({"then": [{"type": "delete", "key": "application"}]}, "write grant covers key 'app"),
        ({"else": [_put("secret/x")]}, "write grant covers key 'secret/x'"),
        ({"then": [{"type": "get", "key": "secret/x"}]}, "read grant covers key 'secret/x'"),
        (
            {"compare": [{"key": "secret/x", "target": "value", "against": "guess"}]},
            "read grant covers key 'secret/x'",
        ),
        (
            {"compare": [{"key": "secret/x", "target": "exists", "against": True}]},
            "read grant covers key 'secret/x'",
        ),
    ],
)
def test_txn_cannot_reach_around_a_prefix_rule(parts: dict[str, Any], needed: str) -> None:
    decision = decide(APP, "kv_txn", _txn(**parts))
    assert not decision.allowed
    assert needed in decision.reason


def test_txn_needs_a_write_grant_even_to_only_read() -> None:
    """A txn is logged whatever it holds: a read-only identity may not fill the log."""
    assert not decide(READ_ONLY, "kv_txn", _txn(then=[{"type": "get", "key": "a"}])).allowed
    assert not decide(READ_ONLY, "kv_txn", _txn(then=[_put("a")])).allowed
    assert not decide(Grants(), "kv_txn", _txn()).allowed


def test_empty_txn_is_allowed_to_an_identity_that_may_write_somewhere() -> None:
    assert decide(APP, "kv_txn", _txn()).allowed


def test_auth_check_judges_a_txn_key_as_compared_and_written(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "p.toml"
    runner.invoke(main, ["auth", "init", "--out", str(out), "--anonymous", "monitor"])
    ok = runner.invoke(main, ["auth", "check", "admin", "kv_txn", "a/k", "--policy", str(out)])
    assert ok.exit_code == 0 and ok.output == "allowed: admin may kv_txn 'a/k'\n"
    no = runner.invoke(main, ["auth", "check", "anonymous", "kv_txn", "k", "--policy", str(out)])
    assert no.exit_code == 1 and no.output.startswith("forbidden: kv_txn needs a write grant")
