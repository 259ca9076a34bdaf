"""Real processes: clients are authorized (issue 13 item 4).

An outsider reaches the client port with no credentials, with a client
credential that is not an admin's, and with a wrong token; each is refused
with FORBIDDEN or UNAUTHENTICATED, the cluster is unchanged, and every admin
op lands in the node's audit log with who, what and the result.
"""

from __future__ import annotations

import json
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from resonetics import errors, limits
from resonetics.client import Client
from resonetics.localcluster import LocalCluster
from resonetics.security.authz import hash_token, parse_policy
from resonetics.security.policy_files import write_policy
from resonetics.security.tls import TLSConfig, client_context
from tests.integration.conftest import _assert_no_crash, one_line, serve_once
from tests.security.trust import cluster_tls, write_client_identity

APP_TOKEN = "app-token-for-tests-0123456789abcdef"
OPS_TOKEN = "ops-token-for-tests-0123456789abcdef"


def _policy(path: Path, **extra: Any) -> Path:
    raw: dict[str, Any] = {
        "roles": {
            "app": {"read": ["app/"], "write": ["app/"]},
            "admin": {"admin": True, "read": [""], "write": [""]},
            "readwrite": {"read": [""], "write": [""], "monitor": True},
            "monitor": {"monitor": True},
        },
        "identities": {
            "alice": {"roles": ["app"], "token_sha256": hash_token(APP_TOKEN)},
            "ops": {"roles": ["admin"], "token_sha256": hash_token(OPS_TOKEN)},
        },
        **extra,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_policy(path, parse_policy(raw, source=str(path)))
    return path


def _start(cluster: LocalCluster) -> LocalCluster:
    cluster.start()
    try:
        cluster.wait_for_leader(timeout_s=60)
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """One node under a policy: alice may use app/, ops is admin, anonymous monitors."""
    root = tmp_path_factory.mktemp("authz")
    policy = _policy(root / "policy.toml", anonymous={"roles": ["monitor"]})
    cluster = LocalCluster(
        root / "data", size=1, tick_ms=20, authorize=False, extra_args=["--policy", str(policy)]
    )
    _start(cluster)
    yield cluster
    cluster.stop()
    _assert_no_crash(cluster)


def _raw(address: str, *lines: dict[str, Any], sock_wrap: Any = None) -> list[dict[str, Any]]:
    """Send ``lines`` on one raw connection; the decoded answers, one per line."""
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=20) as raw:
        sock = sock_wrap(raw, host) if sock_wrap is not None else raw
        for line in lines:
            sock.sendall(json.dumps(line).encode() + b"\n")
        stream = sock.makefile("rb")
        return [json.loads(stream.readline()) for _ in lines]


def _request(op: str, args: dict[str, Any], i: int) -> dict[str, Any]:
    payload = {"client_id": "raw", "request_id": f"raw-{i}", "op": op, "args": args}
    return {"kind": "ClientRequest", "payload": payload, "t": 0, "v": 1, "id": i}


def _auth(token: str, i: int) -> dict[str, Any]:
    return {"kind": "Auth", "payload": {"token": token}, "t": 0, "v": 1, "id": i}


def _log(cluster: LocalCluster, node: str = "n1") -> str:
    return (cluster.data_dir / f"{node}.log").read_text(errors="replace")


def _wait_for_log(cluster: LocalCluster, text: str, timeout_s: float = 20) -> str:
    return cluster.wait_until(
        f"{text!r} in n1's log", lambda: log if text in (log := _log(cluster)) else None, timeout_s
    )


def test_admin_ops_denied_by_default(tmp_path: Path) -> None:
    """A node started without --policy: reads and writes for all, admin for nobody."""
    cluster = _start(LocalCluster(tmp_path / "data", size=1, tick_ms=20, authorize=False))
    try:
        with Client(cluster.addresses, timeout=10) as client:
            client.put("k", "v")
            assert client.get("k") == "v"
            assert client.status()["role"] == "leader"
            for attempt in (
                lambda: client.member_remove("n1"),
                lambda: client.member_add("n2", "127.0.0.1:1"),
                lambda: client.transfer_leader("n1"),
            ):
                with pytest.raises(errors.Forbidden, match="needs the admin role"):
                    attempt()
            assert client.member_list()["voters"] == ["n1"]
    finally:
        cluster.stop()
    _assert_no_crash(cluster)


def test_member_remove_without_admin_role_is_forbidden(guarded: LocalCluster) -> None:
    """Raw socket: anonymously, then as alice (a valid token without admin)."""
    address = guarded.addresses[0]
    anonymous = _raw(address, _request("member_remove", {"node": "n1"}, 1))
    assert anonymous[0]["payload"]["code"] == "FORBIDDEN"
    as_alice = _raw(
        address,
        _auth(APP_TOKEN, 1),
        _request("member_remove", {"node": "n1"}, 2),
        _request("leader_transfer", {"to": "n1"}, 3),
    )
    assert as_alice[0]["payload"]["result"] == {"identity": "alice", "roles": ["app"]}
    assert [a["payload"]["code"] for a in as_alice[1:]] == ["FORBIDDEN", "FORBIDDEN"]
    assert "alice (token)" in as_alice[1]["payload"]["message"]
    with Client(guarded.addresses, timeout=10, token=OPS_TOKEN) as ops:
        assert ops.member_list()["voters"] == ["n1"]


def test_token_grants_only_its_prefixes(guarded: LocalCluster) -> None:
    with Client(guarded.addresses, timeout=10, token=APP_TOKEN) as alice:
        alice.put("app/a", 1)
        assert alice.get("app/a") == 1
        for attempt in (
            lambda: alice.put("other/a", 1),
            lambda: alice.get("other/a"),
            lambda: alice.delete("apple"),
            lambda: alice.cas("other/a", None, 1),
        ):
            with pytest.raises(errors.Forbidden):
                attempt()
    with Client(guarded.addresses, timeout=10) as anonymous, pytest.raises(errors.Forbidden):
        anonymous.get("app/a")  # this policy lets anonymous see status only


def test_scan_outside_readable_prefix_is_forbidden(guarded: LocalCluster) -> None:
    with Client(guarded.addresses, timeout=10, token=OPS_TOKEN) as ops:
        ops.put("secret/x", "hidden")
    with Client(guarded.addresses, timeout=10, token=APP_TOKEN) as alice:
        alice.put("app/s1", 1)
        assert ("app/s1", 1) in alice.scan("app/")
        for prefix in ("", "a", "app", "secret/"):
            with pytest.raises(errors.Forbidden, match="prefix"):
                alice.scan(prefix)


def test_wrong_token_is_unauthenticated_and_not_retried(guarded: LocalCluster) -> None:
    refusals_before = _log(guarded).count("auth refused: unknown token")
    started = time.monotonic()
    with (
        Client(guarded.addresses, timeout=10, token="not-" + APP_TOKEN) as client,
        pytest.raises(errors.Unauthenticated),
    ):
        client.put("app/x", 1)
    assert time.monotonic() - started < 3.0  # not retried until the 10 s deadline
    guarded.wait_until(
        "the refusal in n1's log",
        lambda: _log(guarded).count("auth refused: unknown token") > refusals_before,
    )
    refusals = _log(guarded).count("auth refused: unknown token") - refusals_before
    assert refusals == 1, f"the client tried {refusals} times with a token the node refused"
    # A connection whose Auth failed is not served as anonymous afterwards.
    answers = _raw(guarded.addresses[0], _auth("wrong", 1), _request("status", {}, 2))
    assert [a["payload"]["code"] for a in answers] == ["UNAUTHENTICATED", "UNAUTHENTICATED"]


def test_guessing_tokens_on_one_connection_is_closed_after_a_few_failures(
    guarded: LocalCluster,
) -> None:
    """An outsider trying tokens from a raw socket: each failed Auth is answered, the
    eighth says the connection closes, and nothing after it is read; the node serves on."""
    address = guarded.addresses[0]
    host, _, port = address.rpartition(":")
    guesses = limits.AUTH_FAILURES_PER_CONNECTION_MAX
    with socket.create_connection((host, int(port)), timeout=20) as raw:
        lines = [_auth(f"guess-{i}", i) for i in range(guesses)] + [_request("status", {}, 99)]
        raw.sendall(b"".join(json.dumps(line).encode() + b"\n" for line in lines))
        stream = raw.makefile("rb")
        answers = [json.loads(stream.readline()) for _ in range(guesses)]
        assert stream.readline() == b"", "the connection was not closed after the guesses"
    codes = [a["payload"]["code"] for a in answers]
    assert codes == ["UNAUTHENTICATED"] * guesses
    assert "unknown token" in answers[0]["payload"]["message"]
    assert "closing" not in answers[-2]["payload"]["message"]
    assert f"{guesses} failed Auth lines: closing" in answers[-1]["payload"]["message"]
    answers = _raw(address, _auth(APP_TOKEN, 1), _request("kv_get", {"k": "app/none"}, 2))
    assert [a["payload"]["code"] for a in answers] == ["OK", "OK"]


def test_admin_operation_is_audited_with_who_what_result(guarded: LocalCluster) -> None:
    with Client(guarded.addresses, timeout=10, token=OPS_TOKEN) as ops:
        with pytest.raises(errors.BadRequest, match="not a member"):
            ops.member_remove("n9")
        ops.transfer_leader("n1")
    _raw(guarded.addresses[0], _request("member_remove", {"node": "n1"}, 1))
    log = _wait_for_log(
        guarded, 'admin op by ops (token): member_remove {"node": "n9"} -> BAD_REQUEST'
    )
    assert 'admin op by ops (token): leader_transfer {"to": "n1"} -> ' in log
    assert 'admin op by anonymous (anonymous): member_remove {"node": "n1"} -> FORBIDDEN' in log
    assert OPS_TOKEN not in log and APP_TOKEN not in log


def test_anonymous_client_under_optional_tls_cannot_change_membership(tmp_path: Path) -> None:
    """Under --tls-client-auth optional: no certificate, or one naming no admin, is refused;
    a certificate whose SAN names the admin identity ``ops`` is served."""
    ca = trustme.CA()
    files = cluster_tls(ca, tmp_path / "certs", ["n1"], client_auth="optional")
    ops_cert, ops_key = write_client_identity(
        ca, tmp_path / "certs", "ops-client", "resonetics://client/ops"
    )
    policy = _policy(tmp_path / "policy.toml", anonymous={"roles": ["readwrite"]})
    cluster = LocalCluster(
        tmp_path / "data", size=1, tick_ms=20, authorize=False, extra_args=["--policy", str(policy)]
    )
    cluster.tls = files
    _start(cluster)
    try:
        no_cert = TLSConfig(files.ca)
        with Client(cluster.addresses, timeout=10, tls=no_cert) as anonymous:
            anonymous.put("anonymous", "welcome")
            with pytest.raises(errors.Forbidden):
                anonymous.member_remove("n1")
            with pytest.raises(errors.Forbidden):
                anonymous.member_add("n2", "127.0.0.1:1")
        answers = _raw(
            cluster.addresses[0],
            _request("member_remove", {"node": "n1"}, 1),
            sock_wrap=lambda raw, host: client_context(no_cert).wrap_socket(
                raw, server_hostname=host
            ),
        )
        assert answers[0]["payload"]["code"] == "FORBIDDEN"
        unnamed = Client(cluster.addresses, timeout=10, tls=files.client)
        with unnamed, pytest.raises(errors.Forbidden):  # CA-signed, but names no client
            unnamed.member_remove("n1")
        named = TLSConfig(files.ca, ops_cert, ops_key)
        with Client(cluster.addresses, timeout=10, tls=named) as ops:
            with pytest.raises(errors.BadRequest, match="not a member"):
                ops.member_remove("n9")  # past the gate: refused by the cluster itself
            assert ops.member_list()["voters"] == ["n1"]
        assert 'admin op by ops (cert): member_remove {"node": "n9"}' in _log(cluster)
    finally:
        cluster.stop()
    _assert_no_crash(cluster)


def test_cluster_up_style_cluster_acts_as_admin_with_its_token(tmp_path: Path) -> None:
    """LocalCluster's own policy: anonymous reads and writes, the admin token administers."""
    cluster = _start(LocalCluster(tmp_path / "data", size=1, tick_ms=20))
    try:
        with Client(cluster.addresses, timeout=10) as anonymous:
            anonymous.put("k", 1)
            with pytest.raises(errors.Forbidden):
                anonymous.transfer_leader("n1")
        with cluster.admin_client() as admin:
            admin.transfer_leader("n1")
            assert admin.member_list()["voters"] == ["n1"]
        assert cluster.admin_token is not None
        assert cluster.admin_token not in cluster.policy_path.read_text()
    finally:
        cluster.stop()
    _assert_no_crash(cluster)


def test_sighup_reloads_the_policy_and_a_bad_file_keeps_the_old_one(tmp_path: Path) -> None:
    path = _policy(tmp_path / "policy.toml", anonymous={"roles": ["monitor"]})
    cluster = LocalCluster(
        tmp_path / "data", size=1, tick_ms=20, authorize=False, extra_args=["--policy", str(path)]
    )
    _start(cluster)
    try:
        with Client(cluster.addresses, timeout=10, token=APP_TOKEN) as alice:
            with pytest.raises(errors.Forbidden):
                alice.put("other/x", 1)
            wider = {"app": {"read": [""], "write": [""]}, "monitor": {"monitor": True}}
            raw = {
                "roles": wider,
                "identities": {"alice": {"roles": ["app"], "token_sha256": hash_token(APP_TOKEN)}},
                "anonymous": {"roles": ["monitor"]},
            }
            write_policy(path, parse_policy(raw, source=str(path)))
            cluster.signal_node("n1", signal.SIGHUP)
            _wait_for_log(cluster, "policy reloaded from")
            alice.put("other/x", 1)  # the same connection, judged by the new policy
            path.write_text("[roles.app]\nread = 5\n")
            cluster.signal_node("n1", signal.SIGHUP)
            _wait_for_log(cluster, "policy reload refused")
            alice.put("other/y", 2)  # the old (wider) policy still holds
        assert cluster.exit_codes()["n1"] is None  # still running
    finally:
        cluster.stop()
    _assert_no_crash(cluster)


class _Line:
    """One raw client connection, read a line at a time (watch streams interleave)."""

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=20)
        self.stream = self.sock.makefile("rb")

    def send(self, line: dict[str, Any]) -> None:
        self.sock.sendall(json.dumps(line).encode() + b"\n")

    def ask(self, line: dict[str, Any]) -> dict[str, Any]:
        """Send ``line`` and return the answer with its id, passing over stream lines."""
        self.send(line)
        return self.next_where(lambda m: m["kind"] == "ClientResponse" and m["id"] == line["id"])

    def next_where(self, wanted: Any, timeout_s: float = 15.0) -> dict[str, Any]:
        """The next line ``wanted`` accepts; progress notices and other watches' lines
        may come between."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            message = json.loads(self.stream.readline())
            if wanted(message):
                return dict(message)
        raise AssertionError(f"no line wanted within {timeout_s} s")

    def close(self) -> None:
        self.stream.close()
        self.sock.close()


def test_a_policy_reload_cuts_off_a_replaced_token_and_ends_the_watches_it_no_longer_allows(
    tmp_path: Path,
) -> None:
    """A token leaks; the operator replaces it (`auth add --replace`) and sends SIGHUP. The
    connections already open with it must lose access at once, watches included; a watch
    under a prefix the new policy no longer lets its identity read ends FORBIDDEN, and the
    watches still allowed go on."""
    carol_token = "carol-token-for-tests-0123456789abcdef"
    path = tmp_path / "policy.toml"
    raw: dict[str, Any] = {
        "roles": {
            "app": {"read": ["app/"], "write": ["app/"]},
            "admin": {"admin": True, "read": [""], "write": [""]},
            "monitor": {"monitor": True},
        },
        "anonymous": {"roles": ["monitor"]},
        "identities": {
            "alice": {"roles": ["app"], "token_sha256": hash_token(APP_TOKEN)},
            "carol": {"roles": ["app"], "token_sha256": hash_token(carol_token)},
            "ops": {"roles": ["admin"], "token_sha256": hash_token(OPS_TOKEN)},
        },
    }
    write_policy(path, parse_policy(raw, source=str(path)))
    cluster = LocalCluster(
        tmp_path / "data", size=1, tick_ms=20, authorize=False, extra_args=["--policy", str(path)]
    )
    _start(cluster)
    alice, carol = _Line(cluster.addresses[0]), _Line(cluster.addresses[0])
    try:
        assert alice.ask(_auth(APP_TOKEN, 1))["payload"]["code"] == "OK"
        assert carol.ask(_auth(carol_token, 1))["payload"]["code"] == "OK"
        assert alice.ask(_request("watch", {"prefix": "app/"}, 10))["payload"]["code"] == "OK"
        assert carol.ask(_request("watch", {"prefix": "app/"}, 20))["payload"]["code"] == "OK"
        assert carol.ask(_request("watch", {"prefix": "app/pub/"}, 21))["payload"]["code"] == "OK"

        new_alice = "alice-new-token-0123456789abcdef0123"
        raw["identities"]["alice"]["token_sha256"] = hash_token(new_alice)
        raw["roles"]["app"] = {"read": ["app/pub/"], "write": ["app/"]}
        write_policy(path, parse_policy(raw, source=str(path)))
        cluster.signal_node("n1", signal.SIGHUP)

        end = alice.next_where(lambda m: m["kind"] == "WatchEnd")
        assert (end["id"], end["payload"]["code"]) == (10, "UNAUTHENTICATED")
        assert "no longer in the node's policy" in end["payload"]["message"]
        answer = alice.ask(_request("kv_get", {"k": "app/a"}, 11))["payload"]
        assert answer["code"] == "UNAUTHENTICATED", answer
        assert "no longer in the node's policy" in answer["message"]

        end = carol.next_where(lambda m: m["kind"] == "WatchEnd")
        assert (end["id"], end["payload"]["code"]) == (20, "FORBIDDEN")
        with Client(cluster.addresses, timeout=10, token=OPS_TOKEN) as ops:
            ops.put("app/pub/x", 1)
        event = carol.next_where(lambda m: m["kind"] == "WatchEvents")
        assert event["id"] == 21, event  # the watch still allowed goes on
        _wait_for_log(cluster, "policy reload ended 2 watch(es)")

        with Client(cluster.addresses, timeout=10, token=new_alice) as again:
            assert again.get("app/pub/x") == 1
        stale = _raw(cluster.addresses[0], _auth(APP_TOKEN, 1))
        assert stale[0]["payload"]["code"] == "UNAUTHENTICATED"
    finally:
        alice.close()
        carol.close()
        cluster.stop()
    _assert_no_crash(cluster)


def test_sighup_never_stops_a_node_with_nothing_to_reread(tmp_path: Path) -> None:
    """An operator's `systemctl reload` on a node with neither a policy nor TLS: before, the
    signal's default action stopped the process."""
    cluster = LocalCluster(tmp_path / "data", size=1, tick_ms=20, authorize=False)
    _start(cluster)
    try:
        cluster.signal_node("n1", signal.SIGHUP)
        _wait_for_log(cluster, "SIGHUP: no policy, TLS material or trust registry to re-read")
        with Client(cluster.addresses, timeout=10) as client:
            client.put("k", 1)
        assert cluster.exit_codes()["n1"] is None
    finally:
        cluster.stop()
    _assert_no_crash(cluster)


def test_an_identity_past_its_expiry_is_refused_on_its_open_connection_and_watch(
    tmp_path: Path,
) -> None:
    """`auth add --expires`: once the time comes (within the node's one-second sweep),
    the connection that authenticated before is refused, its watch ends, and a new Auth
    with the same token is refused, all saying the identity expired. The expiry is set by a
    reload once alice is in, so a slow start cannot make her late for her own test."""
    import datetime

    path = tmp_path / "policy.toml"
    raw: dict[str, Any] = {
        "roles": {"app": {"read": ["app/"], "write": ["app/"]}, "monitor": {"monitor": True}},
        "anonymous": {"roles": ["monitor"]},
        "identities": {"alice": {"roles": ["app"], "token_sha256": hash_token(APP_TOKEN)}},
    }
    write_policy(path, parse_policy(raw, source=str(path)))
    cluster = LocalCluster(
        tmp_path / "data", size=1, tick_ms=20, authorize=False, extra_args=["--policy", str(path)]
    )
    _start(cluster)
    alice = _Line(cluster.addresses[0])
    try:
        assert alice.ask(_auth(APP_TOKEN, 1))["payload"]["code"] == "OK"
        assert alice.ask(_request("watch", {"prefix": "app/"}, 2))["payload"]["code"] == "OK"
        assert alice.ask(_request("kv_get", {"k": "app/a"}, 3))["payload"]["code"] == "OK"
        soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=2)
        raw["identities"]["alice"]["expires"] = soon
        write_policy(path, parse_policy(raw, source=str(path)))
        cluster.signal_node("n1", signal.SIGHUP)
        end = alice.next_where(lambda m: m["kind"] == "WatchEnd", timeout_s=30)
        assert datetime.datetime.now(datetime.UTC) >= soon.replace(microsecond=0)
        assert (end["id"], end["payload"]["code"]) == (2, "UNAUTHENTICATED")
        assert "alice: expired at" in end["payload"]["message"]
        answer = alice.ask(_request("kv_get", {"k": "app/a"}, 4))["payload"]
        assert answer["code"] == "UNAUTHENTICATED" and "expired" in answer["message"]
        again = _raw(cluster.addresses[0], _auth(APP_TOKEN, 1))[0]["payload"]
        assert again["code"] == "UNAUTHENTICATED" and "expired" in again["message"]
    finally:
        alice.close()
        cluster.stop()
    _assert_no_crash(cluster)


def test_a_policy_whose_expires_has_no_offset_stops_the_start_naming_the_key(
    tmp_path: Path,
) -> None:
    """An operator's typo in `expires` (a local time, which would mean another instant on
    every host): `serve` refuses in one line naming the file and the key."""
    path = tmp_path / "policy.toml"
    path.write_text(
        '[roles.app]\nread = ["app/"]\n\n[identities.alice]\nroles = ["app"]\n'
        "expires = 2027-01-01T00:00:00\n"
    )
    result = serve_once(tmp_path / "data", "n1", "--cluster-id", "a" * 32, "--policy", str(path))
    assert result.returncode == 2, result.stderr
    line = one_line(result)
    assert str(path) in line and "identities.alice.expires" in line, line
