"""Structure-aware fuzz lines: valid client and peer lines, then one mutation each.

Theory of operation
-------------------
``LineMaker`` builds a *valid* line first, from the protocol's own tables, so
the fuzzer follows the protocol as it grows: a ``ClientRequest`` for every op in
``wire/client.py`` ``OPS`` (with and without session fields), ``Auth`` lines
(with the real token, a wrong one, or none), every Raft kind in
``raft/messages.py`` ``MESSAGE_TYPES``, and handshake ``Hello`` lines. It then
applies one mutation of ``MUTATIONS`` (or none, for a share of lines, so that
valid traffic is mixed in): type changes, dropped and added fields, huge, deep
and wide values, NaN and infinities, big ints, invalid UTF-8, truncation,
random bytes, duplicate keys, oversize lines, wrong kinds, and ``src``/``dst``
spoofing.

Everything comes from one ``random.Random``: a seed gives the same lines in
the same order (``tests/torture/test_fuzz_lines.py``). Values too deep for
Python's ``json`` encoder and bytes that are not UTF-8 are spliced in as raw
text after encoding (``_Raw`` markers), so the encoder never sees them.

Two rules keep the fuzzer from doing what an operator may legitimately do, so
that what it measures is the node's robustness, not the outcome of valid
commands: an admin op that would still validate is aimed at a node that does
not exist (``fz-ghost``), and a peer message that a key holder could deliver
(decodes, right ``src`` and ``dst``) is sent with ``term`` 0, which every node
treats as stale. A key holder is trusted (threat model); a well-formed message
of the current term from one is ordinary Raft traffic.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from resonetics import limits
from resonetics.errors import ResoneticsError
from resonetics.raft.entry import Entry, EntryType
from resonetics.raft.messages import MESSAGE_TYPES
from resonetics.wire.client import ADMIN_OPS, OPS, validate_request
from resonetics.wire.envelope import decode_envelope
from resonetics.wire.peer import HELLO_KIND, decode_peer

#: Every mutation class, in the order the unit tests name them.
MUTATIONS: Final = (
    "change_type",
    "drop_field",
    "add_field",
    "huge_value",
    "deep_value",
    "wide_value",
    "nan",
    "big_int",
    "invalid_utf8",
    "truncate",
    "random_bytes",
    "duplicate_key",
    "oversize",
    "wrong_kind",
    "spoof",
)
#: Mutations that build large lines (>= 64 KiB possible): drawn at most once per
#: ``HEAVY_EVERY`` lines on average, so a run's bytes stay bounded.
HEAVY: Final = frozenset({"huge_value", "wide_value", "oversize"})
HEAVY_EVERY: Final = 400
#: Every this many mutated lines of one maker, the mutation is ``oversize`` (a line past
#: ``limits.LINE_BYTES_MAX``: the node answers TOO_LARGE and closes); never otherwise.
OVERSIZE_EVERY: Final = 2_500
#: Share of lines sent as built, unmutated.
VALID_SHARE: Final = 0.1
#: Where an admin op that validates is aimed: a node no cluster has.
GHOST_NODE: Final = "fz-ghost"
CLIENT_KIND: Final = "ClientRequest"
AUTH_KIND: Final = "Auth"
_OTHER_KINDS: Final = ("", "Zzz", "ClientResponse", "PeerChallenge", "PeerWelcome", "PeerRefused")
_MARK: Final = "\x00fz-raw-{}\x00"
_INVALID_UTF8: Final = (b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\x80", b"\xf8\x88")


class _Raw:
    """Raw text to splice into the encoded line where the marker string is."""

    def __init__(self, text: bytes) -> None:
        self.text = text


@dataclass
class FuzzLine:
    """One line to send (ends with ``\\n``), what it started as and how it was mutated."""

    data: bytes
    base: str
    mutation: str


@dataclass
class LineMaker:
    """Makes fuzz lines for one fuzzing connection stream, from one seeded ``Random``."""

    rng: random.Random
    nodes: list[str] = field(default_factory=lambda: ["n1", "n2", "n3"])
    token: str | None = None
    cluster_id: str = ""
    client_id: str = "fz"
    _counter: int = 0
    _mutated: int = 0

    # --- valid lines ------------------------------------------------------------------
    def client_base(self) -> tuple[str, dict[str, Any]]:
        """(op or ``Auth``, a valid envelope) for a client connection."""
        rng = self.rng
        self._counter += 1
        if rng.random() < 0.01:  # a wrong token stops the connection: kept rare
            token = self.token if (self.token and rng.random() < 0.5) else "fz-wrong-token"
            return AUTH_KIND, self._envelope(AUTH_KIND, {"token": token})
        op = rng.choice(sorted(OPS))
        payload: dict[str, Any] = {
            "client_id": self.client_id,
            "request_id": f"r{self._counter}",
            "op": op,
            "args": self._args(op),
        }
        if op in ("kv_set", "kv_delete", "kv_cas") and rng.random() < 0.5:
            seq = rng.randint(1, 1000)
            payload.update(session=rng.randint(1, 50), seq=seq, ack_below=rng.randint(1, seq))
        return op, self._envelope(CLIENT_KIND, payload)

    def _args(self, op: str) -> dict[str, Any]:
        rng = self.rng
        key = f"fz/{rng.randrange(64)}"
        small = rng.choice([1, "v", None, True, [1, 2], {"a": "b"}, 2.5, ""])
        table: dict[str, dict[str, Any]] = {
            "kv_set": {"k": key, "v": small},
            "kv_get": {"k": key, "consistency": rng.choice(["linearizable", "lease", "stale"])},
            "kv_delete": {"k": key},
            "kv_cas": {"k": key, "expected": rng.choice([None, small]), "v": small},
            "kv_scan": {"prefix": "fz/", "limit": rng.randint(1, 50)},
            "kv_txn": {
                "compare": [{"key": key, "target": "value", "op": "==", "against": small}],
                "then": [{"type": "put", "key": key, "value": small}],
                "else": [{"type": "get", "key": key}],
            },
            "member_add": _ghost_add(),
            "member_add_learner": _ghost_add(),
            "member_promote": {"node": GHOST_NODE},
            "member_remove": {"node": GHOST_NODE},
            "leader_transfer": {"to": GHOST_NODE},
        }
        return table.get(op, {})

    def peer_base_hello(self, src: str) -> dict[str, Any]:
        """A well-formed ``Hello`` from ``src`` whose proof is random (so wrong)."""
        rng = self.rng
        hello = {
            "node_id": src,
            "cluster": self.cluster_id,
            "nonce": f"{rng.getrandbits(128):032x}",
            "proof": f"{rng.getrandbits(256):064x}" if rng.random() < 0.8 else "",
            "address": "127.0.0.1:1",
        }
        return self._envelope(HELLO_KIND, hello)

    def peer_base(self, src: str, dst: str) -> tuple[str, dict[str, Any]]:
        """(kind, a valid envelope) of a Raft message or a ``Hello`` from ``src`` to ``dst``."""
        rng = self.rng
        if rng.random() < 0.05:
            return HELLO_KIND, self.peer_base_hello(src)
        kind = rng.choice(sorted(MESSAGE_TYPES))
        return kind, self._envelope(kind, _peer_payload(kind, src, dst, rng))

    def _envelope(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {"kind": kind, "payload": payload, "t": 0, "v": 1, "id": self._counter}

    # --- mutated lines ----------------------------------------------------------------
    def client_line(self) -> FuzzLine:
        """A client line: mostly client bases, some peer kinds (they must be refused)."""
        if self.rng.random() < 0.05:
            base, doc = self.peer_base(self.rng.choice(self.nodes), self.rng.choice(self.nodes))
        else:
            base, doc = self.client_base()
        line = self.mutate(doc)
        return FuzzLine(_defuse_admin(line.data), base, line.mutation)

    def peer_line(self, src: str, dst: str, *, key_holder: bool) -> FuzzLine:
        """A peer line from ``src`` to ``dst``; a key holder's deliverable ones go stale."""
        base, doc = self.peer_base(src, dst)
        line = self.mutate(doc)
        data = _stale(line.data, src, dst) if key_holder else line.data
        return FuzzLine(data, base, line.mutation)

    def mutate(self, doc: dict[str, Any]) -> FuzzLine:
        """``doc`` encoded as one line, after one mutation (or none: ``valid``)."""
        rng = self.rng
        base = str(doc.get("kind"))
        if rng.random() < VALID_SHARE:
            return FuzzLine(_encode(doc, {}), base, "valid")
        name = rng.choice(MUTATIONS)
        self._mutated += 1
        if self._mutated % OVERSIZE_EVERY == 0:
            name = "oversize"
        elif name == "oversize":
            name = "change_type"
        elif name in HEAVY and rng.random() * HEAVY_EVERY > len(MUTATIONS):
            name = "drop_field"
        return FuzzLine(self.apply(name, doc), base, name)

    def apply(self, name: str, doc: dict[str, Any]) -> bytes:
        """``doc`` encoded after the mutation ``name`` (one of ``MUTATIONS``)."""
        rng = self.rng
        raws: dict[str, bytes] = {}
        if name == "truncate":
            text = _encode(doc, raws)[:-1]
            return text[: rng.randrange(len(text))] + b"\n"
        if name == "random_bytes":
            return rng.randbytes(rng.randint(0, 300)) + b"\n"
        if name == "duplicate_key":
            return _duplicate_key(doc, rng)
        if name == "wrong_kind":
            doc["kind"] = rng.choice([*_OTHER_KINDS, *sorted(MESSAGE_TYPES), HELLO_KIND, AUTH_KIND])
            doc["kind"] = doc["kind"] if rng.random() < 0.9 else CLIENT_KIND
            return _encode(doc, raws)
        if name == "spoof":
            payload = doc.get("payload")
            if isinstance(payload, dict):
                for f in ("src", "dst", "node_id", "client_id", "leader_id", "candidate_id"):
                    if f in payload and rng.random() < 0.7:
                        payload[f] = rng.choice([*self.nodes, "", "n9", "x" * 300, "n1\n"])
            return _encode(doc, raws)
        if name == "drop_field":
            holder, key = _pick(doc, rng)
            if isinstance(holder, dict):
                del holder[key]
            else:
                del holder[int(key)]
            return _encode(doc, raws)
        if name == "add_field":
            holder = rng.choice(_containers(doc))
            value = self._odd_value(raws)
            if isinstance(holder, dict):
                holder[rng.choice(["zz", "kind", "src", "term", "v", "args", "op", "k"])] = value
            else:
                holder.append(value)
            return _encode(doc, raws)
        holder, key = _pick(doc, rng)
        value = self._value_for(name, raws)
        if isinstance(holder, dict):
            holder[key] = value
        else:
            holder[int(key)] = value
        return _encode(doc, raws)

    def _value_for(self, name: str, raws: dict[str, bytes]) -> Any:
        rng = self.rng
        if name == "change_type":
            return self._odd_value(raws)
        if name == "huge_value":
            size = rng.choice([4096, 65_536, 1 << 20, limits.VALUE_BYTES_MAX + 1])
            return _raw(raws, b'"' + b"h" * size + b'"')
        if name == "oversize":
            return _raw(raws, b'"' + b"o" * (limits.LINE_BYTES_MAX + rng.randint(1, 4096)) + b'"')
        if name == "deep_value":
            depth = rng.choice([10, 63, 64, 65, 100, 999, 1000])
            if rng.random() * HEAVY_EVERY < 1:
                depth = rng.choice([5000, 100_000])
            opener, closer = (b"[", b"]") if rng.random() < 0.5 else (b'{"a":', b"}")
            return _raw(raws, opener * depth + b"1" + closer * depth)
        if name == "wide_value":
            width = rng.choice([1000, limits.JSON_ITEMS_MAX + 1, 100_000])
            if rng.random() < 0.5:
                return _raw(raws, b"[" + b",".join([b"1"] * width) + b"]")
            return _raw(raws, b"{" + b",".join(b'"%d":1' % i for i in range(width)) + b"}")
        if name == "nan":
            return _raw(raws, rng.choice([b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-0.0"]))
        if name == "big_int":
            big = rng.choice([2**53 + 1, 2**63, 2**64, -(2**63) - 1, 10**400, -(10**4000)])
            return _raw(raws, str(big).encode())
        if name == "invalid_utf8":
            junk = rng.choice(_INVALID_UTF8)
            return _raw(raws, b'"fz' + junk + b'"')
        raise ValueError(f"unknown mutation {name!r}")

    def _odd_value(self, raws: dict[str, bytes]) -> Any:
        rng = self.rng
        choice = rng.randrange(10)
        if choice == 9:
            return _raw(raws, rng.choice([b"NaN", b"1e999", b"18446744073709551617"]))
        return [None, True, 0, -1, 1.5, "s", [], {}, [1, "a"], {"a": 1}][choice]


# --- helpers ---------------------------------------------------------------------------
def _ghost_add() -> dict[str, Any]:
    return {"node": GHOST_NODE, "address": "127.0.0.1:1", "client_address": "127.0.0.1:2"}


def _peer_payload(kind: str, src: str, dst: str, rng: random.Random) -> dict[str, Any]:
    """A valid payload of ``kind`` (term 0: stale everywhere, see module doc)."""
    term = 0
    common: dict[str, Any] = {"src": src, "dst": dst, "term": term}
    hash_ = f"{rng.getrandbits(256):064x}"
    entry = msgspec.to_builtins(
        Entry(term=term, index=1, type=EntryType.CLIENT_CMD, data={"op": "kv_set"}, hash=hash_)
    )
    extra: dict[str, dict[str, Any]] = {
        "PreVote": {"candidate_id": src, "last_log_index": 0, "last_log_term": 0},
        "PreVoteResp": {"vote_granted": True},
        "RequestVote": {"candidate_id": src, "last_log_index": 0, "last_log_term": 0},
        "RequestVoteResp": {"vote_granted": True},
        "AppendEntries": {
            "leader_id": src,
            "prev_log_index": 0,
            "prev_log_term": 0,
            "prev_log_hash": hash_,
            "entries": [entry],
            "leader_commit": 0,
            "read_seq": 1,
        },
        "AppendEntriesResp": {"success": True, "match_index": 1, "read_seq": 1},
        "InstallSnapshot": {
            "leader_id": src,
            "last_included_index": 1,
            "last_included_term": 0,
            "last_included_hash": hash_,
            "offset": 0,
            "data": "e30=",
            "done": True,
            "checksum": hash_,
            "total_bytes": 2,
        },
        "InstallSnapshotResp": {"success": True, "last_included_index": 1, "next_offset": 0},
        "TimeoutNow": {},
        "ReadIndex": {"read_id": rng.randrange(1000)},
        "ReadIndexResp": {"read_id": rng.randrange(1000), "index": 1},
    }
    return {**common, **extra.get(kind, {})}


def _raw(raws: dict[str, bytes], text: bytes) -> str:
    marker = _MARK.format(len(raws))
    raws[marker] = text
    return marker


def _encode(doc: dict[str, Any], raws: dict[str, bytes]) -> bytes:
    text = json.dumps(doc, separators=(",", ":")).encode()
    for marker, raw in raws.items():
        text = text.replace(json.dumps(marker).encode(), raw)
    return text + b"\n"


def _containers(doc: Any) -> list[Any]:
    """Every dict and list inside ``doc`` (``doc`` included), walked without recursion."""
    found, todo = [], [doc]
    while todo:
        item = todo.pop()
        if isinstance(item, dict | list):
            found.append(item)
            todo.extend(item.values() if isinstance(item, dict) else item)
    return found


def _pick(doc: dict[str, Any], rng: random.Random) -> tuple[Any, str]:
    """A random (container, key) in ``doc``; list positions are given as strings."""
    slots = [
        (c, k)
        for c in _containers(doc)
        for k in (list(c) if isinstance(c, dict) else [str(i) for i in range(len(c))])
    ]
    return rng.choice(slots)


def _duplicate_key(doc: dict[str, Any], rng: random.Random) -> bytes:
    """The envelope with one of its (or its payload's) keys repeated, another value after."""
    payload = doc.get("payload")
    target = payload if isinstance(payload, dict) and payload and rng.random() < 0.7 else doc
    key = rng.choice(list(target))
    other: Any = rng.choice([None, 0, "dup", [], {"a": 1}, "ClientRequest", 2**31])
    extra = b"," + json.dumps(key).encode() + b":" + json.dumps(other).encode()
    if target is doc:
        body = json.dumps(doc, separators=(",", ":")).encode()
        return body[:-1] + extra + b"}\n"
    inner = json.dumps(target, separators=(",", ":")).encode()
    rest = {k: v for k, v in doc.items() if k != "payload"}
    head = json.dumps(rest, separators=(",", ":")).encode()
    return head[:-1] + b',"payload":' + inner[:-1] + extra + b"}}\n"


def _defuse_admin(data: bytes) -> bytes:
    """An admin op that would validate is aimed at ``GHOST_NODE`` (see module doc)."""
    if b"member_" not in data and b"leader_transfer" not in data:
        return data
    out = []
    for piece in data.split(b"\n")[:-1]:
        try:
            req = validate_request(decode_envelope(piece))
        except (ResoneticsError, ValueError, TypeError):
            out.append(piece)
            continue
        if req.op not in ADMIN_OPS or req.op == "member_list":
            out.append(piece)
            continue
        doc = json.loads(piece)
        doc["payload"]["op"] = "member_promote"
        doc["payload"]["args"] = {"node": GHOST_NODE}
        out.append(json.dumps(doc).encode())
    return b"\n".join(out) + b"\n"


def _stale(data: bytes, src: str, dst: str) -> bytes:
    """Every piece a key holder could deliver (decodes, src/dst right) gets ``term`` 0."""
    out = []
    for piece in data.split(b"\n")[:-1]:
        try:
            msg = decode_peer(decode_envelope(piece))
        except (ResoneticsError, ValueError, TypeError):
            out.append(piece)
            continue
        if msg.src != src or msg.dst != dst or msg.term == 0:
            out.append(piece)
            continue
        doc = json.loads(piece)
        doc["payload"]["term"] = 0
        if isinstance(doc["payload"].get("entries"), list):
            doc["payload"]["entries"] = []
        out.append(json.dumps(doc).encode())
    return b"\n".join(out) + b"\n"


__all__ = ["GHOST_NODE", "HEAVY", "MUTATIONS", "OVERSIZE_EVERY", "FuzzLine", "LineMaker"]
