"""Who may do what: the policy file, the decisions, tokens, certificate names, the audit."""

from __future__ import annotations

import contextlib
import logging
import ssl
import tomllib
from pathlib import Path
from typing import Any

import pytest
import trustme
from click.testing import CliRunner

from resonetics.cli import main
from resonetics.errors import BadRequest, PolicyError
from resonetics.runtime.outcome import Outcome
from resonetics.security.authz import (
    ANONYMOUS,
    Identity,
    Policy,
    cert_identity_name,
    check,
    hash_token,
    load_policy,
    new_token,
    parse_policy,
    render_policy,
)
from resonetics.security.policy_files import local_cluster_policy, write_policy
from resonetics.server.authorization import Gatekeeper
from resonetics.wire import codes
from resonetics.wire.auth import encode_auth, validate_auth
from resonetics.wire.client import ADMIN_OPS, OPS, ClientRequest
from resonetics.wire.envelope import Envelope, decode_envelope
from tests.security.trust import write_ca, write_client_identity

ALICE_TOKEN = "alice-token-0123456789"
OPS_TOKEN = "ops-token-0123456789"

POLICY: dict[str, Any] = {
    "roles": {
        "app": {"read": ["app/"], "write": ["app/"]},
        "audit": {"read": ["app/", "logs/"], "monitor": True},
        "admin": {"admin": True, "read": [""], "write": [""]},
    },
    "identities": {
        "alice": {"roles": ["app"], "token_sha256": hash_token(ALICE_TOKEN)},
        "ops": {"roles": ["admin"], "token_sha256": hash_token(OPS_TOKEN)},
        "carol": {"roles": ["audit"]},
    },
}


def policy(**changes: Any) -> Policy:
    return parse_policy({**POLICY, **changes}, source="policy.toml")


def allowed(p: Policy, who: Identity, op: str, **args: Any) -> bool:
    return check(p, who, op, args).allowed


ALICE = Identity("alice", "token", hash_token(ALICE_TOKEN))
OPERATOR = Identity("ops", "token", hash_token(OPS_TOKEN))


# --- the default -----------------------------------------------------------------------
@pytest.mark.parametrize("op", sorted(ADMIN_OPS))
def test_admin_ops_denied_by_default(op: str) -> None:
    """No policy: everyone reads and writes every key, nobody is admin (not even a cert)."""
    open_policy = Policy.open()
    for who in (ANONYMOUS, Identity("ops", "cert")):
        decision = check(open_policy, who, op, {})
        assert not decision.allowed and "admin" in decision.reason
        assert allowed(open_policy, who, "kv_set", k="anything")
        assert allowed(open_policy, who, "kv_scan", prefix="")
        assert allowed(open_policy, who, "status")


def test_member_remove_without_admin_role_is_forbidden() -> None:
    p = policy()
    assert not allowed(p, ALICE, "member_remove", node="n2")
    assert not allowed(p, ANONYMOUS, "member_remove", node="n2")
    assert allowed(p, OPERATOR, "member_remove", node="n2")


# --- prefixes --------------------------------------------------------------------------
def test_token_grants_only_its_prefixes() -> None:
    p = policy()
    assert allowed(p, ALICE, "kv_set", k="app/x")
    assert allowed(p, ALICE, "kv_get", k="app/x")
    assert not allowed(p, ALICE, "kv_set", k="other/x")
    assert not allowed(p, ALICE, "kv_cas", k="apple")  # "app/" is not "app"
    assert not allowed(p, ALICE, "kv_delete", k="logs/1")
    carol = Identity("carol", "cert")
    assert allowed(p, carol, "kv_get", k="logs/1")
    assert not allowed(p, carol, "kv_set", k="logs/1")  # read-only role


def test_scan_outside_readable_prefix_is_forbidden() -> None:
    p = policy()
    assert allowed(p, ALICE, "kv_scan", prefix="app/")
    assert allowed(p, ALICE, "kv_scan", prefix="app/users/")
    for outside in ("", "ap", "app", "logs/"):
        decision = check(p, ALICE, "kv_scan", {"prefix": outside})
        assert not decision.allowed and "prefix" in decision.reason, outside


def test_monitor_ops_need_monitor_or_admin_under_a_policy() -> None:
    p = policy()
    assert not allowed(p, ALICE, "status") and not allowed(p, ALICE, "member_list")
    assert allowed(p, Identity("carol", "cert"), "member_list")
    assert allowed(p, OPERATOR, "status")  # admin implies monitor


def test_anonymous_gets_only_the_roles_of_its_table() -> None:
    assert not allowed(policy(), ANONYMOUS, "kv_get", k="app/x")
    p = policy(anonymous={"roles": ["audit"]})
    assert allowed(p, ANONYMOUS, "kv_get", k="app/x")
    assert not allowed(p, ANONYMOUS, "kv_set", k="app/x")
    # A certificate name the policy does not list is anonymous, never someone else.
    assert p.grants(Identity("mallory", "cert")) == p.grants(ANONYMOUS)


def test_every_op_in_the_table_has_a_decision() -> None:
    p = policy()
    for op, spec in OPS.items():
        args = {spec.key_arg: "app/x"} if spec.key_arg else {}
        assert allowed(p, OPERATOR, op, **args), op  # the admin may do everything


# --- tokens ----------------------------------------------------------------------------
def test_tokens_are_stored_hashed(tmp_path: Path) -> None:
    out, token_file = tmp_path / "policy.toml", tmp_path / "admin.token"
    result = CliRunner().invoke(
        main, ["auth", "init", "--out", str(out), "--token-file", str(token_file)]
    )
    assert result.exit_code == 0, result.output
    token = token_file.read_text().strip()
    assert token not in result.output
    text = out.read_text()
    assert token not in text and hash_token(token) in text
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert out.stat().st_mode & 0o777 == 0o600
    loaded = load_policy(out)
    assert loaded.identity_for_token(token) == Identity("admin", "token", hash_token(token))
    assert loaded.identity_for_token(hash_token(token)) is None  # the hash is no token
    added = CliRunner().invoke(
        main, ["auth", "add", "bob", "--role", "readwrite", "--policy", str(out)]
    )
    assert added.exit_code == 0
    bob_token = added.stdout.strip()
    assert bob_token not in out.read_text()
    assert load_policy(out).identity_for_token(bob_token) == Identity(
        "bob", "token", hash_token(bob_token)
    )
    listed = CliRunner().invoke(main, ["auth", "list", "--policy", str(out)])
    assert "bob" in listed.output and bob_token not in listed.output
    assert hash_token(bob_token) not in listed.output
    # The local cluster's files obey the same rule.
    policy_path, token_path = local_cluster_policy(tmp_path / "cluster")
    local_token = token_path.read_text().strip()
    assert local_token not in policy_path.read_text()
    assert token_path.stat().st_mode & 0o777 == 0o600


def test_a_token_identity_removed_from_the_policy_gets_nothing() -> None:
    """After a reload drops alice, her open connection is not promoted to anonymous."""
    p = policy(anonymous={"roles": ["audit"]})
    assert p.grants(Identity("gone", "token")).roles == ()
    assert not allowed(p, Identity("gone", "token"), "kv_get", k="app/x")


def test_a_connection_whose_token_a_reload_replaced_is_refused_from_its_next_request() -> None:
    """A leaked token replaced (``auth add --replace``) and the policy reloaded: a connection
    that presented the old token keeps its identity's name, but not its grants."""
    gate = Gatekeeper(policy())
    alice = gate.policy.identity_for_token(ALICE_TOKEN)
    assert alice is not None and gate.policy.token_current(alice)
    read = ClientRequest(client_id="c", request_id="r", op="kv_get", args={"k": "app/x"})
    assert gate.check(alice, read) is None
    replaced = {
        **POLICY["identities"],
        "alice": {"roles": ["app"], "token_sha256": hash_token("the-new-alice-token")},
    }
    gate.policy = policy(identities=replaced)
    gate._grants.clear()  # what reload() does
    assert not gate.policy.token_current(alice)
    assert gate.policy.grants(alice).roles == ()
    refused = gate.check(alice, read)
    assert refused is not None and refused.code == codes.UNAUTHENTICATED
    assert "no longer in the node's policy" in (refused.message or "")
    renewed = gate.policy.identity_for_token("the-new-alice-token")
    assert renewed is not None and gate.check(renewed, read) is None
    assert gate.policy.token_current(Identity("carol", "cert"))  # no token, nothing to replace


def test_a_wrong_token_identifies_nobody() -> None:
    p = policy()
    assert p.identity_for_token(ALICE_TOKEN) == ALICE
    assert p.identity_for_token(ALICE_TOKEN + "x") is None
    assert p.identity_for_token(new_token()) is None
    assert Policy.open().identity_for_token(ALICE_TOKEN) is None


# --- loading: one-line typed errors naming the key ------------------------------------------
@pytest.mark.parametrize(
    ("raw", "key", "reason"),
    [
        ({"identities": {"x": {"roles": ["nope"]}}}, "identities.x.roles", "unknown role 'nope'"),
        ({"roles": {"r": {"read": "app/"}}}, "roles.r.read", "must be a list of key prefixes"),
        ({"roles": {"r": {"read": [1]}}}, "roles.r.read", "must be a list of key prefixes"),
        ({"roles": {"r": {"admin": "yes"}}}, "roles.r.admin", "must be true or false"),
        ({"roles": {"r": {"reed": []}}}, "roles.r.reed", "unknown key"),
        ({"identity": {}}, "identity", "unknown key"),
        ({"identities": {"x": {"roles": [], "token": "t"}}}, "identities.x.token", "unknown key"),
        ({"identities": {"x": {}}}, "identities.x.roles", "missing"),
        (
            {"identities": {"x": {"roles": [], "token_sha256": "secret-in-clear"}}},
            "identities.x.token_sha256",
            "64 lowercase hex digits",
        ),
        (
            {
                "identities": {
                    "x": {"roles": [], "token_sha256": hash_token("t")},
                    "y": {"roles": [], "token_sha256": hash_token("t")},
                }
            },
            "identities.y.token_sha256",
            "same token as identities.x",
        ),
        ({"identities": {"bad name": {"roles": []}}}, "identities.bad name", "names are"),
        ({"identities": {"anonymous": {"roles": []}}}, "identities.anonymous", "reserved"),
        ({"anonymous": {"roles": ["nope"]}}, "anonymous.roles", "unknown role"),
        ({"roles": {"r": {"write": ["x" * 2000]}}}, "roles.r.write", "longer than"),
    ],
)
def test_a_bad_policy_is_refused_naming_the_key(raw: dict[str, Any], key: str, reason: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(raw, source="p.toml")
    assert info.value.key == key and reason in info.value.reason
    assert "\n" not in str(info.value) and str(info.value).startswith("p.toml: ")


def test_policy_files_that_cannot_be_read_say_so(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[roles\n")
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_policy(broken)


def test_a_rendered_policy_loads_back_equal() -> None:
    p = policy(anonymous={"roles": ["audit"]})
    again = parse_policy(tomllib.loads(render_policy(p)), source="policy.toml")
    assert again == p


# --- the operator's CLI -----------------------------------------------------------------
def test_auth_cli_typos_are_one_line_and_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "p.toml"
    assert runner.invoke(main, ["auth", "init", "--out", str(out)]).exit_code == 0
    cases = [
        ["auth", "add", "bob", "--role", "nope", "--policy", str(out)],
        ["auth", "add", "admin", "--role", "admin", "--policy", str(out)],  # exists
        ["auth", "list", "--policy", str(tmp_path / "missing.toml")],
        ["auth", "check", "nobody", "status", "--policy", str(out)],
        ["auth", "init", "--out", str(out)],  # would overwrite
        *(
            ["auth", "add", "bob", "--role", "admin", "--expires", when, "--policy", str(out)]
            for when in ("tomorrow", "0d", "2001-01-01T00:00:00Z", "2099-01-01T00:00:00")
        ),  # not a duration or time, not ahead, in the past, without its offset
    ]
    for args in cases:
        result = runner.invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, args


def test_auth_add_expires_takes_a_duration_or_a_time_and_list_shows_it(tmp_path: Path) -> None:
    import datetime

    runner = CliRunner()
    out = tmp_path / "p.toml"
    assert runner.invoke(main, ["auth", "init", "--out", str(out)]).exit_code == 0
    before = datetime.datetime.now(datetime.UTC)
    added = runner.invoke(
        main, ["auth", "add", "bob", "--role", "admin", "--expires", "12h", "--policy", str(out)]
    )
    assert added.exit_code == 0 and ", until " in added.stderr
    expires = load_policy(out).identities["bob"].expires
    assert expires is not None
    assert (
        datetime.timedelta(hours=11, minutes=59) < expires - before <= datetime.timedelta(hours=12)
    )
    fixed = ["--expires", "2099-06-01T12:00:00+02:00", "--replace"]
    assert (
        runner.invoke(
            main, ["auth", "add", "bob", "--role", "admin", *fixed, "--policy", str(out)]
        ).exit_code
        == 0
    )
    listed = runner.invoke(main, ["auth", "list", "--policy", str(out)])
    assert "(expires 2099-06-01T10:00:00Z)" in listed.output


def test_auth_check_says_which_decision_an_identity_gets(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "p.toml"
    runner.invoke(main, ["auth", "init", "--out", str(out), "--anonymous", "monitor"])
    ok = runner.invoke(main, ["auth", "check", "admin", "member_remove", "--policy", str(out)])
    assert ok.exit_code == 0 and ok.output.startswith("allowed")
    no = runner.invoke(main, ["auth", "check", "anonymous", "kv_get", "k", "--policy", str(out)])
    assert no.exit_code == 1 and no.output.startswith("forbidden: kv_get")
    seen = runner.invoke(main, ["auth", "check", "anonymous", "status", "--policy", str(out)])
    assert seen.exit_code == 0


# --- certificates ---------------------------------------------------------------------------
def test_client_certificate_san_names_the_identity(tmp_path: Path) -> None:
    """The name comes from the URI SAN of a CA-verified certificate, nothing else."""
    ca = trustme.CA()
    cert, key = write_client_identity(ca, tmp_path, "ops", "resonetics://client/ops")
    server = ca.issue_cert("127.0.0.1")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.configure_cert(server_ctx)
    ca.configure_trust(server_ctx)
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    client_ctx = ssl.create_default_context(cafile=str(write_ca(ca, tmp_path / "ca.pem")))
    client_ctx.load_cert_chain(str(cert), str(key))
    peercert = _handshake(server_ctx, client_ctx)
    assert cert_identity_name(peercert) == "ops"
    gate = Gatekeeper(policy())
    assert gate.policy.grants(Identity("ops", "cert")).admin
    # Other URIs, a bad name, or no certificate: no name.
    assert cert_identity_name({"subjectAltName": (("URI", "resonetics://node/n1"),)}) is None
    assert cert_identity_name({"subjectAltName": (("URI", "resonetics://client/a b"),)}) is None
    assert cert_identity_name({"subjectAltName": (("DNS", "ops"),)}) is None
    assert cert_identity_name({}) is None
    assert gate.identity_for_tls(None) == ANONYMOUS


def _handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> dict[str, Any]:
    """Run a TLS handshake in memory; the server's view of the client certificate."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname="127.0.0.1")
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for side in (client, server):
            with contextlib.suppress(ssl.SSLWantReadError):
                side.do_handshake()
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    cert = server.getpeercert()
    assert cert, "handshake did not complete"
    return dict(cert)


# --- the wire and the gatekeeper -----------------------------------------------------------------
def test_auth_line_round_trips_and_refuses_bad_shapes() -> None:
    env = decode_envelope(encode_auth("s3cr3t", 1, 7))
    assert env.kind == "Auth" and env.id == 7 and validate_auth(env).token == "s3cr3t"
    assert "s3cr3t" not in repr(validate_auth(env))
    for payload in (b"{}", b'{"token": ""}', b'{"token": 5}', b'{"token": "t", "x": 1}'):
        line = b'{"kind": "Auth", "payload": ' + payload + b', "t": 1, "v": 1}\n'
        with pytest.raises(BadRequest):
            validate_auth(decode_envelope(line))
    long = b'{"kind": "Auth", "payload": {"token": "' + b"x" * 300 + b'"}, "t": 1, "v": 1}\n'
    with pytest.raises(BadRequest):
        validate_auth(decode_envelope(long))


def test_wrong_token_is_unauthenticated_and_not_retried() -> None:
    """The gate answers UNAUTHENTICATED and refuses the connection's requests afterwards."""
    gate = Gatekeeper(policy())
    who, answer = gate.authenticate(decode_envelope(encode_auth("wrong", 1, 1)))
    assert who is None and answer.code == codes.UNAUTHENTICATED
    req = ClientRequest(client_id="c", request_id="r", op="kv_get", args={"k": "app/x"})
    refused = gate.check(who, req)
    assert refused is not None and refused.code == codes.UNAUTHENTICATED
    who, answer = gate.authenticate(decode_envelope(encode_auth(ALICE_TOKEN, 1, 2)))
    assert who == ALICE and answer.result == {"identity": "alice", "roles": ["app"]}
    assert gate.check(who, req) is None


def test_admin_operation_is_audited_with_who_what_result(caplog: pytest.LogCaptureFixture) -> None:
    gate = Gatekeeper(policy())
    req = ClientRequest(client_id="c", request_id="r", op="member_remove", args={"node": "n2"})
    assert gate.audited(req)
    assert not gate.audited(ClientRequest(client_id="c", request_id="r", op="kv_set", args={}))
    denied = gate.check(ALICE, req)
    assert denied is not None and denied.code == codes.FORBIDDEN
    with caplog.at_level(logging.INFO, logger="resonetics.audit"):
        gate.audit(ALICE, req, denied)
        gate.audit(OPERATOR, req, Outcome(codes.OK))
    lines = [r.getMessage() for r in caplog.records if r.name == "resonetics.audit"]
    assert lines[0].startswith(
        'admin op by alice (token): member_remove {"node": "n2"} -> FORBIDDEN'
    )
    assert lines[1] == 'admin op by ops (token): member_remove {"node": "n2"} -> OK'


# --- expiry ---------------------------------------------------------------------------------
def test_an_identity_expires_at_its_time_cached_grants_included(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``expires``: an Auth after it is refused; a connection authenticated before it keeps
    its grants only until the next sweep (the server runs one a second)."""
    import datetime

    from resonetics.server import authorization

    t0 = datetime.datetime(2027, 1, 1, tzinfo=datetime.UTC)
    now = [t0]
    monkeypatch.setattr(authorization, "_now", lambda: now[0])
    until = t0 + datetime.timedelta(hours=1)
    identities = {
        **POLICY["identities"],
        "alice": {
            "roles": ["app"],
            "token_sha256": hash_token(ALICE_TOKEN),
            "expires": until,
        },
    }
    gate = Gatekeeper(policy(identities=identities))
    read = ClientRequest(client_id="c", request_id="r", op="kv_get", args={"k": "app/x"})
    alice, answer = gate.authenticate(_auth_envelope(ALICE_TOKEN))
    assert alice is not None and answer.ok
    assert gate.check(alice, read) is None and not gate.sweep()
    now[0] = until
    assert gate.check(alice, read) is None  # cached until the sweep...
    assert gate.sweep() and not gate.sweep()  # ...which runs once per expiry
    refused = gate.check(alice, read)
    assert refused is not None and refused.code == codes.UNAUTHENTICATED
    assert "alice: expired at 2027-01-01T01:00:00Z" in (refused.message or "")
    again, answer = gate.authenticate(_auth_envelope(ALICE_TOKEN))
    assert again is None and answer.code == codes.UNAUTHENTICATED
    assert "expired" in (answer.message or "")
    operator = gate.policy.identity_for_token(OPS_TOKEN)
    assert operator is not None and gate.check(operator, read) is None  # no expiry: unmoved


def _auth_envelope(token: str) -> Envelope:
    return decode_envelope(encode_auth(token, 1, 1))


def test_expires_is_an_aware_time_and_round_trips(tmp_path: Path) -> None:
    for value in ("2027-01-01T00:00:00Z", "2027-01-01T02:00:00+02:00"):
        entry = {"roles": ["app"], "token_sha256": hash_token("t"), "expires": value}
        loaded = policy(identities={"bob": entry}).identities["bob"]
        assert (
            loaded.expires is not None and loaded.expires.isoformat() == "2027-01-01T00:00:00+00:00"
        )
    for bad in ("2027-01-01T00:00:00", "next year", 5):
        with pytest.raises(PolicyError, match=r"identities\.bob\.expires"):
            policy(identities={"bob": {"roles": ["app"], "expires": bad}})
    raw = tomllib.loads("[identities.bob]\nroles = []\nexpires = 2027-01-01T00:00:00Z\n")
    written = tmp_path / "p.toml"
    original = parse_policy(raw, source="p.toml")
    write_policy(written, original)
    assert load_policy(written).identities == original.identities
